"""The Flask application factory."""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from consent.policy import WATCHED
from consent.principal import OPEN, Principal
from resources import registry

from . import packages, rest
from .auth import authenticator, init_auth
from .settings import Settings
from .storage import open_store

log = logging.getLogger("fhir_server")

# WSGI environ key of an in-process caller's principal (internal_client). A key without the
# HTTP_ prefix cannot come from a request header, so no HTTP client can set it.
INTERNAL_PRINCIPAL = "fhir_server.internal_principal"
OPERATOR = Principal("admin", subject="operator", client_id="fhir-server")


def _authenticator(settings: Settings):
    check = authenticator(settings) if settings.auth == "smart" else (lambda request: OPEN)

    def authenticate(request) -> Principal:
        internal = request.environ.get(INTERNAL_PRINCIPAL)
        return internal if isinstance(internal, Principal) else check(request)

    return authenticate


def internal_client(app: Flask, principal: Principal = OPERATOR):
    """A test client of `app` whose requests run as `principal` without a token: for the
    server's own in-process callers (demo seeding, `fhir-server load` against the database).
    They are audited like any request, under the principal's subject."""
    client = app.test_client()
    client.environ_base[INTERNAL_PRINCIPAL] = principal
    return client


def create_app(settings: Settings | None = None, store=None) -> Flask:
    settings = settings or Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.config["FHIR_SETTINGS"] = settings
    app.config["FHIR_PREFIX"] = "/fhir"
    # Werkzeug enforces the limit while reading bodies without Content-Length too.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["FHIR_STORE"] = store = store or open_store(settings, registry.supported_types())
    store.watch(*WATCHED)  # what access decisions are made of (consent.policy)
    store.append_only("AuditEvent")  # the audit trail: written once by fhir_server.audit, never changed
    # Who is asking: the SMART bearer-token check (fhir_server.auth), or OPEN with FHIR_AUTH=off.
    app.config["FHIR_AUTHENTICATOR"] = _authenticator(settings)
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

    packages.load(app)  # packaged conformance resources (FHIR_LOAD_DEFINITIONS)
    if settings.embedded:
        log.info("embedded in-process store (mongomock): one worker process; set FHIR_MONGODB_URI for MongoDB")
    if settings.demo:
        from seed.demo import load_demo, load_demo_auth

        load_demo(app)
        load_demo_auth(app)
    return app
