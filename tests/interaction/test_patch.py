"""patch with JSON Patch (R4 http.html 3.1.0.6)."""

from __future__ import annotations

import pytest

from tests.conftest import patient

from ._util import assert_error, history_total


@pytest.fixture
def pid(client):
    return client.create(patient())["id"]


def test_patch_creates_new_version(client, pid):
    r = client.patch(f"/fhir/Patient/{pid}", [{"op": "replace", "path": "/gender", "value": "female"}])
    assert r.status_code == 200
    body = r.get_json()
    assert body["gender"] == "female"
    assert body["meta"]["versionId"] == "2"
    assert r.headers["ETag"] == 'W/"2"'
    assert client.get(f"/fhir/Patient/{pid}").get_json()["gender"] == "female"


def test_patch_add_and_remove(client, pid):
    ops = [{"op": "add", "path": "/active", "value": True}, {"op": "remove", "path": "/birthDate"}]
    body = client.patch(f"/fhir/Patient/{pid}", ops).get_json()
    assert body["active"] is True
    assert "birthDate" not in body


@pytest.mark.parametrize("content_type", ["application/fhir+json", "application/json", "text/plain"])
def test_other_content_type_is_415(client, pid, content_type):
    r = client.patch(f"/fhir/Patient/{pid}", [{"op": "replace", "path": "/gender", "value": "female"}], content_type=content_type)
    assert_error(r, 415)


@pytest.mark.parametrize(
    "ops, expression",
    [
        ([{"op": "replace", "path": "/gender", "value": "bad"}], "Patient.gender"),
        ([{"op": "replace", "path": "/birthDate", "value": "1980-13-01"}], "Patient.birthDate"),
        ([{"op": "add", "path": "/unknownThing", "value": 1}], None),
    ],
)
def test_patch_making_resource_invalid_is_422(client, pid, ops, expression):
    before = history_total(client)
    assert_error(client.patch(f"/fhir/Patient/{pid}", ops), 422, expression=expression)
    assert history_total(client) == before


def test_failing_test_op_is_422(client, pid):
    ops = [{"op": "test", "path": "/gender", "value": "female"}, {"op": "replace", "path": "/gender", "value": "other"}]
    assert_error(client.patch(f"/fhir/Patient/{pid}", ops), 422)
    assert client.get(f"/fhir/Patient/{pid}").get_json()["gender"] == "male"


def test_passing_test_op_applies(client, pid):
    ops = [{"op": "test", "path": "/gender", "value": "male"}, {"op": "replace", "path": "/gender", "value": "other"}]
    assert client.patch(f"/fhir/Patient/{pid}", ops).status_code == 200


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "/id", "value": "another"}],
        [{"op": "remove", "path": "/id"}],
        [{"op": "replace", "path": "/resourceType", "value": "Practitioner"}],
    ],
)
def test_changing_id_or_type_is_422(client, pid, ops):
    assert_error(client.patch(f"/fhir/Patient/{pid}", ops), 422)
    assert client.get(f"/fhir/Patient/{pid}").get_json()["meta"]["versionId"] == "1"


def test_patch_missing_resource_is_404(client):
    assert_error(client.patch("/fhir/Patient/nope", [{"op": "add", "path": "/active", "value": True}]), 404)


def test_patch_deleted_resource_is_410(client, pid):
    client.delete(f"/fhir/Patient/{pid}")
    assert_error(client.patch(f"/fhir/Patient/{pid}", [{"op": "add", "path": "/active", "value": True}]), 410)


@pytest.mark.parametrize("ops", [{"op": "add"}, [{"path": "/active"}], [42]])
def test_malformed_patch_document_is_400(client, pid, ops):
    assert_error(client.patch(f"/fhir/Patient/{pid}", ops), 400)


def test_patch_path_not_found_is_422(client, pid):
    assert_error(client.patch(f"/fhir/Patient/{pid}", [{"op": "replace", "path": "/deceasedBoolean", "value": True}]), 422)


def test_patch_if_match(client, pid):
    op = [{"op": "add", "path": "/active", "value": True}]
    assert_error(client.patch(f"/fhir/Patient/{pid}", op, headers={"If-Match": 'W/"2"'}), 412)
    assert client.patch(f"/fhir/Patient/{pid}", op, headers={"If-Match": 'W/"1"'}).status_code == 200


def test_patch_without_change_creates_no_version(client, pid):
    r = client.patch(f"/fhir/Patient/{pid}", [{"op": "replace", "path": "/gender", "value": "male"}])
    assert r.status_code == 200
    assert r.headers["ETag"] == 'W/"1"'
