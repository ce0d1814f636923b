"""The Flask application factory."""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from consent.principal import OPEN
from resources import registry

from . import rest
from .auth import init_auth
from .settings import Settings
from .storage import open_store

log = logging.getLogger("fhir_server")


def create_app(settings: Settings | None = None, store=None) -> Flask:
    settings = settings or Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.config["FHIR_SETTINGS"] = settings
    app.config["FHIR_PREFIX"] = "/fhir"
    # Werkzeug enforces the limit while reading bodies without Content-Length too.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["FHIR_STORE"] = store or open_store(settings, registry.supported_types())
    # Who is asking: replaced by the SMART authorization server's token check (fhir_server.auth).
    app.config.setdefault("FHIR_AUTHENTICATOR", lambda request: OPEN)
    app.register_blueprint(rest.bp, url_prefix="/fhir")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # Requests under /fhir that match no route still get an OperationOutcome.
        if request.path == "/fhir" or request.path.startswith("/fhir/"):
            return rest.error_response(rest.http_exception_to_fhir(exc))
        return exc

    # The SMART authorization server: /.well-known/smart-configuration, /auth/*, /admin/*,
    # /api/openapi.json (a loud warning and nothing else with FHIR_AUTH=off).
    init_auth(app, settings)

    if settings.embedded:
        log.info("embedded in-process store (mongomock): one worker process; set FHIR_MONGODB_URI for MongoDB")
    if settings.demo:
        from seed.demo import load_demo, load_demo_auth

        load_demo(app)
        load_demo_auth(app)
    return app
