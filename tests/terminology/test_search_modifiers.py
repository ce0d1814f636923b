"""Token search modifiers answered by the terminology service: :in and :not-in (a value
set's expansion), :below and :above (subsumption in a hierarchical code system)."""

from __future__ import annotations

import pytest

from tests.interaction._util import assert_error
from tests.terminology.test_operations import CANONICAL, ICD10, q

SNOMED = "http://snomed.info/sct"


def _condition(client, system, code):
    body = {"resourceType": "Condition", "code": {"coding": [{"system": system, "code": code}]}, "subject": {"reference": "Patient/p1"}}
    return client.create(body)["id"]


@pytest.fixture
def conditions(client):
    return {
        "E11.9": _condition(client, ICD10, "E11.9"),
        "E11": _condition(client, ICD10, "E11"),
        "I10": _condition(client, ICD10, "I10"),
        "J06.9": _condition(client, ICD10, "J06.9"),
        "snomed": _condition(client, SNOMED, "44054006"),
    }


def found(client, query: str) -> set[str]:
    r = client.get(f"/fhir/Condition?{query}&_count=100")
    assert r.status_code == 200, r.get_data(as_text=True)
    return {e["resource"]["id"] for e in r.get_json().get("entry", [])}


def ids(conditions, *names):
    return {conditions[n] for n in names}


def test_below_is_subsumed_by_including_itself(client, conditions):
    assert found(client, f"code:below={q(ICD10)}|E11") == ids(conditions, "E11.9", "E11")
    assert found(client, f"code:below={q(ICD10)}|E10-E14") == ids(conditions, "E11.9", "E11")
    assert found(client, f"code:below={q(ICD10)}|E00-E90,{q(ICD10)}|J00-J99") == ids(conditions, "E11.9", "E11", "J06.9")
    assert found(client, f"code:below={q(ICD10)}|E11.9") == ids(conditions, "E11.9")


def test_above_subsumes(client, conditions):
    assert found(client, f"code:above={q(ICD10)}|E11.9") == ids(conditions, "E11.9", "E11")
    assert found(client, f"code:above={q(ICD10)}|E11") == ids(conditions, "E11")


def test_in_and_not_in_a_value_set(client, conditions):
    icd = q(f"{CANONICAL}/ValueSet/icd10")
    assert found(client, f"code:in={icd}") == ids(conditions, "E11.9", "E11", "I10", "J06.9")
    assert found(client, f"code:not-in={icd}") == ids(conditions, "snomed")
    assert found(client, f"code:in={icd}&code:below={q(ICD10)}|I00-I99") == ids(conditions, "I10")


def test_in_a_posted_value_set(client, conditions):
    vs = {"resourceType": "ValueSet", "url": "https://example.org/fhir/ValueSet/diabetes", "version": "1", "status": "active",
          "compose": {"include": [{"system": ICD10, "filter": [{"property": "concept", "op": "is-a", "value": "E10-E14"}]},
                                  {"system": SNOMED, "concept": [{"code": "44054006"}]}]}}
    client.create(vs)
    assert found(client, f"code:in={q(vs['url'])}") == ids(conditions, "E11.9", "E11", "snomed")


def test_in_on_a_code_element_with_its_implicit_system(client):
    male = client.create({"resourceType": "Patient", "gender": "male"})["id"]
    other = client.create({"resourceType": "Patient", "gender": "other"})["id"]
    r = client.get(f"/fhir/Patient?gender:in={q(CANONICAL + '/ValueSet/ru-gender')}")
    got = {e["resource"]["id"] for e in r.get_json().get("entry", [])}
    assert male in got and other not in got


def test_modifier_errors(client, conditions):
    body = assert_error(client.get(f"/fhir/Condition?code:in={q(CANONICAL + '/ValueSet/nope')}", headers={"Accept-Language": "ru"}), 400)
    assert "набор значений" in body["issue"][0]["diagnostics"]
    assert_error(client.get("/fhir/Condition?code:below=E11"), 400)
    assert_error(client.get("/fhir/Condition?code:below=urn:oid:1.2.3|E11"), 400)
    assert_error(client.get(f"/fhir/Condition?code:above={q(SNOMED)}|44054006"), 400)
    assert_error(client.get(f"/fhir/Condition?subject:in={q(CANONICAL + '/ValueSet/icd10')}"), 400)  # tokens only


def test_compiled_into_one_index_filter(app):
    """The modifiers become a MongoDB match on the stored index (no filtering afterwards)."""
    from fhir_server.search import execute, query

    parsed = query.parse("Condition", [("code:below", f"{ICD10}|E11"), ("code:not-in", f"{CANONICAL}/ValueSet/nsi-sex")])
    flt = execute.filter_for(app.config["FHIR_STORE"].reader(), "Condition", parsed.criteria)
    below, not_in = flt["$and"]
    match = below["idx.code"]["$elemMatch"]
    assert set(below) == {"idx.code"} and match["s"] == ICD10
    assert set(match["c"]["$in"]) == {"E11", "E11.2", "E11.4", "E11.5", "E11.6", "E11.7", "E11.8", "E11.9"}
    assert not_in == {"$nor": [{"idx.code": {"$elemMatch": {"s": "urn:oid:1.2.643.5.1.13.13.11.1040", "c": {"$in": ["1", "2", "3"]}}}}]}


def test_in_chains_and_has(client):
    diabetic = client.create({"resourceType": "Patient", "gender": "female"})["id"]
    other = client.create({"resourceType": "Patient", "gender": "male"})["id"]
    for pid, code in ((diabetic, "E11.9"), (other, "J06.9")):
        client.create({"resourceType": "Condition", "code": {"coding": [{"system": ICD10, "code": code}]}, "subject": {"reference": f"Patient/{pid}"}})
    r = client.get(f"/fhir/Patient?_has:Condition:subject:code:below={q(ICD10)}|E10-E14")
    assert [e["resource"]["id"] for e in r.get_json().get("entry", [])] == [diabetic]
    r = client.get(f"/fhir/Condition?subject:Patient.gender:in={q(CANONICAL + '/ValueSet/ru-gender')}&code:above={q(ICD10)}|J06.9")
    assert [e["resource"]["subject"]["reference"] for e in r.get_json().get("entry", [])] == [f"Patient/{other}"]


def test_in_with_a_pinned_version_and_below_an_unpackaged_code(client, conditions):
    icd = f"{CANONICAL}/ValueSet/icd10"
    assert found(client, f"code:in={q(icd + '|1.0.0')}") == ids(conditions, "E11.9", "E11", "I10", "J06.9")
    assert_error(client.get(f"/fhir/Condition?code:in={q(icd + '|9.9')}"), 400)
    other = _condition(client, ICD10, "E11.65")  # a code the packaged fragment lacks: below it is just itself
    assert found(client, f"code:below={q(ICD10)}|E11.65") == {other}
