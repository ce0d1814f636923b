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

Federated sign-in (Gosuslugi) returns to /auth/login/<provider>/callback by a cross-site
redirect, which a browser sends without a SameSite=Strict cookie - so the session that
holds the provider's `state` would be missing. A browser says so (`Sec-Fetch-Site:
cross-site`); such a callback is answered with a page that reloads the same URL from our
own site (marked `_same_site=1`, once), and that request carries the cookie. Nothing
else is let through this way: the consent page and the forms still need a same-site
request.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from flask import has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from markupsafe import escape

LOCAL_HOSTS = frozenset(("localhost", "127.0.0.1", "::1"))
CALLBACK = re.compile(r"^/auth/login/[^/]+/callback$")
BOUNCED = "_same_site"
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


def bounce_cross_site_callback():
    """The reload page for a cross-site federated callback (see the module docstring), or None."""
    if request.method != "GET" or request.headers.get("Sec-Fetch-Site") != "cross-site" or not CALLBACK.match(request.path):
        return None
    if request.args.get(BOUNCED):
        return None
    query = request.query_string.decode("latin-1")
    url = request.script_root + request.path + "?" + (query + "&" if query else "") + BOUNCED + "=1"
    html = (f'<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={escape(url)}">'
            f'</head><body><a href="{escape(url)}">…</a></body></html>')
    from .login import PAGE_HEADERS

    return html, 200, {**PAGE_HEADERS, "Content-Type": "text/html; charset=utf-8"}


def configure(app, settings) -> None:
    app.session_interface = StrictSessionInterface()
    app.before_request(bounce_cross_site_callback)
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_PATH="/auth",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        # The cookie outlives the session by a minute, so the page can still say it expired.
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=lifetime(settings) + 60),
        SESSION_REFRESH_EACH_REQUEST=False,
    )
