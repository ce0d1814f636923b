"""Write-time extraction of search values into a resource's stored index.

Every parameter of the resource's type (search_params.json) is evaluated when the
resource is written, and its values are normalised into the stored document, so a
search compiles to an indexed MongoDB match and never looks inside the resource:

    idx.<code>  a list of entries, one shape per parameter type
        token      {s: system|None, c: code}; {x: folded text} (CodeableConcept.text,
                   Coding.display: for :text); {ot: "typesystem|typecode|value"} (:of-type)
        string     {f: folded, e: exact}
        date       {l: low, h: high}  the value as a half-open range of instants
        number     {v: value}
        quantity   {v, s, c, u: unit, cv, cc: value and code in canonical UCUM units}
        reference  {t: type, i: id} local; {u: url} absolute or canonical;
                   {is, ic} the reference's identifier (:identifier)
        uri        {u: uri}
        composite  {"0": entry of component 0, "1": entry of component 1, ...}
    sk.<code>   {a: smallest value, d: largest value}: scalar sort keys for _sort and
                keyset paging (a multikey sort would not page stably)

A parameter with no values has no `idx` key, which is what `:missing` tests.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from itertools import product

from profiles_ru import identifiers

from .. import fhirtime
from . import ucum
from .params import Path, SearchParam, params_of

UTC = fhirtime.UTC
MIN_DATE = datetime(1, 1, 1, tzinfo=UTC)
MAX_DATE = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


# -- normalisation ------------------------------------------------------------------------
def fold(text: str) -> str:
    """Case- and accent-insensitive form of a string (R4 search.html 3.1.1.4.7).

    Combining marks are dropped (é -> e, ё -> е), except that й stays й: in Russian
    it is a letter of its own, not an accented и.
    """
    text = unicodedata.normalize("NFC", text).replace("й", "\0").replace("Й", "\1")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.replace("\0", "й").replace("\1", "й").casefold()


def floor_ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def ceil_ms(t: datetime) -> datetime:
    f = floor_ms(t)
    return f if f == t else f + timedelta(milliseconds=1)


def date_range(value: str) -> tuple[datetime, datetime] | None:
    """[low, high) of a FHIR date/dateTime/instant at the millisecond precision BSON stores."""
    rng = fhirtime.parse_range(value)
    if rng is None:
        return None
    return floor_ms(rng[0]), ceil_ms(rng[1])


def split_reference(ref: str, base: str | None = None) -> dict | None:
    """{t, i} for Type/id (also absolute URLs on this server), {u} for other URLs."""
    if base and ref.startswith(base + "/"):
        ref = ref[len(base) + 1 :]
    if ref.startswith("#") or not ref:
        return None  # contained: not searchable (no _contained support)
    if "://" in ref or ref.startswith("urn:"):
        return {"u": ref.split("|", 1)[0]}
    parts = ref.split("/")
    if len(parts) in (2, 4) and parts[0][:1].isupper() and (len(parts) == 2 or parts[2] == "_history"):
        return {"t": parts[0], "i": parts[1]}
    return {"u": ref}


# -- walking paths ------------------------------------------------------------------------
def values_at(resource, keys: tuple[str, ...]) -> list:
    """Every value at a key path, arrays flattened on the way."""
    nodes = [resource]
    for key in keys:
        nxt = []
        for n in nodes:
            if isinstance(n, dict) and key in n:
                v = n[key]
                nxt.extend(v if isinstance(v, list) else [v])
        nodes = nxt
    return nodes


def _path_values(node, path: Path) -> list:
    if not path.where:
        return values_at(node, path.keys)
    depth = len(path.keys) if path.where_depth is None else path.where_depth
    kept = [v for v in values_at(node, path.keys[:depth]) if isinstance(v, dict) and all(v.get(k) == w for k, w in path.where)]
    return [x for v in kept for x in values_at(v, path.keys[depth:])]


# -- entries per parameter type --------------------------------------------------------------
def _token(value, ftype: str, system: str | None = None) -> list[dict]:
    if ftype == "boolean":
        return [{"c": "true" if value else "false"}] if isinstance(value, bool) else []
    if ftype == "deceased-flag":
        return [{"c": "true"}] if isinstance(value, str) else []
    if isinstance(value, str):
        # search.html 3.1.1.4.9: "If the underlying data type is string then the search is not
        # case sensitive" - the value is kept case-folded, as the parser folds the search code.
        return [{"s": system, "c": value.casefold() if ftype == "string" else value}]
    if not isinstance(value, dict):
        return []
    if ftype == "Coding":
        out = [{"s": value.get("system"), "c": value["code"]}] if isinstance(value.get("code"), str) else []
        if isinstance(value.get("display"), str):
            out.append({"x": fold(value["display"])})
        return out
    if ftype == "CodeableConcept":
        out = [e for c in value.get("coding", []) for e in _token(c, "Coding")]
        if isinstance(value.get("text"), str):
            out.append({"x": fold(value["text"])})
        return out
    if ftype == "Identifier":
        if not isinstance(value.get("value"), str):
            return []
        out = [{"s": value.get("system"), "c": value["value"]}]
        out.extend(_russian_identifier(value, "s", "c"))
        for c in (value.get("type") or {}).get("coding", []):
            out.append({"ot": f"{c.get('system', '')}|{c.get('code', '')}|{value['value']}"})
        if isinstance((value.get("type") or {}).get("text"), str):
            out.append({"x": fold(value["type"]["text"])})
        return out
    if ftype == "ContactPoint":
        return [{"s": value.get("system"), "c": value["value"]}] if isinstance(value.get("value"), str) else []
    return []


def _string(value, ftype: str) -> list[dict]:
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, dict):
        parts = _NAME_PARTS if ftype == "HumanName" else _ADDRESS_PARTS if ftype == "Address" else ()
        texts = [t for p in parts for t in values_at(value, (p,)) if isinstance(t, str)]
    else:
        texts = []
    return [{"f": fold(t), "e": t} for t in texts]


def _date(value, ftype: str) -> list[dict]:
    if isinstance(value, str):
        rng = date_range(value)
        return [{"l": rng[0], "h": rng[1]}] if rng else []
    if not isinstance(value, dict):
        return []
    if ftype == "Period":
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        if start is None and end is None:
            return []
        return [{"l": start[0] if start else MIN_DATE, "h": end[1] if end else MAX_DATE}]
    if ftype == "Timing":
        ranges = [r for e in value.get("event", []) if isinstance(e, str) and (r := date_range(e))]
        bounds = (value.get("repeat") or {}).get("boundsPeriod")
        out = [{"l": lo, "h": hi} for lo, hi in ranges]
        if isinstance(bounds, dict):
            out.extend(_date(bounds, "Period"))
        if len(out) > 1:
            out = [{"l": min(e["l"] for e in out), "h": max(e["h"] for e in out)}]
        return out
    return []


def _number(value, ftype: str) -> list[dict]:
    return [{"v": float(value)}] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def _quantity(value, ftype: str) -> list[dict]:
    if not isinstance(value, dict) or not isinstance(value.get("value"), (int, float)):
        return []
    q = {"v": float(value["value"]), "s": value.get("system"), "c": value.get("code"), "u": value.get("unit")}
    if ftype == "Money":
        q["c"] = value.get("currency")
        q["s"] = "urn:iso:std:iso:4217"
    if q["s"] == ucum.UCUM and isinstance(q["c"], str):
        canon = ucum.canonical(q["v"], q["c"])
        if canon is not None:
            q["cv"], q["cc"] = canon
    return [q]


def _reference(value, ftype: str, path: Path, base: str | None) -> list[dict]:
    if isinstance(value, str):  # canonical / uri
        return [{"u": value.split("|", 1)[0]}]
    if not isinstance(value, dict):
        return []
    out = []
    known = None  # the target's type, when the reference tells it
    if isinstance(value.get("reference"), str):
        r = split_reference(value["reference"], base)
        if r is not None:
            known = r.get("t") or _url_type(r["u"])
            if path.ref is None or known in path.ref:
                out.append(r)
    ident = value.get("identifier")
    if isinstance(ident, dict) and isinstance(ident.get("value"), str):
        # `where(resolve() is Patient)`: a logical reference is taken when Reference.type (or
        # its literal reference) says Patient; with neither it resolves to nothing.
        if path.ref is None or (value.get("type") or known) in path.ref:
            out.append({"is": ident.get("system"), "ic": ident["value"]})
            out.extend(_russian_identifier(ident, "is", "ic"))
    return out


def _russian_identifier(ident: dict, s: str, c: str) -> list[dict]:
    """A SNILS, ENP, passport, INN, OGRN(IP) written under any of its systems is also indexed under
    its one canonical system with the separators removed (profiles_ru.identifiers; the search
    value is normalised the same way in query.parse_token), so every spelling finds it."""
    key = identifiers.index_key(ident)
    return [{s: key[0], c: key[1]}] if key is not None and key != (ident.get("system"), ident["value"]) else []


def _url_type(url: str) -> str | None:
    """The resource type of an absolute reference [base]/Type/id[/_history/vid]."""
    parts = url.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    return parts[-2] if len(parts) >= 2 else None


def _uri(value, ftype: str) -> list[dict]:
    return [{"u": value}] if isinstance(value, str) else []


_EXTRACT = {"token": _token, "string": _string, "date": _date, "number": _number, "quantity": _quantity, "uri": _uri}


def entries(node, ptype: str, paths, base: str | None = None) -> list[dict]:
    out: list[dict] = []
    for path in paths:
        for value in _path_values(node, path):
            if ptype == "reference":
                got = _reference(value, path.type, path, base)
            elif ptype == "token":
                got = _token(value, path.type, path.system)
            else:
                got = _EXTRACT[ptype](value, path.type)
            for e in got:
                if e not in out:
                    out.append(e)
    return out


def _composite(resource: dict, p: SearchParam, base: str | None) -> list[dict]:
    out = []
    for j, ctx_keys in enumerate(p.contexts):
        for node in values_at(resource, ctx_keys) if ctx_keys else [resource]:
            per = [entries(node, c.type, c.paths[j], base) for c in p.components]
            for combo in product(*per):
                e = {str(k): v for k, v in enumerate(combo)}
                if e not in out:
                    out.append(e)
    return out


# -- sort keys ---------------------------------------------------------------------------------
def _sort_value(ptype: str, e: dict):
    if ptype == "string":
        return e.get("f")
    if ptype == "token":
        return e.get("c")
    if ptype == "date":
        return e.get("l")
    if ptype in ("number", "quantity"):
        return e.get("v")
    if ptype == "reference":
        return f"{e['t']}/{e['i']}" if "t" in e else e.get("u")
    if ptype == "uri":
        return e.get("u")
    return None


def sort_keys(ptype: str, values: list[dict]) -> dict | None:
    keys = [k for k in (_sort_value(ptype, e) for e in values) if k is not None]
    return {"a": min(keys), "d": max(keys)} if keys else None


# -- the whole index ---------------------------------------------------------------------------
def index_resource(resource: dict, base: str | None = None) -> dict:
    """{"idx": {...}, "sk": {...}} for a resource, per the table of its type."""
    idx: dict = {}
    sk: dict = {}
    for code, p in params_of(resource.get("resourceType", "")).items():
        if p.code in ("_id", "_lastUpdated"):
            continue
        vals = _composite(resource, p, base) if p.type == "composite" else entries(resource, p.type, p.paths, base)
        if not vals and any(x.type == "deceased-flag" for x in p.paths):
            # "deceased.exists() and deceased != false": false when there is no deceased[x] at all.
            vals = [{"c": "false"}]
        if not vals:
            continue
        idx[code] = vals
        if p.type != "composite":
            keys = sort_keys(p.type, vals)
            if keys is not None:
                sk[code] = keys
    return {"idx": idx, "sk": sk}
