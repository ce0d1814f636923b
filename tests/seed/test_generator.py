"""The generator on its own: determinism, valid identifiers, Russian names, plausible clinical content."""

from __future__ import annotations

import collections
import datetime as dt
import pathlib
import re
import statistics

import orjson
import pytest

from profiles_ru import identifiers
from seed import vocabulary
from seed.generator import Population, patronymic, surname

ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
CYRILLIC = re.compile(r"^[А-ЯЁ][а-яё]+(-[А-ЯЁ][а-яё]+)?$")


def _resources(pop: Population):
    for bundle in pop.bundles():
        for e in bundle["entry"]:
            yield e["resource"]


@pytest.fixture(scope="module")
def population() -> list[dict]:
    return list(_resources(Population(60, 7)))


def _codes(resource: dict, system: str) -> list[str]:
    return [c["code"] for c in resource.get("code", {}).get("coding", []) if c.get("system") == system]


def test_same_patients_and_seed_give_byte_identical_bundles():
    first = [orjson.dumps(b) for b in Population(6, 42).bundles()]
    again = [orjson.dumps(b) for b in Population(6, 42).bundles()]
    assert first == again
    other = [orjson.dumps(b) for b in Population(6, 43).bundles()]
    assert other[1] != first[1]


def test_patient_i_does_not_depend_on_how_many_are_generated():
    # streaming: patient i comes from its own random stream (and the directory, the same below 1,500 patients)
    assert orjson.dumps(Population(3, 5).patient_bundle(2)) == orjson.dumps(Population(40, 5).patient_bundle(2))
    assert Population(3, 5).patient_bundle(1)["entry"][0]["resource"]["id"] == "s5-pat-1"


def test_ids_are_stable_valid_and_unique(population):
    keys = [(r["resourceType"], r["id"]) for r in population]
    assert len(keys) == len(set(keys))
    assert all(ID.match(rid) for _, rid in keys)
    assert ("Patient", "s7-pat-0") in keys and ("Organization", "s7-org-0") in keys


def test_every_identifier_passes_its_check_digits(population):
    seen = collections.Counter()
    for r in population:
        for ident in r.get("identifier", []):
            row = identifiers.by_system(ident["system"], ident["value"])
            if row is None:
                continue
            assert identifiers.check(row.name, ident["value"]) is None, (r["resourceType"], r["id"], ident)
            seen[(r["resourceType"], row.name)] += 1
    patients = sum(1 for r in population if r["resourceType"] == "Patient")
    assert seen[("Patient", "snils")] == patients and seen[("Patient", "enp")] == patients
    assert seen[("Patient", "passport")] > 0
    assert seen[("Practitioner", "snils")] > 0
    assert seen[("Organization", "ogrn")] > 0 and seen[("Organization", "inn-legal")] > 0 and seen[("Organization", "frmo")] > 0
    frmo = [i["value"] for r in population for i in r.get("identifier", []) if i["system"] == identifiers.SYSTEMS["frmo"].system]
    assert all(v.startswith("1.2.643.5.1.13.13.12.2.") for v in frmo)


def test_coverage_carries_the_patients_enp_and_an_insurer(population):
    patients = {r["id"]: r for r in population if r["resourceType"] == "Patient"}
    insurers = {r["id"] for r in population if r["resourceType"] == "Organization" and r["id"].startswith("s7-smo-")}
    for cov in (r for r in population if r["resourceType"] == "Coverage"):
        patient = patients[cov["beneficiary"]["reference"].split("/")[1]]
        enp = next(i["value"] for i in patient["identifier"] if i["system"] == identifiers.SYSTEMS["enp"].system)
        assert cov["identifier"][0]["value"] == enp
        assert cov["payor"][0]["reference"].split("/")[1] in insurers
        assert cov["type"]["coding"][0] == {"system": identifiers.OMS_POLICY_TYPES, "code": "3", "display": "Полис ОМС единого образца"}


@pytest.mark.parametrize(
    "father, son, daughter",
    [("Иван", "Иванович", "Ивановна"), ("Сергей", "Сергеевич", "Сергеевна"), ("Николай", "Николаевич", "Николаевна"),
     ("Юрий", "Юрьевич", "Юрьевна"), ("Дмитрий", "Дмитриевич", "Дмитриевна"), ("Георгий", "Георгиевич", "Георгиевна"),
     ("Аркадий", "Аркадьевич", "Аркадьевна"), ("Игорь", "Игоревич", "Игоревна"), ("Илья", "Ильич", "Ильинична"),
     ("Никита", "Никитич", "Никитична"), ("Лев", "Львович", "Львовна"), ("Павел", "Павлович", "Павловна"),
     ("Пётр", "Петрович", "Петровна"), ("Михаил", "Михайлович", "Михайловна"), ("Яков", "Яковлевич", "Яковлевна"),
     ("Даниил", "Даниилович", "Данииловна"), ("Тимофей", "Тимофеевич", "Тимофеевна")],
)
def test_patronymic_from_the_fathers_name(father, son, daughter):
    assert patronymic(father, female=False) == son
    assert patronymic(father, female=True) == daughter


def test_every_father_name_declines_to_a_patronymic_of_each_gender():
    for name in vocabulary.MALE_NAMES:
        assert re.search(r"(ович|евич|ич)$", patronymic(name, False)), name
        assert re.search(r"(овна|евна|инична|ична)$", patronymic(name, True)), name


@pytest.mark.parametrize("male, female", [("Иванов", "Иванова"), ("Ильин", "Ильина"), ("Соловьёв", "Соловьёва"),
                                          ("Покровский", "Покровская"), ("Троицкий", "Троицкая"), ("Шевченко", "Шевченко")])
def test_surname_agrees_with_gender(male, female):
    assert surname(male, female=True) == female and surname(male, female=False) == male


def test_names_are_cyrillic_and_gender_consistent(population):
    people = [r for r in population if r["resourceType"] in ("Patient", "Practitioner")]
    for p in people:
        name = p["name"][0]
        first, middle = name["given"]
        assert all(CYRILLIC.match(x) for x in (name["family"], first, middle)), name
        assert name["text"] == f"{name['family']} {first} {middle}"
        if p["gender"] == "female":
            assert middle.endswith("на") and first in vocabulary.FEMALE_NAMES
        else:
            assert middle.endswith("ич") and first in vocabulary.MALE_NAMES
    assert {p["gender"] for p in people} == {"male", "female"}


def test_addresses_are_in_the_vocabularys_regions_with_their_postal_codes(population):
    cities = {city: (first, count) for region in vocabulary.REGIONS for city, first, count in region.cities}
    for r in population:
        for a in r.get("address", []):
            first, count = cities[a["city"]]
            assert first <= int(a["postalCode"]) < first + count and a["country"] == "RU"


def test_codes_come_from_the_vocabulary(population):
    icd = {c.code for c in vocabulary.CONDITIONS}
    loinc = {t.loinc for t in vocabulary.LAB_TESTS.values()} | {v[0] for v in vocabulary.VITALS.values()} | {
        p.loinc for p in vocabulary.PANELS.values() if p.loinc}
    for r in population:
        if r["resourceType"] == "Condition":
            assert set(_codes(r, vocabulary.ICD10)) <= icd and _codes(r, vocabulary.ICD10)
        if r["resourceType"] in ("Observation", "DiagnosticReport"):
            assert set(_codes(r, vocabulary.LOINC)) <= loinc
        for reason in r.get("reasonCode", []):
            assert {c["code"] for c in reason["coding"]} <= icd


@pytest.fixture(scope="module")
def cohort() -> list[list[dict]]:
    """400 patients' resources, each patient's list apart."""
    pop = Population(400, 3)
    return [pop.patient_resources(i) for i in range(pop.patients)]


def _series(cohort, icd10: str, loinc: str) -> tuple[dict[int, list], list]:
    """(time series of the LOINC test per patient with the condition, values of the others)."""
    sick, others = collections.defaultdict(list), []
    for i, res in enumerate(cohort):
        has = any(r["resourceType"] == "Condition" and _codes(r, vocabulary.ICD10) == [icd10] for r in res)
        for r in res:
            if r["resourceType"] == "Observation" and loinc in _codes(r, vocabulary.LOINC):
                (sick[i] if has else others).append((r["effectiveDateTime"], r["valueQuantity"]["value"]))
    return sick, [v for _, v in others]


def _mostly_rising(series: dict[int, list]) -> bool:
    long = [s for s in series.values() if len(s) >= 3]
    return bool(long) and sum(1 for s in long if max(s)[1] > min(s)[1]) >= len(long) / 2  # latest above earliest


def test_diabetics_hba1c_is_high_and_drifts_up(cohort):
    diabetic, others = _series(cohort, "E11.9", "4548-4")
    assert len(diabetic) >= 5
    assert statistics.mean(v for s in diabetic.values() for _, v in s) > 7.0  # above the 6.0 % upper limit
    assert _mostly_rising(diabetic)
    if others:
        assert statistics.mean(others) < 6.5


def test_ckd_creatinine_is_high_and_rises_and_egfr_is_low(cohort):
    ckd, others = _series(cohort, "N18.3", "14682-9")
    assert len(ckd) >= 3
    assert statistics.mean(v for s in ckd.values() for _, v in s) > statistics.mean(others) + 30
    assert _mostly_rising(ckd)
    egfr, egfr_others = _series(cohort, "N18.3", "62238-1")
    assert statistics.mean(v for s in egfr.values() for _, v in s) < 60 < statistics.mean(egfr_others)


def test_ldl_of_hypercholesterolaemia_is_high(cohort):
    high, others = _series(cohort, "E78.0", "22748-8")
    assert len(high) >= 5
    assert statistics.mean(v for s in high.values() for _, v in s) > statistics.mean(others) + 0.5


def test_lab_results_have_units_ranges_and_interpretations(population):
    labs = [r for r in population if r["resourceType"] == "Observation" and r["category"][0]["coding"][0]["code"] == "laboratory"]
    assert labs
    for r in labs:
        q = r["valueQuantity"]
        assert q["system"] == "http://unitsofmeasure.org" and q["code"]
        assert r["referenceRange"][0]["text"]
        flag = r["interpretation"][0]["coding"][0]["code"]
        high = r["referenceRange"][0].get("high", {}).get("value")
        assert flag in ("N", "H", "L") and (flag != "H" or q["value"] > high)


def test_reports_reference_results_of_the_same_patient(population):
    by_key = {(r["resourceType"], r["id"]): r for r in population}
    reports = [r for r in population if r["resourceType"] == "DiagnosticReport"]
    assert {c["coding"][0]["code"] for r in reports for c in r["category"]} >= {"LAB", "RAD"}
    for rep in reports:
        for ref in rep.get("result", []):
            obs = by_key[tuple(ref["reference"].split("/"))]
            assert obs["subject"] == rep["subject"]
        assert rep["conclusion"]


def test_consents_grant_exclude_and_revoke(population):
    consents = [r for r in population if r["resourceType"] == "Consent"]
    kinds = collections.Counter()
    for c in consents:
        assert c["scope"]["coding"][0]["code"] == "patient-privacy" and c["provision"]["type"] == "permit"
        if c["status"] == "inactive":
            kinds["revoked"] += 1
        elif c["provision"].get("provision"):
            kinds["with exclusion"] += 1
            assert c["provision"]["provision"][0]["type"] == "deny"
        else:
            kinds["grant"] += 1
    assert kinds["grant"] and kinds["with exclusion"] and kinds["revoked"], kinds


def test_vocabulary_md_is_current():
    path = pathlib.Path(vocabulary.__file__).with_name("vocabulary.md")
    assert path.read_text(encoding="utf-8") == vocabulary.markdown(), "regenerate it: python -m seed.vocabulary"


def test_every_icd10_code_and_name_of_the_vocabulary_is_in_the_packaged_terminology():
    terminology = pytest.importorskip("terminology")
    for cond in vocabulary.CONDITIONS:
        verdict = terminology.validate_code(valueset=f"{terminology.CANONICAL}/ValueSet/icd10", code=cond.code, display=cond.name)
        assert verdict.ok is True and not verdict.message, (cond.code, verdict)


def test_fsli_codes_are_those_the_terminology_maps_to_the_tests_loinc(population):
    terminology = pytest.importorskip("terminology")
    from seed.generator import fsli_by_loinc

    fsli = [(c["code"], r["code"]["coding"]) for r in population if r["resourceType"] == "Observation"
            for c in r["code"]["coding"] if c["system"] == vocabulary.FSLI]
    assert fsli, "no lab Observation carries an FSLI code"
    for code, codings in fsli:
        assert terminology.validate_code(valueset=f"{terminology.CANONICAL}/ValueSet/fsli", code=code).ok is True
        loinc = next(c["code"] for c in codings if c["system"] == vocabulary.LOINC)
        assert fsli_by_loinc()[loinc][0] == code


def test_people_never_share_an_identifier():
    from seed.generator import PATIENT_SNILS, unique

    assert len({unique(n, PATIENT_SNILS[1], 12345) for n in range(200_000)}) == 200_000
    assert len({unique(n, 900_000, 777) for n in range(200_000)}) == 200_000
    pop = Population(300, 9)
    values = collections.defaultdict(list)
    for r in _resources(pop):
        if r["resourceType"] in ("Patient", "Practitioner"):
            for ident in r["identifier"]:
                values[ident["system"]].append(ident["value"])
    assert len(values) == 3  # SNILS, ENP, passport
    for system, vals in values.items():
        assert len(vals) == len(set(vals)), system


def test_a_prescription_is_active_while_its_course_runs(cohort):
    from seed.generator import REFERENCE_DATE

    for res in cohort:
        for r in res:
            if r["resourceType"] != "MedicationRequest":
                continue
            acute = r["courseOfTherapyType"]["coding"][0]["code"] == "acute"
            recent = (REFERENCE_DATE - dt.date.fromisoformat(r["authoredOn"][:10])).days <= 10
            assert r["status"] == ("completed" if acute and not recent else "active"), r["id"]
