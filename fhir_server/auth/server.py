"""The authorization server of one app: Authlib's AuthorizationServer with SMART grants,
the JWT access-token generator, RFC 7662 introspection and RFC 7009 revocation, and the
check of bearer tokens on FHIR requests."""

from __future__ import annotations

import logging
import time
import uuid

from authlib.common.encoding import json_loads
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jws, jwt
from joserfc.errors import JoseError

from consent.principal import Principal
from consent.scopes import ScopeSet

from . import grants, hashing, scoping, urls
from .keys import SigningKey
from .models import IssuedToken, Records, RefreshToken, epoch, from_epoch, utcnow
from .providers import ProviderRegistry

log = logging.getLogger("fhir_server.auth")


class InvalidToken(Exception):
    """A bearer token that is malformed, badly signed, expired, for another audience, or revoked."""


class SmartTokenGenerator(JWTBearerTokenGenerator):
    """Signed JWT access tokens (RFC 9068) with the SMART claims, and the token response.

    The granted scope is decided here for every grant: the client's registration, then
    the account's role (consent.scopes.narrow), then what the server can provide. An
    empty result is invalid_scope. A refresh token comes only with offline_access or
    online_access; `patient` in the response only when launch/patient was granted.
    """

    def __init__(self, service: AuthService):
        self.service = service
        super().__init__(issuer=None, alg=service.key.alg, refresh_token_generator=self._refresh_token, expires_generator=self._expires_in)

    # The issuer follows the request (see urls); authlib's constructor assigns it once.
    issuer = property(lambda self: urls.issuer(self.service.settings), lambda self, value: None)

    def _refresh_token(self, client, grant_type, user, scope) -> str:
        return hashing.new_token(32)

    def _expires_in(self, client, grant_type) -> int:
        return self.service.settings.auth_access_token_seconds

    def get_jwks(self):
        return self.service.key.keyset

    def get_audiences(self, client, user, scope):
        return urls.fhir_base(self.service.settings)

    def get_jti(self, client, grant_type, user, scope) -> str:
        return uuid.uuid4().hex

    def get_auth_time(self, user):
        return getattr(user, "auth_time", None)

    def get_extra_claims(self, client, grant_type, user, scope):
        if user is None:
            claims = {"fhirUser": client.organization}
        else:
            claims = {"fhirUser": user.fhir_user, "patient": user.patient}
        return {k: v for k, v in claims.items() if v}

    def generate(self, grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
        role = user.role if user is not None else "system"
        granted = scoping.grantable(role, scope, client.scope)
        if not granted:
            raise InvalidScopeError("None of the requested scopes can be granted to this client and account.")
        include_refresh_token = (
            include_refresh_token and user is not None and scoping.refreshable(granted) and client.check_grant_type("refresh_token")
        )
        token = super().generate(grant_type, client, user, granted, expires_in, include_refresh_token)
        if user is not None and user.patient and "launch/patient" in granted.split():
            token["patient"] = user.patient
        return token


def _token_endpoint_methods(cls):
    cls.CLIENT_AUTH_METHODS = grants.USER_GRANT_AUTH_METHODS
    return cls


@_token_endpoint_methods
class Introspection(IntrospectionEndpoint):
    """RFC 7662. A client may introspect the tokens issued to it; others are inactive to it."""

    def query_token(self, token_string, token_type_hint):
        return self.server.service.find_token(token_string, token_type_hint)

    def check_permission(self, token, client, request):
        return token.check_client(client)

    def introspect_token(self, token):
        return self.server.service.introspection(token)


@_token_endpoint_methods
class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking a refresh token revokes its whole family (its access tokens too)."""

    def query_token(self, token_string, token_type_hint):
        return self.server.service.find_token(token_string, token_type_hint)

    def revoke_token(self, token, request):
        self.server.service.revoke(token)


class SmartAuthorizationServer(AuthorizationServer):
    def __init__(self, service: AuthService):
        super().__init__()
        self.service = service

    def query_client(self, client_id):
        return self.service.records.client(client_id)

    def save_token(self, token, request):
        self.service.save_token(token, request)


class AuthService:
    """Everything the auth views and authenticate() need, one per app."""

    def __init__(self, settings, records: Records, key: SigningKey, store=None):
        self.settings = settings
        self.records = records
        self.key = key
        self.store = store
        self.providers = ProviderRegistry()
        server = SmartAuthorizationServer(self)
        server.register_token_generator("default", SmartTokenGenerator(self))
        server.register_client_auth_method("private_key_jwt", grants.PrivateKeyJWT(self))
        server.register_grant(grants.AuthorizationCodeGrant, [grants.SmartCodeChallenge(required=True), grants.SmartOpenIDCode(self)])
        server.register_grant(grants.RefreshTokenGrant)
        server.register_grant(grants.ClientCredentialsGrant)
        server.register_endpoint(Introspection)
        server.register_endpoint(Revocation)
        self.server = server

    # -- issuing ---------------------------------------------------------------------------
    def save_token(self, token: dict, request) -> None:
        claims = _unverified_claims(token["access_token"])
        user = request.user
        client = request.client
        family = getattr(user, "family_id", None) or uuid.uuid4().hex
        self.records.add_access(
            jti=claims["jti"],
            family_id=family,
            client_id=client.get_client_id(),
            subject=claims["sub"],
            role=user.role if user is not None else "system",
            fhir_user=claims.get("fhirUser"),
            patient=claims.get("patient"),
            scope=claims.get("scope", ""),
            issued_at=from_epoch(claims["iat"]),
            expires_at=from_epoch(claims["exp"]),
        )
        if token.get("refresh_token") and user is not None:
            scope = claims.get("scope", "")
            offline = "offline_access" in scope.split()
            lifetime = self.settings.auth_refresh_token_seconds if offline else self.settings.auth_online_refresh_seconds
            now = utcnow()
            self.records.add_refresh(
                token["refresh_token"],
                family_id=family,
                client_id=client.get_client_id(),
                account_id=user.account.id,
                role=user.role,
                fhir_user=user.fhir_user,
                patient=user.patient,
                scope=scope,
                issued_at=now,
                expires_at=from_epoch(int(now.timestamp()) + lifetime),
            )

    def mint(self, *, subject: str, role: str, scope: str, client_id: str = "internal", fhir_user: str | None = None,
             patient: str | None = None, lifetime: int | None = None) -> str:
        """An access token issued without an OAuth2 flow, for in-process callers (seeding,
        tests). Needs a request context (for the URLs); recorded like any other token."""
        now = int(time.time())
        claims = {
            "iss": urls.issuer(self.settings),
            "aud": urls.fhir_base(self.settings),
            "sub": subject,
            "client_id": client_id,
            "scope": scope,
            "iat": now,
            "exp": now + (lifetime or self.settings.auth_access_token_seconds),
            "jti": uuid.uuid4().hex,
        }
        if fhir_user:
            claims["fhirUser"] = fhir_user
        if patient:
            claims["patient"] = patient
        value = jwt.encode({"alg": self.key.alg, "typ": "at+jwt"}, claims, self.key.keyset)
        self.records.add_access(
            jti=claims["jti"], client_id=client_id, subject=subject, role=role, fhir_user=fhir_user, patient=patient,
            scope=scope, issued_at=from_epoch(now), expires_at=from_epoch(claims["exp"]),
        )
        return value

    # -- checking ---------------------------------------------------------------------------
    def verify_access_token(self, value: str, usable: bool = True) -> tuple[dict, IssuedToken]:
        """The claims and the record of an access token of this server; InvalidToken otherwise.

        usable: also refuse a revoked token (authentication); introspection and revocation
        look the record up whatever its state. An expired token is refused either way."""
        try:
            token = jwt.decode(value, self.key.keyset, algorithms=[self.key.alg])
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(type(exc).__name__) from None
        if token.header.get("typ") != "at+jwt":
            raise InvalidToken("not an access token")  # an id_token is signed by the same key
        registry = jwt.JWTClaimsRegistry(
            leeway=0,
            iss={"essential": True, "value": urls.issuer(self.settings)},
            aud={"essential": True, "value": urls.fhir_base(self.settings)},
            exp={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )
        try:
            registry.validate(token.claims)
        except JoseError as exc:
            raise InvalidToken(type(exc).__name__) from None
        record = self.records.access(token.claims["jti"])
        if record is None or record.client_id != token.claims["client_id"]:
            raise InvalidToken("unknown token")
        if usable and record.is_revoked():
            raise InvalidToken("revoked")
        return token.claims, record

    def principal(self, value: str) -> Principal:
        claims, record = self.verify_access_token(value)
        return Principal(
            kind=record.role,
            subject=claims["sub"],
            fhir_user=claims.get("fhirUser"),
            client_id=claims["client_id"],
            scopes=ScopeSet.from_string(claims.get("scope")),
            patient=claims.get("patient"),
            token_id=claims["jti"],
        )

    def find_token(self, value: str, hint: str | None = None):
        """The record of an access token (a JWT of ours) or a refresh token, or None."""
        if not isinstance(value, str) or not value:
            return None
        if hint != "refresh_token" and value.count(".") == 2:
            try:
                _, record = self.verify_access_token(value, usable=False)
                return record
            except InvalidToken:
                pass
        return self.records.refresh(value)

    def introspection(self, token) -> dict:
        out = {
            "active": True,
            "scope": token.scope or "",
            "client_id": token.client_id,
            "exp": epoch(token.expires_at),
            "iat": epoch(token.issued_at),
            "iss": urls.issuer(self.settings),
        }
        if isinstance(token, IssuedToken):
            out.update(token_type="Bearer", sub=token.subject, aud=urls.fhir_base(self.settings), jti=token.jti)
        else:
            out.update(token_type="refresh_token", sub=token.account_id)
        if token.fhir_user:
            out["fhirUser"] = token.fhir_user
        if token.patient:
            out["patient"] = token.patient
        return out

    def revoke(self, token) -> None:
        if isinstance(token, RefreshToken):
            self.records.revoke_family(token.family_id)
        else:
            self.records.revoke_access(token.jti)

    # -- discovery ---------------------------------------------------------------------------
    def smart_configuration(self) -> dict:
        s = self.settings
        return {
            "issuer": urls.issuer(s),
            "jwks_uri": urls.endpoint(s, "jwks"),
            "authorization_endpoint": urls.endpoint(s, "authorize"),
            "token_endpoint": urls.endpoint(s, "token"),
            "introspection_endpoint": urls.endpoint(s, "introspect"),
            "revocation_endpoint": urls.endpoint(s, "revoke"),
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "response_types_supported": ["code"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"],
            "token_endpoint_auth_signing_alg_values_supported": list(grants.ASSERTION_ALGS),
            "id_token_signing_alg_values_supported": [self.key.alg],
            "scopes_supported": SCOPES_SUPPORTED,
            "code_challenge_methods_supported": ["S256"],
            "capabilities": CAPABILITIES,
        }

    def capability_security(self) -> dict:
        """CapabilityStatement.rest[0].security for this server (SMART App Launch 2.0, 4.2)."""
        s = self.settings
        return capability_security(
            urls.endpoint(s, "authorize"), urls.endpoint(s, "token"), urls.endpoint(s, "introspect"), urls.endpoint(s, "revoke")
        )


SCOPES_SUPPORTED = [
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.cruds",
    "user/*.cruds",
    "system/*.cruds",
    "patient/*.read",
    "patient/*.write",
    "user/*.read",
    "user/*.write",
    "system/*.read",
    "system/*.write",
]
CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "context-standalone-patient",
    "sso-openid-connect",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
]


def capability_security(authorize: str, token: str, introspect: str, revoke: str) -> dict:
    return {
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "authorize", "valueUri": authorize},
                    {"url": "token", "valueUri": token},
                    {"url": "introspect", "valueUri": introspect},
                    {"url": "revoke", "valueUri": revoke},
                ],
            }
        ],
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "description": "SMART App Launch 2.0: bearer JWT access tokens; discovery at [base]/.well-known/smart-configuration",
    }


def _unverified_claims(value: str) -> dict:
    """The payload of a JWT this server has just signed itself."""
    return json_loads(jws.extract_compact(value.encode()).payload)
