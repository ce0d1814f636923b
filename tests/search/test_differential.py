"""Differential property test of search: the server's MongoDB query vs an independent evaluator.

For randomly generated resources (and, when present, Synthea data) stored through the HTTP
API of a fresh app, random queries are run over HTTP (`GET /fhir/Type?...&_count=500`,
following `next` links) and the set of ids is compared with the set that
`tests/search/reference_eval.py` computes, in plain Python from the R4 rules, over the same
resources as read back from the server. Any disagreement is a bug in one of the two.

The query grammar (per resource type, values drawn mostly from the stored data):

    query      := criterion ('&' criterion)*           AND; a criterion may repeat a name
    criterion  := name '=' value (',' value)*           OR
    name       := param [':' modifier]                  token :not :text :of-type,
                                                        string :exact :contains, uri :below :above,
                                                        reference :[Type] :identifier, any :missing
                | ref [':' Type] '.' name               chain (depth <= 2)
                | '_has:' Type ':' ref ':' name         reverse chain
    value      := per parameter type: code | system|code | |code | system|  (token);
                  text prefixes, substrings, case and accent variants (string);
                  prefix + date at year..millisecond precision in several time zones (date);
                  prefix + number at several precisions [|system|code | ||code] with UCUM
                  unit conversions (quantity); Type/id | id | absolute URL | system|value
                  (reference); exact, shortened, lengthened URIs (uri); c1$c2 (composite);
                  ids (_id); meta.lastUpdated (_lastUpdated)

The tests are split by family (token, string, date, quantity, reference, uri, composite,
missing, chain, mixed), so a disagreement in one family does not hide those in another.
A failure prints the query, the ids on which the two disagree and the resources involved.

`ap` depends on the current time: the server's search clock is pinned for each request
(`fhir_server.search.compile.clock`) and the evaluator runs with that same instant.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from fhir_server import fhirtime
from fhir_server.app import create_app
from fhir_server.errors import FHIRError
from fhir_server.search import compile as search_compile
from fhir_server.search.params import SearchParam, params_of
from fhir_server.search.query import parse
from fhir_server.search.ucum import canonical
from tests.conftest import SHARED_FIXTURES, FHIRClient, make_settings

from . import reference_eval as ref

BASE = "http://localhost/fhir"
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
LOCAL_CODES = "http://example.org/codes"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
TAGS = "http://example.org/tags"
PAGE = 500
UTC = timezone.utc

FAMILIES = ("token", "string", "date", "quantity", "reference", "uri", "composite", "missing", "chain", "mixed")
# Examples per family; FHIR_DIFF_SCALE multiplies them for a longer exploratory run.
SCALE = float(os.environ.get("FHIR_DIFF_SCALE", "1"))
RANDOM_EXAMPLES = max(1, int(40 * SCALE))
RANDOM_QUERIES = 6  # per example
SYNTHEA_EXAMPLES = max(1, int(25 * SCALE))
SYNTHEA_QUERIES = 5
SKIP_PARAMS = {"phonetic"}  # "some kind of phonetic matching algorithm": server-defined, nothing to compare with

# Hypothesis' own shrinking is left out: every attempt stores a data set through HTTP, and
# with data-dependent query draws it ran for minutes. A failure is minimised by `check`
# instead (query terms and OR values, then resources and their elements) and printed.
DIFF_SETTINGS = settings(
    max_examples=RANDOM_EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- value pools for the generated resources ----------------------------------------------------------
FAMILY_NAMES = ["Иванов", "Иванова", "Ёлкин", "Елкина", "Щербаков", "Йорк", "Müller", "Muller", "García", "Łukasiewicz", "Zoë", "Карреньо Киньонес", "O'Brien"]
GIVEN_NAMES = ["Иван", "Иванович", "Пётр", "Петр", "Анна", "Анна-Мария", "Юлия", "Йоханнес", "José", "Renée", "Ольга", "ЁЖИК"]
NAME_PREFIXES = ["Dr.", "д-р", "проф."]
CITIES = ["Москва", "Санкт-Петербург", "Нижний Новгород", "Orléans", "Köln", "Йошкар-Ола"]
LINES = ["ул. Ленина, д. 1", "пр. Мира 15", "Rue de l'Église 3", "Щорса 7-12"]
POSTCODES = ["101000", "190000", "45000"]
COUNTRIES = ["RU", "Россия", "France"]
ID_SYSTEMS = ["urn:oid:1.2.643.100.3", "http://example.org/mrn", None]
ID_VALUES = ["123-456-789 00", "A1", "a1", "MRN-001", "7700 123456", "42", "a|b,c$d\\e"]  # the last needs escaping
ID_TYPES = [("MR", "Медицинская карта"), ("PPN", "Паспорт"), ("SB", "СНИЛС")]
PHONES = ["+7 900 123-45-67", "+7 (495) 000-00-00", "8-800-555-35-35"]
EMAILS = ["ivan@example.org", "Анна@пример.рф", "a1@example.org"]
PROFILES = [
    "http://example.org/fhir/StructureDefinition/ru-patient",
    "http://example.org/fhir/StructureDefinition/ru-patient-child",
    "http://example.org/fhir/StructureDefinition/ru-observation",
    "http://hl7.org/fhir/StructureDefinition/vitalsigns",
]
SOURCES = ["http://example.org/mis/1", "http://example.org/mis/1/node", "http://example.org/lab"]
OBS_CODES = [
    (LOINC, "718-7", "Hemoglobin [Mass/volume] in Blood", "Гемоглобин"),
    (LOINC, "2345-7", "Glucose [Mass/volume] in Serum or Plasma", "Глюкоза"),
    (LOINC, "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "Холестерин"),
    (LOCAL_CODES, "718-7", "Гемоглобин (местный код)", None),
    (None, "718-7", None, None),
    (LOINC, "85354-9", "Blood pressure panel", "Давление"),
]
BP_CODES = [(LOINC, "8480-6", "Systolic blood pressure"), (LOINC, "8462-4", "Diastolic blood pressure")]
VALUE_CONCEPTS = [(SNOMED, "260385009", "Negative", "Отрицательно"), (SNOMED, "10828004", "Positive", "Положительно")]
VALUE_STRINGS = ["норма", "Повышен", "ёмкость снижена", "N/A"]
QUANTITY_VALUES = [0.15, 1, 1.5, 5.4, 10, 15, 99.5, 100, 100.5, 110, 150, 1000]
MASS_UNITS = [("mg/dL", "мг/дл"), ("g/L", "г/л"), ("g/dL", "г/дл"), ("mmol/L", "ммоль/л")]
TIME_UNITS = [("min", "мин"), ("h", "ч"), ("d", "дн")]
TEMP_UNITS = [("Cel", "°C"), ("[degF]", "°F"), ("K", "K")]
TEMP_VALUES = [-5, 0, 36.6, 37, 98.6, 310.15]
ENC_CLASSES = [("AMB", "ambulatory"), ("IMP", "inpatient encounter"), ("EMER", "emergency")]
ENC_TYPES = [(SNOMED, "185349003", "Encounter for check up"), (SNOMED, "50849002", "Emergency room admission")]
TZS = ["Z", "+03:00", "-05:00", "+00:00"]


# == generated resources ===============================================================================
def _coding(system, code, display=None) -> dict:
    out = {}
    if system:
        out["system"] = system
    out["code"] = code
    if display:
        out["display"] = display
    return out


def _fmt(t: datetime, precision: str, tz: str) -> str:
    """t (aware) written at a FHIR precision; times carry the offset `tz`."""
    if precision == "year":
        return f"{t.year:04d}"
    if precision == "month":
        return f"{t.year:04d}-{t.month:02d}"
    if precision == "day":
        return f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
    offset = timedelta(0) if tz in ("Z", "+00:00") else timedelta(hours=int(tz[:3]), minutes=int(tz[0] + tz[4:]))
    local = t.astimezone(timezone(offset))
    out = f"{local.year:04d}-{local.month:02d}-{local.day:02d}T{local.hour:02d}:{local.minute:02d}"
    if precision in ("second", "ms"):
        out += f":{local.second:02d}"
    if precision == "ms":
        out += f".{local.microsecond // 1000:03d}"
    return out + tz


OFFSETS = [timedelta(0), timedelta(milliseconds=1), timedelta(seconds=1), timedelta(hours=5), timedelta(days=1), timedelta(days=-1), timedelta(days=40), timedelta(days=-400)]


@st.composite
def date_value(draw, anchors, kind="dateTime") -> str:
    t = draw(st.sampled_from(anchors)) + draw(st.sampled_from(OFFSETS))
    precisions = {"date": ["day", "month", "year"], "dateTime": ["second", "day", "ms", "month", "year"], "instant": ["ms", "second"]}[kind]
    return _fmt(t, draw(st.sampled_from(precisions)), draw(st.sampled_from(TZS)))


@st.composite
def period(draw, anchors) -> dict:
    start = draw(st.sampled_from(anchors)) + draw(st.sampled_from(OFFSETS))
    end = start + draw(st.sampled_from([timedelta(0), timedelta(minutes=30), timedelta(days=1), timedelta(days=45)]))
    out = {}
    which = draw(st.sampled_from(["both", "start", "end"]))
    if which in ("both", "start"):
        out["start"] = _fmt(start, draw(st.sampled_from(["second", "day", "ms"])), draw(st.sampled_from(TZS)))
    if which in ("both", "end"):
        out["end"] = _fmt(end, draw(st.sampled_from(["second", "day", "ms"])), draw(st.sampled_from(TZS)))
    return out


def _maybe(draw, strategy, p_none=True):
    return draw(st.one_of(st.none(), strategy)) if p_none else draw(strategy)


@st.composite
def human_name(draw) -> dict:
    out = {}
    family = _maybe(draw, st.sampled_from(FAMILY_NAMES))
    given = draw(st.lists(st.sampled_from(GIVEN_NAMES), max_size=2))
    if family or not given:
        out["family"] = family or draw(st.sampled_from(FAMILY_NAMES))
    if given:
        out["given"] = given
    if draw(st.booleans()) and draw(st.booleans()):
        out["prefix"] = [draw(st.sampled_from(NAME_PREFIXES))]
    if draw(st.booleans()) and draw(st.booleans()):
        out["text"] = " ".join([*out.get("given", []), out.get("family", "")]).strip()
    if draw(st.booleans()):
        out["use"] = draw(st.sampled_from(["official", "usual", "maiden"]))
    return out


@st.composite
def identifier(draw) -> dict:
    out = {}
    system = draw(st.sampled_from(ID_SYSTEMS))
    if system:
        out["system"] = system
    out["value"] = draw(st.sampled_from(ID_VALUES))
    if draw(st.booleans()):
        code, text = draw(st.sampled_from(ID_TYPES))
        typ = {"coding": [_coding(draw(st.sampled_from([V2_0203, V2_0203, None])), code)]}
        if draw(st.booleans()):
            typ["text"] = text
        out["type"] = typ
    return out


@st.composite
def contact_point(draw) -> dict:
    system = draw(st.sampled_from(["phone", "email", "url"]))
    value = draw(st.sampled_from(EMAILS if system == "email" else PHONES if system == "phone" else ["http://example.org/~ivan"]))
    out = {"system": system, "value": value}
    if draw(st.booleans()):
        out["use"] = draw(st.sampled_from(["home", "work", "mobile"]))
    return out


@st.composite
def address(draw) -> dict:
    out = {}
    if draw(st.booleans()):
        out["line"] = draw(st.lists(st.sampled_from(LINES), min_size=1, max_size=2))
    out["city"] = draw(st.sampled_from(CITIES))
    if draw(st.booleans()):
        out["postalCode"] = draw(st.sampled_from(POSTCODES))
    if draw(st.booleans()):
        out["country"] = draw(st.sampled_from(COUNTRIES))
    if draw(st.booleans()):
        out["state"] = draw(st.sampled_from(["Московская область", "Île-de-France"]))
    if draw(st.booleans()) and draw(st.booleans()):
        out["district"] = draw(st.sampled_from(["Раменский район", "Арбат"]))
    if draw(st.booleans()):
        out["use"] = draw(st.sampled_from(["home", "work"]))
    return out


@st.composite
def meta(draw) -> dict | None:
    out = {}
    if draw(st.booleans()):
        out["profile"] = draw(st.lists(st.sampled_from(PROFILES), min_size=1, max_size=2, unique=True))
    if draw(st.booleans()):
        out["source"] = draw(st.sampled_from(SOURCES))
    if draw(st.booleans()):
        out["tag"] = [_coding(TAGS, draw(st.sampled_from(["test", "vip"])), draw(st.sampled_from([None, "Тестовые данные"])))]
    if draw(st.booleans()):
        out["security"] = [_coding(CONF, draw(st.sampled_from(["R", "N"])), "restricted")]
    return out or None


@st.composite
def codeable(draw, choices) -> dict:
    picked = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=2, unique=True))
    out = {"coding": [_coding(c[0], c[1], c[2]) for c in picked]}
    texts = [c[3] for c in picked if len(c) > 3 and c[3]]
    if texts and draw(st.booleans()):
        out["text"] = texts[0]
    return out


@st.composite
def quantity(draw, units=MASS_UNITS) -> dict:
    value = draw(st.sampled_from(QUANTITY_VALUES))
    code, human = draw(st.sampled_from(units))
    style = draw(st.sampled_from(["ucum", "ucum", "ucum-human", "unit-only", "other-system"]))
    if style == "ucum":
        return {"value": value, "unit": code, "system": UCUM, "code": code}
    if style == "ucum-human":
        return {"value": value, "unit": human, "system": UCUM, "code": code}
    if style == "unit-only":
        return {"value": value, "unit": code}
    return {"value": value, "unit": human, "system": "http://example.org/units", "code": code}


@st.composite
def subject_ref(draw, pids, patients) -> dict:
    pid = draw(st.sampled_from(pids))
    style = draw(st.sampled_from(["rel", "rel", "rel", "abs", "rel+ident", "ident-typed", "ident", "group", "external"]))
    idents = [i for i in patients[pids.index(pid)].get("identifier", []) if "value" in i]
    ident = {k: v for k, v in (idents[0] if idents else {"system": "http://example.org/mrn", "value": "X9"}).items() if k != "type"}
    if style == "rel":
        return {"reference": f"Patient/{pid}"}
    if style == "abs":
        return {"reference": f"{BASE}/Patient/{pid}"}
    if style == "rel+ident":
        return {"reference": f"Patient/{pid}", "identifier": ident}
    if style == "ident-typed":
        return {"type": "Patient", "identifier": ident}
    if style == "ident":
        return {"identifier": ident}
    if style == "group":
        return {"reference": "Group/1"}
    return {"reference": f"http://other.example.org/fhir/Patient/{pid}"}


@st.composite
def patient(draw, i, anchors, n_patients) -> dict:
    res = {"resourceType": "Patient", "id": str(i)}
    m = draw(meta())
    if m:
        res["meta"] = m
    if draw(st.booleans()):
        res["active"] = draw(st.booleans())
    names = draw(st.lists(human_name(), max_size=2))
    if names:
        res["name"] = names
    gender = draw(st.sampled_from([None, "male", "female", "other", "unknown"]))
    if gender:
        res["gender"] = gender
    if draw(st.booleans()):
        res["birthDate"] = draw(date_value(anchors, "date"))
    deceased = draw(st.sampled_from([None, None, "bool", "dt"]))
    if deceased == "bool":
        res["deceasedBoolean"] = draw(st.booleans())
    elif deceased == "dt":
        res["deceasedDateTime"] = draw(date_value(anchors))
    for key, strategy, size in (("identifier", identifier(), 2), ("telecom", contact_point(), 2), ("address", address(), 1)):
        items = draw(st.lists(strategy, max_size=size))
        if items:
            res[key] = items
    if draw(st.booleans()) and draw(st.booleans()):
        res["generalPractitioner"] = [{"reference": draw(st.sampled_from(["Practitioner/1", "Organization/0"]))}]
    if draw(st.booleans()) and draw(st.booleans()):
        res["managingOrganization"] = {"reference": "Organization/0"}
    if n_patients > 1 and draw(st.booleans()) and draw(st.booleans()):
        other = draw(st.sampled_from([j for j in range(n_patients) if j != i]))
        res["link"] = [{"other": {"reference": f"Patient/{other}"}, "type": "seealso"}]
    return res


@st.composite
def encounter(draw, i, anchors, pids, patients, n_enc) -> dict:
    code, display = draw(st.sampled_from(ENC_CLASSES))
    res = {
        "resourceType": "Encounter",
        "id": str(i),
        "status": draw(st.sampled_from(["planned", "arrived", "in-progress", "finished", "cancelled"])),
        "class": _coding(ACT_CODE, code, draw(st.sampled_from([display, None]))),
    }
    m = draw(meta())
    if m:
        res["meta"] = m
    if draw(st.booleans()):
        res["type"] = [draw(codeable(ENC_TYPES))]
    if draw(st.booleans()):
        res["subject"] = draw(subject_ref(pids, patients))
    if draw(st.booleans()):
        res["period"] = draw(period(anchors))
    if draw(st.booleans()):
        code, human = draw(st.sampled_from(TIME_UNITS))
        res["length"] = {"value": draw(st.sampled_from(QUANTITY_VALUES)), "unit": draw(st.sampled_from([code, human])), "system": UCUM, "code": code}
    if draw(st.booleans()):
        res["reasonCode"] = [draw(codeable(OBS_CODES[:3]))]
    if draw(st.booleans()) and draw(st.booleans()):
        res["participant"] = [{"individual": {"reference": "Practitioner/1"}}]
    if draw(st.booleans()) and draw(st.booleans()):
        res["serviceProvider"] = {"reference": "Organization/0"}
    if n_enc > 1 and draw(st.booleans()) and draw(st.booleans()):
        res["partOf"] = {"reference": f"Encounter/{draw(st.sampled_from([j for j in range(n_enc) if j != i]))}"}
    return res


@st.composite
def observation(draw, i, anchors, pids, patients, eids, n_obs) -> dict:
    res = {
        "resourceType": "Observation",
        "id": str(i),
        "status": draw(st.sampled_from(["final", "preliminary", "amended", "cancelled"])),
        "code": draw(codeable(OBS_CODES)),
    }
    m = draw(meta())
    if m:
        res["meta"] = m
    if draw(st.booleans()):
        res["category"] = [{"coding": [_coding(OBS_CAT, draw(st.sampled_from(["laboratory", "vital-signs"])))]}]
    if draw(st.integers(0, 4)):
        res["subject"] = draw(subject_ref(pids, patients))
    if eids and draw(st.booleans()):
        res["encounter"] = {"reference": f"Encounter/{draw(st.sampled_from(eids))}"}
    effective = draw(st.sampled_from(["dateTime", "dateTime", "period", "instant", None]))
    if effective == "dateTime":
        res["effectiveDateTime"] = draw(date_value(anchors))
    elif effective == "period":
        res["effectivePeriod"] = draw(period(anchors))
    elif effective == "instant":
        res["effectiveInstant"] = draw(date_value(anchors, "instant"))
    value = draw(st.sampled_from(["quantity", "quantity", "quantity", "temperature", "concept", "string", "dateTime", "period", None]))
    if value == "quantity":
        res["valueQuantity"] = draw(quantity())
    elif value == "temperature":
        code, human = draw(st.sampled_from(TEMP_UNITS))
        res["valueQuantity"] = {"value": draw(st.sampled_from(TEMP_VALUES)), "unit": human, "system": UCUM, "code": code}
    elif value == "period":
        res["valuePeriod"] = draw(period(anchors))
    elif value == "concept":
        res["valueCodeableConcept"] = draw(codeable(VALUE_CONCEPTS))
    elif value == "string":
        res["valueString"] = draw(st.sampled_from(VALUE_STRINGS))
    elif value == "dateTime":
        res["valueDateTime"] = draw(date_value(anchors))
    comps = []
    for _ in range(draw(st.integers(0, 2))):
        system, code, display = draw(st.sampled_from(BP_CODES + [(LOINC, "718-7", "Hemoglobin")]))
        comp = {"code": {"coding": [_coding(system, code, display)]}}
        if draw(st.integers(0, 3)):
            value = draw(st.sampled_from([80, 120, 100, 99.5, 140]))
            comp["valueQuantity"] = {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"}
        else:
            comp["valueCodeableConcept"] = draw(codeable(VALUE_CONCEPTS))
        comps.append(comp)
    if comps:
        res["component"] = comps
    if n_obs > 1 and draw(st.booleans()) and draw(st.booleans()):
        res["derivedFrom"] = [{"reference": f"Observation/{draw(st.sampled_from([j for j in range(n_obs) if j != i]))}"}]
    if draw(st.booleans()) and draw(st.booleans()):
        res["performer"] = [{"reference": draw(st.sampled_from([f"Patient/{pids[0]}", "Practitioner/0"]))}]
    return res


@st.composite
def datasets(draw) -> list[dict]:
    """Patients, encounters, observations; ids 0, 1, ... in every type, so that a match on the
    id alone (ignoring the reference's type) shows up."""
    anchors = [
        t.replace(tzinfo=UTC)
        for t in draw(st.lists(st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2025, 12, 31)), min_size=1, max_size=3))
    ]
    n_p, n_e, n_o = draw(st.integers(1, 5)), draw(st.integers(0, 4)), draw(st.integers(0, 8))
    patients = [draw(patient(i, anchors, n_p)) for i in range(n_p)]
    pids = [p["id"] for p in patients]
    encounters = [draw(encounter(i, anchors, pids, patients, n_e)) for i in range(n_e)]
    eids = [e["id"] for e in encounters]
    observations = [draw(observation(i, anchors, pids, patients, eids, n_o)) for i in range(n_o)]
    return patients + encounters + observations


# == the query grammar ================================================================================
def esc(text: str) -> str:
    """Escape the search separators in a literal value (search.html 3.1.1.4.19)."""
    return re.sub(r"([\\,|$])", r"\\\1", text)


def _precision_of(width: timedelta) -> str | None:
    """The FHIR precision whose values span `width` (None: not one value's range)."""
    if width == timedelta(milliseconds=1):
        return "ms"
    if width == timedelta(seconds=1):
        return "second"
    if width == timedelta(minutes=1):
        return "minute"
    if width == timedelta(days=1):
        return "day"
    if timedelta(days=28) <= width <= timedelta(days=31):
        return "month"
    if timedelta(days=365) <= width <= timedelta(days=366):
        return "year"
    return None


def to_unit(value, code: str, target: str) -> float:
    """value [code] restated in [target] (same dimension; affine for the temperatures)."""
    want = canonical(value, code)[0]
    zero, one = canonical(0, target)[0], canonical(1, target)[0]
    return (want - zero) / (one - zero)


class Grammar:
    """Random search criteria over the resources in `store` (type -> list of resources)."""

    def __init__(self, store: dict[str, list[dict]], family: str):
        self.store = store
        self.family = family
        self._elems: dict = {}

    # -- data --------------------------------------------------------------------------------------
    def params(self, rtype: str) -> list[SearchParam]:
        return [p for c, p in sorted(params_of(rtype).items()) if c not in SKIP_PARAMS]

    def elems(self, rtype: str, p: SearchParam) -> list[tuple]:
        key = (rtype, p.code)
        if key not in self._elems:
            self._elems[key] = [pair for r in self.store.get(rtype, []) for pair in ref.param_elements(r, p.paths)]
        return self._elems[key]

    def has_data(self, rtype: str, p: SearchParam) -> bool:
        if p.code in ("_id", "_lastUpdated"):
            return bool(self.store.get(rtype))
        if p.type == "composite":
            return bool(self.composite_nodes(rtype, p))
        return bool(self.elems(rtype, p))

    def composite_nodes(self, rtype: str, p: SearchParam) -> list[list[list[tuple]]]:
        key = (rtype, p.code, "composite")
        if key not in self._elems:
            out = []
            for r in self.store.get(rtype, []):
                for j, keys in enumerate(p.contexts):
                    for node in ref.walk(r, keys) if keys else [r]:
                        per = [ref.param_elements(node, comp.paths[j]) for comp in p.components]
                        if all(per):
                            out.append(per)
            self._elems[key] = out
        return self._elems[key]

    def ref_targets(self, rtype: str, p: SearchParam) -> list[tuple]:
        return [t for e, path in self.elems(rtype, p) for t in ref.reference_targets(e, path, BASE)]

    # -- criteria ----------------------------------------------------------------------------------
    def in_family(self, p: SearchParam, family: str) -> bool:
        if family in ("mixed", "missing", "chain", "any"):
            return True
        if family == "date":
            return p.type == "date"
        if family == "quantity":
            return p.type in ("quantity", "number")
        return p.type == family

    def criterion(self, draw, rtype: str, depth: int = 0, family: str | None = None):
        """(name, value drawer) of one search parameter occurrence on rtype."""
        family = family or self.family
        if depth <= 1 and (family == "chain" or (family == "mixed" and draw(st.integers(0, 4)) == 0)):
            kind = draw(st.sampled_from(["chain", "chain", "has"]))
            got = self.chain(draw, rtype, depth) if kind == "chain" else self.has(draw, rtype, depth)
            if got is not None:
                return got
            if family == "chain":
                family = "any"
        if family == "chain":
            family = "any"
        candidates = [p for p in self.params(rtype) if self.in_family(p, family)]
        if family == "missing":
            candidates = [p for p in candidates if p.type != "composite" and p.code not in ("_id", "_lastUpdated")]
        with_data = [p for p in candidates if self.has_data(rtype, p)]
        pool = with_data if with_data and draw(st.integers(0, 7)) else candidates
        if not pool:
            return ("_id", lambda d: "none")
        p = draw(st.sampled_from(pool))
        if family == "missing" or (p.type != "composite" and p.code not in ("_id", "_lastUpdated") and draw(st.integers(0, 14)) == 0):
            return (f"{p.code}:missing", lambda d: d(st.sampled_from(["true", "false"])))
        return self.plain(draw, rtype, p)

    def chain(self, draw, rtype: str, depth: int):
        options = []
        for p in self.params(rtype):
            if p.type != "reference":
                continue
            for t in p.targets:
                if self.store.get(t) and params_of(t):
                    options.append((p, t))
        if not options:
            return None
        p, target = draw(st.sampled_from(options))
        inner_name, inner_value = self.criterion(draw, target, depth + 1, family="any")
        typed = len(p.targets) > 1 and (draw(st.booleans()) or not self.untyped_ok(p, inner_name))
        name = f"{p.code}:{target}.{inner_name}" if typed else f"{p.code}.{inner_name}"
        return (name, inner_value)

    @staticmethod
    def untyped_ok(p: SearchParam, inner_name: str) -> bool:
        """Whether `p.inner` without a type means one thing on every target that knows the parameter.

        search.html lets a server reject a chain that is ambiguous across target types, so the
        grammar leaves the type out only when the parameter has one type and takes the modifier
        everywhere (the server then ORs the targets, and so does the evaluator).
        """
        head = inner_name.split(".", 1)[0]
        if "." in inner_name or head.startswith("_has"):
            return False
        code, _, mod = head.partition(":")
        kinds = set()
        for t in p.targets:
            q = params_of(t).get(code)
            if q is None:
                continue
            if q.type == "composite":
                return False
            if mod and mod != "missing":
                allowed = ("identifier", *q.targets) if q.type == "reference" else q.modifiers
                if mod not in allowed:
                    return False
            kinds.add(q.type)
        return len(kinds) == 1

    def has(self, draw, rtype: str, depth: int):
        options = []
        for source in sorted(self.store):
            if not self.store[source]:
                continue
            for p in self.params(source):
                if p.type == "reference" and (not p.targets or rtype in p.targets) and self.ref_targets(source, p):
                    options.append((source, p))
        if not options:
            return None
        source, p = draw(st.sampled_from(options))
        inner_name, inner_value = self.criterion(draw, source, depth + 1, family="any")
        return (f"_has:{source}:{p.code}:{inner_name}", inner_value)

    def plain(self, draw, rtype: str, p: SearchParam):
        t = p.type
        if p.code == "_id":
            ids = [r["id"] for r in self.store.get(rtype, [])] + ["none"]
            return ("_id", lambda d: esc(d(st.sampled_from(ids))))
        if p.code == "_lastUpdated":
            ranges = [ref.date_range(r["meta"]["lastUpdated"]) for r in self.store.get(rtype, [])]
            return ("_lastUpdated", lambda d: self.date_value(d, p, ranges))
        if t == "token":
            mods = [None, None, None, "not", "text"]
            if any(path.type == "Identifier" for path in p.paths):
                mods.append("of-type")
            mod = draw(st.sampled_from(mods))
            return (p.code + (f":{mod}" if mod else ""), lambda d: self.token_value(d, rtype, p, mod))
        if t == "string":
            mod = draw(st.sampled_from([None, None, "exact", "contains"]))
            return (p.code + (f":{mod}" if mod else ""), lambda d: self.string_value(d, self.elems(rtype, p), mod))
        if t == "date":
            ranges = [r for e, path in self.elems(rtype, p) if (r := ref.value_range(e, path.type))]
            return (p.code, lambda d: self.date_value(d, p, ranges))
        if t in ("quantity", "number"):
            return (p.code, lambda d: self.quantity_value(d, p, self.elems(rtype, p)))
        if t == "reference":
            targets = self.ref_targets(rtype, p)
            types = sorted({x[1] for x in targets if x[0] == "local" and x[1] in p.targets}) or list(p.targets[:3])
            idents = any(x[0] == "ident" for x in targets)
            mod = draw(st.sampled_from([None, None, None, "identifier", "type"] + ["identifier"] * idents))
            if mod == "type":
                mod = draw(st.sampled_from(types)) if types else None
            return (p.code + (f":{mod}" if mod else ""), lambda d: self.reference_value(d, p, targets, mod))
        if t == "uri":
            mod = draw(st.sampled_from([None, "below", "above"]))
            return (p.code + (f":{mod}" if mod else ""), lambda d: self.uri_value(d, self.elems(rtype, p), mod))
        if t == "composite":
            return (p.code, lambda d: self.composite_value(d, rtype, p))
        raise AssertionError(t)

    # -- values ------------------------------------------------------------------------------------
    def token_value(self, d, rtype, p, mod, elems=None) -> str:
        elems = self.elems(rtype, p) if elems is None else elems
        if mod == "text":
            texts = [t for e, path in elems for t in ref.token_texts(e, path.type)]
            if not texts:
                return d(st.sampled_from(["гемо", "Emergency"]))
            return self.text_variant(d, d(st.sampled_from(texts)), d(st.sampled_from(["prefix", "prefix", "contains"])))
        if mod == "of-type":
            found = [
                f"{esc(c['system'])}|{esc(c['code'])}|{esc(e['value'])}"
                for e, path in elems
                if path.type == "Identifier" and isinstance(e, dict) and "value" in e
                for c in (e.get("type") or {}).get("coding", [])
                if c.get("system") and c.get("code")
            ]
            return d(st.sampled_from(found or [f"{V2_0203}|MR|A1"]))
        pairs = [(s, c, path.type) for e, path in elems for s, c in ref.token_pairs(e, path.type, getattr(path, "system", None))]
        if not pairs:
            return d(st.sampled_from(["718-7", "male", "final", "true", "zz"]))
        s, c, ftype = d(st.sampled_from(pairs))
        forms = [esc(c)]
        # No `|` forms on ContactPoint, uri, boolean (search.html: "only the [parameter]=[code] form is allowed").
        if ftype in ("Coding", "CodeableConcept", "Identifier") or (ftype == "code" and s):
            forms.append(f"|{esc(c)}")
            if s:
                forms += [f"{esc(s)}|{esc(c)}", f"{esc(s)}|{esc(c)}", f"{esc(s)}|"]
        if ftype == "string":
            forms.append(esc(c.upper()))
        return d(st.sampled_from(forms))

    def text_variant(self, d, text: str, how: str) -> str:
        if how == "prefix":
            k = d(st.integers(1, len(text)))
            part = text[:k]
        elif how == "contains":
            i = d(st.integers(0, len(text) - 1))
            j = d(st.integers(i + 1, len(text)))
            part = text[i:j]
        else:
            part = text
        variant = d(st.sampled_from(["same", "same", "lower", "upper", "folded", "extra"]))
        if variant == "lower":
            part = part.lower()
        elif variant == "upper":
            part = part.upper()
        elif variant == "folded":
            part = ref.fold(part)
        elif variant == "extra":
            part = part + "я"
        return esc(part)

    def string_value(self, d, elems, mod) -> str:
        texts = [t for e, path in elems for t in ref.string_texts(e, path.type)]
        if not texts:
            return esc(d(st.sampled_from(["Иван", "zz"])))
        text = d(st.sampled_from(texts))
        # Mostly the form the modifier is about; sometimes another, which it must treat differently
        # (a middle part for the default starts-with, a prefix for :exact).
        main = {"exact": "whole", "contains": "contains"}.get(mod, "prefix")
        return self.text_variant(d, text, d(st.sampled_from([main, main, main, "prefix", "contains"])))

    def date_value(self, d, p, ranges) -> str:
        finite = [(lo, hi) for lo, hi in ranges if ref.NEG_INF < lo and hi < ref.POS_INF]
        if finite and d(st.integers(0, 3)):
            # A stored value's own range, or the one just after it, at the stored precision:
            # the search range then shares a boundary with the value (eq/ne/ge/le/sa/eb edges).
            lo, hi = d(st.sampled_from(finite))
            precision = _precision_of(hi - lo)
            if precision is not None:
                t = d(st.sampled_from([lo, hi, lo - timedelta(milliseconds=1)]))  # the same, next, previous range
                tz = d(st.sampled_from(TZS)) if precision in ("minute", "second", "ms") else "Z"
                prefix = d(st.sampled_from(sorted(p.comparators))) if p.comparators else ""
                return prefix + _fmt(t, precision, tz)
        points = [x for lo, hi in ranges for x in (lo, hi) if ref.NEG_INF < x < ref.POS_INF]
        t = d(st.sampled_from(points)) if points else datetime(2000, 1, 1, tzinfo=UTC)
        t = t + d(st.sampled_from([timedelta(0), timedelta(0), timedelta(milliseconds=-1), timedelta(hours=12), timedelta(days=-1)]))
        text = _fmt(t, d(st.sampled_from(["day", "second", "month", "year", "minute", "ms"])), d(st.sampled_from(TZS)))
        prefixes = sorted(p.comparators) if p.comparators else []
        prefix = d(st.sampled_from(["", "", *prefixes]))
        return prefix + text

    def quantity_value(self, d, p, elems) -> str:
        qs = []
        for e, path in elems:
            if p.type == "number" and isinstance(e, (int, float)) and not isinstance(e, bool):
                qs.append({"value": e})
            elif isinstance(e, dict) and isinstance(e.get("value"), (int, float)):
                qs.append(e)
        q = d(st.sampled_from(qs)) if qs else {"value": 5.4, "system": UCUM, "code": "mg/dL", "unit": "mg/dL"}
        value, code = q["value"], q.get("code")
        unit_form = d(st.sampled_from(["", "ucum", "ucum", "code", "unit", "system", "convert"])) if p.type == "quantity" else ""
        if unit_form == "convert" and isinstance(code, str) and canonical(1, code):
            dims = canonical(1, code)[1]
            units = MASS_UNITS + TIME_UNITS + TEMP_UNITS + [("mg/L", ""), ("kg/m3", ""), ("mm[Hg]", ""), ("kPa", "")]
            others = [u for u, _ in units if (c := canonical(1, u)) and c[1] == dims]
            target = d(st.sampled_from(others or [code]))
            value = to_unit(value, code, target)
            code = target
            unit_form = "ucum"
        number = d(st.sampled_from(["plain", "plain", "zeros", "exp", "near"]))
        if number == "plain":
            text = format(Decimal(f"{float(value):.10g}").normalize(), "f")
        elif number == "zeros":
            text = format(Decimal(f"{float(value):.10g}").normalize(), "f")
            text = text + (".00" if "." not in text else "0")
        elif number == "exp":
            text = f"{float(value):.2e}"
        else:
            text = format(Decimal(f"{float(value) * d(st.sampled_from([1.1, 0.9, 1.05])):.10g}").normalize(), "f")
        prefix = d(st.sampled_from(["", "", *sorted(p.comparators)]))
        out = prefix + text
        if unit_form == "ucum":
            out += f"|{UCUM}|{esc(code or 'mg/dL')}"
        elif unit_form == "code" and code:
            out += f"||{esc(code)}"
        elif unit_form == "unit" and q.get("unit"):
            out += f"||{esc(q['unit'])}"
        elif unit_form == "system" and q.get("system"):
            out += f"|{esc(q['system'])}|"
        return out

    def reference_value(self, d, p, targets, mod) -> str:
        if mod == "identifier":
            idents = [t for t in targets if t[0] == "ident"]
            if not idents:
                return "http://example.org/mrn|none"
            _, s, v = d(st.sampled_from(idents))
            forms = [esc(v), f"|{esc(v)}"] + ([f"{esc(s)}|{esc(v)}", f"{esc(s)}|{esc(v)}"] if s else [])
            return d(st.sampled_from(forms))
        locals_ = [t for t in targets if t[0] == "local"]
        if mod is not None:
            same = [t for t in locals_ if t[1] == mod]
            return esc(d(st.sampled_from(same))[2]) if same else "none"
        urls = [t for t in targets if t[0] == "url"]
        if not locals_ and not urls:
            return d(st.sampled_from([f"{p.targets[0]}/none" if p.targets else "none", "none"]))
        t = d(st.sampled_from(locals_ + urls))
        if t[0] == "url":
            return esc(t[1])
        forms = [f"{t[1]}/{t[2]}", f"{t[1]}/{t[2]}", t[2], f"{BASE}/{t[1]}/{t[2]}"]
        return esc(d(st.sampled_from(forms)))

    def uri_value(self, d, elems, mod) -> str:
        uris = [e for e, path in elems if isinstance(e, str)]
        if not uris:
            return "http://example.org/none"
        u = d(st.sampled_from(uris))
        if mod == "below" and "://" in u:
            cut = d(st.integers(u.index("://") + 3, len(u)))
            return esc(u[:cut])
        if mod == "above" and "://" in u:
            return esc(u + d(st.sampled_from(["", "/_history/2", "-child", "/sub/x", "x"])))
        return esc(u)

    def composite_value(self, d, rtype, p) -> str:
        nodes = self.composite_nodes(rtype, p)
        if not nodes:
            junk = {"token": "x", "string": "x", "date": "2000", "quantity": "1", "number": "1", "reference": "x", "uri": "x"}
            return "$".join(junk[c.type] for c in p.components)
        parts = []
        for k, comp in enumerate(p.components):
            per = d(st.sampled_from(nodes))[k]  # components may come from different elements
            sub = SearchParam(comp.code, comp.type, "", (), frozenset(), frozenset(ref.PREFIXES))
            if comp.type == "token":
                parts.append(self.token_value(d, rtype, sub, None, per))
            elif comp.type == "string":
                parts.append(self.string_value(d, per, None))
            elif comp.type == "date":
                parts.append(self.date_value(d, sub, [r for e, path in per if (r := ref.value_range(e, path.type))]))
            elif comp.type in ("quantity", "number"):
                parts.append(self.quantity_value(d, sub, per))
            elif comp.type == "reference":
                parts.append(self.reference_value(d, sub, [t for e, path in per for t in ref.reference_targets(e, path, BASE)], None))
            else:
                parts.append(self.uri_value(d, per, None))
        return "$".join(parts)

    # -- whole queries -----------------------------------------------------------------------------
    def query(self, draw, rtype: str) -> list[tuple[str, str]]:
        out = []
        for _ in range(draw(st.integers(1, 3 if self.family == "mixed" else 2))):
            name, value = self.criterion(draw, rtype)
            n_or = 1 if name.endswith(":missing") else draw(st.integers(1, 3))
            out.append((name, ",".join(value(draw) for _ in range(n_or))))
            if draw(st.integers(0, 4)) == 0:  # AND repetition of the same name
                out.append((name, value(draw)))
        return out


@st.composite
def queries(draw, grammar: Grammar, types: list[str]):
    rtype = draw(st.sampled_from(types))
    return rtype, grammar.query(draw, rtype)


# == running and comparing ============================================================================
def url_of(rtype: str, params: list[tuple[str, str]]) -> str:
    q = "&".join(f"{quote(k, safe=':')}={quote(v, safe='')}" for k, v in params)
    return f"/fhir/{rtype}?{q}&_count={PAGE}"


def readable(rtype: str, params) -> str:
    return f"{rtype}?" + "&".join(f"{k}={v}" for k, v in params)


def server_ids(client: FHIRClient, url: str, shown: str) -> set[str]:
    got: set[str] = set()
    pages = 0
    while url:
        r = client.get(url)
        assert r.status_code == 200, f"GET {shown}: HTTP {r.status_code} {r.get_data(as_text=True)[:1500]}"
        bundle = r.get_json()
        for e in bundle.get("entry", []):
            if e.get("search", {}).get("mode", "match") == "match":
                got.add(e["resource"]["id"])
        nxt = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        url = None
        if nxt:
            parts = urlsplit(nxt[0])
            url = parts.path + (f"?{parts.query}" if parts.query else "")
        pages += 1
        assert pages < 100, f"{shown}: paging does not end"
    return got


def _related(store, rtype: str, rid: str) -> list[str]:
    """Type/id of resources that rtype/rid refers to or that refer to it (one hop), for the report."""
    out = []
    me = next((r for r in store.get(rtype, []) if r["id"] == rid), None)
    for t, resources in store.items():
        for r in resources:
            text = json.dumps(r)
            if (me is not None and (f'"{t}/{r["id"]}"' in json.dumps(me) or f'/{t}/{r["id"]}"' in json.dumps(me))) or f'{rtype}/{rid}"' in text:
                out.append(f"{t}/{r['id']}")
    return out


def report(store, rtype, params, server_only, eval_only, limit: int = 3000) -> str:
    lines = [
        f"search disagreement: GET /fhir/{readable(rtype, params)}",
        f"  server returned, evaluator did not: {sorted(server_only)}",
        f"  evaluator matched, server did not:  {sorted(eval_only)}",
    ]
    shown = set()
    for rid in sorted(server_only | eval_only)[:4]:
        for key in [f"{rtype}/{rid}", *_related(store, rtype, rid)[:6]]:
            if key in shown:
                continue
            shown.add(key)
            t, i = key.split("/", 1)
            res = next((r for r in store.get(t, []) if r["id"] == i), None)
            if res is not None:
                lines.append(f"  {key}: {json.dumps(res, ensure_ascii=False)[:limit]}")
    return "\n".join(lines)


def disagreement(client: FHIRClient, store: dict, rtype: str, params: list[tuple[str, str]]):
    """(server-only ids, evaluator-only ids), or None when the two agree."""
    shown = readable(rtype, params)
    try:
        parsed = parse(rtype, params, BASE)
    except FHIRError as exc:
        raise AssertionError(f"the server's parser rejects the generated query {shown}: {exc}") from None
    assert not parsed.unknown, f"{shown}: the server does not understand {parsed.unknown}"
    now = fhirtime.now()
    with pinned_clock(now):
        got = server_ids(client, url_of(rtype, params), shown)
    expected = ref.evaluate(rtype, parsed.criteria, store, BASE, now)
    server_only, eval_only = got - expected, expected - got
    return (server_only, eval_only) if server_only or eval_only else None


@contextlib.contextmanager
def pinned_clock(now: datetime):
    """The server's search clock (`ap` is measured from it) fixed at `now` for one request."""
    saved = search_compile.clock
    search_compile.clock = lambda: now
    try:
        yield
    finally:
        search_compile.clock = saved


def minimize_query(client, store, rtype, params):
    """Fewest AND terms and OR values that still disagree."""
    i = 0
    while len(params) > 1 and i < len(params):
        trial = params[:i] + params[i + 1 :]
        if disagreement(client, store, rtype, trial):
            params = trial
        else:
            i += 1
    for i, (name, value) in enumerate(params):
        values = ref.split_escaped(value, ",")
        if len(values) > 1:
            for v in values:
                trial = params[:i] + [(name, v)] + params[i + 1 :]
                if disagreement(client, store, rtype, trial):
                    params = trial
                    break
    return params


REQUIRED = {"resourceType", "id", "status", "code", "class"}


def store_resources(resources: list[dict]):
    """A fresh app holding these resources (None when the server refuses one), and what it holds."""
    client, close = fresh_app()
    for res in resources:
        r = client.put(f"/fhir/{res['resourceType']}/{res['id']}", res)
        if r.status_code != 201:
            close()
            return None
    return client, close, read_back(client, ("Patient", "Encounter", "Observation"))


def minimize_resources(resources: list[dict], rtype, params):
    """Fewest resources, then fewest elements, on which the query still disagrees (random data only)."""

    def fails(candidate):
        got = store_resources(candidate)
        if got is None:
            return False
        client, close, store = got
        try:
            return disagreement(client, store, rtype, params) is not None
        finally:
            close()

    if not fails(resources):
        return resources
    i = 0
    while i < len(resources):
        trial = resources[:i] + resources[i + 1 :]
        if fails(trial):
            resources = trial
        else:
            i += 1
    for i in range(len(resources)):
        for key in [k for k in resources[i] if k not in REQUIRED]:
            for option in _smaller(resources[i][key]):
                res = {k: v for k, v in resources[i].items() if k != key}
                if option is not _DROP:
                    res[key] = option
                trial = resources[:i] + [res] + resources[i + 1 :]
                if fails(trial):
                    resources = trial
                    break
    return resources


_DROP = object()


def _smaller(value):
    """Simpler variants of an element: dropped, a list without one item, a dict without one key."""
    yield _DROP
    if isinstance(value, list) and len(value) > 1:
        for j in range(len(value)):
            yield value[:j] + value[j + 1 :]
    if isinstance(value, dict) and len(value) > 1:
        for k in value:
            yield {kk: vv for kk, vv in value.items() if kk != k}
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) and len(value[0]) > 1:
        for k in value[0]:
            yield [{kk: vv for kk, vv in value[0].items() if kk != k}]


def check(client: FHIRClient, store: dict, rtype: str, params: list[tuple[str, str]], resources: list[dict] | None = None) -> None:
    note(f"query: {readable(rtype, params)}")
    if disagreement(client, store, rtype, params) is None:
        return
    params = minimize_query(client, store, rtype, params)
    if resources is not None:
        resources = minimize_resources(resources, rtype, params)
        got = store_resources(resources)
        if got is not None:
            client2, close, store2 = got
            try:
                found = disagreement(client2, store2, rtype, params)
                if found:
                    raise AssertionError(report(store2, rtype, params, *found))
            finally:
                close()
    found = disagreement(client, store, rtype, params)
    assert found is None, report(store, rtype, params, *found)


def read_back(client: FHIRClient, types) -> dict[str, list[dict]]:
    """The current version of every resource of these types, as the server holds it (meta included)."""
    store: dict[str, list[dict]] = {}
    for rtype in types:
        newest: dict[str, dict | None] = {}
        url = f"/fhir/{rtype}/_history?_count={PAGE}"
        while url:
            r = client.get(url)
            assert r.status_code == 200, r.get_data(as_text=True)[:500]
            bundle = r.get_json()
            for e in bundle.get("entry", []):
                rid = e["fullUrl"].rsplit("/", 1)[-1]
                if rid not in newest:
                    newest[rid] = e.get("resource") if e["request"]["method"] != "DELETE" else None
            nxt = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
            url = None
            if nxt:
                parts = urlsplit(nxt[0])
                url = parts.path + "?" + parts.query
        store[rtype] = [res for res in newest.values() if res is not None]
    return store


def fresh_app():
    s = make_settings()
    app = create_app(s)

    def close():
        store = app.config["FHIR_STORE"]
        if not s.embedded:
            store.engine.client.drop_database(s.db_name)
        store.engine.close()

    return FHIRClient(app.test_client()), close


# == random data =====================================================================================
@pytest.mark.parametrize("family", FAMILIES)
@DIFF_SETTINGS
@given(data=st.data())
def test_random_resources(family, data):
    resources = data.draw(datasets(), label="resources")
    client, close = fresh_app()
    try:
        for res in resources:
            r = client.put(f"/fhir/{res['resourceType']}/{res['id']}", res)
            assert r.status_code == 201, f"PUT {res['resourceType']}/{res['id']}: {r.status_code} {r.get_data(as_text=True)[:800]}"
        store = read_back(client, ("Patient", "Encounter", "Observation"))
        grammar = Grammar(store, family)
        for i in range(RANDOM_QUERIES):
            rtype, params = data.draw(queries(grammar, ["Patient", "Observation", "Encounter"]), label=f"query {i}")
            check(client, store, rtype, params, resources)
    finally:
        close()


# == Synthea =========================================================================================
SYNTHEA_DIR = SHARED_FIXTURES / "synthea" / "smart-r4-2019"
SYNTHEA_PATIENTS = 3
SYNTHEA_TYPES = ["Patient", "Observation", "Encounter", "Condition", "MedicationRequest", "DiagnosticReport"]


@pytest.fixture(scope="module")
def synthea():
    if not SYNTHEA_DIR.exists():
        pytest.skip(f"shared fixture {SYNTHEA_DIR} not present")
    support = sorted(SYNTHEA_DIR.glob("hospitalInformation*.json")) + sorted(SYNTHEA_DIR.glob("practitionerInformation*.json"))
    patients = sorted(
        (p for p in SYNTHEA_DIR.glob("*.json") if p not in support), key=lambda p: (p.stat().st_size, p.name)
    )[:SYNTHEA_PATIENTS]
    client, close = fresh_app()
    types = set()
    for path in support + patients:
        raw = path.read_bytes()
        types |= {e["resource"]["resourceType"] for e in json.loads(raw).get("entry", [])}
        r = client.request("POST", "/fhir", data=raw)
        assert r.status_code == 200, f"{path.name}: {r.status_code} {r.get_data(as_text=True)[:800]}"
        bad = [e["response"]["status"] for e in r.get_json().get("entry", []) if not e["response"]["status"].startswith("2")]
        assert not bad, f"{path.name}: {bad[:5]}"
    store = read_back(client, sorted(types))
    yield Loaded(client, store)
    close()


class Loaded:
    """The Synthea app and what it holds (a short repr: Hypothesis prints test arguments)."""

    def __init__(self, client, store):
        self.client, self.store = client, store

    def __repr__(self) -> str:
        return f"<Synthea {sum(len(v) for v in self.store.values())} resources>"


@pytest.mark.parametrize("family", FAMILIES)
@settings(DIFF_SETTINGS, max_examples=SYNTHEA_EXAMPLES)
@given(data=st.data())
def test_synthea(synthea, family, data):
    client, store = synthea.client, synthea.store
    grammar = Grammar(store, family)
    for i in range(SYNTHEA_QUERIES):
        rtype, params = data.draw(queries(grammar, SYNTHEA_TYPES), label=f"query {i}")
        check(client, store, rtype, params)
