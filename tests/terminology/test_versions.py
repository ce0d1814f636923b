"""Loaded at first start, versioned, updatable by posting newer versions: the operations
use the newest version of a canonical url, or the one a version parameter names."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.terminology.test_operations import CANONICAL, SEX, get_ok, params, q


@pytest.fixture
def settings():
    return make_settings(load_definitions=True)


def _newer_sex(client, version: str) -> dict:
    cs = client.get("/fhir/CodeSystem/nsi-sex").get_json()
    assert cs["version"] == "2.1"
    newer = {k: v for k, v in cs.items() if k not in ("id", "meta")}
    newer["version"] = version
    newer["concept"] = [dict(c) for c in cs["concept"]]
    newer["concept"][2]["display"] = "Не определен"
    return client.create(newer)


def test_posted_newer_code_system_is_used(client):
    _newer_sex(client, "2.10")  # newer than 2.1 and 2.9 by version order
    out = params(get_ok(client, f"/fhir/CodeSystem/$lookup?system={q(SEX)}&code=3"))
    assert out["version"] == ["2.10"] and out["display"] == ["Не определен"]
    old = params(get_ok(client, f"/fhir/CodeSystem/$lookup?system={q(SEX)}&code=3&version=2.1"))
    assert old["version"] == ["2.1"] and old["display"] == ["Неопределенный"]
    out = params(get_ok(client, f"/fhir/CodeSystem/$validate-code?url={q(SEX)}&code=3&display={q('Неопределенный')}"))
    assert out["result"] == [False]
    out = params(get_ok(client, f"/fhir/CodeSystem/$validate-code?url={q(SEX)}&code=3&version=2.1&display={q('Неопределенный')}"))
    assert out["result"] == [True]
    exp = get_ok(client, f"/fhir/ValueSet/$expand?url={q(CANONICAL + '/ValueSet/nsi-sex')}")["expansion"]
    assert {"name": "used-codesystem", "valueUri": f"{SEX}|2.10"} in exp["parameter"]
    assert exp["contains"][2]["display"] == "Не определен"
    unknown = client.get(f"/fhir/CodeSystem/$lookup?system={q(SEX)}&code=3&version=7.7")
    assert unknown.status_code == 404


def test_posted_newer_value_set_is_used(client):
    vs = client.get("/fhir/ValueSet/nsi-sex").get_json()
    newer = {k: v for k, v in vs.items() if k not in ("id", "meta")}
    newer["version"] = "1.1.0"
    newer["compose"] = {"include": [{"system": SEX, "concept": [{"code": "1"}, {"code": "2"}]}]}
    client.create(newer)
    url = f"/fhir/ValueSet/$expand?url={q(CANONICAL + '/ValueSet/nsi-sex')}"
    assert get_ok(client, url)["expansion"]["total"] == 2
    assert get_ok(client, url + "&valueSetVersion=1.0.0")["expansion"]["total"] == 3
    check = f"/fhir/ValueSet/$validate-code?url={q(CANONICAL + '/ValueSet/nsi-sex')}&system={q(SEX)}&code=3"
    assert params(get_ok(client, check))["result"] == [False]
    assert params(get_ok(client, check + "&valueSetVersion=1.0.0"))["result"] == [True]


def test_update_in_place_is_seen_at_once(client):
    """A PUT of the stored copy (same id, newer version) changes what the next request sees."""
    cs = client.get("/fhir/CodeSystem/nsi-sex").get_json()
    assert params(get_ok(client, f"/fhir/CodeSystem/$lookup?system={q(SEX)}&code=1"))["display"] == ["Мужской"]
    cs["version"] = "2.2"
    cs["concept"][0]["display"] = "Мужской пол"
    assert client.put("/fhir/CodeSystem/nsi-sex", cs).status_code == 200
    assert params(get_ok(client, f"/fhir/CodeSystem/$lookup?system={q(SEX)}&code=1"))["display"] == ["Мужской пол"]
    assert params(get_ok(client, "/fhir/CodeSystem/nsi-sex/$lookup?code=1"))["display"] == ["Мужской пол"]
