"""GET [base]/metadata: the CapabilityStatement (R4 capabilitystatement.html).

Generated from the live registry of supported types and the router's interaction
table; nothing here lists a type or an interaction by hand.
"""

from __future__ import annotations

import functools

from profiles_ru import profiles as ru_profiles
from resources import registry

from .. import __version__, fhirtime
from ..search.params import all_types, params_of
from . import terminology
from .base import Ctx, Resp

# Documentation of the parameters every type has.
_DOCS = {
    "_id": "Logical id of the resource",
    "_lastUpdated": "When the resource version last changed",
}
TYPE_OPERATIONS_EXTRA = {
    "Patient": [
        ("everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything"),
        ("bind-oms-policy", "urn:fhir-server-ru:OperationDefinition:Patient-bind-oms-policy"),  # README: Patient/$bind-oms-policy
    ],
}
for (_type, _name), _url in terminology.DEFINITIONS.items():  # CodeSystem/$lookup, ValueSet/$expand, ...
    TYPE_OPERATIONS_EXTRA.setdefault(_type, []).append((_name, _url))


def _search_params(rtype: str) -> list[dict]:
    out = []
    for code, p in sorted(params_of(rtype).items()):
        sp = {"name": code, "definition": p.url, "type": p.type}
        if code in _DOCS:
            sp["documentation"] = _DOCS[code]
        out.append(sp)
    return out


@functools.cache
def _revincludes() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for src in all_types():
        for code, p in sorted(params_of(src).items()):
            if p.type == "reference":
                for target in p.targets:
                    out.setdefault(target, []).append(f"{src}:{code}")
    return out


def _includes(rtype: str) -> list[str]:
    refs = sorted(code for code, p in params_of(rtype).items() if p.type == "reference")
    return ["*", *(f"{rtype}:{code}" for code in refs)] if refs else []

_STARTED = fhirtime.format_instant(fhirtime.now())


def capability_statement(ctx: Ctx, type_interactions, system_interactions, type_operations) -> Resp:
    resources = []
    for rtype in registry.supported_types():
        resources.append(
            {
                "type": rtype,
                "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
                "interaction": [{"code": code} for code in type_interactions],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "full-support",
                "conditionalUpdate": True,
                "conditionalDelete": "single",
                "referencePolicy": ["literal", "local"],
                "searchInclude": _includes(rtype),
                "searchRevInclude": sorted(_revincludes().get(rtype, [])),
                "searchParam": _search_params(rtype),
                "operation": [
                    {"name": name, "definition": url}
                    for name, url in (*type_operations, *TYPE_OPERATIONS_EXTRA.get(rtype, ()))
                ],
            }
        )
        if profiles := ru_profiles.supported(rtype):
            resources[-1]["supportedProfile"] = profiles  # the RU profiles (profiles_ru/definitions)
        for key in ("searchInclude", "searchRevInclude"):
            if not resources[-1][key]:
                del resources[-1][key]
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": _STARTED,
        "publisher": "fhir-server-ru",
        "kind": "instance",
        "software": {"name": "fhir-server-ru", "version": __version__},
        "implementation": {"description": "FHIR R4 server for Russian healthcare", "url": ctx.base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": code} for code in system_interactions],
                "searchParam": [
                    {"name": "_id", "definition": "http://hl7.org/fhir/SearchParameter/Resource-id", "type": "token"},
                    {"name": "_lastUpdated", "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated", "type": "date"},
                ],
            }
        ],
    }
    return Resp(200, body=statement)
