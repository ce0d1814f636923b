"""Conditional create, update and delete (R4 http.html 3.1.0.8, 3.1.0.4.1, 3.1.0.7.1)."""

from __future__ import annotations

import pytest

from tests.conftest import patient

from ._util import assert_error, assert_information, history_total, identified

SYS = "urn:oid:1.2.643.100.3"
CRITERIA = f"identifier={SYS}|111"


def _create(client, value="111", **extra):
    return client.create(identified(SYS, value, **extra))


class TestConditionalCreate:
    def test_no_match_creates(self, client):
        r = client.post("/fhir/Patient", identified(SYS, "111"), headers={"If-None-Exist": CRITERIA})
        assert r.status_code == 201
        assert r.headers["ETag"] == 'W/"1"'
        assert history_total(client) == 1

    def test_one_match_returns_200_and_creates_nothing(self, client):
        existing = _create(client)
        r = client.post("/fhir/Patient", identified(SYS, "111", gender="female"), headers={"If-None-Exist": CRITERIA})
        assert r.status_code == 200
        assert r.get_json()["id"] == existing["id"]
        assert r.get_json()["gender"] == "male"
        assert r.headers["Location"] == f"http://localhost/fhir/Patient/{existing['id']}/_history/1"
        assert history_total(client) == 1

    def test_one_match_with_prefer_outcome(self, client):
        _create(client)
        r = client.post("/fhir/Patient", identified(SYS, "111"), headers={"If-None-Exist": CRITERIA, "Prefer": "return=OperationOutcome"})
        assert r.status_code == 200
        assert_information(r.get_json())

    def test_two_matches_is_412(self, client):
        _create(client)
        _create(client)
        assert_error(client.post("/fhir/Patient", identified(SYS, "111"), headers={"If-None-Exist": CRITERIA}), 412)
        assert history_total(client) == 2

    def test_other_identifier_does_not_match(self, client):
        _create(client, "222")
        r = client.post("/fhir/Patient", identified(SYS, "111"), headers={"If-None-Exist": CRITERIA})
        assert r.status_code == 201

    def test_criteria_with_full_url_prefix(self, client):
        existing = _create(client)
        r = client.post("/fhir/Patient", identified(SYS, "111"), headers={"If-None-Exist": f"Patient?{CRITERIA}"})
        assert (r.status_code, r.get_json()["id"]) == (200, existing["id"])


class TestConditionalUpdate:
    def test_no_match_creates(self, client):
        r = client.put(f"/fhir/Patient?{CRITERIA}", identified(SYS, "111"))
        assert r.status_code == 201
        rid = r.get_json()["id"]
        assert r.headers["Location"] == f"http://localhost/fhir/Patient/{rid}/_history/1"

    def test_one_match_updates_that_resource(self, client):
        existing = _create(client)
        _create(client, "222")
        r = client.put(f"/fhir/Patient?{CRITERIA}", identified(SYS, "111", gender="female"))
        assert r.status_code == 200
        assert r.get_json()["id"] == existing["id"]
        assert r.get_json()["meta"]["versionId"] == "2"
        assert client.get(f"/fhir/Patient/{existing['id']}").get_json()["gender"] == "female"

    def test_one_match_with_same_body_id(self, client):
        existing = _create(client)
        r = client.put(f"/fhir/Patient?{CRITERIA}", identified(SYS, "111", id=existing["id"], active=True))
        assert (r.status_code, r.get_json()["id"]) == (200, existing["id"])

    def test_several_matches_is_412(self, client):
        _create(client)
        _create(client)
        assert_error(client.put(f"/fhir/Patient?{CRITERIA}", identified(SYS, "111", gender="female")), 412)
        assert history_total(client) == 2

    def test_body_id_differing_from_match_is_400(self, client):
        _create(client)
        r = client.put(f"/fhir/Patient?{CRITERIA}", identified(SYS, "111", id="someone-else"))
        assert_error(r, 400, expression="Patient.id")
        assert history_total(client) == 1


class TestConditionalDelete:
    def test_one_match_deletes(self, client):
        existing = _create(client)
        keep = _create(client, "222")
        r = client.delete(f"/fhir/Patient?{CRITERIA}")
        assert r.status_code == 200
        assert_information(r.get_json())
        assert client.get(f"/fhir/Patient/{existing['id']}").status_code == 410
        assert client.get(f"/fhir/Patient/{keep['id']}").status_code == 200

    def test_no_match_is_200_with_outcome(self, client):
        r = client.delete(f"/fhir/Patient?{CRITERIA}")
        assert r.status_code == 200
        assert_information(r.get_json())
        assert history_total(client) == 0

    def test_several_matches_is_412(self, client):
        a, b = _create(client), _create(client)
        assert_error(client.delete(f"/fhir/Patient?{CRITERIA}"), 412)
        for rid in (a["id"], b["id"]):
            assert client.get(f"/fhir/Patient/{rid}").status_code == 200


def _conditional_call(client, kind, query):
    if kind == "create":
        return client.post("/fhir/Patient", identified(SYS, "111"), headers={"If-None-Exist": query})
    if kind == "update":
        return client.put(f"/fhir/Patient?{query}", identified(SYS, "111"))
    return client.delete(f"/fhir/Patient?{query}")


@pytest.mark.parametrize("kind", ["create", "update", "delete"])
@pytest.mark.parametrize(
    "query", ["nonsense=x", f"{CRITERIA}&not-a-param=Ivanov", "identifier=", f"{CRITERIA}&_sort=name", "birthdate=notadate"]
)
def test_unknown_result_or_malformed_criteria_is_400(client, kind, query):
    _create(client)
    before = history_total(client)
    assert_error(_conditional_call(client, kind, query), 400)
    assert history_total(client) == before


@pytest.mark.parametrize("kind", ["update", "delete"])
def test_response_params_are_not_criteria(client, kind):
    existing = _create(client)
    r = _conditional_call(client, kind, f"{CRITERIA}&_pretty=true&_format=json")
    assert r.status_code == 200
    if kind == "update":
        assert r.get_json()["id"] == existing["id"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_type_level_write_without_criteria_is_not_allowed(client, method):
    body = [{"op": "add", "path": "/active", "value": True}] if method == "PATCH" else patient()
    ctype = "application/json-patch+json" if method == "PATCH" else "application/fhir+json"
    before = history_total(client)
    assert_error(client.request(method, "/fhir/Patient", body, content_type=ctype), 405)
    assert history_total(client) == before


def test_conditional_patch(client):
    existing = _create(client)
    r = client.patch(f"/fhir/Patient?{CRITERIA}", [{"op": "replace", "path": "/gender", "value": "female"}])
    assert r.status_code == 200
    assert r.get_json()["id"] == existing["id"]
    assert r.get_json()["gender"] == "female"


@pytest.mark.parametrize("kind", ["update", "delete"])
def test_any_search_parameter_is_a_criterion(client, kind):
    existing = _create(client)
    r = _conditional_call(client, kind, "family=иванов&birthdate=1980-05-01&gender=male")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert client.get(f"/fhir/Patient/{existing['id']}").status_code == (200 if kind == "update" else 410)
    # A criterion that matches nothing: update creates, delete deletes nothing.
    r = _conditional_call(client, kind, "family=Петров")
    assert r.status_code == (201 if kind == "update" else 200)
