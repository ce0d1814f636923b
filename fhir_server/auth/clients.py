"""Registering clients: the checks shared by the CLI and the admin API.

    public        a browser or mobile app: no secret, PKCE, authorization_code + refresh_token
    confidential  with a secret (client_secret_basic), or with a JWKS (private_key_jwt);
                  authorization_code + refresh_token when it has redirect URIs,
                  client_credentials (SMART Backend Services) when it has a JWKS
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from consent.scopes import well_formed

from . import hashing, scoping
from .models import Client, Records

ORGANIZATION = re.compile(r"^Organization/[A-Za-z0-9\-.]{1,64}$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9\-._~]{3,128}$")
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


class RegistrationError(ValueError):
    pass


def check_redirect_uri(uri: str) -> None:
    """https anywhere, http on the loopback only, or an app's private-use scheme in
    reverse-domain form (RFC 8252 7.1: ru.example.app:/callback); no fragment."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if parts.fragment or "#" in uri:
        raise RegistrationError(f"redirect URI {uri!r} must not have a fragment")
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise RegistrationError(f"redirect URI {uri!r} has no host")
        if scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise RegistrationError(f"redirect URI {uri!r}: plain http is allowed for localhost only")
    elif not scheme or "." not in scheme:
        raise RegistrationError(f"redirect URI {uri!r}: use https, http on localhost, or a reverse-domain app scheme")


def check_jwks(jwks) -> dict:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise RegistrationError("the JWKS must be an object with a non-empty 'keys' array")
    for key in jwks["keys"]:
        if not isinstance(key, dict):
            raise RegistrationError("every JWKS key must be an object")
        if any(m in key for m in _PRIVATE_MEMBERS):
            raise RegistrationError("the JWKS must hold public keys only (found private key members)")
        if key.get("kty") not in ("RSA", "EC"):
            raise RegistrationError("JWKS keys must be RSA (RS384) or EC P-384 (ES384)")
        if key.get("kty") == "EC" and key.get("crv") != "P-384":
            raise RegistrationError("EC keys must be on curve P-384 (ES384)")
    try:
        KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise RegistrationError(f"the JWKS cannot be read: {exc}") from None
    return jwks


def register_client(
    records: Records,
    *,
    name: str,
    public: bool,
    redirect_uris=(),
    scope: str | list[str] = "",
    jwks: dict | None = None,
    organization: str | None = None,
    client_id: str | None = None,
    secret: str | None = None,
) -> tuple[Client, str | None]:
    """Register a client; the secret (shown once) for a confidential client without JWKS."""
    name = (name or "").strip()
    if not name:
        raise RegistrationError("a client needs a name")
    scopes = scoping.split(" ".join(scope) if isinstance(scope, (list, tuple)) else scope)
    if not scopes:
        raise RegistrationError("give the scopes the client may request (--scope)")
    bad = [s for s in scopes if not well_formed(s)]
    if bad:
        raise RegistrationError(f"not SMART scopes: {' '.join(bad)}")
    redirect_uris = list(dict.fromkeys(u.strip() for u in redirect_uris if u and u.strip()))
    for uri in redirect_uris:
        check_redirect_uri(uri)
    if organization and not ORGANIZATION.match(organization):
        raise RegistrationError("organization must look like Organization/<id>")
    if client_id is not None and not CLIENT_ID.match(client_id):
        raise RegistrationError("client_id: 3 to 128 of A-Z a-z 0-9 - . _ ~")
    grant_types: list[str] = []
    if public:
        if jwks:
            raise RegistrationError("a public client has no keys; register it as confidential to use a JWKS")
        if not redirect_uris:
            raise RegistrationError("a public client needs at least one redirect URI")
        if any(s.startswith("system/") for s in scopes):
            raise RegistrationError("system/ scopes are for confidential backend clients")
        method, secret = "none", None
        grant_types = ["authorization_code", "refresh_token"]
    else:
        if jwks:
            check_jwks(jwks)
            method, secret = "private_key_jwt", None
        else:
            method, secret = "client_secret_basic", secret or hashing.new_token(32)
        if redirect_uris:
            grant_types += ["authorization_code", "refresh_token"]
        if jwks:
            grant_types.append("client_credentials")
        if not grant_types:
            raise RegistrationError("a confidential client needs redirect URIs (apps) or a JWKS (backend services)")
    client = Client(
        client_id=client_id or uuid.uuid4().hex,
        name=name,
        public=public,
        secret_hash=hashing.hash_secret(secret) if secret else None,
        token_endpoint_auth_method=method,
        redirect_uris=redirect_uris,
        scope=scoping.join(scopes),
        grant_types=grant_types,
        jwks=jwks or {},
        organization=organization,
    )
    try:
        records.add_client(client)
    except ValueError as exc:
        raise RegistrationError(str(exc)) from None
    return client, secret
