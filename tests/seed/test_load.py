"""Loading the population through POST /fhir transactions, and what the server then says about it:
counts, idempotence, the RU profiles and the terminology, and the consents in force."""

from __future__ import annotations

import collections

import pytest

from consent.principal import Principal
from consent.scopes import ScopeSet
from fhir_server.app import create_app
from seed.generator import Population
from seed.load import in_process, load
from tests.conftest import FHIRClient, make_settings

V_UCUM = "http://unitsofmeasure.org"  # Quantities, not Codings
TERMINOLOGY_SYSTEMS_PACKAGED_REQUIRED = ("urn:oid:1.2.643.5.1.13.13.11.1005", "urn:oid:1.2.643.5.1.13.13.11.1080",
                                         "urn:oid:1.2.643.5.1.13.13.99.2.245")


def _expected(pop: Population) -> collections.Counter:
    return collections.Counter(e["resource"]["resourceType"] for b in pop.bundles() for e in b["entry"])


def _total(client: FHIRClient, rtype: str) -> int:
    r = client.get(f"/fhir/{rtype}?_summary=count")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["total"]


@pytest.mark.parametrize("patients", [3, 5])
def test_loads_with_zero_failures_and_the_generated_counts(app, client, patients):
    pop = Population(patients, 11)
    report = load(pop, in_process(app))
    assert report.failures == []
    expected = _expected(pop)
    assert report.counts == expected and report.bundles == patients + 1
    for rtype, n in expected.items():
        assert _total(client, rtype) == n, rtype
    card = client.get("/fhir/Patient/s11-pat-0/$everything?_count=500").get_json()
    assert card["resourceType"] == "Bundle" and len(card["entry"]) > 5


def test_loading_twice_changes_nothing(app, client):
    pop = Population(3, 12)
    assert load(pop, in_process(app)).failures == []
    before = {t: _total(client, t) for t in _expected(pop)}
    history = client.get("/fhir/Patient/s12-pat-0/_history").get_json()["total"]
    assert load(pop, in_process(app)).failures == []
    assert {t: _total(client, t) for t in _expected(pop)} == before
    assert client.get("/fhir/Patient/s12-pat-0/_history").get_json()["total"] == history


def test_a_failed_bundle_is_reported_and_changes_nothing(app, client):
    pop = Population(1, 13)
    bundles = list(pop.bundles())
    broken = bundles[1]
    broken["entry"][0]["resource"]["birthDate"] = "1980-13-01"

    class _Pop:
        def bundles(self):
            return iter(bundles)

    report = load(_Pop(), in_process(app))
    assert len(report.failures) == 1 and "patient 0: HTTP 400" in report.failures[0]
    assert "at Bundle.entry[0].resource.birthDate" in report.failures[0]
    assert _total(client, "Observation") == 0 and _total(client, "Patient") == 0
    assert _total(client, "Organization") > 0


@pytest.fixture
def definitions_app():
    app = create_app(make_settings(load_definitions=True))
    yield app
    app.config["FHIR_STORE"].engine.close()


def test_every_resource_passes_validate_with_its_profile_and_every_code_the_terminology(definitions_app):
    """Over HTTP: $validate with the resource's meta.profile (engineer B's RU profiles); every Coding of a code
    system the server packages is valid (terminology.validate_code, engineer A's API; systems it does not package,
    LOINC, ATC, UCUM among them, are "cannot check", never an error)."""
    terminology = pytest.importorskip("terminology")
    client = FHIRClient(definitions_app.test_client())
    pop = Population(4, 14)
    assert load(pop, in_process(definitions_app)).failures == []
    declared = collections.Counter()
    checked = collections.Counter()
    for bundle in pop.bundles():
        for e in bundle["entry"]:
            r = e["resource"]
            for profile in r.get("meta", {}).get("profile", []):
                declared[profile.rsplit("/", 1)[1]] += 1
                out = client.post(f"/fhir/{r['resourceType']}/$validate?profile={profile}", r)
                assert out.status_code == 200, out.get_data(as_text=True)
                errors = [i for i in out.get_json()["issue"] if i["severity"] in ("error", "fatal")]
                assert errors == [], (r["resourceType"], r["id"], errors)
            for coding in _codings(r):
                verdict = terminology.validate_code(system=coding["system"], code=coding["code"], display=coding.get("display"))
                assert verdict.ok is not False, (r["resourceType"], r["id"], coding, verdict.message)
                if coding["system"] in TERMINOLOGY_SYSTEMS_PACKAGED_REQUIRED:
                    assert verdict.ok is True, (coding, verdict.message)
                    checked[coding["system"]] += 1
    for name in ("ru-patient", "ru-organization", "ru-coverage", "ru-encounter", "ru-diagnosticreport", "ru-medicationrequest",
                 "ru-observation-lab"):
        assert declared[name] > 0, (name, declared)
    assert all(checked[s] for s in TERMINOLOGY_SYSTEMS_PACKAGED_REQUIRED), checked


def _codings(node):
    if isinstance(node, dict):
        if isinstance(node.get("code"), str) and "system" in node and "value" not in node and node["system"] != V_UCUM:
            yield node
        for v in node.values():
            yield from _codings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _codings(v)


def test_the_consents_decide_who_sees_the_generated_patients():
    """With SMART on: the doctor an active Consent names reads the patient; a revoked Consent grants nothing."""
    app = create_app(make_settings(auth="smart"))
    try:
        pop = Population(20, 15)
        assert load(pop, in_process(app)).failures == []
        client = FHIRClient(app.test_client())
        seen = collections.Counter()
        for i in range(pop.patients):
            consents = [r for r in pop.patient_resources(i) if r["resourceType"] == "Consent" and
                        r["provision"]["actor"][0]["reference"]["reference"].startswith("Practitioner/")]
            if len(consents) != 1:
                continue
            c = consents[0]
            doctor = c["provision"]["actor"][0]["reference"]["reference"]
            app.config["FHIR_AUTHENTICATOR"] = lambda request, d=doctor: Principal(
                "practitioner", subject=d, fhir_user=d, scopes=ScopeSet.from_string("user/*.rs"))
            status = client.get(f"/fhir/Patient/{pop.prefix}-pat-{i}").status_code
            kind = "revoked" if c["status"] == "inactive" else "granted"
            assert status == (404 if kind == "revoked" else 200), (i, kind, status)
            seen[kind] += 1
        assert seen["granted"] and seen["revoked"], seen
    finally:
        app.config["FHIR_STORE"].engine.close()


def test_loading_stops_at_the_first_refused_credentials():
    sent = []

    def refuse(data: bytes) -> tuple[int, dict]:
        sent.append(data)
        return 401, {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login", "diagnostics": "bad token"}]}

    report = load(Population(50, 16), refuse)
    assert len(sent) == 1 and report.stopped and report.failures == ["directory: HTTP 401: bad token"]
