"""UCUM codes reduced to canonical units (fhir_server.search.ucum)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_server.search.ucum import UCUM, UNITS, canonical


def close(got, value, unit):
    assert got is not None
    assert got[1] == unit
    assert math.isclose(got[0], value, rel_tol=1e-11)


def test_system_uri():
    assert UCUM == "http://unitsofmeasure.org"


@pytest.mark.parametrize(
    "value, code, expected, unit",
    [
        (1, "g", 1, "g"),
        (1, "kg", 1000, "g"),
        (1, "mg/dL", 10, "g.m-3"),
        (1, "g/dL", 10000, "g.m-3"),
        (5.5, "mmol/L", 5.5, "mol.m-3"),
        (140, "meq/L", 140, "mol.m-3"),
        (1, "L", 0.001, "m3"),
        (1, "mL", 1e-6, "m3"),
        (1, "10*3/uL", 1e12, "m-3"),
        (1, "10*9/L", 1e12, "m-3"),
        (1, "10^3", 1000, "1"),
        (1, "10*-3", 0.001, "1"),
        (1, "kg/m2", 1000, "g.m-2"),
        (90, "mL/min/{1.73_m2}", 90e-6 / 60, "m3.s-1"),
        (60, "/min", 1, "s-1"),
        (72, "{beats}/min", 1.2, "s-1"),
        (1, "s-1", 1, "s-1"),
        (1, "m2", 1, "m2"),
        (1, "cm2", 1e-4, "m2"),
        (1, "kPa", 1e6, "g.m-1.s-2"),
        (1, "mm[Hg]", 133322, "g.m-1.s-2"),
        (1, "cm[H2O]", 98066.5, "g.m-1.s-2"),
        (50, "%", 0.5, "1"),
        (3, "1", 3, "1"),
        (1, "[in_i]", 0.0254, "m"),
        (1, "[ft_i]", 0.3048, "m"),
        (1, "[lb_av]", 453.59237, "g"),
        (1, "[oz_av]", 28.349523125, "g"),
        (1, "min", 60, "s"),
        (1, "h", 3600, "s"),
        (1, "d", 86400, "s"),
        (1, "wk", 604800, "s"),
        (1, "a", 31557600, "s"),
        (1, "mo", 2629800, "s"),
        (1, "U", 1, "U"),
        (1, "kU/L", 1e6, "U.m-3"),
        (1, "[IU]/L", 1000, "[IU].m-3"),
        (1, "mg{total}", 0.001, "g"),
        (1, "(kg.m)/s2", 1000, "g.m.s-2"),
        (1, "kg/m.s", 1000, "g.s.m-1"),  # UCUM reads left to right: (kg/m).s
    ],
)
def test_conversion(value, code, expected, unit):
    close(canonical(value, code), expected, unit)


@pytest.mark.parametrize(
    "spellings",
    [
        [(1, "g/dL"), (10, "g/L"), (10000, "mg/L"), (1000, "mg/dL"), (10, "kg/m3")],
        [(1, "L"), (1000, "mL"), (10, "dL"), (1, "l"), (1000, "ml"), (1, "dm3"), (0.001, "m3")],
        [(1, "h"), (60, "min"), (3600, "s"), (3.6e6, "ms")],
        [(1, "kg/m2"), (1000, "g.m-2"), (1000, "g/m2")],
        [(1, "mmol/L"), (1000, "umol/L"), (1, "mol/m3"), (1, "mol.m-3")],
        [(1, "10*3/uL"), (1, "10*9/L"), (1, "10*6/mL")],
        [(1, "/min"), (1, "{beats}/min"), (1, "min-1"), (1 / 60, "s-1"), (1 / 60, "Hz")],
        [(1, "[lb_av]"), (16, "[oz_av]"), (453.59237, "g"), (0.45359237, "kg")],
        [(1, "wk"), (7, "d"), (168, "h")],
        [(1, "a"), (12, "mo")],
        [(50, "%"), (0.5, "1"), (500, "[ppth]")],
        [(1, "[IU]/mL"), (1000, "[IU]/L"), (1, "k[IU]/L"), (1, "[iU]/mL")],
        [(12, "[in_i]"), (1, "[ft_i]"), (30.48, "cm")],
    ],
)
def test_spellings_of_one_quantity_are_equal(spellings):
    results = {canonical(v, code) for v, code in spellings}
    assert len(results) == 1, results
    assert None not in results


def test_arbitrary_units_do_not_mix():
    assert canonical(1, "U/L")[1] != canonical(1, "[IU]/L")[1]
    assert canonical(1, "U/L")[1] != canonical(1, "umol/min/L")[1]
    assert canonical(1, "g")[1] != canonical(1, "mol")[1]


@pytest.mark.parametrize(
    "value, code",
    [(37, "Cel"), (98.6, "[degF]"), (310.15, "K")],
)
def test_body_temperature_in_kelvin(value, code):
    assert canonical(value, code) == (310.15, "K")


def test_temperature_scales():
    assert canonical(0, "Cel") == canonical(32, "[degF]") == (273.15, "K")
    assert canonical(-40, "Cel") == canonical(-40, "[degF]") == (233.15, "K")
    assert canonical(100, "Cel") == canonical(212, "[degF]") == (373.15, "K")


@pytest.mark.parametrize("code", ["Cel/min", "mCel", "Cel2", "[degF]/h", "Cel{x}.Cel", "kg.Cel", "/Cel"])
def test_temperature_only_as_the_whole_code(code):
    assert canonical(1, code) is None


@pytest.mark.parametrize(
    "code",
    [
        "", " ", "mg dL", "mg/", "/", "//min", "mg//dL", ".", "g.", ".g", "mg..dL", "(mg", "mg)", "()", "(mg))",
        "xyz", "MG", "Mg/DL", "kmin", "kh", "da", "kd", "m[Hg", "[lb_av", "{unclosed", "mg}", "2.5mg", "1e3",
        "µg", "mg/dℓ", "10*", "mm[Hg]]", "[in_i]]", "ug/{", "m2-", "10*400", "10*-400", "kk g", "kkg", "0", "0/L",
    ],
)
def test_malformed_or_unknown_codes(code):
    if code == "10*":  # `10*` on its own is UCUM's unit "the number ten"
        assert canonical(1, code) == (10.0, "1")
    else:
        assert canonical(1, code) is None


@pytest.mark.parametrize("code", [None, 3, b"mg"])
def test_code_not_a_string(code):
    assert canonical(1, code) is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "abc", None])
def test_bad_values(value):
    assert canonical(value, "mg") is None


def test_decimal_value():
    assert canonical(Decimal("1.5"), "g/dL") == (15000.0, "g.m-3")


def test_rounding_makes_spellings_equal():
    # 0.1 * 3 is 0.30000000000000004 in binary floating point
    assert canonical(0.1 * 3, "L") == canonical(0.3, "L") == (0.0003, "m3")
    assert canonical(1, "dm3") == (0.001, "m3")  # 0.1 ** 3 != 0.001 in floats


@pytest.mark.parametrize("symbol", sorted(UNITS))
def test_every_table_unit_reduces(symbol):
    got = canonical(1, symbol)
    assert got is not None and got[0] > 0


@pytest.mark.parametrize(
    "code", ["mg/dL", "mmol/L", "10*9/L", "mm[Hg]", "kU/L", "mL/min/{1.73_m2}", "[IU]/L", "%", "/min", "kg/m2"]
)
def test_canonical_code_is_a_fixed_point(code):
    value, unit = canonical(2.5, code)
    assert canonical(value, unit) == (value, unit)


@given(st.text(max_size=30), st.floats(allow_nan=True, allow_infinity=True))
def test_never_raises(code, value):
    result = canonical(value, code)
    assert result is None or (isinstance(result[0], float) and isinstance(result[1], str))


@given(st.text(alphabet="mgLdk/.()[]{}0123456789*^-+_%uHIU", max_size=20))
def test_never_raises_on_unit_like_text(code):
    canonical(1, code)


def test_deep_nesting_is_none_not_an_error():
    assert canonical(1, "(" * 5000 + "g" + ")" * 5000) is None
