"""batch and transaction (R4 http.html 3.1.0.11, bundle.html 3.3.1.5).

batch: every entry is routed on its own, exactly like the same HTTP call, and reports
its own outcome.

transaction: all entries form one storage unit - all succeed or nothing is visible.
Identities are resolved first (new ids for POST, `ifNoneExist` and conditional URLs
matched), every `urn:uuid:` fullUrl and conditional reference is rewritten to a literal
reference, each resource is validated, and then the entries run in the order the spec
fixes: DELETE, POST, PUT/PATCH, GET/HEAD. The response lists them in request order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

from .. import fhirtime
from ..errors import FHIRError
from . import write
from .base import Ctx, Req, Resp, parse_etag_version, require_id, require_type
from .references import resolve_references

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


def status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _prefer_return(req: Req) -> str:
    prefer = (req.header("prefer") or "").replace(" ", "")
    for part in prefer.split(";") + prefer.split(","):
        if part.startswith("return="):
            return part[len("return=") :]
    return "minimal"


def process(ctx: Ctx, req: Req) -> Resp:
    bundle = req.body
    if bundle is None:
        raise FHIRError(400, "required", "body-required")
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        got = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        raise FHIRError(400, "invalid", "bundle-type", expression="Bundle", value=str(got)[:60])
    btype = bundle.get("type")
    if btype not in ("batch", "transaction"):
        raise FHIRError(400, "invalid", "bundle-type", expression="Bundle.type", value=str(btype)[:60])
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise FHIRError(400, "structure", "expected-array", expression="Bundle.entry")
    if len(entries) > ctx.settings.max_bundle_entries:
        raise FHIRError(413, "too-costly", "bundle-too-many", count=len(entries), limit=ctx.settings.max_bundle_entries)
    mode = _prefer_return(req)
    if btype == "batch":
        return _batch(ctx, req, entries, mode)
    return _transaction(ctx, entries, mode)


# -- parsing entries ---------------------------------------------------------------
def _entry_req(ctx: Ctx, entry, index: int) -> Req:
    where = f"Bundle.entry[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
        raise FHIRError(400, "required", "entry-request", expression=f"{where}.request")
    request = entry["request"]
    method, url = request.get("method"), request.get("url")
    if method not in METHODS:
        raise FHIRError(400, "invalid", "entry-method", expression=f"{where}.request.method", value=str(method)[:20])
    if not isinstance(url, str) or not url:
        raise FHIRError(400, "required", "entry-request", expression=f"{where}.request.url")
    if url.startswith(ctx.base + "/"):
        url = url[len(ctx.base) + 1 :]
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith("/"):
        raise FHIRError(400, "invalid", "entry-url", expression=f"{where}.request.url", value=url[:200])
    headers = {}
    for field, header in (("ifMatch", "if-match"), ("ifNoneMatch", "if-none-match"), ("ifNoneExist", "if-none-exist"), ("ifModifiedSince", "if-modified-since")):
        if isinstance(request.get(field), str):
            headers[header] = request[field]
    body = entry.get("resource")
    if method in ("POST", "PUT") and body is None:
        raise FHIRError(400, "required", "entry-resource", expression=f"{where}.resource", method=method)
    return Req(method, parts.path, parts.query, parse_qsl(parts.query, keep_blank_values=True), headers, body)


def _response_entry(ctx: Ctx, resp: Resp, mode: str, method: str) -> dict:
    out: dict = {}
    v = resp.version
    response: dict = {"status": status_line(resp.status)}
    if v is not None and not v.deleted:
        out["fullUrl"] = f"{ctx.base}/{v.type}/{v.id}"
        if method in ("POST", "PUT", "PATCH"):
            response["location"] = f"{v.type}/{v.id}/_history/{v.version}"
    if v is not None:
        response["etag"] = v.etag
        response["lastModified"] = fhirtime.format_instant(v.last_updated)
    if method in ("GET", "HEAD"):
        if method == "GET":
            if resp.body is not None:
                out["resource"] = resp.body
            elif v is not None and not v.deleted and resp.status == 200:
                out["resource"] = v.resource()
    elif mode == "representation" and v is not None and not v.deleted:
        out["resource"] = v.resource()
    elif mode == "OperationOutcome" and (resp.outcome or resp.body):
        response["outcome"] = resp.outcome or resp.body
    out["response"] = response
    return out


def _error_entry(ctx: Ctx, err: FHIRError) -> dict:
    return {"response": {"status": status_line(err.status), "outcome": err.outcome(ctx.lang)}}


def _result_bundle(kind: str, entries: list[dict]) -> dict:
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": fhirtime.format_instant(fhirtime.now())},
        "type": kind,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


# -- batch -------------------------------------------------------------------------
def _batch(ctx: Ctx, req: Req, entries: list, mode: str) -> Resp:
    from ..router import route  # the router imports this module

    out = []
    touched = []
    for i, entry in enumerate(entries):
        try:
            sub = _entry_req(ctx, entry, i)
            sub.resolve_refs = True
            resp = route(ctx, sub)
            out.append(_response_entry(ctx, resp, mode, sub.method))
            touched += _touched(resp)
        except FHIRError as err:
            out.append(_error_entry(ctx, err))
    return Resp(200, body=_result_bundle("batch-response", out), touched=touched)


def _touched(resp: Resp) -> list:
    return list(resp.touched) or ([resp.version] if resp.version is not None else [])


# -- transaction -------------------------------------------------------------------
@dataclass
class _Op:
    index: int
    req: Req
    rtype: str | None = None
    rid: str | None = None
    criteria: str | None = None
    resource: dict | None = None
    full_url: str | None = None


def _parse_op(ctx: Ctx, entry, index: int) -> _Op:
    req = _entry_req(ctx, entry, index)
    op = _Op(index, req)
    full_url = entry.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise FHIRError(400, "structure", "expected-kind", expression=f"Bundle.entry[{index}].fullUrl", kind="string", type="uri", got="value")
    op.full_url = full_url
    if req.method in ("GET", "HEAD"):
        return op
    parts = [p for p in req.path.split("/") if p]
    if not parts:
        raise FHIRError(400, "invalid", "entry-url", expression=f"Bundle.entry[{index}].request.url", value=req.path)
    op.rtype = require_type(parts[0])
    if len(parts) > 2 or (len(parts) == 1 and req.method == "POST" and req.query) or (len(parts) == 2 and req.method == "POST"):
        # POST goes to the type (Patient), never to an instance (Patient/1): over HTTP
        # that is refused, so here it must not silently create under a new id either.
        raise FHIRError(400, "invalid", "entry-url", expression=f"Bundle.entry[{index}].request.url", value=req.path[:200])
    if len(parts) == 2:
        op.rid = require_id(parts[1])
    if len(parts) == 1 and req.method != "POST":
        if not req.query:
            raise FHIRError(400, "invalid", "entry-url", expression=f"Bundle.entry[{index}].request.url", value=req.path)
        op.criteria = req.query
    if req.method in ("POST", "PUT"):
        if not isinstance(req.body, dict):
            raise FHIRError(400, "structure", "body-not-object", expression=f"Bundle.entry[{index}].resource")
        if req.body.get("resourceType") != op.rtype:
            raise FHIRError(
                400, "invalid", "type-mismatch", expression=f"Bundle.entry[{index}].resource.resourceType",
                body=str(req.body.get("resourceType"))[:60], url=op.rtype,
            )
    return op


def _transaction(ctx: Ctx, entries: list, mode: str) -> Resp:
    from ..router import patch_operations, route

    ops = [_at(_Op(i, None), lambda: _parse_op(ctx, e, i)) for i, e in enumerate(entries)]
    seen_urls: set[str] = set()
    for op in ops:
        if op.full_url:
            if op.full_url in seen_urls:
                raise FHIRError(400, "invalid", "duplicate-fullurl", expression=f"Bundle.entry[{op.index}].fullUrl", value=op.full_url[:200])
            seen_urls.add(op.full_url)

    def run(unit) -> list[tuple[_Op, Resp]]:
        unit = ctx.guard(unit)
        tctx = replace(ctx, unit=unit)
        idmap: dict[str, str] = {}
        existing: dict[int, object] = {}
        # 1. identities
        for op in ops:
            m = op.req.method
            if m == "POST":
                ine = op.req.header("if-none-exist")
                found = _at(op, lambda: write.match(unit, op.rtype, ine)) if ine else None
                if found is not None:
                    existing[op.index] = found
                    op.rid = found.id
                else:
                    op.rid = write.new_id()
            elif op.criteria is not None:
                found = _at(op, lambda: write.match(unit, op.rtype, op.criteria))
                if found is not None:
                    op.rid = found.id
                    body_id = op.req.body.get("id") if m == "PUT" else None
                    if body_id is not None and body_id != found.id:
                        # As conditional update over HTTP: the body may not name another resource.
                        raise FHIRError(
                            400, "invalid", "conditional-id-mismatch", expression=f"Bundle.entry[{op.index}].resource.id",
                            body=str(body_id)[:70], match=found.id,
                        )
                elif m == "PUT":
                    op.rid = op.req.body.get("id") or write.new_id()
            if op.full_url and op.rid and m in ("POST", "PUT"):
                idmap[op.full_url] = f"{op.rtype}/{op.rid}"
        targets: set[str] = set()
        for op in ops:
            if op.req.method in ("POST", "PUT", "PATCH", "DELETE") and op.rid and op.index not in existing:
                key = f"{op.rtype}/{op.rid}"
                if key in targets:
                    raise FHIRError(400, "invalid", "duplicate-target", expression=f"Bundle.entry[{op.index}]", ref=key)
                targets.add(key)
        # 2. references and validation
        for op in ops:
            if op.req.method in ("POST", "PUT") and op.index not in existing:
                body = _at(op, lambda: resolve_references(unit, op.req.body, idmap))
                if op.req.method == "PUT":
                    if op.criteria is None and body.get("id") is None:
                        raise FHIRError(400, "required", "id-missing", expression=f"Bundle.entry[{op.index}].resource.id")
                    body["id"] = op.rid if op.criteria is not None else body["id"]
                op.resource = _at(
                    op, lambda: write.prepare(op.rtype, body, for_create=op.req.method == "POST", url_id=op.rid if op.req.method == "PUT" else None)
                )
        # 3. execution in the spec's order
        results: dict[int, Resp] = {}
        for op in sorted(ops, key=lambda o: (ORDER[o.req.method], o.index)):
            results[op.index] = _at(op, lambda: _execute(tctx, unit, op, existing, route, patch_operations))
        return [(op, results[op.index]) for op in ops]

    done = ctx.store.atomic(run)
    out = [_response_entry(ctx, resp, mode, op.req.method) for op, resp in done]
    return Resp(200, body=_result_bundle("transaction-response", out), touched=[v for _, resp in done for v in _touched(resp)])


def _execute(tctx: Ctx, unit, op: _Op, existing: dict, route, patch_operations) -> Resp:
    m = op.req.method
    if m == "POST":
        if op.index in existing:
            return Resp(200, existing[op.index], is_write=True)
        return write.create(unit, tctx, op.rtype, op.resource, rid=op.rid)
    if_match = parse_etag_version(op.req.header("if-match")) if op.req.header("if-match") else None
    if m == "PUT":
        return write.update(unit, tctx, op.rtype, op.rid, op.resource, if_match)
    if m == "DELETE":
        if op.rid is None:
            return write.conditional_delete(unit, tctx, op.rtype, op.criteria)
        return write.delete(unit, tctx, op.rtype, op.rid, if_match)
    if m == "PATCH":
        if op.rid is None:
            raise FHIRError(404, "not-found", "not-found", ref=f"{op.rtype}?{op.criteria}"[:200])
        return write.patch(unit, tctx, op.rtype, op.rid, patch_operations(op.req), if_match)
    return route(tctx, op.req)


def _at(op: _Op, fn):
    """Run fn; a failure is reported against the entry it belongs to."""
    try:
        return fn()
    except FHIRError as err:
        if any((i.expression or "").startswith("Bundle.entry[") for i in err.issues):
            raise
        issues = write.entry_issue(op.index, err)
        raise FHIRError(err.status, issues=issues, headers=err.headers) from None

