"""Running compiled searches against the store: chains, _has, keyset pages, includes.

Chains and `_has` are answered first with the same compiler: their inner query runs
on its own collection as an indexed id projection, and the outer query then matches
those ids (`IdIn`). Every other condition is part of the one MongoDB filter per
collection; nothing is filtered in Python.

Paging is by keyset over the sort keys plus `_id` (and the type's position in a
multi-type search): a cursor carries the keys of the page's last (or first) entry,
so pages neither repeat nor skip resources while others are written.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import pathlib
from dataclasses import dataclass
from datetime import datetime

import orjson

from resources import registry

from ..errors import FHIRError
from . import compile as comp
from .index import entries
from .params import SearchParam, lookup, params_of
from .query import Chain, Criterion, Has, IdIn, is_terminology, resolve_terminology

INCLUDE_LIMIT = 1000  # most resources one page may add through _include/_revinclude
ITERATE_DEPTH = 4


@functools.cache
def compartments() -> dict[str, dict[str, list[str]]]:
    path = pathlib.Path(registry.__file__).with_name("compartments.json")
    return json.loads(path.read_text(encoding="utf-8"))


def compartment_filter(comp_type: str, comp_id: str, rtype: str) -> dict | None:
    """Membership of `rtype` resources in the compartment comp_type/comp_id (None: never members)."""
    codes = compartments().get(comp_type, {}).get(rtype)
    if not codes:
        return None
    clauses = []
    for code in codes:
        if code == "{def}":
            clauses.append({"_id": comp_id} if rtype == comp_type else None)
            continue
        p = lookup(rtype, code)
        if p is not None:
            clauses.append({p.field: {"$elemMatch": {"t": comp_type, "i": comp_id}}})
    clauses = [c for c in clauses if c]
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


# -- resolving chains and _has ------------------------------------------------------------------
def resolve(reader, rtype: str, crit, now: datetime | None = None):
    """The criterion with every Chain/Has replaced by the ids its inner query matched."""
    now = now or comp.clock()
    if isinstance(crit, list):
        return [resolve(reader, rtype, c, now) for c in crit]
    if isinstance(crit, tuple) and crit and crit[0] == "per-type":
        return resolve(reader, rtype, crit[1][rtype], now)
    if isinstance(crit, Chain):
        inner = resolve(reader, crit.target, crit.inner, now)
        ids = reader.ids(crit.target, comp.compile_query([inner], now))
        return IdIn(crit.param.field, crit.target, ids)
    if is_terminology(crit):
        return resolve_terminology(reader, crit)  # :in :not-in :below :above -> codes
    if isinstance(crit, Has):
        inner = resolve(reader, crit.source, crit.inner, now)
        refs = reader.index_values(crit.source, comp.compile_query([inner], now), crit.ref.code)
        ids = sorted({e["i"] for e in refs if e.get("t") == rtype})
        return IdIn("_id", None, ids)
    return crit


def filter_for(reader, rtype: str, criteria: list, extra: list[dict] = (), now: datetime | None = None) -> dict:
    """The whole filter of a search; every `ap` in it (chains too) is measured from one `now`."""
    now = now or comp.clock()
    resolved = [resolve(reader, rtype, c, now) for c in criteria]
    return comp.and_([comp.compile_query(resolved, now), *extra])


# -- sorting and cursors -----------------------------------------------------------------------
def sort_fields(sort: list[tuple[SearchParam | str, int]]) -> list[tuple[str, int]]:
    out = []
    for p, direction in sort:
        code = p if isinstance(p, str) else p.code
        if code == "_id":
            out.append(("_id", direction))
        elif code == "_lastUpdated":
            out.append(("ts", direction))
        else:
            out.append((f"sk.{code}.{'a' if direction > 0 else 'd'}", direction))
    if not any(f == "_id" for f, _ in out):
        out.append(("_id", 1))
    return out


def _doc_value(doc: dict, field: str):
    node = doc
    for k in field.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(k)
    return node


def _enc(v):
    return {"$d": v.isoformat()} if isinstance(v, datetime) else v


def _dec(v):
    if isinstance(v, dict) and set(v) == {"$d"}:
        return datetime.fromisoformat(v["$d"])
    if isinstance(v, (str, int, float)) or v is None:
        return v
    raise ValueError("cursor value")


def encode_cursor(direction: str, type_index: int, keys: list, fingerprint: str) -> str:
    raw = orjson.dumps({"d": direction, "t": type_index, "k": [_enc(k) for k in keys], "f": fingerprint})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, fingerprint: str) -> tuple[str, int, list]:
    try:
        c = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if c["f"] != fingerprint or c["d"] not in ("n", "p") or not isinstance(c["t"], int):
            raise ValueError("cursor of another query")
        return c["d"], c["t"], [_dec(k) for k in c["k"]]
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError, KeyError):
        raise FHIRError(400, "invalid", "bad-param", name="_cursor", value=token[:60]) from None


def _beyond(fields: list[tuple[str, int]], keys: list, inclusive: bool = False) -> dict:
    """Documents after `keys` in the order `fields` (nulls sort first ascending, as in
    MongoDB); with `inclusive`, also those whose keys are all equal to `keys`."""
    ors = []
    for i, (field, direction) in enumerate(fields):
        eqs = [{f: k} for (f, _), k in zip(fields[:i], keys[:i])]
        k = keys[i]
        if direction > 0:
            step = {field: {"$ne": None}} if k is None else {field: {"$gt": k}}
        else:
            if k is None:
                continue  # nothing sorts after null in descending order
            step = {"$or": [{field: {"$lt": k}}, {field: None}]}
        ors.append(comp.and_([*eqs, step]))
    if inclusive:
        ors.append(comp.and_([{f: k} for (f, _), k in zip(fields, keys)]))
    if not ors:
        return {"_id": {"$in": []}}
    return ors[0] if len(ors) == 1 else {"$or": ors}


class _Key:
    """A sort position: field values in MongoDB order (null lowest), then the type's index."""

    __slots__ = ("vals", "dirs", "ti")

    def __init__(self, vals: tuple, dirs: tuple, ti: int):
        self.vals, self.dirs, self.ti = vals, dirs, ti

    def __lt__(self, other: "_Key") -> bool:
        for a, b, d in zip(self.vals, other.vals, self.dirs):
            if a == b:
                continue
            if a is None or b is None:
                less = a is None
            else:
                less = a < b
            return less if d > 0 else not less
        return self.ti < other.ti if self.dirs[-1] > 0 else self.ti > other.ti


@dataclass
class Page:
    matches: list  # [(type_index, Version)]
    has_next: bool
    has_prev: bool
    first_keys: tuple | None
    last_keys: tuple | None


def page(reader, types: list[str], filters: list[dict | None], fields: list[tuple[str, int]], count: int, cursor) -> Page:
    """One keyset page over one or several types, merged in one order.

    The order is the sort fields (ending with _id), then the type's position in
    `types`. Each type is asked for at most count + 1 resources after the cursor and
    the lists are merged, so a page costs one indexed query per type.
    """
    direction, t0, keys = cursor if cursor else ("n", 0, None)
    forward = direction == "n"
    order = fields if forward else [(f, -d) for f, d in fields]
    dirs = tuple(d for _, d in order)
    got: list = []
    for ti, rtype in enumerate(types):
        flt = filters[ti]
        if flt is None:
            continue
        if keys is not None:
            # Later types (in this direction) may sit at exactly the cursor's keys.
            later = ti > t0 if forward else ti < t0
            flt = comp.and_([flt, _beyond(order, keys, inclusive=later)])
        for v in reader.search(rtype, flt, order, count + 1):
            got.append((_Key(tuple(_doc_value(v.doc, f) for f, _ in order), dirs, ti), ti, v))
    got.sort(key=lambda item: item[0])
    more = len(got) > count
    got = [(ti, v) for _, ti, v in got[:count]]
    if not forward:
        got.reverse()
    key = lambda item: tuple(_doc_value(item[1].doc, f) for f, _ in fields)  # noqa: E731
    return Page(
        got,
        has_next=more if forward else cursor is not None,
        has_prev=(cursor is not None) if forward else more,
        first_keys=(got[0][0], key(got[0])) if got else None,
        last_keys=(got[-1][0], key(got[-1])) if got else None,
    )


# -- includes --------------------------------------------------------------------------------
def _reference_params(rtype: str, code: str) -> list[SearchParam]:
    if code == "*":
        return [p for p in params_of(rtype).values() if p.type == "reference"]
    p = lookup(rtype, code)
    return [p] if p is not None else []


def includes(reader, found: list, specs: list, revspecs: list, base: str | None, restrict=None) -> list:
    """Resources that `found` refers to (_include) or that refer to it (_revinclude)."""
    have = {v.ref for v in found}
    out: list = []
    frontier = list(found)
    for depth in range(ITERATE_DEPTH + 1):
        wanted: dict[str, set[str]] = {}
        for v in frontier:
            res = None
            for src, code, target, iterate in specs:
                if depth > 0 and not iterate:
                    continue
                if src not in ("*", v.type):
                    continue
                if res is None:
                    res = v.resource()
                for p in _reference_params(v.type, code):
                    for e in entries(res, "reference", p.paths, base):
                        if "t" in e and (target is None or e["t"] == target) and registry.is_supported(e["t"]):
                            wanted.setdefault(e["t"], set()).add(e["i"])
        new: list = []
        for rtype, ids in sorted(wanted.items()):
            ids = sorted(i for i in ids if f"{rtype}/{i}" not in have)
            if ids:
                flt = comp.and_([{"_id": {"$in": ids}}, *(restrict(rtype) if restrict else [])])
                new.extend(reader.search(rtype, flt, [("_id", 1)], INCLUDE_LIMIT))
        by_type: dict[str, list[str]] = {}
        for v in frontier:
            by_type.setdefault(v.type, []).append(v.id)
        for src, code, target, iterate in revspecs:
            if depth > 0 and not iterate:
                continue
            p = lookup(src, code)
            for rtype, ids in by_type.items():
                if p is None or (p.targets and rtype not in p.targets) or (target and target != rtype):
                    continue
                flt = comp.and_([{p.field: {"$elemMatch": {"t": rtype, "i": {"$in": ids}}}}, *(restrict(src) if restrict else [])])
                new.extend(reader.search(src, flt, [("_id", 1)], INCLUDE_LIMIT))
        frontier = []
        for v in new:
            if v.ref not in have and len(out) < INCLUDE_LIMIT:
                have.add(v.ref)
                out.append(v)
                frontier.append(v)
        if not frontier:
            break
    return out


__all__ = ["Criterion", "compartment_filter", "filter_for", "includes", "page", "resolve", "sort_fields"]
