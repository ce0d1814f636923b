"""`fhir-server audit verify` against a running server over a real socket, with an admin token."""

from __future__ import annotations

import socket
import threading

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from fhir_server import audit
from fhir_server.app import create_app
from fhir_server.auth import mint_token
from fhir_server.cli import main
from tests.conftest import make_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served():
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    app = create_app(make_settings(auth="smart", base_url=base))
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, base
    finally:
        server.shutdown()
        thread.join(10)
        app.extensions["fhir_auth"].records.close()
        app.config["FHIR_STORE"].engine.close()


def _verify(base: str, token: str | None):
    return CliRunner().invoke(main, ["audit", "verify", "--url", base], env={"FHIR_TOKEN": token or ""})


def test_verify_over_http_then_names_the_broken_link(served):
    app, base = served
    admin = mint_token(app, subject="root", role="admin", scope="user/*.cruds")
    api = app.test_client()
    for _ in range(4):
        assert api.get("/fhir/Patient", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
    r = _verify(base, admin)
    assert r.exit_code == 0, r.output
    assert "audit chain intact" in r.output

    store = app.config["FHIR_STORE"]
    links, _ = store.chain(audit.CHAIN)
    second = links[1]["ev"]
    col = store.engine.db["AuditEvent"]
    doc = col.find_one({"_id": second})
    col.update_one({"_id": second}, {"$set": {"raw": doc["raw"].replace(b'"outcome":"0"', b'"outcome":"8"')}})
    r = _verify(base, admin)
    assert r.exit_code == 1
    assert f"BROKEN at link 2 (AuditEvent/{second})" in r.output and "hash mismatch" in r.output


def test_verify_needs_an_admin(served):
    app, base = served
    doctor = mint_token(app, subject="doc", role="practitioner", scope="user/*.rs", fhir_user="Practitioner/d1")
    r = _verify(base, doctor)
    assert r.exit_code == 1 and "HTTP 403" in r.output
    r = _verify(base, None)
    assert r.exit_code == 1 and "HTTP 401" in r.output


def test_verify_needs_a_database_or_a_url(monkeypatch):
    monkeypatch.delenv("FHIR_MONGODB_URI", raising=False)
    r = CliRunner().invoke(main, ["audit", "verify"])
    assert r.exit_code == 2 and "FHIR_MONGODB_URI" in r.output
