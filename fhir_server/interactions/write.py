"""create, update, patch and delete, plain and conditional (R4 http.html 3.1.0.4 - 3.1.0.7, 3.1.0.8 - 3.1.0.12).

Each function runs inside one storage unit (`unit`), so the HTTP edge wraps it in
`store.atomic` and a transaction Bundle runs all of its entries in a single unit.
Bodies are validated before anything is written; a rejected write changes nothing.
"""

from __future__ import annotations

import uuid

import jsonpatch
import jsonpointer

from consent.enforce import after_write, before_write
from profiles_ru import profiles as ru_profiles

from ..errors import FHIRError, Issue, info_outcome
from ..search import compile_criteria, index_resource
from ..storage import Unit, Version
from ..validation import validator
from .base import Ctx, Resp

_SERVER_META = ("versionId", "lastUpdated")


def new_id() -> str:
    return str(uuid.uuid4())


def prepare(rtype: str, body, *, for_create: bool = False, url_id: str | None = None, allow_conditional: bool = False) -> dict:
    """Check a request body is a valid `rtype` resource; returns it (id dropped for create)."""
    if body is None:
        raise FHIRError(400, "required", "body-required")
    if not isinstance(body, dict):
        raise FHIRError(400, "structure", "body-not-object")
    btype = body.get("resourceType")
    if btype is None:
        raise FHIRError(400, "required", "resource-type-missing", expression="resourceType")
    if btype != rtype:
        raise FHIRError(400, "invalid", "type-mismatch", expression=f"{rtype}.resourceType", body=str(btype)[:60], url=rtype)
    if for_create:
        # R4 3.1.0.4: on create "if an id is provided, the server SHALL ignore it".
        body = {k: v for k, v in body.items() if k != "id"}
    elif url_id is not None:
        bid = body.get("id")
        if bid is None:
            raise FHIRError(400, "required", "id-missing", expression=f"{rtype}.id")
        if bid != url_id:
            raise FHIRError(400, "invalid", "id-mismatch", expression=f"{rtype}.id", body=str(bid)[:70], url=url_id)
    validator().validate(body, rtype, allow_conditional)
    return body


def check_profiles(ctx: Ctx, reader, resource: dict) -> None:
    """The profiles a resource must meet - the ones in its meta.profile that the server knows, and
    with FHIR_ENFORCE_RU_PROFILES the RU profile of its type (profiles_ru.profiles): 422 with every
    error. `reader` (the write's unit) lets terminology see code systems posted to the server."""
    errors = [i for i in ru_profiles.issues(resource, reader, ctx.settings.enforce_ru_profiles) if i.severity == "error"]
    if errors:
        raise FHIRError(422, issues=errors)


def match(unit: Unit, rtype: str, criteria: str) -> Version | None:
    """The single resource matching conditional criteria; 412 when several match."""
    found = unit.find(rtype, compile_criteria(unit, rtype, criteria), limit=2)
    if len(found) > 1:
        raise FHIRError(412, "multiple-matches", "conditional-multiple", criteria=f"{rtype}?{criteria}"[:200])
    return found[0] if found else None


def _content(resource: dict) -> dict:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in _SERVER_META}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        out["meta"] = meta
    return out


def _unchanged(prev: Version | None, resource: dict) -> bool:
    return prev is not None and not prev.deleted and _content(prev.resource()) == _content(resource)


def _check_if_match(prev: Version | None, if_match: int | None, ref: str) -> None:
    if if_match is None:
        return
    if prev is None or prev.deleted:
        raise FHIRError(412, "conflict", "version-conflict", ref=ref, expected=if_match, current="none")
    if prev.version != if_match:
        raise FHIRError(412, "conflict", "version-conflict", ref=ref, expected=if_match, current=prev.version)


def _written(ctx: Ctx, status: int, v: Version, key: str) -> Resp:
    return Resp(status, v, is_write=True, location=status == 201, outcome=info_outcome(key, ctx.lang, ref=v.ref))


# -- create ------------------------------------------------------------------------
def create(unit: Unit, ctx: Ctx, rtype: str, resource: dict, if_none_exist: str | None = None, rid: str | None = None) -> Resp:
    if if_none_exist and if_none_exist.startswith(f"{rtype}?"):
        if_none_exist = if_none_exist[len(rtype) + 1 :]  # "Patient?identifier=..." as HAPI accepts it
    if if_none_exist:
        existing = match(unit, rtype, if_none_exist)
        if existing is not None:
            # R4 3.1.0.8: one match - the server ignores the post and returns 200 OK.
            outcome = info_outcome("conditional-exists", ctx.lang, ref=existing.ref, criteria=f"{rtype}?{if_none_exist}")
            return Resp(200, existing, is_write=True, location=True, outcome=outcome)
    resource = dict(resource)
    resource["id"] = rid or new_id()
    _before(ctx, unit, rtype, None, "POST")
    check_profiles(ctx, unit, resource)
    v = unit.write(rtype, resource["id"], resource, "POST", None, index_resource(resource, ctx.base))
    _after(ctx, unit, rtype, v.id, resource, None)
    return _written(ctx, 201, v, "created")


# -- update ------------------------------------------------------------------------
def update(unit: Unit, ctx: Ctx, rtype: str, rid: str, resource: dict, if_match: int | None = None) -> Resp:
    _before(ctx, unit, rtype, rid, "PUT")
    prev = unit.current(rtype, rid)
    _check_if_match(prev, if_match, f"{rtype}/{rid}")
    if _unchanged(prev, resource):
        # As HAPI: an update that changes nothing creates no new version.
        return Resp(200, prev, is_write=True, outcome=info_outcome("unchanged", ctx.lang, ref=prev.ref))
    check_profiles(ctx, unit, resource)
    v = unit.write(rtype, rid, resource, "PUT", prev, index_resource(resource, ctx.base))
    _after(ctx, unit, rtype, rid, resource, prev.resource() if prev is not None and not prev.deleted else None)
    created = prev is None or prev.deleted
    return _written(ctx, 201 if created else 200, v, "created" if created else "updated")


def conditional_update(unit: Unit, ctx: Ctx, rtype: str, criteria: str, resource: dict, if_match: int | None = None) -> Resp:
    found = match(unit, rtype, criteria)
    body_id = resource.get("id")
    if found is not None:
        if body_id is not None and body_id != found.id:
            raise FHIRError(400, "invalid", "conditional-id-mismatch", expression=f"{rtype}.id", body=body_id, match=found.id)
        rid = found.id
    else:
        rid = body_id or new_id()  # R4 3.1.0.9: no match - create (as update-as-create when an id is given)
    return update(unit, ctx, rtype, rid, {**resource, "id": rid}, if_match)


# -- patch -------------------------------------------------------------------------
def check_patch_document(ops) -> list:
    if not isinstance(ops, list):
        raise FHIRError(400, "structure", "patch-not-array")
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
            raise FHIRError(400, "structure", "patch-failed", expression=f"[{i}]", reason="each operation needs 'op' and 'path'")
    return ops


def patch(unit: Unit, ctx: Ctx, rtype: str, rid: str, ops: list, if_match: int | None = None) -> Resp:
    ref = f"{rtype}/{rid}"
    _before(ctx, unit, rtype, rid, "PATCH")
    prev = unit.current(rtype, rid)
    if prev is None:
        raise FHIRError(404, "not-found", "not-found", ref=ref)
    if prev.deleted:
        raise FHIRError(410, "deleted", "gone", ref=ref)
    _check_if_match(prev, if_match, ref)
    try:
        patched = jsonpatch.apply_patch(prev.resource(), ops)
    except jsonpatch.InvalidJsonPatch as exc:
        raise FHIRError(400, "structure", "patch-failed", reason=str(exc)[:200]) from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, ValueError, KeyError, IndexError) as exc:
        raise FHIRError(422, "processing", "patch-failed", reason=str(exc)[:200]) from None
    if not isinstance(patched, dict) or patched.get("resourceType") != rtype or patched.get("id") != rid:
        raise FHIRError(422, "processing", "patch-changes-id")
    issues = validator().issues(patched, rtype)
    if issues:
        # R4 3.1.0.7: a patch that leaves the resource invalid is 422 Unprocessable Entity.
        raise FHIRError(422, issues=issues)
    if _unchanged(prev, patched):
        return Resp(200, prev, is_write=True, outcome=info_outcome("unchanged", ctx.lang, ref=ref))
    check_profiles(ctx, unit, patched)
    v = unit.write(rtype, rid, patched, "PATCH", prev, index_resource(patched, ctx.base))
    _after(ctx, unit, rtype, rid, patched, prev.resource())
    return _written(ctx, 200, v, "updated")


def conditional_patch(unit: Unit, ctx: Ctx, rtype: str, criteria: str, ops: list, if_match: int | None = None) -> Resp:
    found = match(unit, rtype, criteria)
    if found is None:
        raise FHIRError(404, "not-found", "not-found", ref=f"{rtype}?{criteria}"[:200])
    return patch(unit, ctx, rtype, found.id, ops, if_match)


# -- delete ------------------------------------------------------------------------
def delete(unit: Unit, ctx: Ctx, rtype: str, rid: str, if_match: int | None = None) -> Resp:
    ref = f"{rtype}/{rid}"
    _before(ctx, unit, rtype, rid, "DELETE")
    prev = unit.current(rtype, rid)
    if prev is None:
        raise FHIRError(404, "not-found", "not-found", ref=ref)
    if prev.deleted:
        # Deleting again is idempotent: no new version (as HAPI).
        return Resp(200, prev, body=info_outcome("already-deleted", ctx.lang, ref=ref), headers={"ETag": prev.etag}, is_write=True)
    _check_if_match(prev, if_match, ref)
    v = unit.write(rtype, rid, None, "DELETE", prev)
    return Resp(200, v, body=info_outcome("deleted", ctx.lang, ref=ref), headers={"ETag": v.etag}, is_write=True)


def conditional_delete(unit: Unit, ctx: Ctx, rtype: str, criteria: str) -> Resp:
    found = match(unit, rtype, criteria)
    if found is None:
        return Resp(200, body=info_outcome("conditional-none-deleted", ctx.lang, criteria=f"{rtype}?{criteria}"[:200]), is_write=True)
    return delete(unit, ctx, rtype, found.id)


def _before(ctx: Ctx, unit, rtype: str, rid: str | None, method: str) -> None:
    if rtype == "AuditEvent":
        # The audit trail is written by the server only: never created, changed or deleted through the API.
        raise FHIRError(405, "not-supported", "audit-immutable")
    if ctx.policy is not None:
        before_write(ctx.policy, unit, rtype, rid, method)


def _after(ctx: Ctx, unit, rtype: str, rid: str, resource: dict | None, prev_resource: dict | None) -> None:
    if ctx.policy is not None:
        after_write(ctx.policy, unit, rtype, rid, resource, prev_resource)


def entry_issue(index: int, err: FHIRError) -> list[Issue]:
    """Prefix every issue of a failed bundle entry with its position."""
    out = []
    for i in err.issues:
        expr = i.expression
        expr = f"Bundle.entry[{index}].resource.{expr.split('.', 1)[1]}" if expr and "." in expr else f"Bundle.entry[{index}]"
        out.append(Issue(i.code, i.key, expr, i.severity, i.params, i.detail))
    return out
