"""The compiler from a parsed search to a MongoDB filter, as a pure function.

`fhir_server.search.query.parse` + `fhir_server.search.compile.compile_query`, with no
app and no database: for each parameter type (R4 search.html 3.1.1.4.x), each modifier
the parameter table allows for it and each prefix, the exact filter is asserted.

Every filter produced through `q()` is also read the way MongoDB 6 reads it:
  * `mongo6_problems` checks it uses only MongoDB 6 query operators, each with an
    argument of the shape the server accepts ($or/$and/$nor non-empty arrays, $in a list,
    $regex a string whose escapes mean the same in PCRE, no operator mixed with fields,
    BSON-encodable values);
  * `elem_match_problems` checks that no single value is split into two dotted conditions
    on one `idx.<code>` field (two array elements could satisfy them separately);
  * it is run through `find()` of an engine: mongomock in-process by default, or a real
    MongoDB when FHIR_MONGODB_URI is set (a throwaway database, dropped afterwards).
The `TestEngine*` tests at the end index resources and run filters on that engine, to show
that the shapes asserted above select what R4 says they select.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timezone

import bson
import pytest

from fhir_server.errors import FHIRError
from fhir_server.search.compile import compile_query
from fhir_server.search.index import index_resource
from fhir_server.search.params import lookup
from fhir_server.search.query import Chain, IdIn, parse

UTC = timezone.utc
BASE = "http://example.org/fhir"
UCUM = "http://unitsofmeasure.org"
ISO4217 = "urn:iso:std:iso:4217"
LOINC = "http://loinc.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
NOW = datetime(2025, 1, 1, tzinfo=UTC)  # the fixed "now" of every `ap` date


def D(y, mo=1, d=1, h=0, mi=0, s=0, ms=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=UTC)


# -- a MongoDB 6 reading of a filter ---------------------------------------------------------------
# Top-level operators admitted: the logical ones. MongoDB 6 also has $expr, $where, $text and
# $jsonSchema, which a search filter has no business using (no index use, server-side JS).
LOGICAL_OPS = {"$and", "$or", "$nor"}
# Query operators MongoDB 6.0 accepts on a field (docs: "Query and Projection Operators").
FIELD_OPS = {
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$type",
    "$regex", "$options", "$elemMatch", "$size", "$all", "$not", "$mod",
}
SCALARS = (type(None), bool, int, float, str, datetime)


def _regex_problems(rx: str, where: str) -> list[str]:
    out = []
    if not isinstance(rx, str):
        return [f"{where}: $regex must be a string"]
    try:
        re.compile(rx)
    except re.error as e:
        out.append(f"{where}: $regex {rx!r} does not compile: {e}")
    i = 0
    while i < len(rx):
        if rx[i] == "\\":
            nxt = rx[i + 1 : i + 2]
            # PCRE and Python agree on a backslash before a non-alphanumeric character (a literal);
            # before a letter or digit (\Z, \A, \d with Unicode, \1 ...) they may not.
            if not nxt or nxt.isalnum() or nxt == "_":
                out.append(f"{where}: $regex {rx!r} has the escape \\{nxt}, not portable to PCRE")
            i += 2
            continue
        i += 1
    if "(?P" in rx:
        out.append(f"{where}: $regex {rx!r} uses Python-only named groups")
    return out


def _literal_problems(v, where: str) -> list[str]:
    if isinstance(v, datetime):
        return [] if v.tzinfo is not None else [f"{where}: naive datetime {v!r}"]
    if isinstance(v, SCALARS):
        return []
    if isinstance(v, list):
        return [p for x in v for p in _literal_problems(x, where)]
    if isinstance(v, dict):
        bad = [k for k in v if k.startswith("$")]
        if bad:
            return [f"{where}: operator {bad[0]} inside a literal document"]
        return [p for k, x in v.items() for p in _literal_problems(x, f"{where}.{k}")]
    return [f"{where}: {type(v).__name__} is not a BSON value here"]


def _path_problems(path: str, where: str) -> list[str]:
    parts = path.split(".")
    if any(not p for p in parts):
        return [f"{where}: empty component in field path {path!r}"]
    if any(p.startswith("$") for p in parts):
        return [f"{where}: field path {path!r} has a $ component"]
    return []


def _field_value_problems(v, where: str) -> list[str]:
    if not (isinstance(v, dict) and any(k.startswith("$") for k in v)):
        return _literal_problems(v, where)
    out = []
    if not all(k.startswith("$") for k in v):
        out.append(f"{where}: operators mixed with field names in {v!r}")
    if "$options" in v and "$regex" not in v:
        out.append(f"{where}: $options without $regex")
    for op, arg in v.items():
        w = f"{where}.{op}"
        if op not in FIELD_OPS:
            out.append(f"{where}: {op} is not a MongoDB 6 field query operator")
        elif op in ("$in", "$nin", "$all"):
            if not isinstance(arg, list):
                out.append(f"{w}: needs an array")
            else:
                out += _literal_problems(arg, w)
        elif op == "$exists":
            if not isinstance(arg, bool):
                out.append(f"{w}: needs a boolean")
        elif op == "$regex":
            out += _regex_problems(arg, w)
        elif op == "$options":
            if not isinstance(arg, str) or set(arg) - set("imxs"):
                out.append(f"{w}: bad options {arg!r}")
        elif op == "$elemMatch":
            if not isinstance(arg, dict) or not arg:
                out.append(f"{w}: needs a non-empty document")
            elif all(k.startswith("$") and k not in LOGICAL_OPS for k in arg):
                out += _field_value_problems(arg, w)
            else:
                out += _query_problems(arg, w)
        elif op == "$not":
            if not isinstance(arg, dict):
                out.append(f"{w}: needs an operator document")
            else:
                out += _field_value_problems(arg, w)
        else:
            out += _literal_problems(arg, w)
    return out


def _query_problems(q, where: str = "filter") -> list[str]:
    if not isinstance(q, dict):
        return [f"{where}: a query must be a document, got {type(q).__name__}"]
    out = []
    for k, v in q.items():
        if k.startswith("$"):
            if k not in LOGICAL_OPS:
                out.append(f"{where}: {k} is not one of the top-level operators a search filter may use")
            elif not isinstance(v, list) or not v:
                out.append(f"{where}: {k} must be a non-empty array")
            else:
                for n, x in enumerate(v):
                    out += _query_problems(x, f"{where}.{k}[{n}]")
        else:
            out += _path_problems(k, where)
            out += _field_value_problems(v, f"{where}.{k}")
    return out


def mongo6_problems(flt: dict) -> list[str]:
    out = _query_problems(flt)
    try:
        bson.encode({"filter": flt})
    except Exception as e:  # noqa: BLE001 - any encoding failure is the finding
        out.append(f"not BSON-encodable: {e}")
    return out


def elem_match_problems(flt, where: str = "filter") -> list[str]:
    """Two conditions on one idx.<code> array at one level could be met by two different entries."""
    out = []
    if isinstance(flt, list):
        for n, x in enumerate(flt):
            out += elem_match_problems(x, f"{where}[{n}]")
        return out
    if not isinstance(flt, dict):
        return out
    seen: dict[str, str] = {}
    for k, v in flt.items():
        if k.startswith("idx."):
            parts = k.split(".")
            field = ".".join(parts[:2])
            if field in seen:
                out.append(f"{where}: {seen[field]!r} and {k!r} are separate conditions on one array")
            seen[field] = k
            if len(parts) > 2 and isinstance(v, dict) and sum(1 for op in v if op.startswith("$")) > 1:
                out.append(f"{where}: {k!r} carries {sorted(v)} outside $elemMatch")
        if isinstance(v, (dict, list)):
            out += elem_match_problems(v, f"{where}.{k}")
    return out


# -- the engine a filter is run on (mongomock, or a real MongoDB under FHIR_MONGODB_URI) -------------
class _Engine:
    def __init__(self):
        uri = os.environ.get("FHIR_MONGODB_URI")
        if uri:
            import pymongo

            self.client = pymongo.MongoClient(uri, tz_aware=True, uuidRepresentation="standard")
            self.real = True
        else:
            import mongomock

            self.client = mongomock.MongoClient(tz_aware=True)
            self.real = False
        self.db = self.client[f"fhirtest_compile_{uuid.uuid4().hex[:10]}"]
        self.probe = self.db["probe"]
        self.probe.insert_one({"_id": "probe", "ts": D(2024, 6, 1), "idx": {}, "sk": {}})

    def close(self):
        self.client.drop_database(self.db.name)
        self.client.close()


_ENGINE: _Engine | None = None


def engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


@pytest.fixture(scope="module", autouse=True)
def _drop_engine():
    yield
    global _ENGINE
    if _ENGINE is not None:
        _ENGINE.close()
        _ENGINE = None


# -- helpers ---------------------------------------------------------------------------------------------
def q(rtype: str, *pairs: tuple[str, str], base: str = BASE) -> dict:
    """The compiled filter of a search, after checking it reads right for MongoDB 6."""
    parsed = parse(rtype, list(pairs), base=base)
    assert not parsed.unknown, f"not understood: {parsed.unknown}"
    flt = compile_query(parsed.criteria, now=NOW)
    assert mongo6_problems(flt) == [], flt
    assert elem_match_problems(flt) == [], flt
    list(engine().probe.find(flt))  # the engine parses every operator, or raises
    return flt


def err(rtype: str, *pairs: tuple[str, str]) -> FHIRError:
    with pytest.raises(FHIRError) as e:
        compile_query(parse(rtype, list(pairs), base=BASE).criteria, now=NOW)
    assert e.value.status == 400
    return e.value


def em(field: str, pred: dict) -> dict:
    return {f"idx.{field}": {"$elemMatch": pred}}


# == the MongoDB reading itself ==========================================================================
class TestMongoReading:
    def test_checker_refuses_what_mongodb_refuses(self):
        assert mongo6_problems({"$or": []})
        assert mongo6_problems({"a": {"$foo": 1}})
        assert mongo6_problems({"a": {"$in": "x"}})
        assert mongo6_problems({"a": {"$gt": 1, "b": 2}})
        assert mongo6_problems({"a": {"$regex": r"^a\Z"}})
        assert mongo6_problems({"$where": "1"})
        assert mongo6_problems({"a": {"$gte": datetime(2024, 1, 1)}})

    def test_checker_finds_split_conditions(self):
        assert elem_match_problems({"idx.identifier.s": "a", "idx.identifier.c": "b"})
        assert elem_match_problems({"idx.date.l": {"$gte": 1, "$lt": 2}})
        assert elem_match_problems({"idx.a": {"$elemMatch": {"s": "a"}}, "idx.b.c": 1}) == []

    def test_engine_refuses_unknown_operators(self):
        from pymongo.errors import OperationFailure

        with pytest.raises(OperationFailure):
            list(engine().probe.find({"a": {"$foo": 1}}))


# == string (3.1.1.4.7) ==================================================================================
class TestString:
    def test_default_is_a_case_and_accent_insensitive_prefix(self):
        assert q("Patient", ("family", "Smith")) == {"idx.family.f": {"$regex": "^smith"}}

    @pytest.mark.parametrize(
        "raw, folded",
        [("Ёлкин", "елкин"), ("ÉLOÏSE", "eloise"), ("Йошкар", "йошкар"), ("ИВАНОВ", "иванов")],
    )
    def test_search_value_is_folded_like_the_index(self, raw, folded):
        assert q("Patient", ("family", raw)) == {"idx.family.f": {"$regex": "^" + folded}}

    def test_contains_matches_anywhere(self):
        assert q("Patient", ("family:contains", "MIT")) == {"idx.family.f": {"$regex": "mit"}}
        assert q("Patient", ("family:contains", "ёл")) == {"idx.family.f": {"$regex": "ел"}}

    def test_exact_is_the_whole_string_with_case_and_accents(self):
        assert q("Patient", ("family:exact", "Ёлкин")) == {"idx.family.e": "Ёлкин"}

    def test_regex_metacharacters_are_literal(self):
        assert q("Patient", ("family", "a.b(c)")) == {"idx.family.f": {"$regex": r"^a\.b\(c\)"}}
        assert q("Patient", ("family:contains", "a*b+")) == {"idx.family.f": {"$regex": r"a\*b\+"}}
        assert q("Patient", ("family:exact", "a.b(c)")) == {"idx.family.e": "a.b(c)"}

    def test_name_and_address_are_strings_over_their_parts(self):
        assert q("Patient", ("name", "Анна")) == {"idx.name.f": {"$regex": "^анна"}}
        assert q("Patient", ("address", "Москва")) == {"idx.address.f": {"$regex": "^москва"}}
        assert q("Patient", ("address-city:exact", "Москва")) == {"idx.address-city.e": "Москва"}

    @pytest.mark.parametrize("flag, exists", [("true", False), ("false", True)])
    def test_missing(self, flag, exists):
        assert q("Patient", ("family:missing", flag)) == {"idx.family": {"$exists": exists}}

    def test_missing_needs_true_or_false(self):
        err("Patient", ("family:missing", "maybe"))
        err("Patient", ("family:missing", ""))

    @pytest.mark.parametrize("raw", ["eq5", "gt2024", "ap1"])
    def test_a_prefix_means_nothing_on_a_string(self, raw):
        # R4 3.1.1.4: prefixes belong to number, date and quantity only.
        assert q("Patient", ("family", raw)) == {"idx.family.f": {"$regex": "^" + raw}}

    @pytest.mark.parametrize("modifier", ["text", "not", "above", "below", "of-type", "identifier", "in", "Patient", "foo"])
    def test_modifiers_not_for_strings(self, modifier):
        err("Patient", (f"family:{modifier}", "x"))


# == token (3.1.1.4.9) ===================================================================================
class TestToken:
    def test_code_in_any_system(self):
        assert q("Patient", ("gender", "male")) == {"idx.gender.c": "male"}

    def test_system_and_code_are_one_entry(self):
        assert q("Observation", ("code", f"{LOINC}|8480-6")) == em("code", {"s": LOINC, "c": "8480-6"})
        assert q("Patient", ("identifier", "http://s|123")) == em("identifier", {"s": "http://s", "c": "123"})

    def test_code_without_system(self):
        assert q("Patient", ("identifier", "|123")) == em("identifier", {"s": None, "c": "123"})

    def test_any_code_of_a_system(self):
        assert q("Patient", ("identifier", "http://s|")) == {"idx.identifier.s": "http://s"}

    def test_boolean(self):
        assert q("Patient", ("active", "true")) == {"idx.active.c": "true"}

    def test_string_elements_are_not_case_sensitive(self):
        # search.html 3.1.1.4.9: "If the underlying data type is string then the search is not
        # case sensitive"; the index keeps such values case-folded.
        assert q("Medication", ("lot-number", "AB-12X")) == {"idx.lot-number.c": "ab-12x"}
        assert q("Medication", ("lot-number:not", "Ab-12x,CD")) == {
            "$nor": [{"$or": [{"idx.lot-number.c": "ab-12x"}, {"idx.lot-number.c": "cd"}]}]
        }
        # codes stay case sensitive
        assert q("Patient", ("gender", "Male")) == {"idx.gender.c": "Male"}
        assert q("Observation", ("code", f"{LOINC}|AbC")) == em("code", {"s": LOINC, "c": "AbC"})

    def test_not_includes_resources_without_a_value(self):
        assert q("Patient", ("gender:not", "male")) == {"$nor": [{"idx.gender.c": "male"}]}
        assert q("Patient", ("identifier:not", "http://s|1")) == {"$nor": [em("identifier", {"s": "http://s", "c": "1"})]}

    def test_not_of_a_list_is_none_of_them(self):
        assert q("Patient", ("gender:not", "male,female")) == {
            "$nor": [{"$or": [{"idx.gender.c": "male"}, {"idx.gender.c": "female"}]}]
        }

    def test_text_is_a_folded_prefix_over_display_and_text(self):
        assert q("Observation", ("code:text", "Давление")) == {"idx.code.x": {"$regex": "^давление"}}
        assert q("Patient", ("_tag:text", "ЁЛКА")) == {"idx._tag.x": {"$regex": "^елка"}}

    def test_text_does_not_split_on_bar(self):
        assert q("Observation", ("code:text", "a|b")) == {"idx.code.x": {"$regex": r"^a\|b"}}

    def test_of_type(self):
        assert q("Patient", ("identifier:of-type", f"{V2_0203}|MR|446053")) == {
            "idx.identifier.ot": f"{V2_0203}|MR|446053"
        }

    @pytest.mark.parametrize("flag, exists", [("true", False), ("false", True)])
    def test_missing(self, flag, exists):
        assert q("Patient", ("gender:missing", flag)) == {"idx.gender": {"$exists": exists}}

    @pytest.mark.parametrize("param, raw", [("gender", "gt5"), ("identifier", "le100"), ("language", "ne"), ("code", "ap1")])
    def test_a_prefix_is_part_of_the_code(self, param, raw):
        # R4 3.1.1.4: prefixes belong to number, date and quantity; `ne` is also a language code.
        rtype = "Observation" if param == "code" else "Patient"
        assert q(rtype, (param, raw)) == {f"idx.{param}.c": raw}

    @pytest.mark.parametrize("raw", ["|", "a|b|c"])
    def test_malformed(self, raw):
        err("Patient", ("identifier", raw))

    @pytest.mark.parametrize("raw", ["MR|123", f"{V2_0203}||123", f"|MR|123", f"{V2_0203}|MR|", "a|b|c|d"])
    def test_of_type_needs_system_code_and_value(self, raw):
        err("Patient", ("identifier:of-type", raw))

    def test_of_type_only_where_the_table_allows_it(self):
        err("Patient", ("gender:of-type", f"{V2_0203}|MR|1"))

    # :in :not-in :below :above are token modifiers answered by terminology/ (tests/terminology).
    @pytest.mark.parametrize("modifier", ["exact", "contains", "identifier", "Patient", "foo"])
    def test_modifiers_not_for_tokens(self, modifier):
        err("Patient", (f"gender:{modifier}", "male"))


# == date (3.1.1.4.2) ====================================================================================
Y0, Y1 = D(2024), D(2025)


class TestDate:
    @pytest.mark.parametrize(
        "prefix, expected",
        [
            ("", em("birthdate", {"l": {"$gte": Y0}, "h": {"$lte": Y1}})),
            ("eq", em("birthdate", {"l": {"$gte": Y0}, "h": {"$lte": Y1}})),
            ("ne", em("birthdate", {"$or": [{"l": {"$lt": Y0}}, {"h": {"$gt": Y1}}]})),
            ("gt", {"idx.birthdate.h": {"$gt": Y1}}),
            ("lt", {"idx.birthdate.l": {"$lt": Y0}}),
            ("ge", em("birthdate", {"$or": [{"h": {"$gt": Y1}}, {"l": {"$gte": Y0}, "h": {"$lte": Y1}}]})),
            ("le", em("birthdate", {"$or": [{"l": {"$lt": Y0}}, {"l": {"$gte": Y0}, "h": {"$lte": Y1}}]})),
            ("sa", {"idx.birthdate.l": {"$gte": Y1}}),
            ("eb", {"idx.birthdate.h": {"$lte": Y0}}),
        ],
    )
    def test_prefixes(self, prefix, expected):
        assert q("Patient", ("birthdate", f"{prefix}2024")) == expected

    def test_ap_widens_by_a_tenth_of_the_distance_from_now(self):
        # [2024-12-22, 2024-12-23) is 10 days from now at most: widened by 1 day each side.
        assert q("Patient", ("birthdate", "ap2024-12-22")) == em(
            "birthdate", {"l": {"$lt": D(2024, 12, 24)}, "h": {"$gt": D(2024, 12, 21)}}
        )

    def test_ap_of_a_year(self):
        # 2024 is 366 days from now at most: 36.6 days = 36 d 14 h 24 min either side.
        assert q("Patient", ("birthdate", "ap2024")) == em(
            "birthdate", {"l": {"$lt": D(2025, 2, 6, 14, 24)}, "h": {"$gt": D(2023, 11, 25, 9, 36)}}
        )

    @pytest.mark.parametrize(
        "raw, low, high",
        [
            ("2024-03", D(2024, 3), D(2024, 4)),
            ("2024-12", D(2024, 12), D(2025, 1)),
            ("2024-02-29", D(2024, 2, 29), D(2024, 3, 1)),
            ("2024-03-05T10:30:15Z", D(2024, 3, 5, 10, 30, 15), D(2024, 3, 5, 10, 30, 16)),
            ("2024-03-05T10:30:15+03:00", D(2024, 3, 5, 7, 30, 15), D(2024, 3, 5, 7, 30, 16)),
            ("2024-03-05T23:00:00-05:00", D(2024, 3, 6, 4), D(2024, 3, 6, 4, 0, 1)),
            ("2024-03-05T10:30:15.25Z", D(2024, 3, 5, 10, 30, 15, 250), D(2024, 3, 5, 10, 30, 15, 260)),
            ("2024-03-05T10:30:15.250Z", D(2024, 3, 5, 10, 30, 15, 250), D(2024, 3, 5, 10, 30, 15, 251)),
            ("2024-03-05T10:30:15.1234567Z", D(2024, 3, 5, 10, 30, 15, 123), D(2024, 3, 5, 10, 30, 15, 124)),
        ],
    )
    def test_precision_is_the_search_range(self, raw, low, high):
        assert q("Observation", ("date", raw)) == em("date", {"l": {"$gte": low}, "h": {"$lte": high}})

    @pytest.mark.parametrize("flag, exists", [("true", False), ("false", True)])
    def test_missing(self, flag, exists):
        assert q("Observation", ("date:missing", flag)) == {"idx.date": {"$exists": exists}}

    @pytest.mark.parametrize(
        "raw",
        [
            "2024-13", "2023-02-29", "24", "2024-3-5", "2024-03-05T10", "2024-03-05T25:00:00Z",
            "2024-03-05T10:00:60Z", "2024-03-05T10:00:00+3", "2024-03-05 10:00:00", "2024-03-05T10:00:00ZZ",
            "xx2024", "gt", "GT2024", "ge 2024", "2024-01-01x", "today",
        ],
    )
    def test_malformed(self, raw):
        err("Observation", ("date", raw))

    @pytest.mark.parametrize("modifier", ["exact", "contains", "text", "not", "above", "below", "of-type", "identifier"])
    def test_modifiers_not_for_dates(self, modifier):
        err("Observation", (f"date:{modifier}", "2024"))


# == number (3.1.1.4.1) ==================================================================================
class TestNumber:
    @pytest.mark.parametrize(
        "prefix, expected",
        [
            ("", em("probability", {"v": {"$gte": 99.5, "$lt": 100.5}})),
            ("eq", em("probability", {"v": {"$gte": 99.5, "$lt": 100.5}})),
            ("ne", em("probability", {"$or": [{"v": {"$lt": 99.5}}, {"v": {"$gte": 100.5}}]})),
            ("gt", {"idx.probability.v": {"$gt": 100.0}}),
            ("lt", {"idx.probability.v": {"$lt": 100.0}}),
            ("ge", {"idx.probability.v": {"$gte": 100.0}}),
            ("le", {"idx.probability.v": {"$lte": 100.0}}),
            ("sa", {"idx.probability.v": {"$gt": 100.0}}),
            ("eb", {"idx.probability.v": {"$lt": 100.0}}),
            ("ap", em("probability", {"v": {"$gte": 90.0, "$lte": 110.0}})),
        ],
    )
    def test_prefixes(self, prefix, expected):
        assert q("RiskAssessment", ("probability", f"{prefix}100")) == expected

    @pytest.mark.parametrize(
        "raw, low, high",
        [
            ("100", 99.5, 100.5),
            ("100.00", 99.995, 100.005),
            ("0.8", 0.75, 0.85),
            ("-5", -5.5, -4.5),
            ("+5", 4.5, 5.5),
        ],
    )
    def test_implicit_range_of_the_precision(self, raw, low, high):
        assert q("RiskAssessment", ("probability", raw)) == em("probability", {"v": {"$gte": low, "$lt": high}})

    @pytest.mark.parametrize(
        "raw, low, high",
        [
            # search.html 3.1.1.4.1: "100 and 1.00e2 both have the same number of significant digits".
            ("1.00e2", 99.5, 100.5),
            ("1.66e+02", 165.5, 166.5),
            ("1.87E+01", 18.65, 18.75),
            ("5.40e-3", 0.005395, 0.005405),
            # "1e2 ... to 1 significant figures precision" (the table's [95 ... 105) contradicts it).
            ("1e2", 50.0, 150.0),
        ],
    )
    def test_exponent_form_counts_significant_figures(self, raw, low, high):
        assert q("RiskAssessment", ("probability", raw)) == em("probability", {"v": {"$gte": low, "$lt": high}})

    def test_exponent_form_ne_and_quantity(self):
        assert q("RiskAssessment", ("probability", "ne1.79e+02")) == em(
            "probability", {"$or": [{"v": {"$lt": 178.5}}, {"v": {"$gte": 179.5}}]}
        )
        assert q("Observation", ("value-quantity", "1.66e+02||cm")) == em(
            "value-quantity", {"v": {"$gte": 165.5, "$lt": 166.5}, "$or": [{"c": "cm"}, {"u": "cm"}]}
        )

    def test_integer_elements(self):
        assert q("MolecularSequence", ("variant-start", "gt100")) == {"idx.variant-start.v": {"$gt": 100.0}}

    @pytest.mark.parametrize("flag, exists", [("true", False), ("false", True)])
    def test_missing(self, flag, exists):
        assert q("RiskAssessment", ("probability:missing", flag)) == {"idx.probability": {"$exists": exists}}

    @pytest.mark.parametrize("raw", ["abc", "NaN", "Infinity", "-Infinity", "1.2.3", "0x10", "5e", "gt", "GT5", "gt 5", "5%"])
    def test_malformed(self, raw):
        err("RiskAssessment", ("probability", raw))

    @pytest.mark.parametrize("raw", ["1_000", " 5"])
    def test_python_only_decimal_spellings_are_malformed(self, raw):
        # A FHIR decimal is -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (datatypes.html#decimal);
        # Python's Decimal() also takes digit-group underscores and surrounding blanks.
        err("RiskAssessment", ("probability", raw))

    @pytest.mark.parametrize("modifier", ["exact", "contains", "text", "not", "above", "below"])
    def test_modifiers_not_for_numbers(self, modifier):
        err("RiskAssessment", (f"probability:{modifier}", "1"))


# == quantity (3.1.1.4.6) ================================================================================
def _vq(pred: dict) -> dict:
    return em("value-quantity", pred)


def _obs_q(oid: str, value, code: str) -> dict:
    return {
        "resourceType": "Observation", "id": oid, "status": "final", "code": {"coding": [{"code": "c"}]},
        "valueQuantity": {"value": value, "unit": code, "system": UCUM, "code": code},
    }


class TestQuantity:
    def test_number_only(self):
        assert q("Observation", ("value-quantity", "5.4")) == _vq({"v": {"$gte": 5.35, "$lt": 5.45}})

    def test_unit_without_system_is_code_or_unit(self):
        assert q("Observation", ("value-quantity", "5.4||mg")) == _vq(
            {"v": {"$gte": 5.35, "$lt": 5.45}, "$or": [{"c": "mg"}, {"u": "mg"}]}
        )

    def test_other_system_and_code(self):
        assert q("Observation", ("value-quantity", "5.4|http://x.org|foo")) == _vq(
            {"v": {"$gte": 5.35, "$lt": 5.45}, "s": "http://x.org", "c": "foo"}
        )

    def test_system_without_code(self):
        assert q("Observation", ("value-quantity", f"5.4|{UCUM}|")) == _vq({"v": {"$gte": 5.35, "$lt": 5.45}, "s": UCUM})

    def test_ucum_code_not_understood_is_compared_as_written(self):
        assert q("Observation", ("value-quantity", f"5.4|{UCUM}|foo")) == _vq(
            {"v": {"$gte": 5.35, "$lt": 5.45}, "s": UCUM, "c": "foo"}
        )

    def test_ucum_is_compared_in_canonical_units(self):
        assert q("Observation", ("value-quantity", f"5.4|{UCUM}|mg")) == _vq(
            {
                "$or": [
                    {"cv": {"$gte": 0.00535, "$lt": 0.00545}, "cc": "g"},
                    {"v": {"$gte": 5.35, "$lt": 5.45}, "s": UCUM, "c": "mg"},
                ]
            }
        )
        assert q("Observation", ("value-quantity", f"1|{UCUM}|g/dL")) == _vq(
            {
                "$or": [
                    {"cv": {"$gte": 5000.0, "$lt": 15000.0}, "cc": "g.m-3"},
                    {"v": {"$gte": 0.5, "$lt": 1.5}, "s": UCUM, "c": "g/dL"},
                ]
            }
        )

    @pytest.mark.parametrize(
        "prefix, cond",
        [
            ("", {"$gte": 99.5, "$lt": 100.5}),
            ("eq", {"$gte": 99.5, "$lt": 100.5}),
            ("gt", {"$gt": 100.0}),
            ("lt", {"$lt": 100.0}),
            ("ge", {"$gte": 100.0}),
            ("le", {"$lte": 100.0}),
            ("sa", {"$gt": 100.0}),
            ("eb", {"$lt": 100.0}),
            ("ap", {"$gte": 90.0, "$lte": 110.0}),
        ],
    )
    def test_prefixes(self, prefix, cond):
        assert q("Observation", ("value-quantity", f"{prefix}100|{UCUM}|g")) == _vq(
            {"$or": [{"cv": cond, "cc": "g"}, {"v": cond, "s": UCUM, "c": "g"}]}
        )

    def test_ne(self):
        assert q("Observation", ("value-quantity", f"ne100|{UCUM}|g")) == _vq(
            {
                "$or": [
                    {"$or": [{"cv": {"$lt": 99.5}}, {"cv": {"$gte": 100.5}}], "cc": "g"},
                    {"$or": [{"v": {"$lt": 99.5}}, {"v": {"$gte": 100.5}}], "s": UCUM, "c": "g"},
                ]
            }
        )

    @pytest.mark.parametrize("prefix, cond", [("gt", {"$gt": 5.4}), ("le", {"$lte": 5.4}), ("ap", {"$gte": 4.86, "$lte": 5.94})])
    def test_prefixes_without_a_unit(self, prefix, cond):
        got = q("Observation", ("value-quantity", f"{prefix}5.4"))
        if prefix == "ap":
            inner = got["idx.value-quantity"]["$elemMatch"]["v"]
            assert set(inner) == {"$gte", "$lte"}
            assert inner["$gte"] == pytest.approx(4.86) and inner["$lte"] == pytest.approx(5.94)
        else:
            assert got == {"idx.value-quantity.v": cond}

    def test_ne_with_system_and_code(self):
        assert q("Observation", ("value-quantity", "ne5.4|http://x|y")) == _vq(
            {"$or": [{"v": {"$lt": 5.35}}, {"v": {"$gte": 5.45}}], "s": "http://x", "c": "y"}
        )

    def test_ne_without_system_keeps_the_value_condition(self):
        # R4 3.1.1.4.6: "ne5.4||mg" is a quantity whose code or unit is mg and whose value is not
        # 5.4 (i.e. outside [5.35, 5.45)). Both conditions must survive; one shape that does is
        # {"$and": [{"$or": [{"v": {"$lt": 5.35}}, {"v": {"$gte": 5.45}}]}, {"$or": [{"c": "mg"}, {"u": "mg"}]}]}
        # inside the $elemMatch.
        flt = q("Observation", ("value-quantity", "ne5.4||mg"))
        assert "5.35" in repr(flt) and "5.45" in repr(flt), flt
        obs = [_obs_q("same", 5.4, "mg"), _obs_q("more", 7, "mg"), _obs_q("grams", 7, "g")]
        assert _matching(obs, "Observation", ("value-quantity", "ne5.4||mg")) == ["more"]

    def test_ne_without_system_in_a_composite(self):
        flt = q("Observation", ("code-value-quantity", "c$ne5.4||mg"))
        assert "5.35" in repr(flt) and "5.45" in repr(flt), flt
        obs = [_obs_q("same", 5.4, "mg"), _obs_q("more", 7, "mg"), _obs_q("grams", 7, "g")]
        assert _matching(obs, "Observation", ("code-value-quantity", "c$ne5.4||mg")) == ["more"]

    def test_money(self):
        assert q("ChargeItem", ("price-override", f"10|{ISO4217}|EUR")) == em(
            "price-override", {"v": {"$gte": 9.5, "$lt": 10.5}, "s": ISO4217, "c": "EUR"}
        )

    @pytest.mark.parametrize("flag, exists", [("true", False), ("false", True)])
    def test_missing(self, flag, exists):
        assert q("Observation", ("value-quantity:missing", flag)) == {"idx.value-quantity": {"$exists": exists}}

    @pytest.mark.parametrize(
        "raw", ["5.4|a", "5.4|a|b|c", "x|http://x|g", f"|{UCUM}|mg", f"gt|{UCUM}|mg", "5.4 mg", "5.4|"]
    )
    def test_malformed(self, raw):
        err("Observation", ("value-quantity", raw))

    @pytest.mark.parametrize("modifier", ["exact", "contains", "text", "not", "above", "below"])
    def test_modifiers_not_for_quantities(self, modifier):
        err("Observation", (f"value-quantity:{modifier}", "1"))


# == reference (3.1.1.4.10) ==============================================================================
class TestReference:
    def test_type_and_id(self):
        assert q("Observation", ("subject", "Patient/123")) == em("subject", {"t": "Patient", "i": "123"})

    def test_bare_id_with_several_target_types(self):
        assert q("Observation", ("subject", "123")) == {"idx.subject.i": "123"}

    def test_bare_id_with_one_target_type(self):
        assert q("Observation", ("specimen", "abc")) == em("specimen", {"t": "Specimen", "i": "abc"})

    def test_type_modifier(self):
        assert q("Observation", ("subject:Patient", "123")) == em("subject", {"t": "Patient", "i": "123"})
        assert q("Observation", ("subject:Patient", "Patient/123")) == em("subject", {"t": "Patient", "i": "123"})

    def test_type_modifier_disagreeing_with_the_value(self):
        err("Observation", ("subject:Patient", "Group/123"))

    def test_type_modifier_must_be_a_target(self):
        err("Observation", ("subject:Organization", "123"))

    def test_absolute_url_on_this_server_is_local(self):
        assert q("Observation", ("subject", f"{BASE}/Patient/123")) == em("subject", {"t": "Patient", "i": "123"})

    def test_absolute_url_elsewhere(self):
        assert q("Observation", ("subject", "http://other.org/fhir/Patient/123")) == {
            "idx.subject.u": "http://other.org/fhir/Patient/123"
        }

    def test_version_specific_reference(self):
        assert q("Observation", ("subject", "Patient/123/_history/2")) == em("subject", {"t": "Patient", "i": "123"})

    def test_urn(self):
        assert q("Observation", ("subject", "urn:uuid:6b0d5f8e-1111-2222-3333-444455556666")) == {
            "idx.subject.u": "urn:uuid:6b0d5f8e-1111-2222-3333-444455556666"
        }

    def test_canonical(self):
        assert q("QuestionnaireResponse", ("questionnaire", "http://x.org/Questionnaire/q1")) == {
            "idx.questionnaire.u": "http://x.org/Questionnaire/q1"
        }

    def test_identifier(self):
        assert q("Observation", ("subject:identifier", "http://s|123")) == em("subject", {"is": "http://s", "ic": "123"})
        assert q("Observation", ("subject:identifier", "123")) == {"idx.subject.ic": "123"}
        assert q("Observation", ("subject:identifier", "|123")) == em("subject", {"is": None, "ic": "123"})

    def test_identifier_needs_a_value(self):
        err("Observation", ("subject:identifier", "http://s|"))

    @pytest.mark.parametrize("flag, exists", [("true", False), ("false", True)])
    def test_missing(self, flag, exists):
        assert q("Observation", ("subject:missing", flag)) == {"idx.subject": {"$exists": exists}}

    def test_or(self):
        assert q("Observation", ("subject", "Patient/1,Group/2")) == {
            "$or": [em("subject", {"t": "Patient", "i": "1"}), em("subject", {"t": "Group", "i": "2"})]
        }

    @pytest.mark.parametrize("modifier", ["exact", "contains", "text", "not", "above", "below", "of-type", "foo"])
    def test_modifiers_not_for_references(self, modifier):
        err("Observation", (f"subject:{modifier}", "Patient/1"))


# == uri (3.1.1.4.13) ====================================================================================
class TestUri:
    def test_exact(self):
        assert q("ValueSet", ("url", "http://x.org/fhir/ValueSet/a")) == {"idx.url.u": "http://x.org/fhir/ValueSet/a"}

    def test_below_is_a_prefix(self):
        assert q("ValueSet", ("url:below", "http://x.org/fhir/")) == {"idx.url.u": {"$regex": r"^http://x\.org/fhir/"}}

    def test_above_is_any_ancestor(self):
        assert q("ValueSet", ("url:above", "http://x.org/fhir/ValueSet/a/b")) == {
            "idx.url.u": {
                "$in": [
                    "http://x.org/fhir/ValueSet/a/b",
                    "http://x.org/fhir/ValueSet/a",
                    "http://x.org/fhir/ValueSet",
                    "http://x.org/fhir",
                    "http://x.org",
                ]
            }
        }

    def test_above_on_a_urn_is_the_urn(self):
        assert q("ValueSet", ("url:above", "urn:oid:1.2.3")) == {"idx.url.u": {"$in": ["urn:oid:1.2.3"]}}

    def test_profile(self):
        url = "http://hl7.org/fhir/StructureDefinition/Patient"
        assert q("Patient", ("_profile", url)) == {"idx._profile.u": url}
        assert q("Patient", ("_profile:below", "http://hl7.org/fhir/")) == {
            "idx._profile.u": {"$regex": r"^http://hl7\.org/fhir/"}
        }

    @pytest.mark.parametrize("flag, exists", [("true", False), ("false", True)])
    def test_missing(self, flag, exists):
        assert q("ValueSet", ("url:missing", flag)) == {"idx.url": {"$exists": exists}}

    @pytest.mark.parametrize("modifier", ["exact", "contains", "text", "not", "of-type", "identifier", "Patient"])
    def test_modifiers_not_for_uris(self, modifier):
        err("ValueSet", (f"url:{modifier}", "http://x"))


# == composite (3.1.1.4.8) ===============================================================================
class TestComposite:
    def test_token_and_quantity_are_one_entry(self):
        assert q("Observation", ("code-value-quantity", f"{LOINC}|8480-6$gt100")) == em(
            "code-value-quantity", {"0.s": LOINC, "0.c": "8480-6", "1.v": {"$gt": 100.0}}
        )

    def test_token_and_ucum_quantity(self):
        assert q("Observation", ("code-value-quantity", f"8480-6$gt1|{UCUM}|g")) == em(
            "code-value-quantity",
            {
                "0.c": "8480-6",
                "$and": [{"$or": [{"1.cv": {"$gt": 1.0}, "1.cc": "g"}, {"1.v": {"$gt": 1.0}, "1.s": UCUM, "1.c": "g"}]}],
            },
        )

    def test_token_and_quantity_without_system(self):
        assert q("Observation", ("code-value-quantity", "8480-6$5.4||mg")) == em(
            "code-value-quantity",
            {"0.c": "8480-6", "1.v": {"$gte": 5.35, "$lt": 5.45}, "$and": [{"$or": [{"1.c": "mg"}, {"1.u": "mg"}]}]},
        )

    def test_token_and_token(self):
        assert q("Observation", ("code-value-concept", f"{LOINC}|8480-6$http://snomed.info/sct|123")) == em(
            "code-value-concept", {"0.s": LOINC, "0.c": "8480-6", "1.s": "http://snomed.info/sct", "1.c": "123"}
        )

    def test_token_and_string(self):
        assert q("Observation", ("code-value-string", "8480-6$Высок")) == em(
            "code-value-string", {"0.c": "8480-6", "1.f": {"$regex": "^высок"}}
        )

    def test_token_and_date(self):
        assert q("Observation", ("code-value-date", "8480-6$2024")) == em(
            "code-value-date", {"0.c": "8480-6", "1.l": {"$gte": Y0}, "1.h": {"$lte": Y1}}
        )
        assert q("Observation", ("code-value-date", "8480-6$ge2024")) == em(
            "code-value-date",
            {"0.c": "8480-6", "$and": [{"$or": [{"1.h": {"$gt": Y1}}, {"1.l": {"$gte": Y0}, "1.h": {"$lte": Y1}}]}]},
        )

    def test_three_components(self):
        assert q("MolecularSequence", ("chromosome-window-coordinate", "1$lt22125510$gt22125500")) == em(
            "chromosome-window-coordinate", {"0.c": "1", "1.v": {"$lt": 22125510.0}, "2.v": {"$gt": 22125500.0}}
        )

    def test_component_context(self):
        assert q("Observation", ("component-code-value-quantity", "8480-6$gt100")) == em(
            "component-code-value-quantity", {"0.c": "8480-6", "1.v": {"$gt": 100.0}}
        )
        assert q("Group", ("characteristic-value", "http://s|smoker$true")) == em(
            "characteristic-value", {"0.s": "http://s", "0.c": "smoker", "1.c": "true"}
        )

    def test_or_and_and(self):
        assert q("Observation", ("code-value-quantity", "8480-6$lt60,8462-4$gt90")) == {
            "$or": [
                em("code-value-quantity", {"0.c": "8480-6", "1.v": {"$lt": 60.0}}),
                em("code-value-quantity", {"0.c": "8462-4", "1.v": {"$gt": 90.0}}),
            ]
        }
        assert q("Observation", ("code-value-quantity", "8480-6$lt60"), ("code-value-quantity", "8462-4$gt90")) == {
            "$and": [
                em("code-value-quantity", {"0.c": "8480-6", "1.v": {"$lt": 60.0}}),
                em("code-value-quantity", {"0.c": "8462-4", "1.v": {"$gt": 90.0}}),
            ]
        }

    @pytest.mark.parametrize("raw", ["8480-6", "8480-6$1$2", "8480-6$", "$1", "8480-6$abc", "8480-6$2024-13"])
    def test_malformed(self, raw):
        param = "code-value-date" if raw.endswith("2024-13") else "code-value-quantity"
        err("Observation", (param, raw))

    @pytest.mark.parametrize("modifier", ["missing", "exact", "not", "text"])
    def test_no_modifiers(self, modifier):
        err("Observation", (f"code-value-quantity:{modifier}", "8480-6$1"))


# == _id and _lastUpdated: stored fields of their own ====================================================
class TestId:
    def test_one(self):
        assert q("Patient", ("_id", "abc")) == {"_id": "abc"}

    def test_or_is_in(self):
        assert q("Patient", ("_id", "a,b")) == {"_id": {"$in": ["a", "b"]}}

    def test_and(self):
        assert q("Patient", ("_id", "a"), ("_id", "b")) == {"$and": [{"_id": "a"}, {"_id": "b"}]}

    def test_a_system_matches_nothing(self):
        assert q("Patient", ("_id", "http://s|a")) == {"_id": {"$in": []}}

    def test_no_system(self):
        # R4 3.1.1.4.9: "|[code]" matches a value that has no system; an id never has one,
        # as `gender=|male` finds a gender (TestToken.test_code_without_system).
        assert q("Patient", ("_id", "|a")) == {"_id": "a"}

    @pytest.mark.parametrize("modifier", ["missing", "not", "exact", "text"])
    def test_no_modifiers(self, modifier):
        err("Patient", (f"_id:{modifier}", "a"))


class TestLastUpdated:
    @pytest.mark.parametrize(
        "prefix, expected",
        [
            ("", {"ts": {"$gte": D(2024, 3, 5), "$lt": D(2024, 3, 6)}}),
            ("eq", {"ts": {"$gte": D(2024, 3, 5), "$lt": D(2024, 3, 6)}}),
            ("ne", {"$or": [{"ts": {"$lt": D(2024, 3, 5)}}, {"ts": {"$gte": D(2024, 3, 6)}}]}),
            ("gt", {"ts": {"$gte": D(2024, 3, 6)}}),
            ("lt", {"ts": {"$lt": D(2024, 3, 5)}}),
            ("ge", {"ts": {"$gte": D(2024, 3, 5)}}),
            ("le", {"ts": {"$lt": D(2024, 3, 6)}}),
            ("sa", {"ts": {"$gte": D(2024, 3, 6)}}),
            ("eb", {"ts": {"$lt": D(2024, 3, 5)}}),
        ],
    )
    def test_prefixes_on_the_stored_instant(self, prefix, expected):
        assert q("Patient", ("_lastUpdated", f"{prefix}2024-03-05")) == expected

    def test_ap(self):
        # [ts, ts + 1 ms) overlaps [2024-12-21, 2024-12-24): ts > 2024-12-21 minus 1 ms
        assert q("Patient", ("_lastUpdated", "ap2024-12-22")) == {
            "ts": {"$gt": D(2024, 12, 20, 23, 59, 59, 999), "$lt": D(2024, 12, 24)}
        }

    def test_ap_widened_off_the_millisecond(self):
        # 5 ms before NOW: widened by 0.5 ms to [...59.9945, ...59.9965). The stored instants
        # ...59.994 and ...59.996 stand for [.994, .995) and [.996, .997), which overlap it;
        # .993 and .997 do not. The bounds are whole milliseconds (BSON keeps no finer).
        f = q("Patient", ("_lastUpdated", "ap2024-12-31T23:59:59.995Z"))
        assert f == {"ts": {"$gt": D(2024, 12, 31, 23, 59, 59, 993), "$lt": D(2024, 12, 31, 23, 59, 59, 997)}}
        inside = [ms for ms in range(990, 1000) if f["ts"]["$gt"] < D(2024, 12, 31, 23, 59, 59, ms) < f["ts"]["$lt"]]
        assert inside == [994, 995, 996]

    def test_ap_on_a_date_element_rounds_out_to_milliseconds(self):
        # birthdate is a range [l, h) of whole milliseconds: l < 59.9965 means l <= .996
        f = q("Patient", ("birthdate", "ap2024-12-31T23:59:59.995Z"))
        assert f == em("birthdate", {"l": {"$lt": D(2024, 12, 31, 23, 59, 59, 997)}, "h": {"$gt": D(2024, 12, 31, 23, 59, 59, 994)}})

    def test_instant_precision(self):
        assert q("Patient", ("_lastUpdated", "2024-03-05T10:00:00.123Z")) == {
            "ts": {"$gte": D(2024, 3, 5, 10, 0, 0, 123), "$lt": D(2024, 3, 5, 10, 0, 0, 124)}
        }

    def test_or_and_and(self):
        assert q("Patient", ("_lastUpdated", "2024-01,2024-03")) == {
            "$or": [{"ts": {"$gte": D(2024, 1), "$lt": D(2024, 2)}}, {"ts": {"$gte": D(2024, 3), "$lt": D(2024, 4)}}]
        }
        assert q("Patient", ("_lastUpdated", "ge2024-01"), ("_lastUpdated", "lt2024-03")) == {
            "$and": [{"ts": {"$gte": D(2024, 1)}}, {"ts": {"$lt": D(2024, 3)}}]
        }

    def test_malformed(self):
        err("Patient", ("_lastUpdated", "2024-13"))
        err("Patient", ("_lastUpdated:missing", "true"))


# == OR, AND, escaping ===================================================================================
class TestOrAnd:
    def test_comma_is_or(self):
        assert q("Patient", ("gender", "male,female")) == {"$or": [{"idx.gender.c": "male"}, {"idx.gender.c": "female"}]}
        assert q("Patient", ("family", "a,b")) == {"$or": [{"idx.family.f": {"$regex": "^a"}}, {"idx.family.f": {"$regex": "^b"}}]}

    def test_repetition_is_and(self):
        assert q("Patient", ("family", "a"), ("family", "b")) == {
            "$and": [{"idx.family.f": {"$regex": "^a"}}, {"idx.family.f": {"$regex": "^b"}}]
        }

    def test_and_of_ors(self):
        assert q("Patient", ("gender", "male,female"), ("birthdate", "lt2000")) == {
            "$and": [
                {"$or": [{"idx.gender.c": "male"}, {"idx.gender.c": "female"}]},
                {"idx.birthdate.l": {"$lt": D(2000)}},
            ]
        }

    def test_date_range_by_two_parameters(self):
        assert q("Patient", ("birthdate", "ge2000"), ("birthdate", "lt2010")) == {
            "$and": [
                em("birthdate", {"$or": [{"h": {"$gt": D(2001)}}, {"l": {"$gte": D(2000)}, "h": {"$lte": D(2001)}}]}),
                {"idx.birthdate.l": {"$lt": D(2010)}},
            ]
        }

    def test_nothing_is_everything(self):
        assert q("Patient") == {}
        assert q("Patient", ("_count", "5"), ("_sort", "family")) == {}

    def test_unknown_names_are_left_to_the_caller(self):
        parsed = parse("Patient", [("nonsense", "1"), ("gender", "male")], base=BASE)
        assert parsed.unknown == ["nonsense"]
        assert compile_query(parsed.criteria, now=NOW) == {"idx.gender.c": "male"}

    def test_empty_values(self):
        err("Patient", ("family", ""))
        err("Patient", ("gender", ""))
        err("Patient", ("gender", "male,"))
        err("Patient", ("birthdate", ""))
        err("Observation", ("subject", ""))
        err("ValueSet", ("url", ""))
        err("RiskAssessment", ("probability", ",1"))


class TestEscaping:
    def test_escaped_comma_is_not_or(self):
        assert q("Patient", ("family", r"a\,b")) == {"idx.family.f": {"$regex": "^a,b"}}
        assert q("Patient", ("gender", r"a\,b")) == {"idx.gender.c": "a,b"}
        assert q("ValueSet", ("url", r"http://x.org/a\,b")) == {"idx.url.u": "http://x.org/a,b"}
        assert q("Observation", ("subject", r"Patient/a\,b")) == em("subject", {"t": "Patient", "i": "a,b"})

    def test_escaped_bar_is_not_a_separator(self):
        assert q("Patient", ("identifier", r"http://s\|x|1")) == em("identifier", {"s": "http://s|x", "c": "1"})
        assert q("Patient", ("identifier", r"a\|b")) == {"idx.identifier.c": "a|b"}
        assert q("Patient", ("family", r"a\|b")) == {"idx.family.f": {"$regex": r"^a\|b"}}
        assert q("Observation", ("value-quantity", r"5|http://x|m\|s")) == _vq(
            {"v": {"$gte": 4.5, "$lt": 5.5}, "s": "http://x", "c": "m|s"}
        )

    def test_escaped_dollar_is_not_a_component_separator(self):
        assert q("Observation", ("code-value-quantity", r"a\$b$1")) == em(
            "code-value-quantity", {"0.c": "a$b", "1.v": {"$gte": 0.5, "$lt": 1.5}}
        )
        assert q("Patient", ("family", r"a\$b")) == {"idx.family.f": {"$regex": r"^a\$b"}}

    def test_escaped_backslash(self):
        assert q("Patient", ("family", "a\\\\b")) == {"idx.family.f": {"$regex": r"^a\\b"}}
        assert q("Patient", ("family:exact", "a\\\\b")) == {"idx.family.e": "a\\b"}
        assert q("Patient", ("gender", "a\\\\,b")) == {"$or": [{"idx.gender.c": "a\\"}, {"idx.gender.c": "b"}]}


# == resolved chains / _has, and what is refused ==========================================================
class TestResolved:
    def test_id_in_on_a_reference(self):
        got = compile_query([IdIn("idx.subject", "Patient", ["1", "2"])], now=NOW)
        assert got == {"idx.subject": {"$elemMatch": {"t": "Patient", "i": {"$in": ["1", "2"]}}}}
        assert mongo6_problems(got) == []

    def test_id_in_on_ids(self):
        assert compile_query([IdIn("_id", None, ["a"])], now=NOW) == {"_id": {"$in": ["a"]}}

    def test_unresolved_chain_is_refused(self):
        crit = parse("Observation", [("subject:Patient.name", "x")], base=BASE).criteria
        assert isinstance(crit[0], Chain)
        with pytest.raises(ValueError):
            compile_query(crit, now=NOW)

    def test_alternatives_are_or(self):
        p = lookup("Patient", "gender")
        from fhir_server.search.query import Criterion, Token

        got = compile_query([[Criterion(p, None, [Token(None, "male")]), Criterion(p, None, [Token(None, "other")])]], now=NOW)
        assert got == {"$or": [{"idx.gender.c": "male"}, {"idx.gender.c": "other"}]}


# == every value needing several conditions is one $elemMatch ============================================
ELEM_CASES = [
    ("Patient", ("identifier", "http://s|1")),
    ("Patient", ("identifier", "|1")),
    ("Patient", ("birthdate", "2024")),
    ("Patient", ("birthdate", "ne2024")),
    ("Patient", ("birthdate", "ge2024")),
    ("Patient", ("birthdate", "le2024")),
    ("Patient", ("birthdate", "ap2024")),
    ("RiskAssessment", ("probability", "0.5")),
    ("RiskAssessment", ("probability", "ne0.5")),
    ("RiskAssessment", ("probability", "ap0.5")),
    ("Observation", ("value-quantity", "5.4||mg")),
    ("Observation", ("value-quantity", f"5.4|{UCUM}|mg")),
    ("Observation", ("value-quantity", "ne5.4|http://x|y")),
    ("Observation", ("subject", "Patient/1")),
    ("Observation", ("subject:identifier", "http://s|1")),
    ("Observation", ("code-value-quantity", "8480-6$gt100")),
    ("Observation", ("code", f"{LOINC}|1,{LOINC}|2")),
]


@pytest.mark.parametrize("rtype, pair", ELEM_CASES)
def test_multi_condition_values_are_elem_match(rtype, pair):
    flt = q(rtype, pair)
    clauses = flt["$or"] if "$or" in flt else [flt]
    for c in clauses:
        ((field, cond),) = c.items()
        assert field.startswith("idx.") and field.count(".") == 1, c
        assert set(cond) == {"$elemMatch"}, c


# == the same filters, run on an engine ==================================================================
def _doc(resource: dict, ts: datetime = D(2024, 6, 1)) -> dict:
    out = index_resource(resource, base=BASE)
    return {"_id": resource["id"], "ts": ts, **out}


def _matching(resources: list[dict], rtype: str, *pairs) -> list[str]:
    coll = engine().db[f"c_{uuid.uuid4().hex[:8]}"]
    coll.insert_many([_doc(r) for r in resources])
    flt = q(rtype, *pairs)
    found = sorted(d["_id"] for d in coll.find(flt, {"_id": 1}))
    coll.drop()
    return found


class TestEngineIdentifierAndReference:
    PEOPLE = [
        {"resourceType": "Patient", "id": "ab", "identifier": [{"system": "A", "value": "1"}, {"system": "B", "value": "2"}]},
        {"resourceType": "Patient", "id": "a2", "identifier": [{"system": "A", "value": "2"}]},
        {"resourceType": "Patient", "id": "none"},
    ]

    def test_system_and_value_from_one_identifier(self):
        assert _matching(self.PEOPLE, "Patient", ("identifier", "A|2")) == ["a2"]
        assert _matching(self.PEOPLE, "Patient", ("identifier", "A|1")) == ["ab"]

    def test_not_includes_resources_without_identifier(self):
        assert _matching(self.PEOPLE, "Patient", ("identifier:not", "A|1")) == ["a2", "none"]

    def test_missing(self):
        assert _matching(self.PEOPLE, "Patient", ("identifier:missing", "true")) == ["none"]

    def test_reference_relative_absolute_and_typed(self):
        obs = [
            {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/1"}},
            {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "x"}, "subject": {"reference": f"{BASE}/Group/1"}},
            {"resourceType": "Observation", "id": "o3", "status": "final", "code": {"text": "x"}, "subject": {"reference": "http://other/Patient/1"}},
        ]
        assert _matching(obs, "Observation", ("subject", f"{BASE}/Patient/1")) == ["o1"]
        assert _matching(obs, "Observation", ("subject", "1")) == ["o1", "o2"]
        assert _matching(obs, "Observation", ("subject:Group", "1")) == ["o2"]
        assert _matching(obs, "Observation", ("subject", "http://other/Patient/1")) == ["o3"]


class TestEngineRanges:
    def test_one_period_must_hold_both_bounds(self):
        plans = [
            {
                "resourceType": "CarePlan", "id": "split", "status": "active", "intent": "plan", "subject": {"reference": "Patient/1"},
                "activity": [
                    {"detail": {"status": "scheduled", "scheduledPeriod": {"start": "2020", "end": "2020"}}},
                    {"detail": {"status": "scheduled", "scheduledPeriod": {"start": "2030", "end": "2030"}}},
                ],
            },
            {
                "resourceType": "CarePlan", "id": "in", "status": "active", "intent": "plan", "subject": {"reference": "Patient/1"},
                "activity": [{"detail": {"status": "scheduled", "scheduledPeriod": {"start": "2025-03", "end": "2025-04"}}}],
            },
        ]
        assert _matching(plans, "CarePlan", ("activity-date", "2025")) == ["in"]
        assert _matching(plans, "CarePlan", ("activity-date", "2020")) == ["split"]
        assert _matching(plans, "CarePlan", ("activity-date", "ne2025")) == ["split"]

    def test_date_prefixes(self):
        people = [
            {"resourceType": "Patient", "id": y, "birthDate": y} for y in ("2023", "2024-06-15", "2025")
        ]
        assert _matching(people, "Patient", ("birthdate", "2024")) == ["2024-06-15"]
        assert _matching(people, "Patient", ("birthdate", "gt2024")) == ["2025"]
        assert _matching(people, "Patient", ("birthdate", "ge2024")) == ["2024-06-15", "2025"]
        assert _matching(people, "Patient", ("birthdate", "lt2024")) == ["2023"]
        assert _matching(people, "Patient", ("birthdate", "le2024")) == ["2023", "2024-06-15"]
        assert _matching(people, "Patient", ("birthdate", "sa2024-06-15")) == ["2025"]
        assert _matching(people, "Patient", ("birthdate", "eb2024-06-15")) == ["2023"]
        assert _matching(people, "Patient", ("birthdate", "ne2024")) == ["2023", "2025"]
        assert _matching(people, "Patient", ("birthdate", "ap2024-06-14")) == ["2024-06-15"]

    def test_quantity_value_and_unit_from_one_quantity(self):
        obs = [
            {
                "resourceType": "Observation", "id": "mixed", "status": "final", "code": {"text": "x"},
                "valueQuantity": {"value": 5.4, "system": UCUM, "code": "g"},
                "component": [{"code": {"text": "y"}, "valueQuantity": {"value": 1, "system": UCUM, "code": "mg"}}],
            },
            {
                "resourceType": "Observation", "id": "mg", "status": "final", "code": {"text": "x"},
                "valueQuantity": {"value": 5.4, "system": UCUM, "code": "mg", "unit": "mg"},
            },
        ]
        assert _matching(obs, "Observation", ("combo-value-quantity", "5.4||mg")) == ["mg"]
        assert _matching(obs, "Observation", ("combo-value-quantity", f"5.4|{UCUM}|mg")) == ["mg"]
        assert _matching(obs, "Observation", ("combo-value-quantity", f"5400|{UCUM}|mg")) == ["mixed"]

    def test_canonical_units(self):
        obs = [
            {"resourceType": "Observation", "id": "gl", "status": "final", "code": {"text": "x"},
             "valueQuantity": {"value": 10, "system": UCUM, "code": "g/L"}},
            {"resourceType": "Observation", "id": "other", "status": "final", "code": {"text": "x"},
             "valueQuantity": {"value": 10, "system": UCUM, "code": "mg/L"}},
        ]
        assert _matching(obs, "Observation", ("value-quantity", f"1|{UCUM}|g/dL")) == ["gl"]
        assert _matching(obs, "Observation", ("value-quantity", f"gt5|{UCUM}|g/L")) == ["gl"]

    def test_composite_pairs_stay_within_one_component(self):
        bp = {
            "resourceType": "Observation", "id": "bp", "status": "final", "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "component": [
                {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": {"value": 120, "system": UCUM, "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": {"value": 80, "system": UCUM, "code": "mm[Hg]"}},
            ],
        }
        assert _matching([bp], "Observation", ("component-code-value-quantity", f"{LOINC}|8480-6$lt100")) == []
        assert _matching([bp], "Observation", ("component-code-value-quantity", f"{LOINC}|8480-6$gt100")) == ["bp"]
        assert _matching([bp], "Observation", ("component-code-value-quantity", f"{LOINC}|8462-4$lt100")) == ["bp"]
        assert _matching([bp], "Observation", ("combo-code-value-quantity", f"{LOINC}|85354-9$gt1")) == []


class TestEngineStrings:
    PEOPLE = [
        {"resourceType": "Patient", "id": "yolkina", "name": [{"family": "Ёлкина", "given": ["Анна"]}]},
        {"resourceType": "Patient", "id": "smith", "name": [{"family": "Smith", "given": ["Éloïse"]}]},
        {"resourceType": "Patient", "id": "nameless"},
    ]

    def test_folded_prefix(self):
        assert _matching(self.PEOPLE, "Patient", ("family", "елк")) == ["yolkina"]
        assert _matching(self.PEOPLE, "Patient", ("family", "ЁЛК")) == ["yolkina"]
        assert _matching(self.PEOPLE, "Patient", ("given", "eloise")) == ["smith"]
        assert _matching(self.PEOPLE, "Patient", ("family", "mith")) == []

    def test_contains_and_exact(self):
        assert _matching(self.PEOPLE, "Patient", ("family:contains", "MIT")) == ["smith"]
        assert _matching(self.PEOPLE, "Patient", ("family:exact", "Ёлкина")) == ["yolkina"]
        assert _matching(self.PEOPLE, "Patient", ("family:exact", "ёлкина")) == []
        assert _matching(self.PEOPLE, "Patient", ("family:exact", "Ёлкин")) == []

    def test_missing(self):
        assert _matching(self.PEOPLE, "Patient", ("family:missing", "true")) == ["nameless"]
        assert _matching(self.PEOPLE, "Patient", ("name:missing", "false")) == ["smith", "yolkina"]

    def test_last_updated(self):
        coll = engine().db[f"c_{uuid.uuid4().hex[:8]}"]
        coll.insert_many([_doc(p, ts) for p, ts in zip(self.PEOPLE, (D(2024, 3, 5, 10), D(2024, 3, 6), D(2024, 3, 4, 23, 59, 59, 999)))])
        for raw, want in [("2024-03-05", ["yolkina"]), ("gt2024-03-05", ["smith"]), ("le2024-03-05", ["nameless", "yolkina"])]:
            flt = q("Patient", ("_lastUpdated", raw))
            assert sorted(d["_id"] for d in coll.find(flt)) == want, raw
        coll.drop()
