"""Authlib grants and extensions, fitted to SMART App Launch 2.0.

* authorization_code: PKCE with S256 only, required of public clients at the
  authorization endpoint; `aud` must be this server's FHIR base URL; a code is used
  once (a second redemption revokes what the first one got).
* refresh_token: rotation on every use; a rotated token presented again revokes the
  whole token family.
* client_credentials: SMART Backend Services, private_key_jwt client assertions only
  (RS384/ES384, `aud` = the token endpoint, `jti` never twice).
* OpenID Connect: an id_token for `openid` (sub, fhirUser, iss, aud = client_id, exp,
  iat, nonce), signed with the server's key.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from . import urls
from .models import Account, AuthorizationCode, RefreshToken, utcnow

log = logging.getLogger("fhir_server.auth")

# Client authentication methods the token, introspection and revocation endpoints accept.
USER_GRANT_AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"]
ASSERTION_ALGS = ["RS384", "ES384"]
MAX_ASSERTION_LIFETIME = 300  # SMART Backend Services: exp no more than five minutes ahead


@dataclass
class GrantUser:
    """The resource owner of a grant: the signed-in account and the launch context."""

    account: Account
    patient: str | None = None  # launch context patient id
    scope: str | None = None  # the scope approved on the consent page
    family_id: str | None = None  # token family of a redeemed code or refresh token
    auth_time: int | None = None

    def get_user_id(self) -> str:
        return self.account.id

    @property
    def role(self) -> str:
        return self.account.role

    @property
    def fhir_user(self) -> str | None:
        return self.account.fhir_user


class _ServiceGrant:
    @property
    def service(self):
        return self.server.service


class AuthorizationCodeGrant(_ServiceGrant, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_GRANT_AUTH_METHODS

    def validate_authorization_request(self):
        redirect_uri = super().validate_authorization_request()
        # SMART: `aud` names the FHIR server the app means to talk to; a token for any
        # other resource server is refused (it could be a phishing server's base URL).
        aud = self.request.payload.data.get("aud")
        if not urls.same_url(aud, urls.fhir_base(self.service.settings)):
            raise InvalidRequestError(
                "'aud' must be this server's FHIR base URL", redirect_uri=redirect_uri, state=self.request.payload.state
            )
        return redirect_uri

    def save_authorization_code(self, code, request):
        user: GrantUser = request.user
        data = request.payload.data
        settings = self.service.settings
        self.service.records.add_code(
            code,
            client_id=request.client.get_client_id(),
            account_id=user.account.id,
            redirect_uri=request.payload.redirect_uri,
            scope=user.scope if user.scope is not None else (request.scope or ""),
            patient=user.patient,
            nonce=data.get("nonce"),
            auth_time=user.auth_time,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            family_id=uuid.uuid4().hex,
            expires_at=utcnow() + timedelta(seconds=settings.auth_code_seconds),
        )

    def query_authorization_code(self, code, client):
        record = self.service.records.code(code)
        if record is None or record.client_id != client.get_client_id() or record.is_expired():
            return None
        if record.used:
            # RFC 6749 4.1.2: a code used twice revokes what was issued for it.
            log.warning("authorization code presented twice (client %s): its tokens are revoked", record.client_id)
            self.service.records.revoke_family(record.family_id, compromised=True)
            return None
        return record

    def delete_authorization_code(self, authorization_code):
        pass  # redeemed (marked used) in authenticate_user, atomically

    def authenticate_user(self, authorization_code: AuthorizationCode):
        records = self.service.records
        if not records.claim_code(authorization_code):
            records.revoke_family(authorization_code.family_id, compromised=True)
            raise InvalidGrantError("The authorization code was already used.")
        account = records.account(authorization_code.account_id)
        if account is None or account.disabled:
            raise InvalidGrantError("The account is no longer active.")
        return GrantUser(
            account,
            patient=authorization_code.patient,
            scope=authorization_code.scope,
            family_id=authorization_code.family_id,
            auth_time=authorization_code.auth_time,
        )


class RefreshTokenGrant(_ServiceGrant, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = USER_GRANT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        records = self.service.records
        record = records.refresh(refresh_token)
        if record is None or record.revoked or record.is_expired():
            return None
        if record.rotated:
            log.warning("a rotated refresh token was presented again (client %s): its token family is revoked", record.client_id)
            records.revoke_family(record.family_id, compromised=True)
            return None
        return record

    def authenticate_user(self, refresh_token: RefreshToken):
        records = self.service.records
        # Rotation happens here, after the request is fully validated, so a refused
        # request (a wider scope, say) does not use the token up. Losing the race to a
        # concurrent use of the same token is reuse too.
        if not records.claim_refresh(refresh_token):
            records.revoke_family(refresh_token.family_id, compromised=True)
            raise InvalidGrantError("The refresh token was already used.")
        account = records.account(refresh_token.account_id)
        if account is None or account.disabled:
            records.revoke_family(refresh_token.family_id)
            raise InvalidGrantError("The account is no longer active.")
        return GrantUser(account, patient=refresh_token.patient, family_id=refresh_token.family_id)

    def revoke_old_credential(self, refresh_token):
        pass  # rotated in authenticate_user


class ClientCredentialsGrant(_ServiceGrant, grants.ClientCredentialsGrant):
    """SMART Backend Services: a hospital system authenticates with a signed assertion."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]


class SmartCodeChallenge(CodeChallenge):
    """PKCE: S256 only; required of public clients at the authorization endpoint already."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": CodeChallenge.CODE_CHALLENGE_METHODS["S256"]}

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if not challenge and grant.request.client.public:
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        if challenge and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        return super().validate_code_challenge(grant, redirect_uri)


class SmartOpenIDCode(OpenIDCode):
    """id_token for `openid`: sub, fhirUser (with the fhirUser scope), iss, aud, exp, iat, nonce."""

    def __init__(self, service):
        super().__init__(require_nonce=False)
        self.service = service

    def exists_nonce(self, nonce, request):
        return self.service.records.nonce_used(request.payload.client_id, nonce)

    def resolve_client_private_key(self, client):
        return self.service.key.keyset

    def get_client_algorithm(self, client):
        return self.service.key.alg

    def get_encode_header(self, client):
        return {"alg": self.service.key.alg, "kid": self.service.key.kid, "typ": "JWT"}

    def get_client_claims(self, client):
        now = int(time.time())
        return {
            "iss": urls.issuer(self.service.settings),
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + self.service.settings.auth_access_token_seconds,
        }

    def generate_user_info(self, user: GrantUser, scope):
        info = {"sub": user.get_user_id()}
        if user.fhir_user and "fhirUser" in (scope or "").split():
            info["fhirUser"] = urls.fhir_base(self.service.settings) + "/" + user.fhir_user
        return info


class PrivateKeyJWT(JWTBearerClientAssertion):
    """private_key_jwt client authentication (RFC 7523, SMART Backend Services)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, service):
        super().__init__(validate_jti=True, leeway=30)
        self.service = service

    def __call__(self, query_client, request):
        try:
            return super().__call__(query_client, request)
        except InvalidClientError as exc:
            exc.status_code = 401
            raise

    def get_audiences(self):
        return [urls.endpoint(self.service.settings, "token")]

    def resolve_client_public_key(self, client):
        if not client.jwks:
            raise InvalidClientError(description="The client has no registered keys.")
        try:
            return KeySet.import_key_set(client.jwks)
        except (JoseError, ValueError, TypeError, KeyError):
            raise InvalidClientError(description="The client's registered keys are unusable.") from None

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except (JoseError, ValueError) as exc:
            log.info("client assertion refused: %s", type(exc).__name__)
            raise InvalidClientError(description="The client assertion is not signed by a registered key (RS384 or ES384).") from None
        exp = token.claims.get("exp")
        if isinstance(exp, int) and exp > time.time() + MAX_ASSERTION_LIFETIME + self.leeway:
            raise InvalidClientError(description="The client assertion expires too late (at most five minutes ahead).")
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims, jti):
        if not isinstance(jti, str) or not jti:
            return False
        return self.service.records.use_assertion(claims["sub"], jti, claims.get("exp"))
