"""Maps a request (method + path below the FHIR base) to its interaction handler.

The route table below is also what the CapabilityStatement is generated from, so
what /metadata claims is exactly what is routed.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlencode

from . import jsonio
from .errors import FHIRError
from .interactions import audit_ops, break_glass, capabilities, history, oms, read, search, terminology, transaction, validate, write
from .interactions.base import Ctx, Req, Resp, parse_etag_version, require_id, require_type
from .interactions.references import resolve_references
from .search import definitions

# Interactions routed for every supported resource type, and at system level (R4 restful-interaction codes).
TYPE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type")
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system", "search-system")
TYPE_OPERATIONS = (("validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate"),)
# Parameters that shape the response, never part of conditional criteria.
RESPONSE_PARAMS = frozenset(("_format", "_pretty", "_summary", "_elements"))


def _not_allowed(req: Req) -> FHIRError:
    return FHIRError(405, "not-supported", "method-not-allowed", method=req.method, path="/" + req.path)


def _if_match(req: Req) -> int | None:
    raw = req.header("if-match")
    return parse_etag_version(raw) if raw is not None else None


def _criteria(req: Req) -> str:
    return urlencode([(k, v) for k, v in req.params if k not in RESPONSE_PARAMS])


def _atomic(ctx: Ctx, fn):
    return fn(ctx.unit) if ctx.unit is not None else ctx.store.atomic(lambda u: fn(ctx.guard(u)))


def _body_resource(ctx: Ctx, req: Req, rtype: str, **kw) -> dict:
    body = req.body
    if req.resolve_refs and isinstance(body, dict):
        body = resolve_references(ctx.reader, body, {})
    return write.prepare(rtype, body, **kw)


def patch_operations(req: Req) -> list:
    """JSON Patch operations: the body itself, or (in a Bundle) a Binary carrying them."""
    body = req.body
    if isinstance(body, dict) and body.get("resourceType") == "Binary":
        if body.get("contentType") != "application/json-patch+json":
            raise FHIRError(415, "not-supported", "patch-media-type", value=str(body.get("contentType"))[:80])
        try:
            body = jsonio.loads(base64.b64decode(body.get("data", ""), validate=True))
        except (binascii.Error, ValueError):
            raise FHIRError(400, "structure", "patch-not-array") from None
    return write.check_patch_document(body)


def route(ctx: Ctx, req: Req) -> Resp:
    parts = [p for p in req.path.split("/") if p]
    method = "GET" if req.method == "HEAD" else req.method
    n = len(parts)
    if n == 0:
        if method == "POST":
            return transaction.process(ctx, req)
        if method == "GET":
            return search.search_system(ctx, req, req.params)
        raise _not_allowed(req)
    if n == 1 and parts[0] == "_search":
        if method != "POST":
            raise _not_allowed(req)
        return search.search_system(ctx, req, req.params)
    head = parts[0]
    if n == 1 and head == "metadata":
        if method != "GET":
            raise _not_allowed(req)
        return capabilities.capability_statement(ctx, TYPE_INTERACTIONS, SYSTEM_INTERACTIONS, TYPE_OPERATIONS)
    if n == 1 and head == "_history":
        if method != "GET":
            raise _not_allowed(req)
        return history.history(ctx, req)
    if head.startswith("$") or head.startswith("_"):
        raise FHIRError(404, "not-found", "unknown-path", path="/" + req.path)
    rtype = require_type(head)
    if rtype == definitions.TYPE:
        definitions.ensure_loaded(ctx.store)
    if n == 1:
        return _type_level(ctx, req, method, rtype)
    if n in (2, 3) and terminology.is_operation(rtype, parts[-1]):
        # CodeSystem/$lookup, ValueSet/[id]/$expand, ... (interactions/terminology.py)
        return terminology.run(ctx, req, rtype, parts[-1], require_id(parts[1]) if n == 3 else None)
    second = parts[1]
    if n == 2 and second == "_history":
        if method != "GET":
            raise _not_allowed(req)
        ctx.require(rtype, "r")
        return history.history(ctx, req, rtype)
    if n == 2 and second == "_search":
        if method != "POST":
            raise _not_allowed(req)
        ctx.require(rtype, "s")
        return search.search_type(ctx, req, rtype, req.params)
    if n == 2 and rtype == "AuditEvent" and second == "$verify-chain":
        if method not in ("POST", "GET"):
            raise _not_allowed(req)
        return audit_ops.verify_chain(ctx)
    if n == 2 and second == "$validate":
        if method != "POST":
            raise _not_allowed(req)
        return validate.validate(ctx, req, rtype)
    rid = require_id(second)
    if n == 2:
        return _instance_level(ctx, req, method, rtype, rid)
    third = parts[2]
    if n == 3 and third == "_history":
        if method != "GET":
            raise _not_allowed(req)
        ctx.require(rtype, "r")
        return history.history(ctx, req, rtype, rid)
    if n == 3 and rtype == "Patient" and third == "$break-glass":
        if method != "POST":
            raise _not_allowed(req)
        return break_glass.break_glass(ctx, req, rid)
    if n == 3 and rtype == "Patient" and third == "$bind-oms-policy":
        if method != "POST":
            raise _not_allowed(req)
        return oms.bind_oms_policy(ctx, req, rid)
    if n == 3 and rtype == "Patient" and third == "$everything":
        if method != "GET":
            raise _not_allowed(req)
        ctx.require("Patient", "r")
        return search.everything(ctx, req, rid, req.params)
    if n in (3, 4) and third[:1].isupper() and (n == 3 or parts[3] == "_search"):
        # Compartment search: GET [base]/Patient/123/Observation?... (or POST .../_search).
        if method != ("GET" if n == 3 else "POST"):
            raise _not_allowed(req)
        ctx.require(require_type(third), "s")
        return search.search_compartment(ctx, req, rtype, rid, require_type(third), req.params)
    if n == 3 and third == "$validate":
        if method != "POST":
            raise _not_allowed(req)
        return validate.validate(ctx, req, rtype, rid)
    if n == 4 and third == "_history":
        if method != "GET":
            raise _not_allowed(req)
        ctx.require(rtype, "r")
        return read.vread(ctx, req, rtype, rid, parts[3])
    raise FHIRError(404, "not-found", "unknown-path", path="/" + req.path)


def _type_level(ctx: Ctx, req: Req, method: str, rtype: str) -> Resp:
    if method == "POST":
        resource = _body_resource(ctx, req, rtype, for_create=True)
        ine = req.header("if-none-exist")
        return _atomic(ctx, lambda u: write.create(u, ctx, rtype, resource, if_none_exist=ine))
    if method == "GET":
        ctx.require(rtype, "s")
        return search.search_type(ctx, req, rtype, req.params)
    criteria = _criteria(req)
    if method == "PUT":
        if not criteria:
            raise _not_allowed(req)
        body_id = req.body.get("id") if isinstance(req.body, dict) else None
        resource = _body_resource(ctx, req, rtype, url_id=body_id) if body_id else _body_resource(ctx, req, rtype)
        if_match = _if_match(req)
        return _atomic(ctx, lambda u: write.conditional_update(u, ctx, rtype, criteria, resource, if_match))
    if method == "DELETE":
        if not criteria:
            raise _not_allowed(req)
        return _atomic(ctx, lambda u: write.conditional_delete(u, ctx, rtype, criteria))
    if method == "PATCH":
        if not criteria:
            raise _not_allowed(req)
        ops = patch_operations(req)
        if_match = _if_match(req)
        return _atomic(ctx, lambda u: write.conditional_patch(u, ctx, rtype, criteria, ops, if_match))
    raise _not_allowed(req)


def _instance_level(ctx: Ctx, req: Req, method: str, rtype: str, rid: str) -> Resp:
    if method == "GET":
        ctx.require(rtype, "r")
        return read.read(ctx, req, rtype, rid)
    if method == "PUT":
        resource = _body_resource(ctx, req, rtype, url_id=rid)
        if_match = _if_match(req)
        return _atomic(ctx, lambda u: write.update(u, ctx, rtype, rid, resource, if_match))
    if method == "PATCH":
        ops = patch_operations(req)
        if_match = _if_match(req)
        return _atomic(ctx, lambda u: write.patch(u, ctx, rtype, rid, ops, if_match))
    if method == "DELETE":
        if_match = _if_match(req)
        return _atomic(ctx, lambda u: write.delete(u, ctx, rtype, rid, if_match))
    raise _not_allowed(req)
