"""Leak hunting: every access path x every way of not being granted.

The world (tests/consent/_world.py): patients pa and pb, each with a Patient, an Encounter and
three Observations (the third labelled restricted), Practitioners dr1 and dr2. pa always grants
dr1 (the control that the path works at all). What pb's Consent says is the case under test:

    granted        pb grants dr1                          -> pb's data must show (the positive control)
    never          no Consent of pb
    revoked        pb's Consent is inactive
    expired        pb's Consent period ended
    not-yet        pb's Consent period starts in the future
    other-actor    pb grants dr2, not dr1
    denied-label   pb grants dr1 but denies restricted data -> only obs-pb-2 must stay hidden
    other-patient  pb grants dr1; the one asking is patient pa

For each access path the response must carry no byte of what is hidden - ids, names, totals,
included resources, paging links, OperationOutcome texts - except what the request itself named,
and a read of a hidden resource must look exactly like a read of one that never existed.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from consent.principal import OPEN

from ._world import RESTRICTED, as_, build, consent, doctor, patient_user, put

ALL_PB = ("Борисов", "enc-pb", "obs-pb-0", "obs-pb-1", "obs-pb-2", "c-pb", "Patient/pb")
CASES = {
    # case: (pb's Consent or None, who asks, what of pb stays hidden)
    "granted": (lambda: consent("c-pb", "pb"), doctor(1), ()),
    "never": (lambda: None, doctor(1), ALL_PB),
    "revoked": (lambda: consent("c-pb", "pb", status="inactive"), doctor(1), ALL_PB),
    "expired": (lambda: consent("c-pb", "pb", period={"start": "2020-01-01", "end": "2021-01-01"}), doctor(1), ALL_PB),
    "not-yet": (lambda: consent("c-pb", "pb", period={"start": "2999-01-01"}), doctor(1), ALL_PB),
    "other-actor": (lambda: consent("c-pb", "pb", actor="Practitioner/dr2"), doctor(1), ALL_PB),
    "denied-label": (lambda: consent("c-pb", "pb", provision=[{"type": "deny", "securityLabel": [RESTRICTED]}]), doctor(1), ("obs-pb-2",)),
    "other-patient": (lambda: consent("c-pb", "pb"), patient_user("pa"), ALL_PB),
}

# Access paths: (name, method, path, body). {pb} stands for what the path names of pb.
PATHS = [
    ("read", "GET", "/fhir/Observation/obs-pb-2", None),
    ("read-patient", "GET", "/fhir/Patient/pb", None),
    ("vread", "GET", "/fhir/Observation/obs-pb-2/_history/1", None),
    ("search", "GET", "/fhir/Observation?_count=100", None),
    ("search-by-patient", "GET", "/fhir/Observation?patient=pb&_count=100", None),
    ("search-post", "POST", "/fhir/Observation/_search", "code=7905-3"),
    ("count", "GET", "/fhir/Observation?_summary=count", None),
    ("total-only", "GET", "/fhir/Observation?_count=0&_total=accurate", None),
    ("paging", "GET", "/fhir/Observation?_count=1&_sort=_id", None),
    ("include", "GET", "/fhir/Observation?code=7905-3&_include=Observation:subject&_include=Observation:encounter", None),
    ("include-iterate", "GET", "/fhir/Encounter?_revinclude=Observation:encounter&_include:iterate=Observation:subject", None),
    ("revinclude", "GET", "/fhir/Patient?_revinclude=Observation:subject&_revinclude=Consent:patient&_count=100", None),
    ("chain", "GET", "/fhir/Observation?subject:Patient.name=Борисов", None),
    ("has", "GET", "/fhir/Patient?_has:Observation:subject:code=7905-3", None),
    ("compartment", "GET", "/fhir/Patient/pb/Observation", None),
    ("everything", "GET", "/fhir/Patient/pb/$everything?_count=100", None),
    ("history-instance", "GET", "/fhir/Observation/obs-pb-2/_history", None),
    ("history-type", "GET", "/fhir/Observation/_history?_count=100", None),
    ("history-system", "GET", "/fhir/_history?_count=500", None),
    ("system-search", "GET", "/fhir?_type=Observation,Patient,Encounter&_count=100", None),
    ("consents", "GET", "/fhir/Consent?_count=100", None),
    ("audit", "GET", "/fhir/AuditEvent?patient=pb&_count=100", None),
    ("batch", "POST", "/fhir", {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Observation/obs-pb-2"}},
        {"request": {"method": "GET", "url": "Observation?code=7905-3"}},
        {"request": {"method": "GET", "url": "Patient/pb/$everything"}},
    ]}),
    ("transaction", "POST", "/fhir", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Observation/obs-pb-2"}},
    ]}),
]
# Paths that answer with counts only: checked by their totals, not by what they show; and
# the audit trail, which only the patient themself (and admins) read, whatever a Consent says.
COUNT_ONLY = {"count", "total-only"}
PATIENT_ONLY = {"audit"}


def _call(client, method, path, body):
    if method == "GET":
        return client.get(path)
    if isinstance(body, str):
        return client.post(path, data=body.encode(), content_type="application/x-www-form-urlencoded")
    return client.post(path, body)


def _walk(client, method, path, body):
    """The response, and for a paged search every next page after it (through its links)."""
    r = _call(client, method, path, body)
    out = [r]
    seen = 0
    while r.status_code == 200 and seen < 20:
        nxt = next((link["url"] for link in (r.get_json() or {}).get("link", []) if link["relation"] == "next"), None)
        if not nxt:
            break
        u = urlsplit(nxt)
        r = client.get(u.path + ("?" + u.query if u.query else ""))
        out.append(r)
        seen += 1
    return out


def _named_by_request(path: str, body) -> set[str]:
    text = path + " " + (json.dumps(body, ensure_ascii=False) if isinstance(body, dict) else (body or ""))
    text += " " + " ".join(v for _, v in parse_qsl(urlsplit(path).query))
    return {m for m in ALL_PB if m in text} | ({"Patient/pb"} if "Patient/pb" in text or "/Patient/pb" in text or "patient=pb" in text else set())


def _visible_total(bundle: dict) -> int:
    return sum(1 for e in bundle.get("entry", []) if e.get("search", {}).get("mode", "match") == "match")


@pytest.fixture
def world(app, client):
    build(app, client)
    put(client, consent("c-pa", "pa"))
    return app


@pytest.mark.parametrize("case", list(CASES))
def test_no_byte_of_what_is_not_granted(world, client, case):
    make, who, hidden = CASES[case]
    pb_consent = make()
    as_(world, OPEN)
    if pb_consent is not None:
        put(client, pb_consent)
    # Responses for an id that never existed: what a hidden resource must look like.
    as_(world, who)
    never = {
        "read": client.get("/fhir/Observation/obs-zz-2"),
        "read-patient": client.get("/fhir/Patient/zz"),
        "vread": client.get("/fhir/Observation/obs-zz-2/_history/1"),
        "history-instance": client.get("/fhir/Observation/obs-zz-2/_history"),
        "everything": client.get("/fhir/Patient/zz/$everything?_count=100"),
    }
    shown = set()
    for name, method, path, body in PATHS:
        responses = _walk(client, method, path, body)
        first = responses[0]
        assert first.status_code < 500, (name, first.get_data(as_text=True))
        asked = _named_by_request(path, body)
        text = "".join(r.get_data(as_text=True) for r in responses)
        if any(m in text for m in ALL_PB if m not in asked):
            shown.add(name)
        for marker in hidden:
            if marker in asked:
                continue
            assert marker not in text, (case, name, marker, text[:1500])
        target = "Patient/pb" if name in ("read-patient", "everything") else "obs-pb-2"
        if target in hidden and name in never:
            swap = lambda t: t.replace("obs-pb-2", "X").replace("obs-zz-2", "X").replace("/pb", "/X").replace("/zz", "/X")  # noqa: E731
            ghost = never[name]
            assert (first.status_code, swap(first.get_data(as_text=True))) == (ghost.status_code, swap(ghost.get_data(as_text=True))), (case, name)
        body_json = first.get_json(silent=True) or {}
        if body_json.get("resourceType") == "Bundle" and body_json.get("type") == "searchset" and "total" in body_json:
            if name in ("count", "total-only"):
                as_(world, who)
                full = client.get("/fhir/Observation?_count=500").get_json()
                assert body_json["total"] == _visible_total(full), (case, name)
            elif name != "paging":
                assert body_json["total"] == _visible_total(body_json), (case, name)
    if case == "granted":
        # The positive control: with the grant, every path does show pb's data.
        assert shown == {p[0] for p in PATHS} - COUNT_ONLY - PATIENT_ONLY, sorted({p[0] for p in PATHS} - COUNT_ONLY - shown)
    assert not shown & PATIENT_ONLY, (case, shown & PATIENT_ONLY)


@pytest.mark.parametrize("case", ["never", "revoked", "other-actor", "denied-label", "other-patient"])
def test_writes_inside_bundles_change_nothing(world, client, case):
    make, who, _ = CASES[case]
    pb_consent = make()
    as_(world, OPEN)
    if pb_consent is not None:
        put(client, pb_consent)
    before = {i: client.get(f"/fhir/Observation/obs-pb-{i}").get_json()["meta"]["versionId"] for i in range(3)}
    as_(world, who)
    changed = {"resourceType": "Observation", "id": "obs-pb-2", "status": "cancelled", "code": {"text": "x"},
               "subject": {"reference": "Patient/pb"}}
    for kind in ("batch", "transaction"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": changed, "request": {"method": "PUT", "url": "Observation/obs-pb-2"}},
            {"request": {"method": "DELETE", "url": "Observation/obs-pb-1"}},
            {"request": {"method": "DELETE", "url": "Observation?code=2345-7&subject=Patient/pb"}},
        ]}
        r = client.post("/fhir", bundle)
        assert r.status_code in (200, 400, 403, 404, 412), r.get_data(as_text=True)
        text = r.get_data(as_text=True)
        assert "Борисов" not in text and "enc-pb" not in text
        if kind == "batch":
            statuses = [e["response"]["status"] for e in r.get_json()["entry"]]
            assert not any(s.startswith("2") and not s.startswith("204") for s in statuses[:2]), statuses
    as_(world, OPEN)
    after = {i: client.get(f"/fhir/Observation/obs-pb-{i}") for i in range(3)}
    assert {i: a.get_json()["meta"]["versionId"] for i, a in after.items() if a.status_code == 200} == before
    assert all(a.status_code == 200 for a in after.values())
