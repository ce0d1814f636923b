"""A deterministic synthetic Russian population, as FHIR R4 transaction Bundles.

    pop = Population(patients=100, seed=1)
    for bundle in pop.bundles():      # the directory first (organisations, practitioners), then one per patient
        ...

Same (patients, seed) -> byte-identical resources (with the same packaged terminology): every
random choice comes from a `random.Random` seeded with a string naming what it is for (the
directory, or patient i), and every date is relative to REFERENCE_DATE, not to today. Patient i
depends only on (seed, i) and the directory, so bundles are made one at a time and memory stays
flat however many patients there are. Ids are stable: `s<seed>-…-<index>`; every entry is a PUT
to its id, so loading twice changes nothing.

Codes come from seed/vocabulary.py. NSI codes the vocabulary names but does not know (positions,
specialties, FSLI, insurers) are looked up in the packaged terminology (terminology.concepts, the
ConceptMap fsli-to-loinc); what is not packaged is written as CodeableConcept.text only.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Iterator

from fhir_server.interactions.oms import INSURER_TYPE, OMS_TYPE
from profiles_ru import identifiers

from . import vocabulary as V

REFERENCE_DATE = dt.date(2026, 11, 1)  # the generated history ends on this day
CARE_YEARS = 3  # years of care before it
TZ = "+03:00"
CANONICAL = "https://fhir-server-ru.github.io/fhir"

SNILS = identifiers.SYSTEMS["snils"].system
ENP = identifiers.SYSTEMS["enp"].system
OGRN = identifiers.SYSTEMS["ogrn"].system
INN_LEGAL = identifiers.SYSTEMS["inn-legal"].system
PASSPORT = identifiers.SYSTEMS["passport"].system
FRMO = identifiers.SYSTEMS["frmo"].system
IDENTITY_DOCUMENTS = identifiers.IDENTITY_DOCUMENTS
FRMO_ROOT = "1.2.643.5.1.13.13.12.2"  # a medical organisation's OID: <root>.<region>.<number>
HL7 = "http://terminology.hl7.org/CodeSystem"
OBS_CATEGORY = f"{HL7}/observation-category"
INTERPRETATION = f"{HL7}/v3-ObservationInterpretation"
RESTRICTED = {"system": f"{HL7}/v3-Confidentiality", "code": "R", "display": "restricted"}
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"

# Ranges (first, size) of SNILS numbers: practitioners and patients never share one.
PRACTITIONER_SNILS = (2_000_000, 98_000_000)
PATIENT_SNILS = (100_000_000, 900_000_000)

# Age of the population (years, weight per mille), roughly Rosstat's pyramid.
AGE_BANDS = ((0, 10, 110), (10, 18, 80), (18, 30, 130), (30, 40, 160), (40, 50, 140), (50, 60, 130), (60, 70, 130),
             (70, 80, 80), (80, 95, 40))


# -- identifiers with valid check digits -----------------------------------------------------------
def unique(n: int, modulus: int, salt: int) -> int:
    """The n-th of a seeded permutation of range(modulus): distinct for distinct n < modulus, so the identifiers of
    different people never collide (7919 is a prime that divides none of the moduli used)."""
    return (n * 7919 + salt) % modulus


def _complete(name: str, body: str) -> str:
    """`body` + its check digits by profiles_ru.identifiers' row `name` (one place for the algorithms)."""
    return body + (identifiers.SYSTEMS[name].compute(body) or "")


def snils(number: int) -> str:
    """SNILS with its check number; `number` above 001-001-998, where the check begins."""
    return _complete("snils", f"{number:09d}")


def luhn_complete(digits: str) -> str:
    """`digits` + the Luhn check digit (the ENP rule, profiles_ru.identifiers)."""
    return _complete("enp", digits)


def ogrn(rng: random.Random, region: int) -> str:
    # 1 (legal entity), 2-digit year, 2-digit region, 2-digit tax office, 5-digit record, check
    return _complete("ogrn", f"1{rng.randint(2, 23):02d}{region:02d}{rng.randint(1, 99):02d}{rng.randint(0, 99999):05d}")


def inn_legal(rng: random.Random, region: int) -> str:
    return _complete("inn-legal", f"{region:02d}{rng.randint(1, 99):02d}{rng.randint(0, 99999):05d}")


# -- names -----------------------------------------------------------------------------------------------
def patronymic(father: str, female: bool) -> str:
    """The отчество from a father's first name: Иван -> Иванович / Ивановна, Сергей -> Сергеевич, Юрий ->
    Юрьевич, Дмитрий -> Дмитриевич, Игорь -> Игоревич, and the irregular ones of PATRONYMIC_EXCEPTIONS."""
    if father in V.PATRONYMIC_EXCEPTIONS:
        return V.PATRONYMIC_EXCEPTIONS[father][1 if female else 0]
    soft, hard = ("евна", "овна") if female else ("евич", "ович")
    if father.endswith("ий"):
        stem = father[:-2].lower()
        # after one consonant -ий softens (Юрий -> Юрьевич); after two it stays (Дмитрий -> Дмитриевич)
        two = len(stem) >= 2 and stem[-1] not in "аеёиоуыэюя" and stem[-2] not in "аеёиоуыэюя"
        return father[:-2] + ("и" if two else "ь") + soft
    if father.endswith("й"):  # Сергей, Андрей, Николай
        return father[:-1] + soft
    if father.endswith("ь"):  # Игорь
        return father[:-1] + soft
    if father[-1] in "жшчщц":
        return father + soft
    return father + hard


def surname(male: str, female: bool) -> str:
    if not female:
        return male
    if male.endswith(("ский", "цкий")):
        return male[:-2] + "ая"
    if male.endswith(("ов", "ев", "ёв", "ин", "ын")):
        return male + "а"
    return male  # -енко, -ук and other surnames that do not change


def _name(rng: random.Random, female: bool) -> tuple[str, str, str]:
    first = rng.choice(V.FEMALE_NAMES if female else V.MALE_NAMES)
    return surname(rng.choice(V.SURNAMES), female), first, patronymic(rng.choice(V.MALE_NAMES), female)


def _human_name(family: str, first: str, middle: str) -> dict:
    return {"use": "official", "text": f"{family} {first} {middle}", "family": family, "given": [first, middle]}


def _phone(rng: random.Random) -> str:
    return f"+7 9{rng.randint(0, 99):02d} {rng.randint(0, 999):03d}-{rng.randint(0, 99):02d}-{rng.randint(0, 99):02d}"


def _address(rng: random.Random, region: V.Region, use: str = "home", flat: bool = True) -> dict:
    city, first_code, count = rng.choice(region.cities)
    line = f"{rng.choice(region.streets)}, д. {rng.randint(1, 140)}"
    if flat:
        line += f", кв. {rng.randint(1, 320)}"
    postal = f"{first_code + rng.randrange(count):06d}"
    state = None if region.name.startswith("г. ") else region.name
    text = ", ".join(x for x in (postal, state, f"г. {city}", line) if x)
    addr = {"use": use, "type": "both", "text": text, "line": [line], "city": city}
    if state:
        addr["state"] = state
    return {**addr, "postalCode": postal, "country": "RU"}


# -- packaged terminology, looked up once per process -----------------------------------------------------
def _norm(text: str) -> str:
    return " ".join(text.lower().replace("ё", "е").split())


@functools.cache
def nsi_by_name(system: str) -> dict[str, tuple[str, str]]:
    """name -> (code, display) of a packaged code system; empty when not packaged."""
    try:
        import terminology

        return {_norm(display): (code, display) for code, display in terminology.concepts(system) if display}
    except (ImportError, KeyError, LookupError):
        return {}


@functools.cache
def nsi_codes(system: str) -> tuple[tuple[str, str], ...]:
    try:
        import terminology

        return tuple(terminology.concepts(system))
    except (ImportError, KeyError, LookupError):
        return ()


@functools.cache
def fsli_by_loinc() -> dict[str, tuple[str, str | None]]:
    """LOINC code -> (FSLI code, FSLI display) from the packaged ConceptMap fsli-to-loinc."""
    try:
        import terminology
    except ImportError:
        return {}
    out: dict[str, tuple[str, str | None]] = {}
    for r in terminology.packaged():
        if r.get("resourceType") != "ConceptMap" or r.get("url") != f"{CANONICAL}/ConceptMap/fsli-to-loinc":
            continue
        for group in r.get("group", []):
            for el in group.get("element", []):
                for t in el.get("target", []):
                    if t.get("equivalence") in (None, "equivalent", "equal", "relatedto", "wider", "narrower") and t.get("code"):
                        out.setdefault(t["code"], (el["code"], el.get("display")))
    return out


def _nsi_concept(system: str, name: str) -> dict:
    """A CodeableConcept of an NSI directory: coded when the packaged code system has the name, else text."""
    found = nsi_by_name(system).get(_norm(name))
    if found is None:
        return {"text": name}
    return {"coding": [{"system": system, "code": found[0], "display": found[1]}], "text": name}


# -- dates ---------------------------------------------------------------------------------------------------
def _dt(day: dt.date, minutes: int) -> str:
    """An instant on `day`, `minutes` after midnight Moscow time."""
    return f"{day.isoformat()}T{minutes // 60:02d}:{minutes % 60:02d}:00{TZ}"


def _years(a: dt.date, b: dt.date) -> float:
    return (b - a).days / 365.25


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _profile(name: str) -> dict:
    return {"profile": [f"{CANONICAL}/StructureDefinition/{name}"]}


class Population:
    """The directory (organisations, their staff, insurers) and patient i, each generated on demand."""

    def __init__(self, patients: int, seed: int):
        if patients < 0:
            raise ValueError("patients must be >= 0")
        self.patients, self.seed = patients, seed
        self.prefix = f"s{seed}"
        rng = random.Random(f"fhir-server-ru seed {seed} directory")
        self.orgs: list[dict] = []  # {"id", "region", "kind", "staff": {role key: [practitioner ids]}}
        self.resources: list[dict] = []  # the directory's resources, in load order
        self.practitioners = 0
        self.salt = random.Random(f"fhir-server-ru seed {seed} identifiers").randrange(10**9)
        n_orgs = max(2, 2 + patients // 1500)
        scale = 1.0 if patients >= 2000 else 0.5
        numbers: dict[tuple[int, str], set[int]] = {}
        for k in range(n_orgs):
            region = V.REGIONS[0] if k < 2 else rng.choices(V.REGIONS, V.REGION_WEIGHTS)[0]
            pattern, kind = V.ORG_KINDS[1] if k == 1 else (V.ORG_KINDS[0] if k == 0 else rng.choice(V.ORG_KINDS))
            used = numbers.setdefault((region.code, pattern), set())
            n = rng.randint(1, 220)
            while n in used:
                n += 1
            used.add(n)
            self._organisation(rng, k, region, pattern.format(n=n), kind, scale)
        self.outpatient = [o for o in self.orgs if o["kind"] == "outpatient"]
        self.hospitals = [o for o in self.orgs if o["kind"] == "hospital"]
        self.insurers = self._insurers(rng)

    # -- directory ---------------------------------------------------------------------------------------
    def _organisation(self, rng: random.Random, k: int, region: V.Region, title: str, kind: str, scale: float) -> None:
        oid = f"{self.prefix}-org-{k}"
        name = f"{region.org_prefix} «{title}{' ' + region.org_suffix if region.org_suffix else ''}»"
        if not region.org_suffix and region.code not in (77, 78):
            city = region.cities[0][0]
            name = f"{region.org_prefix} «{title}» г. {city}"
        frmo = f"{FRMO_ROOT}.{region.code}.{rng.randint(1000, 99999)}"
        self.resources.append({
            "resourceType": "Organization",
            "id": oid,
            "meta": _profile("ru-organization"),
            "identifier": [{"system": FRMO, "value": frmo},
                           {"system": OGRN, "value": ogrn(rng, region.code)},
                           {"system": INN_LEGAL, "value": inn_legal(rng, region.code)}],
            "active": True,
            "type": [{"coding": [{"system": f"{HL7}/organization-type", "code": "prov", "display": "Healthcare Provider"}]}],
            "name": name,
            "telecom": [{"system": "phone", "value": f"+7 {rng.randint(300, 999)} {rng.randint(100, 999)}-{rng.randint(10, 99)}-"
                                                     f"{rng.randint(10, 99)}", "use": "work"}],
            "address": [_address(rng, region, use="work", flat=False)],
        })
        staff: dict[str, list[str]] = {}
        org = {"id": oid, "region": region, "kind": kind, "staff": staff}
        for role in V.ROLES:
            if kind == "outpatient" and role.key == "therapist-hospital":
                continue
            if kind == "hospital" and role.key in ("therapist", "pediatrician", "gp"):
                continue
            for _ in range(max(1, round(role.weight * scale))):
                staff.setdefault(role.key, []).append(self._practitioner(rng, org, role))
        self.orgs.append(org)

    def _practitioner(self, rng: random.Random, org: dict, role: V.Role) -> str:
        pid = f"{self.prefix}-pr-{self.practitioners}"
        self.practitioners += 1
        female = rng.random() < 0.7  # most Russian doctors are women
        family, first, middle = _name(rng, female)
        birth = REFERENCE_DATE - dt.timedelta(days=rng.randint(27 * 365, 66 * 365))
        specialty = _nsi_concept(V.SPECIALTIES, role.specialty)
        position = _nsi_concept(V.POSITIONS, role.position)
        practitioner = {"resourceType": "Practitioner", "id": pid}
        if "coding" in specialty and "coding" in position:  # RU Practitioner needs both coded from NSI
            practitioner["meta"] = _profile("ru-practitioner")
        practitioner.update({
            "identifier": [{"system": SNILS, "value": snils(PRACTITIONER_SNILS[0] + unique(self.practitioners, PRACTITIONER_SNILS[1],
                                                                                       self.salt))}],
            "active": True,
            "name": [_human_name(family, first, middle)],
            "telecom": [{"system": "phone", "value": _phone(rng), "use": "work"}],
            "gender": "female" if female else "male",
            "birthDate": birth.isoformat(),
            "qualification": [{"code": specialty}, {"code": position}],
        })
        self.resources.append(practitioner)
        self.resources.append({
            "resourceType": "PractitionerRole",
            "id": f"{pid}-role",
            "active": True,
            "practitioner": {"reference": f"Practitioner/{pid}", "display": f"{family} {first} {middle}"},
            "organization": {"reference": f"Organization/{org['id']}"},
            "code": [position],
            "specialty": [specialty],
        })
        return pid

    def _insurers(self, rng: random.Random) -> list[dict]:
        packaged = nsi_codes(identifiers.INSURERS)[:6]
        rows = [(code, display) for code, display in packaged] or [(None, name) for name in V.FALLBACK_INSURERS]
        out = []
        for k, (code, name) in enumerate(rows):
            region = V.REGIONS[0]
            ident = [{"system": OGRN, "value": ogrn(rng, region.code)}, {"system": INN_LEGAL, "value": inn_legal(rng, region.code)}]
            if code is not None:
                ident.insert(0, {"system": identifiers.INSURERS, "value": code})
            res = {"resourceType": "Organization", "id": f"{self.prefix}-smo-{k}", "meta": _profile("ru-organization"),
                   "identifier": ident, "active": True, "type": [INSURER_TYPE], "name": name,
                   "address": [_address(rng, region, use="work", flat=False)]}
            self.resources.append(res)
            out.append(res)
        return out

    def directory_bundle(self) -> dict:
        return transaction(self.resources)

    # -- patients --------------------------------------------------------------------------------------------
    def patient_resources(self, i: int) -> list[dict]:
        return _PatientBuilder(self, i).build()

    def patient_bundle(self, i: int) -> dict:
        return transaction(self.patient_resources(i))

    def bundles(self) -> Iterator[dict]:
        yield self.directory_bundle()
        for i in range(self.patients):
            yield self.patient_bundle(i)


def transaction(resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def _ref(r: dict, display: str | None = None) -> dict:
    ref = {"reference": f"{r['resourceType']}/{r['id']}"}
    if display:
        ref["display"] = display
    return ref


def _icd10(cond: V.Condition) -> dict:
    return {"coding": [{"system": V.ICD10, "code": cond.code, "display": cond.name}], "text": cond.name}


def _quantity(value: float, ucum: str, unit: str, decimals: int) -> dict:
    return {"value": round(value, decimals) if decimals else round(value), "unit": unit or ucum, "system": V.UCUM, "code": ucum}


def _prevalence(cond: V.Condition, age: float) -> float:
    p = 0.0
    for from_age, prob in cond.prevalence:
        if age >= from_age:
            p = prob
    return p


class _PatientBuilder:
    """Everything of patient i: card, policy, consents and CARE_YEARS years of care."""

    def __init__(self, pop: Population, i: int):
        self.pop, self.i = pop, i
        self.rng = random.Random(f"fhir-server-ru seed {pop.seed} patient {i}")
        self.pid = f"{pop.prefix}-pat-{i}"
        self.out: list[dict] = []
        self.counters: dict[str, int] = {}
        self.measured: set[int] = set()  # years with height and weight measured

    def _id(self, kind: str) -> str:
        n = self.counters.get(kind, 0)
        self.counters[kind] = n + 1
        return f"{self.pid}-{kind}{n}"

    def build(self) -> list[dict]:
        rng, pop = self.rng, self.pop
        self.female = rng.random() < 0.54
        lo, hi, _ = rng.choices(AGE_BANDS, [b[2] for b in AGE_BANDS])[0]
        self.birth = REFERENCE_DATE - dt.timedelta(days=rng.randint(lo * 365 + 30, hi * 365 - 1))
        self.age = _years(self.birth, REFERENCE_DATE)
        self.org = pop.outpatient[rng.randrange(len(pop.outpatient))] if pop.outpatient else pop.orgs[0]
        self.region: V.Region = self.org["region"]
        hospitals = [h for h in pop.hospitals if h["region"].code == self.region.code] or pop.hospitals or [self.org]
        self.hospital = hospitals[rng.randrange(len(hospitals))]
        gp_role = "pediatrician" if self.age < 18 else rng.choice(("therapist", "therapist", "gp"))
        self.gp = self._staff(self.org, gp_role)
        self.start = max(REFERENCE_DATE - dt.timedelta(days=round(CARE_YEARS * 365.25)), self.birth + dt.timedelta(days=30))
        self.height = (176 + rng.gauss(0, 7)) if not self.female else (164 + rng.gauss(0, 6))
        self.bmi = rng.gauss(26, 3.5) if self.age >= 18 else rng.gauss(17.5, 2)
        self.personal = {k: rng.gauss(0, 0.5) for k in V.LAB_TESTS}  # each person's own offset, in SD
        self.sys_base = 116 + max(0.0, self.age - 30) * 0.45 + rng.gauss(0, 7)

        self.patient = self._patient()
        self.out.append(self.patient)
        self.out.append(self._coverage())
        self.conditions: list[tuple[V.Condition, dict, dt.date]] = []  # (vocabulary row, resource, onset)
        self.drug_start: dict[str, dt.date] = {}  # МКБ-10 code -> first prescription day
        self.encounters: list[tuple[dict, dt.date]] = []
        self._chronic()
        self._acute()
        self._consents()
        return self.out

    def _staff(self, org: dict, role: str) -> str:
        staff = org["staff"].get(role) or org["staff"].get("therapist") or next(iter(org["staff"].values()))
        return staff[self.rng.randrange(len(staff))]

    # -- card ---------------------------------------------------------------------------------------------
    def _patient(self) -> dict:
        rng = self.rng
        family, first, middle = _name(rng, self.female)
        self.display = f"{family} {first} {middle}"
        salt, i = self.pop.salt, self.i
        self.enp = luhn_complete(f"{self.region.code:02d}{unique(i, 10**13, salt):013d}")
        ident = [{"system": SNILS, "value": snils(PATIENT_SNILS[0] + unique(i, PATIENT_SNILS[1], salt))},
                 {"type": {"coding": [{"system": f"{HL7}/v2-0203", "code": "SB"}]}, "system": ENP, "value": self.enp}]
        if self.age >= 14:  # passports are issued at 14 and replaced at 20 and 45
            issue_age = max(a for a in (14, 20, 45) if a <= self.age)
            issued = min(_add_years(self.birth, issue_age) + dt.timedelta(days=rng.randint(5, 60)), REFERENCE_DATE)
            series = f"{self.region.okato}{issued.year % 100:02d}"
            ident.append({
                "type": {"coding": [{"system": IDENTITY_DOCUMENTS, "code": "1", "display": "Паспорт гражданина Российской Федерации"}]},
                "system": PASSPORT, "value": f"{series} {100000 + unique(i, 900000, salt)}", "period": {"start": issued.isoformat()},
            })
        return {
            "resourceType": "Patient",
            "id": self.pid,
            "meta": _profile("ru-patient"),
            "identifier": ident,
            "active": True,
            "name": [_human_name(family, first, middle)],
            "telecom": [{"system": "phone", "value": _phone(rng), "use": "mobile"}],
            "gender": "female" if self.female else "male",
            "birthDate": self.birth.isoformat(),
            "address": [_address(rng, self.region)],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "ru", "display": "Russian"}]}, "preferred": True}],
            "generalPractitioner": [{"reference": f"Practitioner/{self.gp}"}],
            "managingOrganization": {"reference": f"Organization/{self.org['id']}"},
        }

    def _coverage(self) -> dict:
        rng = self.rng
        start = max(dt.date(2011, 5, 1) + dt.timedelta(days=rng.randint(0, 3000)), self.birth + dt.timedelta(days=rng.randint(10, 90)))
        start = min(start, REFERENCE_DATE - dt.timedelta(days=30))
        insurer = self.pop.insurers[rng.randrange(len(self.pop.insurers))]
        return {
            "resourceType": "Coverage",
            "id": f"{self.pid}-oms",
            "meta": _profile("ru-coverage"),
            "identifier": [{"system": ENP, "value": self.enp}],
            "status": "active",
            "type": OMS_TYPE,
            "beneficiary": {"reference": f"Patient/{self.pid}"},
            "period": {"start": start.isoformat()},
            "payor": [_ref(insurer, insurer["name"])],
        }

    # -- conditions and their care --------------------------------------------------------------------
    def _condition(self, cond: V.Condition, onset: dt.date, recorder: str, encounter: dict | None, resolved: dt.date | None) -> dict:
        res = {
            "resourceType": "Condition",
            "id": self._id("c"),
            "clinicalStatus": {"coding": [{"system": f"{HL7}/condition-clinical", "code": "resolved" if resolved else "active"}]},
            "verificationStatus": {"coding": [{"system": f"{HL7}/condition-ver-status", "code": "confirmed"}]},
            "category": [{"coding": [{"system": f"{HL7}/condition-category",
                                      "code": "encounter-diagnosis" if encounter else "problem-list-item"}]}],
            "code": _icd10(cond),
            "subject": {"reference": f"Patient/{self.pid}"},
            "onsetDateTime": onset.isoformat(),
            "recordedDate": max(onset, self.start).isoformat() if not encounter else onset.isoformat(),
            "recorder": {"reference": f"Practitioner/{recorder}"},
        }
        if encounter is not None:
            res["encounter"] = _ref(encounter)
        if resolved:
            res["abatementDateTime"] = resolved.isoformat()
        if cond.restricted:
            res["meta"] = {"security": [RESTRICTED]}
        self.out.append(res)
        return res

    def _chronic(self) -> None:
        rng = self.rng
        for cond in V.CONDITIONS:
            if not cond.chronic or (cond.sex and cond.sex != ("female" if self.female else "male")):
                continue
            p = _prevalence(cond, self.age)
            if p <= 0 or rng.random() >= p:
                continue
            first_age = next(a for a, _ in cond.prevalence)
            onset_age = rng.uniform(first_age, self.age)
            onset = min(self.birth + dt.timedelta(days=round(onset_age * 365.25)), REFERENCE_DATE - dt.timedelta(days=20))
            doctor_org = self.org
            doctor = self._staff(doctor_org, cond.role if cond.role in doctor_org["staff"] else "therapist")
            record = self._condition(cond, onset, doctor, None, None)
            self.conditions.append((cond, record, onset))
            # follow-up every 4-8 months inside the care window
            day = max(self.start, onset) + dt.timedelta(days=rng.randint(0, 120))
            visit = 0
            while day < REFERENCE_DATE:
                inpatient = cond.inpatient > 0 and rng.random() < cond.inpatient / 2
                self._episode(cond, record, day, doctor, inpatient=inpatient, visit=visit, acute=False)
                visit += 1
                day += dt.timedelta(days=rng.randint(120, 240))

    def _acute(self) -> None:
        rng = self.rng
        year_start = self.start
        while year_start < REFERENCE_DATE:
            age = _years(self.birth, year_start)
            for cond in V.CONDITIONS:
                if cond.chronic or (cond.sex and cond.sex != ("female" if self.female else "male")):
                    continue
                p = _prevalence(cond, age)
                if p <= 0 or rng.random() >= p:
                    continue
                onset = year_start + dt.timedelta(days=rng.randint(0, 364))
                if onset >= REFERENCE_DATE - dt.timedelta(days=2):
                    continue
                inpatient = rng.random() < cond.inpatient
                org = self.hospital if inpatient else self.org
                role = cond.role if cond.role in org["staff"] else ("therapist-hospital" if inpatient else "therapist")
                if self.age < 18 and not inpatient:
                    role = "pediatrician"
                doctor = self._staff(org, role)
                if cond.code == "Z00.0":  # a check-up: an encounter with labs, no Condition
                    self._episode(cond, None, onset, doctor, inpatient=False, visit=0, acute=True)
                    continue
                self._episode(cond, None, onset, doctor, inpatient=inpatient, visit=0, acute=True)
            year_start = _add_years(year_start, 1)

    def _episode(self, cond: V.Condition, record: dict | None, day: dt.date, doctor: str, *, inpatient: bool, visit: int,
                 acute: bool) -> None:
        rng = self.rng
        org = self.hospital if inpatient else self.org
        if inpatient and cond.role not in org["staff"]:
            doctor = self._staff(org, "therapist-hospital")
        elif inpatient:
            doctor = self._staff(org, cond.role)
        length = rng.randint(5, 12) if inpatient else 0
        end_day = min(day + dt.timedelta(days=length), REFERENCE_DATE)
        start_min = rng.randint(8 * 60, 17 * 60)
        enc = {
            "resourceType": "Encounter",
            "id": self._id("e"),
            "meta": _profile("ru-encounter"),
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP" if inpatient else "AMB",
                      "display": "inpatient encounter" if inpatient else "ambulatory"},
            "type": [{"text": "Госпитализация" if inpatient else ("Профилактический осмотр" if cond.code == "Z00.0" else "Приём врача")}],
            "subject": {"reference": f"Patient/{self.pid}", "display": self.display},
            "participant": [{"individual": {"reference": f"Practitioner/{doctor}"}}],
            "period": {"start": _dt(day, start_min), "end": _dt(end_day, start_min + 25) if not inpatient else _dt(end_day, 12 * 60)},
            "reasonCode": [_icd10(cond)],
            "serviceProvider": {"reference": f"Organization/{org['id']}"},
        }
        if inpatient:
            enc["hospitalization"] = {"dischargeDisposition": {"coding": [{"system": f"{HL7}/discharge-disposition", "code": "home"}]}}
        if cond.restricted:
            enc["meta"] = {**enc["meta"], "security": [RESTRICTED]}
        self.out.append(enc)
        if acute and record is None and cond.code != "Z00.0":
            resolved = day + dt.timedelta(days=rng.randint(7, 21) + length)
            record = self._condition(cond, day, doctor, enc, resolved if resolved < REFERENCE_DATE else None)
        if record is not None:
            enc["diagnosis"] = [{"condition": _ref(record), "rank": 1}]
        self.encounters.append((enc, day))
        when = _dt(day, start_min + 5)
        self._vitals(enc, day, when, doctor, cond, acute)
        # labs: the first panel at every visit, the others every other visit
        panels = cond.panels if (visit % 2 == 0 or acute) else cond.panels[:1]
        lab_doctor = self._staff(org, "lab")
        for panel in panels:
            self._lab_report(V.PANELS[panel], enc, day, lab_doctor, cond, org)
            if inpatient:
                self._lab_report(V.PANELS[panel], enc, end_day, lab_doctor, cond, org)
        if cond.imaging and (inpatient or (visit == 0 and rng.random() < 0.6) or (acute and rng.random() < 0.3)):
            for key in cond.imaging[: 2 if inpatient else 1]:
                self._imaging(V.IMAGING[key], enc, day, org, cond)
        if cond.drugs and record is not None and (acute or visit == 0):
            self._prescriptions(cond, record, enc, day, doctor, acute)

    # -- observations --------------------------------------------------------------------------------
    def _obs(self, category: str, code: dict, enc: dict, when: str, performer: str, meta: dict | None = None, **value) -> dict:
        res = {"resourceType": "Observation", "id": self._id("o")}
        if meta:
            res["meta"] = meta
        res.update({
            "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
            "code": code,
            "subject": {"reference": f"Patient/{self.pid}"},
            "encounter": _ref(enc),
            "effectiveDateTime": when,
            "performer": [{"reference": f"Practitioner/{performer}"}],
            **value,
        })
        self.out.append(res)
        return res

    def _vital(self, key: str, value: float, decimals: int, enc: dict, when: str, doctor: str) -> dict:
        loinc, loinc_display, name, ucum, unit = V.VITALS[key]
        return self._obs("vital-signs", {"coding": [{"system": V.LOINC, "code": loinc, "display": loinc_display}], "text": name},
                         enc, when, doctor, valueQuantity=_quantity(value, ucum, unit, decimals))

    def _has(self, code: str, day: dt.date) -> dt.date | None:
        for cond, _, onset in self.conditions:
            if cond.code == code and onset <= day:
                return onset
        return None

    def _vitals(self, enc: dict, day: dt.date, when: str, doctor: str, cond: V.Condition, acute: bool) -> None:
        rng = self.rng
        if self.age >= 3:
            sys_bp = self.sys_base + rng.gauss(0, 6)
            for code in ("I10", "I11.9"):
                onset = self._has(code, day)
                if onset:
                    sys_bp += 10 if code in self.drug_start and self.drug_start[code] <= day else 22
            dia = sys_bp * 0.62 + rng.gauss(2, 4)
            loinc, loinc_display, name, _, _ = V.VITALS["bp"]
            comps = []
            for key, v in (("sys", sys_bp), ("dia", dia)):
                c_loinc, c_display, c_name, ucum, unit = V.VITALS[key]
                comps.append({"code": {"coding": [{"system": V.LOINC, "code": c_loinc, "display": c_display}], "text": c_name},
                              "valueQuantity": _quantity(v, ucum, unit, 0)})
            self._obs("vital-signs", {"coding": [{"system": V.LOINC, "code": loinc, "display": loinc_display}], "text": name},
                      enc, when, doctor, component=comps)
        hr = 72 + rng.gauss(0, 8) + (18 if self._has("I48", day) else 0) + (14 if self.age < 10 else 0)
        self._vital("hr", hr, 0, enc, when, doctor)
        if acute and cond.code not in ("Z00.0", "M54.5", "M54.2", "K59.0", "I63.9", "I21.9"):
            self._vital("temp", rng.uniform(37.2, 38.9), 1, enc, when, doctor)
        if cond.code in ("J18.9", "U07.1", "J44.9"):
            self._vital("spo2", rng.uniform(91, 96), 0, enc, when, doctor)
        # weight, height and BMI at the first visit of each calendar year
        if day.year in self.measured:
            return
        self.measured.add(day.year)
        age = _years(self.birth, day)
        height = min(self.height, 52 + 6.2 * age + (4 if age > 1 else 0)) if age < 18 else self.height
        bmi = self.bmi + (6 if self._has("E66.0", day) else 0) + rng.gauss(0, 0.4)
        weight = bmi * (height / 100) ** 2
        self._vital("height", height, 0, enc, when, doctor)
        self._vital("weight", weight, 1, enc, when, doctor)
        self._vital("bmi", weight / (height / 100) ** 2, 1, enc, when, doctor)

    def _lab_value(self, test: V.LabTest, day: dt.date, acute: V.Condition | None) -> float:
        """The healthy mean, the person's offset, each condition's shift and drift, treatment, noise."""
        mean, sd = test.mean, test.sd
        if self.female and test.female:
            mean = test.female[2]
        z = self.personal[test.key] + self.rng.gauss(0, 0.35)
        for cond, _, onset in self.conditions:
            if onset > day:
                continue
            for key, shift, drift in cond.trend:
                if key != test.key:
                    continue
                effect = shift + drift * _years(onset, day)
                started = self.drug_start.get(cond.code)
                if started is not None and started <= day and cond.code not in ("E11.9", "N18.3", "I48"):
                    effect *= 0.35  # statins, levothyroxine, iron: the value comes back towards the range
                z += effect
        if acute is not None:
            z += sum(shift for key, shift, _ in acute.trend if key == test.key)
        value = mean + z * sd
        if test.key == "glucose" and self._has("E11.9", day):  # from HbA1c (ADAG: eAG mmol/L = 1.59 x A1c - 2.59)
            value = 1.59 * self._lab_value(V.LAB_TESTS["hba1c"], day, None) - 2.59 + self.rng.gauss(0, 0.6)
        floor = (test.low or 0) * 0.3 if test.low else test.mean * 0.05
        return max(value, floor)

    def _egfr(self, creatinine_umol: float, day: dt.date) -> float:
        """CKD-EPI 2009 from serum creatinine (µmol/L), age and sex."""
        scr = creatinine_umol / 88.4
        k, a = (0.7, -0.329) if self.female else (0.9, -0.411)
        age = _years(self.birth, day)
        gfr = 141 * min(scr / k, 1) ** a * max(scr / k, 1) ** -1.209 * 0.993 ** age
        return gfr * (1.018 if self.female else 1)

    def _lab_report(self, panel: V.Panel, enc: dict, day: dt.date, performer: str, cond: V.Condition, org: dict) -> None:
        rng = self.rng
        minutes = rng.randint(8 * 60, 10 * 60)
        when = _dt(day, minutes)
        issued = _dt(day, min(minutes + rng.randint(180, 480), 23 * 60 + 59))
        acute = None if cond.chronic else cond
        results = []
        creatinine = None
        for key in panel.tests:
            test = V.LAB_TESTS[key]
            if key == "egfr":
                if creatinine is None or _years(self.birth, day) < 18:
                    continue
                value = self._egfr(creatinine, day)
            else:
                value = self._lab_value(test, day, acute)
            if key == "creatinine":
                creatinine = value
            if key == "psa" and self.female:
                continue
            low, high = (test.female[0], test.female[1]) if self.female and test.female else (test.low, test.high)
            rounded = round(value, test.decimals)
            flag = "H" if high is not None and rounded > high else ("L" if low is not None and rounded < low else "N")
            rng_range = {}
            if low is not None:
                rng_range["low"] = _quantity(low, test.ucum, test.unit, test.decimals)
            if high is not None:
                rng_range["high"] = _quantity(high, test.ucum, test.unit, test.decimals)
            rng_range["text"] = (f"{low}–{high}" if low is not None and high is not None else (f"< {high}" if high is not None else f"> {low}")) \
                + (f" {test.unit}" if test.unit else "")
            code = {"coding": [], "text": test.name}
            fsli = (test.fsli, None) if test.fsli else fsli_by_loinc().get(test.loinc)
            if fsli:
                code["coding"].append({"system": V.FSLI, "code": fsli[0], **({"display": fsli[1]} if fsli[1] else {})})
            code["coding"].append({"system": V.LOINC, "code": test.loinc, "display": test.loinc_display})
            meta = _profile("ru-observation-lab") if fsli else {}  # RU lab Observation needs the FSLI code
            if cond.restricted:
                meta["security"] = [RESTRICTED]
            obs = self._obs("laboratory", code, enc, when, performer, meta, issued=issued,
                            valueQuantity=_quantity(value, test.ucum, test.unit, test.decimals),
                            interpretation=[{"coding": [{"system": INTERPRETATION, "code": flag}]}], referenceRange=[rng_range])
            results.append(obs)
        if not results:
            return
        if panel.loinc:
            code = {"coding": [{"system": V.LOINC, "code": panel.loinc, "display": panel.loinc_display}], "text": panel.name}
        else:
            code = {"coding": [c for c in results[0]["code"]["coding"]], "text": panel.name}
        abnormal = [r["code"]["text"] for r in results if r["interpretation"][0]["coding"][0]["code"] != "N"]
        conclusion = ("Показатели в пределах референсных значений." if not abnormal
                      else "Отклонения от референсных значений: " + ", ".join(abnormal) + ".")
        report = {
            "resourceType": "DiagnosticReport",
            "id": self._id("r"),
            "meta": _profile("ru-diagnosticreport"),
            "status": "final",
            "category": [{"coding": [{"system": f"{HL7}/v2-0074", "code": "LAB", "display": "Laboratory"}]}],
            "code": code,
            "subject": {"reference": f"Patient/{self.pid}"},
            "encounter": _ref(enc),
            "effectiveDateTime": when,
            "issued": issued,
            "performer": [{"reference": f"Organization/{org['id']}"}],
            "resultsInterpreter": [{"reference": f"Practitioner/{performer}"}],
            "result": [_ref(r) for r in results],
            "conclusion": conclusion,
        }
        if cond.restricted:
            report["meta"]["security"] = [RESTRICTED]
        self.out.append(report)

    def _imaging(self, study: V.Imaging, enc: dict, day: dt.date, org: dict, cond: V.Condition) -> None:
        rng = self.rng
        role = "radiologist" if study.modality in ("DX", "CT", "MR", "MG") else "sonographer"
        doctor = self._staff(org, role)
        finding = study.findings.get(cond.code) if rng.random() < 0.8 else None
        minutes = rng.randint(9 * 60, 16 * 60)
        report = {
            "resourceType": "DiagnosticReport",
            "id": self._id("r"),
            "meta": _profile("ru-diagnosticreport"),
            "status": "final",
            "category": [{"coding": [{"system": f"{HL7}/v2-0074", "code": "RAD", "display": "Radiology"}]},
                         {"coding": [{"system": DICOM, "code": study.modality}]}],
            "code": {"coding": [{"system": V.MED_SERVICES, "code": study.service, "display": study.name}], "text": study.name},
            "subject": {"reference": f"Patient/{self.pid}"},
            "encounter": _ref(enc),
            "effectiveDateTime": _dt(day, minutes),
            "issued": _dt(day, min(minutes + rng.randint(30, 240), 23 * 60 + 59)),
            "performer": [{"reference": f"Organization/{org['id']}"}],
            "resultsInterpreter": [{"reference": f"Practitioner/{doctor}"}],
            "conclusion": finding or rng.choice(study.normal),
        }
        if finding:
            report["conclusionCode"] = [_icd10(cond)]
        if cond.restricted:
            report["meta"]["security"] = [RESTRICTED]
        self.out.append(report)

    def _prescriptions(self, cond: V.Condition, record: dict, enc: dict, day: dt.date, doctor: str, acute: bool) -> None:
        rng = self.rng
        drugs = [cond.drugs[0]] + [d for d in cond.drugs[1:] if rng.random() < 0.35]
        self.drug_start.setdefault(cond.code, day)
        for key in drugs:
            _, name, atc, dosage = V.DRUGS[key]
            rx = {
                "resourceType": "MedicationRequest",
                "id": self._id("m"),
                "meta": _profile("ru-medicationrequest"),
                # an acute course (up to 10 days) that has not ended by REFERENCE_DATE is still active
                "status": "completed" if acute and day + dt.timedelta(days=10) < REFERENCE_DATE else "active",
                "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": V.ATC, "code": atc}], "text": name},
                "subject": {"reference": f"Patient/{self.pid}"},
                "encounter": _ref(enc),
                "authoredOn": _dt(day, 12 * 60),
                "requester": {"reference": f"Practitioner/{doctor}"},
                "reasonReference": [_ref(record)],
                "courseOfTherapyType": {"coding": [{"system": f"{HL7}/medicationrequest-course-of-therapy",
                                                    "code": "acute" if acute else "continuous"}]},
                "dosageInstruction": [{"text": dosage}],
            }
            if cond.restricted:
                rx["meta"]["security"] = [RESTRICTED]
            self.out.append(rx)

    # -- consents -----------------------------------------------------------------------------------------
    def _consent(self, status: str, when: dt.date, actor: str, role: str, exceptions: list[dict] | None = None,
                 period: dict | None = None) -> None:
        provision: dict = {"type": "permit", "actor": [{"role": {"coding": [{"system": f"{HL7}/v3-ParticipationType", "code": role}]},
                                                          "reference": {"reference": actor}}]}
        if period:
            provision["period"] = period
        if exceptions:
            provision["provision"] = exceptions
        self.out.append({
            "resourceType": "Consent",
            "id": self._id("consent"),
            "status": status,
            "scope": {"coding": [{"system": f"{HL7}/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": V.LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
            "patient": {"reference": f"Patient/{self.pid}"},
            "dateTime": _dt(when, 9 * 60),
            "organization": [{"reference": f"Organization/{self.org['id']}"}],
            "policyRule": {"coding": [{"system": f"{HL7}/v3-ActCode", "code": "OPTIN"}]},
            "provision": provision,
        })

    def _consents(self) -> None:
        """60% grant their doctor, 15% with an exclusion, 10% revoked; hospital stays grant the hospital for the stay."""
        rng = self.rng
        u = rng.random()
        signed = self.start + dt.timedelta(days=rng.randint(0, 60))
        gp = f"Practitioner/{self.gp}"
        if u < 0.60:
            self._consent("active", signed, gp, "PRCP")
        elif u < 0.75:
            restricted = any(c.restricted for c, _, _ in self.conditions)
            if restricted or rng.random() < 0.5:
                exception = {"type": "deny", "securityLabel": [RESTRICTED]}
            else:
                exception = {"type": "deny", "class": [{"system": RESOURCE_TYPES, "code": "MedicationRequest"}]}
            self._consent("active", signed, gp, "PRCP", [exception])
        elif u < 0.85:
            self._consent("inactive", signed, gp, "PRCP")
        for enc, day in self.encounters:
            if enc["class"]["code"] == "IMP" and rng.random() < 0.5:
                org = enc["serviceProvider"]["reference"]
                end = dt.date.fromisoformat(enc["period"]["end"][:10]) + dt.timedelta(days=30)
                self._consent("active", day, org, "PRCP", period={"start": day.isoformat(), "end": end.isoformat()})
