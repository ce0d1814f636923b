#!/usr/bin/env python3
"""Search benchmark (not a test): latency and throughput of representative searches by store size.

1. Data: a deterministic (seeded) Synthea-like population. Organizations and Practitioners;
   per patient a Patient (Russian name, gender, birthDate, SNILS identifier
   `urn:oid:1.2.643.100.3`), Encounters (period, status, class, type, subject, participant,
   serviceProvider), Observations (one of 30 LOINC codes, category, status,
   effectiveDateTime over 2020-2024, valueQuantity in UCUM units, subject, encounter,
   performer), DiagnosticReports whose `result` lists a panel's Observations,
   MedicationRequests, and one Provenance targeting the Patient and its Encounters and
   DiagnosticReports. About 6% of the patients are "chronic": many encounters with
   glucose/HbA1c series, so one (patient, code) has several pages of results.
2. Load: in-process through the storage layer exactly as the server writes
   (`store.atomic(... unit.write(rtype, id, resource, "POST", None, index_resource(resource, base)))`,
   one atomic unit per patient), into the embedded (mongomock) store of an app made by
   `create_app`. The store grows in place: the data of the first size is a prefix of the
   next one's.
3. Queries through the Flask test client of that app (no HTTP socket, one sequential
   client), each repeated with parameter values drawn from the stored data, bounded by a
   repetition count and a time limit: p50/p95 latency and requests/s per size, the ratio of
   p50 between the largest and the smallest size, and per query the documents the
   embedded engine examined (an untimed diagnostic request: how many collection scans,
   how many candidates from the engine's inverted index).

Figures go to stdout and to the section of BENCHMARKS.md this script owns (between the
`bench_search` markers; appended when absent, replaced when present).

    .venv/bin/python bench/bench_search.py [--sizes 10000,100000] [--reps 100] [--query-time 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import pathlib
import random
import shlex
import sys
import time
import uuid
from collections import Counter
from urllib.parse import quote

import orjson

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import report  # noqa: E402  (bench/report.py: the BENCHMARKS.md sections)

BASE = "http://localhost/fhir"  # the Flask test client's base URL

SNILS = "urn:oid:1.2.643.100.3"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PART_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
PROV_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

# -- vocabularies --------------------------------------------------------------------------------
FAMILIES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров",
            "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев",
            "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев"]
GIVEN_M = ["Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Максим", "Евгений", "Иван", "Михаил", "Артём",
           "Николай", "Владимир", "Павел", "Юрий", "Олег", "Виктор", "Игорь", "Роман", "Константин", "Григорий"]
GIVEN_F = ["Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Анна", "Мария", "Светлана", "Екатерина", "Юлия",
           "Марина", "Галина", "Людмила", "Дарья", "Анастасия", "Вера", "Надежда", "Ксения", "Полина", "Софья"]
# Father's name -> (patronymic of a son, of a daughter)
PATRONYMICS = [("Александрович", "Александровна"), ("Сергеевич", "Сергеевна"), ("Дмитриевич", "Дмитриевна"),
               ("Андреевич", "Андреевна"), ("Алексеевич", "Алексеевна"), ("Иванович", "Ивановна"),
               ("Михайлович", "Михайловна"), ("Николаевич", "Николаевна"), ("Владимирович", "Владимировна"),
               ("Павлович", "Павловна"), ("Юрьевич", "Юрьевна"), ("Викторович", "Викторовна"), ("Петрович", "Петровна")]
CITIES = ["Москва", "Санкт-Петербург", "Казань", "Новосибирск", "Екатеринбург", "Нижний Новгород", "Самара", "Пермь"]

# LOINC code -> (display, UCUM code, low, high, decimals, category)
LOINC_CODES = {
    "8302-2": ("Body Height", "cm", 50, 200, 1, "vital-signs"),
    "29463-7": ("Body Weight", "kg", 3, 150, 1, "vital-signs"),
    "39156-5": ("Body mass index (BMI) [Ratio]", "kg/m2", 15, 40, 1, "vital-signs"),
    "8480-6": ("Systolic blood pressure", "mm[Hg]", 90, 180, 0, "vital-signs"),
    "8462-4": ("Diastolic blood pressure", "mm[Hg]", 55, 110, 0, "vital-signs"),
    "8867-4": ("Heart rate", "/min", 50, 120, 0, "vital-signs"),
    "9279-1": ("Respiratory rate", "/min", 12, 24, 0, "vital-signs"),
    "8310-5": ("Body temperature", "Cel", 35.8, 39.5, 1, "vital-signs"),
    "59408-5": ("Oxygen saturation in Arterial blood by Pulse oximetry", "%", 90, 100, 0, "vital-signs"),
    "72514-3": ("Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}", 0, 10, 0, "survey"),
    "2339-0": ("Glucose [Mass/volume] in Blood", "mg/dL", 70, 250, 0, "laboratory"),
    "4548-4": ("Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 11, 1, "laboratory"),
    "2093-3": ("Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 130, 300, 0, "laboratory"),
    "2571-8": ("Triglycerides", "mg/dL", 50, 400, 0, "laboratory"),
    "18262-6": ("Low Density Lipoprotein Cholesterol", "mg/dL", 50, 200, 0, "laboratory"),
    "2085-9": ("High Density Lipoprotein Cholesterol", "mg/dL", 30, 90, 0, "laboratory"),
    "38483-4": ("Creatinine", "mg/dL", 0.5, 2.0, 2, "laboratory"),
    "6299-2": ("Urea Nitrogen", "mg/dL", 7, 30, 0, "laboratory"),
    "2947-0": ("Sodium", "mmol/L", 133, 147, 0, "laboratory"),
    "6298-4": ("Potassium", "mmol/L", 3.3, 5.3, 1, "laboratory"),
    "2069-3": ("Chloride", "mmol/L", 96, 110, 0, "laboratory"),
    "20565-8": ("Carbon Dioxide", "mmol/L", 20, 31, 0, "laboratory"),
    "49765-1": ("Calcium", "mg/dL", 8.4, 10.5, 1, "laboratory"),
    "718-7": ("Hemoglobin [Mass/volume] in Blood", "g/dL", 10, 18, 1, "laboratory"),
    "4544-3": ("Hematocrit [Volume Fraction] of Blood", "%", 30, 54, 1, "laboratory"),
    "6690-2": ("Leukocytes [#/volume] in Blood", "10*3/uL", 3.5, 12, 1, "laboratory"),
    "789-8": ("Erythrocytes [#/volume] in Blood", "10*6/uL", 3.8, 6.2, 2, "laboratory"),
    "777-3": ("Platelets [#/volume] in Blood", "10*3/uL", 150, 450, 0, "laboratory"),
    "1742-6": ("Alanine aminotransferase", "U/L", 7, 60, 0, "laboratory"),
    "1920-8": ("Aspartate aminotransferase", "U/L", 8, 50, 0, "laboratory"),
}
VITALS = [c for c, v in LOINC_CODES.items() if v[5] != "laboratory"]
PANELS = {  # DiagnosticReport code -> (display, member codes)
    "51990-0": ("Basic metabolic panel - Blood", ["2339-0", "38483-4", "6299-2", "2947-0", "6298-4", "2069-3", "20565-8", "49765-1"]),
    "57698-3": ("Lipid panel with direct LDL - Serum or Plasma", ["2093-3", "2571-8", "18262-6", "2085-9"]),
    "58410-2": ("CBC panel - Blood by Automated count", ["718-7", "4544-3", "6690-2", "789-8", "777-3"]),
    "24325-3": ("Hepatic function panel - Serum or Plasma", ["1742-6", "1920-8"]),
}
ENCOUNTER_TYPES = [("185349003", "Encounter for check up (procedure)"), ("162673000", "General examination of patient (procedure)"),
                   ("185345009", "Encounter for symptom (procedure)"), ("390906007", "Follow-up encounter (procedure)")]
MEDS = [("A10BA02", "Метформин 850 мг"), ("C09AA05", "Рамиприл 5 мг"), ("C10AA05", "Аторвастатин 20 мг"),
        ("C07AB07", "Бисопролол 5 мг"), ("N02BE01", "Парацетамол 500 мг"), ("J01CA04", "Амоксициллин 500 мг"),
        ("M01AE01", "Ибупрофен 200 мг"), ("R06AX13", "Лоратадин 10 мг")]
EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=3)))
SPAN_DAYS = 5 * 365  # effective dates over 2020-2024


def snils(rnd: random.Random) -> str:
    """An 11-digit SNILS with a valid check number (numbers above 001-001-998 carry one)."""
    body = f"{rnd.randrange(1_001_999, 999_999_999):09d}"
    s = sum(int(c) * w for c, w in zip(body, range(9, 0, -1)))
    check = s if s < 100 else 0 if s in (100, 101) else s % 101
    return body + f"{0 if check == 100 else check:02d}"


def fmt_time(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S+03:00")


def ref(rtype: str, rid: str, display: str | None = None) -> dict:
    out = {"reference": f"{rtype}/{rid}"}
    if display:
        out["display"] = display
    return out


# -- the population ------------------------------------------------------------------------------
class Population:
    """A deterministic stream of blocks (lists of resources, one atomic unit each).

    Besides the resources it keeps what the queries draw their parameter values from,
    for everything yielded so far (= stored, once the caller wrote the block).
    """

    CHRONIC_SHARE = 0.06

    def __init__(self, seed: int):
        self.rnd = random.Random(seed)
        self.practitioners: list[tuple[str, str]] = []  # (id, display)
        self.organizations: list[str] = []
        self.patients: list[tuple[str, str, str]] = []  # (id, family, given)
        self.pairs: list[tuple[str, str]] = []  # (patient, code), one per Observation
        self.pair_count: Counter = Counter()
        self.walks: list[tuple[str, str]] = []  # (patient, code) with more than one page of 20
        self.families: set[str] = set()
        self.n_patients = 0
        self._block_pairs: list[tuple[str, str]] = []  # (patient, code) of the block being built

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rnd.getrandbits(128), version=4))

    def blocks(self):
        yield [self.organization() for _ in range(5)] + [self.practitioner() for _ in range(20)]
        while True:
            extra = []
            if self.n_patients and self.n_patients % 15 == 0:
                extra.append(self.practitioner())
            if self.n_patients and self.n_patients % 150 == 0:
                extra.append(self.organization())
            yield extra + self.patient_block()

    def organization(self) -> dict:
        rid = self.uid()
        n = len(self.organizations) + 1
        self.organizations.append(rid)
        city = self.rnd.choice(CITIES)
        return {"resourceType": "Organization", "id": rid, "active": True,
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "prov",
                                      "display": "Healthcare Provider"}]}],
                "name": f"ГБУЗ «Городская поликлиника № {n}»", "address": [{"city": city, "country": "RU"}]}

    def practitioner(self) -> dict:
        rid = self.uid()
        male = self.rnd.random() < 0.5
        family = self.rnd.choice(FAMILIES) + ("" if male else "а")
        given = self.rnd.choice(GIVEN_M if male else GIVEN_F)
        patr = self.rnd.choice(PATRONYMICS)[0 if male else 1]
        self.practitioners.append((rid, f"{family} {given} {patr}"))
        return {"resourceType": "Practitioner", "id": rid, "active": True,
                "identifier": [{"system": SNILS, "value": snils(self.rnd)}],
                "name": [{"use": "official", "family": family, "given": [given, patr]}],
                "gender": "male" if male else "female"}

    def patient_block(self) -> list[dict]:
        rnd = self.rnd
        self.n_patients += 1
        pid = self.uid()
        male = rnd.random() < 0.5
        family = rnd.choice(FAMILIES) + ("" if male else "а")
        given = rnd.choice(GIVEN_M if male else GIVEN_F)
        patr = rnd.choice(PATRONYMICS)[0 if male else 1]
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rnd.randrange(0, 80 * 365))
        self.patients.append((pid, family, given))
        self.families.add(family)
        out: list[dict] = [{
            "resourceType": "Patient", "id": pid,
            "identifier": [{"system": SNILS, "value": snils(rnd)}],
            "active": True,
            "name": [{"use": "official", "family": family, "given": [given, patr]}],
            "gender": "male" if male else "female",
            "birthDate": birth.isoformat(),
            "address": [{"city": rnd.choice(CITIES), "country": "RU"}],
        }]
        chronic = rnd.random() < self.CHRONIC_SHARE
        n_enc = rnd.randint(20, 40) if chronic else rnd.randint(1, 5)
        gp = rnd.choice(self.practitioners)
        org = rnd.choice(self.organizations)
        starts = sorted(EPOCH + dt.timedelta(days=rnd.randrange(SPAN_DAYS), hours=rnd.randrange(8, 18), minutes=rnd.randrange(60))
                        for _ in range(n_enc))
        targets = [ref("Patient", pid)]
        for start in starts:
            eid = self.uid()
            doc = gp if rnd.random() < 0.7 else rnd.choice(self.practitioners)
            cls = rnd.choices(["AMB", "IMP", "EMER"], weights=[8, 1, 1])[0]
            etype = rnd.choice(ENCOUNTER_TYPES)
            end = start + dt.timedelta(minutes=rnd.randrange(15, 60)) if cls != "IMP" else start + dt.timedelta(days=rnd.randrange(1, 10))
            out.append({
                "resourceType": "Encounter", "id": eid, "status": "finished",
                "class": {"system": ACT_CODE, "code": cls},
                "type": [{"coding": [{"system": SNOMED, "code": etype[0], "display": etype[1]}], "text": etype[1]}],
                "subject": ref("Patient", pid, f"{family} {given}"),
                "participant": [{"type": [{"coding": [{"system": PART_TYPE, "code": "PPRF", "display": "primary performer"}]}],
                                 "individual": ref("Practitioner", doc[0], doc[1])}],
                "period": {"start": fmt_time(start), "end": fmt_time(end)},
                "serviceProvider": ref("Organization", org),
            })
            targets.append(ref("Encounter", eid))
            at = start + dt.timedelta(minutes=5)
            for code in rnd.sample(VITALS, rnd.randint(2, 5)):
                out.append(self.observation(pid, eid, doc[0], code, at))
            if chronic:
                out.append(self.observation(pid, eid, doc[0], "2339-0", at))  # fasting glucose
                out.append(self.observation(pid, eid, doc[0], "2339-0", at + dt.timedelta(hours=2)))  # postprandial
                out.append(self.observation(pid, eid, doc[0], "4548-4", at))
            if rnd.random() < 0.3:
                panel = rnd.choice(list(PANELS))
                display, members = PANELS[panel]
                obs = [self.observation(pid, eid, doc[0], c, at + dt.timedelta(hours=1)) for c in members]
                out.extend(obs)
                rid = self.uid()
                out.append({
                    "resourceType": "DiagnosticReport", "id": rid, "status": "final",
                    "category": [{"coding": [{"system": V2_0074, "code": "LAB", "display": "Laboratory"}]}],
                    "code": {"coding": [{"system": LOINC, "code": panel, "display": display}], "text": display},
                    "subject": ref("Patient", pid), "encounter": ref("Encounter", eid),
                    "effectiveDateTime": fmt_time(at + dt.timedelta(hours=1)),
                    "issued": fmt_time(at + dt.timedelta(hours=5)).replace("+03:00", ".000+03:00"),
                    "performer": [ref("Organization", org)],
                    "result": [ref("Observation", o["id"]) for o in obs],
                })
                targets.append(ref("DiagnosticReport", rid))
            if (chronic and rnd.random() < 0.3) or rnd.random() < 0.25:
                med = MEDS[0] if chronic else rnd.choice(MEDS)
                out.append({
                    "resourceType": "MedicationRequest", "id": self.uid(),
                    "status": rnd.choice(["active", "completed", "completed", "stopped"]), "intent": "order",
                    "medicationCodeableConcept": {"coding": [{"system": ATC, "code": med[0], "display": med[1]}], "text": med[1]},
                    "subject": ref("Patient", pid), "encounter": ref("Encounter", eid),
                    "authoredOn": fmt_time(start + dt.timedelta(minutes=20)),
                    "requester": ref("Practitioner", doc[0], doc[1]),
                    "dosageInstruction": [{"text": "по 1 таблетке 2 раза в день"}],
                })
        out.append({
            "resourceType": "Provenance", "id": self.uid(), "target": targets,
            "recorded": fmt_time(starts[-1] + dt.timedelta(days=1)).replace("+03:00", ".000+03:00"),
            "agent": [{"type": {"coding": [{"system": PROV_TYPE, "code": "author", "display": "Author"}]},
                       "who": ref("Organization", org)}],
        })
        for (p, c), n in Counter(self._block_pairs).items():
            before = self.pair_count[(p, c)]
            self.pair_count[(p, c)] = before + n
            if before + n > 20 >= before:
                self.walks.append((p, c))
        self.pairs.extend(self._block_pairs)
        self._block_pairs = []
        return out

    def observation(self, pid: str, eid: str, performer: str, code: str, at: dt.datetime) -> dict:
        rnd = self.rnd
        display, unit, low, high, dec, cat = LOINC_CODES[code]
        value = round(rnd.uniform(low, high), dec)
        if dec == 0:
            value = int(value)
        self._block_pairs.append((pid, code))
        return {
            "resourceType": "Observation", "id": self.uid(),
            "status": "final" if rnd.random() < 0.97 else "amended",
            "category": [{"coding": [{"system": OBS_CAT, "code": cat}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "subject": ref("Patient", pid), "encounter": ref("Encounter", eid),
            "effectiveDateTime": fmt_time(at), "issued": fmt_time(at + dt.timedelta(hours=1)).replace("+03:00", ".000+03:00"),
            "performer": [ref("Practitioner", performer)],
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        }


# -- loading ---------------------------------------------------------------------------------------
def load_until(store, blocks, target: int, counts: Counter) -> dict:
    """Write blocks (one atomic unit each) until `target` resources are stored in total."""
    from fhir_server.search import index_resource

    n0 = sum(counts.values())
    t0 = time.perf_counter()
    while sum(counts.values()) < target:
        block = next(blocks)

        def run(unit, block=block):
            for res in block:
                unit.write(res["resourceType"], res["id"], res, "POST", None, index_resource(res, BASE))
            return len(block)

        store.atomic(run)
        counts.update(r["resourceType"] for r in block)
    wall = time.perf_counter() - t0
    n = sum(counts.values()) - n0
    return {"stored": n, "wall": wall, "rate": n / wall if wall > 0 else 0.0}


# -- what the embedded engine examines (diagnostic, untimed) --------------------------------------
class ScanProbe:
    """Counts, per collection, full scans and documents examined by the embedded engine.

    Mirrors the candidate logic of fhir_server/storage/engine.py's patched
    `_iter_documents`: an `_id` pin, else the inverted index's candidates, else a scan.
    """

    def __init__(self):
        self.scans: Counter = Counter()
        self.examined = 0
        self.finds = 0

    def __enter__(self):
        from mongomock.collection import Collection

        self._orig = Collection._iter_documents
        probe, orig = self, self._orig

        def counted(coll, filter):  # noqa: A002 - mongomock's signature
            store = coll._store
            size = len(store)
            probe.finds += 1
            examined = None
            if type(filter) is dict and "_id" in filter:
                ident = filter["_id"]
                if type(ident) is str:
                    examined = 1 if ident in store else 0
                elif type(ident) is dict and len(ident) == 1 and type(ident.get("$in")) in (list, tuple) \
                        and all(type(k) is str for k in ident["$in"]):
                    examined = sum(1 for k in set(ident["$in"]) if k in store)
            elif type(filter) is dict:
                accel = getattr(store, "fhir_search_values", None)
                ids = accel.candidates(filter) if accel is not None else None
                if ids is not None:
                    examined = sum(1 for k in ids if k in store)
            if examined is None:
                examined = size
                if size:
                    probe.scans[coll.name] += 1
            probe.examined += examined
            return orig(coll, filter)

        Collection._iter_documents = counted
        return self

    def __exit__(self, *exc):
        from mongomock.collection import Collection

        Collection._iter_documents = self._orig
        return False

    def describe(self) -> str:
        scans = ", ".join(f"{t}x{n}" if n > 1 else t for t, n in sorted(self.scans.items())) or "none"
        return f"{self.examined:,} docs examined; full scans: {scans}"


# -- queries ---------------------------------------------------------------------------------------
def q(value: str) -> str:
    return quote(value, safe=":/|,$-")


def quarter(rnd: random.Random) -> tuple[str, str]:
    y, qn = rnd.randrange(2020, 2025), rnd.randrange(4)
    lo = dt.date(y, 1 + 3 * qn, 1)
    hi = dt.date(y + (qn == 3), 1 + 3 * ((qn + 1) % 4), 1)
    return lo.isoformat(), hi.isoformat()


def queries(pop: Population) -> list[dict]:
    """Each query: a name, the URL shape shown in the report, and a URL maker drawing from the data."""
    pats = pop.patients
    fams = sorted(pop.families)
    top = [(p, c) for (p, c), n in pop.pair_count.items() if n > 20] or [max(pop.pair_count, key=pop.pair_count.get)]
    top.sort()
    return [
        {"key": "patient+code", "shape": "Observation?patient=X&code=http://loinc.org|Y",
         "url": lambda r: "/fhir/Observation?patient={}&code={}".format(*(lambda pc: (pc[0], q(f"{LOINC}|{pc[1]}")))(r.choice(pop.pairs)))},
        {"key": "date range", "shape": "Observation?date=ge2023-01-01&date=lt2023-04-01&_count=50", "note": "(a random quarter of 2020-2024)",
         "url": lambda r: "/fhir/Observation?date=ge{}&date=lt{}&_count=50".format(*quarter(r))},
        {"key": "chained", "shape": "Observation?subject:Patient.name=Z", "note": "(Z a family name)",
         "url": lambda r: f"/fhir/Observation?subject:Patient.name={q(r.choice(fams))}"},
        {"key": "_include", "shape": "Encounter?patient=X&_include=Encounter:participant",
         "url": lambda r: f"/fhir/Encounter?patient={r.choice(pats)[0]}&_include=Encounter:participant"},
        {"key": "_revinclude", "shape": "Patient?_id=X&_revinclude=Observation:subject",
         "url": lambda r: f"/fhir/Patient?_id={r.choice(pats)[0]}&_revinclude=Observation:subject"},
        {"key": "_revinclude Provenance", "shape": "Patient?_id=X&_revinclude=Provenance:target", "note": "(extra)",
         "url": lambda r: f"/fhir/Patient?_id={r.choice(pats)[0]}&_revinclude=Provenance:target"},
        {"key": "name prefix", "shape": "Patient?name=prefix", "note": "(first 3 letters of a family or given name)",
         "url": lambda r: f"/fhir/Patient?name={q((r.choice(pats)[1] if r.random() < 0.5 else r.choice(pats)[2])[:3])}"},
        {"key": "paging", "walk": True,
         "shape": "Observation?patient=X&code=http://loinc.org|Y&_sort=-date&_count=20",
         "note": "then every `next` link to the end (X, Y: a patient and code with more than 20 Observations)",
         "url": lambda r: "/fhir/Observation?patient={}&code={}&_sort=-date&_count=20".format(*(lambda pc: (pc[0], q(f"{LOINC}|{pc[1]}")))(r.choice(top)))},
        {"key": "code sorted", "shape": "Observation?code=http://loinc.org|Y&_sort=-date&_count=20", "note": "(first page, all patients; extra)",
         "url": lambda r: f"/fhir/Observation?code={q(LOINC + '|' + r.choice(list(LOINC_CODES)))}&_sort=-date&_count=20"},
        {"key": "$everything", "shape": "Patient/X/$everything", "note": "(first page)",
         "url": lambda r: f"/fhir/Patient/{r.choice(pats)[0]}/$everything"},
    ]


def fetch(client, url: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = client.get(url, headers={"Accept": "application/fhir+json"})
    data = r.get_data()
    lat = time.perf_counter() - t0
    if r.status_code != 200:
        raise RuntimeError(f"GET {url} -> {r.status_code}: {data[:300]!r}")
    return lat, orjson.loads(data)


def next_link(b: dict) -> str | None:
    return next((ln["url"] for ln in b.get("link", []) if ln["relation"] == "next"), None)


def count_entries(b: dict) -> tuple[int, int]:
    es = b.get("entry", [])
    m = sum(1 for e in es if e.get("search", {}).get("mode") == "match")
    return m, len(es) - m


def run_query(client, spec: dict, reps: int, time_limit: float, seed: int) -> dict:
    rnd = random.Random(seed)
    walk = spec.get("walk", False)

    def one(url):
        """One repetition: [(latency, bundle)] (a walk: every page)."""
        out = []
        while url:
            lat, b = fetch(client, url)
            out.append((lat, b))
            url = next_link(b) if walk else None
            if len(out) > 1000:
                raise RuntimeError("paging does not end")
        return out

    # Warm-up (not counted), then the diagnostic pass (not counted: the probe costs time).
    one(spec["url"](random.Random(seed - 1)))
    diag_url = spec["url"](random.Random(seed - 2))
    with ScanProbe() as probe:
        diag = one(diag_url)
    lat, per_rep, matches, included, totals, pages = [], [], [], [], [], []
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    while len(per_rep) < reps and (not per_rep or time.perf_counter() - t_start < time_limit):
        got = one(spec["url"](rnd))
        per_rep.append(sum(x for x, _ in got))
        pages.append(len(got))
        for x, b in got:
            lat.append(x)
            m, i = count_entries(b)
            matches.append(m)
            included.append(i)
        totals.append(got[0][1].get("total"))
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start
    lat.sort()
    per_rep.sort()
    return {
        "requests": len(lat), "reps": len(per_rep), "wall": wall,
        "p50": 1000 * report.pct(lat, 50), "p95": 1000 * report.pct(lat, 95), "rate": len(lat) / wall if wall > 0 else 0.0,
        "rep_p50": 1000 * report.pct(per_rep, 50), "pages": sum(pages) / len(pages),
        "matches": sum(matches) / len(matches), "included": sum(included) / len(included),
        "total": sum(t for t in totals if t is not None) / max(1, sum(1 for t in totals if t is not None)),
        "probe": probe.describe(), "probe_pages": len(diag), "examined": probe.examined, "scans": dict(probe.scans),
        "capped": len(per_rep) < reps,
        "cpu_share": cpu / wall if wall > 0 else 1.0,  # < 1: the process waited for a CPU (other load on the machine)
    }


# -- process and machine facts -----------------------------------------------------------------------
def proc_status_kb(field: str) -> int | None:
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def loadavg() -> str:
    try:
        return " / ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# -- report ------------------------------------------------------------------------------------------
def human(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else f"{n:,}"


def render(facts: dict, command: str, seed: int, stages: list[dict], specs: list[dict], elapsed: float, notes: list[str]) -> str:
    first, last = stages[0], stages[-1]
    lines = [
        "## Search benchmark: latency by store size",
        "",
        f"Command: `{command}` (from the repository root)  ",
        f"Machine: `nproc` = {facts['nproc']}, CPU `{facts['cpu']}`, RAM {facts['mem']}, Python {facts['python']}  ",
        f"Date: {facts['date']}, commit {facts['commit']}; whole run {elapsed / 60:.1f} min  ",
        f"Data: synthetic Synthea-like population (seed {seed}), grown in place; each size's data is a prefix of the next  ",
        "Store: embedded mongomock store of `create_app` (its inverted index of search values on), loaded in-process "
        "through `store.atomic` + `Unit.write` + `index_resource`, one atomic unit per patient  ",
        "Client: the Flask test client of the same app, one sequential client, no HTTP socket; requests/s = requests / wall time",
        "",
        "| Store | Resources | Patients | Observations | Encounters | Other | Load (this step) | Process VmHWM after queries "
        "| CPU share of the queries (min) | Load average before / after the queries |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in stages:
        c = s["counts"]
        other = sum(c.values()) - c["Patient"] - c["Observation"] - c["Encounter"]
        lines.append(f"| {human(s['target'])} | {s['resources']:,} | {c['Patient']:,} | {c['Observation']:,} | {c['Encounter']:,} | "
                     f"{other:,} | {s['load']['stored']:,} in {s['load']['wall']:.1f} s ({s['load']['rate']:,.0f}/s) | "
                     f"{s['hwm_kb'] / 1024:,.0f} MB | {min(r['cpu_share'] for r in s['results'].values()):.2f} | "
                     f"{s['loadavg'][0]} -> {s['loadavg'][1]} |")
    lines += [""]
    cols = " | ".join(f"{human(s['target'])}: p50 / p95 ms | {human(s['target'])}: req/s" for s in stages)
    sep = " | ".join("---: | ---:" for _ in stages)
    ratio_head = f" | p50 {human(last['target'])} / {human(first['target'])}" if len(stages) > 1 else ""
    lines += [f"| Query | {cols}{ratio_head} | Results per request ({human(last['target'])}) | Engine work per request ({human(last['target'])}) |",
              f"| --- | {sep}{' | ---:' if len(stages) > 1 else ''} | --- | --- |"]
    for spec in specs:
        k = spec["key"]
        cells = []
        for s in stages:
            r = s["results"].get(k)
            cells.append(f"{r['p50']:.1f} / {r['p95']:.1f} | {r['rate']:,.1f}" if r else "- | -")
        r_last, r_first = last["results"].get(k), first["results"].get(k)
        ratio = ""
        if len(stages) > 1:
            ratio = f" | {r_last['p50'] / r_first['p50']:.1f}x" if r_last and r_first and r_first["p50"] > 0 else " | -"
        res = "-"
        work = "-"
        if r_last:
            res = f"{r_last['matches']:.0f} matches"
            if r_last["included"]:
                res += f" + {r_last['included']:.0f} included"
            if r_last["total"]:
                res += f" (total {r_last['total']:,.0f})"
            if spec.get("walk"):
                res = f"{r_last['pages']:.1f} pages per walk, walk p50 {r_last['rep_p50']:.0f} ms; " + res + " per page"
            work = r_last["probe"] + (f" (whole walk of {r_last['probe_pages']} pages)" if spec.get("walk") else "")
        shape = "`" + spec["shape"].replace("|", "\\|") + "`" + (" " + spec["note"].replace("|", "\\|") if spec.get("note") else "")
        lines.append(f"| {shape} | {' | '.join(cells)}{ratio} | {res} | {work} |")
    reps = ", ".join(f"{human(s['target'])}: {min(r['requests'] for r in s['results'].values())}-"
                     f"{max(r['requests'] for r in s['results'].values())} requests per query" for s in stages)
    lines += [
        "",
        f"Repetitions: {reps} (each query stops at `--reps` repetitions or `--query-time` seconds, whichever comes first; "
        "one warm-up and one diagnostic request before, not counted). Latency is per request (a paging walk counts each page). "
        "Every search also computes `total` (the default `_total`), i.e. a `count_documents` over the same filter. "
        "\"Engine work\" is measured on one untimed request with a probe that mirrors the engine's candidate logic: documents "
        "the embedded engine examined, and which collections it scanned in full because no clause of the filter could be "
        "answered from its inverted index (equality on a token, reference, uri or exact string value) or an `_id` pin.",
    ]
    if len(stages) > 1:
        grow = last["resources"] / first["resources"]
        ratios = {s["key"]: last["results"][s["key"]]["p50"] / first["results"][s["key"]]["p50"]
                  for s in specs if s["key"] in last["results"] and s["key"] in first["results"] and first["results"][s["key"]]["p50"] > 0}
        flat = [k for k, r in ratios.items() if r < 2]
        grows = [k for k, r in ratios.items() if r >= max(2.0, grow / 2)]
        between = [k for k in ratios if k not in flat and k not in grows]
        lines += ["", f"Store grew {grow:.1f}x ({first['resources']:,} -> {last['resources']:,} resources). "
                  f"p50 about flat (< 2x): {', '.join(flat) or 'none'}; "
                  f"p50 grows about with the store (>= {max(2.0, grow / 2):.1f}x): {', '.join(grows) or 'none'}"
                  + (f"; in between: {', '.join(between)}" if between else "") + "."]
    contended = [(s["target"], k, r["cpu_share"]) for s in stages for k, r in s["results"].items() if r["cpu_share"] < 0.9]
    if contended:
        worst = min(contended, key=lambda x: x[2])
        lines += ["", f"**Warning:** other processes competed for the {facts['nproc']} CPUs during this run: {len(contended)} "
                  f"query measurements got less than 90% of a CPU (worst: {worst[1]} at {human(worst[0])}, {worst[2]:.0%}); "
                  "their latencies are inflated. Re-run on an idle machine."]
    else:
        lines += ["", "CPU share: every query measurement had at least 90% of a CPU (process CPU time / wall time), "
                  "so other load on the machine did not inflate the figures much."]
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


# -- main ------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="stored resources at which to measure, comma separated (default 10000,100000)")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--reps", type=int, default=100, help="repetitions per query and size (a paging walk is one repetition)")
    ap.add_argument("--query-time", type=float, default=20.0, help="seconds per query and size; stop repeating after this")
    ap.add_argument("--time-budget", type=float, default=840.0,
                    help="seconds for the whole run; a size that cannot start loading within it is skipped and reported")
    ap.add_argument("--only", default="", help="comma-separated query keys to run (default: all)")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "BENCHMARKS.md", help="markdown file to update ('-' for none)")
    args = ap.parse_args(argv)
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/bench_search.py", *(argv if argv is not None else sys.argv[1:])])
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    t_run = time.perf_counter()

    from fhir_server.app import create_app
    from fhir_server.settings import Settings

    facts = report.machine_facts()
    settings = Settings(mongodb_uri=None, db_name="bench_search", log_level="WARNING", demo=False, auth="off")
    app = create_app(settings)
    store = app.config["FHIR_STORE"]
    assert store.engine.embedded
    client = app.test_client()

    pop = Population(args.seed)
    blocks = pop.blocks()
    counts: Counter = Counter()
    stages: list[dict] = []
    notes: list[str] = []
    specs_all = None
    only = {k.strip() for k in args.only.split(",") if k.strip()}
    try:
        for size in sizes:
            spent = time.perf_counter() - t_run
            if stages and spent > args.time_budget * 0.45:
                notes.append(f"Size {size:,} skipped: {spent / 60:.1f} min were already spent of the {args.time_budget / 60:.0f} min budget.")
                print(notes[-1], flush=True)
                break
            print(f"\n== loading to {size:,} resources", flush=True)
            ld = load_until(store, blocks, size, counts)
            total = sum(counts.values())
            print(f"loaded {ld['stored']:,} resources in {ld['wall']:.1f}s ({ld['rate']:,.0f}/s); store now {total:,}: "
                  f"{dict(counts.most_common())}; VmHWM {proc_status_kb('VmHWM') / 1024:.0f} MB", flush=True)
            gc.collect()
            specs = queries(pop)
            specs_all = specs_all or specs
            results = {}
            load_before = loadavg()
            for i, spec in enumerate(specs):
                if only and spec["key"] not in only:
                    continue
                r = run_query(client, spec, args.reps, args.query_time, args.seed + 1000 * i + 7)
                results[spec["key"]] = r
                incl = f" + {r['included']:.0f} incl" if r["included"] else ""
                capped = " (time-capped)" if r["capped"] else ""
                print(f"  {spec['key']:<24} p50 {r['p50']:8.1f} ms  p95 {r['p95']:8.1f} ms  {r['rate']:8.1f} req/s  "
                      f"{r['requests']:3d} req{capped}  cpu {r['cpu_share']:.2f}  matches {r['matches']:.0f}{incl}  total {r['total']:.0f}  "
                      f"[{r['probe']}]",
                      flush=True)
            stages.append({"target": size, "resources": total, "counts": Counter(counts), "load": ld, "results": results,
                           "hwm_kb": proc_status_kb("VmHWM") or 0, "loadavg": (load_before, loadavg())})
    finally:
        store.engine.close()
    if not stages:
        print("nothing measured")
        return 1
    if only:
        specs_all = [s for s in specs_all if s["key"] in only]
    elapsed = time.perf_counter() - t_run
    text = render(facts, command, args.seed, stages, specs_all, elapsed, notes)
    print("\n" + text)
    if str(args.out) != "-":
        report.write_section(args.out, "bench_search", text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
