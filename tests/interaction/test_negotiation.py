"""Formats, content types and Prefer (R4 http.html 3.1.0.1.6 - 3.1.0.1.8)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import patient

from ._util import FHIR_JSON_UTF8, assert_error, assert_information


@pytest.fixture
def pid(client):
    return client.create(patient())["id"]


@pytest.mark.parametrize(
    "query, headers",
    [
        ("?_format=xml", {}),
        ("?_format=application/fhir%2Bxml", {}),
        ("", {"Accept": "application/fhir+xml"}),
        ("", {"Accept": "application/xml, text/html"}),
        ("", {"Accept": "application/fhir+json; fhirVersion=3.0"}),
    ],
)
def test_unservable_format_is_406(client, pid, query, headers):
    r = client.get(f"/fhir/Patient/{pid}{query}", headers=headers)
    assert_error(r, 406)


@pytest.mark.parametrize(
    "query, headers",
    [
        ("?_format=json", {}),
        ("?_format=application/fhir%2Bjson", {}),
        ("", {"Accept": "application/fhir+json"}),
        ("", {"Accept": "application/fhir+json; fhirVersion=4.0"}),
        ("", {"Accept": "*/*"}),
        ("", {"Accept": "application/fhir+xml;q=0.9, application/fhir+json"}),
        ("?_format=json", {"Accept": "application/fhir+xml"}),  # _format overrides Accept
    ],
)
def test_json_is_served(client, pid, query, headers):
    r = client.get(f"/fhir/Patient/{pid}{query}", headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Content-Type"] == FHIR_JSON_UTF8
    assert r.get_json()["id"] == pid


def test_406_on_write_stores_nothing(client):
    r = client.post("/fhir/Patient?_format=xml", patient())
    assert_error(r, 406)
    assert client.get("/fhir/_history").get_json()["total"] == 0


@pytest.mark.parametrize("path", ["/fhir/Patient/{pid}", "/fhir/Patient/{pid}/_history", "/fhir/metadata"])
def test_pretty_indents(client, pid, path):
    path = path.format(pid=pid)
    compact = client.get(path).get_data(as_text=True)
    pretty = client.get(f"{path}?_pretty=true").get_data(as_text=True)
    assert "\n" not in compact
    assert "\n  " in pretty
    if "history" not in path and "metadata" not in path:
        assert json.loads(pretty) == json.loads(compact)


def test_pretty_on_write_and_error(client, pid):
    r = client.post("/fhir/Patient?_pretty=true", patient())
    assert r.status_code == 201 and "\n  " in r.get_data(as_text=True)
    r = client.get("/fhir/Patient/nope?_pretty=true")
    assert r.status_code == 404 and "\n  " in r.get_data(as_text=True)


class TestBodyContentType:
    @pytest.mark.parametrize("ctype", ["application/fhir+json", "application/json", "application/fhir+json; charset=utf-8", "application/fhir+json; fhirVersion=4.0"])
    def test_json_types_accepted(self, client, ctype):
        assert client.post("/fhir/Patient", patient(), content_type=ctype).status_code == 201

    @pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "application/fhir+xml", "application/fhir+json; fhirVersion=3.0"])
    def test_others_are_415(self, client, ctype):
        assert_error(client.post("/fhir/Patient", patient(), content_type=ctype), 415)
        assert client.get("/fhir/_history").get_json()["total"] == 0

    def test_missing_content_type_is_415(self, client):
        r = client.request("POST", "/fhir/Patient", data=json.dumps(patient()).encode(), content_type=None)
        assert_error(r, 415)


class TestPrefer:
    def _write(self, client, kind, prefer):
        headers = {"Prefer": prefer} if prefer else {}
        if kind == "create":
            return client.post("/fhir/Patient", patient(), headers=headers)
        created = client.create(patient())
        if kind == "update":
            return client.put(f"/fhir/Patient/{created['id']}", {**created, "active": True}, headers=headers)
        return client.patch(f"/fhir/Patient/{created['id']}", [{"op": "add", "path": "/active", "value": True}], headers=headers)

    @pytest.mark.parametrize("kind", ["create", "update", "patch"])
    def test_minimal_has_empty_body(self, client, kind):
        r = self._write(client, kind, "return=minimal")
        assert r.status_code in (200, 201)
        assert r.get_data() == b""
        assert r.headers["ETag"].startswith('W/"')
        assert "Content-Type" not in r.headers

    @pytest.mark.parametrize("prefer", [None, "return=representation"])
    @pytest.mark.parametrize("kind", ["create", "update", "patch"])
    def test_representation_returns_resource(self, client, kind, prefer):
        r = self._write(client, kind, prefer)
        body = r.get_json()
        assert body["resourceType"] == "Patient"
        assert body["meta"]["versionId"] == r.headers["ETag"][3:-1]

    @pytest.mark.parametrize("kind", ["create", "update", "patch"])
    def test_operation_outcome(self, client, kind):
        r = self._write(client, kind, "return=OperationOutcome")
        assert r.status_code in (200, 201)
        assert r.headers["Content-Type"] == FHIR_JSON_UTF8
        assert_information(r.get_json())

    def test_minimal_still_sends_location(self, client):
        r = client.post("/fhir/Patient", patient(), headers={"Prefer": "return=minimal"})
        assert r.status_code == 201
        assert "/fhir/Patient/" in r.headers["Location"]

    def test_pretty_representation_of_update(self, client):
        created = client.create(patient())
        r = client.put(f"/fhir/Patient/{created['id']}?_pretty=true", {**created, "active": True})
        assert "\n  " in r.get_data(as_text=True)
        assert r.get_json()["active"] is True
