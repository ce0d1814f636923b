"""The ESIA client: the authorization request, the code exchange, the check of ESIA's
tokens and the person's data (/rs/prns/{oid}, ctts, docs).

Network discipline: every call has a timeout (FHIR_ESIA_TIMEOUT_SECONDS); a 5xx answer or
a connection error is retried FHIR_ESIA_RETRIES times with doubling backoff; a 4xx answer
and a read timeout are never retried (a code exchange must not run twice). Failures are
EsiaUnavailable (ESIA is down) or EsiaRefused (ESIA, or its answer, says no). Nothing of
the person, no token, code or secret is ever logged: only the endpoint's name and status.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import requests

from . import pki, protocol

log = logging.getLogger("fhir_server.esia")

LEEWAY_SECONDS = 60  # clock skew accepted on exp / nbf


class EsiaUnavailable(Exception):
    """ESIA did not answer usefully (down, timing out, 5xx after the retries)."""


class EsiaRefused(Exception):
    """ESIA refused, or its answer failed a check; `key` names the page text (esia.texts)."""

    def __init__(self, key: str, detail: str = ""):
        super().__init__(f"{key}: {detail}" if detail else key)
        self.key = key


@dataclass(frozen=True)
class EsiaConfig:
    url: str
    client_id: str
    signer: pki.Signer
    esia_certificate: pki.Certificate
    api: str = "v2"
    issuer: str | None = None
    scope: str = "openid fullname birthdate gender snils id_doc medical_doc contacts"
    redirect_uri: str | None = None
    timeout: float = 5.0
    retries: int = 2
    backoff: float = 0.5

    @property
    def expected_issuer(self) -> str:
        return self.issuer or self.url.rstrip("/") + "/"

    @classmethod
    def from_settings(cls, settings) -> EsiaConfig | None:
        """The configuration FHIR_ESIA_* describe; None when FHIR_ESIA_URL is unset."""
        if not settings.esia_url:
            return None
        missing = [name for name in ("esia_client_id", "esia_key", "esia_certificate", "esia_verify_certificate") if not getattr(settings, name)]
        if missing:
            raise ValueError("FHIR_ESIA_URL is set but these are not: " + ", ".join("FHIR_" + m.upper() for m in missing))
        if "openid" not in settings.esia_scope.split():
            raise ValueError("FHIR_ESIA_SCOPE must include openid")
        return cls(
            url=settings.esia_url.rstrip("/"),
            client_id=settings.esia_client_id,
            signer=pki.load_signer(settings.esia_key.get_secret_value(), settings.esia_certificate),
            esia_certificate=pki.load_certificate(settings.esia_verify_certificate),
            api=settings.esia_api,
            issuer=settings.esia_issuer,
            scope=settings.esia_scope,
            redirect_uri=settings.esia_redirect_uri,
            timeout=settings.esia_timeout_seconds,
            retries=settings.esia_retries,
            backoff=settings.esia_retry_backoff_seconds,
        )


@dataclass
class EsiaSignIn:
    """What one ESIA sign-in established (kept only in memory for the request)."""

    oid: str
    trusted: bool
    id_claims: dict
    person: dict = field(default_factory=dict)
    contacts: list = field(default_factory=list)
    documents: list = field(default_factory=list)


class EsiaClient:
    def __init__(self, config: EsiaConfig, sleep=time.sleep, clock=time.time):
        self.config = config
        self.sleep = sleep
        self.clock = clock
        self._local = threading.local()  # one requests.Session (connection pool) per thread

    @property
    def http(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # no proxies or .netrc from the environment: ESIA is called directly
        return session

    @property
    def api(self) -> protocol.Api:
        return protocol.API[self.config.api]

    # -- requests -------------------------------------------------------------------------------
    def authorization_url(self, state: str, redirect_uri: str) -> str:
        """The URL of ESIA's sign-in (v2/ac or legacy ac) for this state."""
        c = self.config
        params = {
            "client_id": c.client_id,
            "scope": c.scope,
            "timestamp": protocol.timestamp(self.clock()),
            "state": state,
            "redirect_uri": redirect_uri,
        }
        params["client_secret"] = self.api.secret(c.signer, params)
        params.update(response_type="code", access_type="online")
        if self.api.certificate_hash:
            params["client_certificate_hash"] = c.signer.certificate.hash
        return f"{c.url}{self.api.ac}?{urlencode(params)}"

    def logout_url(self, redirect_url: str) -> str:
        return f"{self.config.url}{protocol.LOGOUT_PATH}?{urlencode({'client_id': self.config.client_id, 'redirect_url': redirect_url})}"

    def exchange(self, code: str, redirect_uri: str) -> tuple[dict, dict, str]:
        """Redeem the code at v3/te (or legacy te): the checked id-token claims, access-token
        claims and the access token itself."""
        c = self.config
        state = str(uuid.uuid4())
        params = {
            "client_id": c.client_id,
            "code": code,
            "grant_type": "authorization_code",
            "token_type": "Bearer",
            "scope": c.scope,
            "timestamp": protocol.timestamp(self.clock()),
            "state": state,
            "redirect_uri": redirect_uri,
        }
        params["client_secret"] = self.api.secret(c.signer, params, with_code=True)
        if self.api.certificate_hash:
            params["client_certificate_hash"] = c.signer.certificate.hash
        r = self._call("token", "POST", c.url + self.api.te, data=params)
        if r.status_code != 200:
            raise EsiaRefused("esia-refused", f"token endpoint answered {r.status_code}")
        body = _json(r)
        if body.get("state") != state:
            raise EsiaRefused("esia-bad-token", "the token response does not echo our state")
        id_claims = self._check_id_token(body.get("id_token"))
        access_claims = self._check_access_token(body.get("access_token"))
        oid = str(access_claims.get("urn:esia:sbj_id", ""))
        if not oid.isdigit() or oid != str(id_claims.get("sub", "")):
            raise EsiaRefused("esia-bad-token", "the tokens name different persons")
        return id_claims, access_claims, body["access_token"]

    def _decode(self, token, sbt: str) -> dict:
        try:
            header, claims = protocol.jwt_decode(token, self.config.esia_certificate)
            if header.get("sbt", sbt) != sbt:
                raise protocol.TokenError(f"not an {sbt} token")
            if claims.get("iss") != self.config.expected_issuer:
                raise protocol.TokenError("wrong issuer")
            protocol.check_times(claims, self.clock(), LEEWAY_SECONDS)
        except protocol.TokenError as err:
            raise EsiaRefused("esia-bad-token", f"{sbt} token: {err}") from None
        return claims

    def _check_id_token(self, token) -> dict:
        claims = self._decode(token, "id")
        aud = claims.get("aud")
        if not (aud == self.config.client_id or (isinstance(aud, list) and self.config.client_id in aud)):
            raise EsiaRefused("esia-bad-token", "id token: wrong audience")
        if not claims.get("sub"):
            raise EsiaRefused("esia-bad-token", "id token: no subject")
        return claims

    def _check_access_token(self, token) -> dict:
        claims = self._decode(token, "access")
        if claims.get("client_id") != self.config.client_id:
            raise EsiaRefused("esia-bad-token", "access token: issued to another client")
        return claims

    def person(self, oid: str, access_token: str, id_claims: dict) -> EsiaSignIn:
        """The person record and its contacts and documents."""
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        base = self.config.url + protocol.PERSON_PATH.format(oid=oid)
        person = self._get_json("person", base, headers)
        parts = {name: self._get_json(name, f"{base}/{name}?embed=(elements)", headers, optional=True).get("elements") or []
                 for name in protocol.COLLECTIONS}
        subject = id_claims.get("urn:esia:sbj") or {}
        trusted = (isinstance(subject, dict) and subject.get("urn:esia:sbj:is_tru") is True) or person.get("trusted") is True
        return EsiaSignIn(oid=oid, trusted=trusted, id_claims=id_claims, person=person,
                          contacts=[e for e in parts["ctts"] if isinstance(e, dict)], documents=[e for e in parts["docs"] if isinstance(e, dict)])

    def _get_json(self, name: str, url: str, headers: dict, optional: bool = False) -> dict:
        """The JSON answer; an optional collection the person did not share (403) is empty."""
        r = self._call(name, "GET", url, headers=headers)
        if optional and r.status_code == 403:
            log.info("ESIA %s: not shared (403)", name)
            return {}
        if r.status_code != 200:
            raise EsiaRefused("esia-refused", f"{name} answered {r.status_code}")
        return _json(r)

    # -- network -------------------------------------------------------------------------------
    def _call(self, name: str, method: str, url: str, **kwargs) -> requests.Response:
        """One call with the timeout, retried on 5xx and connection errors only."""
        delay = self.config.backoff
        for attempt in range(self.config.retries + 1):
            last = attempt == self.config.retries
            try:
                r = self.http.request(method, url, timeout=self.config.timeout, allow_redirects=False, **kwargs)
            except requests.ConnectionError as exc:  # includes ConnectTimeout; nothing was processed
                log.warning("ESIA %s: %s (attempt %d)", name, type(exc).__name__, attempt + 1)
                if last:
                    raise EsiaUnavailable(name) from None
            except requests.Timeout:  # read timeout: ESIA may have acted on it, never repeat
                log.warning("ESIA %s: no answer within %.1f s", name, self.config.timeout)
                raise EsiaUnavailable(name) from None
            except requests.RequestException as exc:
                log.warning("ESIA %s: %s", name, type(exc).__name__)
                raise EsiaUnavailable(name) from None
            else:
                if r.status_code < 500:
                    return r
                log.warning("ESIA %s answered %d (attempt %d)", name, r.status_code, attempt + 1)
                if last:
                    raise EsiaUnavailable(name)
            self.sleep(delay)
            delay *= 2
        raise EsiaUnavailable(name)  # not reached


def _json(r: requests.Response) -> dict:
    try:
        body = r.json()
    except ValueError:
        raise EsiaRefused("esia-refused", "the answer is not JSON") from None
    if not isinstance(body, dict):
        raise EsiaRefused("esia-refused", "the answer is not a JSON object")
    return body
