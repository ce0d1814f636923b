"""The RU profiles: packaged StructureDefinitions (profiles_ru/definitions/*.json) and which
of them a written resource must meet.

    definitions()                 the packaged StructureDefinition resources (for the loader)
    profile(url, reader)          the compiled Profile of a canonical url ("url|version" too), or None;
                                  newer versions posted to the server are honoured
    required_profiles(resource, enforce, reader)
                                  the profiles a resource is checked against: its meta.profile entries
                                  the server knows, plus, with FHIR_ENFORCE_RU_PROFILES, the RU profile
                                  of its type (MANDATORY)
    issues(resource, reader, enforce)  every issue of those profiles (errors and warnings)
    supported(rtype)              the packaged profile urls of a type (CapabilityStatement)

The files are read once per process; compiled profiles are cached by the identity of the
version they were made from.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable
from functools import lru_cache

from fhir_server import packages

from . import CANONICAL
from .validator import Profile

DEFINITIONS = pathlib.Path(__file__).resolve().parent / "definitions"
SD = f"{CANONICAL}/StructureDefinition/"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _laboratory(resource: dict) -> bool:
    return any(isinstance(c, dict) and c.get("system") == OBSERVATION_CATEGORY and c.get("code") == "laboratory"
               for cat in resource.get("category") or [] if isinstance(cat, dict) for c in cat.get("coding") or [])


def _always(resource: dict) -> bool:
    return True


# base type -> (profile id, which resources of the type it is mandatory for) under FHIR_ENFORCE_RU_PROFILES
MANDATORY: dict[str, tuple[str, Callable[[dict], bool]]] = {
    "Patient": ("ru-patient", _always),
    "Practitioner": ("ru-practitioner", _always),
    "Organization": ("ru-organization", _always),
    "Coverage": ("ru-coverage", _always),
    "Observation": ("ru-observation-lab", _laboratory),
    "DiagnosticReport": ("ru-diagnosticreport", _always),
    "Encounter": ("ru-encounter", _always),
    "MedicationRequest": ("ru-medicationrequest", _always),
}


@lru_cache(maxsize=1)
def _packaged() -> dict[str, dict]:
    out = {}
    for path in sorted(DEFINITIONS.glob("*.json")):
        sd = json.loads(path.read_text(encoding="utf-8"))
        out[sd["url"]] = sd
    return out


def definitions() -> list[dict]:
    return list(_packaged().values())


packages.register(definitions)  # served at /fhir/StructureDefinition/<id>, loaded at first start


_compiled: dict[tuple, Profile] = {}
_COMPILED_MAX = 64


def _identity(sd: dict) -> tuple:
    meta = sd.get("meta") or {}
    return (sd.get("url"), sd.get("version"), sd.get("id"), meta.get("versionId"), meta.get("lastUpdated"))


def _compile(sd: dict) -> Profile:
    key = _identity(sd)
    p = _compiled.get(key)
    if p is None:
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.clear()
        p = _compiled[key] = Profile(sd)
    return p


def _stored(url: str, reader) -> list[dict]:
    """Versions of one of our profiles posted to the server (the loaded copies among them)."""
    if reader is None or not url.startswith(SD):
        return []
    found = [v.resource() for v in reader.search("StructureDefinition", {"idx.url.u": url}, [("_id", 1)], 100)]
    return [r for r in found if r.get("url") == url and r.get("derivation") == "constraint" and r.get("type")]


def profile(url: str, reader=None) -> Profile | None:
    """The profile of a canonical url: of `url|version` that version, else the newest by version
    order among the packaged one and those posted to the server under our canonical base (a user's
    newer version of an RU profile is honoured; a store copy of a version replaces the packaged one)."""
    base, _, version = (url or "").partition("|")
    by_version = {sd.get("version"): sd for sd in ([_packaged()[base]] if base in _packaged() else [])}
    for sd in _stored(base, reader):
        by_version[sd.get("version")] = sd
    if version:
        sd = by_version.get(version)
    else:
        sd = max(by_version.values(), key=lambda r: packages.version_key(r.get("version")), default=None)
    return _compile(sd) if sd is not None else None


def supported(rtype: str) -> list[str]:
    """The canonical urls of the packaged profiles of a type (CapabilityStatement supportedProfile)."""
    return [url for url, sd in _packaged().items() if sd["type"] == rtype]


def type_of(url: str) -> str | None:
    p = profile(url)
    return p.type if p is not None else None


def declared(resource: dict) -> list[str]:
    meta = resource.get("meta") if isinstance(resource, dict) else None
    found = meta.get("profile") if isinstance(meta, dict) else None
    return [u for u in found if isinstance(u, str)] if isinstance(found, list) else []


def required_profiles(resource: dict, enforce: bool, reader=None) -> list[Profile]:
    rtype = resource.get("resourceType")
    out = [p for u in declared(resource) if (p := profile(u, reader)) is not None and p.type == rtype]
    if enforce and rtype in MANDATORY:
        pid, applies = MANDATORY[rtype]
        p = profile(SD + pid, reader)
        if p is not None and p not in out and applies(resource):
            out.append(p)
    return out


def issues(resource: dict, reader=None, enforce: bool = False) -> list:
    return [i for p in required_profiles(resource, enforce, reader) for i in p.validate(resource, reader)]
