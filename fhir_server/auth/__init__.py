"""SMART-on-FHIR authorization server (SMART App Launch 2.0) and the bearer-token check
of the FHIR endpoint.

    init_auth(app, settings)        set up the authorization server of one app
    authenticate(request, settings) -> consent.principal.Principal   (for the FHIR endpoint)
    authenticator(settings)         the same as a one-argument callable (app.config["FHIR_AUTHENTICATOR"])

Modules: models (mongoengine records), keys (token signing key), grants (Authlib grants),
server (AuthorizationServer, tokens, introspection, revocation), providers (identity
providers), login (pages), views (OAuth endpoints), admin (admin API), clients
(registration), scoping (what a token may carry), urls, hashing.
"""

from __future__ import annotations

import logging
import secrets
import weakref

from consent.principal import OPEN, Principal

log = logging.getLogger("fhir_server.auth")

CHALLENGE = 'Bearer realm="fhir"'
CHALLENGE_INVALID = 'Bearer realm="fhir", error="invalid_token"'


def init_auth(app, settings) -> None:
    """Set up the SMART authorization server for `app` (nothing but a warning when FHIR_AUTH=off)."""
    if settings.auth == "off":
        log.warning(
            "FHIR_AUTH=off: NO AUTHORIZATION. Every request is served to anyone, with no consent checks "
            "on who asks. Never run like this with real patient data."
        )
        return
    from . import admin, totp, views
    from .keys import load_signing_key
    from .models import Records
    from .providers import LocalPasswordProvider, register_configured
    from .server import AuthService

    # Authlib logs whole token responses at DEBUG: never let tokens reach the log.
    authlib_log = logging.getLogger("authlib")
    if authlib_log.level < logging.INFO:  # NOTSET (0) too: it would follow a DEBUG root
        authlib_log.setLevel(logging.INFO)
    store = app.config.get("FHIR_STORE")
    records = Records.connect(settings, engine=getattr(store, "engine", None))
    # The alias goes when the app does (tests make an app per test).
    weakref.finalize(app, records.close)
    service = AuthService(settings, records, load_signing_key(settings.auth_signing_key), store=store)
    service.providers.register(LocalPasswordProvider(records))
    register_configured(service.providers, settings, records)  # Gosuslugi (ESIA) when configured
    app.extensions["fhir_auth"] = service

    if settings.auth_session_secret:
        app.secret_key = settings.auth_session_secret.get_secret_value()
    else:
        app.secret_key = secrets.token_bytes(32)
        if not settings.embedded:
            log.warning("FHIR_AUTH_SESSION_SECRET is not set: sign-in sessions do not survive a restart or reach other worker processes")
    from . import sessions

    sessions.configure(app, settings)  # HttpOnly; Secure; SameSite=Strict (see sessions.py)
    api = admin.init_api(app)
    api.register_blueprint(views.make_blueprint())
    api.register_blueprint(admin.make_blueprint())
    api.register_blueprint(totp.make_blueprint())


def authenticate(request, settings) -> Principal:
    """Who is asking, from the request's bearer token.

    FHIR_AUTH=off: consent.principal.OPEN. Otherwise the token must be an access token
    of this server: signature by its key, `iss` this authorization server, `aud` this FHIR
    base URL, not expired, not revoked (its `jti` record). A missing token raises
    FHIRError 401 auth-required, any other failure 401 auth-invalid (texts in
    fhir_server.i18n), both with a
    WWW-Authenticate challenge (RFC 6750 3).
    """
    if settings.auth == "off":
        return OPEN
    from flask import current_app

    from ..errors import FHIRError
    from .server import InvalidToken

    header = request.headers.get("Authorization")
    if not header:
        raise FHIRError(401, "login", "auth-required", headers={"WWW-Authenticate": CHALLENGE})
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise FHIRError(401, "login", "auth-invalid", headers={"WWW-Authenticate": CHALLENGE_INVALID})
    service = current_app.extensions.get("fhir_auth")
    if service is None:
        raise RuntimeError("the SMART authorization server is not set up for this app (init_auth)")
    # The service's URLs follow its app's settings; `settings` here may set another base.
    if settings is not service.settings and (settings.base_url, settings.auth_issuer) != (
        service.settings.base_url,
        service.settings.auth_issuer,
    ):
        service = _with_settings(service, settings)
    try:
        return service.principal(value.strip())
    except InvalidToken as exc:
        log.info("bearer token refused: %s", exc)
        raise FHIRError(401, "login", "auth-invalid", headers={"WWW-Authenticate": CHALLENGE_INVALID}) from None


def authenticator(settings):
    """authenticate() bound to settings: the callable for app.config["FHIR_AUTHENTICATOR"]."""

    def _authenticate(request) -> Principal:
        return authenticate(request, settings)

    return _authenticate


def _with_settings(service, settings):
    import copy

    other = copy.copy(service)
    other.settings = settings
    return other


def mint_token(app, *, subject: str, role: str, scope: str, client_id: str = "internal", fhir_user: str | None = None,
               patient: str | None = None, lifetime: int | None = None) -> str:
    """An access token for in-process callers (seeding, tests), recorded like any other.

    Outside a request the URLs come from FHIR_BASE_URL, or http://localhost/fhir (what
    Flask's test client uses)."""
    from flask import has_request_context

    service = app.extensions["fhir_auth"]
    kwargs = {"subject": subject, "role": role, "scope": scope, "client_id": client_id, "fhir_user": fhir_user,
              "patient": patient, "lifetime": lifetime}
    if has_request_context():
        return service.mint(**kwargs)
    with app.test_request_context("/"):
        return service.mint(**kwargs)
