"""Sign-in through Gosuslugi end to end: our server and the ESIA emulator over real sockets."""

from __future__ import annotations

import time

import pytest
import requests

from fhir_server.esia import pki
from fhir_server.esia.linking import ESIA_OID_SYSTEM, PASSPORT_SYSTEM, SNILS_SYSTEM

from .conftest import CLIENT_ID, FHIR_JSON, PETROVA, SIDOROV, SMIRNOVA, query_of


def _patients(stand, identifier: str) -> list[dict]:
    r = stand.admin().get("/fhir/Patient", query_string={"identifier": identifier})
    assert r.status_code == 200, r.get_data(as_text=True)
    return [e["resource"] for e in r.get_json().get("entry", [])]


@pytest.mark.parametrize(
    "client,token_kind,api",
    [("gost", "rsa", "v2"), ("rsa", "gost", "v2"), ("gost", "gost", "legacy"), ("rsa", "rsa", "legacy")],
)
def test_happy_path_creates_the_patient_and_the_token_reads_the_own_card(make_stand, client, token_kind, api):
    stand = make_stand(client=client, token_kind=token_kind, api=api)
    assert _patients(stand, f"{SNILS_SYSTEM}|98765432183") == []
    page, tok = stand.full(PETROVA)
    assert "Разрешить доступ?" in page.text and 'data-notice="esia-unconfirmed"' not in page.text
    assert tok["scope"].split() == ["openid", "fhirUser", "launch/patient", "online_access", "patient/*.rs"]
    # A Patient was made from ESIA's data, with the oid as an identifier.
    (patient,) = _patients(stand, f"{SNILS_SYSTEM}|98765432183")
    assert tok["patient"] == patient["id"]
    assert patient["name"] == [{"use": "official", "family": "Петрова", "given": ["Анна", "Сергеевна"], "text": "Петрова Анна Сергеевна"}]
    assert patient["birthDate"] == "1985-07-23" and patient["gender"] == "female"
    systems = {i["system"]: i["value"] for i in patient["identifier"]}
    assert systems == {ESIA_OID_SYSTEM: PETROVA, SNILS_SYSTEM: "98765432183", PASSPORT_SYSTEM: "4510 123456"}
    assert {"system": "phone", "value": "+79161234567", "use": "mobile"} in patient["telecom"]
    assert {"system": "email", "value": "anna.petrova@example.ru"} in patient["telecom"]
    # The SMART access token reads the patient's own card, and nobody else's.
    r = stand.fhir(f"Patient/{patient['id']}", tok["access_token"])
    assert r.status_code == 200 and r.json()["id"] == patient["id"]
    other = stand.admin().post("/fhir/Patient", json={"resourceType": "Patient", "gender": "male"}, headers=FHIR_JSON).get_json()["id"]
    assert stand.fhir(f"Patient/{other}", tok["access_token"]).status_code in (403, 404)
    # A second sign-in finds the same account and patient.
    stand.browser.cookies.clear()
    _, tok2 = stand.full(PETROVA)
    assert tok2["patient"] == patient["id"]
    assert len(_patients(stand, f"{SNILS_SYSTEM}|98765432183")) == 1


def test_matching_by_snils_links_the_existing_patient(stand):
    existing = {"resourceType": "Patient", "identifier": [{"system": SNILS_SYSTEM, "value": "98765432183"}],
                "name": [{"family": "Петрова", "given": ["Анна"]}], "birthDate": "1985-07-23"}
    r = stand.admin().post("/fhir/Patient", json=existing, headers=FHIR_JSON)
    assert r.status_code == 201
    pid = r.get_json()["id"]
    _, tok = stand.full(PETROVA)
    assert tok["patient"] == pid
    (patient,) = _patients(stand, f"{SNILS_SYSTEM}|98765432183")
    assert patient["id"] == pid and patient["meta"]["versionId"] == "2"
    assert {"system": ESIA_OID_SYSTEM, "value": PETROVA} in patient["identifier"]
    assert stand.fhir(f"Patient/{pid}", tok["access_token"]).status_code == 200


def test_a_doctor_is_linked_to_the_practitioner_by_snils(stand):
    r = stand.admin().post("/fhir/Practitioner", json={"resourceType": "Practitioner", "identifier": [{"system": SNILS_SYSTEM, "value": "11223344595"}]},
                           headers=FHIR_JSON)
    did = r.get_json()["id"]
    back, _ = stand.sign_in(SMIRNOVA)
    account = stand.svc.records.account_by_login(f"{SMIRNOVA}@esia.gosuslugi.ru")
    assert account.role == "practitioner" and account.fhir_user == f"Practitioner/{did}"
    assert _patients(stand, f"{SNILS_SYSTEM}|11223344595") == []  # no Patient made for the doctor
    assert back.status_code == 302 and "/auth/authorize?" in back.headers["Location"]


def test_unconfirmed_account_signs_in_but_gets_only_its_demographics(stand):
    back, verifier = stand.sign_in(SIDOROV)
    page, redirect = stand.consent(back)
    assert 'data-notice="esia-unconfirmed"' in page.text
    assert "Ваша учётная запись на Госуслугах не подтверждена" in page.text and "центре обслуживания" in page.text
    tok = stand.token(redirect, verifier)
    assert tok["scope"].split() == ["openid", "fhirUser", "launch/patient", "online_access", "patient/Patient.rs"]
    pid = tok["patient"]
    assert stand.fhir(f"Patient/{pid}", tok["access_token"]).status_code == 200
    r = stand.fhir(f"Observation?patient={pid}", tok["access_token"])
    assert r.status_code == 403, r.text
    # The sign-in page says it too.
    login = stand.get("/auth/login")
    assert "не подтверждена" in login.text
    # Confirmed in ESIA later: the next sign-in lifts the limit.
    next(p for p in stand.emulator.persons if p["oid"] == SIDOROV)["trusted"] = True
    stand.browser.cookies.clear()
    page, tok = stand.full(SIDOROV)
    assert 'data-notice="esia-unconfirmed"' not in page.text and "patient/*.rs" in tok["scope"].split()


def test_wrong_signature_is_refused_by_esia(keys, make_stand):
    registered = keys["gost"]
    forger = pki.GostSigner(keys["other"]._d, keys["other"].curve_oid, registered.certificate)  # right certificate, wrong key
    stand = make_stand(signer_override=forger)
    _, challenge = __import__("tests.esia.conftest", fromlist=["pkce_pair"]).pkce_pair()
    answer = stand.to_esia(challenge)
    assert answer.status_code == 302
    q = query_of(answer.headers["Location"])
    assert q["error"] == "invalid_request" and q["error_description"].startswith("ESIA-007053")
    page = stand.browser.get(answer.headers["Location"], allow_redirects=False, timeout=10)
    assert page.status_code == 401 and "Госуслуги отклонили запрос на вход" in page.text
    assert stand.svc.records.account_by_login(f"{PETROVA}@esia.gosuslugi.ru") is None


def test_wrong_certificate_hash_is_refused(keys, make_stand):
    stand = make_stand(registered=keys["other"])  # ESIA knows another certificate for this client
    from .conftest import pkce_pair

    answer = stand.to_esia(pkce_pair()[1])
    q = query_of(answer.headers["Location"])
    assert q["error_description"].startswith("ESIA-007053") and "client_certificate_hash" in q["error_description"]
    page = stand.browser.get(answer.headers["Location"], allow_redirects=False, timeout=10)
    assert page.status_code == 401 and "Госуслуги отклонили" in page.text


def test_replayed_callback_state_is_refused(stand):
    from .conftest import pkce_pair

    back_page = stand.pick(stand.to_esia(pkce_pair()[1]), PETROVA)
    callback = back_page.headers["Location"]
    first = stand.browser.get(callback, allow_redirects=False, timeout=10)
    assert first.status_code == 302 and "/auth/authorize?" in first.headers["Location"]
    again = stand.browser.get(callback, allow_redirects=False, timeout=10)
    assert again.status_code == 401 and "Не удалось сопоставить вход через Госуслуги" in again.text
    assert stand.emulator.calls["te"] == 1  # the replay never reached ESIA
    # A state this browser never got is refused the same way (no sign-in fixation).
    forged = callback.replace(query_of(callback)["state"], "00000000-0000-4000-8000-000000000000")
    assert stand.browser.get(forged, allow_redirects=False, timeout=10).status_code == 401


def test_expired_code_is_refused(stand):
    from .conftest import pkce_pair

    stand.emulator.code_seconds = -1  # codes expire as soon as they are issued
    back = stand.pick(stand.to_esia(pkce_pair()[1]), PETROVA)
    page = stand.browser.get(back.headers["Location"], allow_redirects=False, timeout=10)
    assert page.status_code == 401 and "Госуслуги отклонили" in page.text
    assert stand.emulator.calls["te"] == 1  # a 4xx is never retried
    assert stand.svc.records.account_by_login(f"{PETROVA}@esia.gosuslugi.ru") is None


def test_esia_500_then_recovering_is_retried(stand):
    stand.emulator.inject("te", 500, 503)
    stand.emulator.inject("person", 502)
    _, tok = stand.full(PETROVA)
    assert tok["access_token"] and stand.emulator.calls["te"] == 3 and stand.emulator.calls["person"] == 2


def test_esia_down_after_the_retries_shows_the_russian_page(stand):
    stand.emulator.inject("te", 500, 500, 500)
    back, _ = stand.sign_in(PETROVA)
    assert back.status_code == 503 and "Госуслуги сейчас не отвечают" in back.text
    assert stand.emulator.calls["te"] == 3  # one call and two retries, no more


def test_esia_timing_out_shows_the_russian_page_without_hanging(make_stand):
    stand = make_stand(esia_timeout_seconds=0.5)
    stand.emulator.inject("te", ("delay", 3))
    from .conftest import pkce_pair

    back = stand.pick(stand.to_esia(pkce_pair()[1]), PETROVA)
    started = time.monotonic()
    page = stand.browser.get(back.headers["Location"], allow_redirects=False, timeout=10)
    assert time.monotonic() - started < 2.0
    assert page.status_code == 503 and "Госуслуги сейчас не отвечают" in page.text
    assert stand.emulator.calls["te"] == 1  # a read timeout is never repeated (the code may have been used)


def test_esia_unreachable_is_retried_then_the_russian_page(make_stand):
    stand = make_stand()
    from .conftest import pkce_pair

    back = stand.pick(stand.to_esia(pkce_pair()[1]), PETROVA)
    provider = stand.provider
    import dataclasses

    provider.client.config = dataclasses.replace(provider.client.config, url="http://127.0.0.1:9")  # nothing listens there
    page = stand.browser.get(back.headers["Location"], allow_redirects=False, timeout=10)
    assert page.status_code == 503 and "Госуслуги сейчас не отвечают" in page.text


def test_tokens_signed_by_another_key_are_refused(make_stand):
    stand = make_stand()
    stand.emulator.signer = pki.self_signed("rsa", "impostor")
    back, _ = stand.sign_in(PETROVA)
    assert back.status_code == 401 and "не прошёл проверку безопасности" in back.text


def test_tokens_of_another_issuer_are_refused(stand):
    stand.emulator.issuer = "http://esia.example.invalid/"
    back, _ = stand.sign_in(PETROVA)
    assert back.status_code == 401 and "не прошёл проверку безопасности" in back.text


def test_user_declining_at_esia(stand):
    from .conftest import pkce_pair

    page = stand.to_esia(pkce_pair()[1])
    back = stand.pick(page, "")
    assert query_of(back.headers["Location"])["error"] == "access_denied"
    r = stand.browser.get(back.headers["Location"], allow_redirects=False, timeout=10)
    assert r.status_code == 401 and "Вы отказались" in r.text


def test_strict_session_cookie_missing_on_the_return_gets_a_same_site_hop(stand):
    from .conftest import pkce_pair

    back = stand.pick(stand.to_esia(pkce_pair()[1]), PETROVA)
    callback = back.headers["Location"]
    cookies = stand.browser.cookies.copy()
    stand.browser.cookies.clear()  # a browser does not send SameSite=Strict cookies on this cross-site return
    hop = stand.browser.get(callback, allow_redirects=False, timeout=10)
    assert hop.status_code == 200 and 'http-equiv="refresh"' in hop.text and "hop=1" in hop.text
    assert stand.emulator.calls["te"] == 0
    stand.browser.cookies.update(cookies)  # from our own page it does
    target = callback + "&hop=1"
    r = stand.browser.get(target, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and "/auth/authorize?" in r.headers["Location"]


def test_logout_ends_the_session_and_goes_through_esia(stand):
    stand.full(PETROVA)
    page = stand.get("/auth/login")
    assert "Вы вошли как" in page.text
    r = stand.browser.post(stand.url + "/auth/logout", data={"csrf": stand.csrf(page.text)}, allow_redirects=False, timeout=10)
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith(stand.esia_url + "/idp/ext/Logout?")
    assert query_of(location) == {"client_id": CLIENT_ID, "redirect_url": stand.url + "/auth/login"}
    back = stand.browser.get(location, allow_redirects=False, timeout=10)
    assert back.status_code == 302 and back.headers["Location"] == stand.url + "/auth/login"
    assert "Вы вошли как" not in stand.get("/auth/login").text


def test_the_emulator_codes_are_single_use(stand):
    """Redeeming a code twice at v3/te: the second answer is invalid_grant (the emulator's check)."""
    from .conftest import pkce_pair

    back = stand.pick(stand.to_esia(pkce_pair()[1]), PETROVA)
    code = query_of(back.headers["Location"])["code"]
    client = stand.provider.client
    callback = stand.url + "/auth/login/esia/callback"
    client.exchange(code, callback)
    from fhir_server.esia.client import EsiaRefused

    with pytest.raises(EsiaRefused):
        client.exchange(code, callback)
    r = requests.post(stand.esia_url + "/aas/oauth2/v3/te", data={"grant_type": "authorization_code", "client_id": CLIENT_ID, "code": code}, timeout=5)
    assert r.status_code == 400


def test_an_unconfirmed_doctor_gets_identity_only(stand):
    stand.admin().post("/fhir/Practitioner", json={"resourceType": "Practitioner", "identifier": [{"system": SNILS_SYSTEM, "value": "11223344595"}]},
                       headers=FHIR_JSON)
    next(p for p in stand.emulator.persons if p["oid"] == SMIRNOVA)["trusted"] = False
    page, tok = stand.full(SMIRNOVA)
    assert 'data-notice="esia-unconfirmed"' in page.text
    assert tok["scope"].split() == ["openid", "fhirUser"] and "patient" not in tok


def test_no_personal_data_codes_or_tokens_in_the_log(stand, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    stand.emulator.inject("te", 500)
    back, verifier = stand.sign_in(PETROVA)
    code = query_of(back.url if "code=" in back.url else "")  # the callback URL the browser followed
    _, redirect = stand.consent(back)
    tok = stand.token(redirect, verifier)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("fhir_server"))
    assert "signed in (esia)" in ours  # the log does tell what happened
    for secret in (PETROVA, "98765432183", "987-654-321 83", "Петрова", "4510", "anna.petrova", tok["access_token"][:40], *code.values()):
        assert secret not in ours, secret


def test_expired_esia_tokens_are_refused(stand):
    stand.emulator.token_seconds = -120  # exp two minutes ago: beyond the 60 s leeway
    back, _ = stand.sign_in(PETROVA)
    assert back.status_code == 401 and "не прошёл проверку безопасности" in back.text


def test_esia_tokens_not_yet_valid_are_refused(stand):
    real = stand.emulator.clock
    stand.emulator.clock = lambda: real() + 300  # ESIA's clock five minutes ahead: nbf in our future
    back, _ = stand.sign_in(PETROVA)
    assert back.status_code == 401 and "не прошёл проверку безопасности" in back.text


def test_contacts_not_shared_do_not_stop_the_sign_in(stand):
    stand.emulator.inject("ctts", 403)
    _, tok = stand.full(PETROVA)
    (patient,) = _patients(stand, f"{SNILS_SYSTEM}|98765432183")
    assert "telecom" not in patient and patient["id"] == tok["patient"]


def test_the_person_record_refused_stops_the_sign_in_without_retry(stand):
    stand.emulator.inject("person", 403)
    back, _ = stand.sign_in(PETROVA)
    assert back.status_code == 401 and "Госуслуги отклонили" in back.text and stand.emulator.calls["person"] == 1


def test_a_state_is_used_once_even_when_the_sign_in_failed(stand):
    from .conftest import pkce_pair

    stand.emulator.inject("te", 500, 500, 500)
    callback = stand.pick(stand.to_esia(pkce_pair()[1]), PETROVA).headers["Location"]
    assert stand.browser.get(callback, allow_redirects=False, timeout=10).status_code == 503
    again = stand.browser.get(callback, allow_redirects=False, timeout=10)
    assert again.status_code == 401 and "Не удалось сопоставить" in again.text
    assert stand.emulator.calls["te"] == 3  # the second try never reached ESIA


def test_a_browser_sending_fetch_metadata_is_reloaded_once_by_the_session_layer(stand):
    from .conftest import pkce_pair

    callback = stand.pick(stand.to_esia(pkce_pair()[1]), PETROVA).headers["Location"]
    cookies = stand.browser.cookies.copy()
    stand.browser.cookies.clear()
    bounce = stand.browser.get(callback, headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False, timeout=10)
    assert bounce.status_code == 200 and "_same_site=1" in bounce.text and "hop=1" not in bounce.text
    stand.browser.cookies.update(cookies)
    r = stand.browser.get(callback + "&_same_site=1", headers={"Sec-Fetch-Site": "same-origin"}, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and "/auth/authorize?" in r.headers["Location"]


def test_an_unconfirmed_account_is_not_linked_to_a_card_by_its_snils(stand):
    """ESIA vouches for the SNILS of a confirmed account only: an unconfirmed one whose SNILS is on
    an existing card gets no access to that card (nor a second card) until it signs in confirmed."""
    r = stand.admin().post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"family": "Настоящий"}],
                                                  "identifier": [{"system": SNILS_SYSTEM, "value": "17400354229"}]}, headers=FHIR_JSON)
    assert r.status_code == 201, r.get_data(as_text=True)
    card = r.get_json()["id"]
    page, tok = stand.full(SIDOROV)
    assert 'data-notice="esia-unconfirmed"' in page.text
    assert "patient" not in tok
    assert stand.fhir(f"Patient/{card}", tok["access_token"]).status_code in (403, 404)
    assert "Настоящий" not in stand.fhir("Patient", tok["access_token"]).text
    found = stand.admin().get("/fhir/Patient", query_string={"identifier": f"{SNILS_SYSTEM}|17400354229"}, headers=FHIR_JSON).get_json()
    assert found["total"] == 1  # no second card was made
    # Confirmed in ESIA later: the same account is now linked to that card.
    next(p for p in stand.emulator.persons if p["oid"] == SIDOROV)["trusted"] = True
    stand.browser.cookies.clear()
    page, tok = stand.full(SIDOROV)
    assert tok["patient"] == card
    assert stand.fhir(f"Patient/{card}", tok["access_token"]).json()["name"][0]["family"] == "Настоящий"
