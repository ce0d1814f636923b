"""The ESIA MDCL_PLCY document as a source of Patient/$bind-oms-policy, end to end: a patient
signs in through Gosuslugi (the emulator, over real sockets), then binds their OMS policy.

Petrova's ESIA policy 5598718357093420 is not in seed/oms_policies.json; Ivanov's is the demo
policy 7700000000000016, which the demo registry knows (insurer "АО «Демо-Мед Страхование»")."""

from __future__ import annotations

import logging

import pytest
import requests
from mongoengine.connection import get_db

from fhir_server.auth import mint_token
from fhir_server.esia.linking import LINKS
from fhir_server.interactions.oms import NO_INSURER
from profiles_ru import identifiers

from .conftest import PETROVA

IVANOV = "1000299658"
PETROVA_ENP, IVANOV_ENP = "5598718357093420", "7700000000000016"
UNKNOWN_ENP = "1234567812345670"  # valid check digit, in neither source
OMS_SCOPE = "launch/patient patient/*.rs patient/Coverage.cu"
ENP_SYSTEM = identifiers.SYSTEMS["enp"].system
EXPR = ["Parameters.parameter[0].value[x]"]


def patient_signs_in(stand, oid: str) -> dict:
    """Through Gosuslugi (over HTTP, which records what ESIA reported), then a token of that
    account that may bind: {"access_token", "patient"}.

    The token is minted, as in tests/auth/test_oms_binding.py: /auth/authorize narrows a
    patient's grant to read scopes (consent/scopes.py permitted_for_role), so no app gets a
    patient Coverage write scope through the browser flow today."""
    stand.browser.cookies.clear()
    back, _ = stand.sign_in(oid)
    assert back.status_code == 302 and "/auth/authorize?" in back.headers["Location"], back.text
    account = account_of(stand, oid)
    pid = account.fhir_user.removeprefix("Patient/")
    return {"access_token": token_for(stand, account.id, pid), "patient": pid}


def token_for(stand, subject: str, pid: str | None = None) -> str:
    """A token of this server for its real URL (minted: see patient_signs_in)."""
    with stand.app.test_request_context("/", base_url=stand.url):
        if pid is None:
            return mint_token(stand.app, subject=subject, role="admin", scope="user/*.cruds")
        return mint_token(stand.app, subject=subject, role="patient", scope=OMS_SCOPE, fhir_user=f"Patient/{pid}", patient=pid)


def bind(stand, token: str, pid: str, enp: str, lang: str = "en") -> requests.Response:
    body = {"resourceType": "Parameters", "parameter": [{"name": "enp", "valueString": enp}]}
    return requests.post(f"{stand.url}/fhir/Patient/{pid}/$bind-oms-policy", json=body, timeout=10,
                         headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}", "Accept-Language": lang})


def snapshot(stand) -> dict:
    reader = stand.app.config["FHIR_STORE"].reader()
    return {t: sorted((v.id, v.version) for v in reader.search(t, {}, [("_id", 1)], 1000)) for t in ("Coverage", "Organization", "Patient")}


def account_of(stand, oid: str):
    return stand.svc.records.account_by_login(f"{oid}@esia.gosuslugi.ru")


def person(stand, oid: str) -> dict:
    return next(p for p in stand.emulator.persons if p["oid"] == oid)


@pytest.mark.parametrize("registry", ["demo", None])
def test_the_esia_policy_unknown_to_the_registry_binds_with_a_display_only_payor(make_stand, registry, caplog):
    caplog.set_level(logging.DEBUG)
    stand = make_stand(oms_registry=registry)
    tok = patient_signs_in(stand, PETROVA)
    r = bind(stand, tok["access_token"], tok["patient"], "5598-7183-5709-3420")
    assert r.status_code == 201, r.text
    cov = r.json()
    assert cov["identifier"] == [{"system": ENP_SYSTEM, "value": PETROVA_ENP}]
    assert cov["beneficiary"] == {"reference": f"Patient/{tok['patient']}"} and cov["status"] == "active"
    assert cov["payor"] == [{"display": NO_INSURER}] and "period" not in cov
    assert cov["meta"]["source"] == stand.esia_url
    stored = stand.admin().get(f"/fhir/Coverage/{cov['id']}").get_json()
    assert stored["meta"]["source"] == stand.esia_url and stored["payor"] == [{"display": NO_INSURER}]
    assert snapshot(stand)["Organization"] == []  # no insurer made up
    # the patient's own search finds it; the policy number is in no log line
    found = requests.get(f"{stand.url}/fhir/Coverage", params={"beneficiary": f"Patient/{tok['patient']}"},
                         headers={"Authorization": f"Bearer {tok['access_token']}"}, timeout=10).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [cov["id"]]
    assert PETROVA_ENP not in caplog.text and "5598-7183" not in caplog.text
    # binding again changes nothing
    again = bind(stand, tok["access_token"], tok["patient"], PETROVA_ENP)
    assert again.status_code == 200 and again.json()["meta"]["versionId"] == "1"


def test_the_esia_policy_the_registry_knows_takes_the_insurer_and_period_from_the_registry(make_stand):
    stand = make_stand(oms_registry="demo")
    tok = patient_signs_in(stand, IVANOV)
    r = bind(stand, tok["access_token"], tok["patient"], IVANOV_ENP)
    assert r.status_code == 201, r.text
    cov = r.json()
    assert cov["meta"]["source"] == stand.esia_url
    assert cov["period"] == {"start": "2011-05-01"}
    (payor,) = cov["payor"]
    assert payor["display"] == "АО «Демо-Мед Страхование»" and payor["reference"].startswith("Organization/")
    org = stand.admin().get(f"/fhir/{payor['reference']}").get_json()
    assert org["identifier"] == [{"system": identifiers.INSURERS, "value": "99001"}]


def test_esia_vouches_for_the_holder_where_the_registrys_holder_data_differ(make_stand):
    """The registry's Petrova of 5000000000000033 was born on 1985-07-01, ESIA's on 1985-07-23:
    ESIA's verified document confirms the person, the registry still gives the insurer."""
    stand = make_stand(oms_registry="demo")
    (policy,) = [d for d in person(stand, PETROVA)["documents"] if d["type"] == "MDCL_PLCY"]
    policy["number"] = "5000000000000033"
    tok = patient_signs_in(stand, PETROVA)
    r = bind(stand, tok["access_token"], tok["patient"], "5000000000000033")
    assert r.status_code == 201, r.text
    assert r.json()["payor"][0]["display"] == "ООО «Демо-Полис»" and r.json()["meta"]["source"] == stand.esia_url


def test_an_expired_registry_policy_is_refused_even_when_esia_reports_it(make_stand):
    stand = make_stand(oms_registry="demo")
    (policy,) = [d for d in person(stand, IVANOV)["documents"] if d["type"] == "MDCL_PLCY"]
    policy["number"] = "7700000000000024"  # the registry's policy of Ivanov that ended 2020-12-31
    tok = patient_signs_in(stand, IVANOV)
    before = snapshot(stand)
    r = bind(stand, tok["access_token"], tok["patient"], "7700000000000024")
    assert r.status_code == 422 and [i["diagnostics"] for i in r.json()["issue"]] == ["This policy expired on 2020-12-31"]
    assert snapshot(stand) == before


@pytest.mark.parametrize(
    ("registry", "enp", "expected_en", "expected_ru"),
    [
        ("demo", UNKNOWN_ENP, ["The insurers' registry has no policy with this number", "Gosuslugi (ESIA) reports a different OMS policy number"],
         ["В реестре страховых медицинских организаций нет полиса с таким номером", "В Госуслугах (ЕСИА) для этой учётной записи указан другой"]),
        # the registry's Petrova was born on another day: the registry does not confirm it either
        ("demo", "5000000000000033", ["birth date on this policy does not match", "Gosuslugi (ESIA) reports a different"],
         ["Дата рождения владельца полиса не совпадает", "В Госуслугах (ЕСИА)"]),
        (None, UNKNOWN_ENP, ["Gosuslugi (ESIA) reports a different OMS policy number"], ["указан другой номер полиса ОМС"]),
    ],
)
def test_another_number_that_the_registry_does_not_confirm_is_refused_naming_both_sources(make_stand, registry, enp, expected_en, expected_ru):
    stand = make_stand(oms_registry=registry)
    tok = patient_signs_in(stand, PETROVA)
    before = snapshot(stand)
    for lang, expected in (("en", expected_en), ("ru", expected_ru)):
        r = bind(stand, tok["access_token"], tok["patient"], enp, lang)
        assert r.status_code == 422, r.text
        out = r.json()
        assert out["resourceType"] == "OperationOutcome"
        assert len(out["issue"]) == len(expected)
        for issue, text in zip(out["issue"], expected, strict=True):
            assert text in issue["diagnostics"] and issue["expression"] == EXPR and issue["severity"] == "error"
        assert PETROVA_ENP not in r.text  # the ESIA number is not echoed
    assert snapshot(stand) == before


def test_esia_vouches_only_for_the_patient_themself(make_stand):
    """An admin binding Petrova's ESIA number for her gets only the registry's word."""
    stand = make_stand(oms_registry="demo")
    tok = patient_signs_in(stand, PETROVA)
    admin = token_for(stand, "root")
    before = snapshot(stand)
    r = bind(stand, admin, tok["patient"], PETROVA_ENP)
    assert r.status_code == 422 and [i["code"] for i in r.json()["issue"]] == ["not-found"]
    assert snapshot(stand) == before


def _esia_policy_unused(stand, oid: str, pid: str) -> None:
    """The account's ESIA record keeps no policy, and its ENP is refused as unknown to the registry."""
    account = account_of(stand, oid)
    link = get_db(stand.svc.records.alias)[LINKS].find_one({"_id": account.id})
    assert link is not None and "oms_enp" not in link
    assert stand.provider.linker.oms_policy(account.id) is None
    before = snapshot(stand)
    r = bind(stand, token_for(stand, account.id, pid), pid, PETROVA_ENP)
    assert r.status_code == 422 and [i["diagnostics"] for i in r.json()["issue"]] == ["The insurers' registry has no policy with this number"]
    assert snapshot(stand) == before


def test_an_unconfirmed_accounts_policy_is_not_remembered(make_stand):
    stand = make_stand(oms_registry="demo")
    person(stand, PETROVA)["trusted"] = False
    stand.browser.cookies.clear()
    back, _ = stand.sign_in(PETROVA)
    assert back.status_code == 302
    account = account_of(stand, PETROVA)
    assert stand.provider.linker.trusted(account.id) is False
    _esia_policy_unused(stand, PETROVA, account.fhir_user.removeprefix("Patient/"))


@pytest.mark.parametrize("change", ["unconfirmed", "removed"])
def test_a_policy_no_longer_vouched_for_is_forgotten_at_the_next_sign_in(make_stand, change):
    stand = make_stand(oms_registry="demo")
    tok = patient_signs_in(stand, PETROVA)
    assert stand.provider.linker.oms_policy(account_of(stand, PETROVA).id) == PETROVA_ENP
    if change == "unconfirmed":
        person(stand, PETROVA)["trusted"] = False  # the account lost its confirmation
    else:
        docs = person(stand, PETROVA)["documents"]
        docs[:] = [d for d in docs if d["type"] != "MDCL_PLCY"]  # the person removed the policy at Gosuslugi
    stand.browser.cookies.clear()
    stand.sign_in(PETROVA)
    _esia_policy_unused(stand, PETROVA, tok["patient"])


@pytest.mark.parametrize("change", ["not-verified", "bad-check-digit", "removed"])
def test_only_a_verified_valid_policy_of_esia_counts(make_stand, change):
    stand = make_stand(oms_registry="demo")
    docs = person(stand, PETROVA)["documents"]
    (policy,) = [d for d in docs if d["type"] == "MDCL_PLCY"]
    if change == "not-verified":
        policy["vrfStu"] = "NOT_VERIFIED"  # the person typed it in; ESIA has not checked it with the insurers
    elif change == "bad-check-digit":
        policy["number"] = "5598718357093421"
    else:
        docs.remove(policy)
    tok = patient_signs_in(stand, PETROVA)
    _esia_policy_unused(stand, PETROVA, tok["patient"])
