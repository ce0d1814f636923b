"""A Russian identifier is found whichever of its systems and spellings the sender and the searcher used."""

from __future__ import annotations

import pytest

from tests.conftest import patient

SNILS_SYSTEMS = (
    "urn:oid:1.2.643.100.3",
    "https://fhir.ru/ig/core/systems/snils",
    "urn:oid:1.2.643.2.69.1.1.1.6.223",
    "http://fhir.ru/ig/RuSEMD/systems/snils",
)


def _ids(bundle) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


@pytest.mark.parametrize("stored_system", SNILS_SYSTEMS)
def test_a_snils_is_found_under_every_system_and_spelling(client, stored_system):
    p = client.create(patient(identifier=[{"system": stored_system, "value": "112-233-445 95"}]))
    other = client.create(patient(identifier=[{"system": stored_system, "value": "174-003-542 29"}]))
    for system in SNILS_SYSTEMS:
        for value in ("112-233-445 95", "11223344595", "112 233 445 95"):
            r = client.get(f"/fhir/Patient?identifier={system}|{value}")
            assert r.status_code == 200
            assert _ids(r.get_json()) == {p["id"]}, (stored_system, system, value)
    # what the sender wrote is stored unchanged, and the exact written pair still matches
    assert client.get(f"/fhir/Patient/{p['id']}").get_json()["identifier"] == [{"system": stored_system, "value": "112-233-445 95"}]
    assert other["id"] not in _ids(client.get(f"/fhir/Patient?identifier={SNILS_SYSTEMS[0]}|11223344595").get_json())


def test_enp_and_inn_aliases_and_a_plain_value(client):
    enp = client.create(patient(identifier=[{"system": "https://fhir.ru/ig/core/systems/OMS", "value": "5598 7183 5709 3420"}]))
    inn = client.create(patient(identifier=[{"system": "https://fhir.ru/ig/core/systems/inn", "value": "500100732259"}]))
    org = client.create({"resourceType": "Organization", "name": "ООО Ромашка",
                         "identifier": [{"system": "https://fhir.ru/ig/core/systems/inn", "value": "7707083893"}]})
    assert _ids(client.get("/fhir/Patient?identifier=urn:oid:1.2.643.2.69.1.1.1.6.228|5598718357093420").get_json()) == {enp["id"]}
    assert _ids(client.get("/fhir/Patient?identifier=http://fhir.ru/ig/RuSEMD/systems/OMS|5598-7183-5709-3420").get_json()) == {enp["id"]}
    # RuCore's one INN system: a 12-digit INN is a person's, a 10-digit one a legal entity's
    assert _ids(client.get("/fhir/Patient?identifier=urn:oid:1.2.643.3.131.1.1|500100732259").get_json()) == {inn["id"]}
    assert _ids(client.get("/fhir/Organization?identifier=urn:oid:1.2.643.100.4|7707083893").get_json()) == {org["id"]}
    # a value searched without a system matches what was written
    assert _ids(client.get("/fhir/Patient?identifier=5598 7183 5709 3420").get_json()) == {enp["id"]}


def test_a_passport_under_rucore_identity_document_system_by_its_nsi_type(client):
    p = client.create(patient(identifier=[{
        "system": "https://fhir.ru/ig/core/systems/identity-document", "value": "45 08 123456",
        "type": {"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.99.2.48", "code": "1"}]}}]))
    for system in ("urn:oid:1.2.643.2.69.1.1.1.6.14", "urn:oid:1.2.643.5.1.13.13.99.2.48.1", "http://fhir.ru/ig/RuSEMD/systems/passport-RF"):
        for value in ("4508 123456", "4508123456"):
            assert _ids(client.get(f"/fhir/Patient?identifier={system}|{value}").get_json()) == {p["id"]}, (system, value)


def test_a_logical_reference_by_snils_is_normalised_too(client):
    p = client.create(patient())
    cov = client.create({"resourceType": "Coverage", "status": "active", "payor": [{"display": "СМО"}],
                         "beneficiary": {"reference": f"Patient/{p['id']}", "type": "Patient",
                                         "identifier": {"system": "https://fhir.ru/ig/core/systems/snils", "value": "112-233-445 95"}}})
    r = client.get("/fhir/Coverage?beneficiary:identifier=urn:oid:1.2.643.100.3|11223344595")
    assert _ids(r.get_json()) == {cov["id"]}


def test_a_transaction_conditional_reference_finds_the_patient_by_an_alias(client):
    client.create(patient(identifier=[{"system": "urn:oid:1.2.643.100.3", "value": "11223344595"}]))
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "Рост"},
                     "subject": {"reference": "Patient?identifier=https://fhir.ru/ig/core/systems/snils|112-233-445%2095"}},
        "request": {"method": "POST", "url": "Observation"}}]}
    r = client.post("/fhir", bundle)
    assert r.status_code == 200, r.get_data(as_text=True)


def test_an_frmo_oid_under_rucore_system_is_found_by_the_nsi_one(client):
    org = client.create({"resourceType": "Organization", "name": "ГБУЗ ГП № 1", "identifier": [{
        "system": "https://fhir.ru/ig/core/CodeSystem/core-cs-nsi-register-of-medical-organizations",
        "value": "1.2.643.5.1.13.13.12.2.77.7800"}]})
    r = client.get("/fhir/Organization?identifier=urn:oid:1.2.643.5.1.13.13.11.1461|1.2.643.5.1.13.13.12.2.77.7800")
    assert _ids(r.get_json()) == {org["id"]}
