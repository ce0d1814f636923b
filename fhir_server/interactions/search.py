"""search (R4 http.html 3.1.0.11, search.html): type, compartment and system level, and $everything.

All of them come down to one executor: a list of resource types, one compiled MongoDB
filter per type, a sort, and a keyset page; then _include/_revinclude and the
searchset Bundle with self/first/next/previous links.
"""

from __future__ import annotations

import hashlib
import uuid
from urllib.parse import urlencode

import orjson

from resources import registry

from .. import fhirtime, negotiation, summary
from ..errors import FHIRError
from ..search import definitions, execute
from ..search.query import Parsed, bad, parse
from .base import Ctx, Req, Resp

CURSOR = "_cursor"


def _strict(req: Req) -> bool:
    return negotiation.prefer(req.header("prefer")).get("handling") == "strict"


def _check_unknown(req: Req, parsed: Parsed) -> None:
    if parsed.unknown and _strict(req):
        raise FHIRError(400, "not-supported", "unknown-param", name=", ".join(parsed.unknown)[:200])


def _count(ctx: Ctx, parsed: Parsed) -> int:
    if parsed.count is None:
        return ctx.settings.default_page_size
    return min(parsed.count, ctx.settings.max_page_size)


def _fingerprint(types: list[str], fields: list) -> str:
    return hashlib.sha256(orjson.dumps([types, fields])).hexdigest()[:12]


def _url(ctx: Ctx, path: str, params) -> str:
    q = urlencode(list(params))
    return f"{ctx.base}/{path}" + (f"?{q}" if q else "")


# -- entry points ------------------------------------------------------------------------------
def search_type(ctx: Ctx, req: Req, rtype: str, params: list[tuple[str, str]]) -> Resp:
    parsed = parse(rtype, params, ctx.base)
    _check_unknown(req, parsed)
    return _run(ctx, req, rtype, [rtype], [parsed.criteria], parsed, params, path=rtype)


def search_compartment(ctx: Ctx, req: Req, comp_type: str, comp_id: str, rtype: str, params: list[tuple[str, str]]) -> Resp:
    """GET [base]/Patient/123/Observation?... : a search restricted to the compartment."""
    if comp_type not in execute.compartments():
        raise FHIRError(404, "not-found", "unknown-path", path=f"/{comp_type}/{comp_id}/{rtype}")
    parsed = parse(rtype, params, ctx.base)
    _check_unknown(req, parsed)
    member = execute.compartment_filter(comp_type, comp_id, rtype)
    path = f"{comp_type}/{comp_id}/{rtype}"
    if member is None:
        return _run(ctx, req, rtype, [rtype], [None], parsed, params, path=path)
    return _run(ctx, req, rtype, [rtype], [[*parsed.criteria, member]], parsed, params, path=path)


def search_system(ctx: Ctx, req: Req, params: list[tuple[str, str]]) -> Resp:
    """GET [base]?_type=A,B&...: parameters common to every listed type."""
    raw_types = [t for k, v in params if k == "_type" for t in v.split(",")]
    if not raw_types:
        raise FHIRError(400, "invalid", "system-search-type")
    types = []
    for t in raw_types:
        if not registry.is_supported(t):
            raise bad("_type", t)
        if t not in types:
            types.append(t)
    if definitions.TYPE in types:
        definitions.ensure_loaded(ctx.store)
    parsed = parse(None, params, ctx.base, types)
    _check_unknown(req, parsed)
    crits = [[c[1][t] if isinstance(c, tuple) else c for c in parsed.criteria] for t in types]
    kept_types = [("_type", ",".join(types))]
    return _run(ctx, req, None, types, crits, parsed, params, path="", extra_kept=kept_types)


def everything(ctx: Ctx, req: Req, pid: str, params: list[tuple[str, str]]) -> Resp:
    """Patient/{id}/$everything (R4 patient-operation-everything): the patient and its compartment."""
    reader = ctx.reader
    cur = reader.read("Patient", pid)
    if cur is None or cur.deleted:
        raise FHIRError(404, "not-found", "not-found", ref=f"Patient/{pid}")
    wanted = None
    since = None
    count = None
    kept = []
    for k, v in params:
        if k == "_type":
            wanted = [t for t in v.split(",") if t]
            for t in wanted:
                if not registry.is_supported(t):
                    raise bad("_type", t)
            kept.append((k, v))
        elif k == "_since":
            rng = fhirtime.parse_range(v)
            if rng is None:
                raise bad("_since", v)
            since = rng[0]
            kept.append((k, v))
        elif k == "_count":
            count = v
            kept.append((k, v))
    members = execute.compartments()["Patient"]
    types = ["Patient", *sorted(t for t in members if t != "Patient" and registry.is_supported(t))]
    if wanted is not None:
        types = [t for t in types if t in wanted]
    else:
        # The audit trail records every $everything call itself: it comes only when asked for by _type.
        types = [t for t in types if t != "AuditEvent"]
    crits = []
    for t in types:
        member = {"_id": pid} if t == "Patient" else execute.compartment_filter("Patient", pid, t)
        c = [member] if member else None
        if c is not None and since is not None:
            c.append({"ts": {"$gte": since}})
        crits.append(c)
    parsed = Parsed()
    if count is not None:
        parsed.count = int(count) if count.isdigit() else None
        if parsed.count is None:
            raise bad("_count", count)
    parsed.kept = kept
    # "... and any resource referenced from those" (patient-operation-everything): each
    # page brings the resources its entries refer to, as includes.
    parsed.includes = [("*", "*", None, False)]

    def own_only(rtype: str) -> list[dict]:
        # A referenced resource of a compartment type (another Patient, their Observation)
        # comes only when it is in this patient's compartment: no other patient's data.
        if rtype not in members:
            return []
        member = {"_id": pid} if rtype == "Patient" else execute.compartment_filter("Patient", pid, rtype)
        return [member or {"_id": {"$in": []}}]

    return _run(ctx, req, None, types, crits, parsed, params, path=f"Patient/{pid}/$everything", include_restrict=own_only)


# -- the executor -------------------------------------------------------------------------------
def _run(ctx, req, rtype, types, crits, parsed: Parsed, params, path: str, extra_kept=(), include_restrict=None) -> Resp:
    reader = ctx.reader
    fields = execute.sort_fields(parsed.sort)
    fp = _fingerprint(types, fields)
    raw_cursor = next((v for k, v in params if k == CURSOR), None)
    cursor = execute.decode_cursor(raw_cursor, fp) if raw_cursor else None
    if cursor and not 0 <= cursor[1] < len(types):
        raise bad(CURSOR, raw_cursor)
    filters = [None if c is None else execute.filter_for(reader, t, c) for t, c in zip(types, crits)]
    count = _count(ctx, parsed)
    kept = [*extra_kept, *parsed.kept]
    total = None
    if parsed.total != "none" or parsed.summary == "count":
        total = sum(reader.count(t, f) for t, f in zip(types, filters) if f is not None)
    links = [{"relation": "self", "url": _url(ctx, path, [*kept, *([(CURSOR, raw_cursor)] if raw_cursor else [])])}]
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": fhirtime.format_instant(fhirtime.now())},
        "type": "searchset",
    }
    if total is not None:
        bundle["total"] = total
    if parsed.summary == "count" or count == 0:
        bundle["link"] = links
        return Resp(200, body=bundle)
    pg = execute.page(reader, types, filters, fields, count, cursor)
    links.append({"relation": "first", "url": _url(ctx, path, kept)})
    if pg.has_prev and pg.first_keys:
        ti, keys = pg.first_keys
        links.append({"relation": "previous", "url": _url(ctx, path, [*kept, (CURSOR, execute.encode_cursor("p", ti, list(keys), fp))])})
    if pg.has_next and pg.last_keys:
        ti, keys = pg.last_keys
        links.append({"relation": "next", "url": _url(ctx, path, [*kept, (CURSOR, execute.encode_cursor("n", ti, list(keys), fp))])})
    bundle["link"] = links
    found = [v for _, v in pg.matches]
    extra = []
    if parsed.includes or parsed.revincludes:
        extra = execute.includes(reader, found, parsed.includes, parsed.revincludes, ctx.base, include_restrict)
    entries = [_entry(ctx, v, "match", parsed) for v in found] + [_entry(ctx, v, "include", parsed) for v in extra]
    if entries:
        bundle["entry"] = entries
    return Resp(200, body=bundle, touched=found + extra)


def _entry(ctx: Ctx, v, mode: str, parsed: Parsed) -> dict:
    if parsed.summary not in (None, "false") or parsed.elements:
        resource = summary.apply(v.resource(), parsed.summary if parsed.summary != "false" else None, parsed.elements)
    else:
        resource = orjson.Fragment(v.raw)
    return {"fullUrl": f"{ctx.base}/{v.type}/{v.id}", "resource": resource, "search": {"mode": mode}}


__all__ = ["everything", "search_compartment", "search_system", "search_type"]
