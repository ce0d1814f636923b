"""The audit trail: one AuditEvent per interaction, readable by the patient, hash-chained."""

from __future__ import annotations

import threading
from urllib.parse import urlencode

from consent.principal import OPEN, Principal
from consent.scopes import ScopeSet
from fhir_server import audit

from ._world import as_, build, consent, doctor, patient_user, put


def _events(client, query: str = "") -> list[dict]:
    r = client.get(f"/fhir/AuditEvent?_count=500{query}")
    assert r.status_code == 200
    return [e["resource"] for e in r.get_json().get("entry", [])]


def _verify(client) -> dict:
    r = client.post("/fhir/AuditEvent/$verify-chain")
    assert r.status_code == 200, r.get_data(as_text=True)
    return {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in r.get_json()["parameter"]}


def test_every_interaction_is_recorded(app, client):
    as_(app, OPEN)
    before = len(_events(client))  # the listing itself is recorded too
    client.get("/fhir/Patient/nope")
    client.post("/fhir/Patient", {"resourceType": "Patient", "gender": "other"})
    client.get("/fhir/Patient?gender=other")
    events = _events(client)
    assert len(events) == before + 1 + 3  # + the first listing
    kinds = [(e["subtype"][0]["code"], e["action"], e["outcome"]) for e in events]
    assert ("read", "R", "4") in kinds and ("create", "C", "0") in kinds and ("search-type", "E", "0") in kinds
    search = next(e for e in events if e["subtype"][0]["code"] == "search-type" and any("query" in x for x in e["entity"]))
    assert search["agent"][0]["requestor"] is True
    # metadata is public and not an access to anyone's data
    n = len(_events(client))
    client.get("/fhir/metadata")
    assert len(_events(client)) == n + 1


def test_patient_sees_who_looked_at_their_card(app, client):
    build(app, client)
    put(client, consent("c-pa", "pa"))
    as_(app, doctor(1))
    assert client.get("/fhir/Observation/obs-pa-0").status_code == 200
    assert client.get("/fhir/Observation?subject=Patient/pa").status_code == 200
    as_(app, patient_user("pa", scopes="patient/*.rs"))
    mine = _events(client, "&patient=Patient/pa")
    by_doctor = [e for e in mine if e["agent"][0]["who"].get("reference") == "Practitioner/dr1"]
    assert {e["subtype"][0]["code"] for e in by_doctor} == {"read", "search-type"}
    assert all(any(x.get("what", {}).get("reference") == "Patient/pa" for x in e["entity"]) for e in by_doctor)
    # ... and nobody else's trail
    assert all("Patient/pb" not in str(e) for e in _events(client))
    assert client.put(f"/fhir/AuditEvent/{mine[0]['id']}", mine[0]).status_code == 405
    assert client.delete(f"/fhir/AuditEvent/{mine[0]['id']}").status_code == 405


def test_one_event_per_patient_touched(app, client):
    """A search over two patients' data is two AuditEvents, each naming one patient's resources:
    each patient's trail shows no other patient's ids."""
    build(app, client)
    as_(app, Principal("admin", subject="root", scopes=ScopeSet.from_string("user/*.cruds")))
    r = client.get("/fhir/Observation?code=2345-7&_include=Observation:performer")
    assert r.status_code == 200 and r.get_json()["total"] == 2
    search = [e for e in _events(client) if e["subtype"][0]["code"] == "search-type" and "Practitioner/dr1/" in str(e)]
    assert len(search) == 2
    for event, pid in zip(sorted(search, key=lambda e: str(e["entity"][0]["what"])), ("pa", "pb")):
        refs = [x["what"]["reference"] for x in event["entity"] if "what" in x]
        assert refs[0] == f"Patient/{pid}"
        other = "pb" if pid == "pa" else "pa"
        assert any(ref.startswith(f"Observation/obs-{pid}-0/") for ref in refs)
        assert any(ref.startswith("Practitioner/dr1/") for ref in refs)  # shared data is in both
        assert not any(other in ref for ref in refs)
    as_(app, patient_user("pa", scopes="patient/*.rs"))
    assert "obs-pb" not in str(_events(client, "&patient=Patient/pa"))
    # A practitioner reads no one's audit trail, even with a Consent covering everything.
    as_(app, OPEN)
    put(client, consent("c-pa", "pa"))
    as_(app, doctor(1))
    assert client.get("/fhir/AuditEvent?patient=Patient/pa").get_json()["total"] == 0


def test_chain_verifies_and_names_the_first_broken_link(app, client):
    as_(app, OPEN)
    for _ in range(5):
        client.get("/fhir/Patient")
    result = _verify(client)
    assert result["result"] is True and result["checked"] >= 5
    # Tamper with the third event directly in the database.
    store = app.config["FHIR_STORE"]
    links, _ = store.chain(audit.CHAIN)
    third = links[2]["ev"]
    col = store.engine.db["AuditEvent"]
    doc = col.find_one({"_id": third})
    col.update_one({"_id": third}, {"$set": {"raw": doc["raw"].replace(b'"outcome":"0"', b'"outcome":"4"')}})
    result = _verify(client)
    assert result["result"] is False and result["brokenSeq"] == 3 and result["checked"] == 2
    assert result["brokenEvent"] == {"reference": f"AuditEvent/{third}"}


def test_verify_chain_is_for_admins(app, client):
    build(app, client)
    as_(app, doctor(1))
    assert client.post("/fhir/AuditEvent/$verify-chain").status_code == 403
    as_(app, Principal("admin", subject="root", scopes=ScopeSet.from_string("user/*.cruds")))
    assert _verify(client)["result"] is True


def test_concurrent_requests_do_not_fork_the_chain(app, client):
    as_(app, OPEN)
    errors = []

    def work():
        c = app.test_client()
        for _ in range(10):
            r = c.get("/fhir/Patient?_count=1")
            if r.status_code != 200:
                errors.append(r.status_code)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    result = _verify(client)
    assert result["result"] is True and result["checked"] == 60


def test_audit_history_and_vread_come_from_the_events_themselves(app, client):
    """AuditEvents are append-only: the store keeps no history copy of them, and their
    instance and type history, paging, _since/_at and vread still answer as for any type."""
    as_(app, OPEN)
    for _ in range(4):
        client.get("/fhir/Patient/nope")
    events = _events(client)
    store = app.config["FHIR_STORE"]
    assert store.db["history"].count_documents({"t": "AuditEvent"}) == 0
    first = events[0]
    ref = f"/fhir/AuditEvent/{first['id']}"
    r = client.get(f"{ref}/_history/1")
    assert r.status_code == 200 and r.get_json() == first and r.headers["ETag"] == 'W/"1"'
    assert client.get(f"{ref}/_history/2").status_code == 404
    inst = client.get(f"{ref}/_history").get_json()
    assert inst["total"] == 1 and inst["entry"][0]["request"] == {"method": "POST", "url": "AuditEvent"}
    assert inst["entry"][0]["response"]["status"] == "201 Created" and inst["entry"][0]["resource"] == first
    # Type history, two per page, newest first, across every page: each event exactly once.
    seen, url = [], "/fhir/AuditEvent/_history?_count=2"
    total = None
    while url:
        page = client.get(url.replace("http://localhost", "")).get_json()
        total = page["total"] if total is None else total
        seen += [(e["response"]["lastModified"], e["resource"]["id"]) for e in page.get("entry", [])]
        url = next((lk["url"] for lk in page["link"] if lk["relation"] == "next"), None)
    ids = [i for _, i in seen]
    assert len(ids) == len(set(ids)) == total >= 5
    assert [t for t, _ in seen] == sorted((t for t, _ in seen), reverse=True)
    # _since: only the events written from then on (the listings of this test among them).
    since = next(e for e in _events(client) if e["id"] == ids[0])["meta"]["lastUpdated"]
    later = client.get("/fhir/AuditEvent/_history?" + urlencode({"_since": since, "_count": 100})).get_json()
    assert ids[0] in {e["resource"]["id"] for e in later["entry"]} and first["id"] not in {e["resource"]["id"] for e in later["entry"]}
    # _at before the first event: nothing existed yet.
    at = client.get("/fhir/AuditEvent/_history?_at=2000-01-01").get_json()
    assert at["total"] == 0
    # System history leaves the audit trail out, as before.
    system = client.get("/fhir/_history?_count=100").get_json()
    assert all(e["request"]["url"] != "AuditEvent" for e in system.get("entry", []))
