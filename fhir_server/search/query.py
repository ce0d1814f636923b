"""Parsing FHIR R4 search parameters (search.html) into criteria.

`parse(rtype, params)` turns the request's (name, value) pairs into:
  * criteria, ANDed: each a `Criterion` (one parameter occurrence, its values ORed),
    a `Chain` (`subject:Patient.name=x`) or a `Has` (`_has:Observation:subject:code=x`);
  * the result parameters (_sort, _count, _include, ...), checked but not executed;
  * the names that were not understood, which the caller ignores (and leaves out of
    the self link) or refuses under `Prefer: handling=strict`.

A value that cannot be parsed is always a 400 naming the parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from profiles_ru import identifiers

from ..errors import FHIRError
from . import ucum
from .index import date_range, fold, split_reference
from .params import SearchParam, lookup, params_of

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
RESULT_PARAMS = frozenset(
    ("_sort", "_count", "_total", "_summary", "_elements", "_include", "_revinclude", "_contained", "_containedType")
)
FORMAT_PARAMS = frozenset(("_format", "_pretty"))
TOTAL_MODES = ("none", "estimate", "accurate")
_PREFIXED = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[-+0-9.])")


def bad(name: str, value: str) -> FHIRError:
    return FHIRError(400, "invalid", "bad-param", expression=None, name=name, value=value[:80])


# -- escaping (search.html 3.1.1.1.1) -----------------------------------------------------
def split_unescaped(value: str, sep: str) -> list[str]:
    parts, start, i = [], 0, 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == sep:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


# -- parsed values ------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system; "": no system
    code: str | None  # None: any code (system| form)


# Token modifiers the terminology service answers (terminology/): the value set (:in,
# :not-in, value = its canonical URL) or the code hierarchy (:below, :above, value =
# system|code, the code itself included) becomes a set of codes when the search runs,
# with the request's store reader (resolve_terminology), so posted versions count.
TERMINOLOGY_MODIFIERS = frozenset(("in", "not-in", "below", "above"))


@dataclass(frozen=True)
class Codes:
    """A resolved terminology value: any of these (system, code) pairs."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Range:
    """A date, number or quantity value with its prefix: [low, high) plus the exact value."""

    prefix: str
    low: object
    high: object
    exact: object = None  # number/quantity: the value as written
    system: str | None = None  # quantity
    code: str | None = None
    canonical: tuple | None = None  # quantity in canonical UCUM: (low, high, exact, code)


@dataclass(frozen=True)
class Ref:
    type: str | None
    id: str | None
    url: str | None = None


@dataclass
class Criterion:
    param: SearchParam
    modifier: str | None
    values: list  # parsed values, ORed
    name: str = ""  # as written, for messages and links
    raw: str = ""


@dataclass
class Chain:
    """param:Type.rest=value: resources whose reference `param` points at a match of `inner`."""

    param: SearchParam
    target: str
    inner: object  # Criterion | Chain | Has over `target`
    name: str = ""
    raw: str = ""


@dataclass
class Has:
    """_has:Src:ref:rest=value: resources that some Src refers to through `ref` and that match `inner`."""

    source: str
    ref: SearchParam
    inner: object
    name: str = ""
    raw: str = ""


@dataclass
class IdIn:
    """A resolved Chain or Has: the field `field` holds one of these references or ids."""

    field: str  # "_id" or a reference param's idx field
    type: str | None
    ids: list


@dataclass
class Parsed:
    criteria: list = field(default_factory=list)
    sort: list[tuple[SearchParam | str, int]] = field(default_factory=list)
    count: int | None = None
    total: str | None = None
    summary: str | None = None
    elements: str | None = None
    includes: list[tuple[str, str, str | None, bool]] = field(default_factory=list)  # (type, param, target, iterate)
    revincludes: list[tuple[str, str, str | None, bool]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # understood params, for links


# -- values per type ---------------------------------------------------------------------
def _prefix(name: str, raw: str, p: SearchParam) -> tuple[str, str]:
    m = _PREFIXED.match(raw)
    if m:
        if m.group(1) not in p.comparators:
            raise bad(name, raw)
        return m.group(1), raw[2:]
    return "eq", raw


def parse_date(name: str, raw: str, p: SearchParam) -> Range:
    prefix, rest = _prefix(name, raw, p)
    rng = date_range(rest)
    if rng is None:
        raise bad(name, raw)
    return Range(prefix, rng[0], rng[1])


_DECIMAL = re.compile(r"^[-+]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


def _decimal(name: str, raw: str) -> Decimal:
    if not _DECIMAL.match(raw):
        raise bad(name, raw)  # a FHIR decimal (datatypes.html): no blanks, no underscores
    try:
        d = Decimal(raw)
    except InvalidOperation:
        raise bad(name, raw) from None
    if not d.is_finite():
        raise bad(name, raw)
    return d


def _implicit(d: Decimal) -> tuple[float, float]:
    """The range a number written with this precision stands for (search.html 3.1.1.4.1):
    half a unit of its last significant digit either side.

    `100` is [99.5, 100.5), `100.00` [99.995, 100.005), and exponential notation counts
    its significant figures the same way: `1.00e2` is [99.5, 100.5) ("100 and 1.00e2 both
    have the same number of significant digits"), `1.66e2` [165.5, 166.5), `5.40e-3`
    [0.005395, 0.005405), `1e2` (one significant figure) [50, 150). R4's example table
    prints [95 ... 105) for `1e2`, which contradicts its own "1 significant figures".
    """
    half = Decimal(5).scaleb(d.as_tuple().exponent - 1)
    return float(d - half), float(d + half)


def parse_number(name: str, raw: str, p: SearchParam) -> Range:
    prefix, rest = _prefix(name, raw, p)
    d = _decimal(name, rest)
    low, high = _implicit(d)
    return Range(prefix, low, high, float(d))


def parse_quantity(name: str, raw: str, p: SearchParam) -> Range:
    parts = split_unescaped(raw, "|")
    if len(parts) not in (1, 3):
        raise bad(name, raw)
    prefix, num = _prefix(name, parts[0], p)
    d = _decimal(name, num)
    low, high = _implicit(d)
    system = unescape(parts[1]) or None if len(parts) == 3 else None
    code = unescape(parts[2]) or None if len(parts) == 3 else None
    canon = None
    if system == ucum.UCUM and code:
        c_exact, c_code = ucum.canonical(float(d), code) or (None, None)
        c_low, _ = ucum.canonical(low, code) or (None, None)
        c_high, _ = ucum.canonical(high, code) or (None, None)
        if c_code is not None and None not in (c_low, c_high):
            canon = (min(c_low, c_high), max(c_low, c_high), c_exact, c_code)
    return Range(prefix, low, high, float(d), system, code, canon)


def parse_token(name: str, raw: str, p: SearchParam, modifier: str | None):
    if modifier == "text":
        return fold(unescape(raw))
    if modifier in ("in", "not-in"):
        url = unescape(raw)
        if not url:
            raise bad(name, raw)
        return url
    if modifier in ("below", "above"):
        parts = split_unescaped(raw, "|")
        if len(parts) != 2 or not all(parts):
            raise FHIRError(400, "invalid", "tx-search-hierarchy", name=name, value=raw[:80])
        return Token(unescape(parts[0]), unescape(parts[1]))
    if modifier == "of-type":
        parts = split_unescaped(raw, "|")
        if len(parts) != 3 or not all(parts):
            raise bad(name, raw)
        return "|".join(unescape(x) for x in parts)
    parts = split_unescaped(raw, "|")
    if len(parts) == 1:
        return Token(None, _token_code(p, unescape(raw)))
    if len(parts) != 2:
        raise bad(name, raw)
    system, code = unescape(parts[0]), unescape(parts[1])
    if not system and not code:
        raise bad(name, raw)
    if system and code and any(path.type in ("Identifier", "Reference") for path in p.paths):
        system, code = identifiers.search_key(system, code)  # a Russian identifier: as index._russian_identifier keeps it
    return Token(system, _token_code(p, code) or None)


def is_terminology(c) -> bool:
    """A token criterion with :in, :not-in, :below or :above (uri :below/:above are prefixes)."""
    return isinstance(c, Criterion) and c.modifier in TERMINOLOGY_MODIFIERS and c.param.type == "token"


def resolve_terminology(reader, c: Criterion) -> Criterion:
    """The criterion with its value sets / hierarchies replaced by the codes they stand for."""
    from terminology import service as tx

    pairs: list[tuple[str, str]] = []
    for v in c.values:
        if c.modifier in ("in", "not-in"):
            try:
                exp = tx.expansion(v, None, reader)
            except tx.TerminologyError:
                exp = None
            if exp is None:
                raise FHIRError(400, "not-found", "tx-search-unknown-valueset", name=c.name, url=v[:200])
            pairs.extend((e.system, e.code) for e in exp.entries)
            continue
        cs = tx.code_system(v.system, None, reader)
        if cs is None or not any(x.parents for x in cs.concepts.values()):
            raise FHIRError(400, "not-supported", "tx-search-hierarchy", name=c.name, value=f"{v.system}|{v.code}"[:120])
        related = cs.descendants(v.code) if c.modifier == "below" else cs.ancestors(v.code)
        pairs.extend((v.system, code) for code in (v.code, *related))
    return Criterion(c.param, c.modifier, [Codes(tuple(dict.fromkeys(pairs)))], c.name, c.raw)


def _token_code(p: SearchParam, code: str) -> str:
    """A token on string elements is not case sensitive (search.html 3.1.1.4.9): both the
    stored value (index._token) and the search code are case-folded."""
    if p.paths and all(path.type == "string" for path in p.paths):
        return code.casefold()
    return code


def parse_reference(name: str, raw: str, p: SearchParam, modifier: str | None, base: str | None):
    if modifier == "identifier":
        tok = parse_token(name, raw, p, None)
        if tok.code is None:
            raise bad(name, raw)
        return tok
    value = unescape(raw)
    if "/" not in value and "://" not in value and ":" not in value:
        rtype = modifier if modifier not in (None, "identifier") else None
        if rtype is None and len(p.targets) == 1:
            rtype = p.targets[0]
        return Ref(rtype, value)
    r = split_reference(value, base)
    if r is None or ("t" in r and not r["i"]):
        raise bad(name, raw)
    if "u" in r:
        return Ref(None, None, r["u"])
    if modifier and modifier != r["t"]:
        raise bad(name, raw)
    return Ref(r["t"], r["i"])


def parse_value(name: str, raw: str, p: SearchParam, modifier: str | None, base: str | None):
    if raw == "":
        raise bad(name, raw)
    t = p.type
    if t == "date":
        return parse_date(name, raw, p)
    if t == "number":
        return parse_number(name, raw, p)
    if t == "quantity":
        return parse_quantity(name, raw, p)
    if t == "token":
        return parse_token(name, raw, p, modifier)
    if t == "reference":
        return parse_reference(name, raw, p, modifier, base)
    if t == "string":
        return unescape(raw)
    if t == "uri":
        return unescape(raw)
    if t == "composite":
        parts = split_unescaped(raw, "$")
        if len(parts) != len(p.components):
            raise bad(name, raw)
        out = []
        for comp, part in zip(p.components, parts):
            sub = SearchParam(comp.code, comp.type, "", (), frozenset(), frozenset(PREFIXES))
            out.append(parse_value(name, part, sub, None, base))
        return tuple(out)
    raise bad(name, raw)


# -- parameter names ---------------------------------------------------------------------
def _criterion(rtype: str, name: str, raw: str, base: str | None, depth: int = 0):
    """The criterion for `name=raw` on `rtype`; None when the name is not understood."""
    if name.startswith("_has:"):
        return _has(rtype, name, raw, base, depth)
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    p = lookup(rtype, code)
    if p is None:
        return None
    modifier = modifier or None
    if dot:  # chaining
        if p.type != "reference" or depth >= 2:
            if depth >= 2:
                raise FHIRError(400, "not-supported", "chain-depth", name=name)
            raise bad(name, raw)
        targets = [modifier] if modifier else list(p.targets)
        targets = [t for t in targets if params_of(t)]
        if modifier and modifier not in p.targets:
            raise bad(name, raw)
        inner = [(t, _criterion(t, rest, raw, base, depth + 1)) for t in targets]
        inner = [(t, c) for t, c in inner if c is not None]
        if not inner:
            return None
        if len(inner) > 1:
            # Ambiguous without a type: every target type that knows the parameter, ORed.
            return [Chain(p, t, c, name, raw) for t, c in inner]
        t, c = inner[0]
        return Chain(p, t, c, name, raw)
    if modifier is not None:
        if p.type == "reference" and modifier not in ("missing", "identifier"):
            if modifier not in p.targets:
                raise FHIRError(400, "not-supported", "bad-modifier", name=name, modifier=modifier)
        elif modifier not in p.modifiers:
            raise FHIRError(400, "not-supported", "bad-modifier", name=name, modifier=modifier)
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise bad(name, raw)
        return Criterion(p, "missing", [raw == "true"], name, raw)
    values = [parse_value(name, v, p, modifier, base) for v in split_unescaped(raw, ",")]
    return Criterion(p, modifier, values, name, raw)


def _has(rtype: str, name: str, raw: str, base: str | None, depth: int):
    parts = name.split(":", 3)
    if len(parts) != 4 or not parts[1] or not parts[2] or not parts[3]:
        raise bad(name, raw)
    _, source, ref_code, rest = parts
    if depth >= 2:
        raise FHIRError(400, "not-supported", "chain-depth", name=name)
    ref = lookup(source, ref_code)
    if ref is None or ref.type != "reference":
        raise bad(name, raw)
    if ref.targets and rtype not in ref.targets:
        raise bad(name, raw)
    inner = _criterion(source, rest, raw, base, depth + 1)
    if inner is None:
        return None
    return Has(source, ref, inner, name, raw)


def _count(name: str, raw: str) -> int:
    if not raw.isdigit():
        raise bad(name, raw)
    return int(raw)


def _include_spec(rtype_hint: str | None, name: str, raw: str, rev: bool) -> tuple[str, str, str | None]:
    if raw == "*" and not rev:
        return ("*", "*", None)
    parts = raw.split(":")
    if len(parts) not in (2, 3):
        raise bad(name, raw)
    src, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if code == "*" and not rev:
        return (src, "*", target)
    p = lookup(src, code)
    if p is None or p.type != "reference":
        raise bad(name, raw)
    if target is not None and p.targets and target not in p.targets:
        raise bad(name, raw)
    return (src, code, target)


def parse(rtype: str | None, params: list[tuple[str, str]], base: str | None = None, types: list[str] | None = None) -> Parsed:
    """Parse a search request on `rtype` (None: a system search over `types`)."""
    out = Parsed()
    for name, raw in params:
        if name in FORMAT_PARAMS or name in ("_cursor", "_type"):
            continue
        if name in RESULT_PARAMS:
            _result_param(out, rtype, name, raw)
            out.kept.append((name, raw))
            continue
        if name.split(":", 1)[0] in ("_include", "_revinclude"):
            _result_param(out, rtype, name, raw)
            out.kept.append((name, raw))
            continue
        targets = [rtype] if rtype else list(types or [])
        crits = [_criterion(t, name, raw, base) for t in targets]
        if rtype is None:
            # A system search: the parameter must be one that every searched type defines.
            if any(c is None for c in crits) or not crits:
                out.unknown.append(name)
                continue
            out.criteria.append(("per-type", dict(zip(targets, crits))))
        else:
            crit = crits[0]
            if crit is None:
                out.unknown.append(name)
                continue
            out.criteria.append(crit)
        out.kept.append((name, raw))
    return out


def _result_param(out: Parsed, rtype: str | None, name: str, raw: str) -> None:
    base_name, _, modifier = name.partition(":")
    if base_name == "_count":
        out.count = _count(name, raw)
    elif base_name == "_total":
        if raw not in TOTAL_MODES:
            raise bad(name, raw)
        out.total = raw
    elif base_name == "_summary":
        if raw not in ("true", "text", "data", "count", "false"):
            raise bad(name, raw)
        out.summary = raw
    elif base_name == "_elements":
        out.elements = raw
    elif base_name == "_sort":
        for key in raw.split(","):
            desc = key.startswith("-")
            code = key[1:] if desc else key
            if not code:
                raise bad(name, raw)
            if rtype is None:
                if code not in ("_id", "_lastUpdated"):
                    raise bad(name, raw)
                out.sort.append((code, -1 if desc else 1))
                continue
            p = lookup(rtype, code)
            if p is None or p.type == "composite":
                raise FHIRError(400, "not-supported", "bad-sort", name=code)
            out.sort.append((p, -1 if desc else 1))
    elif base_name in ("_include", "_revinclude"):
        if modifier not in ("", "iterate", "recurse"):
            raise bad(name, raw)
        src, code, target = _include_spec(rtype, name, raw, base_name == "_revinclude")
        spec = (src, code, target, modifier in ("iterate", "recurse"))
        (out.revincludes if base_name == "_revinclude" else out.includes).append(spec)
    elif base_name in ("_contained", "_containedType"):
        if raw not in ("false", "true", "both", "container", "contained"):
            raise bad(name, raw)
        if raw not in ("false", "container"):
            raise FHIRError(400, "not-supported", "contained-search")
