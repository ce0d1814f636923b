"""Discovery, the signing key, the CapabilityStatement security block, the demo."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import KeySet

from fhir_server.auth.keys import SigningKeyError, load_signing_key

from .conftest import Flow, claims_of, principal_or_error


def test_smart_configuration(app):
    c = app.test_client()
    r = c.get("/.well-known/smart-configuration")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    conf = r.get_json()
    assert conf["issuer"] == "http://localhost/auth"
    assert conf["authorization_endpoint"] == "http://localhost/auth/authorize"
    assert conf["token_endpoint"] == "http://localhost/auth/token"
    assert conf["introspection_endpoint"] == "http://localhost/auth/introspect"
    assert conf["revocation_endpoint"] == "http://localhost/auth/revoke"
    assert conf["jwks_uri"] == "http://localhost/auth/jwks"
    assert conf["code_challenge_methods_supported"] == ["S256"]
    assert set(conf["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert "private_key_jwt" in conf["token_endpoint_auth_methods_supported"]
    assert conf["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    for cap in ("launch-standalone", "client-public", "client-confidential-asymmetric", "permission-v2", "permission-v1",
                "context-standalone-patient", "sso-openid-connect", "permission-offline"):
        assert cap in conf["capabilities"]
    assert "launch-ehr" not in conf["capabilities"]


def test_smart_configuration_under_fhir_beats_the_fhir_catch_all(app):
    c = app.test_client()
    r = c.get("/fhir/.well-known/smart-configuration")
    assert r.status_code == 200 and r.get_json() == c.get("/.well-known/smart-configuration").get_json()
    adapter = app.url_map.bind("localhost")
    assert adapter.match("/fhir/.well-known/smart-configuration")[0] == "smart.smart_configuration_fhir"
    assert adapter.match("/fhir/Patient/1")[0] == "fhir.fhir"


def test_discovery_follows_configured_base_url(make_app):
    app = make_app(base_url="https://fhir.example.ru/fhir")
    conf = app.test_client().get("/fhir/.well-known/smart-configuration").get_json()
    assert conf["issuer"] == "https://fhir.example.ru/auth" and conf["token_endpoint"] == "https://fhir.example.ru/auth/token"
    app = make_app(base_url="https://fhir.example.ru/fhir", auth_issuer="https://id.example.ru/smart/")
    conf = app.test_client().get("/.well-known/smart-configuration").get_json()
    assert conf["issuer"] == "https://id.example.ru/smart" and conf["authorization_endpoint"] == "https://id.example.ru/smart/authorize"


def test_capability_security_block(app, svc):
    with app.test_request_context("/fhir/metadata"):
        sec = svc.capability_security()
    assert sec["service"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}
    uris = {e["url"]: e["valueUri"] for e in sec["extension"][0]["extension"]}
    assert sec["extension"][0]["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert uris == {"authorize": "http://localhost/auth/authorize", "token": "http://localhost/auth/token",
                    "introspect": "http://localhost/auth/introspect", "revoke": "http://localhost/auth/revoke"}


def _pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def test_configured_rsa_key_from_a_file(make_app, tmp_path):
    pem = tmp_path / "signing.pem"
    pem.write_text(_pem(rsa.generate_private_key(65537, 2048)))
    app = make_app(auth_signing_key=str(pem))
    svc = app.extensions["fhir_auth"]
    assert svc.key.alg == "RS256" and not svc.key.ephemeral
    jwks = app.test_client().get("/auth/jwks").get_json()
    assert jwks["keys"][0]["kty"] == "RSA" and "d" not in jwks["keys"][0] and jwks["keys"][0]["kid"] == svc.key.kid
    from fhir_server.auth import mint_token

    token = mint_token(app, subject="x", role="staff", scope="user/*.rs")
    assert jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"]).header["kid"] == svc.key.kid
    assert principal_or_error(app, token).kind == "staff"


def test_configured_ec_key_as_text():
    key = load_signing_key(_pem(ec.generate_private_key(ec.SECP256R1())))
    assert key.alg == "ES256" and not key.ephemeral


def test_ephemeral_key_warns(caplog):
    key = load_signing_key(None)
    assert key.ephemeral and key.alg == "ES256"
    assert "FHIR_AUTH_SIGNING_KEY is not set" in caplog.text


@pytest.mark.parametrize("value", ["-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----", "/no/such/key.pem"])
def test_unusable_keys(value):
    with pytest.raises(SigningKeyError):
        load_signing_key(value)


def test_small_or_odd_keys_are_refused():
    with pytest.raises(SigningKeyError):
        load_signing_key(_pem(rsa.generate_private_key(65537, 1024)))
    with pytest.raises(SigningKeyError):
        load_signing_key(_pem(ec.generate_private_key(ec.SECP384R1())))


def test_auth_off_warns_loudly(make_app, caplog):
    make_app(auth="off")
    assert "FHIR_AUTH=off: NO AUTHORIZATION" in caplog.text


def test_demo_accounts_and_clients(make_app, capsys):
    app = make_app(demo=True, demo_password="Demo-pass-1", demo_client_secret="demo-secret-1")
    err = capsys.readouterr().err
    assert "patient@demo.example" in err and "Demo-pass-1" not in err and "demo-secret-1" not in err
    svc = app.extensions["fhir_auth"]
    from seed.demo import DEMO_ACCOUNTS, DEMO_CONFIDENTIAL_CLIENT, DEMO_PUBLIC_CLIENT, DEMO_REDIRECT_URIS

    for login, role, fhir_user, _ in DEMO_ACCOUNTS:
        a = svc.records.account_by_login(login)
        assert a.role == role and a.fhir_user == fhir_user
    roles = sorted(a[1] for a in DEMO_ACCOUNTS)
    assert roles == ["admin", "patient", "practitioner", "practitioner", "staff"]
    from fhir_server.app import internal_client

    assert app.test_client().get("/fhir/Practitioner/demo-practitioner-2").status_code == 401
    assert internal_client(app).get("/fhir/Practitioner/demo-practitioner-2").status_code == 200
    assert svc.records.client(DEMO_PUBLIC_CLIENT).public
    assert svc.records.client(DEMO_CONFIDENTIAL_CLIENT).check_client_secret("demo-secret-1")
    flow = Flow(app, DEMO_PUBLIC_CLIENT, redirect_uri=DEMO_REDIRECT_URIS[0])
    r = flow.sign_in("patient@demo.example", "Demo-pass-1")
    assert r.status_code == 302
    tok = flow.full("patient@demo.example", "launch/patient openid fhirUser patient/*.rs")
    assert tok["patient"] == "demo-patient-1" and claims_of(tok["access_token"])["fhirUser"] == "Patient/demo-patient-1"


def test_demo_generates_and_prints_passwords_once(make_app, capsys):
    app = make_app(demo=True)
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "doctor2@demo.example" in x)
    password = line.rsplit("password: ", 1)[1].strip()
    flow = Flow(app, "demo-public-app")
    assert flow.sign_in("doctor2@demo.example", password).status_code == 302
    secret_line = next(x for x in err.splitlines() if "demo-confidential-app" in x)
    assert app.extensions["fhir_auth"].records.client("demo-confidential-app").check_client_secret(secret_line.rsplit(": ", 1)[1].strip())
