"""Break the glass: time-limited emergency access, flagged in the audit trail, the patient told."""

from __future__ import annotations

from datetime import timedelta

from consent.principal import OPEN
from fhir_server import fhirtime

from ._world import as_, build, doctor, patient_user


def _declare(client, pid: str, reason: str | None = "Без сознания, доставлен СМП"):
    body = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": reason}] if reason else []}
    return client.post(f"/fhir/Patient/{pid}/$break-glass", body)


def test_emergency_access_is_granted_flagged_and_notified(app, client):
    build(app, client)
    as_(app, doctor(2))
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 404
    assert _declare(client, "pb", reason=None).status_code == 400
    r = _declare(client, "pb")
    assert r.status_code == 200, r.get_data(as_text=True)
    out = {p["name"]: p for p in r.get_json()["parameter"]}
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 200
    assert client.get("/fhir/Observation/obs-pa-0").status_code == 404  # only that patient
    # The patient is told, and sees the flagged accesses in their audit trail.
    as_(app, patient_user("pb", scopes="patient/*.rs"))
    notes = client.get("/fhir/Communication?recipient=Patient/pb").get_json()
    assert notes["total"] == 1 and "Без сознания" in notes["entry"][0]["resource"]["payload"][0]["contentString"]
    events = [e["resource"] for e in client.get("/fhir/AuditEvent?patient=Patient/pb&_count=200").get_json()["entry"]]
    flagged = [e for e in events if any(c["coding"][0]["code"] == "BTG" for c in e.get("purposeOfEvent", []))]
    assert {e["subtype"][0]["code"] for e in flagged} >= {"operation", "read"}
    assert all(e["agent"][0]["who"]["reference"] == "Practitioner/dr2" for e in flagged)
    # It expires without any job: move the grant's end into the past.
    as_(app, OPEN)
    cid = out["consent"]["valueReference"]["reference"]
    c = client.get(f"/fhir/{cid}").get_json()
    past = fhirtime.format_instant(fhirtime.now() - timedelta(minutes=1))
    c["provision"]["period"]["end"] = past
    assert client.put(f"/fhir/{cid}", c).status_code == 200
    as_(app, doctor(2))
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 404


def test_only_practitioners_break_the_glass(app, client):
    build(app, client)
    as_(app, patient_user("pa"))
    assert _declare(client, "pb").status_code == 403
    as_(app, doctor(1))
    assert _declare(client, "nobody").status_code == 404
