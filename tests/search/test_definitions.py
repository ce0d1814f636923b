"""The CapabilityStatement and /fhir/SearchParameter describe exactly the parameter table."""

from __future__ import annotations

from fhir_server.search import definitions
from fhir_server.search.params import all_types, params_of
from fhir_server.validation import validator
from resources import registry


def _statement(client) -> dict:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200
    return r.get_json()


def test_capability_statement_lists_exactly_the_table(client):
    rest = _statement(client)["rest"][0]
    listed = {x["type"]: x for x in rest["resource"]}
    assert set(listed) == set(registry.supported_types())
    for rtype, entry in listed.items():
        table = params_of(rtype)
        assert {p["name"]: (p["type"], p["definition"]) for p in entry.get("searchParam", [])} == {
            code: (p.type, p.url) for code, p in table.items()
        }, rtype
        assert {"code": "search-type"} in entry["interaction"]
    obs = listed["Observation"]
    assert "Observation:subject" in obs["searchInclude"] and "*" in obs["searchInclude"]
    assert "Observation:subject" in listed["Patient"]["searchRevInclude"]
    assert {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"} in listed["Patient"]["operation"]
    assert {"code": "search-system"} in rest["interaction"]


def test_card_types_have_their_r4_parameters():
    expected = {
        "Patient": {"name", "family", "given", "birthdate", "gender", "identifier", "telecom", "address", "organization"},
        "Observation": {"code", "subject", "patient", "date", "value-quantity", "code-value-quantity", "category", "status"},
        "Encounter": {"patient", "date", "class", "status", "participant", "type"},
        "DiagnosticReport": {"code", "patient", "result", "date", "status", "category"},
        "MedicationRequest": {"patient", "code", "medication", "status", "authoredon", "intent"},
        "Consent": {"patient", "status", "scope", "actor", "period", "category", "action"},
    }
    for rtype, codes in expected.items():
        assert codes <= set(params_of(rtype)), rtype
        assert {"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"} <= set(params_of(rtype))
    assert set(all_types()) <= set(registry.supported_types())


def test_search_parameter_resources_are_valid_r4():
    for d in definitions.resources():
        assert validator().issues(d, "SearchParameter") == [], d["id"]


def test_search_parameters_read_and_search(client):
    r = client.get("/fhir/SearchParameter/clinical-code")
    assert r.status_code == 200
    body = r.get_json()
    assert body["code"] == "code" and "Observation" in body["base"] and body["type"] == "token"
    r = client.get("/fhir/SearchParameter?base=Patient&code=birthdate")
    bundle = r.get_json()
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["url"] == "http://hl7.org/fhir/SearchParameter/individual-birthdate"
    total = client.get("/fhir/SearchParameter?_summary=count").get_json()["total"]
    assert total == len(definitions.resources())
    # A second app on the same store does not load them twice.
    definitions.ensure_loaded(client.raw.application.config["FHIR_STORE"])
    assert client.get("/fhir/SearchParameter?_summary=count").get_json()["total"] == total


def test_system_search_can_name_search_parameters(client):
    r = client.get("/fhir?_type=SearchParameter&_id=Patient-name")
    assert r.status_code == 200
    assert [e["resource"]["id"] for e in r.get_json()["entry"]] == ["Patient-name"]
