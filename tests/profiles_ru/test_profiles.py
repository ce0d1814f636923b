"""The RU profiles over HTTP: a resource that declares one is checked on every write (422 with
the failing element, nothing stored); FHIR_ENFORCE_RU_PROFILES makes them mandatory; $validate
takes them as `profile`."""

from __future__ import annotations

import base64
import json

import pytest

from fhir_server.app import create_app
from profiles_ru import CANONICAL
from tests.conftest import FHIRClient, make_settings

SD = f"{CANONICAL}/StructureDefinition/"
SNILS = "urn:oid:1.2.643.100.3"
ENP = "urn:oid:1.2.643.2.69.1.1.1.6.228"
PASSPORT = "urn:oid:1.2.643.2.69.1.1.1.6.14"
LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}


def ru_patient(**extra) -> dict:
    r = {
        "resourceType": "Patient",
        "meta": {"profile": [SD + "ru-patient"]},
        "identifier": [
            {"system": SNILS, "value": "112-233-445 95"},
            {"system": ENP, "value": "5598718357093420"},
            {"system": PASSPORT, "value": "45 08 123456"},
        ],
        "name": [{"use": "official", "family": "Иванова-Петрова", "given": ["Анна", "Сергеевна"]}],
        "gender": "female",
        "birthDate": "1985-03-14",
    }
    r.update(extra)
    return r


def ru_organization(**extra) -> dict:
    r = {"resourceType": "Organization", "meta": {"profile": [SD + "ru-organization"]}, "name": "ГБУЗ Городская поликлиника № 1",
         "identifier": [{"system": "urn:oid:1.2.643.100.1", "value": "1027700132195"},
                        {"system": "urn:oid:1.2.643.5.1.13.13.11.1461", "value": "1.2.643.5.1.13.13.12.2.77.7800"}]}
    r.update(extra)
    return r


def lab_observation(subject: str, **extra) -> dict:
    r = {"resourceType": "Observation", "meta": {"profile": [SD + "ru-observation-lab"]}, "status": "final",
         "category": [LAB],
         "code": {"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.11.1080", "code": "1017"},
                             {"system": "http://loinc.org", "code": "2345-7"}]},
         "subject": {"reference": subject}, "effectiveDateTime": "2026-11-02T09:30:00+03:00",
         "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}
    r.update(extra)
    return r


def _issues(r) -> list[tuple[str, str, str]]:
    body = r.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    return [(i["severity"], i["code"], (i.get("expression") or [""])[0]) for i in body["issue"]]


def _errors_at(r) -> set[str]:
    return {e for s, _, e in _issues(r) if s == "error"}


def _count(client, rtype: str) -> int:
    return client.get(f"/fhir/{rtype}?_summary=count").get_json()["total"]


def test_a_valid_ru_patient_is_stored_as_sent(client):
    r = client.post("/fhir/Patient", ru_patient())
    assert r.status_code == 201, r.get_data(as_text=True)
    stored = r.get_json()
    assert stored["identifier"][0] == {"system": SNILS, "value": "112-233-445 95"}
    assert stored["meta"]["profile"] == [SD + "ru-patient"]


def test_a_wrong_snils_check_number_is_422_at_the_value_in_russian(client):
    bad = ru_patient(identifier=[{"system": SNILS, "value": "112-233-445 96"}])
    r = client.post("/fhir/Patient", bad, headers={"Accept-Language": "ru"})
    assert r.status_code == 422
    issue = r.get_json()["issue"][0]
    assert issue["code"] == "invariant" and issue["expression"] == ["Patient.identifier[0].value"]
    assert issue["diagnostics"] == "СНИЛС 112-233-445 96: контрольное число 96 не совпадает с 95"
    assert _count(client, "Patient") == 0


def test_rucore_alias_systems_fall_into_the_slices_and_are_checked(client):
    bad = ru_patient(identifier=[{"system": "https://fhir.ru/ig/core/systems/snils", "value": "112-233-445 95"},
                                 {"system": "https://fhir.ru/ig/core/systems/OMS", "value": "5598718357093421"}])
    r = client.post("/fhir/Patient", bad)
    assert r.status_code == 422 and _errors_at(r) == {"Patient.identifier[1].value"}
    two_snils = ru_patient(identifier=[{"system": "https://fhir.ru/ig/core/systems/snils", "value": "112-233-445 95"},
                                       {"system": SNILS, "value": "17400354229"}])
    r = client.post("/fhir/Patient", two_snils)
    assert r.status_code == 422
    assert ("error", "processing", "Patient.identifier") in _issues(r)
    assert "snils" in r.get_json()["issue"][0]["diagnostics"]


def test_name_rules_cardinalities_and_the_passport_format(client):
    bad = ru_patient(name=[{"family": "Ivanova", "given": ["Анна", "Сергеевна", "Лишнее"]}],
                     identifier=[{"system": PASSPORT, "value": "45 08 12345"}])
    del bad["birthDate"]
    r = client.post("/fhir/Patient", bad)
    assert r.status_code == 422
    assert _errors_at(r) == {"Patient.identifier[0].value", "Patient.name[0].family", "Patient.name[0].given", "Patient.birthDate"}
    # a name in another use (a foreign passport's transliteration) is not held to Cyrillic
    ok = ru_patient(name=[{"use": "official", "family": "Иванова", "given": ["Анна"]}, {"use": "usual", "family": "Ivanova", "given": ["Anna"]}])
    assert client.post("/fhir/Patient", ok).status_code == 201


def test_practitioner_needs_snils_specialty_and_position(client):
    pr = {"resourceType": "Practitioner", "meta": {"profile": [SD + "ru-practitioner"]},
          "name": [{"family": "Смирнов", "given": ["Олег", "Павлович"]}],
          "identifier": [{"system": SNILS, "value": "17400354229"}],
          "qualification": [{"code": {"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.11.1066", "code": "76"}]}},
                            {"code": {"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.11.1002", "code": "109"}]}}]}
    r = client.post("/fhir/Practitioner", pr)
    assert r.status_code == 201, r.get_data(as_text=True)
    r = client.post("/fhir/Practitioner", {**pr, "identifier": [], "qualification": pr["qualification"][:1]} | {"identifier": [{"system": "http://example.org", "value": "1"}]})
    assert r.status_code == 422
    assert _errors_at(r) == {"Practitioner.identifier", "Practitioner.qualification"}
    assert {i["diagnostics"].split("'")[1] for i in r.get_json()["issue"]} == {"snils", "position"}


def test_organization_ogrn_frmo_and_its_identifier_rule(client):
    assert client.post("/fhir/Organization", ru_organization()).status_code == 201
    r = client.post("/fhir/Organization", ru_organization(identifier=[{"system": "urn:oid:1.2.643.100.1", "value": "1027700132196"},
                                                                    {"system": "urn:oid:1.2.643.5.1.13.13.11.1461", "value": "1.2.643.100.1"}]))
    assert r.status_code == 422 and _errors_at(r) == {"Organization.identifier[0].value", "Organization.identifier[1].value"}
    r = client.post("/fhir/Organization", ru_organization(identifier=[{"system": "http://example.org/local", "value": "42"}]))
    assert r.status_code == 422 and ("error", "invariant", "Organization.identifier") in _issues(r)
    insurer = ru_organization(identifier=[{"system": "urn:oid:1.2.643.5.1.13.13.99.2.183", "value": "99001"}], name="АО СК Согаз-Мед")
    assert client.post("/fhir/Organization", insurer).status_code == 201


def test_coverage_enp_and_payor_target(client):
    p = client.create(ru_patient())
    org = client.create(ru_organization())
    cov = {"resourceType": "Coverage", "meta": {"profile": [SD + "ru-coverage"]}, "status": "active",
           "identifier": [{"system": ENP, "value": "5598718357093420"}],
           "type": {"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.99.2.245", "code": "3"}]},
           "beneficiary": {"reference": f"Patient/{p['id']}"}, "payor": [{"reference": f"Organization/{org['id']}"}],
           "period": {"start": "2020-01-01"}}
    assert client.post("/fhir/Coverage", cov).status_code == 201
    bad = {**cov, "identifier": [{"system": ENP, "value": "5598718357093421"}], "payor": [{"reference": f"Patient/{p['id']}"}]}
    r = client.post("/fhir/Coverage", bad)
    assert r.status_code == 422 and _errors_at(r) == {"Coverage.identifier[0].value", "Coverage.payor[0].reference"}


def test_lab_observation_needs_fsli_laboratory_category_and_a_patient(client):
    p = client.create(ru_patient())
    assert client.post("/fhir/Observation", lab_observation(f"Patient/{p['id']}")).status_code == 201
    bad = lab_observation("Group/g1", category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                          code={"coding": [{"system": "http://loinc.org", "code": "2345-7"}]})
    r = client.post("/fhir/Observation", bad)
    assert r.status_code == 422
    assert _errors_at(r) == {"Observation.category", "Observation.code.coding", "Observation.subject.reference"}


def test_encounter_diagnosticreport_and_medicationrequest(client):
    p = client.create(ru_patient())
    enc = {"resourceType": "Encounter", "meta": {"profile": [SD + "ru-encounter"]}, "status": "finished",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}, "subject": {"reference": f"Patient/{p['id']}"}}
    r = client.post("/fhir/Encounter", enc)
    assert r.status_code == 422 and _errors_at(r) == {"Encounter.period"}
    dr = {"resourceType": "DiagnosticReport", "meta": {"profile": [SD + "ru-diagnosticreport"]}, "status": "final",
          "code": {"text": "УЗИ брюшной полости"}, "subject": {"reference": f"Patient/{p['id']}"}}
    r = client.post("/fhir/DiagnosticReport", dr)
    assert r.status_code == 422 and _errors_at(r) == {"DiagnosticReport.category"}
    mr = {"resourceType": "MedicationRequest", "meta": {"profile": [SD + "ru-medicationrequest"]}, "status": "active", "intent": "order",
          "medicationCodeableConcept": {"text": "Метформин 500 мг"}, "subject": {"reference": f"Patient/{p['id']}"},
          "requester": {"reference": f"Patient/{p['id']}"}}
    r = client.post("/fhir/MedicationRequest", mr)
    assert r.status_code == 422 and _errors_at(r) == {"MedicationRequest.requester.reference", "MedicationRequest.authoredOn"}


def test_update_patch_and_conditional_update_are_checked_and_change_nothing(client):
    p = client.create(ru_patient())
    pid = p["id"]
    bad = {**p, "identifier": [{"system": SNILS, "value": "11223344596"}]}
    assert client.put(f"/fhir/Patient/{pid}", bad).status_code == 422
    r = client.patch(f"/fhir/Patient/{pid}", [{"op": "replace", "path": "/name/0/family", "value": "Smith"}])
    assert r.status_code == 422 and _errors_at(r) == {"Patient.name[0].family"}
    assert client.put("/fhir/Patient?birthdate=1985-03-14", {k: v for k, v in bad.items() if k != "id"}).status_code == 422
    current = client.get(f"/fhir/Patient/{pid}").get_json()
    assert current["meta"]["versionId"] == "1" and current["name"] == p["name"]
    # an update to a valid version still works
    ok = {**p, "name": [{"family": "Иванова", "given": ["Анна"]}]}
    assert client.put(f"/fhir/Patient/{pid}", ok).status_code == 200


def test_transaction_and_batch_entries_are_checked(client):
    bad = ru_patient(identifier=[{"system": SNILS, "value": "112-233-445 96"}])
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0e0b0c1e-0000-4000-8000-000000000001", "resource": ru_patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": bad, "request": {"method": "POST", "url": "Patient"}}]}
    r = client.post("/fhir", tx)
    assert r.status_code == 422 and _errors_at(r) == {"Bundle.entry[1].resource.identifier[0].value"}
    assert _count(client, "Patient") == 0
    batch = {**tx, "type": "batch"}
    r = client.post("/fhir", batch)
    assert r.status_code == 200
    statuses = [e["response"]["status"] for e in r.get_json()["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("422")
    # a PATCH entry too
    pid = r.get_json()["entry"][0]["response"]["location"].split("/")[1]
    ops = [{"op": "replace", "path": "/identifier/0/value", "value": "11223344596"}]
    patch = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {
        "resourceType": "Binary", "contentType": "application/json-patch+json", "data": base64.b64encode(json.dumps(ops).encode()).decode()},
        "request": {"method": "PATCH", "url": f"Patient/{pid}"}}]}
    assert client.post("/fhir", patch).status_code == 422


def test_unknown_profiles_are_accepted_and_plain_resources_unchanged(client):
    r = client.post("/fhir/Patient", {"resourceType": "Patient", "meta": {"profile": ["http://example.org/StructureDefinition/other"]},
                                      "name": [{"family": "Smith"}]})
    assert r.status_code == 201
    assert client.post("/fhir/Patient", {"resourceType": "Patient", "name": [{"family": "Smith"}]}).status_code == 201


def test_enforce_makes_ru_profiles_mandatory_for_their_types():
    app = create_app(make_settings(enforce_ru_profiles=True))
    try:
        client = FHIRClient(app.test_client())
        r = client.post("/fhir/Patient", {"resourceType": "Patient", "name": [{"family": "Smith", "given": ["John"]}], "gender": "male"})
        assert r.status_code == 422 and "Patient.name[0].family" in _errors_at(r)
        p = client.create(ru_patient(meta=None) | {"meta": {"source": "test"}})
        vital = {"resourceType": "Observation", "status": "final", "code": {"text": "Пульс"},
                 "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                 "subject": {"reference": f"Patient/{p['id']}"}}
        assert client.post("/fhir/Observation", vital).status_code == 201  # not laboratory: ru-observation-lab does not apply
        lab = {**vital, "category": [LAB]}
        r = client.post("/fhir/Observation", lab)
        assert r.status_code == 422 and "Observation.code.coding" in _errors_at(r)
        assert client.post("/fhir/Observation", lab_observation(f"Patient/{p['id']}", meta=None) | {"meta": {"source": "t"}}).status_code == 201
    finally:
        app.config["FHIR_STORE"].engine.close()


def test_validate_with_an_ru_profile_reports_every_issue_in_a_200(client):
    plain = {"resourceType": "Patient", "name": [{"family": "Smith", "given": ["John"]}],
             "identifier": [{"system": "https://fhir.ru/ig/core/systems/snils", "value": "112-233-445 96"}]}
    r = client.post(f"/fhir/Patient/$validate?profile={SD}ru-patient", plain)
    assert r.status_code == 200
    assert _errors_at(r) == {"Patient.identifier[0].value", "Patient.name[0].family", "Patient.name[0].given[0]",
                             "Patient.gender", "Patient.birthDate"}
    assert _count(client, "Patient") == 0
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": ru_patient(meta=None) | {"meta": {"source": "t"}}},
                                                          {"name": "profile", "valueUri": SD + "ru-patient"}]}
    r = client.post("/fhir/Patient/$validate", params)
    assert r.status_code == 200 and [i["severity"] for i in r.get_json()["issue"] if i["severity"] == "error"] == []
    # the declared profile is checked without asking; an unknown one is named as not checked
    r = client.post("/fhir/Patient/$validate", {**plain, "meta": {"profile": ["http://example.org/x", SD + "ru-patient"]}})
    assert r.status_code == 200 and "Patient.name[0].family" in _errors_at(r)
    assert ("information", "informational", "Patient.meta.profile[0]") in _issues(r)
    assert client.post("/fhir/Patient/$validate?profile=http://example.org/x", plain).status_code == 400
    assert client.post(f"/fhir/Patient/$validate?profile={SD}ru-practitioner", plain).status_code == 400


def test_gender_is_bound_to_ru_gender(client):
    # the value set as the terminology service reads it from the store (a version posted to the server)
    vs = {"resourceType": "ValueSet", "url": f"{CANONICAL}/ValueSet/ru-gender", "version": "0.0.1", "status": "active",
          "compose": {"include": [{"system": "http://hl7.org/fhir/administrative-gender",
                                   "concept": [{"code": "male"}, {"code": "female"}, {"code": "unknown"}]}]}}
    assert client.post("/fhir/ValueSet", vs).status_code == 201
    r = client.post("/fhir/Patient", ru_patient(gender="other"))
    assert r.status_code == 422
    assert _issues(r) == [("error", "code-invalid", "Patient.gender")]
    assert client.post("/fhir/Patient", ru_patient(gender="unknown")).status_code == 201


@pytest.mark.parametrize("pid", ["ru-patient", "ru-practitioner", "ru-organization", "ru-coverage", "ru-observation-lab",
                                 "ru-diagnosticreport", "ru-encounter", "ru-medicationrequest"])
def test_structure_definitions_are_served_and_searchable_by_url(pid):
    app = create_app(make_settings(load_definitions=True))
    try:
        client = FHIRClient(app.test_client())
        r = client.get(f"/fhir/StructureDefinition/{pid}")
        assert r.status_code == 200
        sd = r.get_json()
        assert sd["url"] == SD + pid and sd["derivation"] == "constraint" and sd["kind"] == "resource"
        assert sd["baseDefinition"] == f"http://hl7.org/fhir/StructureDefinition/{sd['type']}"
        found = client.get(f"/fhir/StructureDefinition?url={SD}{pid}").get_json()
        assert [e["resource"]["id"] for e in found["entry"]] == [pid]
    finally:
        app.config["FHIR_STORE"].engine.close()


def test_required_bindings_with_the_packaged_terminology(client):
    p = client.create(ru_patient())
    enc = {"resourceType": "Encounter", "meta": {"profile": [SD + "ru-encounter"]}, "status": "finished",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
           "subject": {"reference": f"Patient/{p['id']}"}, "period": {"start": "2026-11-02T09:00:00+03:00"},
           "reasonCode": [{"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.11.1005", "code": "E11.9"}]}]}
    assert client.post("/fhir/Encounter", enc).status_code == 201
    # a reason coded outside МКБ-10 only: no coding in the value set
    snomed = {**enc, "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}]}
    r = client.post("/fhir/Encounter", snomed)
    assert r.status_code == 422 and _issues(r) == [("error", "code-invalid", "Encounter.reasonCode[0].coding[0]")]
    # a code the packaged fragment does not hold cannot be checked: accepted on write, a warning in $validate
    lab = lab_observation(f"Patient/{p['id']}")
    assert client.post("/fhir/Observation", lab).status_code == 201
    r = client.post("/fhir/Observation/$validate", lab)
    assert ("warning", "processing", "Observation.code.coding[0]") in _issues(r)
    assert "packaged part of the value set" in next(i["diagnostics"] for i in r.get_json()["issue"] if i["severity"] == "warning")
    # the right FSLI code with another display: the binding holds, the display gets a warning
    lab["code"]["coding"][0] = {"system": "urn:oid:1.2.643.5.1.13.13.11.1080", "code": "1017128", "display": "Гемоглобин"}
    assert client.post("/fhir/Observation", lab).status_code == 201
    r = client.post("/fhir/Observation/$validate", lab)
    assert [x for x in _issues(r) if x[0] != "information"] == [("warning", "code-invalid", "Observation.code.coding[0].display")]
    # OMS policy type outside NSI 99.2.245
    org = client.create(ru_organization())
    cov = {"resourceType": "Coverage", "meta": {"profile": [SD + "ru-coverage"]}, "status": "active",
           "identifier": [{"system": ENP, "value": "5598718357093420"}],
           "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PUBLICPOL"}]},
           "beneficiary": {"reference": f"Patient/{p['id']}"}, "payor": [{"reference": f"Organization/{org['id']}"}]}
    r = client.post("/fhir/Coverage", cov)
    assert r.status_code == 422 and _errors_at(r) == {"Coverage.type.coding[0]"}
    cov["type"]["coding"].append({"system": "urn:oid:1.2.643.5.1.13.13.99.2.245", "code": "3"})
    assert client.post("/fhir/Coverage", cov).status_code == 201


def test_a_newer_version_of_an_ru_profile_posted_to_the_server_is_honoured(client):
    from profiles_ru import profiles

    sd = json.loads(json.dumps(next(d for d in profiles.definitions() if d["id"] == "ru-patient")))
    sd.pop("id")
    sd["version"] = "0.2.0"  # birth date no longer required
    sd["differential"]["element"] = [e for e in sd["differential"]["element"] if e["id"] != "Patient.birthDate"]
    assert client.post("/fhir/StructureDefinition", sd).status_code == 201
    no_birth_date = ru_patient()
    del no_birth_date["birthDate"]
    assert client.post("/fhir/Patient", no_birth_date).status_code == 201
    pinned = {**no_birth_date, "meta": {"profile": [SD + "ru-patient|0.1.0"]}}
    r = client.post("/fhir/Patient", pinned)
    assert r.status_code == 422 and _errors_at(r) == {"Patient.birthDate"}
    r = client.post(f"/fhir/Patient/$validate?profile={SD}ru-patient", {k: v for k, v in no_birth_date.items() if k != "meta"})
    assert r.status_code == 200 and _errors_at(r) == set()


def test_oms_binding_writes_an_ru_coverage_and_insurer_under_enforcement():
    app = create_app(make_settings(enforce_ru_profiles=True, oms_registry="demo"))
    try:
        client = FHIRClient(app.test_client())
        ivanov = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Иванов", "given": ["Иван", "Иванович"]}],
                  "gender": "male", "birthDate": "1961-03-12"}
        assert client.put("/fhir/Patient/p1", ivanov).status_code == 201
        r = client.post("/fhir/Patient/p1/$bind-oms-policy", {"resourceType": "Parameters", "parameter": [{"name": "enp", "valueString": "7700000000000016"}]})
        assert r.status_code == 201, r.get_data(as_text=True)
        cov = r.get_json()
        r = client.post(f"/fhir/Coverage/$validate?profile={SD}ru-coverage", cov)
        assert _errors_at(r) == set()
        org = client.get(f"/fhir/{cov['payor'][0]['reference']}").get_json()
        assert _errors_at(client.post(f"/fhir/Organization/$validate?profile={SD}ru-organization", org)) == set()
    finally:
        app.config["FHIR_STORE"].engine.close()


@pytest.mark.parametrize("value", [1, True, "x", {"a": 1}, [1], [{"system": 1, "value": 2}], [{"coding": "x"}]])
def test_malformed_elements_under_a_profile_are_400_or_a_200_validate_never_500(client, value):
    for rtype, pid, key in (("Organization", "ru-organization", "identifier"), ("Patient", "ru-patient", "name"),
                            ("Observation", "ru-observation-lab", "category")):
        body = {"resourceType": rtype, "meta": {"profile": [SD + pid]}, key: value}
        assert client.post(f"/fhir/{rtype}", body).status_code in (400, 422)
        r = client.post(f"/fhir/{rtype}/$validate", body)
        assert r.status_code == 200 and any(s == "error" for s, _, _ in _issues(r))


def test_the_capability_statement_lists_the_ru_profiles(client):
    rest = client.get("/fhir/metadata").get_json()["rest"][0]
    by_type = {r["type"]: r.get("supportedProfile", []) for r in rest["resource"]}
    assert by_type["Patient"] == [SD + "ru-patient"]
    assert by_type["Observation"] == [SD + "ru-observation-lab"]
    assert by_type["Condition"] == []


def test_the_validator_reads_fixed_choice_types_max_0_closed_slicing_and_patterns(client):
    """A StructureDefinition of our own posted to the server exercises the rules the RU profiles do not use."""
    url = SD + "test-rules"
    el = [
        {"id": "Observation", "path": "Observation"},
        {"id": "Observation.status", "path": "Observation.status", "fixedCode": "final"},
        {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity"}]},
        {"id": "Observation.note", "path": "Observation.note", "max": "0"},
        {"id": "Observation.identifier", "path": "Observation.identifier",
         "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"}},
        {"id": "Observation.identifier:a", "path": "Observation.identifier", "sliceName": "a", "min": 0, "max": "1"},
        {"id": "Observation.identifier:a.system", "path": "Observation.identifier.system", "patternUri": "http://a.example"},
        {"id": "Observation.interpretation", "path": "Observation.interpretation",
         "patternCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"}]}},
    ]
    sd = {"resourceType": "StructureDefinition", "url": url, "version": "1", "name": "TestRules", "status": "draft", "kind": "resource",
          "abstract": False, "type": "Observation", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
          "derivation": "constraint", "differential": {"element": el}}
    assert client.post("/fhir/StructureDefinition", sd).status_code == 201
    good = {"resourceType": "Observation", "meta": {"profile": [url]}, "status": "final", "code": {"text": "x"},
            "identifier": [{"system": "http://a.example", "value": "1"}], "valueQuantity": {"value": 1},
            "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}]}]}
    assert client.post("/fhir/Observation", good).status_code == 201, client.post("/fhir/Observation/$validate", good).get_json()
    bad = {**good, "status": "preliminary", "valueString": "много", "note": [{"text": "n"}],
           "identifier": [{"system": "http://a.example", "value": "1"}, {"system": "http://b.example", "value": "2"}],
           "interpretation": [{"coding": [{"system": "http://snomed.info/sct", "code": "281302008"}]}]}
    del bad["valueQuantity"]
    r = client.post("/fhir/Observation", bad)
    assert r.status_code == 422
    assert set(_issues(r)) == {("error", "processing", "Observation.status"), ("error", "processing", "Observation.valueString"),
                               ("error", "processing", "Observation.note"), ("error", "processing", "Observation.identifier[1]"),
                               ("error", "processing", "Observation.interpretation[0]")}


def test_a_patient_writing_under_consent_filters_is_checked_too():
    """The profile check (and the store lookup of newer profile versions) runs with the request's
    guarded reader: a patient's own Consent declaring no profile, and their contact-detail update
    of an RU Patient checked against ru-patient."""
    from consent.principal import Principal
    from consent.scopes import ScopeSet
    from fhir_server.app import internal_client

    app = create_app(make_settings(auth="smart"))
    try:
        admin = FHIRClient(internal_client(app))
        p = admin.create(ru_patient())
        me = Principal("patient", subject="acc-1", fhir_user=f"Patient/{p['id']}", client_id="app",
                       scopes=ScopeSet.from_string("patient/*.cruds"), patient=p["id"])
        client = FHIRClient(internal_client(app, me))
        phone = {**p, "telecom": [{"system": "phone", "value": "+7 900 000-00-00"}]}
        r = client.put(f"/fhir/Patient/{p['id']}", phone)
        assert r.status_code == 200, r.get_data(as_text=True)
        bad = {**phone, "telecom": [{"system": "phone", "value": "+7 900 000-00-01"}],
               "identifier": [{"system": SNILS, "value": "112-233-445 96"}]}
        r = client.put(f"/fhir/Patient/{p['id']}", bad)
        assert r.status_code == 422 and _errors_at(r) == {"Patient.identifier[0].value"}  # checked before the consent layer's edit limits
        assert admin.get(f"/fhir/Patient/{p['id']}").get_json()["identifier"] == p["identifier"]
    finally:
        app.config["FHIR_STORE"].engine.close()
        if "fhir_auth" in app.extensions:
            app.extensions["fhir_auth"].records.close()


def test_a_transaction_with_urn_uuid_references_meets_the_reference_targets(client):
    pid = "urn:uuid:5b0f6b1e-9a8c-4c57-9a53-0d6f1b0e3a11"
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": pid, "resource": ru_patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": lab_observation(pid), "request": {"method": "POST", "url": "Observation"}}]}
    r = client.post("/fhir", tx)
    assert r.status_code == 200, r.get_data(as_text=True)
    group = "urn:uuid:5b0f6b1e-9a8c-4c57-9a53-0d6f1b0e3a12"
    tx["entry"][0] = {"fullUrl": group, "resource": {"resourceType": "Group", "type": "person", "actual": True},
                      "request": {"method": "POST", "url": "Group"}}
    tx["entry"][1]["resource"] = lab_observation(group)
    r = client.post("/fhir", tx)
    assert r.status_code == 422 and _errors_at(r) == {"Bundle.entry[1].resource.subject.reference"}
