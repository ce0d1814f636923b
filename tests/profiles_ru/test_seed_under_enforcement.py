"""The demo data under FHIR_ENFORCE_RU_PROFILES=1: seed/demo.py's card and the demo population's first patients
(seed 1), each resource PUT on its own over HTTP to a server that validates every Patient, Practitioner,
Organization, Coverage, Encounter, DiagnosticReport, MedicationRequest and laboratory Observation against its RU
profile. What is refused is exactly what the packaged NSI codes cannot cover (terminology/data/SOURCES.md):
Practitioners (no public source names a medical-specialty code, 1.2.643.5.1.13.13.11.1066, for any of the seed's
specialties) and the lab tests without a public FSLI code — plus the demo card's own gaps, listed below."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from fhir_server.app import create_app
from tests.conftest import FHIRClient, make_settings

pytest.importorskip("seed.generator")

from seed.demo import DEMO_SEED, demo_resources  # noqa: E402
from seed.generator import Population  # noqa: E402

LOINC = "http://loinc.org"
FSLI = "urn:oid:1.2.643.5.1.13.13.11.1080"
PROFILED = {"Patient", "Practitioner", "Organization", "Coverage", "Encounter", "DiagnosticReport", "MedicationRequest"}
CONCEPTMAP = Path(__file__).resolve().parents[2] / "terminology" / "data" / "ConceptMap-fsli-to-loinc.json"

# the seed's lab tests (LOINC) that no public source gives an FSLI code for: their Observations cannot be ru-observation-lab
NO_FSLI_CODE = {
    "4537-7": "СОЭ", "4548-4": "HbA1c", "62238-1": "СКФ (CKD-EPI), расчётная", "1742-6": "АЛТ", "1920-8": "АСТ",
    "14631-6": "билирубин общий", "2823-3": "калий", "2951-2": "натрий", "14933-6": "мочевая кислота", "1988-5": "СРБ",
    "14647-2": "холестерин общий", "22748-8": "ЛПНП", "14646-4": "ЛПВП", "14927-8": "триглицериды", "3016-3": "ТТГ",
    "14920-3": "Т4 свободный", "2276-4": "ферритин", "14798-3": "железо", "6301-6": "МНО", "14957-5": "микроальбумин в моче",
    "2857-1": "ПСА", "5811-5": "относительная плотность мочи", "2888-6": "белок в моче",
    "2345-7": "глюкоза, массовая концентрация (демо-карта; ФСЛИ 1003870 — молярная)",
}
# the fixed demo card (seed/demo.py) declares no profile and is not written to them: under enforcement these are refused
DEMO_CARD_GAPS = {
    "demo-org-1": "no OGRN, FRMO OID or insurer code",
    "demo-practitioner-1": "no specialty code (1066)", "demo-practitioner-2": "no specialty code (1066)",
    "demo-report-1": "no category",
    "demo-obs-glucose": "LOINC 2345-7: no FSLI code", "demo-obs-hba1c": "LOINC 4548-4: no FSLI code",
}


def _fsli_by_loinc() -> set[str]:
    cm = json.loads(CONCEPTMAP.read_text(encoding="utf-8"))
    return {t["code"] for g in cm["group"] for e in g["element"] for t in e.get("target", ())}


def _kind(r: dict) -> str:
    if r["resourceType"] != "Observation":
        return r["resourceType"]
    cats = {c.get("code") for cc in r.get("category", []) for c in cc.get("coding", [])}
    return "Observation (laboratory)" if "laboratory" in cats else "Observation (other)"


@pytest.fixture
def enforcing_app():
    app = create_app(make_settings(load_definitions=True, enforce_ru_profiles=True))
    yield app
    app.config["FHIR_STORE"].engine.close()


def test_demo_data_under_enforced_ru_profiles(enforcing_app):
    client = FHIRClient(enforcing_app.test_client())
    pop = Population(3, DEMO_SEED)
    resources = list(demo_resources()) + [e["resource"] for b in pop.bundles() for e in b["entry"]]
    mapped = _fsli_by_loinc()
    passed, refused, reasons = collections.Counter(), collections.Counter(), {}
    for r in resources:
        out = client.put(f"/fhir/{r['resourceType']}/{r['id']}", r)
        kind = _kind(r)
        if out.status_code in (200, 201):
            passed[kind] += 1
            continue
        assert out.status_code == 422, out.get_data(as_text=True)
        refused[kind] += 1
        reasons[r["id"]] = " ".join(i.get("diagnostics", "") for i in out.get_json()["issue"])

    # nothing of a type without an RU profile is refused, and every refusal is one of the known gaps
    assert not {k for k in refused if k not in PROFILED and k != "Observation (laboratory)"}, refused
    for r in resources:
        if r["id"] not in reasons:
            continue
        if r["id"] in DEMO_CARD_GAPS:
            continue
        if r["resourceType"] == "Practitioner":
            assert "qualification" in reasons[r["id"]], reasons[r["id"]]
            continue
        loincs = {c["code"] for c in r["code"]["coding"] if c["system"] == LOINC}
        assert r["resourceType"] == "Observation" and loincs <= set(NO_FSLI_CODE), (r["id"], reasons[r["id"]])
    assert {rid for rid in reasons if rid.startswith("demo-")} <= set(DEMO_CARD_GAPS)  # a gap fixed in the card may pass

    # the generated population: every resource of a profiled type passes except Practitioners and the labs without FSLI
    generated = [r for r in resources if not r["id"].startswith("demo-")]
    for r in generated:
        kind = _kind(r)
        if kind == "Practitioner":
            assert r["id"] in reasons  # no 1066 code for any seed specialty
        elif kind == "Observation (laboratory)":
            codings = r["code"]["coding"]
            has_fsli = any(c["system"] == FSLI for c in codings) or any(c["system"] == LOINC and c["code"] in mapped for c in codings)
            assert (r["id"] in reasons) is not has_fsli, (r["id"], reasons.get(r["id"]))
        else:
            assert r["id"] not in reasons, (r["id"], reasons[r["id"]])
    by_kind = collections.Counter(_kind(r) for r in generated)
    refused_generated = collections.Counter(_kind(r) for r in generated if r["id"] in reasons)
    assert refused_generated["Practitioner"] == by_kind["Practitioner"] > 0
    assert 0 < refused_generated["Observation (laboratory)"] < by_kind["Observation (laboratory)"]
    assert set(refused_generated) == {"Practitioner", "Observation (laboratory)"}
    for kind in ("Patient", "Organization", "Coverage", "Encounter", "DiagnosticReport", "MedicationRequest"):
        assert passed[kind] >= by_kind[kind] > 0, kind
    # the numbers of this deterministic population (seed 1, 3 patients): of 248 generated resources 188 pass; refused are
    # its 30 Practitioners and 30 of its 64 lab Observations; of the demo card's 12 resources 6 pass
    assert (len(generated), len(generated) - sum(refused_generated.values())) == (248, 188)
    assert refused_generated == {"Practitioner": 30, "Observation (laboratory)": 30}
    assert by_kind["Observation (laboratory)"] == 64
    assert len(resources) - len(generated) - sum(1 for rid in reasons if rid.startswith("demo-")) == 6
    # glucose, creatinine and urea now carry FSLI codes and pass, beside the blood count
    lab_loincs_passing = {c["code"] for r in generated if _kind(r) == "Observation (laboratory)" and r["id"] not in reasons
                          for c in r["code"]["coding"] if c["system"] == LOINC}
    assert {"14749-6", "14682-9", "22664-7", "718-7"} <= lab_loincs_passing, lab_loincs_passing
