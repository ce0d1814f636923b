"""The embedded engine's inverted index of search values never changes a query's answer.

It only narrows mongomock's scan: for every filter shape the search compiler emits,
the results with the index must equal a plain full scan, after writes, updates,
deletes and rolled-back transactions alike.
"""

from __future__ import annotations

import pytest

from tests.conftest import patient

from fhir_server.search import execute
from fhir_server.search.query import parse

QUERIES = [
    ("Patient", "identifier=urn:oid:1.2.643.100.3|100"),
    ("Patient", "identifier=100,101,nope"),
    ("Patient", "gender=female&identifier=101"),
    ("Patient", "family:exact=Петрова"),
    ("Patient", "name=пет"),
    ("Observation", "subject=Patient/p1"),
    ("Observation", "patient=p1,p2"),
    ("Observation", "code=http://loinc.org|8480-6&subject=Patient/p2"),
    ("Observation", "subject:Patient.gender=female"),
    ("Observation", "code:not=8480-6"),
    ("Observation", "code-value-quantity=http://loinc.org|8480-6$gt100"),
    ("Patient", "_has:Observation:subject:code=8480-6"),
    ("Patient", "identifier:missing=true"),
    ("Patient", "identifier:missing=false&gender=male"),
    ("Observation", "subject:missing=false"),
    ("Observation", "encounter:missing=true"),
]


def _ids(store, rtype, query, accel: bool):
    coll_store = store.engine.db[rtype]._store
    saved = getattr(coll_store, "fhir_search_values", None)
    if not accel:
        coll_store.fhir_search_values = None
    try:
        reader = store.reader()
        flt = execute.filter_for(reader, rtype, parse(rtype, [tuple(p.split("=", 1)) for p in query.split("&")]).criteria)
        return sorted(v.id for v in reader.search(rtype, flt, [("_id", 1)], 1000))
    finally:
        coll_store.fhir_search_values = saved


def _obs(rid, pid, code, value):
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    }


@pytest.fixture
def loaded(client, app):
    if not app.config["FHIR_SETTINGS"].embedded:
        pytest.skip("the inverted index belongs to the embedded engine")
    for i, (family, gender) in enumerate([("Петрова", "female"), ("Иванов", "male"), ("Петров", "male")]):
        ident = [{"system": "urn:oid:1.2.643.100.3", "value": str(100 + i)}]
        assert client.put(f"/fhir/Patient/p{i + 1}", patient(id=f"p{i + 1}", name=[{"family": family}], gender=gender, identifier=ident)).status_code == 201
    for i, (pid, code, value) in enumerate([("p1", "8480-6", 120), ("p2", "8480-6", 90), ("p2", "8462-4", 80), ("p3", "8480-6", 150)]):
        assert client.put(f"/fhir/Observation/o{i}", _obs(f"o{i}", pid, code, value)).status_code == 201
    return app.config["FHIR_STORE"]


def _assert_same(store):
    for rtype, query in QUERIES:
        assert _ids(store, rtype, query, True) == _ids(store, rtype, query, False), query


def test_index_agrees_with_scan(loaded):
    _assert_same(loaded)
    assert _ids(loaded, "Observation", "patient=p2", True) == ["o1", "o2"]


def test_index_follows_updates_and_deletes(client, loaded):
    client.put("/fhir/Observation/o1", _obs("o1", "p3", "8480-6", 95))
    client.delete("/fhir/Observation/o3")
    client.put("/fhir/Patient/p1", patient(id="p1", name=[{"family": "Сидорова"}], gender="female"))
    _assert_same(loaded)
    assert _ids(loaded, "Observation", "patient=p2", True) == ["o2"]
    assert _ids(loaded, "Patient", "identifier=100", True) == []
    assert _ids(loaded, "Patient", "identifier:missing=true", True) == ["p1"]
    assert _ids(loaded, "Patient", "identifier:missing=false", True) == ["p2", "p3"]


def test_index_follows_rolled_back_transactions(client, loaded):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": _obs("o1", "p1", "1111-1", 1), "request": {"method": "PUT", "url": "Observation/o1"}},
            {"resource": _obs("o9", "p1", "1111-1", 1), "request": {"method": "PUT", "url": "Observation/o9"}},
            {"request": {"method": "DELETE", "url": "Patient/p2"}},
            # Runs last (PUTs after DELETE and POST) and fails: everything above is undone.
            {"resource": patient(id="p3"), "request": {"method": "PUT", "url": "Patient/p3", "ifMatch": 'W/"9"'}},
        ],
    }
    r = client.post("/fhir", bundle)
    assert r.status_code == 412, r.get_data(as_text=True)
    _assert_same(loaded)
    assert _ids(loaded, "Observation", "code=1111-1", True) == []
    assert _ids(loaded, "Observation", "patient=p2", True) == ["o1", "o2"]
