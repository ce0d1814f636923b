"""Property test: random Consents and random queries; what the server returns must equal a
brute-force decision applied to every stored resource, one by one.

The server compiles Consents into MongoDB filter fragments (consent/decision.py) that are ANDed
into the query. The reference below decides each resource directly from the R4 Consent
semantics the project documents (consent/decision.py's module docstring):

  - a provision applies when its actor (if any) names the asker, its action (if any) is the
    action asked, and its period (if any) contains now; at the root, a write (`correct`) must
    be named: a provision without action only grants `access`;
  - a provision's constraints select resources: class (resource type), code (the resource's
    code or category), data (the named resource), securityLabel (meta.security);
  - permit: the selected resources, except those an applicable child denies (selected by the
    child and not permitted by it); deny: only what an applicable child permits;
  - a patient's active Consents add up, and a root deny that names the asker wins over them;
  - always within the patient's own compartment.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from consent.principal import OPEN

from ._world import LAB, LOINC, RESTRICTED, VITAL, as_, doctor, put

PATIENTS = ("p0", "p1", "p2")
ACTORS = ("Practitioner/dr1", "Practitioner/dr2", "Organization/org1", "PractitionerRole/role1")
DR1 = frozenset(("Practitioner/dr1", "Organization/org1", "PractitionerRole/role1"))  # who dr1 is
ACTIONS = "http://terminology.hl7.org/CodeSystem/consentaction"
PERIODS = {"past": {"start": "2020-01-01", "end": "2021-01-01"}, "now": {"start": "2020-01-01", "end": "2999-01-01"},
           "future": {"start": "2999-01-01"}, "open-end": {"start": "2021-06-01"}}
CLASSES = (("Observation",), ("Encounter",), ("Observation", "Patient"), ("Patient",))
CODES = ({"coding": [LAB]}, {"coding": [{"system": LOINC, "code": "2345-7"}]}, {"coding": [VITAL]})
QUERIES = (
    "/fhir/Observation?_count=500",
    "/fhir/Observation?category=laboratory&_count=500",
    "/fhir/Observation?patient=p1&_count=500",
    "/fhir/Observation?_security=R&_count=500",
    "/fhir/Encounter?_count=500",
    "/fhir/Patient?_count=500",
    "/fhir/Patient?_has:Observation:subject:code=7905-3",
)


def world_resources() -> list[dict]:
    out = [
        {"resourceType": "Organization", "id": "org1", "name": "ГКБ №1"},
        {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Врач1"}]},
        {"resourceType": "Practitioner", "id": "dr2", "name": [{"family": "Врач2"}]},
        {"resourceType": "PractitionerRole", "id": "role1", "practitioner": {"reference": "Practitioner/dr1"},
         "organization": {"reference": "Organization/org1"}},
    ]
    for pid in PATIENTS:
        out.append({"resourceType": "Patient", "id": pid, "name": [{"family": f"Пациент-{pid}"}]})
        out.append({"resourceType": "Encounter", "id": f"enc-{pid}", "status": "finished", "class": {"code": "AMB"},
                    "subject": {"reference": f"Patient/{pid}"}})
        for i, (cat, code, label) in enumerate(((LAB, "2345-7", None), (VITAL, "8480-6", None), (LAB, "7905-3", RESTRICTED))):
            obs = {"resourceType": "Observation", "id": f"obs-{pid}-{i}", "status": "final", "category": [{"coding": [cat]}],
                   "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": f"Patient/{pid}"}}
            if label:
                obs["meta"] = {"security": [label]}
            out.append(obs)
    return out


# -- random Consents ---------------------------------------------------------------------------------
def provisions(depth: int):
    children = st.just([]) if depth == 0 else st.lists(provisions(depth - 1), max_size=2)
    return st.fixed_dictionaries(
        {"type": st.sampled_from(("permit", "deny"))},
        optional={
            "actor": st.sampled_from(ACTORS).map(lambda a: [{"role": {"text": "врач"}, "reference": {"reference": a}}]),
            "action": st.sampled_from(("access", "correct")).map(lambda a: [{"coding": [{"system": ACTIONS, "code": a}]}]),
            "period": st.sampled_from(sorted(PERIODS)).map(lambda k: dict(PERIODS[k])),
            "class": st.sampled_from(CLASSES).map(lambda ts: [{"system": "http://hl7.org/fhir/resource-types", "code": t} for t in ts]),
            "code": st.sampled_from(CODES).map(lambda c: [c]),
            "securityLabel": st.just([RESTRICTED]),
            "data": st.sampled_from(PATIENTS).map(lambda p: [{"meaning": "instance", "reference": {"reference": f"Observation/obs-{p}-0"}}]),
            "provision": children,
        },
    ).map(lambda p: {k: v for k, v in p.items() if v != []})


consents = st.lists(
    st.tuples(st.sampled_from(PATIENTS), st.sampled_from(("active", "active", "inactive")), provisions(2)),
    min_size=1, max_size=4,
)


def as_consent(n: int, pid: str, status: str, provision: dict) -> dict:
    return {
        "resourceType": "Consent", "id": f"rc-{n}", "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"}, "provision": provision,
    }


# -- the brute-force reference --------------------------------------------------------------------------
def _applies(prov: dict, action: str, root: bool) -> bool:
    refs = [a["reference"]["reference"] for a in prov.get("actor", [])]
    if refs and not set(refs) & DR1:
        return False
    codes = [c["code"] for a in prov.get("action", []) for c in a["coding"]]
    if codes and action not in codes:
        return False
    if not codes and root and action != "access":
        return False
    period = prov.get("period")
    if period:  # "now" is between 2021 and 2999 for every period used
        if period.get("start", "0000") >= "2999" or period.get("end", "9999") <= "2021-01-01":
            return False
    return True


def _codings(res: dict, field: str) -> list[dict]:
    value = res.get(field)
    concepts = value if isinstance(value, list) else [value] if value else []
    return [c for cc in concepts for c in cc.get("coding", [])]


def _selects(prov: dict, res: dict) -> bool:
    if "class" in prov and res["resourceType"] not in {c["code"] for c in prov["class"]}:
        return False
    if "code" in prov:
        mine = _codings(res, "code") + _codings(res, "category") if res["resourceType"] == "Observation" else []
        if not any(c["code"] == m.get("code") and c.get("system", m.get("system")) == m.get("system")
                   for cc in prov["code"] for c in cc["coding"] for m in mine):
            return False
    if "data" in prov and f"{res['resourceType']}/{res['id']}" not in {d["reference"]["reference"] for d in prov["data"]}:
        return False
    if "securityLabel" in prov:
        labels = {(x["system"], x["code"]) for x in res.get("meta", {}).get("security", [])}
        if not {(x["system"], x["code"]) for x in prov["securityLabel"]} & labels:
            return False
    return True


def _decide(prov: dict, res: dict, action: str) -> tuple[bool, bool]:
    """(selected, permitted) by an applicable provision."""
    if not _selects(prov, res):
        return False, False
    children = [_decide(c, res, action) for c in prov.get("provision", []) if _applies(c, action, root=False)]
    if prov["type"] == "permit":
        return True, not any(sel and not perm for sel, perm in children)
    return True, any(perm for _, perm in children)


def _owner(res: dict) -> str | None:
    if res["resourceType"] == "Patient":
        return res["id"]
    ref = (res.get("subject") or {}).get("reference", "")
    return ref.split("/", 1)[1] if ref.startswith("Patient/") else None


def visible(res: dict, stored: list[dict], action: str = "access") -> bool:
    owner = _owner(res)
    if owner is None:
        return True  # directory data (Organization, Practitioner, PractitionerRole)
    granted = denied = False
    for c in stored:
        if c["status"] != "active" or c["patient"]["reference"] != f"Patient/{owner}":
            continue
        root = c["provision"]
        if not _applies(root, action, root=True):
            continue
        selected, permitted = _decide(root, res, action)
        granted |= permitted
        names_me = any(a["reference"]["reference"] in DR1 for a in root.get("actor", []))
        if root["type"] == "deny" and names_me and selected and not permitted:
            denied = True
    return granted and not denied


def expected(query: str, resources: list[dict], stored: list[dict]) -> set[str]:
    seen = {f"{r['resourceType']}/{r['id']}" for r in resources if visible(r, stored)}
    rtype = query.split("?")[0].rsplit("/", 1)[1]
    out = set()
    for r in resources:
        key = f"{r['resourceType']}/{r['id']}"
        if r["resourceType"] != rtype or key not in seen:
            continue
        if "category=laboratory" in query and not any(c["code"] == "laboratory" for c in _codings(r, "category")):
            continue
        if "patient=p1" in query and _owner(r) != "p1":
            continue
        if "_security=R" in query and not r.get("meta", {}).get("security"):
            continue
        if "_has:Observation" in query and f"Observation/obs-{r['id']}-2" not in seen:
            continue
        out.add(key)
    return out


@settings(max_examples=150, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=consents, reads=st.lists(st.sampled_from(range(len(world_resources()))), min_size=3, max_size=6))
@example(  # a permit, and a deny naming the asker that wins over it for vital signs
    drawn=[("p0", "active", {"type": "permit"}),
           ("p0", "active", {"type": "deny", "actor": [{"role": {"text": "врач"}, "reference": {"reference": "Practitioner/dr1"}}],
                             "code": [{"coding": [VITAL]}]})],
    reads=[4, 5, 6],
)
@example(  # a baseline "deny unless" with no actor does not win over another Consent's permit
    drawn=[("p1", "active", {"type": "permit", "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}]}),
           ("p1", "active", {"type": "deny", "provision": [{"type": "permit", "securityLabel": [RESTRICTED]}]})],
    reads=[9, 10, 11],
)
def test_server_equals_brute_force_decision(app, client, drawn, reads):
    resources = world_resources()
    as_(app, OPEN)
    if client.get("/fhir/Patient/p0").status_code != 200:  # the world is written once per test
        for r in resources:
            put(client, r)
    for e in client.get("/fhir/Consent?_count=500").get_json().get("entry", []):
        assert client.delete(f"/fhir/Consent/{e['resource']['id']}").status_code == 200
    stored = [as_consent(n, *c) for n, c in enumerate(drawn)]
    for c in stored:
        put(client, c)
    as_(app, doctor(1, scopes="user/*.cruds"))
    for query in QUERIES:
        r = client.get(query)
        assert r.status_code == 200, r.get_data(as_text=True)
        bundle = r.get_json()
        got = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])}
        want = expected(query, resources, stored)
        assert got == want, (query, sorted(got ^ want), stored)
        assert bundle["total"] == len(want)
        count = client.get(query + "&_summary=count").get_json()["total"]
        assert count == len(want), query
    for i in reads:
        res = resources[i]
        status = client.get(f"/fhir/{res['resourceType']}/{res['id']}").status_code
        assert status == (200 if visible(res, stored) else 404), (res["resourceType"], res["id"], stored)
