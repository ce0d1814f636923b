"""Consent enforced on every access path, over HTTP.

Patient pa grants Practitioner dr1 access; pb grants nothing (or, per test, something
narrower). dr2 is granted nothing. Every test checks both what is seen and that
nothing of a non-granted patient leaks (ids, totals, includes, links).
"""

from __future__ import annotations

import json

import pytest

from consent.principal import OPEN

from ._world import LAB, RESTRICTED, as_, build, consent, doctor, patient_user, put


@pytest.fixture
def world(app, client):
    build(app, client)
    put(client, consent("c-pa", "pa"))
    return app


def _ids(client, path):
    r = client.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)
    b = r.get_json()
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in b.get("entry", [])}, b


# What the server knows of pb and nobody asked for by name: ids, names, values.
PB_MARKERS = ("Борисов", "enc-pb", "obs-pb-1", "obs-pb-2", "c-pb", "Patient/pb\"", "101.0", "102.0")


def _no_trace_of(body: bytes | str, pid: str, asked: tuple[str, ...] = ()) -> None:
    text = body if isinstance(body, str) else body.decode()
    for marker in (PB_MARKERS if pid == "pb" else (f"Patient/{pid}\"", f"-{pid}-")):
        if marker not in asked:
            assert marker not in text, (marker, text[:800])


def test_practitioner_sees_only_granted_patient(world, client):
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pa-0").status_code == 200
    r = client.get("/fhir/Observation/obs-pb-0")
    assert r.status_code == 404
    # Indistinguishable from an id that never existed.
    never = client.get("/fhir/Observation/obs-zz-0")
    assert r.get_data(as_text=True).replace("obs-pb-0", "X") == never.get_data(as_text=True).replace("obs-zz-0", "X")
    _no_trace_of(r.get_data(), "pb")
    got, b = _ids(client, "/fhir/Observation")
    assert got == {"Observation/obs-pa-0", "Observation/obs-pa-1", "Observation/obs-pa-2"}
    assert b["total"] == 3
    assert client.get("/fhir/Observation?_summary=count").get_json()["total"] == 3
    got, _ = _ids(client, "/fhir/Patient")
    assert got == {"Patient/pa"}
    # Directory data is shared.
    assert client.get("/fhir/Organization/org1").status_code == 200


def test_ungranted_practitioner_sees_no_patient_data(world, client):
    as_(world, doctor(2))
    for path in ("/fhir/Observation", "/fhir/Patient", "/fhir/Encounter", "/fhir/Patient/pa/$everything?_count=50"):
        r = client.get(path)
        if path.endswith("$everything?_count=50"):
            assert r.status_code == 404
            continue
        assert r.get_json()["total"] == 0 and "entry" not in r.get_json(), path
    assert client.get("/fhir/Patient/pa").status_code == 404
    assert client.get("/fhir/Patient/pa/_history").status_code == 404
    assert client.get("/fhir/Patient/pa/_history/1").status_code == 404


def test_includes_chains_and_has_do_not_leak(world, client):
    as_(world, doctor(1))
    got, b = _ids(client, "/fhir/Encounter?_revinclude=Observation:encounter&_include=Encounter:subject")
    assert {g for g in got if "pb" in g} == set()
    _no_trace_of(json.dumps(b), "pb")
    # A chain through a non-granted patient matches nothing.
    assert _ids(client, "/fhir/Observation?subject:Patient.name=Борисов")[0] == set()
    assert _ids(client, "/fhir/Observation?subject:Patient.name=Алексеева")[1]["total"] == 3
    # _has over non-granted Observations cannot reveal pb's codes.
    assert _ids(client, "/fhir/Patient?_has:Observation:subject:code=2345-7")[0] == {"Patient/pa"}
    # Provenance of pb's data is in no compartment: invisible to a practitioner.
    assert _ids(client, "/fhir/Observation?_revinclude=Provenance:target")[0] == {
        "Observation/obs-pa-0", "Observation/obs-pa-1", "Observation/obs-pa-2"}
    # Compartment search and $everything of the non-granted patient.
    assert _ids(client, "/fhir/Patient/pb/Observation")[1]["total"] == 0
    assert client.get("/fhir/Patient/pb/$everything").status_code == 404
    got, b = _ids(client, "/fhir/Patient/pa/$everything?_count=100")
    _no_trace_of(json.dumps(b), "pb")


def test_history_is_filtered(world, client):
    as_(world, doctor(1))
    _, b = _ids(client, "/fhir/Observation/_history")
    assert b["total"] == 3
    _, b = _ids(client, "/fhir/_history?_count=100")
    _no_trace_of(json.dumps(b), "pb")
    assert client.get("/fhir/Observation/obs-pb-0/_history/1").status_code == 404


def test_batch_entries_are_filtered(world, client):
    as_(world, doctor(1))
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/obs-pb-0"}},
        {"request": {"method": "GET", "url": "Observation?subject=Patient/pb"}},
        {"request": {"method": "GET", "url": "Observation/obs-pa-0"}},
    ]}
    r = client.post("/fhir", bundle)
    assert r.status_code == 200
    entries = r.get_json()["entry"]
    assert entries[0]["response"]["status"].startswith("404")
    assert entries[1]["resource"]["total"] == 0
    assert entries[2]["response"]["status"].startswith("200")
    _no_trace_of(r.get_data(), "pb")


def test_revocation_takes_effect_on_the_next_request(world, client):
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pa-0").status_code == 200
    as_(world, OPEN)
    put(client, consent("c-pa", "pa", status="inactive"))
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pa-0").status_code == 404
    assert client.get("/fhir/Observation").get_json()["total"] == 0


def test_expired_and_future_periods_grant_nothing(world, client):
    as_(world, OPEN)
    put(client, consent("c-pa", "pa", period={"start": "2020-01-01", "end": "2021-01-01"}))
    put(client, consent("c-pb", "pb", period={"start": "2999-01-01"}))
    as_(world, doctor(1))
    assert client.get("/fhir/Observation").get_json()["total"] == 0


def test_class_code_and_label_restrictions(world, client):
    as_(world, OPEN)
    # pa: only Observations, only lab results, never restricted ones.
    put(client, consent(
        "c-pa", "pa",
        **{"class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}],
           "code": [{"coding": [LAB]}],
           "provision": [{"type": "deny", "securityLabel": [RESTRICTED]}]},
    ))
    as_(world, doctor(1))
    assert _ids(client, "/fhir/Observation")[0] == {"Observation/obs-pa-0"}
    assert _ids(client, "/fhir/Encounter")[1]["total"] == 0
    assert client.get("/fhir/Observation/obs-pa-2").status_code == 404
    # the code-value search cannot reveal the restricted value
    assert _ids(client, "/fhir/Observation?code-value-quantity=7905-3$gt0")[1]["total"] == 0


def test_explicit_deny_for_an_actor_wins(world, client):
    as_(world, OPEN)
    put(client, consent("c-pa-deny", "pa", **{"type": "deny", "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Encounter"}]}))
    as_(world, doctor(1))
    assert _ids(client, "/fhir/Encounter")[1]["total"] == 0
    assert _ids(client, "/fhir/Observation")[1]["total"] == 3


def test_scopes_bound_everything(world, client):
    as_(world, doctor(1, scopes="user/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"))
    assert _ids(client, "/fhir/Observation")[0] == {"Observation/obs-pa-0", "Observation/obs-pa-2"}
    assert client.get("/fhir/Encounter").status_code == 403
    assert client.get("/fhir/Observation/obs-pa-1").status_code == 404  # vital signs: outside the scope


def test_patient_sees_own_compartment_only(world, client):
    as_(world, patient_user("pb"))
    got, b = _ids(client, "/fhir/Observation")
    assert got == {"Observation/obs-pb-0", "Observation/obs-pb-1", "Observation/obs-pb-2"}
    assert client.get("/fhir/Patient/pa").status_code == 404
    _no_trace_of(json.dumps(_ids(client, "/fhir/Patient?_revinclude=Consent:patient")[1]), "pa")


def test_patient_grants_and_revokes(world, client):
    as_(world, patient_user("pb"))
    r = client.put("/fhir/Consent/c-pb", consent("c-pb", "pb"))
    assert r.status_code == 201, r.get_data(as_text=True)
    # A consent about another patient is refused (and leaves nothing behind).
    r = client.put("/fhir/Consent/c-evil", consent("c-evil", "pa", actor="Practitioner/dr2"))
    assert r.status_code == 403
    as_(world, doctor(1))
    assert _ids(client, "/fhir/Observation")[1]["total"] == 6
    as_(world, patient_user("pb"))
    assert client.put("/fhir/Consent/c-pb", consent("c-pb", "pb", status="inactive")).status_code == 200
    as_(world, doctor(1))
    assert _ids(client, "/fhir/Observation")[1]["total"] == 3
    as_(world, OPEN)
    assert client.get("/fhir/Consent/c-evil").status_code == 404


def test_patient_may_edit_contact_details_only(world, client):
    as_(world, patient_user("pb"))
    me = client.get("/fhir/Patient/pb").get_json()
    ok = {**me, "telecom": [{"system": "phone", "value": "+79990001122"}]}
    r = client.put("/fhir/Patient/pb", ok)
    assert r.status_code == 200, r.get_data(as_text=True)
    bad = {**me, "birthDate": "1900-01-01"}
    assert client.put("/fhir/Patient/pb", bad).status_code == 403
    assert client.put("/fhir/Patient/pa", {**me, "id": "pa"}).status_code == 404
    assert client.post("/fhir/Observation", {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/pb"}}).status_code == 403


def test_practitioner_writes_need_correct(world, client):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "Рост"}, "subject": {"reference": "Patient/pa"}}
    as_(world, doctor(1))
    assert client.post("/fhir/Observation", obs).status_code == 403  # access only
    as_(world, OPEN)
    put(client, consent("c-pa", "pa", action=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}]))
    put(client, consent("c-pa-w", "pa", action=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "correct"}]}]))
    as_(world, doctor(1))
    assert client.post("/fhir/Observation", obs).status_code == 201
    other = {**obs, "subject": {"reference": "Patient/pb"}}
    assert client.post("/fhir/Observation", other).status_code == 403
    as_(world, OPEN)
    assert client.get("/fhir/Observation?subject=Patient/pb").get_json()["total"] == 3  # nothing written for pb


def test_audit_events_cannot_be_written_through_the_api(world, client):
    as_(world, OPEN)
    ev = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2024-01-01T00:00:00Z",
          "agent": [{"requestor": True}], "source": {"observer": {"display": "x"}}}
    assert client.post("/fhir/AuditEvent", ev).status_code == 405


def test_an_expiry_takes_effect_at_its_instant_with_warm_decisions(world, client):
    """Decisions are memoised across requests, but only until the next period boundary: a
    Consent that ends (or starts) stops (or starts) granting at that instant, no write needed."""
    from datetime import timedelta

    from freezegun import freeze_time

    # In the past: the store's clock never goes back, so nothing written here is dated ahead.
    with freeze_time("2020-03-01T10:00:00Z") as clock:
        as_(world, OPEN)
        put(client, consent("c-pa", "pa", period={"start": "2020-03-01T09:00:00Z", "end": "2020-03-01T10:05:00Z"}))
        put(client, consent("c-pb", "pb", period={"start": "2020-03-01T10:07:00Z"}))
        as_(world, doctor(1))
        for _ in range(3):  # warm
            assert client.get("/fhir/Observation/obs-pa-0").status_code == 200
            assert client.get("/fhir/Observation/obs-pb-0").status_code == 404
        clock.tick(timedelta(minutes=4, seconds=59))
        assert client.get("/fhir/Observation/obs-pa-0").status_code == 200
        clock.tick(timedelta(seconds=2))
        assert client.get("/fhir/Observation/obs-pa-0").status_code == 404
        assert client.get("/fhir/Observation?_summary=count").get_json()["total"] == 0
        clock.tick(timedelta(minutes=2))
        assert client.get("/fhir/Observation/obs-pb-0").status_code == 200
        assert client.get("/fhir/Observation?_summary=count").get_json()["total"] == 3
        # A request whose clock reads earlier (another thread, another process) is judged at its own time.
        clock.move_to("2020-03-01T10:06:00Z")
        assert client.get("/fhir/Observation/obs-pb-0").status_code == 404


def test_a_new_or_removed_role_changes_the_next_decision(world, client):
    """Who the asker is (their PractitionerRoles and CareTeams) is part of the memo's key."""
    as_(world, OPEN)
    put(client, consent("c-pb", "pb", actor="Organization/org1"))
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 404
    as_(world, OPEN)
    put(client, {"resourceType": "PractitionerRole", "id": "role-dr1", "practitioner": {"reference": "Practitioner/dr1"},
                 "organization": {"reference": "Organization/org1"}})
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 200
    as_(world, OPEN)
    assert client.delete("/fhir/PractitionerRole/role-dr1").status_code == 200
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 404
    as_(world, OPEN)
    put(client, {"resourceType": "CareTeam", "id": "team", "participant": [{"member": {"reference": "Practitioner/dr1"}}]})
    put(client, consent("c-pb", "pb", actor="CareTeam/team"))
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 200


def test_a_rolled_back_consent_write_grants_nothing(world, client, app):
    """A transaction that writes a Consent and then fails leaves no grant, memo or not."""
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 404
    as_(world, OPEN)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": consent("c-pb", "pb"), "request": {"method": "PUT", "url": "Consent/c-pb"}},
        {"resource": {"resourceType": "Patient", "id": "pb"}, "request": {"method": "PUT", "url": "Patient/pb", "ifMatch": 'W/"9"'}},
    ]}
    assert client.post("/fhir", bundle).status_code == 412
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 404
    store = app.config["FHIR_STORE"]
    before = store.reader().generations(("Consent",))
    as_(world, OPEN)
    put(client, consent("c-pb", "pb"))
    assert store.reader().generations(("Consent",))[0] > before[0]
    as_(world, doctor(1))
    assert client.get("/fhir/Observation/obs-pb-0").status_code == 200
