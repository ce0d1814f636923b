"""Packaged conformance resources (CodeSystems, ValueSets, ConceptMaps, StructureDefinitions),
written into the store at start.

A package registers a source, a function returning its resources (each with a fixed `id`,
a canonical `url` and a `version`): `register(source)`, done when the module named in
PROVIDERS is imported. `load(app)` (called by create_app when FHIR_LOAD_DEFINITIONS is on)
writes, in one transaction through the server's own REST path, every packaged resource
whose (resourceType, url, version) is not in the store yet, at its fixed id, so loading
is idempotent. It never overwrites what a user posted: a resource at the packaged id with
the same url and a version at least as new, or with another url, is left as it is. (A newer version posted
at another id is simply another resource; the terminology service picks the newest.)

The code that uses packaged content reads it from the sources in memory (cached once per
process), so it works with loading switched off; the store copies are what clients read
and search, and what they update by posting newer versions.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Iterable

import orjson

log = logging.getLogger("fhir_server.packages")

# Modules that call register() when imported.
PROVIDERS = ("terminology", "profiles_ru.profiles")

_sources: list[Callable[[], Iterable[dict]]] = []
_VERSION_PART = re.compile(r"\d+|[A-Za-z]+")


def register(source: Callable[[], Iterable[dict]]) -> Callable[[], Iterable[dict]]:
    """Add a source of packaged resources (idempotent; usable as a decorator)."""
    if source not in _sources:
        _sources.append(source)
    return source


def _import_providers() -> None:
    for name in PROVIDERS:
        importlib.import_module(name)


def packaged() -> list[dict]:
    """Every registered packaged resource."""
    _import_providers()
    return [r for source in list(_sources) for r in source()]


def version_key(version: str | None) -> tuple:
    """Sort key of a `version` string: numeric parts compare as numbers ("1.10" > "1.9"),
    other parts as text below any number; no version sorts first."""
    if not version:
        return ()
    return tuple((1, int(p), "") if p.isdigit() else (0, 0, p) for p in _VERSION_PART.findall(version))


def _url_filter(url: str) -> dict:
    return {"idx.url.u": url}


def pending(store, resources: Iterable[dict]) -> list[dict]:
    """The packaged resources the store does not hold yet (see the module docstring)."""
    out = []
    reader = store.reader()
    for r in resources:
        rtype, url, version = r["resourceType"], r["url"], r.get("version")
        stored = [v.resource() for v in reader.find(rtype, _url_filter(url))]
        if any(s.get("version") == version for s in stored):
            continue
        current = reader.read(rtype, r["id"])
        if current is not None and not current.deleted:
            mine = current.resource()
            if mine.get("url") != url:
                log.warning("packaged %s/%s not loaded: that id holds another resource (%s)", rtype, r["id"], mine.get("url"))
                continue  # never overwrite someone else's resource
            if version_key(mine.get("version")) >= version_key(version):
                continue  # a user's version at least as new sits at the packaged id
        out.append(r)
    return out


def bundle(resources: Iterable[dict]) -> dict:
    entries = [
        {
            "fullUrl": f"{r['resourceType']}/{r['id']}",
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def load(app) -> int:
    """Write the pending packaged resources; returns how many were written."""
    if not app.config["FHIR_SETTINGS"].load_definitions:
        return 0
    from consent.principal import Principal

    from .app import internal_client

    todo = pending(app.config["FHIR_STORE"], packaged())
    if not todo:
        return 0
    client = internal_client(app, Principal("admin", subject="definitions-loader", client_id="fhir-server"))
    r = client.post("/fhir", data=orjson.dumps(bundle(todo)), headers={"Content-Type": "application/fhir+json"})
    if r.status_code != 200:
        raise RuntimeError(f"packaged definitions did not load: HTTP {r.status_code} {r.get_data(as_text=True)[:2000]}")
    log.info("packaged definitions loaded: %d resources", len(todo))
    return len(todo)
