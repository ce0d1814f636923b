"""End-to-end fixtures: the FHIR server and the ESIA emulator, each a werkzeug server on a
127.0.0.1 ephemeral port in a thread, and a browser (requests.Session) walking the SMART
authorization code flow through "Войти через Госуслуги". Keys and certificates are made
per test session; none is in the repository."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import secrets
import time
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from fhir_server.app import create_app, internal_client
from fhir_server.auth.clients import register_client
from fhir_server.esia import pki
from fhir_server.esia.emulator import create_emulator, make_emulator
from fhir_server.esia.stand import run_in_thread
from tests.conftest import make_settings

CLIENT_ID = "FHIRSRV-TEST"
APP_ID = "card-app"
REDIRECT = "https://app.example.org/callback"
APP_SCOPE = "openid fhirUser launch/patient online_access patient/*.rs user/*.rs"
FHIR_JSON = {"Content-Type": "application/fhir+json"}

# oids of the built-in persons (fhir_server/esia/persons.py)
PETROVA, SIDOROV, SMIRNOVA = "1000299654", "1000299655", "1000299656"


@pytest.fixture(scope="session")
def keys():
    """Client keys (GOST and RSA) and a second GOST key that ESIA does not know."""
    return {"gost": pki.self_signed("gost", CLIENT_ID), "rsa": pki.self_signed("rsa", CLIENT_ID),
            "other": pki.self_signed("gost", "someone else")}


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclasses.dataclass
class Stand:
    emulator: object
    esia_url: str
    app: object
    url: str
    browser: requests.Session

    @property
    def svc(self):
        return self.app.extensions["fhir_auth"]

    @property
    def provider(self):
        return self.svc.providers.get("esia")

    def admin(self):
        from consent.principal import Principal

        return internal_client(self.app, Principal("admin", subject="test", client_id="test"))

    def csrf(self, html: str) -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', html)
        assert m, html
        return m.group(1)

    def get(self, url: str, **kw):
        return self.browser.get(urljoin(self.url, url), allow_redirects=False, timeout=10, **kw)

    # -- the walk ---------------------------------------------------------------------------
    def authorize_url(self, challenge: str, scope: str = APP_SCOPE, state: str = "app-state-1") -> str:
        return "/auth/authorize?" + urlencode({"response_type": "code", "client_id": APP_ID, "redirect_uri": REDIRECT, "scope": scope,
                                               "state": state, "aud": self.url + "/fhir", "code_challenge": challenge,
                                               "code_challenge_method": "S256"})

    def to_esia(self, challenge: str, scope: str = APP_SCOPE) -> requests.Response:
        """From the app's authorization request to ESIA's answer to our v2/ac redirect."""
        r = self.get(self.authorize_url(challenge, scope))
        assert r.status_code == 302 and r.headers["Location"].endswith("/auth/login"), r.text
        page = self.get("/auth/login")
        assert page.status_code == 200 and "Войти через Госуслуги" in page.text, page.text
        href = re.search(r'href="([^"]*/auth/login/esia)"', page.text).group(1)
        r = self.get(href)
        assert r.status_code == 302 and r.headers["Location"].startswith(self.esia_url), r.text
        return self.browser.get(r.headers["Location"], allow_redirects=False, timeout=10)

    def pick(self, page: requests.Response, oid: str) -> requests.Response:
        """Choose a test person on the emulator's page: its redirect back to our callback."""
        assert page.status_code == 200, page.text
        rid = re.search(r'name="request" value="([^"]+)"', page.text).group(1)
        r = self.browser.post(self.esia_url + "/aas/oauth2/emulator/select", data={"request": rid, "oid": oid}, allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text
        return r

    def sign_in(self, oid: str, scope: str = APP_SCOPE):
        """Through ESIA and back: (our answer to the callback, PKCE verifier)."""
        verifier, challenge = pkce_pair()
        back = self.pick(self.to_esia(challenge, scope), oid)
        return self.browser.get(back.headers["Location"], allow_redirects=False, timeout=10), verifier

    def consent(self, after_callback: requests.Response):
        """The consent page after the callback, approved: (page, app redirect)."""
        assert after_callback.status_code == 302, after_callback.text
        url = after_callback.headers["Location"]
        assert "/auth/authorize?" in url
        page = self.get(url)
        assert page.status_code == 200, page.text
        r = self.browser.post(urljoin(self.url, url), data={"csrf": self.csrf(page.text), "decision": "approve"}, allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["Location"].startswith(REDIRECT), r.text
        return page, r

    def token(self, app_redirect: requests.Response, verifier: str) -> dict:
        q = query_of(app_redirect.headers["Location"])
        r = requests.post(self.url + "/auth/token", data={"grant_type": "authorization_code", "code": q["code"], "redirect_uri": REDIRECT,
                                                          "client_id": APP_ID, "code_verifier": verifier}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def full(self, oid: str, scope: str = APP_SCOPE):
        back, verifier = self.sign_in(oid, scope)
        page, redirect = self.consent(back)
        return page, self.token(redirect, verifier)

    def fhir(self, path: str, token: str):
        return requests.get(self.url + "/fhir/" + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.fixture
def make_stand(keys):
    servers, apps = [], []

    def _make(*, client="gost", registered=None, token_kind="rsa", api="v2", signer_override=None, **settings):
        registered_cert = (registered or keys[client]).certificate
        emulator = make_emulator({CLIENT_ID: registered_cert}, token_kind=token_kind)
        esia_server, esia_url = run_in_thread(create_emulator(emulator))
        servers.append(esia_server)
        signer = keys[client]
        options = dict(auth="smart", esia_url=esia_url, esia_client_id=CLIENT_ID, esia_key=signer.pkcs8_pem(),
                       esia_certificate=signer.certificate.pem, esia_verify_certificate=emulator.signer.certificate.pem,
                       esia_api=api, esia_timeout_seconds=2.0, esia_retries=2, esia_retry_backoff_seconds=0.01)
        options.update(settings)
        app = create_app(make_settings(**options))
        apps.append(app)
        register_client(app.extensions["fhir_auth"].records, name="Card app", public=True, redirect_uris=[REDIRECT], scope=APP_SCOPE,
                        client_id=APP_ID)
        server, url = run_in_thread(app)
        servers.append(server)
        if signer_override is not None:
            provider = app.extensions["fhir_auth"].providers.get("esia")
            provider.client.config = dataclasses.replace(provider.client.config, signer=signer_override)
        return Stand(emulator, esia_url, app, url, requests.Session())

    yield _make
    for server in servers:
        server.shutdown()
    for app in apps:
        app.extensions["fhir_auth"].records.close()
        app.config["FHIR_STORE"].engine.close()


@pytest.fixture
def stand(make_stand):
    return make_stand()


def wait_until(predicate, seconds: float = 5.0):
    end = time.time() + seconds
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False
