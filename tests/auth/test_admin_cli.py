"""The admin API (/admin/clients, OpenAPI) and the CLI (clients add|list|remove, accounts add)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from fhir_server.auth import mint_token
from fhir_server.cli import main

from .conftest import REDIRECT, Flow, add_public_client, public_jwks, rsa_key


@pytest.fixture
def admin_token(app, svc, world):
    return world.full("admin@example.org", "user/*.rs")["access_token"]


def test_admin_api_requires_a_token(app):
    c = app.test_client()
    r = c.get("/admin/clients")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.get_json()["code"] == 401
    r = c.get("/admin/clients", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_admin_api_refuses_non_admins(app, world):
    doctor = world.full("doctor@example.org", "user/*.cruds")["access_token"]
    r = app.test_client().get("/admin/clients", headers={"Authorization": f"Bearer {doctor}"})
    assert r.status_code == 403
    # a minted token claiming admin for an account that is not one
    fake = mint_token(app, subject="not-an-account", role="admin", scope="user/*.rs")
    assert app.test_client().get("/admin/clients", headers={"Authorization": f"Bearer {fake}"}).status_code == 403


def test_admin_api_manages_clients(app, svc, admin_token):
    c = app.test_client()
    auth = {"Authorization": f"Bearer {admin_token}"}
    r = c.get("/admin/clients", headers=auth)
    assert r.status_code == 200 and [x["client_id"] for x in r.get_json()] == ["app-public"]
    r = c.post("/admin/clients", headers=auth, json={"name": "Clinic", "type": "confidential", "redirect_uris": [REDIRECT],
                                                      "scope": "user/*.rs offline_access", "client_id": "clinic-1"})
    assert r.status_code == 201, r.get_data(as_text=True)
    body = r.get_json()
    assert body["client_id"] == "clinic-1" and body["client_secret"] and body["token_endpoint_auth_method"] == "client_secret_basic"
    assert svc.records.client("clinic-1").check_client_secret(body["client_secret"])
    assert body["client_secret"] not in json.dumps(list(svc.records.q(type(svc.records.client("clinic-1"))).as_pymongo()), default=str)
    r = c.post("/admin/clients", headers=auth, json={"name": "Lab", "type": "confidential", "scope": "system/*.rs",
                                                      "jwks": public_jwks(rsa_key(), "k"), "organization": "Organization/lab"})
    assert r.status_code == 201 and "client_secret" not in r.get_json() and r.get_json()["grant_types"] == ["client_credentials"]
    r = c.post("/admin/clients", headers=auth, json={"name": "Bad", "type": "public", "scope": "patient/*.rs"})
    assert r.status_code == 422 and "redirect URI" in r.get_json()["message"]
    r = c.post("/admin/clients", headers=auth, json={"name": "Bad", "type": "weird", "scope": "patient/*.rs"})
    assert r.status_code == 422
    assert len(c.get("/admin/clients", headers=auth).get_json()) == 3
    assert c.delete("/admin/clients/clinic-1", headers=auth).status_code == 204
    assert c.delete("/admin/clients/clinic-1", headers=auth).status_code == 404
    assert svc.records.client("clinic-1") is None


def test_removing_a_client_revokes_its_tokens(app, svc, world, admin_token):
    from .conftest import principal_or_error

    add_public_client(svc, client_id="doomed")
    flow = Flow(app, "doomed")
    tok = flow.full("patient@example.org", "patient/*.rs")
    assert app.test_client().delete("/admin/clients/doomed", headers={"Authorization": f"Bearer {admin_token}"}).status_code == 204
    assert principal_or_error(app, tok["access_token"]) == "auth-invalid"


def test_openapi_documents_the_non_fhir_endpoints(app):
    doc = app.test_client().get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in ("/admin/clients", "/admin/clients/{client_id}", "/auth/token", "/auth/authorize", "/auth/introspect",
                 "/auth/revoke", "/auth/jwks", "/auth/login", "/.well-known/smart-configuration"):
        assert path in paths, path
    assert set(paths["/admin/clients"]) >= {"get", "post"} and "delete" in paths["/admin/clients/{client_id}"]
    assert paths["/admin/clients"]["get"]["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_fhir_errors_stay_operation_outcomes(app):
    r = app.test_client().get("/fhir/NoSuchType/1")
    assert r.get_json()["resourceType"] == "OperationOutcome"


# -- CLI -----------------------------------------------------------------------------------
def run(app, *args, input=None):
    records = app.extensions["fhir_auth"].records
    return CliRunner().invoke(main, list(args), obj={"auth_records": records}, input=input, catch_exceptions=False)


def test_cli_clients_add_list_remove(app, svc, tmp_path):
    r = run(app, "clients", "add", "--name", "Clinic", "--confidential", "--redirect-uri", REDIRECT,
            "--scope", "openid fhirUser", "--scope", "user/*.rs", "--client-id", "cli-conf")
    assert r.exit_code == 0, r.output
    lines = dict(line.split("=", 1) for line in r.stdout.strip().splitlines())
    assert lines["client_id"] == "cli-conf" and len(lines["client_secret"]) > 30
    client = svc.records.client("cli-conf")
    assert client.scope == "openid fhirUser user/*.rs" and client.check_client_secret(lines["client_secret"])

    r = run(app, "clients", "add", "--name", "Mobile app", "--public", "--redirect-uri", "ru.example.app:/callback", "--scope", "patient/*.rs")
    assert r.exit_code == 0 and "client_secret" not in r.stdout
    public_id = r.stdout.strip().split("=", 1)[1]
    assert svc.records.client(public_id).public

    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(public_jwks(rsa_key(), "k1")))
    r = run(app, "clients", "add", "--name", "Hospital", "--confidential", "--scope", "system/*.rs", "--jwks-file", str(jwks_file),
            "--organization", "Organization/org-9")
    assert r.exit_code == 0, r.output
    backend = svc.records.client(r.stdout.strip().split("=", 1)[1])
    assert backend.organization == "Organization/org-9" and backend.token_endpoint_auth_method == "private_key_jwt"

    r = run(app, "clients", "list")
    assert r.exit_code == 0 and "cli-conf" in r.stdout and public_id in r.stdout and "Organization/org-9" in r.stdout

    r = run(app, "clients", "add", "--name", "Bad", "--public", "--scope", "patient/*.rs")
    assert r.exit_code == 2 and "redirect URI" in r.output

    assert run(app, "clients", "remove", "cli-conf").exit_code == 0
    assert svc.records.client("cli-conf") is None
    assert run(app, "clients", "remove", "cli-conf").exit_code == 1


def test_cli_accounts_add_then_sign_in(app, svc):
    add_public_client(svc)
    r = run(app, "accounts", "add", "--login", "Doc@Example.org", "--role", "practitioner", "--fhir-user", "Practitioner/d7",
            "--name", "Dr Seven", input="S3cret-pass\nS3cret-pass\n")
    assert r.exit_code == 0, r.output
    assert "S3cret-pass" not in r.stdout
    account = svc.records.account_by_login("doc@example.org")
    assert account.role == "practitioner" and account.fhir_user == "Practitioner/d7"
    flow = Flow(app, "app-public")
    assert flow.sign_in("doc@example.org", "S3cret-pass").status_code == 302
    r = run(app, "accounts", "add", "--login", "doc@example.org", "--role", "practitioner", input="S3cret-pass\nS3cret-pass\n")
    assert r.exit_code == 2 and "exists" in r.output
    r = run(app, "accounts", "add", "--login", "p@example.org", "--role", "patient", "--fhir-user", "Practitioner/1", input="x\nx\n")
    assert r.exit_code == 2


def test_cli_needs_a_database_outside_the_server(monkeypatch):
    monkeypatch.delenv("FHIR_MONGODB_URI", raising=False)
    r = CliRunner().invoke(main, ["clients", "list"])
    assert r.exit_code == 2 and "FHIR_MONGODB_URI" in r.output
