"""SMART Backend Services: client_credentials with private_key_jwt assertions."""

from __future__ import annotations

import uuid

import pytest

from consent.principal import Principal
from fhir_server.auth.clients import RegistrationError, register_client

from .conftest import (
    TOKEN_URL,
    add_backend_client,
    assertion,
    claims_of,
    ec384_key,
    principal_or_error,
    public_jwks,
    rsa_key,
    wire_fhir,
)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def cc(client, token: str, scope: str = "system/*.rs"):
    return client.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "scope": scope, "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": token},
    )


@pytest.fixture(scope="module")
def key():
    return rsa_key()


def test_rs384_assertion_gets_a_system_token(app, svc, key):
    add_backend_client(svc, key)
    c = app.test_client()
    r = cc(c, assertion(key, "hospital-1"), scope="system/*.rs system/Observation.cruds system/Patient.cruds openid offline_access")
    assert r.status_code == 200, r.get_data(as_text=True)
    tok = r.get_json()
    assert tok["token_type"] == "Bearer" and "refresh_token" not in tok and "id_token" not in tok
    assert tok["scope"] == "system/*.rs system/Observation.cruds"  # narrowed: registration and the system role
    claims = claims_of(tok["access_token"])
    assert claims["sub"] == "hospital-1" and claims["client_id"] == "hospital-1" and claims["fhirUser"] == "Organization/org-1"
    p = principal_or_error(app, tok["access_token"])
    assert isinstance(p, Principal) and p.kind == "system" and p.fhir_user == "Organization/org-1" and p.subject == "hospital-1"


def test_es384_assertion(app, svc):
    key = ec384_key()
    add_backend_client(svc, key, client_id="lab-1", scope="system/Observation.cruds", kid="ec-1")
    r = cc(app.test_client(), assertion(key, "lab-1", alg="ES384", kid="ec-1"), scope="system/Observation.crs")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["scope"] == "system/Observation.crs"


def test_wrong_key_is_invalid_client(app, svc, key):
    add_backend_client(svc, key)
    r = cc(app.test_client(), assertion(rsa_key(), "hospital-1"))
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


def test_replayed_jti_is_refused(app, svc, key):
    add_backend_client(svc, key)
    c = app.test_client()
    token = assertion(key, "hospital-1", jti="same-jti")
    assert cc(c, token).status_code == 200
    r = cc(c, token)
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"
    r = cc(c, assertion(key, "hospital-1", jti="same-jti"))
    assert r.status_code == 401


def test_wrong_aud_is_refused(app, svc, key):
    add_backend_client(svc, key)
    c = app.test_client()
    for aud in ("http://localhost/fhir", "https://other.example.org/auth/token"):
        r = cc(c, assertion(key, "hospital-1", aud=aud))
        assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


def test_other_algorithms_and_lifetimes_are_refused(app, svc, key):
    add_backend_client(svc, key)
    c = app.test_client()
    assert cc(c, assertion(key, "hospital-1", alg="RS256")).status_code == 401
    assert cc(c, assertion(key, "hospital-1", exp_in=3600)).status_code == 401  # more than five minutes ahead
    assert cc(c, assertion(key, "hospital-1", exp_in=-120)).status_code == 401  # expired


def test_unknown_client_and_scope_outside_registration(app, svc, key):
    add_backend_client(svc, key)
    c = app.test_client()
    assert cc(c, assertion(key, "nobody")).status_code == 401
    r = cc(c, assertion(key, "hospital-1"), scope="user/*.rs patient/*.rs")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_scope"


def test_client_credentials_needs_an_assertion(app, svc, key):
    from .conftest import add_secret_client

    _, secret = add_secret_client(svc, scope="system/*.rs user/*.rs")
    r = app.test_client().post("/auth/token", data={"grant_type": "client_credentials", "scope": "system/*.rs",
                                                     "client_id": "app-conf", "client_secret": secret})
    assert r.status_code in (400, 401) and r.get_json()["error"] in ("invalid_client", "unauthorized_client")


def test_registration_checks(svc, key):
    jwks = public_jwks(key, "k1")
    with pytest.raises(RegistrationError):
        register_client(svc.records, name="x", public=False, scope="system/*.rs", jwks={"keys": [key.as_dict(private=True)]})
    with pytest.raises(RegistrationError):
        register_client(svc.records, name="x", public=True, scope="system/*.rs", redirect_uris=["https://a.example/cb"])
    with pytest.raises(RegistrationError):
        register_client(svc.records, name="x", public=True, scope="patient/*.rs")  # no redirect URI
    with pytest.raises(RegistrationError):
        register_client(svc.records, name="x", public=True, scope="patient/*.rs", redirect_uris=["http://evil.example/cb"])
    with pytest.raises(RegistrationError):
        register_client(svc.records, name="x", public=False, scope="nonsense/*.rs", jwks=jwks)
    with pytest.raises(RegistrationError):
        register_client(svc.records, name="x", public=False, scope="system/*.rs", jwks=jwks, organization="Patient/1")
    client, secret = register_client(svc.records, name="x", public=False, scope="system/*.rs", jwks=jwks, client_id="dup-1")
    assert secret is None and client.grant_types == ["client_credentials"] and client.token_endpoint_auth_method == "private_key_jwt"
    with pytest.raises(RegistrationError):
        register_client(svc.records, name="x", public=False, scope="system/*.rs", jwks=jwks, client_id="dup-1")


def test_token_endpoint_url_follows_base_url(make_app, key):
    app = make_app(base_url="https://fhir.example.ru/fhir")
    svc = app.extensions["fhir_auth"]
    add_backend_client(svc, key)
    c = app.test_client()
    conf = c.get("/.well-known/smart-configuration").get_json()
    assert conf["token_endpoint"] == "https://fhir.example.ru/auth/token"
    assert cc(c, assertion(key, "hospital-1", aud=TOKEN_URL)).status_code == 401
    r = cc(c, assertion(key, "hospital-1", aud="https://fhir.example.ru/auth/token", jti=uuid.uuid4().hex))
    assert r.status_code == 200
    assert claims_of(r.get_json()["access_token"])["aud"] == "https://fhir.example.ru/fhir"


def test_hospital_system_sees_what_its_organisation_is_granted(app, svc, key):
    """A backend client acts for its Organization: it reads the data of patients whose Consents name
    that Organization, within its scopes, and nothing of anyone else - over HTTP with a real token."""
    from fhir_server.app import internal_client

    from tests.conftest import FHIRClient
    from tests.consent._world import build, consent, put

    seed = FHIRClient(internal_client(app))
    build(app, seed)
    put(seed, {"resourceType": "Organization", "id": "org-1", "name": "ГБУЗ Больница №1"})
    put(seed, consent("c-pa", "pa", actor="Organization/org-1"))
    put(seed, consent("c-pb", "pb", actor="Organization/org-2"))
    wire_fhir(app)  # build() switched the app to the open principal for its writes
    add_backend_client(svc, key)
    api = app.test_client()
    tok = cc(api, assertion(key, "hospital-1"), scope="system/*.rs").get_json()["access_token"]
    auth = {"Authorization": f"Bearer {tok}"}
    r = api.get("/fhir/Observation?_count=50", headers=auth)
    assert r.status_code == 200, r.get_data(as_text=True)
    ids = {e["resource"]["id"] for e in r.get_json()["entry"]}
    assert ids == {"obs-pa-0", "obs-pa-1", "obs-pa-2"} and r.get_json()["total"] == 3
    assert api.get("/fhir/Patient/pb", headers=auth).status_code == 404
    assert api.get("/fhir/Organization/org-1", headers=auth).status_code == 200  # directory data
    # Its scopes are read-only: a write is refused before any Consent is looked at.
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/pa"}}
    assert api.post("/fhir/Observation", json=obs, headers={**auth, "Content-Type": "application/fhir+json"}).status_code == 403
