"""The registry of resource types this server serves, and what it knows about each.

Supported = an R4 (4.0.1) resource type for which the model library has a model.
fhir.resources ships R4B models, which accept the R4 shapes of all card types; the
R4-only types R4B removed (MedicinalProduct*, Substance{NucleicAcid,Polymer,Protein,
ReferenceInformation,SourceMaterial,Specification}, EffectEvidenceSynthesis,
RiskEvidenceSynthesis) are refused clearly rather than stored unvalidated.
"""

from __future__ import annotations

import functools
import json
import pathlib

_TABLE_PATH = pathlib.Path(__file__).with_name("r4_structure.json")

# The medical card (first-class types), in the order the product presents them.
CARD_TYPES = (
    "Patient",
    "Encounter",
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "Consent",
)


@functools.cache
def structure() -> dict:
    """The generated R4 structure table (see tools/gen_r4_tables.py)."""
    return json.loads(_TABLE_PATH.read_text(encoding="utf-8"))


@functools.cache
def r4_resource_types() -> frozenset[str]:
    return frozenset(structure()["resourceTypes"])


@functools.cache
def model_class(resource_type: str):
    """The pydantic model for a type, or None when the model library lacks it."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


@functools.cache
def supported_types() -> tuple[str, ...]:
    return tuple(t for t in sorted(r4_resource_types()) if model_class(t) is not None)


@functools.cache
def _supported_set() -> frozenset[str]:
    return frozenset(supported_types())


def is_supported(resource_type: str) -> bool:
    return resource_type in _supported_set()


def unsupported_r4_types() -> tuple[str, ...]:
    return tuple(sorted(r4_resource_types() - _supported_set()))
