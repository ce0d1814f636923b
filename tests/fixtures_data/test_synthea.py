"""Ingest a sample of Synthea transaction Bundles and check what the server then holds.

The bundles live in ../shared/fixtures/synthea (third-party data, never copied into the
project); the tests skip when it is absent. Each data set gets its own app (module-scoped
fixture), loaded once: the support bundles first, then a fixed sample of patient bundles.

- smart-r4-2019: transaction bundles, all entries POST with `urn:uuid:` references.
- fhir-data-pipes-hiv-2021: batch support bundles with `ifNoneExist`, then transaction
  patient bundles whose references are conditional (`Practitioner?identifier=...`).

After loading, every entry must have succeeded, the number of live resources of each
type (counted from type-level history, since search is not routed yet) must equal the
number of entries of that type in the loaded bundles, and the references must have been
rewritten to literal `Type/id` references that read back.
"""

from __future__ import annotations

import collections
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from tests.conftest import FHIRClient, make_settings, shared_fixture

from fhir_server.app import create_app

SMART_SAMPLE = 8  # first patient bundles in sorted file-name order
HIV_SAMPLE = 3  # smallest patient bundles (each costs seconds of conditional-reference lookups)
PAGE = 500

LITERAL_REF = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")


@dataclass
class Loaded:
    client: FHIRClient
    # (file name, request bundle, HTTP status, response body) in load order
    results: list[tuple[str, dict, int, dict]] = field(default_factory=list)

    def expected_counts(self) -> collections.Counter:
        return collections.Counter(
            e["resource"]["resourceType"] for _, bundle, _, _ in self.results for e in bundle.get("entry", [])
        )

    def patient_results(self):
        return [r for r in self.results if not r[0].startswith(("hospitalInformation", "practitionerInformation"))]


def _load_all(client: FHIRClient, paths) -> Loaded:
    loaded = Loaded(client)
    for path in paths:
        raw = path.read_bytes()
        r = client.request("POST", "/fhir", data=raw)
        loaded.results.append((path.name, json.loads(raw), r.status_code, r.get_json(silent=True)))
    return loaded


def _module_app_client():
    settings = make_settings()
    app = create_app(settings)

    def close():
        store = app.config["FHIR_STORE"]
        if not settings.embedded:
            store.engine.client.drop_database(settings.db_name)
        store.engine.close()

    return FHIRClient(app.test_client()), close


def _support_bundles(folder):
    hospital = sorted(folder.glob("hospitalInformation*.json"))
    practitioner = sorted(folder.glob("practitionerInformation*.json"))
    assert hospital and practitioner, f"support bundles missing in {folder}"
    return hospital + practitioner


def _patient_bundles(folder):
    support = {p.name for p in _support_bundles(folder)}
    return sorted(p for p in folder.glob("*.json") if p.name not in support)


@pytest.fixture(scope="module")
def smart():
    folder = shared_fixture("synthea", "smart-r4-2019")
    patients = _patient_bundles(folder)[:SMART_SAMPLE]
    assert len(patients) == SMART_SAMPLE
    client, close = _module_app_client()
    yield _load_all(client, _support_bundles(folder) + patients)
    close()


@pytest.fixture(scope="module")
def hiv():
    folder = shared_fixture("synthea", "fhir-data-pipes-hiv-2021")
    patients = sorted(_patient_bundles(folder), key=lambda p: (p.stat().st_size, p.name))[:HIV_SAMPLE]
    assert len(patients) == HIV_SAMPLE
    client, close = _module_app_client()
    yield _load_all(client, _support_bundles(folder) + patients)
    close()


# -- helpers -----------------------------------------------------------------------
def _failures(loaded: Loaded) -> list[str]:
    """Every bundle or entry that did not succeed, with its OperationOutcome."""
    out = []
    for name, bundle, status, body in loaded.results:
        want = bundle["type"] + "-response"
        if status != 200 or not isinstance(body, dict) or body.get("type") != want:
            out.append(f"{name}: HTTP {status}, expected 200 {want}: {json.dumps(body, ensure_ascii=False)[:3000]}")
            continue
        entries = body.get("entry", [])
        if len(entries) != len(bundle.get("entry", [])):
            out.append(f"{name}: {len(entries)} response entries for {len(bundle.get('entry', []))} request entries")
            continue
        for i, entry in enumerate(entries):
            status_text = entry.get("response", {}).get("status", "")
            if not status_text.startswith("2"):
                req = bundle["entry"][i].get("request")
                outcome = json.dumps(entry["response"].get("outcome"), ensure_ascii=False)[:2000]
                out.append(f"{name}: entry[{i}] {req} -> {status_text}: {outcome}")
    return out


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _live_resources(client: FHIRClient, rtype: str) -> dict[str, dict]:
    """id -> current resource for every id of `rtype` whose newest version is not a deletion."""
    newest: dict[str, dict | None] = {}
    url = f"/fhir/{rtype}/_history?_count={PAGE}"
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, f"{url}: {r.status_code} {r.get_data(as_text=True)[:1000]}"
        bundle = r.get_json()
        assert bundle["type"] == "history"
        for entry in bundle.get("entry", []):
            rid = entry["fullUrl"].rsplit("/", 1)[-1]
            if rid in newest:  # history is newest first: the first version seen is the current one
                continue
            deleted = entry["request"]["method"] == "DELETE" or "resource" not in entry
            newest[rid] = None if deleted else entry["resource"]
        nxt = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        url = _path(nxt[0]) if nxt else None
        pages += 1
        assert pages < 1000, f"{rtype} history does not end"
    return {rid: res for rid, res in newest.items() if res is not None}


def _references(node, path="") -> list[tuple[str, str]]:
    """(element path, value) of every Reference.reference in a resource."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                out.append((f"{path}.reference", v))
            else:
                out.extend(_references(v, f"{path}.{k}"))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_references(v, f"{path}[{i}]"))
    return out


def _check_counts(loaded: Loaded) -> None:
    expected = loaded.expected_counts()
    assert expected, "no entries loaded"
    actual = {}
    leftovers = []
    for rtype in sorted(expected):
        live = _live_resources(loaded.client, rtype)
        actual[rtype] = len(live)
        for rid, res in live.items():
            assert res["resourceType"] == rtype and res["id"] == rid
            for where, ref in _references(res):
                if ref.startswith("urn:uuid:") or "?" in ref:
                    leftovers.append(f"{rtype}/{rid}{where} = {ref}")
    assert actual == dict(expected), {t: (actual.get(t), n) for t, n in expected.items() if actual.get(t) != n}
    assert not leftovers, f"{len(leftovers)} references not rewritten, e.g. {leftovers[:5]}"
    # Nothing else was written: the system history holds exactly one version per entry.
    r = loaded.client.get("/fhir/_history?_count=1")
    assert r.status_code == 200
    assert r.get_json()["total"] == sum(expected.values())


def _read(client: FHIRClient, ref: str) -> dict:
    m = LITERAL_REF.match(ref)
    assert m, f"{ref!r} is not a literal Type/id reference"
    r = client.get(f"/fhir/{ref}")
    assert r.status_code == 200, f"GET {ref}: {r.status_code} {r.get_data(as_text=True)[:1000]}"
    res = r.get_json()
    assert res["resourceType"] == m.group(1) and res["id"] == m.group(2)
    return res


def _stored_location(body: dict, index: int) -> str:
    """Type/id of the resource a response entry created (location is Type/id/_history/n)."""
    location = body["entry"][index]["response"]["location"]
    rtype, rid, hist, _ = location.split("/")
    assert hist == "_history"
    return f"{rtype}/{rid}"


def _first_encounter(loaded: Loaded) -> tuple[str, dict, dict, int]:
    name, bundle, status, body = loaded.patient_results()[0]
    assert status == 200, f"{name} failed to load"
    for i, entry in enumerate(bundle["entry"]):
        if entry["resource"]["resourceType"] == "Encounter":
            return name, bundle, body, i
    raise AssertionError(f"{name} has no Encounter")


# -- smart-r4-2019 -----------------------------------------------------------------
def test_smart_bundles_load_without_failures(smart):
    assert len(smart.results) == SMART_SAMPLE + 2
    assert all(bundle["type"] == "transaction" for _, bundle, _, _ in smart.results)
    failures = _failures(smart)
    assert not failures, "\n".join(failures)


def test_smart_counts_match_history(smart):
    _check_counts(smart)


def test_smart_urn_uuid_reference_rewritten(smart):
    name, bundle, body, i = _first_encounter(smart)
    original = bundle["entry"][i]["resource"]
    subject = original["subject"]["reference"]
    assert subject.startswith("urn:uuid:")
    patient_index = next(j for j, e in enumerate(bundle["entry"]) if e.get("fullUrl") == subject)
    assert bundle["entry"][patient_index]["resource"]["resourceType"] == "Patient"
    patient_ref = _stored_location(body, patient_index)

    encounter = _read(smart.client, _stored_location(body, i))
    assert encounter["subject"]["reference"] == patient_ref, name
    assert patient_ref.startswith("Patient/")
    patient = _read(smart.client, patient_ref)
    assert patient["name"] == bundle["entry"][patient_index]["resource"]["name"]
    # Everything else in the Encounter came through unchanged.
    stored = {k: v for k, v in encounter.items() if k not in ("id", "meta", "subject")}
    sent = {k: v for k, v in original.items() if k not in ("id", "meta", "subject")}
    assert json.dumps(stored, sort_keys=True).count("urn:uuid:") == 0
    assert set(stored) == set(sent)


# -- fhir-data-pipes-hiv-2021 ------------------------------------------------------
def test_hiv_bundles_load_without_failures(hiv):
    kinds = [bundle["type"] for _, bundle, _, _ in hiv.results]
    assert kinds == ["batch", "batch"] + ["transaction"] * HIV_SAMPLE
    failures = _failures(hiv)
    assert not failures, "\n".join(failures)
    # On an empty store no ifNoneExist matches: every support entry is a fresh create.
    for name, _, _, body in hiv.results[:2]:
        statuses = collections.Counter(e["response"]["status"] for e in body.get("entry", []))
        assert set(statuses) == {"201 Created"}, (name, statuses)


def test_hiv_counts_match_history(hiv):
    _check_counts(hiv)


def test_hiv_conditional_reference_resolved(hiv):
    name, bundle, body, i = _first_encounter(hiv)
    original = bundle["entry"][i]["resource"]
    encounter = _read(hiv.client, _stored_location(body, i))
    stored_refs = dict(_references(encounter))
    conditional = [(where, ref) for where, ref in _references(original) if "?identifier=" in ref]
    assert any(ref.startswith("Practitioner?") for _, ref in conditional), f"{name}: no conditional Practitioner reference"
    for where, ref in conditional:
        rtype, criteria = ref.split("?", 1)
        system, value = criteria[len("identifier="):].split("|", 1)
        literal = stored_refs.get(where)
        assert literal is not None and literal.startswith(f"{rtype}/"), (name, where, ref, literal)
        target = _read(hiv.client, literal)
        # ... and it is the resource the criteria name.
        assert {"system": system, "value": value} in [
            {"system": ident.get("system"), "value": ident.get("value")} for ident in target.get("identifier", [])
        ], (name, where, ref, literal)
    # The urn:uuid subject was rewritten too.
    assert LITERAL_REF.match(encounter["subject"]["reference"])
    assert encounter["subject"]["reference"].startswith("Patient/")
    _read(hiv.client, encounter["subject"]["reference"])
