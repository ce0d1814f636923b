"""update (R4 http.html 3.1.0.4 update, 3.1.0.5 version-aware update)."""

from __future__ import annotations

import pytest

from tests.conftest import patient

from ._util import assert_error, history_total


def test_update_creates_new_version(client):
    created = client.create(patient())
    rid = created["id"]
    r = client.put(f"/fhir/Patient/{rid}", {**created, "gender": "female"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["gender"] == "female"
    assert body["meta"]["versionId"] == "2"
    assert r.headers["ETag"] == 'W/"2"'
    assert "Location" not in r.headers
    assert client.get(f"/fhir/Patient/{rid}").get_json()["gender"] == "female"


def test_update_ignores_client_meta_version(client):
    created = client.create(patient())
    rid = created["id"]
    body = {**created, "active": True, "meta": {"versionId": "99", "lastUpdated": "2000-01-01T00:00:00Z"}}
    r = client.put(f"/fhir/Patient/{rid}", body)
    assert r.status_code == 200
    assert r.get_json()["meta"]["versionId"] == "2"
    assert r.get_json()["meta"]["lastUpdated"] != "2000-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "body_id, key",
    [(None, "missing"), ("other-id", "different")],
)
def test_update_body_id_must_match_url(client, body_id, key):
    created = client.create(patient())
    rid = created["id"]
    body = {k: v for k, v in created.items() if k != "id"}
    if body_id:
        body["id"] = body_id
    before = history_total(client)
    assert_error(client.put(f"/fhir/Patient/{rid}", body), 400, expression="Patient.id")
    assert history_total(client) == before


def test_update_as_create_with_client_id(client):
    r = client.put("/fhir/Patient/my-own-id", patient(id="my-own-id"))
    assert r.status_code == 201
    assert r.headers["Location"] == "http://localhost/fhir/Patient/my-own-id/_history/1"
    assert r.headers["ETag"] == 'W/"1"'
    assert r.get_json()["meta"]["versionId"] == "1"
    assert client.get("/fhir/Patient/my-own-id").status_code == 200


def test_update_after_delete_recreates(client):
    created = client.create(patient())
    rid = created["id"]
    client.delete(f"/fhir/Patient/{rid}")
    r = client.put(f"/fhir/Patient/{rid}", patient(id=rid))
    assert r.status_code == 201
    assert r.get_json()["meta"]["versionId"] == "3"
    assert client.get(f"/fhir/Patient/{rid}").status_code == 200


class TestIfMatch:
    def test_current_version_succeeds(self, client):
        created = client.create(patient())
        rid = created["id"]
        r = client.put(f"/fhir/Patient/{rid}", {**created, "active": True}, headers={"If-Match": 'W/"1"'})
        assert r.status_code == 200
        assert r.headers["ETag"] == 'W/"2"'

    def test_stale_version_is_412(self, client):
        created = client.create(patient())
        rid = created["id"]
        client.put(f"/fhir/Patient/{rid}", {**created, "active": True})
        r = client.put(f"/fhir/Patient/{rid}", {**created, "active": False}, headers={"If-Match": 'W/"1"'})
        assert_error(r, 412, code="conflict")
        assert client.get(f"/fhir/Patient/{rid}").get_json()["active"] is True

    def test_on_missing_resource_is_412(self, client):
        r = client.put("/fhir/Patient/new-one", patient(id="new-one"), headers={"If-Match": 'W/"1"'})
        assert_error(r, 412)
        assert client.get("/fhir/Patient/new-one").status_code == 404

    @pytest.mark.parametrize("value", ["1", 'W/"abc"', "garbage", 'W/""'])
    def test_malformed_is_400(self, client, value):
        created = client.create(patient())
        r = client.put(f"/fhir/Patient/{created['id']}", {**created, "active": True}, headers={"If-Match": value})
        assert_error(r, 400)
        assert "If-Match" in r.get_json()["issue"][0]["diagnostics"]

    def test_strong_etag_accepted(self, client):
        created = client.create(patient())
        r = client.put(f"/fhir/Patient/{created['id']}", {**created, "active": True}, headers={"If-Match": '"1"'})
        assert r.status_code == 200


def test_unchanged_update_creates_no_version(client):
    created = client.create(patient())
    rid = created["id"]
    before = history_total(client, f"/fhir/Patient/{rid}/_history")
    r = client.put(f"/fhir/Patient/{rid}", created)
    assert r.status_code == 200
    assert r.headers["ETag"] == 'W/"1"'
    assert r.get_json()["meta"]["versionId"] == "1"
    assert history_total(client, f"/fhir/Patient/{rid}/_history") == before == 1


def test_unchanged_update_without_meta_creates_no_version(client):
    created = client.create(patient())
    rid = created["id"]
    body = {k: v for k, v in created.items() if k != "meta"}
    r = client.put(f"/fhir/Patient/{rid}", body)
    assert r.status_code == 200
    assert r.headers["ETag"] == 'W/"1"'


def test_update_invalid_body_leaves_store_unchanged(client):
    created = client.create(patient())
    rid = created["id"]
    before = history_total(client)
    assert_error(client.put(f"/fhir/Patient/{rid}", {**created, "birthDate": "1980-13-01"}), 400, expression="Patient.birthDate")
    assert history_total(client) == before
    assert client.get(f"/fhir/Patient/{rid}").get_json()["birthDate"] == "1980-05-01"


def test_update_without_body_is_400(client):
    rid = client.create(patient())["id"]
    assert_error(client.put(f"/fhir/Patient/{rid}", content_type=None), 400)
