"""Paging of search results over HTTP (R4 search.html 3.1.1.5.6 _count, http.html 3.1.0.11 paging links).

Follow `next` to the end and `previous` back: every match exactly once; writes between
page requests neither repeat nor skip resources that existed throughout.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from fhir_server.app import create_app
from tests.conftest import FHIRClient, make_settings

from ._data import bundle, delete, link, matches, mk, patient


def _page_ids(b: dict) -> list[str]:
    return [e["resource"]["id"] for e in matches(b)]


def _walk(client, start: str) -> tuple[list[list[str]], dict]:
    """Pages (lists of ids) following `next` from `start`; returns them and the last bundle."""
    pages, url, b = [], start, None
    while url:
        assert len(pages) < 100
        b = bundle(client, url)
        pages.append(_page_ids(b))
        url = link(b, "next")
    return pages, b


def _walk_back(client, b: dict) -> list[list[str]]:
    pages = []
    url = link(b, "previous")
    while url:
        assert len(pages) < 100
        b = bundle(client, url)
        pages.append(_page_ids(b))
        url = link(b, "previous")
    return pages


@pytest.mark.parametrize("sort", [None, "_id", "-_lastUpdated", "family,-birthdate", "-given"])
def test_next_to_the_end_and_back(client, sort):
    made = [mk(client, patient(f"Фам{i % 4}", [f"Имя{i:02d}"], birthDate=f"19{50 + i}-01-01")) for i in range(23)]
    mk(client, {"resourceType": "Observation", "status": "final", "code": {"text": "не пациент"}})
    q = "/fhir/Patient?_count=5" + (f"&_sort={sort}" if sort else "")
    first = bundle(client, q)
    assert first["total"] == 23
    assert link(first, "previous") is None
    assert link(first, "first")
    pages, last = _walk(client, q)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat)) == 23 and set(flat) == set(made)
    assert link(last, "next") is None
    # the same order in one page
    assert flat == _page_ids(bundle(client, q.replace("_count=5", "_count=50")))
    # back with `previous`: the same pages in reverse
    back = _walk_back(client, last)
    assert back == pages[-2::-1]
    # `first` from the last page starts over
    assert _page_ids(bundle(client, link(last, "first"))) == pages[0]


def test_links_keep_the_criteria(client):
    for i in range(12):
        mk(client, patient("Искомый" if i % 2 else "Другой", [f"Имя{i}"], gender="male" if i % 3 else "female"))
    q = "/fhir/Patient?family=искомый&gender=male&_count=2&_sort=given"
    b = bundle(client, q)
    assert b["total"] == 4
    nxt = link(b, "next")
    params = dict(parse_qsl(urlsplit(nxt).query))
    assert params["family"] == "искомый" and params["gender"] == "male" and params["_count"] == "2" and params["_sort"] == "given"
    self_params = dict(parse_qsl(urlsplit(link(b, "self")).query))
    assert self_params == {"family": "искомый", "gender": "male", "_count": "2", "_sort": "given"}
    pages, _ = _walk(client, q)
    names = []
    for p in pages:
        for pid in p:
            res = client.get(f"/fhir/Patient/{pid}").get_json()
            assert res["name"][0]["family"] == "Искомый" and res["gender"] == "male"
            names.append(res["name"][0]["given"][0])
    assert names == sorted(names) and len(names) == 4


@pytest.mark.parametrize("sort", [None, "_lastUpdated", "-_lastUpdated", "family", "-birthdate"])
def test_writes_while_paging(client, sort):
    """Resources that exist throughout appear exactly once; deleted unseen ones never."""
    made = [mk(client, patient(f"Ф{i:02d}", birthDate=f"19{40 + i}-06-01")) for i in range(20)]
    q = "/fhir/Patient?_count=4" + (f"&_sort={sort}" if sort else "")
    b = bundle(client, q)
    seen = _page_ids(b)
    unseen = [i for i in made if i not in seen]
    deleted_unseen = unseen[1::5]
    deleted_seen = seen[0]
    for pid in deleted_unseen:
        delete(client, "Patient", pid)
    delete(client, "Patient", deleted_seen)
    added = []
    step = 0
    url = link(b, "next")
    while url:
        step += 1
        assert step < 50
        # between pages: more writes, created before and after every page
        added.append(mk(client, patient(f"Ф{step:02d}Новый", birthDate="1945-01-01")))
        b = bundle(client, url)
        seen.extend(_page_ids(b))
        url = link(b, "next")
    assert len(seen) == len(set(seen)), "a page repeated a resource"
    throughout = set(made) - set(deleted_unseen) - {deleted_seen}
    assert throughout <= set(seen), ("skipped", throughout - set(seen))
    assert not set(deleted_unseen) & set(seen), "a deleted resource was returned"
    assert set(seen) <= set(made) | set(added)


@pytest.fixture
def small_client():
    app = create_app(make_settings(max_page_size=7, default_page_size=3))
    yield FHIRClient(app.test_client())
    app.config["FHIR_STORE"].engine.close()


def test_configured_page_sizes(small_client):
    made = {mk(small_client, patient(f"П{i}")) for i in range(16)}
    b = bundle(small_client, "/fhir/Patient")
    assert len(matches(b)) == 3 and b["total"] == 16  # the default page size
    b = bundle(small_client, "/fhir/Patient?_count=100")
    assert len(matches(b)) == 7  # capped at the configured maximum
    pages, _ = _walk(small_client, "/fhir/Patient?_count=100")
    assert [len(p) for p in pages] == [7, 7, 2]
    assert {i for p in pages for i in p} == made
    b = bundle(small_client, "/fhir/Patient?_count=7")
    assert len(matches(b)) == 7
    b = bundle(small_client, "/fhir/Patient?_count=2")
    assert len(matches(b)) == 2


@pytest.mark.parametrize("sort", [None, "family", "-_lastUpdated"])
def test_boundary_deleted_and_paging_back_after_writes(client, sort):
    """The resource a cursor points at is deleted before the next page is asked for; new
    resources arrive; walking `previous` back from the end still gives each survivor once."""
    made = [mk(client, patient(f"Г{i:02d}")) for i in range(15)]
    q = "/fhir/Patient?_count=4" + (f"&_sort={sort}" if sort else "")
    seen, url, last = [], q, None
    while url:
        b = bundle(client, url)
        page = _page_ids(b)
        seen.extend(page)
        url = link(b, "next")
        if url and page:
            delete(client, "Patient", page[-1])  # the page's last entry: the next cursor's key
            mk(client, patient("Г00-новый"))
        last = b
    assert len(seen) == len(set(seen))
    assert set(made) <= set(seen)
    deleted = {i for i in seen if client.get(f"/fhir/Patient/{i}").status_code == 410}
    # back from the last page: every surviving original appears once, deleted ones never
    back = [i for p in _walk_back(client, last) for i in p] + _page_ids(last)
    assert len(back) == len(set(back)), "a previous page repeated a resource"
    assert not deleted & set(back)
    survivors = set(made) - deleted
    assert survivors <= set(back), ("skipped going back", survivors - set(back))
