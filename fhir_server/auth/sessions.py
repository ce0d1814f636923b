"""The sign-in session cookie: HttpOnly, SameSite=Strict, Secure, limited to /auth.

Secure is on unless the server is reached over plain http on this machine (localhost,
127.0.0.1, ::1) - browsers refuse Secure cookies over http, which would make local
development impossible; anything else over http gets no working session at all. The
address is FHIR_AUTH_ISSUER or FHIR_BASE_URL when set, else the request's own.

Lifetime: a session lasts FHIR_AUTH_SESSION_SECONDS, never longer than the online_access
refresh tokens (FHIR_AUTH_ONLINE_REFRESH_SECONDS), which SMART defines as valid while the
user is signed in; the cookie expires then and the server refuses it after that time
too (login.current_account). A session also ends when the account's session epoch moves
on (Records.end_sessions: a refresh token or code presented twice), and that revokes the
account's online_access tokens as well.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import has_request_context, request
from flask.sessions import SecureCookieSessionInterface

LOCAL_HOSTS = frozenset(("localhost", "127.0.0.1", "::1"))
COOKIE = "fhir_auth_session"


def lifetime(settings) -> int:
    return min(settings.auth_session_seconds, settings.auth_online_refresh_seconds)


def cookie_secure(settings) -> bool:
    base = settings.auth_issuer or settings.base_url or (request.host_url if has_request_context() else "")
    parts = urlsplit(base)
    return not (parts.scheme == "http" and parts.hostname in LOCAL_HOSTS)


class StrictSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session with the attributes decided per request."""

    def get_cookie_secure(self, app) -> bool:
        return cookie_secure(app.config["FHIR_SETTINGS"])

    def get_cookie_samesite(self, app) -> str:
        return "Strict"

    def get_cookie_httponly(self, app) -> bool:
        return True


def configure(app, settings) -> None:
    app.session_interface = StrictSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_PATH="/auth",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # The cookie outlives the session by a minute, so the page can still say it expired.
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=lifetime(settings) + 60),
        SESSION_REFRESH_EACH_REQUEST=False,
    )
