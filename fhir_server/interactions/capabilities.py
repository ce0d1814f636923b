"""GET [base]/metadata: the CapabilityStatement (R4 capabilitystatement.html).

Generated from the live registry of supported types and the router's interaction
table; nothing here lists a type or an interaction by hand.
"""

from __future__ import annotations

from resources import registry

from .. import __version__, fhirtime
from .base import Ctx, Resp

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
                "operation": [{"name": name, "definition": url} for name, url in type_operations],
            }
        )
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
            }
        ],
    }
    return Resp(200, body=statement)
