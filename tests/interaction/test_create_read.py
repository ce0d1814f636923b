"""create, read, vread and conditional read (R4 http.html 3.1.0.2 - 3.1.0.4)."""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import patient

from ._util import FHIR_JSON_UTF8, HTTP_DATE, assert_error


def test_create_returns_201_with_location_etag_and_meta(client):
    r = client.post("/fhir/Patient", patient(id="client-chosen"))
    assert r.status_code == 201
    body = r.get_json()
    rid = body["id"]
    assert rid and rid != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].startswith("20")
    assert r.headers["Location"] == f"http://localhost/fhir/Patient/{rid}/_history/1"
    assert r.headers["ETag"] == 'W/"1"'
    assert HTTP_DATE.match(r.headers["Last-Modified"]), r.headers["Last-Modified"]
    assert r.headers["Content-Type"] == FHIR_JSON_UTF8
    assert body["name"] == patient()["name"]
    # the client-supplied id was ignored: nothing exists under it
    assert client.get("/fhir/Patient/client-chosen").status_code == 404


def test_last_modified_matches_meta_last_updated(client):
    r = client.post("/fhir/Patient", patient())
    last_updated = datetime.fromisoformat(r.get_json()["meta"]["lastUpdated"])
    header = parsedate_to_datetime(r.headers["Last-Modified"])
    assert header == last_updated.replace(microsecond=0)


def test_read_returns_current_version(client):
    created = client.create(patient())
    r = client.get(f"/fhir/Patient/{created['id']}")
    assert r.status_code == 200
    assert r.get_json() == created
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Content-Type"] == FHIR_JSON_UTF8
    assert HTTP_DATE.match(r.headers["Last-Modified"])


def test_read_unknown_id_is_404(client):
    assert_error(client.get("/fhir/Patient/does-not-exist"), 404, code="not-found")


def test_read_invalid_id_is_400(client):
    assert_error(client.get("/fhir/Patient/" + "x" * 65), 400)


def test_read_deleted_is_410(client):
    rid = client.create(patient())["id"]
    assert client.delete(f"/fhir/Patient/{rid}").status_code == 200
    assert_error(client.get(f"/fhir/Patient/{rid}"), 410, code="deleted")


def test_head_returns_headers_without_body(client):
    rid = client.create(patient())["id"]
    r = client.request("HEAD", f"/fhir/Patient/{rid}")
    assert r.status_code == 200
    assert r.get_data() == b""
    assert r.headers["ETag"] == 'W/"1"'


class TestVread:
    def test_each_version_is_readable(self, client):
        created = client.create(patient())
        rid = created["id"]
        client.put(f"/fhir/Patient/{rid}", {**created, "gender": "female"})
        v1 = client.get(f"/fhir/Patient/{rid}/_history/1")
        v2 = client.get(f"/fhir/Patient/{rid}/_history/2")
        assert (v1.status_code, v2.status_code) == (200, 200)
        assert v1.get_json()["gender"] == "male" and v1.get_json()["meta"]["versionId"] == "1"
        assert v2.get_json()["gender"] == "female" and v2.get_json()["meta"]["versionId"] == "2"
        assert v1.headers["ETag"] == 'W/"1"' and v2.headers["ETag"] == 'W/"2"'

    def test_deletion_version_is_410(self, client):
        rid = client.create(patient())["id"]
        client.delete(f"/fhir/Patient/{rid}")
        assert client.get(f"/fhir/Patient/{rid}/_history/1").status_code == 200
        assert_error(client.get(f"/fhir/Patient/{rid}/_history/2"), 410)

    @pytest.mark.parametrize("vid", ["2", "0", "abc"])
    def test_unknown_version_is_404(self, client, vid):
        rid = client.create(patient())["id"]
        assert_error(client.get(f"/fhir/Patient/{rid}/_history/{vid}"), 404)

    def test_unknown_resource_is_404(self, client):
        assert_error(client.get("/fhir/Patient/nope/_history/1"), 404)


class TestConditionalRead:
    def test_if_none_match_current_is_304(self, client):
        rid = client.create(patient())["id"]
        r = client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"1"'})
        assert r.status_code == 304
        assert r.get_data() == b""
        assert r.headers["ETag"] == 'W/"1"'

    def test_if_none_match_stale_is_200(self, client):
        created = client.create(patient())
        rid = created["id"]
        client.put(f"/fhir/Patient/{rid}", {**created, "active": True})
        r = client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"1"'})
        assert r.status_code == 200
        assert r.get_json()["meta"]["versionId"] == "2"

    def test_if_modified_since_later_is_304(self, client):
        rid = client.create(patient())["id"]
        later = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
        r = client.get(f"/fhir/Patient/{rid}", headers={"If-Modified-Since": later})
        assert r.status_code == 304
        assert r.get_data() == b""

    def test_if_modified_since_earlier_is_200(self, client):
        rid = client.create(patient())["id"]
        earlier = format_datetime(datetime.now(timezone.utc) - timedelta(days=1), usegmt=True)
        r = client.get(f"/fhir/Patient/{rid}", headers={"If-Modified-Since": earlier})
        assert r.status_code == 200
        assert r.get_json()["id"] == rid

    def test_if_none_match_wins_over_if_modified_since(self, client):
        rid = client.create(patient())["id"]
        later = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
        r = client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"7"', "If-Modified-Since": later})
        assert r.status_code == 200
