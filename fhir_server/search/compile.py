"""Parsed search criteria -> one MongoDB filter (a pure function, no I/O).

Matching rules (R4 search.html):
  * values of one parameter are ORed, repeated parameters ANDed;
  * a resource matches a parameter when ANY of its values matches, so every condition
    that needs several fields of one value is an `$elemMatch` over `idx.<code>`;
  * date values are ranges [low, high): `eq` is containment, `gt` means the resource
    range reaches above the search range, `sa` starts after it, `ap` overlaps the
    search range widened by 10% of its distance from now (3.1.1.4.2);
  * number and quantity values as written stand for a range by their precision
    (`100` is [99.5, 100.5)); `eq`/`ne` test that range, other prefixes the value;
  * quantities with a UCUM unit match in canonical units (`1 g/dL` finds `10 g/L`).

Chains and `_has` arrive resolved (`IdIn`): the executor answered their inner query
with this same compiler first.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from .. import fhirtime
from . import ucum
from .index import ceil_ms, floor_ms
from .params import SearchParam
from .query import Chain, Codes, Criterion, Has, IdIn, Range, Ref, Token, is_terminology

AP_FRACTION = 0.1


def clock() -> datetime:
    """The instant `ap` dates are measured from (read once per search; a test may pin it)."""
    return fhirtime.now()


# -- helpers ------------------------------------------------------------------------------
def _or(clauses: list[dict]) -> dict:
    clauses = [c for c in clauses if c is not None]
    if not clauses:
        return {"_id": {"$in": []}}  # matches nothing
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def and_(clauses: list[dict]) -> dict:
    clauses = [c for c in clauses if c]
    if not clauses:
        return {}
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _elem(field: str, pred: dict) -> dict:
    """Any value of `field` satisfies pred (a single plain field condition needs no $elemMatch)."""
    if len(pred) == 1:
        ((k, v),) = pred.items()
        # One operator on one field means the same on an array as inside $elemMatch;
        # two ({$gte, $lt}) could be met by two different values, so they need $elemMatch.
        if not k.startswith("$") and (not isinstance(v, dict) or len(v) == 1):
            return {f"{field}.{k}": v}
    return {field: {"$elemMatch": pred}}


def _prefixed(pred: dict, prefix: str) -> dict:
    """pred over an entry, rewritten over entry[prefix] (for composite components)."""
    out = {}
    for k, v in pred.items():
        if k in ("$or", "$and", "$nor"):
            out[k] = [_prefixed(x, prefix) for x in v]
        else:
            out[f"{prefix}.{k}"] = v
    return out


def _range_pred(prefix: str, lo: str, hi: str, q_low, q_high, widen=None) -> dict:
    """Entry with range [lo, hi) against search range [q_low, q_high) under a prefix."""
    eq = {lo: {"$gte": q_low}, hi: {"$lte": q_high}}
    if prefix == "eq":
        return eq
    if prefix == "ne":
        return {"$or": [{lo: {"$lt": q_low}}, {hi: {"$gt": q_high}}]}
    if prefix == "gt":
        return {hi: {"$gt": q_high}}
    if prefix == "lt":
        return {lo: {"$lt": q_low}}
    if prefix == "ge":
        return {"$or": [{hi: {"$gt": q_high}}, eq]}
    if prefix == "le":
        return {"$or": [{lo: {"$lt": q_low}}, eq]}
    if prefix == "sa":
        return {lo: {"$gte": q_high}}
    if prefix == "eb":
        return {hi: {"$lte": q_low}}
    # ap: overlaps the search range widened on both sides
    w_low, w_high = widen
    return {lo: {"$lt": w_high}, hi: {"$gt": w_low}}


def _date_widen(v: Range, now: datetime) -> tuple[datetime, datetime]:
    """The search range widened by 10% of its distance from now, out to whole milliseconds:
    stored bounds are milliseconds (BSON would truncate a finer query value), so for them
    `< high` and `> low` mean the same against the rounded-out ends."""
    delta = max(abs(v.low - now), abs(v.high - now)) * AP_FRACTION
    return floor_ms(v.low - delta), ceil_ms(v.high + delta)


def _point_pred(prefix: str, f: str, v: Range, exact, low, high) -> dict:
    """A point value (number, quantity) against a search value with implicit range [low, high)."""
    if prefix == "eq":
        return {f: {"$gte": low, "$lt": high}}
    if prefix == "ne":
        return {"$or": [{f: {"$lt": low}}, {f: {"$gte": high}}]}
    if prefix in ("gt", "sa"):
        return {f: {"$gt": exact}}
    if prefix in ("lt", "eb"):
        return {f: {"$lt": exact}}
    if prefix == "ge":
        return {f: {"$gte": exact}}
    if prefix == "le":
        return {f: {"$lte": exact}}
    d = abs(exact) * AP_FRACTION
    return {f: {"$gte": exact - d, "$lte": exact + d}}


# -- entry predicates per type ---------------------------------------------------------------
def _token_pred(v, modifier: str | None) -> dict:
    if modifier == "text":
        return {"x": {"$regex": "^" + re.escape(v)}}
    if modifier == "of-type":
        return {"ot": v}
    if v.system is None:
        return {"c": v.code}
    system = v.system or None  # "|code": the value has no system
    if v.code is None:
        return {"s": system}
    return {"s": system, "c": v.code}


def _string_pred(v: str, modifier: str | None) -> dict:
    from .index import fold

    if modifier == "exact":
        return {"e": v}
    if modifier == "contains":
        return {"f": {"$regex": re.escape(fold(v))}}
    return {"f": {"$regex": "^" + re.escape(fold(v))}}


def _ref_pred(v, modifier: str | None) -> dict:
    if modifier == "identifier":
        return {"is": v.system or None, "ic": v.code} if v.system is not None else {"ic": v.code}
    if v.url is not None:
        return {"u": v.url}
    if v.type is None:
        return {"i": v.id}
    return {"t": v.type, "i": v.id}


def _uri_pred(v: str, modifier: str | None) -> dict:
    if modifier == "below":
        return {"u": {"$regex": "^" + re.escape(v)}}
    if modifier == "above":
        prefixes, cut = [], v
        while cut:
            prefixes.append(cut)
            cut = cut.rsplit("/", 1)[0] if "/" in cut.split("://", 1)[-1] else ""
        return {"u": {"$in": prefixes}}
    return {"u": v}


def _quantity_pred(v: Range) -> dict:
    plain = _point_pred(v.prefix, "v", v, v.exact, v.low, v.high)
    if v.system is None and v.code is None:
        return plain
    if v.canonical is not None:
        c_low, c_high, c_exact, c_code = v.canonical
        canon = {**_point_pred(v.prefix, "cv", v, c_exact, c_low, c_high), "cc": c_code}
        exact_unit = {**plain, "s": v.system, "c": v.code}
        return {"$or": [canon, exact_unit]}
    if v.system is None:
        unit = {"$or": [{"c": v.code}, {"u": v.code}]}
        # `ne` is itself an $or: both must hold, so they cannot share the key.
        return {"$and": [plain, unit]} if "$or" in plain else {**plain, **unit}
    if v.code is None:
        return {**plain, "s": v.system}
    return {**plain, "s": v.system, "c": v.code}


def entry_pred(ptype: str, v, modifier: str | None, now: datetime) -> dict:
    if ptype == "token":
        return _token_pred(v, modifier)
    if ptype == "string":
        return _string_pred(v, modifier)
    if ptype == "reference":
        return _ref_pred(v, modifier)
    if ptype == "uri":
        return _uri_pred(v, modifier)
    if ptype == "date":
        return _range_pred(v.prefix, "l", "h", v.low, v.high, _date_widen(v, now) if v.prefix == "ap" else None)
    if ptype == "number":
        return _point_pred(v.prefix, "v", v, v.exact, v.low, v.high)
    if ptype == "quantity":
        return _quantity_pred(v)
    raise ValueError(ptype)


# -- stored fields of their own ------------------------------------------------------------------
def _id_clause(values: list, modifier: str | None) -> dict:
    ids = [v.code for v in values if v.system in (None, "")]  # "|id": a code without a system
    if modifier == "not":
        return {"_id": {"$nin": ids}}
    return {"_id": ids[0]} if len(ids) == 1 else {"_id": {"$in": ids}}


def _last_updated_clause(v: Range, now: datetime) -> dict:
    """`ts` is an instant at millisecond precision: the range [ts, ts + 1 ms)."""
    lo, hi = v.low, v.high
    p = v.prefix
    if p == "eq":
        return {"ts": {"$gte": lo, "$lt": hi}}
    if p == "ne":
        return {"$or": [{"ts": {"$lt": lo}}, {"ts": {"$gte": hi}}]}
    if p in ("gt", "sa"):
        return {"ts": {"$gte": hi}}
    if p in ("lt", "eb"):
        return {"ts": {"$lt": lo}}
    if p == "ge":
        return {"ts": {"$gte": lo}}
    if p == "le":
        return {"ts": {"$lt": hi}}
    # [ts, ts + 1 ms) overlaps the widened range, whose ends need not fall on a millisecond.
    w_low, w_high = _date_widen(v, now)
    return {"ts": {"$gt": w_low - timedelta(milliseconds=1), "$lt": w_high}}


def _codes_clause(c: Criterion) -> dict:
    """:in / :below / :above: a coding with one of the resolved codes; :not-in: none such."""
    by_system: dict[str, list[str]] = {}
    for v in c.values:
        if not isinstance(v, Codes):
            raise ValueError("terminology modifiers must be resolved before compiling")
        for system, code in v.pairs:
            by_system.setdefault(system, []).append(code)
    clause = _or(
        [{c.param.field: {"$elemMatch": {"s": s, "c": codes[0] if len(codes) == 1 else {"$in": codes}}}} for s, codes in by_system.items()]
    )
    return {"$nor": [clause]} if c.modifier == "not-in" else clause


# -- criteria --------------------------------------------------------------------------------------
def compile_criterion(c: Criterion, now: datetime) -> dict:
    p: SearchParam = c.param
    if is_terminology(c):
        return _codes_clause(c)
    if c.modifier == "missing":
        return {p.field: {"$exists": not c.values[0]}}
    if p.code == "_id":
        return _id_clause(c.values, c.modifier)
    if p.code == "_lastUpdated":
        return _or([_last_updated_clause(v, now) for v in c.values])
    if p.type == "composite":
        preds = []
        for combo in c.values:
            pred: dict = {}
            ands = []
            for k, (comp, v) in enumerate(zip(p.components, combo)):
                part = _prefixed(entry_pred(comp.type, v, None, now), str(k))
                for key, val in part.items():
                    if key.startswith("$") or key in pred:
                        ands.append({key: val})
                    else:
                        pred[key] = val
            if ands:
                pred["$and"] = ands
            preds.append({p.field: {"$elemMatch": pred}})
        return _or(preds)
    modifier = None if c.modifier in (p.targets or ()) and p.type == "reference" else c.modifier
    if p.type == "reference" and c.modifier in p.targets:
        values = [Ref(c.modifier, v.id, v.url) if isinstance(v, Ref) and v.url is None else v for v in c.values]
    else:
        values = c.values
    clauses = [_elem(p.field, entry_pred(p.type, v, None if modifier == "not" else modifier, now)) for v in values]
    clause = _or(clauses)
    if modifier == "not":
        return {"$nor": [clause]}
    return clause


def compile_resolved(r: IdIn) -> dict:
    if r.field == "_id":
        return {"_id": {"$in": list(r.ids)}}
    pred = {"t": r.type, "i": {"$in": list(r.ids)}} if r.type else {"i": {"$in": list(r.ids)}}
    return {r.field: {"$elemMatch": pred}}


def compile_query(criteria: list, now: datetime | None = None) -> dict:
    """AND of compiled criteria; a list inside `criteria` is an OR of alternatives."""
    now = now or clock()
    return and_([_one(c, now) for c in criteria])


def _one(c, now: datetime) -> dict:
    if isinstance(c, list):
        return _or([_one(x, now) for x in c])
    if isinstance(c, IdIn):
        return compile_resolved(c)
    if isinstance(c, Criterion):
        return compile_criterion(c, now)
    if isinstance(c, dict):
        return c  # an already compiled fragment (compartment membership)
    if isinstance(c, (Chain, Has)):
        raise ValueError("chains and _has must be resolved before compiling")
    raise TypeError(type(c))


__all__ = ["and_", "compile_criterion", "compile_query", "compile_resolved", "entry_pred", "ucum"]
