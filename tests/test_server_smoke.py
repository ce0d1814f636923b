"""The real server: `fhir-server serve --demo` under gunicorn (SMART authorization on, as by
default), spoken to over a socket; tokens come from the README's script, tools/smart_token.py."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

FHIR_JSON = "application/fhir+json"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Fixed demo credentials for this test run only (the demo generates them when unset).
DEMO_PASSWORD = "Smoke-" + uuid.uuid4().hex[:10] + "!A1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port: int, method: str, path: str, body=None, headers=None, token: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Accept": FHIR_JSON, **(headers or {})}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if data is not None:
            hdrs["Content-Type"] = FHIR_JSON
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, dict(resp.getheaders()), (json.loads(raw) if raw else None)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    env = {**os.environ, "FHIR_DB_NAME": f"smoke_{uuid.uuid4().hex[:10]}", "FHIR_DEMO_PASSWORD": DEMO_PASSWORD}
    env.pop("FHIR_AUTH", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fhir_server.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--demo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail("server exited: " + proc.stderr.read().decode(errors="replace")[-2000:])
            try:
                if _request(port, "GET", "/fhir/metadata")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer within 60 s")
            time.sleep(0.2)
        yield port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _token(port: int, login: str, scope: str = "openid fhirUser user/*.cruds") -> str:
    """The README's script, run as a user would run it."""
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "smart_token.py"), "--server", f"http://127.0.0.1:{port}",
         "--login", login, "--password", DEMO_PASSWORD, "--scope", scope, "--access-token"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def admin(server) -> str:
    return _token(server, "admin@demo.example")


def test_fhir_needs_a_token_but_metadata_does_not(server):
    status, headers, body = _request(server, "GET", "/fhir/Patient/demo-patient-1")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert body["resourceType"] == "OperationOutcome"
    assert "Иванов" not in json.dumps(body, ensure_ascii=False)
    assert _request(server, "GET", "/fhir/metadata")[0] == 200


def test_granted_doctor_sees_the_card_other_doctor_does_not(server):
    granted = _token(server, "doctor@demo.example", "openid fhirUser user/*.rs")
    status, _, body = _request(server, "GET", "/fhir/Patient/demo-patient-1", token=granted)
    assert status == 200 and body["name"][0]["family"] == "Иванов"
    status, _, bundle = _request(server, "GET", "/fhir/Observation?patient=demo-patient-1&_summary=count", token=granted)
    assert status == 200 and bundle["total"] > 0
    other = _token(server, "doctor2@demo.example", "openid fhirUser user/*.rs")
    assert _request(server, "GET", "/fhir/Patient/demo-patient-1", token=other)[0] == 404
    status, _, bundle = _request(server, "GET", "/fhir/Observation?patient=demo-patient-1&_summary=count", token=other)
    assert status == 200 and bundle["total"] == 0


def test_patient_reads_own_card_and_audit_trail(server):
    token = _token(server, "patient@demo.example", "openid fhirUser patient/*.rs")
    status, _, body = _request(server, "GET", "/fhir/Patient/demo-patient-1", token=token)
    assert status == 200
    status, _, bundle = _request(server, "GET", "/fhir/AuditEvent?patient=demo-patient-1", token=token)
    assert status == 200 and bundle["total"] >= 1


def test_metadata_over_socket(server):
    status, headers, body = _request(server, "GET", "/fhir/metadata")
    assert status == 200
    assert headers["Content-Type"].startswith(FHIR_JSON)
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"


def test_demo_card_is_loaded(server, admin):
    status, _, body = _request(server, "GET", "/fhir/Patient/demo-patient-1", token=admin)
    assert status == 200
    assert body["name"][0]["family"] == "Иванов"


def test_create_read_and_transaction_over_socket(server, admin):
    status, headers, created = _request(server, "POST", "/fhir/Patient", {"resourceType": "Patient", "gender": "female"}, token=admin)
    assert status == 201
    assert headers["ETag"] == 'W/"1"'
    assert headers["Location"] == f"http://127.0.0.1:{server}/fhir/Patient/{created['id']}/_history/1"
    status, _, read = _request(server, "GET", f"/fhir/Patient/{created['id']}", token=admin)
    assert status == 200 and read["gender"] == "female"

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:6a3c1b52-0d9e-4a43-9d1f-3c2f4b5a6e7f", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "ЧСС"}, "subject": {"reference": "urn:uuid:6a3c1b52-0d9e-4a43-9d1f-3c2f4b5a6e7f"}},
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    status, _, result = _request(server, "POST", "/fhir", bundle, token=admin)
    assert status == 200 and result["type"] == "transaction-response"
    patient_loc, obs_loc = (e["response"]["location"] for e in result["entry"])
    status, _, obs = _request(server, "GET", "/fhir/" + obs_loc.split("/_history")[0], token=admin)
    assert obs["subject"]["reference"] == patient_loc.split("/_history")[0]


def test_client_error_over_socket_is_operation_outcome(server, admin):
    status, _, body = _request(server, "POST", "/fhir/Patient", {"resourceType": "Patient", "birthDate": "1980-13-01"}, token=admin)
    assert status == 400
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["expression"] == ["Patient.birthDate"]


def test_embedded_store_refuses_several_worker_processes():
    env = {k: v for k, v in os.environ.items() if k != "FHIR_MONGODB_URI"}
    proc = subprocess.run(
        [sys.executable, "-m", "fhir_server.cli", "serve", "--workers", "2"], env=env, capture_output=True, timeout=60
    )
    assert proc.returncode == 2
    assert b"embedded store lives inside one process" in proc.stderr
