"""On a real MongoDB, every search parameter of the card types is served by an index.

For each search parameter of Patient, Encounter, Observation, DiagnosticReport,
MedicationRequest, Consent, Practitioner and Organization (the parameter table,
`params_of`), a representative plain value of the parameter's type is compiled exactly
as the server compiles it (`query.parse` + `execute.filter_for` with the store's reader)
and explained as the store runs it (`db[Type].find({"d": False, **filter})`). The test
fails when the winning plan contains a COLLSCAN: the store declares wildcard indexes
`idx.$**` (search values) and `sk.$**` (sort keys) per collection
(`ResourceStore.ensure_indexes`), and a filter shape those cannot serve would make the
search scan the whole collection on a production database.

What a wildcard index cannot serve (MongoDB manual, "Wildcard Index Restrictions":
mongodb/docs source/core/indexes/index-types/index-wildcard/reference/restrictions.txt
for 7.0+, and the 6.x page's "Unsupported Query and Aggregation Patterns"):
`{$exists: false}` (the server's `:missing=true`); equality to null, and on a path that is
an array in any document `$ne: null` (6.x: "equal or not equal to null"); equality or
inequality to a whole document or array; more than one predicate field per query (one
is served, the others become a FETCH filter); and a sort unless it is on the one
predicate field the index serves and that field is never an array. MongoDB's own
jstests (jstests/core/index/wildcard/wildcard_and_with_not.js) also show a negation
(`$not`) is never answered by a single-field wildcard index: the server's `:not`
(`$nor`). None of the plain values below compiles to `$exists: false`, a negation or a
document/array equality; `|code` puts `s: null` inside an `$elemMatch` next to `c`, which
stays indexable. The sort rule means every `_sort` is a blocking SORT stage (the server
sorts on `sk.<code>.a|d` then `_id`), acceptable only above an index scan, never above a
COLLSCAN; a `_sort` with no other criterion is a COLLSCAN + SORT by construction and is
not tested here.

Explain output shapes handled (MongoDB 6/7/8, "Explain Results"): the classic engine's
`queryPlanner.winningPlan` tree of `stage` / `inputStage` / `inputStages`; the slot-based
engine's `queryPlanner.winningPlan.queryPlan` (next to `slotBasedPlan`); a sharded
cluster's `queryPlanner.winningPlan.shards[].winningPlan`.

Runs only when FHIR_MONGODB_URI is set (the module is skipped otherwise): the embedded
mongomock engine has no query planner.
"""

from __future__ import annotations

import copy
import json
import os

import pytest

if not os.environ.get("FHIR_MONGODB_URI"):
    pytest.skip("explain needs a real MongoDB: set FHIR_MONGODB_URI", allow_module_level=True)

from fhir_server.app import create_app  # noqa: E402
from fhir_server.search import execute  # noqa: E402
from fhir_server.search.params import params_of  # noqa: E402
from fhir_server.search.query import parse  # noqa: E402
from resources import registry  # noqa: E402
from seed.demo import demo_bundle, demo_resources  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

BASE = "http://localhost/fhir"  # the Flask test client's base, as the server sees it
CARD_TYPES = ("Patient", "Encounter", "Observation", "DiagnosticReport", "MedicationRequest", "Consent", "Practitioner", "Organization")
COPIES = 3  # resources per type besides the demo card's own
SCAN = "COLLSCAN"


# -- representative plain values per parameter type ----------------------------------------------
TOKEN_SYSTEM = "http://loinc.org"
COMPONENT_VALUE = {  # one value per component type, for composites (a$b)
    "token": f"{TOKEN_SYSTEM}|8480-6",
    "quantity": "gt1",
    "date": "ge2020",
    "string": "abc",
    "reference": "Patient/x",
    "uri": "http://example.org/fhir/x",
    "number": "gt1",
}


def _reference_value(p) -> str:
    target = next((t for t in p.targets if registry.is_supported(t)), None) or "Patient"
    return f"{target}/x"


def values_for(p) -> list[str]:
    """Plain values (no modifier) of the parameter's type; the first is the representative one,
    the others compile to other filter shapes of the same type."""
    t = p.type
    if p.code == "_id":
        return ["x"]
    if t == "token":
        return [f"{TOKEN_SYSTEM}|x", "x", "|x"]  # {$elemMatch: {s, c}}, {c}, {$elemMatch: {s: null, c}}
    if t == "string":
        return ["Ива"]  # prefix: an anchored regex on the folded form
    if t == "date":
        return ["ge2020", "2020", "lt2020"]  # $elemMatch {$or: [...]}, $elemMatch {l, h}, a single bound
    if t == "reference":
        return [_reference_value(p)]
    if t == "quantity":
        return ["gt1", "5.4|http://unitsofmeasure.org|mg"]  # one bound; canonical-unit $or in $elemMatch
    if t == "number":
        return ["gt1"]
    if t == "uri":
        return ["http://example.org/fhir/x"]
    if t == "composite":
        return ["$".join(COMPONENT_VALUE[c.type] for c in p.components)]
    return []  # a type this test does not know: reported as a skipped case


def cases() -> list:
    out = []
    for rtype in CARD_TYPES:
        for code, p in sorted(params_of(rtype).items()):
            vals = values_for(p)
            if not vals:
                out.append(pytest.param(rtype, code, None, id=f"{rtype}?{code}", marks=pytest.mark.skip(reason=f"no value for type {p.type}")))
            for v in vals:
                out.append(pytest.param(rtype, code, v, id=f"{rtype}?{code}={v}"))
    return out


# -- reading explain output ---------------------------------------------------------------------------
_CHILDREN = ("queryPlan", "winningPlan", "inputStage", "inputStages", "shards", "thenStage", "elseStage")


def winning_plan(explain: dict) -> dict:
    planner = explain.get("queryPlanner")
    assert isinstance(planner, dict) and "winningPlan" in planner, f"unexpected explain output: {_short(explain)}"
    return planner["winningPlan"]


def plan_nodes(node) -> list[dict]:
    """Every stage node of a plan tree, root first.

    Classic: {stage, inputStage | inputStages}; slot-based (7.0+): {queryPlan: {...}, slotBasedPlan};
    sharded: {stage: SHARD_MERGE | SINGLE_SHARD, shards: [{winningPlan: ...}]}.
    """
    if isinstance(node, list):
        return [n for x in node for n in plan_nodes(x)]
    if not isinstance(node, dict):
        return []
    out = [node] if isinstance(node.get("stage"), str) else []
    for key in _CHILDREN:
        if key in node:
            out.extend(plan_nodes(node[key]))
    return out


def stages(node) -> list[str]:
    return [n["stage"] for n in plan_nodes(node)]


def describe(node) -> str:
    """The plan as one line: FETCH > IXSCAN(search_values {$_path: 1, idx.code.c: 1})."""
    parts = []
    for n in plan_nodes(node):
        s = n["stage"]
        if "indexName" in n:
            s += f"({n['indexName']} {json.dumps(n.get('keyPattern'), ensure_ascii=False, default=str)})"
        parts.append(s)
    return " > ".join(parts)


def _short(doc, n: int = 600) -> str:
    return json.dumps(doc, ensure_ascii=False, default=str)[:n]


# -- the store ------------------------------------------------------------------------------------
def _copies(resource: dict, n: int) -> list[dict]:
    """n variants of a demo resource under new ids (same references: they resolve to the demo card)."""
    out = []
    for k in range(1, n + 1):
        r = copy.deepcopy(resource)
        r["id"] = f"{resource['id']}-{k}"
        if r["resourceType"] == "Observation" and "effectiveDateTime" in r:
            r["effectiveDateTime"] = f"202{k}-0{k}-1{k}T09:30:00+03:00"
        if r["resourceType"] == "Patient":
            r["birthDate"] = f"19{60 + k}-0{k}-1{k}"
        out.append(r)
    return out


@pytest.fixture(scope="module")
def store():
    """A fresh database with the demo card and a few more resources of each card type."""
    settings = make_settings()
    assert not settings.embedded
    app = create_app(settings)
    st = app.config["FHIR_STORE"]
    try:
        client = app.test_client()
        r = client.post("/fhir", data=json.dumps(demo_bundle(), ensure_ascii=False).encode(),
                        headers={"Content-Type": "application/fhir+json"})
        assert r.status_code == 200, r.get_data(as_text=True)
        for res in demo_resources():
            for c in _copies(res, COPIES):
                r = client.put(f"/fhir/{c['resourceType']}/{c['id']}", data=json.dumps(c, ensure_ascii=False).encode(),
                               headers={"Content-Type": "application/fhir+json"})
                assert r.status_code in (200, 201), r.get_data(as_text=True)
        for t in CARD_TYPES:
            assert st.db[t].count_documents({"d": False}) >= COPIES, t
        yield st
    finally:
        st.engine.client.drop_database(settings.db_name)
        st.engine.close()


def compile_search(st, rtype: str, params: list[tuple[str, str]]):
    """(filter, parsed) exactly as the search interaction compiles them."""
    parsed = parse(rtype, params, BASE)
    assert not parsed.unknown, f"{rtype}: parameters not understood: {parsed.unknown}"
    return execute.filter_for(st.reader(), rtype, parsed.criteria), parsed


# -- tests --------------------------------------------------------------------------------------------
def test_wildcard_indexes_exist(store):
    for t in CARD_TYPES:
        info = store.db[t].index_information()
        assert {"search_values", "sort_keys"} <= set(info), (t, sorted(info))
        assert info["search_values"]["key"] == [("idx.$**", 1)], info["search_values"]
        assert info["sort_keys"]["key"] == [("sk.$**", 1)], info["sort_keys"]


@pytest.mark.parametrize("rtype,code,value", cases())
def test_search_parameter_is_served_by_an_index(store, rtype, code, value):
    flt, _ = compile_search(store, rtype, [(code, value)])
    explain = store.db[rtype].find({"d": False, **flt}).explain()
    plan = winning_plan(explain)
    got = stages(plan)
    assert got, f"no stages found in the winning plan: {_short(plan)}"
    assert SCAN not in got, (
        f"{rtype}?{code}={value} compiles to {_short(flt, 400)}; its winning plan scans the collection: {describe(plan)}"
    )


SORTED = [
    ("Observation", [("patient", "Patient/demo-patient-1"), ("_sort", "-date")]),
    ("Observation", [("code", f"{TOKEN_SYSTEM}|4548-4"), ("_sort", "date"), ("_count", "20")]),
    ("Encounter", [("subject", "Patient/demo-patient-1"), ("_sort", "-date,_id")]),
]


@pytest.mark.parametrize("rtype,params", SORTED, ids=[f"{t}?{'&'.join(f'{k}={v}' for k, v in p)}" for t, p in SORTED])
def test_sort_by_parameter_is_served(store, rtype, params):
    """`_sort` by a parameter: the page query as Unit.search runs it (sort keys + _id, limit count+1).

    A wildcard index cannot give the order of (sk.<code>.a|d, _id) (see the module docstring),
    so a blocking SORT is expected; it must sit above an index scan, never above a COLLSCAN.
    """
    flt, parsed = compile_search(store, rtype, params)
    fields = execute.sort_fields(parsed.sort)
    assert fields[0][0].startswith("sk."), fields
    limit = (parsed.count or 20) + 1
    explain = store.db[rtype].find({"d": False, **flt}, {"idx": 0}).sort(fields).limit(limit).explain()
    plan = winning_plan(explain)
    got = stages(plan)
    assert SCAN not in got, f"{rtype} {params}: filter {_short(flt, 300)}, sort {fields}: {describe(plan)}"
    for node in plan_nodes(plan):
        if node["stage"] == "SORT":
            below = stages(node.get("inputStage") or node.get("inputStages") or [])
            assert SCAN not in below and any(s.endswith("IXSCAN") for s in below), f"blocking SORT not above an index scan: {describe(plan)}"
