"""Reference and uri parameters, chaining and reverse chaining over HTTP
(R4 search.html 3.1.1.4.10 reference, 3.1.1.4.13 uri, 3.1.1.4.11 chained, 3.1.1.4.12 _has).
"""

from __future__ import annotations

import pytest

from ._data import BASE, LOINC, ids, mk, obs, patient, private_client

SNILS = "urn:oid:1.2.643.100.3"


def _world(client) -> dict[str, str]:
    w: dict[str, str] = {}
    w["org1"] = mk(client, {"resourceType": "Organization", "name": "Клиника Здоровье"})
    w["org2"] = mk(client, {"resourceType": "Organization", "name": "Больница №2"})
    w["pat1"] = mk(
        client,
        patient("Иванов", ["Иван"], managingOrganization={"reference": f"Organization/{w['org1']}"}, identifier=[{"system": SNILS, "value": "111"}]),
    )
    w["pat2"] = mk(client, patient("Петров", ["Пётр"], managingOrganization={"reference": f"{BASE}/Organization/{w['org2']}"}))
    w["pat3"] = mk(client, patient("Иванова", ["Анна"]))
    w["grp"] = mk(client, {"resourceType": "Group", "type": "person", "actual": True, "name": "Иванов и партнёры"})
    w["loc"] = mk(client, {"resourceType": "Location", "name": "Иванов кабинет"})
    pat1, pat2, grp, loc = w["pat1"], w["pat2"], w["grp"], w["loc"]
    w["o1"] = mk(client, obs("A", subject=f"Patient/{pat1}"))
    w["o2"] = mk(client, obs("B", subject=f"{BASE}/Patient/{pat2}"))  # absolute URL on this server
    w["o3"] = mk(client, obs("A", subject=f"Group/{grp}"))
    w["o4"] = mk(client, obs("C") | {"subject": {"type": "Patient", "identifier": {"system": SNILS, "value": "111"}}})
    w["o5"] = mk(client, obs("A"))  # no subject
    w["o6"] = mk(client, obs("C", subject=f"Patient/{pat1}/_history/1"))  # versioned
    w["o7"] = mk(client, obs("A", subject=f"http://other.example.org/fhir/Patient/{pat1}"))  # another server
    w["o8"] = mk(client, obs("D", subject=f"Location/{loc}"))
    # logical references: without a type nothing says the target is a Patient; a literal
    # reference next to the identifier tells the identifier's target type too
    w["o9"] = mk(client, obs("E") | {"subject": {"identifier": {"system": SNILS, "value": "222"}}})
    w["o10"] = mk(client, obs("E") | {"subject": {"reference": f"Group/{grp}", "identifier": {"system": SNILS, "value": "333"}}})
    return w


def _check(client, w, rtype, query, expected):
    query = query.format(**w)
    want = {w[k] for k in expected}
    got = ids(client, f"/fhir/{rtype}?{query}")
    back = {v: k for k, v in w.items()}
    assert got == want, (query, sorted(back.get(i, i) for i in got), sorted(expected))


ALL_OBS = {f"o{i}" for i in range(1, 11)}
REFERENCE_CASES = [
    ("subject=Patient/{pat1}", {"o1", "o6"}),
    ("subject={pat1}", {"o1", "o6"}),
    ("subject=" + BASE + "/Patient/{pat1}", {"o1", "o6"}),
    ("subject=Patient/{pat1}/_history/1", {"o1", "o6"}),
    ("subject=Patient/{pat2}", {"o2"}),
    ("subject={pat2}", {"o2"}),
    ("subject=" + BASE + "/Patient/{pat2}", {"o2"}),
    ("subject=Patient/{pat3}", set()),
    ("subject=Group/{pat1}", set()),
    ("subject:Patient={pat1}", {"o1", "o6"}),
    ("subject:Patient={grp}", set()),
    ("subject:Patient=" + BASE + "/Patient/{pat1}", {"o1", "o6"}),
    ("subject:Group={grp}", {"o3", "o10"}),
    ("subject=Group/{grp}", {"o3", "o10"}),
    ("subject:Location={loc}", {"o8"}),
    ("subject=Patient/{pat1},Group/{grp}", {"o1", "o6", "o3", "o10"}),
    ("subject=Patient/{pat1}&subject=Patient/{pat2}", set()),
    ("subject=http://other.example.org/fhir/Patient/{pat1}", {"o7"}),
    ("subject:identifier=" + SNILS + "|111", {"o4"}),
    ("subject:identifier=111", {"o4"}),
    ("subject:identifier=" + SNILS + "|112", set()),
    ("subject:identifier=" + SNILS + "|222", {"o9"}),
    ("subject:identifier=333", {"o10"}),
    ("subject:missing=true", {"o5"}),
    ("subject:missing=false", ALL_OBS - {"o5"}),
    # patient: only references to a Patient
    ("patient={pat1}", {"o1", "o6"}),
    ("patient=Patient/{pat1}", {"o1", "o6"}),
    ("patient={grp}", set()),
    ("patient:Patient={pat2}", {"o2"}),
    ("patient:identifier=" + SNILS + "|111", {"o4"}),
    ("patient:identifier=" + SNILS + "|222", set()),
    ("patient:identifier=333", set()),
    ("patient:missing=true", {"o3", "o5", "o8", "o9", "o10"}),
    ("patient:missing=false", {"o1", "o2", "o4", "o6", "o7"}),
    # chains
    ("subject:Patient.name=иванов", {"o1", "o6"}),
    ("subject:Patient.family=петров", {"o2"}),
    ("subject:Patient.name=сидоров", set()),  # the chain's target matches nothing
    ("subject:Patient.name=иванов&subject:Patient.given=анна", set()),
    ("subject:Patient.identifier=" + SNILS + "|111", {"o1", "o6"}),
    ("subject:Patient._id={pat2}", {"o2"}),
    ("subject:Location.name=иванов", {"o8"}),
    ("subject.name=иванов", {"o1", "o6", "o8"}),  # every target type with a `name` (Group has none)
    ("patient.name=иванов", {"o1", "o6"}),
    ("subject:Patient.name=иванов,петров", {"o1", "o6", "o2"}),
    # two levels
    ("subject:Patient.organization.name=клиника", {"o1", "o6"}),
    ("subject:Patient.organization.name=больница", {"o2"}),
    ("subject:Patient.organization:Organization.name=БОЛЬНИЦА", {"o2"}),
    ("subject:Patient.organization.name=поликлиника", set()),
    ("patient.organization._id={org2}", {"o2"}),
    ("subject:Patient.organization:missing=false", {"o1", "o6", "o2"}),
    ("subject:Patient.organization:missing=true", set()),
    ("subject:Patient.organization.name=клиника&code=A", {"o1"}),
]


@pytest.mark.parametrize("query,expected", REFERENCE_CASES, ids=[q for q, _ in REFERENCE_CASES])
def test_observation_references(world_ro, query, expected):
    client, world = world_ro
    _check(client, world, "Observation", query, expected)


PATIENT_CASES = [
    ("organization={org1}", {"pat1"}),
    ("organization=Organization/{org2}", {"pat2"}),  # stored as an absolute URL on this server
    ("organization=" + BASE + "/Organization/{org1}", {"pat1"}),
    ("organization:missing=true", {"pat3"}),
    ("organization.name=клиника", {"pat1"}),
    ("organization.name=клиника,больница", {"pat1", "pat2"}),
    ("organization.name=аптека", set()),
    # reverse chaining
    ("_has:Observation:subject:code=A", {"pat1"}),
    ("_has:Observation:subject:code=B", {"pat2"}),
    ("_has:Observation:subject:code=C", {"pat1"}),  # through the versioned reference
    ("_has:Observation:subject:code=D", set()),  # a Location's observation
    ("_has:Observation:patient:code=A", {"pat1"}),
    ("_has:Observation:subject:code=A,B", {"pat1", "pat2"}),
    ("_has:Observation:subject:code=A&_has:Observation:subject:code=C", {"pat1"}),
    ("_has:Observation:subject:code=A&_has:Observation:subject:code=B", set()),
    ("_has:Observation:subject:code=" + LOINC + "|A", {"pat1"}),
    ("_has:Observation:subject:code=Z", set()),
    ("_has:Observation:subject:code=A&family=петров", set()),
    ("_has:Observation:subject:code=A,B&family=петров", {"pat2"}),
]


@pytest.mark.parametrize("query,expected", PATIENT_CASES, ids=[q for q, _ in PATIENT_CASES])
def test_patient_references(world_ro, query, expected):
    client, world = world_ro
    _check(client, world, "Patient", query, expected)


def test_has_on_group_and_organization(world_ro):
    client, world = world_ro
    assert ids(client, "/fhir/Group?_has:Observation:subject:code=A") == {world["grp"]}
    assert ids(client, "/fhir/Organization?_has:Patient:organization:family=иванов") == {world["org1"]}
    assert ids(client, "/fhir/Organization?_has:Patient:organization:_has:Observation:subject:code=B") == {world["org2"]}
    assert ids(client, "/fhir/Organization?_has:Patient:organization:_has:Observation:subject:code=D") == set()


def test_nested_has(client, world):
    """Patients with an Encounter that an Observation with code Z refers to."""
    enc = lambda pid: {  # noqa: E731
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    e1 = mk(client, enc(world["pat1"]))
    e2 = mk(client, enc(world["pat2"]))
    oz = mk(client, obs("Z") | {"encounter": {"reference": f"Encounter/{e2}"}})
    oy = mk(client, obs("Y") | {"encounter": {"reference": f"Encounter/{e1}"}})
    assert ids(client, "/fhir/Patient?_has:Encounter:subject:_has:Observation:encounter:code=Z") == {world["pat2"]}
    assert ids(client, "/fhir/Patient?_has:Encounter:patient:_has:Observation:encounter:code=Y,Z") == {world["pat1"], world["pat2"]}
    assert ids(client, "/fhir/Patient?_has:Encounter:subject:_has:Observation:encounter:code=X") == set()
    # and the chain the other way round
    assert ids(client, "/fhir/Observation?encounter:Encounter.subject:Patient.family=петров") == {oz}
    assert ids(client, "/fhir/Observation?encounter.patient={pat}".format(pat=world["pat1"])) == {oy}
    assert ids(client, "/fhir/Observation?encounter.subject:Patient.family=сидоров") == set()


VALUESETS = {
    "v1": "http://example.org/fhir/ValueSet",
    "v2": "http://example.org/fhir/ValueSet/a",
    "v3": "http://example.org/fhir/ValueSet/a/b",
    "v4": "http://example.org/fhir/ValueSet/ab",
    "v5": "http://other.example.org/fhir/ValueSet/a",
    "v6": "urn:oid:1.2.643.5.1.13",
}


def _valuesets(client) -> dict[str, str]:
    out = {k: mk(client, {"resourceType": "ValueSet", "status": "active", "url": u}) for k, u in VALUESETS.items()}
    out["v7"] = mk(client, {"resourceType": "ValueSet", "status": "draft"})
    return out


URI_CASES = [
    ("url=http://example.org/fhir/ValueSet/a", {"v2"}),
    ("url=http://example.org/fhir/ValueSet/A", set()),  # uris are case-sensitive
    ("url=http://example.org/fhir/ValueSet/", set()),
    ("url=http://example.org/fhir/ValueSet", {"v1"}),  # exact, not a prefix
    ("url=urn:oid:1.2.643.5.1.13", {"v6"}),
    ("url=urn:oid:1.2.643.5.1", set()),
    ("url=http://example.org/fhir/ValueSet/a,urn:oid:1.2.643.5.1.13", {"v2", "v6"}),
    ("url:below=http://example.org/fhir/ValueSet/a/", {"v3"}),
    ("url:below=http://example.org/fhir", {"v1", "v2", "v3", "v4"}),
    ("url:below=http://other.example.org", {"v5"}),
    ("url:below=http://example.org/fhir/CodeSystem", set()),
    ("url:above=http://example.org/fhir/ValueSet/a/b/c", {"v1", "v2", "v3"}),
    ("url:above=http://example.org/fhir/ValueSet/a", {"v1", "v2"}),
    ("url:above=http://example.org/fhir/ValueSet/ab/c", {"v1", "v4"}),
    ("url:above=http://example.org/fhir", set()),
    ("url:missing=true", {"v7"}),
    ("url:missing=false", set(VALUESETS)),
]


@pytest.mark.parametrize("query,expected", URI_CASES, ids=[q for q, _ in URI_CASES])
def test_uri(valuesets_ro, query, expected):
    client, valuesets = valuesets_ro
    _check(client, valuesets, "ValueSet", query, expected)


def test_profile_and_source(client):
    prof = "http://fhir.example.ru/StructureDefinition/ru-patient"
    a = mk(client, patient("А", meta={"profile": [prof], "source": "urn:example:mis#1"}))
    b = mk(client, patient("Б", meta={"profile": [prof + "-child"]}))
    c = mk(client, patient("В"))
    assert ids(client, f"/fhir/Patient?_profile={prof}") == {a}
    assert ids(client, f"/fhir/Patient?_profile:missing=true") == {c}
    assert ids(client, f"/fhir/Patient?_profile={prof},{prof}-child") == {a, b}
    assert ids(client, "/fhir/Patient?_source=urn:example:mis#1") == {a}
    assert ids(client, "/fhir/Patient?_source:missing=false") == {a}


@pytest.fixture
def world(client) -> dict[str, str]:
    return _world(client)


@pytest.fixture(scope="module")
def world_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _world(c)


@pytest.fixture(scope="module")
def valuesets_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _valuesets(c)
