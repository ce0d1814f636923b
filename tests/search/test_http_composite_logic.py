"""Composite parameters, OR (commas), AND (repetition) and escaping over HTTP
(R4 search.html 3.1.1.4.8 composite, 3.1.1.3 AND/OR, 3.1.1.1.1 escaping).
"""

from __future__ import annotations

import pytest

from ._data import LOINC, SNOMED, UCUM, concept, ids, mk, obs, patient, private_client, qty


def _bp(sys_v, dia_v) -> dict:
    return obs(
        code="85354-9",
        component=[
            {"code": concept(LOINC, "8480-6"), "valueQuantity": qty(sys_v, "mm[Hg]")},
            {"code": concept(LOINC, "8462-4"), "valueQuantity": qty(dia_v, "mm[Hg]")},
        ],
    )


def _composites(client) -> dict[str, str]:
    w = {}
    w["c1"] = mk(client, obs("8480-6", valueQuantity=qty(150, "mm[Hg]")))
    w["c2"] = mk(client, obs("8480-6", valueQuantity=qty(90, "mm[Hg]")))
    w["c3"] = mk(client, obs("8462-4", valueQuantity=qty(150, "mm[Hg]")))
    w["c4"] = mk(client, _bp(120, 80))
    w["c5"] = mk(client, _bp(95, 130))  # crossing values: systolic low, diastolic high
    w["c6"] = mk(client, obs("LA-x", valueCodeableConcept=concept(SNOMED, "10828004")))
    w["c7"] = mk(client, obs("LA-x", valueCodeableConcept=concept(SNOMED, "260385009")))
    w["c8"] = mk(client, obs("LA-y", valueCodeableConcept=concept(SNOMED, "10828004")))
    w["c9"] = mk(client, obs("a$b", system="urn:example:codes", valueCodeableConcept=concept("urn:example:codes", "c,d")))
    return w


def _check(client, keyed, rtype, query, expected):
    want = {keyed[k] for k in expected}
    got = ids(client, f"/fhir/{rtype}?{query}")
    back = {v: k for k, v in keyed.items()}
    assert got == want, (query, sorted(back.get(i, i) for i in got), sorted(expected))


COMPOSITE_CASES = [
    (f"code-value-quantity={LOINC}|8480-6$gt100", {"c1"}),
    ("code-value-quantity=8480-6$gt100", {"c1"}),
    (f"code-value-quantity={LOINC}|8480-6$lt100", {"c2"}),
    (f"code-value-quantity={LOINC}|8462-4$150", {"c3"}),
    (f"code-value-quantity={LOINC}|8480-6$150|{UCUM}|mm[Hg]", {"c1"}),
    (f"code-value-quantity={LOINC}|8480-6$20|{UCUM}|kPa", {"c1"}),  # 150 mm[Hg] = 20.0 kPa
    (f"code-value-quantity={LOINC}|8480-6$150||mm[Hg]", {"c1"}),
    (f"code-value-quantity={LOINC}|8480-6$150|{UCUM}|g", set()),
    (f"code-value-quantity={LOINC}|8480-6$gt100,{LOINC}|8462-4$gt100", {"c1", "c3"}),
    (f"code-value-quantity={LOINC}|8480-6$gt100&code-value-quantity={LOINC}|8480-6$lt200", {"c1"}),
    (f"code-value-quantity={LOINC}|8480-6$gt100&code-value-quantity={LOINC}|8480-6$lt100", set()),
    (f"code-value-quantity={SNOMED}|8480-6$gt100", set()),
    # components: code and value of the SAME component
    (f"component-code-value-quantity={LOINC}|8480-6$gt100", {"c4"}),
    (f"component-code-value-quantity={LOINC}|8462-4$gt100", {"c5"}),
    (f"component-code-value-quantity={LOINC}|8480-6$lt100", {"c5"}),
    (f"component-code-value-quantity={LOINC}|8462-4$lt100", {"c4"}),
    (f"component-code-value-quantity={LOINC}|8480-6$ge95&component-code-value-quantity={LOINC}|8462-4$ge100", {"c5"}),
    (f"component-code-value-quantity={LOINC}|8480-6$150", set()),  # only the root has 8480-6 = 150
    # combo: the root or a component
    (f"combo-code-value-quantity={LOINC}|8480-6$gt100", {"c1", "c4"}),
    (f"combo-code-value-quantity={LOINC}|8462-4$gt100", {"c3", "c5"}),
    (f"combo-code-value-quantity={LOINC}|8480-6$lt100", {"c2", "c5"}),
    # code-value-concept
    (f"code-value-concept={LOINC}|LA-x${SNOMED}|10828004", {"c6"}),
    ("code-value-concept=LA-x$10828004", {"c6"}),
    (f"code-value-concept={LOINC}|LA-x${SNOMED}|260385009", {"c7"}),
    (f"code-value-concept={LOINC}|LA-x$10828004,{LOINC}|LA-y$10828004", {"c6", "c8"}),
    ("code-value-concept=LA-y$260385009", set()),
    (f"code-value-concept={LOINC}|LA-x${LOINC}|10828004", set()),
    # escaping: \$ and \, inside composite parts
    ("code-value-concept=urn:example:codes|a\\$b$urn:example:codes|c\\,d", {"c9"}),
    ("code-value-concept=a\\$b$c\\,d", {"c9"}),
    ("code=urn:example:codes|a\\$b", {"c9"}),
    ("code=a\\$b", {"c9"}),
    ("value-concept=c\\,d", {"c9"}),
    ("value-concept=c,d", set()),
]


@pytest.mark.parametrize("query,expected", COMPOSITE_CASES, ids=[q for q, _ in COMPOSITE_CASES])
def test_composite(composites_ro, query, expected):
    client, composites = composites_ro
    _check(client, composites, "Observation", query, expected)


PEOPLE = {
    "SJ": patient("Smith,Jones", ["Анна", "Мария"], birthDate="1940-01-01"),
    "S": patient("Smith", ["Анна"], birthDate="1960-01-01"),
    "J": patient("Jones", ["Мария"], birthDate="2005-06-01"),
    "P": patient("a|b", ["Ольга"], birthDate="1975-01-01"),
    "BS": patient("back\\slash", ["Олег"], birthDate="2010-01-01"),
    "D": patient("price$5", ["Анна", "Ольга"]),
}


def _people(client) -> dict[str, str]:
    return {k: mk(client, r) for k, r in PEOPLE.items()}


LOGIC_CASES = [
    # OR with commas
    ("family=smith,jones", {"SJ", "S", "J"}),
    ("family=jones,nobody", {"J"}),
    ("given=мария,ольга", {"SJ", "J", "P", "D"}),
    ("birthdate=lt1950,gt2000", {"SJ", "J", "BS"}),
    # AND with repetition: both must hold (different values of one resource may satisfy each)
    ("given=анна&given=мария", {"SJ"}),
    ("given=анна&given=ольга", {"D"}),
    ("given=анна&given=олег", set()),
    ("given=анна,ольга&given=мария", {"SJ"}),
    ("given=анна,ольга&birthdate=ge1950", {"S", "P"}),
    ("family=smith&family=jones", set()),
    # escaping
    ("family=smith\\,jones", {"SJ"}),
    ("family:exact=Smith\\,Jones", {"SJ"}),
    ("family:exact=Smith,Jones", {"S", "J"}),
    ("family:contains=h\\,j", {"SJ"}),
    ("family=a|b", {"P"}),
    ("family=a\\|b", {"P"}),
    ("family=back\\\\slash", {"BS"}),
    ("family:exact=back\\\\slash", {"BS"}),
    ("family=price$5", {"D"}),
    ("family=price\\$5", {"D"}),
]


@pytest.mark.parametrize("query,expected", LOGIC_CASES, ids=[q for q, _ in LOGIC_CASES])
def test_or_and_escaping(people_ro, query, expected):
    client, people = people_ro
    _check(client, people, "Patient", query, expected)


def test_missing_on_every_type(client):
    """:missing=true|false on string, token, date, reference, uri, number, quantity."""
    full = mk(
        client,
        obs(
            "X",
            subject="Patient/p1",
            effectiveDateTime="2020-01-01",
            valueQuantity=qty(1, "g"),
            category=[concept("urn:cat", "lab")],
            meta={"profile": ["http://example.org/StructureDefinition/obs"]},
        ),
    )
    bare = mk(client, obs("X"))
    for param in ("subject", "date", "value-quantity", "category", "_profile"):
        assert ids(client, f"/fhir/Observation?{param}:missing=true") == {bare}, param
        assert ids(client, f"/fhir/Observation?{param}:missing=false") == {full}, param
    assert ids(client, "/fhir/Observation?code:missing=false") == {full, bare}
    assert ids(client, "/fhir/Observation?code:missing=true") == set()
    assert ids(client, "/fhir/Observation?subject:missing=true&date:missing=false") == set()
    r1 = mk(client, {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/p1"}, "prediction": [{"probabilityDecimal": 5}]})
    r2 = mk(client, {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/p1"}})
    assert ids(client, "/fhir/RiskAssessment?probability:missing=true") == {r2}
    assert ids(client, "/fhir/RiskAssessment?probability:missing=false") == {r1}
    o1 = mk(client, {"resourceType": "Organization", "name": "Орг"})
    o2 = mk(client, {"resourceType": "Organization"})
    assert ids(client, "/fhir/Organization?name:missing=true") == {o2}
    assert ids(client, "/fhir/Organization?name:missing=false") == {o1}


@pytest.fixture(scope="module")
def composites_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _composites(c)


@pytest.fixture(scope="module")
def people_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _people(c)
