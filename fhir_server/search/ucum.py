"""UCUM unit codes reduced to canonical units, for quantity search.

R4 search.html 3.1.1.4.6 lets a server compare quantities "with canonical units where
UCUM allows". `canonical` parses a UCUM code as clinical data writes it and restates
the value in base units: g, m, s, mol, K, and the arbitrary units [IU] and U (each its
own dimension, convertible to nothing else). So `1 g/dL`, `10 g/L` and `10000 mg/L`
all become `(10000.0, "g.m-3")`.

The canonical code lists the base units with their exponents, those with a positive
exponent first, each group sorted by symbol, joined with `.` (`g.m-3`, `mol.m-3`,
`g.m-1.s-2`, `s-1`); a dimensionless quantity has the code `1`. The canonical code is
itself a UCUM code that reduces to itself. Values are rounded to 12 significant digits
so that one quantity spelt two ways compares equal despite floating-point error.

Units are data: `PREFIXES`, `UNITS` (each defined by a magnitude times another UCUM
code, down to the base units) and `SPECIAL` (the non-proportional temperatures, which
are understood only as the whole code).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

UCUM = "http://unitsofmeasure.org"

# Metric prefixes and their powers of ten; "da" before "d" so that "dag" is decagram.
PREFIXES: dict[str, int] = {
    "Y": 24, "Z": 21, "E": 18, "P": 15, "T": 12, "G": 9, "M": 6, "k": 3, "h": 2, "da": 1,
    "d": -1, "c": -2, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15, "a": -18, "z": -21, "y": -24,
}

# symbol: (takes metric prefixes, magnitude, definition as a UCUM code or None for a base unit)
UNITS: dict[str, tuple[bool, float, str | None]] = {
    # base units
    "m": (True, 1, None),
    "g": (True, 1, None),
    "s": (True, 1, None),
    "mol": (True, 1, None),
    "K": (True, 1, None),
    "[IU]": (True, 1, None),  # arbitrary: international units of a stated substance
    "U": (True, 1, None),  # enzyme unit, kept apart from mol/s as the search asks
    # metric derived units
    "[iU]": (True, 1, "[IU]"),
    "L": (True, 1, "dm3"),
    "l": (True, 1, "dm3"),
    "eq": (True, 1, "mol"),  # UCUM defines the equivalent as one mole
    "osm": (True, 1, "mol"),
    "kat": (True, 1, "mol/s"),
    "Hz": (True, 1, "s-1"),
    "N": (True, 1, "kg.m/s2"),
    "Pa": (True, 1, "N/m2"),
    "J": (True, 1, "N.m"),
    "W": (True, 1, "J/s"),
    "bar": (True, 1e5, "Pa"),
    "cal": (True, 4.184, "J"),
    "t": (True, 1e3, "kg"),
    "m[Hg]": (True, 133.322, "kPa"),
    "m[H2O]": (True, 9.80665, "kPa"),
    # time (not metric: "kmin" is not a unit)
    "min": (False, 60, "s"),
    "h": (False, 60, "min"),
    "d": (False, 24, "h"),
    "wk": (False, 7, "d"),
    "a": (False, 365.25, "d"),  # mean Julian year
    "mo": (False, 1 / 12, "a"),  # mean Julian month
    # dimensionless
    "10*": (False, 10, "1"),
    "10^": (False, 10, "1"),
    "%": (False, 1e-2, "1"),
    "[ppth]": (False, 1e-3, "1"),
    "[ppm]": (False, 1e-6, "1"),
    "[ppb]": (False, 1e-9, "1"),
    # customary units
    "[in_i]": (False, 2.54, "cm"),
    "[ft_i]": (False, 12, "[in_i]"),
    "[lb_av]": (False, 453.59237, "g"),
    "[oz_av]": (False, 1 / 16, "[lb_av]"),
    "[degR]": (False, 5 / 9, "K"),
}

# Temperatures on a shifted scale: code -> (scale, offset) so that kelvin = value * scale + offset.
SPECIAL: dict[str, tuple[float, float]] = {
    "Cel": (1.0, 273.15),
    "[degF]": (5 / 9, 273.15 - 32 * 5 / 9),
}

# An annotation, an operator or parenthesis, or a unit atom (which may hold bracketed parts).
_TOKEN = re.compile(r"\{[^{}]*\}|[./()]|(?:\[[^\[\]{}]*\]|[^./()\[\]{}])+")
_ATOM = re.compile(r"(.+?)([+-]?\d+)?")

Dims = dict[str, int]


class _Invalid(ValueError):
    """The code is not UCUM this module understands."""


def canonical(value: float, code: str) -> tuple[float, str] | None:
    """The value in the canonical unit of its dimension, and that unit's code; None when the UCUM code is not understood."""
    if not isinstance(code, str):
        return None
    try:
        if code in SPECIAL:
            scale, offset = SPECIAL[code]
            result, unit = float(value) * scale + offset, "K"
        else:
            reduced = _reduce(code)
            if reduced is None:
                return None
            factor, unit = reduced
            result = float(value) * factor
        if not math.isfinite(result):
            return None
        return float(f"{result:.12g}"), unit
    except (TypeError, ValueError, ArithmeticError):
        return None


@lru_cache(maxsize=1024)
def _reduce(code: str) -> tuple[float, str] | None:
    """(factor, canonical code) with 1 `code` = factor canonical units; None if not understood."""
    try:
        factor, dims = _parse(code)
    except (ValueError, ArithmeticError, RecursionError):
        return None
    if factor == 0 or not math.isfinite(factor):
        return None
    return factor, _format(dims)


def _format(dims: Dims) -> str:
    terms = sorted(((s, e) for s, e in dims.items() if e), key=lambda t: (t[1] < 0, t[0]))
    return ".".join(s if e == 1 else f"{s}{e}" for s, e in terms) or "1"


def _parse(code: str) -> tuple[float, Dims]:
    if not code or not all(33 <= ord(c) <= 126 for c in code):
        raise _Invalid(code)
    tokens: list[str] = []
    pos = 0
    while pos < len(code):
        match = _TOKEN.match(code, pos)
        if match is None:
            raise _Invalid(code)
        token, pos = match.group(), match.end()
        if token[0] == "{":
            # an annotation means nothing: attached to a unit it is dropped, alone it is the unit 1
            if tokens and tokens[-1] not in (".", "/", "("):
                continue
            token = "1"
        tokens.append(token)
    factor, dims, end = _term(tokens, 0)
    if end != len(tokens):
        raise _Invalid(code)
    return factor, dims


def _term(tokens: list[str], i: int) -> tuple[float, Dims, int]:
    """term := ['/'] component (('.' | '/') component)*, left to right."""
    factor, dims, sign = 1.0, {}, 1
    if i < len(tokens) and tokens[i] == "/":
        sign, i = -1, i + 1
    while True:
        f, d, i = _component(tokens, i)
        factor = factor * f if sign > 0 else factor / f
        for s, e in d.items():
            dims[s] = dims.get(s, 0) + sign * e
        if i < len(tokens) and tokens[i] in (".", "/"):
            sign, i = (1 if tokens[i] == "." else -1), i + 1
        else:
            return factor, dims, i


def _component(tokens: list[str], i: int) -> tuple[float, Dims, int]:
    if i >= len(tokens) or tokens[i] in (".", "/", ")"):
        raise _Invalid("expected a unit")
    if tokens[i] == "(":
        factor, dims, i = _term(tokens, i + 1)
        if i >= len(tokens) or tokens[i] != ")":
            raise _Invalid("unbalanced parenthesis")
        return factor, dims, i + 1
    factor, dims = _atom(tokens[i])
    return factor, dims, i + 1


def _atom(atom: str) -> tuple[float, Dims]:
    """A number, or a unit symbol (maybe prefixed) with an optional integer exponent."""
    if atom.isdigit():
        return float(int(atom)), {}
    symbol, exponent = _ATOM.fullmatch(atom).groups()
    power = int(exponent) if exponent else 1
    factor, dims = _symbol(symbol)
    return factor**power, {s: e * power for s, e in dims.items()}


def _symbol(symbol: str) -> tuple[float, Dims]:
    if symbol in UNITS:
        return _unit(symbol)
    for prefix, power in PREFIXES.items():
        rest = symbol[len(prefix):]
        if symbol.startswith(prefix) and rest in UNITS and UNITS[rest][0]:
            factor, dims = _unit(rest)
            return factor * 10.0**power, dims
    raise _Invalid(symbol)


def _unit(symbol: str) -> tuple[float, Dims]:
    _metric, magnitude, definition = UNITS[symbol]
    if definition is None:
        return 1.0, {symbol: 1}
    factor, dims = _parse(definition)
    return magnitude * factor, dims
