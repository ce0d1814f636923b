"""Patient/$bind-oms-policy over HTTP: the ENP check digit, the registry checks, the Coverage,
who may bind, and that every refusal leaves the store as it was."""

from __future__ import annotations

import json

import pytest

from fhir_server.auth import mint_token
from fhir_server.interactions import oms
from profiles_ru import identifiers

FHIR = {"Content-Type": "application/fhir+json"}
ENP_OK = "7700000000000016"  # seed/oms_policies.json: Иванов Иван Иванович, 1961-03-12, in force
ENP_EXPIRED = "7700000000000024"  # same person, ended 2020-12-31
ENP_OTHER_PERSON = "5000000000000033"  # Петрова Анна Сергеевна, 1985-07-01
ENP_OTHER_BIRTH = "7800000000000049"  # Иванов Иван Иванович, born 1961-03-21
ENP_UNKNOWN = "1234567812345670"  # valid check digit, not in the registry
PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"use": "official", "family": "Иванов", "given": ["Иван", "Иванович"]}],
    "birthDate": "1961-03-12",
}


def params(enp, name="enp", kind="valueString"):
    return {"resourceType": "Parameters", "parameter": [{"name": name, kind: enp}]}


@pytest.fixture
def oms_app(make_app):
    app = make_app(oms_registry="demo")
    admin = mint_token(app, subject="root", role="admin", scope="user/*.cruds")
    c = app.test_client()
    for pid, given in (("p1", PATIENT["name"][0]["given"]), ("p2", ["Анна", "Сергеевна"])):
        body = {**PATIENT, "id": pid, "name": [{**PATIENT["name"][0], "given": given}]}
        r = c.put(f"/fhir/Patient/{pid}", data=json.dumps(body), headers={**FHIR, "Authorization": f"Bearer {admin}"})
        assert r.status_code == 201, r.get_data(as_text=True)
    app.admin_token = admin
    return app


def patient_token(app, pid="p1", scope="patient/*.cruds launch/patient"):
    return mint_token(app, subject=f"acct-{pid}", role="patient", scope=scope, fhir_user=f"Patient/{pid}", patient=pid)


def bind(app, token, pid="p1", body=None, lang="en", enp=ENP_OK):
    return app.test_client().post(
        f"/fhir/Patient/{pid}/$bind-oms-policy", data=json.dumps(body if body is not None else params(enp)),
        headers={**FHIR, "Authorization": f"Bearer {token}", "Accept-Language": lang},
    )


def snapshot(app) -> dict:
    """Every current resource but the audit trail (which records each request)."""
    store = app.config["FHIR_STORE"]
    reader = store.reader()
    out = {}
    for rtype in ("Coverage", "Organization", "Patient"):
        out[rtype] = sorted((v.id, v.version) for v in reader.search(rtype, {}, [("_id", 1)], 1000))
    return out


def test_patient_binds_their_policy_and_gets_a_coverage(oms_app):
    r = bind(oms_app, patient_token(oms_app))
    assert r.status_code == 201, r.get_data(as_text=True)
    cov = r.get_json()
    assert cov["resourceType"] == "Coverage" and cov["status"] == "active"
    assert cov["beneficiary"] == {"reference": "Patient/p1"}
    assert cov["identifier"] == [{"system": "urn:oid:1.2.643.2.69.1.1.1.6.228", "value": ENP_OK}]
    assert {"system": identifiers.OMS_POLICY_TYPES, "code": "3", "display": "Полис ОМС единого образца"} in cov["type"]["coding"]
    assert r.headers["Location"].startswith(f"http://localhost/fhir/Coverage/{cov['id']}/_history/1")
    payor = cov["payor"][0]["reference"]
    admin = {"Authorization": f"Bearer {oms_app.admin_token}"}
    org = oms_app.test_client().get(f"/fhir/{payor}", headers=admin).get_json()
    assert org["name"] == "АО «Демо-Мед Страхование»"
    assert org["identifier"] == [{"system": identifiers.INSURERS, "value": "99001"}]
    # the patient reads their Coverage back through the normal search
    found = oms_app.test_client().get("/fhir/Coverage?beneficiary=Patient/p1", headers={"Authorization": f"Bearer {patient_token(oms_app)}"})
    assert [e["resource"]["id"] for e in found.get_json()["entry"]] == [cov["id"]]


def test_binding_again_updates_the_same_coverage_and_reuses_the_insurer(oms_app):
    tok = patient_token(oms_app)
    first = bind(oms_app, tok).get_json()
    again = bind(oms_app, tok, enp="7700-0000-0000-0016")  # written with separators: the same number
    assert again.status_code == 200 and again.get_json()["id"] == first["id"]
    assert again.get_json()["meta"]["versionId"] == "1"  # nothing changed: no new version
    assert len(snapshot(oms_app)["Organization"]) == 1


def test_admin_may_bind_for_a_patient(oms_app):
    r = bind(oms_app, oms_app.admin_token)
    assert r.status_code == 201 and r.get_json()["beneficiary"]["reference"] == "Patient/p1"


@pytest.mark.parametrize(
    ("enp", "status", "key_en", "key_ru"),
    [
        ("770000000000001", 400, "must be exactly 16 digits", "ровно из 16 цифр"),
        ("77000000000000160", 400, "must be exactly 16 digits", "ровно из 16 цифр"),
        ("77000000000000AB", 400, "must be exactly 16 digits", "ровно из 16 цифр"),
        ("7700000000000017", 400, "check digit", "контрольная"),
        (ENP_UNKNOWN, 422, "has no policy with this number", "нет полиса с таким номером"),
        (ENP_EXPIRED, 422, "expired on 2020-12-31", "истёк 2020-12-31"),
        (ENP_OTHER_BIRTH, 422, "birth date on this policy does not match", "Дата рождения владельца полиса не совпадает"),
        (ENP_OTHER_PERSON, 422, "name on this policy does not match", "ФИО владельца полиса не совпадает"),
    ],
)
def test_each_failure_says_what_did_not_match_and_changes_nothing(oms_app, enp, status, key_en, key_ru):
    tok = patient_token(oms_app)
    before = snapshot(oms_app)
    for lang, text in (("en", key_en), ("ru", key_ru)):
        r = bind(oms_app, tok, enp=enp, lang=lang)
        assert r.status_code == status, r.get_data(as_text=True)
        out = r.get_json()
        assert out["resourceType"] == "OperationOutcome"
        assert any(text in i["diagnostics"] for i in out["issue"]), out
        assert all(i["expression"] == ["Parameters.parameter[0].value[x]"] for i in out["issue"])
    assert snapshot(oms_app) == before


def test_a_policy_of_someone_else_lists_every_mismatch(oms_app):
    r = bind(oms_app, patient_token(oms_app), enp=ENP_OTHER_PERSON)
    keys = [i["diagnostics"] for i in r.get_json()["issue"]]
    assert len(keys) == 2 and "name" in keys[0] and "birth date" in keys[1]


def test_the_check_digit_is_checked_before_the_registry(oms_app, monkeypatch):
    asked = []
    monkeypatch.setattr(oms.JsonRegistry, "lookup", lambda self, enp: asked.append(enp))
    assert bind(oms_app, patient_token(oms_app), enp="7700000000000017").status_code == 400
    assert asked == []


@pytest.mark.parametrize(
    ("body", "status", "expression"),
    [
        ({"resourceType": "Parameters"}, 400, "Parameters.parameter"),
        (params(ENP_OK, name="policy"), 400, "Parameters.parameter"),
        (params(77, kind="valueInteger"), 400, "Parameters.parameter[0].value[x]"),
        ({"resourceType": "Patient"}, 400, "Parameters.resourceType"),
        ({"resourceType": "Parameters", "parameter": [{"name": "enp", "valueString": ENP_OK, "bogus": 1}]}, 400, None),
    ],
)
def test_malformed_parameters(oms_app, body, status, expression):
    before = snapshot(oms_app)
    r = bind(oms_app, patient_token(oms_app), body=body)
    assert r.status_code == status, r.get_data(as_text=True)
    if expression:
        assert r.get_json()["issue"][0]["expression"] == [expression]
    assert snapshot(oms_app) == before


def test_only_the_patient_themself(oms_app):
    before = snapshot(oms_app)
    # another patient: their card is invisible to this token -> not found
    r = bind(oms_app, patient_token(oms_app, "p2"), pid="p1")
    assert r.status_code == 404
    # a practitioner without a Consent: the consent layer does not show them the patient
    doctor = mint_token(oms_app, subject="d", role="practitioner", scope="user/*.cruds", fhir_user="Practitioner/d1")
    assert bind(oms_app, doctor).status_code == 404
    # a patient token without write scopes on Coverage
    reader = patient_token(oms_app, scope="patient/*.rs")
    r = bind(oms_app, reader)
    assert r.status_code == 403 and "Coverage" in r.get_json()["issue"][0]["diagnostics"]
    assert bind(oms_app, None).status_code == 401
    assert snapshot(oms_app) == before


def test_staff_registration_goes_through_the_consent_layer(oms_app):
    staff = mint_token(oms_app, subject="reg", role="staff", scope="user/*.cruds")
    r = bind(oms_app, staff)
    assert r.status_code == 201, r.get_data(as_text=True)


def test_get_is_not_allowed_and_metadata_lists_the_operation(oms_app):
    r = oms_app.test_client().get("/fhir/Patient/p1/$bind-oms-policy", headers={"Authorization": f"Bearer {oms_app.admin_token}"})
    assert r.status_code == 405
    meta = oms_app.test_client().get("/fhir/metadata").get_json()
    patient = next(x for x in meta["rest"][0]["resource"] if x["type"] == "Patient")
    assert "bind-oms-policy" in [o["name"] for o in patient["operation"]]


def test_registry_unavailable_or_unconfigured_is_503(make_app, oms_app, monkeypatch):
    def down(self, enp):
        raise oms.RegistryUnavailable()

    monkeypatch.setattr(oms.JsonRegistry, "lookup", down)
    r = bind(oms_app, patient_token(oms_app))
    assert r.status_code == 503 and r.get_json()["issue"][0]["code"] == "transient"
    bare = make_app()
    tok = mint_token(bare, subject="root", role="admin", scope="user/*.cruds")
    bare.test_client().put("/fhir/Patient/p1", data=json.dumps(PATIENT), headers={**FHIR, "Authorization": f"Bearer {tok}"})
    assert bind(bare, tok).status_code == 503


def test_a_registry_file_and_a_pluggable_client(make_app, tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({
        "insurers": {"x": {"name": "СМО Икс", "code": "11111"}},
        "policies": [{"enp": ENP_UNKNOWN, "family": "ИВАНОВ", "given": ["иван"], "birthDate": "1961-03-12", "insurer": "x"}],
    }), encoding="utf-8")
    app = make_app(oms_registry=str(path))
    admin = mint_token(app, subject="root", role="admin", scope="user/*.cruds")
    app.test_client().put("/fhir/Patient/p1", data=json.dumps(PATIENT), headers={**FHIR, "Authorization": f"Bearer {admin}"})
    r = bind(app, patient_token(app), enp=ENP_UNKNOWN)  # names compare without case; no patronymic on the policy
    assert r.status_code == 201 and r.get_json()["payor"][0]["display"] == "СМО Икс"
    assert bind(app, patient_token(app), enp=ENP_OK).status_code == 422
    plug = make_app(oms_registry="tests.auth.test_oms_binding:OneRecordRegistry")
    assert isinstance(oms.registry_for(plug.config["FHIR_SETTINGS"]), OneRecordRegistry)


class OneRecordRegistry:
    def lookup(self, enp):
        return None


def test_the_demo_card_binds_its_seeded_policy(make_app, capsys):
    app = make_app(demo=True)
    assert "7700000000000016" in capsys.readouterr().err  # printed with the demo sign-in
    tok = patient_token(app, "demo-patient-1")
    r = bind(app, tok, pid="demo-patient-1")
    assert r.status_code == 201, r.get_data(as_text=True)
    assert r.get_json()["beneficiary"] == {"reference": "Patient/demo-patient-1"}


def test_a_signed_in_patient_binds_through_the_real_flow_but_cannot_write_coverage_directly(oms_app):
    """Sign-in form -> authorize -> token: a patient app may be granted patient/Coverage.cu, which
    $bind-oms-policy needs; the same token still cannot create or change a Coverage by hand."""
    from tests.auth.conftest import Flow, add_account, add_public_client

    svc = oms_app.extensions["fhir_auth"]
    add_account(svc, "ivanov@example.org", "patient", "Patient/p1")
    add_public_client(svc)
    tok = Flow(oms_app, "app-public").full("ivanov@example.org", "launch/patient patient/*.rs patient/Coverage.cu")
    assert "patient/Coverage.cu" in tok["scope"].split()
    r = bind(oms_app, tok["access_token"])
    assert r.status_code == 201, r.get_data(as_text=True)
    cov = r.get_json()
    auth = {**FHIR, "Authorization": f"Bearer {tok['access_token']}"}
    api = oms_app.test_client()
    forged = {**cov, "status": "cancelled"}
    assert api.put(f"/fhir/Coverage/{cov['id']}", data=json.dumps(forged), headers=auth).status_code == 403
    other = {k: v for k, v in cov.items() if k not in ("id", "meta")}
    assert api.post("/fhir/Coverage", data=json.dumps(other), headers=auth).status_code == 403
    assert api.get(f"/fhir/Coverage/{cov['id']}", headers=auth).get_json()["status"] == "active"
