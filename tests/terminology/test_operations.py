"""Terminology operations over HTTP: $lookup, $validate-code (CodeSystem, ValueSet),
$expand, $translate (R4 codesystem-/valueset-/conceptmap-operation-*.html)."""

from __future__ import annotations

from urllib.parse import quote

from tests.interaction._util import assert_error

CANONICAL = "https://fhir-server-ru.github.io/fhir"
ICD10 = "urn:oid:1.2.643.5.1.13.13.11.1005"
SEX = "urn:oid:1.2.643.5.1.13.13.11.1040"
FSLI = "urn:oid:1.2.643.5.1.13.13.11.1080"
GENDER = "http://hl7.org/fhir/administrative-gender"


def params(body: dict) -> dict:
    assert body["resourceType"] == "Parameters", body
    out: dict = {}
    for p in body["parameter"]:
        value = p.get("part") if "part" in p else next(v for k, v in p.items() if k.startswith("value"))
        out.setdefault(p["name"], []).append(value)
    return out


def parts(part: list) -> dict:
    return {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in part}


def q(value: str) -> str:
    return quote(value, safe="")


def get_ok(client, path):
    r = client.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


# -- $lookup -----------------------------------------------------------------------------------------
def test_lookup_returns_display_version_parent_and_synonym(client):
    out = params(get_ok(client, f"/fhir/CodeSystem/$lookup?system={q(ICD10)}&code=E11.9"))
    assert out["version"] == ["2.27"]
    assert out["display"] == ["Инсулиннезависимый сахарный диабет без осложнений"]
    assert "МКБ-10" in out["name"][0]
    props = [parts(p) for p in out["property"]]
    assert {"code": "parent", "value": "E11"} in props
    assert {"code": "kind", "value": "subcategory"} in props
    designations = [parts(d) for d in out["designation"]]
    assert any(d["value"] == "Сахарный диабет 2 типа без осложнений" and d["language"] == "ru" for d in designations)


def test_lookup_property_selects_children(client):
    out = params(get_ok(client, f"/fhir/CodeSystem/$lookup?system={q(ICD10)}&code=E10-E14&property=child"))
    props = [parts(p) for p in out["property"]]
    assert {p["code"] for p in props} == {"child"}
    assert {"code": "child", "value": "E11"} in props and "designation" not in out


def test_lookup_by_post_coding(client):
    body = {"resourceType": "Parameters", "parameter": [{"name": "coding", "valueCoding": {"system": SEX, "code": "2"}}]}
    r = client.post("/fhir/CodeSystem/$lookup", body)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert params(r.get_json())["display"] == ["Женский"]


def test_lookup_errors(client):
    assert_error(client.get(f"/fhir/CodeSystem/$lookup?system={q(ICD10)}"), 400, "code")
    assert_error(client.get("/fhir/CodeSystem/$lookup?code=E11"), 400, "system")
    assert_error(client.get("/fhir/CodeSystem/$lookup?system=urn:oid:1.2.3&code=E11"), 404, "system", code="not-found")
    body = assert_error(client.get(f"/fhir/CodeSystem/$lookup?system={q(ICD10)}&code=XX9", headers={"Accept-Language": "ru"}), 404, "code")
    assert "не найден" in body["issue"][0]["diagnostics"]
    assert_error(client.post("/fhir/CodeSystem/$lookup", {"resourceType": "Patient"}), 400)
    bad = {"resourceType": "Parameters", "parameter": [{"name": "code", "valueCode": "E11", "valueString": "E11"}]}
    assert_error(client.post("/fhir/CodeSystem/$lookup", bad), 400)
    assert_error(client.post("/fhir/CodeSystem/$lookup", {"resourceType": "Parameters", "parameter": [{"name": "code", "valueCoding": "E11"}]}),
                 400, "Parameters.parameter[0].valueCoding")


# -- CodeSystem/$validate-code -----------------------------------------------------------------------
def test_codesystem_validate_code(client):
    out = params(get_ok(client, f"/fhir/CodeSystem/$validate-code?url={q(SEX)}&code=1"))
    assert out["result"] == [True] and out["display"] == ["Мужской"]
    out = params(get_ok(client, f"/fhir/CodeSystem/$validate-code?url={q(SEX)}&code=1&display={q('Женский')}"))
    assert out["result"] == [False] and "Мужской" in out["message"][0]
    out = params(get_ok(client, f"/fhir/CodeSystem/$validate-code?url={q(SEX)}&code=7"))
    assert out["result"] == [False] and "7" in out["message"][0]


def test_codesystem_validate_code_instance_level(client):
    out = params(get_ok(client, "/fhir/CodeSystem/nsi-sex/$validate-code?code=3"))
    assert out["result"] == [True]
    assert_error(client.get("/fhir/CodeSystem/no-such/$validate-code?code=3"), 404)


def test_codesystem_validate_code_fragment_cannot_confirm(client):
    """A code outside a packaged fragment is not declared valid: result false, saying why."""
    out = params(get_ok(client, f"/fhir/CodeSystem/$validate-code?url={q(ICD10)}&code=Z99.9"))
    assert out["result"] == [False] and "fragment" in out["message"][0]
    out = params(get_ok(client, f"/fhir/CodeSystem/$validate-code?url={q(ICD10)}&code=E11.999"))
    assert out["result"] == [False] and "Unknown code" in out["message"][0]  # not МКБ-10 syntax: surely not in it


def test_python_api_tells_unknown_from_unchecked():
    from terminology import validate_code

    vs = f"{CANONICAL}/ValueSet/icd10"
    assert validate_code(valueset=vs, system=ICD10, code="E11.9").ok is True
    assert validate_code(valueset=vs, system=ICD10, code="Z99.9").ok is None  # outside the packaged fragment
    assert validate_code(valueset=vs, system=ICD10, code="e11.9").ok is False  # no МКБ-10 code looks like this
    assert validate_code(system=ICD10, code="XYZ").ok is False
    assert validate_code(valueset=f"{CANONICAL}/ValueSet/nsi-sex", system=SEX, code="4").ok is False  # complete
    assert validate_code(valueset=f"{CANONICAL}/ValueSet/none", code="4").ok is None


# -- ValueSet/$validate-code -------------------------------------------------------------------------
def test_valueset_validate_code(client):
    vs = q(f"{CANONICAL}/ValueSet/icd10")
    out = params(get_ok(client, f"/fhir/ValueSet/$validate-code?url={vs}&system={q(ICD10)}&code=I10&display={q('Эссенциальная (первичная) гипертензия')}"))
    assert out["result"] == [True] and out["display"] == ["Эссенциальная [первичная] гипертензия"]
    out = params(get_ok(client, f"/fhir/ValueSet/$validate-code?url={q(CANONICAL + '/ValueSet/ru-gender')}&system={q(GENDER)}&code=other"))
    assert out["result"] == [False]


def test_valueset_validate_code_codeable_concept(client):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": f"{CANONICAL}/ValueSet/nsi-sex"},
        {"name": "codeableConcept", "valueCodeableConcept": {"coding": [{"system": SEX, "code": "9"}, {"system": SEX, "code": "2"}]}},
    ]}
    r = client.post("/fhir/ValueSet/$validate-code", body)
    assert r.status_code == 200, r.get_data(as_text=True)
    out = params(r.get_json())
    assert out["result"] == [True] and out["display"] == ["Женский"]


def test_valueset_validate_code_errors(client):
    vs = q(f"{CANONICAL}/ValueSet/nsi-sex")
    assert_error(client.get(f"/fhir/ValueSet/$validate-code?url={vs}&code=1"), 400, "system")
    assert_error(client.get(f"/fhir/ValueSet/$validate-code?system={q(SEX)}&code=1"), 400, "url")
    assert_error(client.get(f"/fhir/ValueSet/$validate-code?url={vs}"), 400, "code")
    body = assert_error(client.get(f"/fhir/ValueSet/$validate-code?url={q(CANONICAL + '/ValueSet/nope')}&system={q(SEX)}&code=1",
                                   headers={"Accept-Language": "ru"}), 404, "url", code="not-found")
    assert "неизвестен" in body["issue"][0]["diagnostics"]


# -- $expand -------------------------------------------------------------------------------------------
def test_expand_whole_value_set(client):
    vs = get_ok(client, f"/fhir/ValueSet/$expand?url={q(CANONICAL + '/ValueSet/nsi-sex')}")
    assert vs["resourceType"] == "ValueSet" and "compose" not in vs
    exp = vs["expansion"]
    assert exp["total"] == 3 and exp["identifier"].startswith("urn:uuid:") and exp["timestamp"]
    assert [c["code"] for c in exp["contains"]] == ["1", "2", "3"]
    assert {"name": "used-codesystem", "valueUri": f"{SEX}|2.1"} in exp["parameter"]


def test_expand_filter_is_case_insensitive_cyrillic(client):
    exp = get_ok(client, f"/fhir/ValueSet/$expand?url={q(CANONICAL + '/ValueSet/icd10')}&filter={q('САХАРНЫЙ ДИАБЕТ')}")["expansion"]
    codes = {c["code"] for c in exp["contains"]}
    assert {"E10-E14", "E11", "E11.9", "O24"} <= codes and "I10" not in codes
    assert exp["total"] == len(codes)
    assert {"name": "filter", "valueString": "САХАРНЫЙ ДИАБЕТ"} in exp["parameter"]
    exp = get_ok(client, f"/fhir/ValueSet/$expand?url={q(CANONICAL + '/ValueSet/nsi-sex')}&filter={q('жен')}")["expansion"]
    assert [c["code"] for c in exp["contains"]] == ["2"]


def test_expand_count_and_offset(client):
    url = f"/fhir/ValueSet/$expand?url={q(CANONICAL + '/ValueSet/icd10')}"
    whole = get_ok(client, url)["expansion"]
    exp = get_ok(client, url + "&count=5&offset=10")["expansion"]
    assert exp["total"] == whole["total"] > 400 and exp["offset"] == 10
    assert [c["code"] for c in exp["contains"]] == [c["code"] for c in whole["contains"][10:15]]
    assert {"name": "count", "valueInteger": 5} in exp["parameter"] and {"name": "offset", "valueInteger": 10} in exp["parameter"]
    assert "contains" not in get_ok(client, url + "&count=0")["expansion"]
    assert_error(client.get(url + "&count=-1"), 400, "count")
    assert_error(client.get(url + "&offset=x"), 400, "offset")


def test_expand_instance_level_and_posted_value_set(client):
    exp = get_ok(client, "/fhir/ValueSet/ru-gender/$expand")["expansion"]
    assert [c["code"] for c in exp["contains"]] == ["male", "female", "unknown"]
    inline = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [{"system": ICD10, "filter": [{"property": "concept", "op": "is-a", "value": "E10-E14"}]}]}}
    r = client.post("/fhir/ValueSet/$expand", {"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": inline}]})
    assert r.status_code == 200, r.get_data(as_text=True)
    codes = [c["code"] for c in r.get_json()["expansion"]["contains"]]
    assert "E10-E14" in codes and "E11.9" in codes and "I10" not in codes
    assert_error(client.get("/fhir/ValueSet/$expand"), 400, "url")
    assert_error(client.get(f"/fhir/ValueSet/$expand?url={q(CANONICAL + '/ValueSet/nope')}"), 404, "url")


# -- $translate ----------------------------------------------------------------------------------------
def test_translate_fsli_to_loinc_and_back(client):
    cm = q(f"{CANONICAL}/ConceptMap/fsli-to-loinc")
    out = params(get_ok(client, f"/fhir/ConceptMap/$translate?url={cm}&system={q(FSLI)}&code=1017128"))
    assert out["result"] == [True]
    match = parts(out["match"][0])
    assert match["equivalence"] == "equivalent" and match["concept"]["code"] == "718-7" and match["concept"]["system"] == "http://loinc.org"
    assert match["source"] == f"{CANONICAL}/ConceptMap/fsli-to-loinc"
    out = params(get_ok(client, f"/fhir/ConceptMap/$translate?system={q('http://loinc.org')}&code=718-7&reverse=true"))
    assert parts(out["match"][0])["concept"] == {"system": FSLI, "code": "1017128", "display": "Гемоглобин общий, массовая концентрация в крови"}


def test_translate_gender_without_url(client):
    out = params(get_ok(client, f"/fhir/ConceptMap/$translate?system={q(GENDER)}&code=female&targetsystem={q(SEX)}"))
    assert out["result"] == [True] and parts(out["match"][0])["concept"]["code"] == "2"
    out = params(get_ok(client, f"/fhir/ConceptMap/$translate?system={q(GENDER)}&code=other&targetsystem={q(SEX)}"))
    assert out["result"] == [False] and parts(out["match"][0])["equivalence"] == "unmatched"
    out = params(get_ok(client, f"/fhir/ConceptMap/$translate?system={q(GENDER)}&code=male&targetsystem=http://loinc.org"))
    assert out["result"] == [False] and out["message"] and "match" not in out


def test_translate_post_coding_and_errors(client):
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": f"{CANONICAL}/ConceptMap/gender-to-nsi-sex"},
        {"name": "coding", "valueCoding": {"system": GENDER, "code": "unknown"}}]}
    r = client.post("/fhir/ConceptMap/$translate", body)
    assert r.status_code == 200 and parts(params(r.get_json())["match"][0])["equivalence"] == "wider"
    assert_error(client.get(f"/fhir/ConceptMap/$translate?url={q(CANONICAL + '/ConceptMap/x')}&system={q(GENDER)}&code=male"), 404, "url")
    assert_error(client.get("/fhir/ConceptMap/$translate?system=x"), 400, "code")
    assert_error(client.get(f"/fhir/ConceptMap/$translate?system={q(GENDER)}&code=male&reverse=maybe"), 400, "reverse")


def test_operations_only_on_their_types_and_methods(client):
    assert_error(client.get("/fhir/Patient/$expand"), 400)  # the router's answer to an unknown operation
    assert_error(client.delete(f"/fhir/ValueSet/$expand?url={q(CANONICAL + '/ValueSet/nsi-sex')}"), 405)


def test_capability_statement_lists_the_operations(client):
    cs = get_ok(client, "/fhir/metadata")
    ops = {r["type"]: {o["name"]: o["definition"] for o in r["operation"]} for r in cs["rest"][0]["resource"]}
    assert ops["CodeSystem"]["lookup"] == "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup"
    assert ops["CodeSystem"]["validate-code"].endswith("CodeSystem-validate-code")
    assert ops["ValueSet"]["expand"].endswith("ValueSet-expand") and ops["ValueSet"]["validate-code"].endswith("ValueSet-validate-code")
    assert ops["ConceptMap"]["translate"].endswith("ConceptMap-translate")
    assert "expand" not in ops["Patient"]


def test_malformed_parameters_are_400(client):
    assert_error(client.get("/fhir/ValueSet/$expand?url="), 400, "url")
    assert_error(client.get(f"/fhir/CodeSystem/$lookup?system={q(SEX)}&code=1&version="), 400, "version")
    assert_error(client.get("/fhir/ConceptMap/$translate?code=male"), 400, "system")
    not_a_value_set = {"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": {"resourceType": "Patient"}}]}
    assert_error(client.post("/fhir/ValueSet/$expand", not_a_value_set), 400, "valueSet")
    loop = {"resourceType": "ValueSet", "url": "urn:example:loop", "status": "active", "compose": {"include": [{"valueSet": ["urn:example:loop"]}]}}
    assert_error(client.post("/fhir/ValueSet/$expand", {"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": loop}]}), 422)


def test_expand_keeps_listed_codes_a_fragment_lacks(client):
    vs = {"resourceType": "ValueSet", "status": "active", "compose": {"include": [
        {"system": ICD10, "concept": [{"code": "E11.9"}, {"code": "Z99.9", "display": "Зависимость от поддерживающих жизнь механизмов"}]},
        {"system": SEX, "concept": [{"code": "1"}, {"code": "9"}]}]}}
    r = client.post("/fhir/ValueSet/$expand", {"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": vs}]})
    assert r.status_code == 200, r.get_data(as_text=True)
    got = [(c["system"], c["code"], c.get("display")) for c in r.get_json()["expansion"]["contains"]]
    assert got == [(ICD10, "E11.9", "Инсулиннезависимый сахарный диабет без осложнений"),
                   (ICD10, "Z99.9", "Зависимость от поддерживающих жизнь механизмов"), (SEX, "1", "Мужской")]  # 9: not in the complete sex code system
