"""resources/compartments.json: the R4 (4.0.1) compartment definitions as data.

For each compartment (Patient, Encounter, Practitioner, RelatedPerson, Device) and each
resource type with at least one param in the official CompartmentDefinition, the
search parameter names (``resource.param``) linking that type to the compartment.
"""

from __future__ import annotations

import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TABLE_PATH = ROOT / "resources" / "compartments.json"
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"

COMPARTMENTS = ("Patient", "Encounter", "Practitioner", "RelatedPerson", "Device")
DEFINITION_IDS = {
    "Patient": "patient",
    "Encounter": "encounter",
    "Practitioner": "practitioner",
    "RelatedPerson": "relatedperson",
    "Device": "device",
}

# Pseudo-param used for the compartment's own type ("the resource itself").
DEF_PSEUDO_PARAM = "{def}"

# Checked by hand against https://hl7.org/fhir/R4/compartmentdefinition-patient.html
PATIENT_EXPECTED = {
    "Observation": ["subject", "performer"],
    "Encounter": ["patient"],
    "MedicationRequest": ["subject"],
    "DiagnosticReport": ["subject"],
    "Consent": ["patient"],
    "AuditEvent": ["patient"],
    "Provenance": ["patient"],
    "Appointment": ["actor"],
    "Coverage": ["policy-holder", "subscriber", "beneficiary", "payor"],
    "AllergyIntolerance": ["patient", "recorder", "asserter"],
    "Patient": ["link"],
}

# Types that exist only in R5 (or later) and must not appear in an R4 table.
NOT_IN_R4 = {
    "BiologicallyDerivedProductDispense",
    "NutritionIntake",
    "RequestOrchestration",
    "DeviceDispense",
    "DeviceUsage",
    "InventoryReport",
    "Transport",
}


@pytest.fixture(scope="module")
def table() -> dict:
    return json.loads(TABLE_PATH.read_text(encoding="utf-8"))


def _shared(*parts: str) -> pathlib.Path:
    path = SHARED_FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared fixture {path} not present")
    return path


def test_table_loads_with_the_five_compartments(table):
    assert isinstance(table, dict)
    assert set(table) == set(COMPARTMENTS)


def test_shape_every_listed_type_has_params(table):
    for compartment, types in table.items():
        assert isinstance(types, dict) and types, compartment
        for rtype, params in types.items():
            assert isinstance(params, list) and params, (compartment, rtype)
            assert all(isinstance(p, str) and p for p in params), (compartment, rtype)
            assert len(set(params)) == len(params), (compartment, rtype)


@pytest.mark.parametrize("rtype", sorted(PATIENT_EXPECTED))
def test_patient_compartment_cross_checks(table, rtype):
    assert table["Patient"][rtype] == PATIENT_EXPECTED[rtype]


def test_other_compartment_spot_checks(table):
    assert table["Encounter"]["Encounter"] == [DEF_PSEUDO_PARAM]
    assert table["Encounter"]["Observation"] == ["encounter"]
    assert table["Practitioner"]["Practitioner"] == [DEF_PSEUDO_PARAM]
    assert table["RelatedPerson"]["RelatedPerson"] == [DEF_PSEUDO_PARAM]
    assert table["RelatedPerson"]["Patient"] == ["link"]
    assert table["Device"]["Observation"] == ["subject", "device"]


def test_is_r4_not_r5(table):
    for compartment, types in table.items():
        assert not (set(types) & NOT_IN_R4), compartment
    # R4 has MedicationStatement/DeviceUseStatement, not R5's renames.
    assert "DeviceUseStatement" in table["Patient"]
    assert "MedicationStatement" in table["Patient"]
    assert table["Patient"]["Patient"] == ["link"]


def test_counts(table):
    counts = {c: len(t) for c, t in table.items()}
    assert counts == {"Patient": 66, "Encounter": 25, "Practitioner": 59, "RelatedPerson": 32, "Device": 32}


def test_params_are_r4_search_parameters(table):
    bundle = json.loads(_shared("r4-definitions", "search-parameters.json").read_text(encoding="utf-8"))
    known: set[tuple[str, str]] = set()
    for entry in bundle["entry"]:
        resource = entry["resource"]
        for base in resource["base"]:
            known.add((base, resource["code"]))
    missing = [
        (compartment, rtype, param)
        for compartment, types in table.items()
        for rtype, params in types.items()
        for param in params
        if param != DEF_PSEUDO_PARAM
        and (rtype, param) not in known
        and ("Resource", param) not in known
        and ("DomainResource", param) not in known
    ]
    assert not missing


@pytest.mark.parametrize("compartment", COMPARTMENTS)
def test_matches_official_compartment_definition(table, compartment):
    path = _shared("r4-examples", f"compartmentdefinition-{DEFINITION_IDS[compartment]}.json")
    definition = json.loads(path.read_text(encoding="utf-8"))
    assert definition["code"] == compartment
    assert definition["version"] == "4.0.1"
    expected = {r["code"]: r["param"] for r in definition["resource"] if r.get("param")}
    assert table[compartment] == expected
