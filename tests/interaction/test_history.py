"""history at instance, type and system level (R4 http.html 3.1.0.10)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from tests.conftest import patient

from ._util import assert_error


def _bundle(client, path: str) -> dict:
    r = client.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["resourceType"] == "Bundle" and body["type"] == "history"
    return body


def _link(bundle: dict, relation: str) -> str | None:
    return next((l["url"] for l in bundle.get("link", []) if l["relation"] == relation), None)


def _keys(bundle: dict) -> list[tuple[str, str]]:
    return [(e["fullUrl"], e["response"]["etag"]) for e in bundle.get("entry", [])]


def _all_pages(client, path: str) -> tuple[list, int]:
    """Follow `next` links to the end; returns every entry key and the number of pages."""
    keys, pages = [], 0
    url = path
    while url:
        pages += 1
        assert pages < 50, "paging does not terminate"
        bundle = _bundle(client, url.replace("http://localhost", ""))
        keys.extend(_keys(bundle))
        url = _link(bundle, "next")
    return keys, pages


@pytest.fixture
def three_versions(client):
    created = client.create(patient())
    rid = created["id"]
    client.put(f"/fhir/Patient/{rid}", {**created, "gender": "female"})
    client.delete(f"/fhir/Patient/{rid}")
    return rid


def test_instance_history_newest_first(client, three_versions):
    rid = three_versions
    bundle = _bundle(client, f"/fhir/Patient/{rid}/_history")
    assert bundle["total"] == 3
    assert [e["response"]["etag"] for e in bundle["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert [e["request"]["method"] for e in bundle["entry"]] == ["DELETE", "PUT", "POST"]
    assert [e["response"]["status"] for e in bundle["entry"]] == ["200 OK", "200 OK", "201 Created"]
    assert bundle["entry"][1]["resource"]["gender"] == "female"
    assert all(e["fullUrl"] == f"http://localhost/fhir/Patient/{rid}" for e in bundle["entry"])
    assert _link(bundle, "self").startswith(f"http://localhost/fhir/Patient/{rid}/_history")


def test_instance_history_of_unknown_is_404(client):
    assert_error(client.get("/fhir/Patient/nope/_history"), 404)


def test_type_and_system_history(client, three_versions):
    obs = client.create({"resourceType": "Observation", "status": "final", "code": {"text": "Рост"}})
    p2 = client.create(patient())
    type_bundle = _bundle(client, "/fhir/Patient/_history")
    assert type_bundle["total"] == 4
    assert {e["fullUrl"].rsplit("/", 2)[1] for e in type_bundle["entry"]} == {"Patient"}
    assert type_bundle["entry"][0]["resource"]["id"] == p2["id"]
    system = _bundle(client, "/fhir/_history")
    assert system["total"] == 5
    assert system["entry"][0]["resource"]["id"] == p2["id"]
    assert system["entry"][1]["resource"]["id"] == obs["id"]
    stamps = [e["response"]["lastModified"] for e in system["entry"]]
    assert stamps == sorted(stamps, reverse=True)


def test_empty_history(client):
    bundle = _bundle(client, "/fhir/_history")
    assert bundle["total"] == 0
    assert "entry" not in bundle


@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_paging_visits_every_version_once(client, count):
    ids = [client.create(patient())["id"] for _ in range(4)]
    for rid in ids[:3]:
        client.patch(f"/fhir/Patient/{rid}", [{"op": "add", "path": "/active", "value": True}])
    expected = _keys(_bundle(client, "/fhir/_history?_count=100"))
    assert len(expected) == 7
    keys, pages = _all_pages(client, f"/fhir/_history?_count={count}")
    assert len(keys) == len(set(keys))
    assert keys == expected
    assert pages == 7 // count + 1  # the last page is short or empty, with no next link


def test_paging_is_stable_while_writing(client):
    ids = [client.create(patient())["id"] for _ in range(5)]
    first = _bundle(client, "/fhir/Patient/_history?_count=2")
    seen = _keys(first)
    client.create(patient())  # a newer version must not shift later pages
    url = _link(first, "next")
    while url:
        page = _bundle(client, url.replace("http://localhost", ""))
        seen.extend(_keys(page))
        url = _link(page, "next")
    assert sorted(u.rsplit("/", 1)[1] for u, _ in seen) == sorted(ids)


def test_next_link_keeps_count_and_adds_first(client):
    for _ in range(3):
        client.create(patient())
    first = _bundle(client, "/fhir/Patient/_history?_count=2")
    assert len(first["entry"]) == 2
    nxt = _link(first, "next")
    assert "_count=2" in nxt and "_cursor=" in nxt
    second = _bundle(client, nxt.replace("http://localhost", ""))
    assert len(second["entry"]) == 1
    assert second["total"] == 3
    assert _link(second, "first") == "http://localhost/fhir/Patient/_history?_count=2"
    assert _link(second, "next") is None


def test_since_filters_older_versions(client):
    old = client.create(patient())
    new = client.create(patient())
    since = new["meta"]["lastUpdated"]
    assert old["meta"]["lastUpdated"] < since
    bundle = _bundle(client, f"/fhir/_history?_since={quote(since)}")
    assert [e["resource"]["id"] for e in bundle["entry"]] == [new["id"]]
    assert bundle["total"] == 1


def test_since_in_future_is_empty(client):
    client.create(patient())
    assert _bundle(client, "/fhir/_history?_since=2999-01-01")["total"] == 0


def test_at_returns_version_current_at_that_time(client):
    created = client.create(patient())
    rid = created["id"]
    r2 = client.put(f"/fhir/Patient/{rid}", {**created, "gender": "female"}).get_json()
    t1 = datetime.fromisoformat(created["meta"]["lastUpdated"])
    assert datetime.fromisoformat(r2["meta"]["lastUpdated"]) > t1
    for at, expected in [
        (t1.isoformat(timespec="milliseconds"), ['W/"1"']),
        (t1.isoformat(timespec="seconds")[:16], None),  # the whole minute: both, or only v1 at a minute's edge
        ("2999-01-01", ['W/"2"']),
        ("2000", []),
    ]:
        bundle = _bundle(client, f"/fhir/Patient/{rid}/_history?_at={quote(at)}")
        etags = [e["response"]["etag"] for e in bundle.get("entry", [])]
        if expected is None:
            assert etags in (['W/"2"', 'W/"1"'], ['W/"1"']), (at, etags)
        else:
            assert etags == expected, at


def test_sub_millisecond_at_and_since(client):
    """Stored instants have millisecond precision; finer query values must still compare exactly."""
    created = client.create(patient())
    rid = created["id"]
    client.put(f"/fhir/Patient/{rid}", {**created, "gender": "female"})
    t1 = datetime.fromisoformat(created["meta"]["lastUpdated"])
    inside = quote((t1 + timedelta(microseconds=500)).isoformat(timespec="microseconds"))  # after v1, before v2
    at = _bundle(client, f"/fhir/Patient/{rid}/_history?_at={inside}")
    assert [e["response"]["etag"] for e in at.get("entry", [])] == ['W/"1"']
    since = _bundle(client, f"/fhir/Patient/{rid}/_history?_since={inside}")
    assert [e["response"]["etag"] for e in since.get("entry", [])] == ['W/"2"']


@pytest.mark.parametrize(
    "query, name",
    [
        ("_since=yesterday", "_since"),
        ("_since=2024-13-01", "_since"),
        ("_at=2024-01-01T10", "_at"),
        ("_count=-1", "_count"),
        ("_count=abc", "_count"),
        ("_cursor=!!!", "_cursor"),
    ],
)
def test_malformed_parameters_are_400_naming_them(client, query, name):
    body = assert_error(client.get(f"/fhir/_history?{query}"), 400)
    assert name in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_history_only_allows_get(client, method):
    assert_error(client.request(method, "/fhir/Patient/_history", patient()), 405)
