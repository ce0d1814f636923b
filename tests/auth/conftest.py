"""Fixtures of the SMART authorization server tests: an app per test (its own database),
accounts, clients, and a browser-like walk through sign-in, consent and token exchange."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from fhir_server.app import create_app
from fhir_server.auth import authenticator, hashing
from fhir_server.auth.clients import register_client
from tests.conftest import make_settings

BASE = "http://localhost/fhir"
TOKEN_URL = "http://localhost/auth/token"
REDIRECT = "https://app.example.org/callback"
PASSWORD = "Correct-horse-battery-9"  # meets the password policy (passwords.py)
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """Argon2id with small costs: the tests check the flows, not the hash's cost."""
    monkeypatch.setattr(hashing, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def build_app(**overrides):
    settings = make_settings(**{"auth": "smart", **overrides})
    app = create_app(settings)
    return app


def close_app(app) -> None:
    settings = app.config["FHIR_SETTINGS"]
    store = app.config["FHIR_STORE"]
    if not settings.embedded:
        store.engine.client.drop_database(settings.db_name)
    if "fhir_auth" in app.extensions:
        app.extensions["fhir_auth"].records.close()
    store.engine.close()


@pytest.fixture
def make_app():
    made = []

    def _make(**overrides):
        app = build_app(**overrides)
        made.append(app)
        return app

    yield _make
    for app in made:
        close_app(app)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def svc(app):
    return app.extensions["fhir_auth"]


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def rsa_key() -> RSAKey:
    return RSAKey.import_key(rsa.generate_private_key(65537, 2048))


def ec384_key() -> ECKey:
    return ECKey.import_key(ec.generate_private_key(ec.SECP384R1()))


def public_jwks(key, kid: str) -> dict:
    return {"keys": [{**key.as_dict(private=False), "kid": kid}]}


def assertion(key, client_id: str, *, alg: str = "RS384", aud: str = TOKEN_URL, jti: str | None = None, kid: str = "k1",
              exp_in: int = 240) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + exp_in, "iat": now, "jti": jti or uuid.uuid4().hex}
    return jwt.encode({"alg": alg, "kid": kid, "typ": "JWT"}, claims, key, algorithms=[alg])


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    import json

    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def query_of(location: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def wire_fhir(app) -> None:
    """Let the FHIR endpoint check bearer tokens (create_app does so already with auth="smart";
    this undoes a test's own authenticator)."""
    app.config["FHIR_AUTHENTICATOR"] = authenticator(app.config["FHIR_SETTINGS"])


@dataclass
class Flow:
    """A browser and an app walking through the authorization code flow."""

    app: object
    client_id: str
    redirect_uri: str = REDIRECT

    def __post_init__(self):
        self.browser = self.app.test_client()
        self.api = self.app.test_client()

    # -- browser ---------------------------------------------------------------------------
    def csrf(self, html: str) -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', html)
        assert m, html
        return m.group(1)

    def sign_in(self, login: str, password: str = PASSWORD):
        page = self.browser.get("/auth/login")
        return self.browser.post("/auth/login", data={"login": login, "password": password, "csrf": self.csrf(page.get_data(as_text=True))})

    def authorize_url(self, scope: str, *, state: str = "st-1", challenge: str | None = None, aud: str = BASE, method: str = "S256",
                      redirect_uri: str | None = None, **extra) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri or self.redirect_uri,
            "scope": scope,
            "state": state,
            "aud": aud,
        }
        if challenge is not None:
            params["code_challenge"] = challenge
            params["code_challenge_method"] = method
        params.update(extra)
        return "/auth/authorize?" + urlencode(params)

    def consent(self, url: str, decision: str = "approve", **form):
        page = self.browser.get(url)
        assert page.status_code == 200, page.get_data(as_text=True)
        return self.browser.post(url, data={"csrf": self.csrf(page.get_data(as_text=True)), "decision": decision, **form})

    def code(self, login: str, scope: str, *, challenge: str | None, state: str = "st-1", **extra) -> str:
        """Sign in, approve and return the authorization code."""
        url = self.authorize_url(scope, state=state, challenge=challenge, **extra)
        r = self.browser.get(url)
        if r.status_code == 302 and "/auth/login" in r.headers["Location"]:
            r = self.sign_in(login)
            assert r.status_code == 302 and "/auth/authorize?" in r.headers["Location"], r.get_data(as_text=True)
        r = self.consent(url)
        assert r.status_code == 302, r.get_data(as_text=True)
        q = query_of(r.headers["Location"])
        assert q.get("state") == state
        assert "code" in q, q
        return q["code"]

    # -- app ------------------------------------------------------------------------------
    def token(self, data: dict, headers: dict | None = None):
        return self.api.post("/auth/token", data=data, headers=headers or {}, content_type=FORM)

    def exchange(self, code: str, verifier: str | None, **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri, "client_id": self.client_id}
        if verifier is not None:
            data["code_verifier"] = verifier
        data.update(extra)
        return self.token(data)

    def full(self, login: str, scope: str, **extra) -> dict:
        verifier, challenge = pkce_pair()
        code = self.code(login, scope, challenge=challenge, **extra)
        r = self.exchange(code, verifier)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()


def add_account(svc, login: str, role: str, fhir_user: str | None = None, password: str = PASSWORD, **kw):
    return svc.records.add_account(login, role, password, fhir_user=fhir_user, **kw)


def add_public_client(svc, scope: str = "openid fhirUser launch/patient offline_access patient/*.cruds user/*.cruds", client_id="app-public"):
    client, _ = register_client(svc.records, name="Test app", public=True, redirect_uris=[REDIRECT], scope=scope, client_id=client_id)
    return client


def add_secret_client(svc, scope: str = "openid fhirUser launch/patient offline_access patient/*.cruds user/*.cruds", client_id="app-conf"):
    client, secret = register_client(svc.records, name="Clinic app", public=False, redirect_uris=[REDIRECT], scope=scope, client_id=client_id)
    return client, secret


def add_backend_client(svc, key, client_id="hospital-1", scope="system/*.rs system/Observation.cruds", kid="k1"):
    client, _ = register_client(svc.records, name="Hospital system", public=False, scope=scope, jwks=public_jwks(key, kid),
                                organization="Organization/org-1", client_id=client_id)
    return client


@pytest.fixture
def world(app, svc):
    """A patient, a practitioner, an admin and a public client."""
    add_account(svc, "patient@example.org", "patient", "Patient/p1")
    add_account(svc, "doctor@example.org", "practitioner", "Practitioner/d1")
    add_account(svc, "admin@example.org", "admin")
    add_public_client(svc)
    return Flow(app, "app-public")


def principal_or_error(app, token: str | None, settings=None):
    """authenticate() on a request with this bearer token: the Principal, or the error key."""
    from fhir_server.auth import authenticate
    from fhir_server.errors import FHIRError

    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    with app.test_request_context("/fhir/Patient", headers=headers):
        try:
            return authenticate(__import__("flask").request, settings or app.config["FHIR_SETTINGS"])
        except FHIRError as err:
            return err.issues[0].key
