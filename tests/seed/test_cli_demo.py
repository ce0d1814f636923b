"""`fhir-server seed` against a running server, and the demo's generated population."""

from __future__ import annotations

import collections
import http.client
import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import uuid

from click.testing import CliRunner

from consent.principal import Principal
from consent.scopes import ScopeSet
from fhir_server.app import create_app
from fhir_server.cli import main
from seed.demo import DEMO_GRANTED
from seed.generator import Population
from tests.conftest import FHIRClient, make_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Accept": "application/fhir+json"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_concurrency_needs_a_url():
    result = CliRunner().invoke(main, ["seed", "--patients", "1", "--concurrency", "2"], env={"FHIR_MONGODB_URI": "mongodb://db.invalid"})
    assert result.exit_code == 2 and "--concurrency needs --url" in result.output


def test_seed_needs_a_url_or_a_database():
    env = {k: v for k, v in os.environ.items() if k != "FHIR_MONGODB_URI"}
    result = CliRunner().invoke(main, ["seed", "--patients", "1"], env={**env, "FHIR_MONGODB_URI": ""})
    assert result.exit_code == 2 and "--url" in result.output


def test_seed_loads_through_a_running_server():
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "FHIR_MONGODB_URI"}
    env.update(FHIR_AUTH="off", FHIR_DB_NAME=f"seedcli_{uuid.uuid4().hex[:8]}", FHIR_LOAD_DEFINITIONS="0")
    server = subprocess.Popen([sys.executable, "-m", "fhir_server.cli", "serve", "--no-demo", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(port, "/fhir/metadata")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.2)
        run = subprocess.run([sys.executable, "-m", "fhir_server.cli", "seed", "--patients", "3", "--seed", "21",
                              "--url", f"http://127.0.0.1:{port}/fhir"], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr
        assert "seed 21: 3 patients" in run.stdout and "Patient 3" in run.stdout
        status, bundle = _get(port, "/fhir/Patient?_summary=count")
        assert status == 200 and bundle["total"] == 3
        status, patient = _get(port, "/fhir/Patient/s21-pat-2")
        assert status == 200 and patient["name"][0]["given"][1]
        # several Bundles in flight: the same resources, whatever order they arrive in
        run = subprocess.run([sys.executable, "-m", "fhir_server.cli", "seed", "--patients", "6", "--seed", "22", "--concurrency", "3",
                              "--url", f"http://127.0.0.1:{port}/fhir"], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr
        expected = collections.Counter(e["resource"]["resourceType"] for b in Population(6, 22).bundles() for e in b["entry"])
        for rtype in ("Patient", "Observation", "Consent"):
            status, bundle = _get(port, f"/fhir/{rtype}?_summary=count")
            assert bundle["total"] == expected[rtype] + sum(
                1 for b in Population(3, 21).bundles() for e in b["entry"] if e["resource"]["resourceType"] == rtype)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_demo_loads_the_fixed_card_and_a_generated_population():
    app = create_app(make_settings(auth="smart", demo=True, demo_patients=7, demo_password="Demo-Passw0rd!"))
    try:
        client = FHIRClient(app.test_client())
        doctor = Principal("practitioner", subject="demo", fhir_user="Practitioner/demo-practitioner-1",
                           scopes=ScopeSet.from_string("user/*.rs"))
        other = Principal("practitioner", subject="demo2", fhir_user="Practitioner/demo-practitioner-2",
                          scopes=ScopeSet.from_string("user/*.rs"))
        admin = Principal("admin", subject="admin", scopes=ScopeSet.from_string("user/*.cruds"))
        app.config["FHIR_AUTHENTICATOR"] = lambda request: admin
        assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 1 + 7
        assert client.get("/fhir/Patient/s1-pat-6").status_code == 200
        app.config["FHIR_AUTHENTICATOR"] = lambda request: doctor
        assert client.get("/fhir/Patient/demo-patient-1").status_code == 200
        assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 1 + min(DEMO_GRANTED, 7)
        assert client.get(f"/fhir/Patient/s1-pat-{DEMO_GRANTED - 1}").status_code == 200
        assert client.get(f"/fhir/Patient/s1-pat-{DEMO_GRANTED}").status_code == 404
        app.config["FHIR_AUTHENTICATOR"] = lambda request: other  # nobody grants demo-practitioner-2
        assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 0
    finally:
        app.config["FHIR_STORE"].engine.close()


def test_seed_into_the_database_runs_in_process_as_the_operator(app, client, monkeypatch):
    """With FHIR_MONGODB_URI the command makes the app itself (here: the test's app) and posts as the operator."""
    import fhir_server.app

    made = []
    monkeypatch.setattr(fhir_server.app, "create_app", lambda settings: made.append(settings) or app)
    result = CliRunner().invoke(main, ["seed", "--patients", "2", "--seed", "31"], env={"FHIR_MONGODB_URI": "mongodb://db.invalid"})
    assert result.exit_code == 0, result.output
    assert made and made[0].mongodb_uri == "mongodb://db.invalid"
    assert "seed 31: 2 patients" in result.output
    assert client.get("/fhir/Patient?_summary=count").get_json()["total"] == 2
    events = client.get("/fhir/AuditEvent?_count=500").get_json()["entry"]
    by_writer = collections.Counter(e["resource"]["agent"][0]["who"]["identifier"]["value"] for e in events)
    assert by_writer["operator"] >= 3  # the directory and both patients' transactions, audited under the operator
    assert set(by_writer) <= {"operator", "anonymous"}  # anonymous: this test's own reads (FHIR_AUTH=off)


def test_the_demo_population_never_takes_a_snils_of_the_demo_card_or_the_esia_emulator():
    """Linking by SNILS (ESIA sign-in) must find the demo's own people only, for any FHIR_DEMO_PATIENTS up to 100,000."""
    import re

    from fhir_server.esia import persons
    from seed.demo import DEMO_SEED, demo_resources
    from seed.generator import PATIENT_SNILS, PRACTITIONER_SNILS, Population

    taken = {i["value"] for r in demo_resources() for i in r.get("identifier", [])}
    emulator = pathlib.Path(persons.__file__).read_text(encoding="utf-8")  # its persons' SNILS, "XXX-XXX-XXX YY"
    taken |= {re.sub(r"\D", "", s) for s in re.findall(r'"(\d{3}-\d{3}-\d{3} \d{2})"', emulator)}
    salt = Population(0, DEMO_SEED).salt
    for snils in taken:
        body = int(snils[:9])
        for first, size, most in ((PATIENT_SNILS[0], PATIENT_SNILS[1], 100_000), (PRACTITIONER_SNILS[0], PRACTITIONER_SNILS[1], 10_000)):
            if first <= body < first + size:
                index = (body - first - salt) * pow(7919, -1, size) % size  # the one index that would get it
                assert index >= most, (snils, index)


def test_seed_stops_when_the_server_is_not_there():
    run = subprocess.run([sys.executable, "-m", "fhir_server.cli", "seed", "--patients", "100", "--url",
                          f"http://127.0.0.1:{_free_port()}/fhir"], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1
    assert "directory: HTTP 0: cannot reach" in run.stderr and "stopped" in run.stderr and "Traceback" not in run.stderr
