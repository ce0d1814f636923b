"""Shared helpers for the HTTP-level search tests.

URLs are written in tests as they read (`/fhir/Patient?name=иван&birthdate=ge2020-01-01T10:00:00+03:00`);
`enc()` percent-encodes every parameter name and value (so `+`, `\\`, Cyrillic, spaces survive),
keeping only `:/,|$*` readable. Links returned by the server (absolute, already encoded) are used as they are.
"""

from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import quote

from fhir_server.app import create_app
from tests.conftest import FHIRClient, make_settings

BASE = "http://localhost/fhir"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
SUBSETTED = "SUBSETTED"
FHIR_JSON_UTF8 = "application/fhir+json;charset=utf-8"


# -- URLs -----------------------------------------------------------------------------------------
def enc(path: str) -> str:
    if path.startswith("http://") or "?" not in path:
        return path
    head, _, query = path.partition("?")
    parts = []
    for pair in query.split("&"):
        if not pair:
            continue
        k, eq, v = pair.partition("=")
        parts.append(quote(k, safe=":/,|$*") + eq + quote(v, safe=":/,|$*"))
    return head + "?" + "&".join(parts)


# -- requests -------------------------------------------------------------------------------------
def get(client, path: str, headers: dict | None = None):
    return client.get(enc(path), headers=headers)


def bundle(client, path: str, headers: dict | None = None) -> dict:
    """GET a search; asserts a 200 searchset Bundle and returns it."""
    r = get(client, path, headers)
    assert r.status_code == 200, (path, r.status_code, r.get_data(as_text=True))
    b = r.get_json()
    assert b["resourceType"] == "Bundle" and b["type"] == "searchset", b
    return b


def link(b: dict, relation: str) -> str | None:
    return next((l["url"] for l in b.get("link", []) if l["relation"] == relation), None)


def matches(b: dict) -> list[dict]:
    return [e for e in b.get("entry", []) if e.get("search", {}).get("mode") == "match"]


def included(b: dict) -> list[dict]:
    return [e for e in b.get("entry", []) if e.get("search", {}).get("mode") == "include"]


def all_pages(client, path: str, headers: dict | None = None, limit: int = 200) -> list[dict]:
    """Every `match` entry of a search, following `next` links to the end."""
    out, url, n = [], path, 0
    while url:
        n += 1
        assert n <= limit, "paging does not end"
        b = bundle(client, url, headers)
        out.extend(matches(b))
        url = link(b, "next")
    return out


def ids(client, path: str, headers: dict | None = None) -> set[str]:
    """The ids of every resource a search matches (all pages; an id twice is a failure)."""
    got = [e["resource"]["id"] for e in all_pages(client, path, headers)]
    assert len(got) == len(set(got)), ("a resource returned twice", path, got)
    return set(got)


def refs(client, path: str, headers: dict | None = None) -> set[str]:
    """Like ids() but as Type/id (for searches over several types)."""
    got = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in all_pages(client, path, headers)]
    assert len(got) == len(set(got)), ("a resource returned twice", path, got)
    return set(got)


def ordered(client, path: str, headers: dict | None = None) -> list[str]:
    """The ids of every match in the order the server returns them (all pages)."""
    return [e["resource"]["id"] for e in all_pages(client, path, headers)]


def error(client, path: str, status: int = 400, headers: dict | None = None, method: str = "GET", **kw) -> dict:
    """The request fails with `status` and an OperationOutcome; returns its first issue."""
    r = client.request(method, enc(path), headers=headers, **kw)
    assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True))
    assert r.headers["Content-Type"] == FHIR_JSON_UTF8, r.headers
    body = r.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    issue = body["issue"][0]
    assert issue["severity"] in ("error", "fatal"), body
    assert issue.get("diagnostics"), body
    return issue


# -- writes ---------------------------------------------------------------------------------------
def mk(client, resource: dict) -> str:
    """Create a resource, return its id."""
    return client.create(resource)["id"]


def update(client, resource: dict) -> dict:
    r = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", resource)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def delete(client, rtype: str, rid: str) -> None:
    r = client.delete(f"/fhir/{rtype}/{rid}")
    assert r.status_code == 200, r.get_data(as_text=True)


# -- builders -------------------------------------------------------------------------------------
def patient(family: str | None = None, given: list[str] | None = None, **extra) -> dict:
    res: dict = {"resourceType": "Patient"}
    if family is not None or given is not None:
        name: dict = {}
        if family is not None:
            name["family"] = family
        if given is not None:
            name["given"] = given
        res["name"] = [name]
    res.update(extra)
    return res


def coding(system: str | None, code: str, display: str | None = None) -> dict:
    c: dict = {"code": code}
    if system is not None:
        c["system"] = system
    if display is not None:
        c["display"] = display
    return c


def concept(system: str | None, code: str, display: str | None = None, text: str | None = None) -> dict:
    cc: dict = {"coding": [coding(system, code, display)]}
    if text is not None:
        cc["text"] = text
    return cc


def obs(code: str = "8480-6", system: str | None = LOINC, subject: str | None = None, **extra) -> dict:
    res: dict = {"resourceType": "Observation", "status": "final", "code": concept(system, code)}
    if subject is not None:
        res["subject"] = {"reference": subject}
    res.update(extra)
    return res


def qty(value, code: str | None = None, system: str | None = UCUM, unit: str | None = None) -> dict:
    q: dict = {"value": value}
    if unit is not None:
        q["unit"] = unit
    if system is not None:
        q["system"] = system
    if code is not None:
        q["code"] = code
    return q


# -- a client of its own, for data shared by the read-only cases of one module ---------------------
@contextmanager
def private_client():
    """A Flask test client on a fresh store, like the `client` fixture, for a module-scoped
    fixture: table-driven cases that only GET share one data set instead of rebuilding it
    per case (a fresh store per case is kept for every test that writes)."""
    settings = make_settings()
    app = create_app(settings)
    try:
        yield FHIRClient(app.test_client())
    finally:
        store = app.config["FHIR_STORE"]
        if not settings.embedded:
            store.engine.client.drop_database(settings.db_name)
        store.engine.close()
