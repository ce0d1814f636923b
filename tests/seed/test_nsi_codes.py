"""The generated population takes its NSI codes from the packaged terminology (codes of public SEMD/MIS sources,
terminology/data/SOURCES.md) and declares an RU profile exactly where they make the resource conform."""

from __future__ import annotations

import pytest

from profiles_ru import CANONICAL
from seed import vocabulary as V
from seed.generator import Population

terminology = pytest.importorskip("terminology")
PRACTITIONER = f"{CANONICAL}/StructureDefinition/ru-practitioner"
LAB = f"{CANONICAL}/StructureDefinition/ru-observation-lab"


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


@pytest.fixture(scope="module")
def resources() -> list[dict]:
    return [e["resource"] for b in Population(4, 21).bundles() for e in b["entry"]]


def _coding(concept: dict, system: str) -> dict | None:
    return next((c for c in concept.get("coding", ()) if c["system"] == system), None)


def test_practitioners_carry_the_packaged_position_codes_and_declare_ru_practitioner_only_when_fully_coded(resources):
    packaged = {_norm(d): c for c, d in terminology.concepts(V.POSITIONS)}
    specialties = {_norm(d): c for c, d in terminology.concepts(V.SPECIALTIES)}
    roles = {r["id"]: r for r in resources if r["resourceType"] == "PractitionerRole"}
    practitioners = [r for r in resources if r["resourceType"] == "Practitioner"]
    assert practitioners
    coded = 0
    for pr in practitioners:
        specialty, position = (q["code"] for q in pr["qualification"])
        want = packaged.get(_norm(position["text"]))
        got = _coding(position, V.POSITIONS)
        assert (got or {}).get("code") == want, (pr["id"], position)
        assert roles[f"{pr['id']}-role"]["code"] == [position]
        coded += got is not None
        fully = got is not None and _coding(specialty, V.SPECIALTIES) is not None
        assert (PRACTITIONER in pr.get("meta", {}).get("profile", [])) is fully
        assert (_coding(specialty, V.SPECIALTIES) is not None) is (_norm(specialty["text"]) in specialties)
    assert coded, "no generated position is packaged"  # терапевт 109, кардиолог 34, невролог 45, хирург 122, …


def test_glucose_creatinine_and_urea_carry_fsli_and_declare_the_lab_profile(resources):
    want = {"14749-6": "1003870", "14682-9": "1006477", "22664-7": "1007210"}
    seen = set()
    for r in resources:
        if r["resourceType"] != "Observation":
            continue
        loinc = next((c["code"] for c in r["code"]["coding"] if c["system"] == V.LOINC), None)
        fsli = _coding(r["code"], V.FSLI)
        declared = LAB in r.get("meta", {}).get("profile", [])
        assert declared is (fsli is not None), r["id"]
        if loinc in want:
            assert fsli and fsli["code"] == want[loinc] and declared, r["id"]
            assert terminology.validate_code(system=V.FSLI, code=fsli["code"], display=fsli.get("display")).ok is True
            seen.add(loinc)
    assert seen == set(want), seen
