"""Public URLs: the FHIR base (the `aud` of every access token) and the authorization
server's endpoints (its issuer, `iss`).

With FHIR_BASE_URL set they are fixed; otherwise they follow the request, as the FHIR
endpoint's own links do. The authorization server lives beside the FHIR endpoint:
https://host/fhir -> https://host/auth/{authorize,token,...}, unless FHIR_AUTH_ISSUER says
otherwise (a proxy that maps it elsewhere).
"""

from __future__ import annotations

from flask import current_app, request


def _prefix() -> str:
    return current_app.config.get("FHIR_PREFIX", "/fhir")


def _request_root() -> str:
    return request.host_url.rstrip("/") + request.script_root


def fhir_base(settings) -> str:
    if settings.base_url:
        return settings.base_url.rstrip("/")
    return _request_root() + _prefix()


def issuer(settings) -> str:
    if settings.auth_issuer:
        return settings.auth_issuer.rstrip("/")
    base = fhir_base(settings)
    prefix = _prefix()
    root = base[: -len(prefix)] if prefix and base.endswith(prefix) else _request_root()
    return root + "/auth"


def endpoint(settings, name: str) -> str:
    """authorize, token, introspect, revoke, jwks, login."""
    return f"{issuer(settings)}/{name}"


def same_url(a: str | None, b: str | None) -> bool:
    """URLs equal up to a trailing slash and the case of scheme and host."""
    if not a or not b:
        return False

    def norm(u: str) -> str:
        u = u.strip().rstrip("/")
        scheme, sep, rest = u.partition("://")
        if not sep:
            return u
        host, slash, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}{slash}{path}"

    return norm(a) == norm(b)
