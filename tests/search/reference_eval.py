"""A deliberately simple, independent search evaluator for differential testing.

Given a resource type, the criteria that `fhir_server.search.query.parse` produced for a
request (`Criterion`, `Chain`, `Has`, and lists meaning OR) and every stored resource as
JSON (a dict type -> list of resources), `evaluate` decides match / no match for each
resource in plain Python, straight from the R4 rules (search.html 3.1.1.4):

  * it walks the resource JSON itself along each parameter's `SearchParam.paths`
    (arrays walked implicitly, `where` filters applied at `where_depth`, `ref` limiting
    reference targets);
  * it re-reads every search value from the text the client wrote (`Criterion.raw`,
    split at unescaped `,` `$` `|` here), so the number precision, prefixes, date ranges and
    reference forms are interpreted by this module, not taken from the parser;
  * chains and `_has` are answered by brute force over the other resources.

It does NOT call `fhir_server.search.index` (no `index_resource`, no `entries`) nor the
compiler or executor. From the server it reuses only tiny pure helpers:
`fhir_server.search.index.fold` (the case/accent folding), `fhir_server.search.index.date_range`
(a FHIR date/dateTime/instant as [low, high) at millisecond precision) and
`fhir_server.search.ucum.canonical` (a UCUM value in canonical units); plus the parameter
table (`SearchParam`) as data.

The rules, as read from search.html (and where the spec leaves a choice, which one):
  token     `code` any system; `system|code`; `|code` no system; `system|` any code.
            Codes compare case-sensitively, except on elements of type string (the spec:
            "if the underlying data type is string then the search is not case sensitive").
            A `code` element has the implicit system of its value set (the table's
            `Path.system`, "(implicit)" in the spec's token table); ContactPoint, boolean, uri,
            string elements have no token system.
            Patient `deceased` is the boolean of its expression `Patient.deceased.exists() and
            Patient.deceased != false`: false for a patient without deceased[x], never missing.
            :not = no value matches (resources without a value included); :text = a string
            search (starts-with, folded) on CodeableConcept.text, Coding.display,
            Identifier.type.text; :of-type = Identifier.type.coding system|code plus value.
  string    folded starts-with; :exact equality; :contains folded substring. HumanName and
            Address search their string parts (family, given, prefix, suffix, text / line,
            city, district, state, postalCode, country, text).
  date      values are ranges [low, high) (Period bounds open when absent, Timing its outer
            limits). eq: the search range contains the value range; ne: not eq;
            gt: value high > search high; lt: value low < search low; ge: gt or eq;
            le: lt or eq; sa: value low >= search high; eb: value high <= search low;
            ap: the value range overlaps the search range widened on each side by 10% of
            the gap between now and the search value (the spec leaves the exact amount to
            the system; the gap is taken to the farther end of the search range).
  number /  eq/ne test the implicit range of the search value by its significant digits
  quantity  (`100` is [99.5, 100.5), `1.00e2` too: "100 and 1.00e2 both have the same number
            of significant digits - three"; `5.40e-3` is 0.0054(+/-0.000005) as in the
            quantity examples; the number table's `1e2` -> [95, 105) contradicts both and is
            not followed); gt/lt/ge/le/sa/eb compare with the value
            as written, "treated as if [it had] arbitrarily high precision" (sa = gt,
            eb = lt for a point value); ap: within 10% of the value as written (inclusive).
            Stored values are points. `n|system|code` needs that system and code, or, when
            the system is UCUM, a value that reduces to the same canonical unit and matches
            in canonical units; `n||code` matches Quantity.code or Quantity.unit; `n` any unit.
  reference `[id]` (any type unless a `:[type]` modifier), `[type]/[id]`, an absolute URL (an
            URL under this server's base is the same as the relative reference, both ways),
            `:identifier` a token on Reference.identifier. A path limited to some target types
            (`where(resolve() is Patient)`) takes a reference whose type is known (literal
            reference, or Reference.type); a logical reference without a type resolves to
            nothing, so it is not taken.
  uri       exact; :below the value starts with the search text; :above the value is the search
            text or one of its parent paths, cut at "/" (never shorter than scheme://host).
  composite one element of the context (the resource, or each component) matches every
            component value.
  :missing  true: no element along the paths carries a searchable value.
  _id       the resource id, exact; _lastUpdated meta.lastUpdated as a date.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

from fhir_server.search.index import date_range, fold
from fhir_server.search.params import Path, SearchParam
from fhir_server.search.query import Chain, Criterion, Has
from fhir_server.search.ucum import canonical

UTC = timezone.utc
NEG_INF = datetime.min.replace(tzinfo=UTC)
POS_INF = datetime.max.replace(tzinfo=UTC)
UCUM = "http://unitsofmeasure.org"
ISO4217 = "urn:iso:std:iso:4217"
DEFAULT_BASE = "http://localhost/fhir"
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
HUMAN_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_NUMBER = re.compile(r"^[+-]?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$|^[+-]?\.(\d+)(?:[eE]([+-]?\d+))?$")


class Unsupported(Exception):
    """A criterion this evaluator does not interpret (the test should not generate it)."""


# -- the search value text -------------------------------------------------------------------
def split_escaped(text: str, sep: str) -> list[str]:
    """Split at `sep` not preceded by a backslash escape (search.html 3.1.1.4.19)."""
    out, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def split_prefix(text: str) -> tuple[str, str]:
    if len(text) > 2 and text[:2] in PREFIXES and (text[2].isdigit() or text[2] in "+-."):
        return text[:2], text[2:]
    return "eq", text


def decimal_of(text: str) -> tuple[Decimal, Decimal]:
    """(value, half of the unit in the last significant digit) of a number as written."""
    text = text.strip()
    m = _NUMBER.match(text)
    if not m:
        raise Unsupported(f"number {text!r}")
    if m.group(1) is not None:
        frac, exp = m.group(2) or "", int(m.group(3) or 0)
    else:
        frac, exp = m.group(4), int(m.group(5) or 0)
    value = Decimal(text)
    last = exp - len(frac)  # power of ten of the last digit written
    return value, Decimal(5) * Decimal(10) ** (last - 1)


def dec(x) -> Decimal:
    """A stored JSON number (parsed as int or float) as the decimal it was written as."""
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


# -- walking the resource ----------------------------------------------------------------------
def walk(node, keys) -> list:
    items = [node]
    for key in keys:
        nxt = []
        for item in items:
            if isinstance(item, dict) and key in item:
                value = item[key]
                if isinstance(value, list):
                    nxt.extend(value)
                else:
                    nxt.append(value)
        items = nxt
    return items


def elements(node, path: Path) -> list:
    """The elements a path selects; `where` filters the elements reached after `where_depth` keys."""
    if not path.where:
        return walk(node, path.keys)
    depth = getattr(path, "where_depth", None)
    depth = len(path.keys) if depth is None else depth
    kept = [e for e in walk(node, path.keys[:depth]) if isinstance(e, dict) and all(e.get(k) == v for k, v in path.where)]
    return [x for e in kept for x in walk(e, path.keys[depth:])]


def deceased_flag(resource) -> bool:
    """Patient-deceased is `Patient.deceased.exists() and Patient.deceased != false`: a boolean for every patient."""
    if "deceasedDateTime" in resource:
        return True
    return resource.get("deceasedBoolean") is True


def param_elements(node, p_paths) -> list[tuple]:
    """(element, path) pairs of a parameter in a resource (or a composite's context node)."""
    if any(path.type == "deceased-flag" for path in p_paths):
        return [(deceased_flag(node), Path((), "boolean"))]
    return [(e, path) for path in p_paths for e in elements(node, path)]


# -- references ------------------------------------------------------------------------------------
def literal_target(text: str, base: str):
    """('local', type, id) / ('url', url) / None for a Reference.reference string."""
    if not isinstance(text, str) or not text or text.startswith("#"):
        return None
    if text.startswith(base + "/"):
        text = text[len(base) + 1 :]
    if "://" in text or text.startswith("urn:"):
        return ("url", text.split("|", 1)[0])
    parts = text.split("/")
    if len(parts) == 2 or (len(parts) == 4 and parts[2] == "_history"):
        return ("local", parts[0], parts[1])
    return ("url", text)


def _url_type(url: str) -> str | None:
    parts = url.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return parts[-2] if len(parts) >= 2 and parts[-2][:1].isupper() else None


def reference_targets(elem, path: Path, base: str) -> list:
    """What one Reference/canonical element points at, filtered by the path's target types.

    Items: ('local', type, id), ('url', url), ('ident', system, value).
    """
    out = []
    if isinstance(elem, str):  # canonical / uri
        t = ("url", elem.split("|", 1)[0])
        if path.ref is None or _url_type(t[1]) in path.ref:
            out.append(t)
        return out
    if not isinstance(elem, dict):
        return out
    t = literal_target(elem.get("reference"), base)
    known_type = None
    if t is not None:
        known_type = t[1] if t[0] == "local" else _url_type(t[1])
        if path.ref is None or known_type in path.ref:
            out.append(t)
    ident = elem.get("identifier")
    if isinstance(ident, dict) and isinstance(ident.get("value"), str):
        rtype = elem.get("type") or known_type
        if path.ref is None or rtype in path.ref:
            out.append(("ident", ident.get("system"), ident["value"]))
    return out


def local_refs(resource, param: SearchParam, base: str) -> set[tuple[str, str]]:
    out = set()
    for path in param.paths:
        for elem in elements(resource, path):
            for t in reference_targets(elem, path, base):
                if t[0] == "local":
                    out.add((t[1], t[2]))
    return out


# -- per-type matching of one element against one search value -------------------------------------
def token_pairs(elem, ftype: str, implicit_system: str | None = None) -> list[tuple[str | None, str]]:
    if ftype == "boolean":
        return [(None, "true" if elem else "false")] if isinstance(elem, bool) else []
    if isinstance(elem, str):
        # a `code` has the implicit system of its value set (the table's `system`); uri, string, id none
        return [(implicit_system if ftype == "code" else None, elem)]
    if not isinstance(elem, dict):
        return []
    if ftype == "Coding":
        return [(elem.get("system"), elem["code"])] if isinstance(elem.get("code"), str) else []
    if ftype == "CodeableConcept":
        return [p for c in elem.get("coding", []) for p in token_pairs(c, "Coding")]
    if ftype == "Identifier":
        return [(elem.get("system"), elem["value"])] if isinstance(elem.get("value"), str) else []
    if ftype == "ContactPoint":
        return [(None, elem["value"])] if isinstance(elem.get("value"), str) else []
    return []


def token_texts(elem, ftype: str) -> list[str]:
    if not isinstance(elem, dict):
        return []
    if ftype == "Coding":
        return [elem["display"]] if isinstance(elem.get("display"), str) else []
    if ftype == "CodeableConcept":
        out = [elem["text"]] if isinstance(elem.get("text"), str) else []
        return out + [t for c in elem.get("coding", []) for t in token_texts(c, "Coding")]
    if ftype == "Identifier":
        t = (elem.get("type") or {}).get("text")
        return [t] if isinstance(t, str) else []
    return []


def parse_token(raw: str, modifier: str | None):
    if modifier == "text":
        return ("text", unescape(raw))
    if modifier == "of-type":
        parts = [unescape(p) for p in split_escaped(raw, "|")]
        if len(parts) != 3:
            raise Unsupported(raw)
        return ("of-type", *parts)
    parts = split_escaped(raw, "|")
    if len(parts) == 1:
        return ("code", None, unescape(raw))  # any system
    if len(parts) != 2:
        raise Unsupported(raw)
    return ("code", unescape(parts[0]), unescape(parts[1]) or None)


def token_match(elem, ftype: str, value, implicit_system: str | None = None) -> bool:
    kind = value[0]
    if kind == "text":
        want = fold(value[1])
        return any(fold(t).startswith(want) for t in token_texts(elem, ftype))
    if kind == "of-type":
        _, system, code, ident = value
        if ftype != "Identifier" or not isinstance(elem, dict) or elem.get("value") != ident:
            return False
        codings = (elem.get("type") or {}).get("coding", [])
        return any(c.get("system") == system and c.get("code") == code for c in codings)
    _, system, code = value
    insensitive = ftype == "string"
    for s, c in token_pairs(elem, ftype, implicit_system):
        if code is not None:
            if (c.casefold() != code.casefold()) if insensitive else (c != code):
                continue
        if system is None:
            if code is not None:
                return True
            continue
        if system == "":
            if s is None:
                return True
            continue
        if s == system:
            return True
    return False


def string_texts(elem, ftype: str) -> list[str]:
    if isinstance(elem, str):
        return [elem]
    if not isinstance(elem, dict):
        return []
    parts = HUMAN_NAME_PARTS if ftype == "HumanName" else ADDRESS_PARTS if ftype == "Address" else ()
    return [t for p in parts for t in walk(elem, (p,)) if isinstance(t, str)]


def string_match(elem, ftype: str, raw: str, modifier: str | None) -> bool:
    want = unescape(raw)
    for text in string_texts(elem, ftype):
        if modifier == "exact":
            if text == want:
                return True
        elif modifier == "contains":
            if fold(want) in fold(text):
                return True
        elif fold(text).startswith(fold(want)):
            return True
    return False


def value_range(elem, ftype: str) -> tuple[datetime, datetime] | None:
    if isinstance(elem, str):
        return date_range(elem)
    if not isinstance(elem, dict):
        return None
    if ftype == "Period":
        start = date_range(elem["start"]) if isinstance(elem.get("start"), str) else None
        end = date_range(elem["end"]) if isinstance(elem.get("end"), str) else None
        if start is None and end is None:
            return None
        return (start[0] if start else NEG_INF, end[1] if end else POS_INF)
    if ftype == "Timing":  # only the outer limits matter
        ranges = [date_range(e) for e in elem.get("event", []) if isinstance(e, str)]
        bounds = (elem.get("repeat") or {}).get("boundsPeriod")
        if isinstance(bounds, dict):
            ranges.append(value_range(bounds, "Period"))
        ranges = [r for r in ranges if r]
        if not ranges:
            return None
        return (min(r[0] for r in ranges), max(r[1] for r in ranges))
    return None


def parse_date(raw: str) -> tuple[str, datetime, datetime]:
    prefix, rest = split_prefix(raw)
    rng = date_range(rest)
    if rng is None:
        raise Unsupported(raw)
    return prefix, rng[0], rng[1]


def date_test(lo: datetime, hi: datetime, value, now: datetime) -> bool:
    prefix, qlo, qhi = value
    eq = lo >= qlo and hi <= qhi
    if prefix == "eq":
        return eq
    if prefix == "ne":
        return not eq
    if prefix == "gt":
        return hi > qhi
    if prefix == "lt":
        return lo < qlo
    if prefix == "ge":
        return hi > qhi or eq
    if prefix == "le":
        return lo < qlo or eq
    if prefix == "sa":
        return lo >= qhi
    if prefix == "eb":
        return hi <= qlo
    if prefix == "ap":
        gap = max(abs(qlo - now), abs(qhi - now))
        widen = gap * 0.1
        return lo < qhi + widen and hi > qlo - widen
    raise Unsupported(prefix)


def number_test(v: Decimal, prefix: str, exact: Decimal, low: Decimal, high: Decimal) -> bool:
    if prefix == "eq":
        return low <= v < high
    if prefix == "ne":
        return not (low <= v < high)
    if prefix in ("gt", "sa"):
        return v > exact
    if prefix in ("lt", "eb"):
        return v < exact
    if prefix == "ge":
        return v >= exact
    if prefix == "le":
        return v <= exact
    if prefix == "ap":
        return abs(v - exact) <= abs(exact) / 10
    raise Unsupported(prefix)


def parse_number(raw: str):
    prefix, rest = split_prefix(raw)
    exact, half = decimal_of(rest)
    return prefix, exact, exact - half, exact + half


def number_match(elem, value) -> bool:
    if not isinstance(elem, (int, float)) or isinstance(elem, bool):
        return False
    prefix, exact, low, high = value
    return number_test(dec(elem), prefix, exact, low, high)


def parse_quantity(raw: str):
    parts = split_escaped(raw, "|")
    if len(parts) not in (1, 3):
        raise Unsupported(raw)
    prefix, exact, low, high = parse_number(parts[0])
    system = unescape(parts[1]) or None if len(parts) == 3 else None
    code = unescape(parts[2]) or None if len(parts) == 3 else None
    return prefix, exact, low, high, system, code


def _canonical_dec(v: Decimal, code: str) -> tuple[Decimal, str] | None:
    c = canonical(float(v), code)
    return (Decimal(repr(c[0])), c[1]) if c else None


def quantity_match(elem, ftype: str, value) -> bool:
    if not isinstance(elem, dict):
        return False
    v = elem.get("value")
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    e_system, e_code, e_unit = elem.get("system"), elem.get("code"), elem.get("unit")
    if ftype == "Money":
        e_system, e_code, e_unit = ISO4217, elem.get("currency"), None
    prefix, exact, low, high, system, code = value
    plain = number_test(dec(v), prefix, exact, low, high)
    if system is None and code is None:
        return plain
    if system is None:
        return plain and code in (e_code, e_unit)
    if code is None:
        return plain and e_system == system
    if plain and e_system == system and e_code == code:
        return True
    if system == UCUM and e_system == UCUM and isinstance(e_code, str):
        mine = _canonical_dec(dec(v), e_code)
        q_exact, q_low, q_high = (_canonical_dec(x, code) for x in (exact, low, high))
        if mine and q_exact and q_low and q_high and mine[1] == q_exact[1]:
            lo, hi = sorted((q_low[0], q_high[0]))
            return number_test(mine[0], prefix, q_exact[0], lo, hi)
    return False


def parse_reference(raw: str, modifier: str | None, base: str):
    if modifier == "identifier":
        parts = split_escaped(raw, "|")
        if len(parts) == 1:
            return ("ident", None, unescape(raw))
        if len(parts) != 2:
            raise Unsupported(raw)
        return ("ident", unescape(parts[0]), unescape(parts[1]))
    text = unescape(raw)
    typed = modifier if modifier not in (None, "identifier", "missing") else None
    if "/" not in text and ":" not in text:
        return ("id", typed, text)
    t = literal_target(text, base)
    if t is None:
        raise Unsupported(raw)
    if t[0] == "local":
        if typed is not None and typed != t[1]:
            raise Unsupported(raw)
        return ("id", t[1], t[2])
    return ("url", t[1])


def reference_match(elem, path: Path, value, base: str) -> bool:
    for t in reference_targets(elem, path, base):
        if value[0] == "ident":
            if t[0] != "ident" or t[2] != value[2]:
                continue
            if value[1] is None or (value[1] == "" and t[1] is None) or (value[1] and t[1] == value[1]):
                return True
        elif value[0] == "id":
            if t[0] == "local" and t[2] == value[2] and (value[1] is None or t[1] == value[1]):
                return True
        elif t[0] == "url" and t[1] == value[1]:
            return True
    return False


def uri_match(elem, raw: str, modifier: str | None) -> bool:
    if not isinstance(elem, str):
        return False
    want = unescape(raw)
    if modifier == "below":
        return elem.startswith(want)
    if modifier == "above":
        # The stored uri is the search uri or one of its parent paths (whole segments, never
        # shorter than scheme://host): `.../mis/1` is above `.../mis/1/x` but not `.../mis/1-child`.
        if elem == want:
            return True
        rest = elem.split("://", 1)[1] if "://" in elem else elem
        return bool(rest) and want.startswith(elem + "/") and ("://" not in want or "://" in elem)
    return elem == want


# -- one value of a parameter against the resource -------------------------------------------------
def parse_value(ptype: str, raw: str, modifier: str | None, base: str):
    if ptype == "token":
        return parse_token(raw, modifier)
    if ptype == "date":
        return parse_date(raw)
    if ptype == "number":
        return parse_number(raw)
    if ptype == "quantity":
        return parse_quantity(raw)
    if ptype == "reference":
        return parse_reference(raw, modifier, base)
    if ptype in ("string", "uri"):
        return raw
    raise Unsupported(ptype)


def element_match(ptype: str, elem, path: Path, value, modifier: str | None, ctx) -> bool:
    if ptype == "token":
        return token_match(elem, path.type, value, getattr(path, "system", None))
    if ptype == "string":
        return string_match(elem, path.type, value, modifier)
    if ptype == "date":
        rng = value_range(elem, path.type)
        return rng is not None and date_test(rng[0], rng[1], value, ctx.now)
    if ptype == "number":
        return number_match(elem, value)
    if ptype == "quantity":
        return quantity_match(elem, path.type, value)
    if ptype == "reference":
        return reference_match(elem, path, value, ctx.base)
    if ptype == "uri":
        return uri_match(elem, value, modifier)
    raise Unsupported(ptype)


def has_value(ptype: str, elem, path: Path, ctx) -> bool:
    """Whether one element carries a searchable value of the parameter's type."""
    if ptype == "token":
        return bool(token_pairs(elem, path.type) or token_texts(elem, path.type))
    if ptype == "string":
        return bool(string_texts(elem, path.type))
    if ptype == "date":
        return value_range(elem, path.type) is not None
    if ptype == "number":
        return isinstance(elem, (int, float)) and not isinstance(elem, bool)
    if ptype == "quantity":
        return isinstance(elem, dict) and isinstance(elem.get("value"), (int, float))
    if ptype == "reference":
        return bool(reference_targets(elem, path, ctx.base))
    if ptype == "uri":
        return isinstance(elem, str)
    raise Unsupported(ptype)


def values_of(raw: str) -> list[str]:
    return split_escaped(raw, ",")


def _any_element(resource, paths, pred) -> bool:
    return any(pred(elem, path) for elem, path in param_elements(resource, paths))


def criterion_match(rtype: str, resource: dict, c: Criterion, ctx) -> bool:
    p = c.param
    modifier = c.modifier
    if modifier == "missing":
        if p.type == "composite":
            raise Unsupported("composite :missing")
        present = _any_element(resource, p.paths, lambda e, path: has_value(p.type, e, path, ctx))
        return present == (c.raw == "false")
    raws = values_of(c.raw)
    if p.code == "_id":
        if modifier is not None:
            raise Unsupported("_id modifier")
        return any("|" not in r and unescape(r) == resource.get("id") for r in raws)
    if p.code == "_lastUpdated":
        rng = date_range((resource.get("meta") or {}).get("lastUpdated", ""))
        return rng is not None and any(date_test(rng[0], rng[1], parse_date(r), ctx.now) for r in raws)
    if p.type == "composite":
        return any(composite_match(resource, p, raw, ctx) for raw in raws)
    negate = modifier == "not"
    if negate:
        if p.type != "token":
            raise Unsupported(":not on " + p.type)
        modifier = None
    values = [parse_value(p.type, r, modifier, ctx.base) for r in raws]
    hit = any(
        _any_element(resource, p.paths, lambda e, path, v=v: element_match(p.type, e, path, v, modifier, ctx)) for v in values
    )
    return not hit if negate else hit


def composite_match(resource: dict, p: SearchParam, raw: str, ctx) -> bool:
    parts = split_escaped(raw, "$")
    if len(parts) != len(p.components):
        raise Unsupported(raw)
    values = [parse_value(comp.type, part, None, ctx.base) for comp, part in zip(p.components, parts)]
    for j, keys in enumerate(p.contexts):
        for node in walk(resource, keys) if keys else [resource]:
            if all(
                _any_element(node, comp.paths[j], lambda e, path, comp=comp, v=v: element_match(comp.type, e, path, v, None, ctx))
                for comp, v in zip(p.components, values)
            ):
                return True
    return False


# -- criteria, chains, _has ---------------------------------------------------------------------------
class Ctx:
    def __init__(self, store: dict[str, list[dict]], base: str, now: datetime):
        self.store = store
        self.base = base
        self.now = now
        self._cache: dict = {}

    def matching_ids(self, rtype: str, crit) -> set[str]:
        key = (rtype, id(crit))
        if key not in self._cache:
            self._cache[key] = (crit, {r["id"] for r in self.store.get(rtype, []) if matches(rtype, r, crit, self)})
        return self._cache[key][1]

    def referenced_by(self, has: Has) -> set[tuple[str, str]]:
        """(type, id) of everything that some `has.source` resource matching `has.inner` refers to through `has.ref`."""
        key = ("has", id(has))
        if key not in self._cache:
            refs = set()
            for src in self.store.get(has.source, []):
                if matches(has.source, src, has.inner, self):
                    refs |= local_refs(src, has.ref, self.base)
            self._cache[key] = (has, refs)
        return self._cache[key][1]


def matches(rtype: str, resource: dict, crit, ctx: Ctx) -> bool:
    if isinstance(crit, list):
        return any(matches(rtype, resource, c, ctx) for c in crit)
    if isinstance(crit, Criterion):
        return criterion_match(rtype, resource, crit, ctx)
    if isinstance(crit, Chain):
        wanted = ctx.matching_ids(crit.target, crit.inner)
        return any(t == crit.target and i in wanted for t, i in local_refs(resource, crit.param, ctx.base))
    if isinstance(crit, Has):
        return (rtype, resource["id"]) in ctx.referenced_by(crit)
    raise Unsupported(type(crit).__name__)


def evaluate(rtype: str, criteria: list, store: dict[str, list[dict]], base: str = DEFAULT_BASE, now: datetime | None = None) -> set[str]:
    """Ids of the `rtype` resources in `store` that match every criterion (ANDed)."""
    now = now or datetime.now(UTC)
    ctx = Ctx(store, base, now)
    return {r["id"] for r in store.get(rtype, []) if all(matches(rtype, r, c, ctx) for c in criteria)}


__all__ = ["Unsupported", "evaluate", "split_escaped", "unescape", "walk", "elements", "literal_target", "reference_targets"]
