"""Token search parameters over HTTP (R4 search.html 3.1.1.4.9, 3.1.1.5.x modifiers).

[code], [system]|[code], |[code] (no system), [system]| (any code of the system),
:not (includes resources without a value), :text (CodeableConcept.text, Coding.display,
Identifier.type.text), :of-type on Identifier, booleans, ContactPoint, _id, _tag, _security.
"""

from __future__ import annotations

import pytest

from ._data import LOINC, SNOMED, V2_0203, coding, ids, mk, obs, patient, private_client

SNILS = "urn:oid:1.2.643.100.3"
OMS = "urn:oid:1.2.643.2.69.1.1.1.6.228"
TAGS = "urn:example:tags"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

PEOPLE = {
    "A": patient(
        "Альфа",
        identifier=[{"system": SNILS, "value": "123", "type": {"coding": [coding(V2_0203, "SB")], "text": "СНИЛС"}}],
        active=True,
        gender="male",
        telecom=[{"system": "phone", "value": "+7 900 000-00-01"}, {"system": "email", "value": "a@example.ru"}],
        meta={"tag": [coding(TAGS, "vip", "Особый пациент")], "security": [coding(CONF, "R", "restricted")]},
    ),
    "B": patient(
        "Бета",
        identifier=[{"system": OMS, "value": "123"}],
        active=False,
        gender="female",
        telecom=[{"system": "email", "value": "b@example.ru"}],
        meta={"tag": [coding(TAGS, "regular")], "security": [coding(CONF, "N")]},
    ),
    "C": patient(
        "Гамма",
        identifier=[{"value": "123"}],
        gender="unknown",
        telecom=[{"system": "phone", "value": "a@example.ru"}],  # a phone whose value looks like A's email
        meta={"tag": [coding("urn:example:other", "vip")]},
    ),
    "D": patient(
        "Дельта",
        identifier=[{"system": SNILS, "value": "456", "type": {"coding": [coding(V2_0203, "MR")]}}, {"system": "urn:x", "value": "a|b,c$d"}],
        gender="other",
    ),
    "E": patient("Эпсилон"),
}
ALL = set(PEOPLE)


def _people(client) -> dict[str, str]:
    return {k: mk(client, r) for k, r in PEOPLE.items()}


def _check(client, keyed, rtype, query, expected):
    want = {keyed[k] for k in expected}
    got = ids(client, f"/fhir/{rtype}?{query}")
    back = {v: k for k, v in keyed.items()}
    assert got == want, (query, sorted(back.get(i, i) for i in got), sorted(expected))


PATIENT_CASES = [
    # identifier: code only, system|code, |code, system|
    ("identifier=123", {"A", "B", "C"}),
    (f"identifier={SNILS}|123", {"A"}),
    (f"identifier={OMS}|123", {"B"}),
    ("identifier=|123", {"C"}),
    (f"identifier={SNILS}|", {"A", "D"}),
    (f"identifier={SNILS}|12", set()),  # tokens are never prefixes
    ("identifier=12", set()),
    ("identifier=urn:x|a\\|b\\,c\\$d", {"D"}),  # escaped | and , in the value
    ("identifier=a\\|b\\,c\\$d", {"D"}),
    ("identifier=a|b", set()),  # unescaped: system a, code b
    # :not - includes resources with no value at all
    (f"identifier:not={SNILS}|123", {"B", "C", "D", "E"}),
    ("identifier:not=123", {"D", "E"}),
    # :of-type - Identifier.type coding | value
    (f"identifier:of-type={V2_0203}|SB|123", {"A"}),
    (f"identifier:of-type={V2_0203}|MR|456", {"D"}),
    (f"identifier:of-type={V2_0203}|SB|456", set()),
    (f"identifier:of-type={V2_0203}|MR|123", set()),
    # :text on Identifier.type.text
    ("identifier:text=снилс", {"A"}),
    ("identifier:text=СН", {"A"}),
    # boolean
    ("active=true", {"A"}),
    ("active=false", {"B"}),
    ("active:not=true", {"B", "C", "D", "E"}),
    ("active:not=false", {"A", "C", "D", "E"}),
    ("active:missing=true", {"C", "D", "E"}),
    ("active:missing=false", {"A", "B"}),
    # code
    ("gender=male", {"A"}),
    ("gender=male,female", {"A", "B"}),
    ("gender=http://hl7.org/fhir/administrative-gender|female", {"B"}),
    ("gender:not=male", {"B", "C", "D", "E"}),
    ("gender:not=male&gender:not=female", {"C", "D", "E"}),
    ("gender:not=male,female", {"C", "D", "E"}),
    ("gender:missing=true", {"E"}),
    # ContactPoint: phone / email / telecom
    ("phone=+7 900 000-00-01", {"A"}),
    ("phone=a@example.ru", {"C"}),
    ("email=a@example.ru", {"A"}),
    ("email=b@example.ru", {"B"}),
    ("email=a@example", set()),
    ("telecom=a@example.ru", {"A", "C"}),
    ("telecom=phone|a@example.ru", {"C"}),
    ("telecom=email|a@example.ru", {"A"}),
    ("email:missing=true", {"C", "D", "E"}),
    ("phone:missing=false", {"A", "C"}),
    # _tag / _security
    ("_tag=vip", {"A", "C"}),
    (f"_tag={TAGS}|vip", {"A"}),
    (f"_tag={TAGS}|", {"A", "B"}),
    (f"_tag:not={TAGS}|vip", {"B", "C", "D", "E"}),
    ("_tag:text=особый", {"A"}),
    ("_tag:missing=true", {"D", "E"}),
    (f"_security={CONF}|R", {"A"}),
    ("_security=N", {"B"}),
    (f"_security:not={CONF}|R", {"B", "C", "D", "E"}),
    ("_security:text=restricted", {"A"}),
    ("_security:missing=false", {"A", "B"}),
]


@pytest.mark.parametrize("query,expected", PATIENT_CASES, ids=[q for q, _ in PATIENT_CASES])
def test_patient_tokens(people_ro, query, expected):
    client, people = people_ro
    _check(client, people, "Patient", query, expected)


def test_id(client, people):
    a, b = people["A"], people["B"]
    assert ids(client, f"/fhir/Patient?_id={a}") == {a}
    assert ids(client, f"/fhir/Patient?_id={a},{b}") == {a, b}
    assert ids(client, f"/fhir/Patient?_id={a}&_id={b}") == set()
    assert ids(client, "/fhir/Patient?_id=no-such-id") == set()
    assert ids(client, f"/fhir/Patient?_id={a}&gender=female") == set()
    assert ids(client, f"/fhir/Patient?_id={a},{b}&gender=female") == {b}
    # an id of another type is not a Patient
    o = mk(client, obs())
    assert ids(client, f"/fhir/Patient?_id={o}") == set()


OBS = {
    "O1": obs(code=None, status="final") | {"code": {"coding": [coding(LOINC, "8480-6", "Систолическое давление")], "text": "АД сист."}},
    "O2": obs(status="amended") | {"code": {"coding": [coding(LOINC, "8462-4", "Диастолическое давление")]}},
    "O3": obs(status="final") | {"code": {"coding": [coding(SNOMED, "8480-6")], "text": "Систолическое (SNOMED)"}},
    "O4": obs(status="preliminary") | {"code": {"text": "Пульс"}},
    "O5": obs(status="final")
    | {"code": {"coding": [coding(LOINC, "29463-7", "Масса тела"), coding(SNOMED, "27113001", "Body weight")]}},
}


def _observations(client) -> dict[str, str]:
    return {k: mk(client, r) for k, r in OBS.items()}


OBS_CASES = [
    ("code=8480-6", {"O1", "O3"}),
    (f"code={LOINC}|8480-6", {"O1"}),
    (f"code={SNOMED}|8480-6", {"O3"}),
    (f"code={LOINC}|", {"O1", "O2", "O5"}),
    ("code=|8480-6", set()),
    (f"code={LOINC}|8480", set()),
    (f"code={LOINC}|8480-6,{LOINC}|8462-4", {"O1", "O2"}),
    (f"code:not={LOINC}|8480-6", {"O2", "O3", "O4", "O5"}),
    ("code:not=8480-6", {"O2", "O4", "O5"}),
    (f"code:not={LOINC}|", {"O3", "O4"}),
    # any coding of a CodeableConcept
    (f"code={SNOMED}|27113001", {"O5"}),
    ("code=29463-7", {"O5"}),
    # :text - CodeableConcept.text or Coding.display, case/accent-insensitive
    ("code:text=систолическое", {"O1", "O3"}),
    ("code:text=СИСТОЛИЧЕСКОЕ", {"O1", "O3"}),
    ("code:text=ад", {"O1"}),
    ("code:text=диаст", {"O2"}),
    ("code:text=пульс", {"O4"}),
    ("code:text=body weight", {"O5"}),
    ("code:text=масса", {"O5"}),
    ("code:text=рост", set()),
    ("code:text=8480-6", set()),  # codes are not text
    # a code element
    ("status=final", {"O1", "O3", "O5"}),
    ("status=final,amended", {"O1", "O2", "O3", "O5"}),
    ("status:not=final", {"O2", "O4"}),
    ("status=FINAL", set()),
]


@pytest.mark.parametrize("query,expected", OBS_CASES, ids=[q for q, _ in OBS_CASES])
def test_observation_tokens(observations_ro, query, expected):
    client, observations = observations_ro
    _check(client, observations, "Observation", query, expected)


def test_deceased_boolean_token(client):
    alive = mk(client, patient("Живой", deceasedBoolean=False))
    dead = mk(client, patient("Умерший", deceasedBoolean=True))
    dated = mk(client, patient("Умерший2", deceasedDateTime="2020-01-01"))
    mk(client, patient("Неизвестно"))
    assert ids(client, "/fhir/Patient?deceased=true") == {dead, dated}
    assert ids(client, "/fhir/Patient?deceased:missing=false") >= {dead, dated, alive}
    assert alive in ids(client, "/fhir/Patient?deceased=false")
    assert ids(client, "/fhir/Patient?deceased=false") & {dead, dated} == set()


def test_token_on_a_string_element_is_not_case_sensitive(client):
    # search.html 3.1.1.4.9: "If the underlying data type is string then the search is not case
    # sensitive" (Medication-lot-number is Medication.batch.lotNumber, a string); codes are.
    lot = mk(client, {"resourceType": "Medication", "batch": {"lotNumber": "AB-12x"}})
    other = mk(client, {"resourceType": "Medication", "batch": {"lotNumber": "CD-3"}})
    mk(client, {"resourceType": "Medication", "status": "active"})
    assert ids(client, "/fhir/Medication?lot-number=ab-12X") == {lot}
    assert ids(client, "/fhir/Medication?lot-number=AB-12x,cd-3") == {lot, other}
    assert ids(client, "/fhir/Medication?lot-number=AB-12") == set()  # a token is not a prefix
    assert lot not in ids(client, "/fhir/Medication?lot-number:not=Ab-12X")
    assert ids(client, "/fhir/Medication?status=ACTIVE") == set()


@pytest.fixture
def people(client) -> dict[str, str]:
    return _people(client)


@pytest.fixture(scope="module")
def people_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _people(c)


@pytest.fixture(scope="module")
def observations_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _observations(c)
