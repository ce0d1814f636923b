"""$validate at type and instance level (R4 operation-resource-validate.html).

The operation succeeds whenever it can run: 200 OK with an OperationOutcome that
lists every error found, or one informational issue when there are none.
"""

from __future__ import annotations

from ..errors import FHIRError, Issue, info_outcome, operation_outcome
from ..validation import validator
from .base import Ctx, Req, Resp
from .write import prepare

MODES = ("create", "update", "delete")


def _parameters(body) -> tuple[object, str | None, str | None]:
    """(resource, mode, profile) from a Parameters body, or the body itself as the resource."""
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        validator().validate(body, "Parameters")
        resource = mode = profile = None
        for p in body.get("parameter", []):
            name = p.get("name")
            if name == "resource":
                resource = p.get("resource")
            elif name == "mode":
                mode = p.get("valueCode") or p.get("valueString")
            elif name == "profile":
                profile = p.get("valueUri") or p.get("valueCanonical")
        return resource, mode, profile
    return body, None, None


def validate(ctx: Ctx, req: Req, rtype: str, rid: str | None = None) -> Resp:
    resource, mode, profile = _parameters(req.body)
    mode = req.param("mode") or mode
    profile = req.param("profile") or profile
    if mode is not None and mode not in MODES:
        raise FHIRError(400, "invalid", "validate-mode", value=mode[:40])
    if mode in ("update", "delete") and rid is None:
        raise FHIRError(400, "invalid", "validate-mode", value=mode)
    if profile is not None and profile != f"http://hl7.org/fhir/StructureDefinition/{rtype}":
        raise FHIRError(400, "not-supported", "validate-profile", value=profile[:200])
    if mode == "delete":
        v = ctx.reader.read(rtype, rid)
        if v is None or v.deleted:
            raise FHIRError(404, "not-found", "not-found", ref=f"{rtype}/{rid}")
        return Resp(200, body=info_outcome("delete-ok", ctx.lang, ref=f"{rtype}/{rid}"))
    try:
        prepare(rtype, resource, for_create=mode == "create", url_id=rid if mode == "update" else None)
    except FHIRError as err:
        if err.status >= 500:
            raise
        return Resp(200, body=operation_outcome(err.issues, ctx.lang))
    return Resp(200, body=operation_outcome([Issue("informational", "valid", severity="information")], ctx.lang))
