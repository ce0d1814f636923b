"""Write-time extraction of search values: `fhir_server.search.index.index_resource` and `fold`.

Pure unit tests, no app and no database. For each FHIR datatype a search parameter
indexes (R4 search.html 3.1.1.4.x, the parameter table resources/search_params.json)
the exact `idx` entries are asserted, plus the scalar sort keys `sk`, and that a
parameter without values has no `idx` key (what `:missing` tests).

Every index produced through `idx_of()` is also checked to be storable as MongoDB
stores it: BSON-encodable, no key starting with `$` or holding a `.`, every datetime
timezone-aware and on a whole millisecond (BSON dates hold milliseconds, so anything
finer would be silently cut on write).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone

import bson
import pytest

from fhir_server.search.index import MAX_DATE, MIN_DATE, fold, index_resource

UTC = timezone.utc
BASE = "http://example.org/fhir"
UCUM = "http://unitsofmeasure.org"
ISO4217 = "urn:iso:std:iso:4217"
LOINC = "http://loinc.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def D(y, mo=1, d=1, h=0, mi=0, s=0, ms=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=UTC)


# -- storability as MongoDB reads it ------------------------------------------------------------------------
def storage_problems(node, where: str = "") -> list[str]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                out.append(f"{where}: non-string key {k!r}")
                continue
            if k.startswith("$") or "." in k or not k:
                out.append(f"{where}: key {k!r} cannot be stored/queried as a field")
            out += storage_problems(v, f"{where}.{k}")
    elif isinstance(node, list):
        for n, v in enumerate(node):
            out += storage_problems(v, f"{where}[{n}]")
    elif isinstance(node, datetime):
        if node.tzinfo is None:
            out.append(f"{where}: naive datetime")
        elif node.microsecond % 1000:
            out.append(f"{where}: {node.isoformat()} is finer than BSON's milliseconds")
    elif not isinstance(node, (type(None), bool, int, float, str)):
        out.append(f"{where}: {type(node).__name__} is not a BSON value")
    return out


def idx_of(resource: dict, base: str | None = BASE) -> dict:
    out = index_resource(resource, base=base)
    assert set(out) == {"idx", "sk"}
    assert storage_problems(out) == [], storage_problems(out)
    bson.encode(out)
    return out


def idx(resource: dict, code: str | None = None, base: str | None = BASE):
    got = idx_of(resource, base)["idx"]
    return got if code is None else got.get(code)


def patient(**kw) -> dict:
    return {"resourceType": "Patient", "id": "p", **kw}


def obs(**kw) -> dict:
    return {"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"}, **kw}


# == fold ==================================================================================================
class TestFold:
    @pytest.mark.parametrize(
        "text, folded",
        [
            ("Smith", "smith"),
            ("SMITH", "smith"),
            ("Éléonore", "eleonore"),
            ("Zoë Ångström", "zoe angstrom"),
            ("Çağla", "cagla"),
            ("Straße", "strasse"),
            ("ﬁne", "fine"),
            ("ИВАНОВ Иван", "иванов иван"),
            ("Ёлкина", "елкина"),
            ("ёлка", "елка"),
            ("Е\u0308лка", "елка"),  # Ё written as Е + combining diaeresis
            ("Йошкар-Ола", "йошкар-ола"),
            ("йод", "йод"),
            ("ЙОД", "йод"),
            ("Иван Йорк", "иван йорк"),
            ("Smith-Ёлкин", "smith-елкин"),
        ],
    )
    def test_case_and_accents(self, text, folded):
        assert fold(text) == folded

    @pytest.mark.parametrize("text", ["йод", "ЙОД", "Йошкар-Ола"])
    def test_short_i_is_kept_whichever_unicode_form_it_arrives_in(self, text):
        # R4 search.html 3.1.1.4.7: string matching is case- and accent-insensitive; the server keeps
        # й apart from и (fold's own contract). NFC "й" (U+0439) and NFD "и"+U+0306 are canonically
        # equivalent (Unicode 3.7), so both spellings of one name must fold alike.
        decomposed = unicodedata.normalize("NFD", text)
        assert decomposed != text
        assert fold(decomposed) == fold(text)

    def test_short_i_is_not_i(self):
        assert fold("й") != fold("и")
        assert fold("Й") == "й"

    def test_idempotent(self):
        for s in ("Ёлкина", "Éléonore", "Йод", "Straße"):
            assert fold(fold(s)) == fold(s)


# == token (3.1.1.4.9) =======================================================================================
class TestToken:
    def test_coding(self):
        got = idx(patient(meta={"tag": [
            {"system": "http://t", "code": "a", "display": "Тег А"},
            {"code": "b"},
            {"system": "http://t", "display": "display only"},
        ]}), "_tag")
        assert got == [{"s": "http://t", "c": "a"}, {"x": "тег а"}, {"s": None, "c": "b"}, {"x": "display only"}]

    def test_codeable_concept_with_text(self):
        got = idx(obs(code={
            "coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic BP"}, {"system": "http://s", "code": "1"}],
            "text": "Систолическое давление",
        }), "code")
        assert got == [
            {"s": LOINC, "c": "8480-6"},
            {"x": "systolic bp"},
            {"s": "http://s", "c": "1"},
            {"x": "систолическое давление"},
        ]

    def test_string_element_is_case_folded(self):
        # search.html 3.1.1.4.9: "If the underlying data type is string then the search is not
        # case sensitive" (Medication-lot-number: Medication.batch.lotNumber, a string)
        med = {"resourceType": "Medication", "id": "m", "batch": {"lotNumber": "AB-12x"}}
        assert idx_of(med)["idx"]["lot-number"] == [{"s": None, "c": "ab-12x"}]
        # a code keeps its case
        assert idx(patient(gender="male"), "gender")[0]["c"] == "male"

    def test_codeable_concept_text_only(self):
        out = idx_of(obs(code={"text": "АД"}))
        assert out["idx"]["code"] == [{"x": "ад"}]
        assert "code" not in out["sk"]

    def test_identifier_with_type(self):
        got = idx(patient(identifier=[
            {
                "system": "urn:oid:1.2.643.100.3", "value": "123-456-789 00",
                "type": {"coding": [{"system": V2_0203, "code": "SB"}, {"code": "LOCAL"}], "text": "СНИЛС"},
            },
            {"value": "no-system"},
            {"system": "http://s"},  # no value: nothing to search by
        ]), "identifier")
        assert got == [
            {"s": "urn:oid:1.2.643.100.3", "c": "123-456-789 00"},
            {"s": "urn:oid:1.2.643.100.3", "c": "12345678900"},  # a SNILS is also kept without separators (profiles_ru)
            {"ot": f"{V2_0203}|SB|123-456-789 00"},
            {"ot": "|LOCAL|123-456-789 00"},
            {"x": "снилс"},
            {"s": None, "c": "no-system"},
        ]

    def test_contact_point_and_where_system(self):
        res = patient(telecom=[
            {"system": "phone", "value": "+7 900 000-00-00", "use": "mobile"},
            {"system": "email", "value": "a@example.ru"},
            {"system": "phone", "value": "+7 495 000-00-00"},
            {"value": "no-system"},
            {"system": "phone"},
        ])
        got = idx_of(res)["idx"]
        assert got["phone"] == [{"s": "phone", "c": "+7 900 000-00-00"}, {"s": "phone", "c": "+7 495 000-00-00"}]
        assert got["email"] == [{"s": "email", "c": "a@example.ru"}]
        assert got["telecom"] == [
            {"s": "phone", "c": "+7 900 000-00-00"},
            {"s": "email", "c": "a@example.ru"},
            {"s": "phone", "c": "+7 495 000-00-00"},
            {"s": None, "c": "no-system"},
        ]

    def test_no_phone_no_key(self):
        got = idx(patient(telecom=[{"system": "email", "value": "a@example.ru"}]))
        assert "phone" not in got and got["email"] == [{"s": "email", "c": "a@example.ru"}]

    @pytest.mark.parametrize("value, code", [(True, "true"), (False, "false")])
    def test_boolean(self, value, code):
        assert idx(patient(active=value), "active") == [{"c": code}]

    def test_boolean_that_is_not_a_boolean(self):
        assert idx(patient(active="yes"), "active") is None

    def test_code_and_string_elements(self):
        got = idx(patient(gender="female", address=[{"use": "home", "city": "Москва"}]))
        # A code carries the system of its required binding (here AdministrativeGender).
        assert got["gender"] == [{"s": "http://hl7.org/fhir/administrative-gender", "c": "female"}]
        assert got["address-use"] == [{"s": "http://hl7.org/fhir/address-use", "c": "home"}]

    def test_deceased(self):
        assert idx(patient(deceasedDateTime="2020-01-01"), "deceased") == [{"c": "true"}]
        assert idx(patient(deceasedBoolean=True), "deceased") == [{"c": "true"}]
        assert idx(patient(deceasedBoolean=False), "deceased") == [{"c": "false"}]

    def test_deceased_absent_is_false(self):
        # R4 Patient-deceased: `Patient.deceased.exists() and Patient.deceased != false`. With no
        # deceased[x] that is `false and {}`, which FHIRPath evaluates to false (fhirpath.html
        # 6.5.1 "and"): the parameter's value is `false`, so Patient?deceased=false finds the living.
        assert idx(patient(gender="male"), "deceased") == [{"c": "false"}]

    def test_duplicates_are_stored_once(self):
        c = {"system": "http://t", "code": "a"}
        assert idx(patient(meta={"tag": [c, dict(c)]}), "_tag") == [{"s": "http://t", "c": "a"}]


# == string (3.1.1.4.7) =====================================================================================
class TestString:
    NAME = {
        "use": "official", "family": "Ёлкина", "given": ["Анна", "Мария"], "prefix": ["Mrs."],
        "suffix": ["PhD"], "text": "Анна Ёлкина", "period": {"start": "2000"},
    }

    def test_human_name_parts(self):
        got = idx(patient(name=[self.NAME, {"family": "Smith", "given": ["Ann"]}]))
        assert got["name"] == [
            {"f": "елкина", "e": "Ёлкина"},
            {"f": "анна", "e": "Анна"},
            {"f": "мария", "e": "Мария"},
            {"f": "mrs.", "e": "Mrs."},
            {"f": "phd", "e": "PhD"},
            {"f": "анна елкина", "e": "Анна Ёлкина"},
            {"f": "smith", "e": "Smith"},
            {"f": "ann", "e": "Ann"},
        ]
        assert got["phonetic"] == got["name"]
        assert got["family"] == [{"f": "елкина", "e": "Ёлкина"}, {"f": "smith", "e": "Smith"}]
        assert got["given"] == [{"f": "анна", "e": "Анна"}, {"f": "мария", "e": "Мария"}, {"f": "ann", "e": "Ann"}]

    def test_address_parts(self):
        addr = {
            "use": "home", "type": "both", "text": "Москва, ул. Ленина, 1",
            "line": ["ул. Ленина, 1", "кв. 2"], "city": "Москва", "district": "ЦАО", "state": "Москва",
            "postalCode": "101000", "country": "RU",
        }
        got = idx(patient(address=[addr]))
        assert got["address"] == [
            {"f": "ул. ленина, 1", "e": "ул. Ленина, 1"},
            {"f": "кв. 2", "e": "кв. 2"},
            {"f": "москва", "e": "Москва"},
            {"f": "цао", "e": "ЦАО"},
            {"f": "101000", "e": "101000"},
            {"f": "ru", "e": "RU"},
            {"f": "москва, ул. ленина, 1", "e": "Москва, ул. Ленина, 1"},
        ]
        assert got["address-city"] == [{"f": "москва", "e": "Москва"}]
        assert got["address-state"] == [{"f": "москва", "e": "Москва"}]
        assert got["address-postalcode"] == [{"f": "101000", "e": "101000"}]
        assert got["address-country"] == [{"f": "ru", "e": "RU"}]

    def test_name_without_string_parts_has_no_values(self):
        got = idx(patient(name=[{"use": "official"}]))
        assert "name" not in got and "family" not in got


# == date (3.1.1.4.2): [low, high) at millisecond precision ================================================
class TestDate:
    @pytest.mark.parametrize(
        "value, low, high",
        [
            ("2024", D(2024), D(2025)),
            ("2024-02", D(2024, 2), D(2024, 3)),
            ("2024-12", D(2024, 12), D(2025, 1)),
            ("2024-02-29", D(2024, 2, 29), D(2024, 3, 1)),
            ("2024-03-05T10:30:15Z", D(2024, 3, 5, 10, 30, 15), D(2024, 3, 5, 10, 30, 16)),
            ("2024-03-05T10:30:15+03:00", D(2024, 3, 5, 7, 30, 15), D(2024, 3, 5, 7, 30, 16)),
            ("2024-01-01T00:00:00+14:00", D(2023, 12, 31, 10), D(2023, 12, 31, 10, 0, 1)),
            ("2024-03-05T10:30:15.5Z", D(2024, 3, 5, 10, 30, 15, 500), D(2024, 3, 5, 10, 30, 15, 600)),
            ("2024-03-05T10:30:15.123Z", D(2024, 3, 5, 10, 30, 15, 123), D(2024, 3, 5, 10, 30, 15, 124)),
            ("2024-03-05T10:30:15.123456Z", D(2024, 3, 5, 10, 30, 15, 123), D(2024, 3, 5, 10, 30, 15, 124)),
            ("2024-12-31T23:59:59.9995Z", D(2024, 12, 31, 23, 59, 59, 999), D(2025)),
        ],
    )
    def test_date_time_precision(self, value, low, high):
        assert idx(obs(effectiveDateTime=value), "date") == [{"l": low, "h": high}]

    def test_date_and_instant(self):
        assert idx(patient(birthDate="1980-05-17"), "birthdate") == [{"l": D(1980, 5, 17), "h": D(1980, 5, 18)}]
        assert idx(obs(effectiveInstant="2024-03-05T10:30:15.250+03:00"), "date") == [
            {"l": D(2024, 3, 5, 7, 30, 15, 250), "h": D(2024, 3, 5, 7, 30, 15, 251)}
        ]

    @pytest.mark.parametrize("value", ["2023-02-29", "2024-13", "24", "yesterday", "2024-03-05T10"])
    def test_invalid_dates_have_no_value(self, value):
        assert idx(patient(birthDate=value), "birthdate") is None

    def test_period(self):
        got = idx(obs(effectivePeriod={"start": "2024-01-10", "end": "2024-02"}), "date")
        assert got == [{"l": D(2024, 1, 10), "h": D(2024, 3)}]

    def test_period_open_at_the_start(self):
        assert idx(obs(effectivePeriod={"end": "2024-02-01"}), "date") == [{"l": MIN_DATE, "h": D(2024, 2, 2)}]
        assert MIN_DATE == D(1)

    def test_period_open_at_the_end(self):
        assert idx(obs(effectivePeriod={"start": "2024-01-10T08:00:00Z"}), "date") == [
            {"l": D(2024, 1, 10, 8), "h": MAX_DATE}
        ]
        assert MAX_DATE == D(9999, 12, 31, 23, 59, 59, 999)

    def test_empty_period(self):
        assert idx(obs(effectivePeriod={}), "date") is None

    def test_timing_is_its_outer_limits(self):
        # R4 3.1.1.4.2: for a Timing "only the outer limits matter".
        timing = {
            "event": ["2024-03-05", "2024-01-10T08:00:00Z"],
            "repeat": {"boundsPeriod": {"start": "2024-02-01", "end": "2024-06"}, "frequency": 2, "period": 1, "periodUnit": "d"},
        }
        got = idx({"resourceType": "ServiceRequest", "id": "s", "status": "active", "intent": "order",
                   "subject": {"reference": "Patient/1"}, "occurrenceTiming": timing}, "occurrence")
        assert got == [{"l": D(2024, 1, 10, 8), "h": D(2024, 7)}]

    def test_timing_events_only_and_empty(self):
        sr = {"resourceType": "ServiceRequest", "id": "s", "status": "active", "intent": "order", "subject": {"reference": "Patient/1"}}
        assert idx({**sr, "occurrenceTiming": {"event": ["2024-03-05"]}}, "occurrence") == [{"l": D(2024, 3, 5), "h": D(2024, 3, 6)}]
        assert idx({**sr, "occurrenceTiming": {"code": {"text": "BID"}}}, "occurrence") is None

    def test_each_timing_and_period_separately(self):
        plan = {
            "resourceType": "CarePlan", "id": "c", "status": "active", "intent": "plan", "subject": {"reference": "Patient/1"},
            "activity": [
                {"detail": {"status": "scheduled", "scheduledTiming": {"event": ["2024-03-05"]}}},
                {"detail": {"status": "scheduled", "scheduledTiming": {"repeat": {"boundsPeriod": {"end": "2024-01-01"}}}}},
                {"detail": {"status": "scheduled", "scheduledPeriod": {"start": "2023"}}},
            ],
        }
        assert idx(plan, "activity-date") == [
            {"l": D(2023), "h": MAX_DATE},
            {"l": D(2024, 3, 5), "h": D(2024, 3, 6)},
            {"l": MIN_DATE, "h": D(2024, 1, 2)},
        ]


# == number and quantity (3.1.1.4.1, 3.1.1.4.6) ===========================================================
class TestNumberQuantity:
    def test_number(self):
        got = idx({"resourceType": "RiskAssessment", "id": "r", "status": "final", "subject": {"reference": "Patient/1"},
                   "prediction": [{"probabilityDecimal": 0.25}, {"probabilityDecimal": 1}, {"probabilityDecimal": True}]})
        assert got["probability"] == [{"v": 0.25}, {"v": 1.0}]

    def test_integer(self):
        got = idx({"resourceType": "MolecularSequence", "id": "m", "coordinateSystem": 0,
                   "referenceSeq": {"windowStart": 22125500, "windowEnd": 22125510}})
        assert got["window-start"] == [{"v": 22125500.0}] and got["window-end"] == [{"v": 22125510.0}]

    def test_ucum_quantity_has_canonical_value_and_code(self):
        got = idx(obs(valueQuantity={"value": 1, "unit": "g/dL", "system": UCUM, "code": "g/dL"}), "value-quantity")
        assert got == [{"v": 1.0, "s": UCUM, "c": "g/dL", "u": "g/dL", "cv": 10000.0, "cc": "g.m-3"}]

    @pytest.mark.parametrize(
        "value, code, cv, cc",
        [
            (120, "mm[Hg]", 15998640.0, "g.m-1.s-2"),
            (5.4, "mg", 0.0054, "g"),
            (36.6, "Cel", 309.75, "K"),
            (10, "mmol/L", 10.0, "mol.m-3"),
            (75, "%", 0.75, "1"),
        ],
    )
    def test_canonical_ucum(self, value, code, cv, cc):
        (entry,) = idx(obs(valueQuantity={"value": value, "system": UCUM, "code": code}), "value-quantity")
        assert entry["cc"] == cc
        assert entry["cv"] == pytest.approx(cv, rel=1e-12)
        assert entry["v"] == float(value) and entry["c"] == code and entry["u"] is None

    def test_quantity_without_ucum(self):
        got = idx(obs(valueQuantity={"value": 3, "unit": "tabs", "system": "http://x.org/units", "code": "TAB"}), "value-quantity")
        assert got == [{"v": 3.0, "s": "http://x.org/units", "c": "TAB", "u": "tabs"}]
        got = idx(obs(valueQuantity={"value": 3, "unit": "mg"}), "value-quantity")
        assert got == [{"v": 3.0, "s": None, "c": None, "u": "mg"}]

    def test_ucum_code_not_understood_has_no_canonical(self):
        got = idx(obs(valueQuantity={"value": 3, "system": UCUM, "code": "foo"}), "value-quantity")
        assert got == [{"v": 3.0, "s": UCUM, "c": "foo", "u": None}]

    def test_quantity_without_value(self):
        assert idx(obs(valueQuantity={"unit": "mg", "system": UCUM, "code": "mg"}), "value-quantity") is None

    def test_age_and_duration(self):
        got = idx({"resourceType": "Condition", "id": "c", "subject": {"reference": "Patient/1"},
                   "onsetAge": {"value": 42, "unit": "yr", "system": UCUM, "code": "a"}}, "onset-age")
        assert got == [{"v": 42.0, "s": UCUM, "c": "a", "u": "yr", "cv": 1325419200.0, "cc": "s"}]
        got = idx({"resourceType": "Encounter", "id": "e", "status": "finished", "class": {"code": "AMB"},
                   "length": {"value": 30, "unit": "min", "system": UCUM, "code": "min"}}, "length")
        assert got == [{"v": 30.0, "s": UCUM, "c": "min", "u": "min", "cv": 1800.0, "cc": "s"}]

    def test_money(self):
        got = idx({"resourceType": "ChargeItem", "id": "ci", "status": "billable", "code": {"text": "x"},
                   "subject": {"reference": "Patient/1"}, "priceOverride": {"value": 10.5, "currency": "EUR"}}, "price-override")
        assert got == [{"v": 10.5, "s": ISO4217, "c": "EUR", "u": None}]


# == reference (3.1.1.4.10) =================================================================================
class TestReference:
    def test_relative(self):
        assert idx(obs(subject={"reference": "Patient/p1"}), "subject") == [{"t": "Patient", "i": "p1"}]

    def test_version_specific_is_the_resource(self):
        assert idx(obs(subject={"reference": "Patient/p1/_history/3"}), "subject") == [{"t": "Patient", "i": "p1"}]

    def test_absolute_on_this_server_is_local(self):
        assert idx(obs(subject={"reference": f"{BASE}/Patient/p1"}), "subject") == [{"t": "Patient", "i": "p1"}]
        assert idx(obs(subject={"reference": f"{BASE}/Patient/p1/_history/2"}), "subject") == [{"t": "Patient", "i": "p1"}]

    def test_absolute_without_a_known_base_is_a_url(self):
        assert idx(obs(subject={"reference": f"{BASE}/Patient/p1"}), "subject", base=None) == [{"u": f"{BASE}/Patient/p1"}]

    def test_external(self):
        assert idx(obs(subject={"reference": "http://other.org/fhir/Patient/p9"}), "subject") == [
            {"u": "http://other.org/fhir/Patient/p9"}
        ]
        assert idx(obs(subject={"reference": "urn:uuid:6b0d5f8e-0000-0000-0000-000000000001"}), "subject") == [
            {"u": "urn:uuid:6b0d5f8e-0000-0000-0000-000000000001"}
        ]

    def test_identifier(self):
        got = idx(obs(performer=[
            {"reference": "Practitioner/d1", "identifier": {"system": "http://s", "value": "v"}},
            {"identifier": {"value": "only-value"}},
        ]), "performer")
        assert got == [{"t": "Practitioner", "i": "d1"}, {"is": "http://s", "ic": "v"}, {"is": None, "ic": "only-value"}]

    def test_contained_and_display_only_are_not_searchable(self):
        assert idx(obs(subject={"reference": "#c1"}), "subject") is None
        assert idx(obs(subject={"display": "Иванов"}), "subject") is None

    def test_where_resolve_is_patient(self):
        # Observation-patient: Observation.subject.where(resolve() is Patient)
        o = idx(obs(subject={"reference": "Patient/p1"}))
        assert o["patient"] == [{"t": "Patient", "i": "p1"}] and o["subject"] == o["patient"]
        o = idx(obs(subject={"reference": "Group/g1"}))
        assert "patient" not in o and o["subject"] == [{"t": "Group", "i": "g1"}]

    def test_where_resolve_is_patient_on_external_urls(self):
        assert idx(obs(subject={"reference": "http://other.org/fhir/Patient/p9"}), "patient") == [
            {"u": "http://other.org/fhir/Patient/p9"}
        ]
        assert idx(obs(subject={"reference": "http://other.org/fhir/Group/g9"}), "patient") is None

    def test_where_resolve_is_patient_on_a_version_specific_external_url(self):
        # references.html: an absolute literal reference is [base]/[type]/[id], optionally with
        # /_history/[vid]; it resolves to a Patient here as surely as without the version.
        url = "http://other.org/fhir/Patient/p9/_history/2"
        assert idx(obs(subject={"reference": url}), "patient") == [{"u": url}]

    def test_where_resolve_by_the_reference_type(self):
        assert idx(obs(subject={"identifier": {"system": "http://s", "value": "1"}, "type": "Patient"}), "patient") == [
            {"is": "http://s", "ic": "1"}
        ]
        assert idx(obs(subject={"identifier": {"system": "http://s", "value": "1"}, "type": "Group"}), "patient") is None
        # no type and no literal reference: nothing says it is a Patient (FHIRPath resolve() of an
        # unresolvable item adds nothing, so where(resolve() is Patient) drops it)
        assert idx(obs(subject={"identifier": {"system": "http://s", "value": "1"}}), "patient") is None
        # the literal reference gives the type of the identifier's target too
        ident = {"system": "http://s", "value": "1"}
        assert idx(obs(subject={"reference": "Patient/p1", "identifier": ident}), "patient") == [
            {"t": "Patient", "i": "p1"}, {"is": "http://s", "ic": "1"}
        ]
        assert idx(obs(subject={"reference": "Group/g1", "identifier": ident}), "patient") is None
        assert idx(obs(subject={"reference": "Group/g1", "identifier": ident}), "subject") == [
            {"t": "Group", "i": "g1"}, {"is": "http://s", "ic": "1"}
        ]

    def test_where_resolve_over_a_list(self):
        appt = {
            "resourceType": "Appointment", "id": "a", "status": "booked",
            "participant": [
                {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"},
                {"actor": {"reference": f"{BASE}/Location/l1"}, "status": "accepted"},
            ],
        }
        got = idx(appt)
        assert got["patient"] == [{"t": "Patient", "i": "p1"}]
        assert got["practitioner"] == [{"t": "Practitioner", "i": "d1"}]
        assert got["location"] == [{"t": "Location", "i": "l1"}]
        assert got["actor"] == [{"t": "Patient", "i": "p1"}, {"t": "Practitioner", "i": "d1"}, {"t": "Location", "i": "l1"}]

    def test_canonical(self):
        qr = {"resourceType": "QuestionnaireResponse", "id": "q", "status": "completed",
              "questionnaire": "http://x.org/Questionnaire/q1|2.0"}
        assert idx(qr, "questionnaire") == [{"u": "http://x.org/Questionnaire/q1"}]
        cp = {"resourceType": "CarePlan", "id": "c", "status": "active", "intent": "plan", "subject": {"reference": "Patient/1"},
              "instantiatesCanonical": ["http://x.org/PlanDefinition/a", "http://x.org/PlanDefinition/b|1"]}
        assert idx(cp, "instantiates-canonical") == [{"u": "http://x.org/PlanDefinition/a"}, {"u": "http://x.org/PlanDefinition/b"}]

    def test_related_artifact_where_type(self):
        # R4 PlanDefinition-composed-of: PlanDefinition.relatedArtifact.where(type='composed-of').resource
        # (and depends-on: ...where(type='depends-on').resource | PlanDefinition.library): the where()
        # selects relatedArtifact elements; their `resource` canonicals are the values.
        pd = {
            "resourceType": "PlanDefinition", "id": "pd", "status": "active",
            "relatedArtifact": [
                {"type": "composed-of", "resource": "http://x.org/ActivityDefinition/a1|1.0"},
                {"type": "depends-on", "resource": "http://x.org/Library/l1"},
                {"type": "citation", "citation": "A book"},
            ],
            "library": ["http://x.org/Library/l2"],
        }
        got = idx(pd)
        assert got.get("composed-of") == [{"u": "http://x.org/ActivityDefinition/a1"}]
        assert got.get("depends-on") == [{"u": "http://x.org/Library/l1"}, {"u": "http://x.org/Library/l2"}]
        assert "successor" not in got and "predecessor" not in got and "derived-from" not in got


# == uri (3.1.1.4.13) =======================================================================================
class TestUri:
    def test_uri(self):
        vs = {"resourceType": "ValueSet", "id": "v", "status": "active", "url": "http://x.org/fhir/ValueSet/a",
              "compose": {"include": [{"system": "http://loinc.org"}, {"system": "http://snomed.info/sct"}]}}
        got = idx(vs)
        assert got["url"] == [{"u": "http://x.org/fhir/ValueSet/a"}]
        assert got["reference"] == [{"u": "http://loinc.org"}, {"u": "http://snomed.info/sct"}]

    def test_meta_profile_and_source(self):
        got = idx(patient(meta={"profile": ["http://hl7.org/fhir/StructureDefinition/Patient"], "source": "urn:uuid:1"}))
        assert got["_profile"] == [{"u": "http://hl7.org/fhir/StructureDefinition/Patient"}]
        assert got["_source"] == [{"u": "urn:uuid:1"}]


# == composite (3.1.1.4.8): cross products per context element ==============================================
BP = {
    "resourceType": "Observation", "id": "bp", "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
    "valueQuantity": {"value": 1, "system": UCUM, "code": "1"},
    "component": [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 120, "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": {"value": 80, "system": UCUM, "code": "mm[Hg]"}},
    ],
}
SYS = {"v": 120.0, "s": UCUM, "c": "mm[Hg]", "u": None, "cv": 15998640.0, "cc": "g.m-1.s-2"}
DIA = {"v": 80.0, "s": UCUM, "c": "mm[Hg]", "u": None, "cv": 10665760.0, "cc": "g.m-1.s-2"}
ONE = {"v": 1.0, "s": UCUM, "c": "1", "u": None, "cv": 1.0, "cc": "1"}


class TestComposite:
    def test_per_component(self):
        got = idx(BP, "component-code-value-quantity")
        assert got == [{"0": {"s": LOINC, "c": "8480-6"}, "1": SYS}, {"0": {"s": LOINC, "c": "8462-4"}, "1": DIA}]

    def test_resource_and_components(self):
        got = idx(BP, "combo-code-value-quantity")
        assert got == [
            {"0": {"s": LOINC, "c": "85354-9"}, "1": ONE},
            {"0": {"s": LOINC, "c": "8480-6"}, "1": SYS},
            {"0": {"s": LOINC, "c": "8462-4"}, "1": DIA},
        ]

    def test_on_the_resource(self):
        assert idx(BP, "code-value-quantity") == [{"0": {"s": LOINC, "c": "85354-9"}, "1": ONE}]

    def test_cross_product_within_one_context(self):
        o = obs(
            code={"coding": [{"system": LOINC, "code": "1"}, {"system": "http://s", "code": "2"}], "text": "T"},
            valueCodeableConcept={"coding": [{"system": "http://v", "code": "a"}]},
        )
        assert idx(o, "code-value-concept") == [
            {"0": {"s": LOINC, "c": "1"}, "1": {"s": "http://v", "c": "a"}},
            {"0": {"s": "http://s", "c": "2"}, "1": {"s": "http://v", "c": "a"}},
            {"0": {"x": "t"}, "1": {"s": "http://v", "c": "a"}},
        ]

    def test_group_characteristics_do_not_mix(self):
        g = {
            "resourceType": "Group", "id": "g", "type": "person", "actual": True,
            "characteristic": [
                {"code": {"coding": [{"system": "http://s", "code": "smoker"}]}, "valueBoolean": True, "exclude": False},
                {"code": {"coding": [{"system": "http://s", "code": "sex"}]}, "valueCodeableConcept": {"coding": [{"system": "http://g", "code": "F"}]}, "exclude": False},
            ],
        }
        assert idx(g, "characteristic-value") == [
            {"0": {"s": "http://s", "c": "smoker"}, "1": {"c": "true"}},
            {"0": {"s": "http://s", "c": "sex"}, "1": {"s": "http://g", "c": "F"}},
        ]

    def test_three_components(self):
        ms = {"resourceType": "MolecularSequence", "id": "m", "coordinateSystem": 0,
              "referenceSeq": {"chromosome": {"coding": [{"system": "http://c", "code": "1"}]}, "windowStart": 10, "windowEnd": 20}}
        assert idx(ms, "chromosome-window-coordinate") == [{"0": {"s": "http://c", "c": "1"}, "1": {"v": 10.0}, "2": {"v": 20.0}}]

    def test_a_missing_component_means_no_entry(self):
        o = obs(code={"coding": [{"system": LOINC, "code": "1"}]})
        got = idx_of(o)
        assert "code-value-quantity" not in got["idx"] and "code-value-quantity" not in got["sk"]

    def test_composites_have_no_sort_keys(self):
        sk = idx_of(BP)["sk"]
        assert not any(k.startswith(("code-value", "combo-code-value", "component-code-value")) for k in sk)


# == sort keys and absent parameters ========================================================================
class TestSortKeys:
    def test_min_and_max(self):
        out = idx_of(patient(
            name=[{"family": "Ёлкина", "given": ["Анна"]}, {"family": "Smith", "given": ["Ann"]}],
            birthDate="1980-05",
            identifier=[{"system": "a", "value": "2"}, {"system": "b", "value": "10"}],
            generalPractitioner=[{"reference": "Practitioner/p2"}, {"reference": "Organization/o1"}, {"identifier": {"value": "x"}}],
        ))
        sk = out["sk"]
        assert sk["family"] == {"a": "smith", "d": "елкина"}
        assert sk["given"] == {"a": "ann", "d": "анна"}
        assert sk["birthdate"] == {"a": D(1980, 5), "d": D(1980, 5)}
        assert sk["identifier"] == {"a": "10", "d": "2"}
        assert sk["general-practitioner"] == {"a": "Organization/o1", "d": "Practitioner/p2"}

    def test_numbers_and_quantities(self):
        sk = idx_of(BP)["sk"]
        assert sk["combo-value-quantity"] == {"a": 1.0, "d": 120.0}
        assert sk["component-value-quantity"] == {"a": 80.0, "d": 120.0}

    def test_dates_by_their_low_bound(self):
        o = obs(effectivePeriod={"start": "2024-01-10"})
        assert idx_of(o)["sk"]["date"] == {"a": D(2024, 1, 10), "d": D(2024, 1, 10)}

    def test_values_without_a_sort_value(self):
        out = idx_of(obs(subject={"identifier": {"system": "http://s", "value": "1"}}))
        assert out["idx"]["subject"] == [{"is": "http://s", "ic": "1"}]
        assert "subject" not in out["sk"]


class TestAbsent:
    def test_empty_resource(self):
        # (not Patient: its `deceased` has a value, false, even when deceased[x] is absent)
        assert idx_of({"resourceType": "Practitioner", "id": "d"}) == {"idx": {}, "sk": {}}
        assert idx_of({"resourceType": "Organization", "id": "o"}) == {"idx": {}, "sk": {}}

    def test_parameters_without_values_have_no_key(self):
        res = {"resourceType": "Practitioner", "id": "d", "name": [], "telecom": [{"system": "phone"}],
               "identifier": [{"system": "http://s"}], "address": [{"period": {"start": "2000"}}], "active": "yes", "gender": "female"}
        out = idx_of(res)
        assert set(out["idx"]) == {"gender"}
        assert set(out["sk"]) == {"gender"}

    def test_id_and_last_updated_are_stored_fields_not_idx(self):
        out = idx_of(patient(meta={"lastUpdated": "2024-01-01T00:00:00Z", "versionId": "1"}))
        assert "_id" not in out["idx"] and "_lastUpdated" not in out["idx"]

    def test_unknown_resource_type(self):
        assert idx_of({"resourceType": "NotAType", "id": "x", "name": "n"}) == {"idx": {}, "sk": {}}
