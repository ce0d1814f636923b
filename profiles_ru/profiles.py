"""The RU profiles: packaged StructureDefinitions (profiles_ru/definitions/*.json) and which
of them a written resource must meet.

    definitions()                 the packaged StructureDefinition resources (for the loader)
    profile(url)                  the compiled Profile of a canonical url ("url|version" too), or None
    required_profiles(resource, enforce)
                                  the urls a resource is checked against: its meta.profile entries the
                                  server knows, plus, with FHIR_ENFORCE_RU_PROFILES, the RU profile of
                                  its type (MANDATORY)
    issues(resource, reader, enforce)  every issue of those profiles (errors and warnings)

Read once per process: the files are small and never change while the server runs.
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


@lru_cache(maxsize=None)
def _compiled(url: str) -> Profile | None:
    sd = _packaged().get(url)
    return Profile(sd) if sd is not None else None


def profile(url: str) -> Profile | None:
    """The profile of a canonical url; a `|version` suffix must be the packaged version."""
    base, _, version = (url or "").partition("|")
    p = _compiled(base)
    if p is None or (version and p.sd.get("version") != version):
        return None
    return p


def type_of(url: str) -> str | None:
    p = profile(url)
    return p.type if p is not None else None


def declared(resource: dict) -> list[str]:
    meta = resource.get("meta") if isinstance(resource, dict) else None
    found = meta.get("profile") if isinstance(meta, dict) else None
    return [u for u in found if isinstance(u, str)] if isinstance(found, list) else []


def required_profiles(resource: dict, enforce: bool) -> list[Profile]:
    rtype = resource.get("resourceType")
    out = [p for u in declared(resource) if (p := profile(u)) is not None and p.type == rtype]
    if enforce and rtype in MANDATORY:
        pid, applies = MANDATORY[rtype]
        p = profile(SD + pid)
        if p is not None and p not in out and applies(resource):
            out.append(p)
    return out


def issues(resource: dict, reader=None, enforce: bool = False) -> list:
    return [i for p in required_profiles(resource, enforce) for i in p.validate(resource, reader)]
