"""delete (R4 http.html 3.1.0.7)."""

from __future__ import annotations

from tests.conftest import patient

from ._util import assert_error, assert_information, history_total


def test_delete_returns_outcome_then_read_is_410(client):
    rid = client.create(patient())["id"]
    r = client.delete(f"/fhir/Patient/{rid}")
    assert r.status_code == 200
    assert_information(r.get_json())
    assert r.headers["ETag"] == 'W/"2"'
    assert_error(client.get(f"/fhir/Patient/{rid}"), 410)


def test_delete_twice_creates_no_new_version(client):
    rid = client.create(patient())["id"]
    client.delete(f"/fhir/Patient/{rid}")
    before = history_total(client, f"/fhir/Patient/{rid}/_history")
    r = client.delete(f"/fhir/Patient/{rid}")
    assert r.status_code == 200
    assert_information(r.get_json())
    assert history_total(client, f"/fhir/Patient/{rid}/_history") == before == 2


def test_delete_never_existing_is_404(client):
    assert_error(client.delete("/fhir/Patient/never-was"), 404)


def test_history_shows_delete_entry(client):
    rid = client.create(patient())["id"]
    client.delete(f"/fhir/Patient/{rid}")
    bundle = client.get(f"/fhir/Patient/{rid}/_history").get_json()
    newest, oldest = bundle["entry"]
    assert newest["request"] == {"method": "DELETE", "url": f"Patient/{rid}"}
    assert "resource" not in newest
    assert newest["response"]["etag"] == 'W/"2"'
    assert oldest["request"]["method"] == "POST"
    assert oldest["resource"]["id"] == rid


def test_delete_if_match(client):
    created = client.create(patient())
    rid = created["id"]
    assert_error(client.delete(f"/fhir/Patient/{rid}", headers={"If-Match": 'W/"5"'}), 412)
    assert client.get(f"/fhir/Patient/{rid}").status_code == 200
    assert client.delete(f"/fhir/Patient/{rid}", headers={"If-Match": 'W/"1"'}).status_code == 200

