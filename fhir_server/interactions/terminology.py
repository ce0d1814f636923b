"""HTTP edge of the terminology operations (terminology/operations.py):
CodeSystem/$lookup, CodeSystem/$validate-code, ValueSet/$validate-code, ValueSet/$expand
and ConceptMap/$translate, at type level ([base]/ValueSet/$expand) and instance level
([base]/ValueSet/[id]/$expand), by GET (primitive parameters in the URL) or POST (a
Parameters body; URL parameters too).
"""

from __future__ import annotations

from terminology import operations, packaged
from terminology.service import TerminologyError

from ..errors import FHIRError, Issue
from ..validation import validator
from .base import Ctx, Req, Resp

# (type, operation) -> OperationDefinition canonical, for the CapabilityStatement.
DEFINITIONS = {
    ("CodeSystem", "lookup"): "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
    ("CodeSystem", "validate-code"): "http://hl7.org/fhir/OperationDefinition/CodeSystem-validate-code",
    ("ValueSet", "validate-code"): "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
    ("ValueSet", "expand"): "http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
    ("ConceptMap", "translate"): "http://hl7.org/fhir/OperationDefinition/ConceptMap-translate",
}


def is_operation(rtype: str, segment: str) -> bool:
    return segment.startswith("$") and (rtype, segment[1:]) in operations.OPERATIONS


def _instance(ctx: Ctx, rtype: str, rid: str) -> dict:
    v = ctx.reader.read(rtype, rid)
    if v is not None and not v.deleted:
        return v.resource()
    if v is None:  # packaged content not (yet) loaded into the store: the packaged copy
        for r in packaged():
            if r["resourceType"] == rtype and r["id"] == rid:
                return r
    raise FHIRError(404 if v is None else 410, "not-found", "not-found" if v is None else "gone", ref=f"{rtype}/{rid}")


def run(ctx: Ctx, req: Req, rtype: str, segment: str, rid: str | None = None) -> Resp:
    if req.method not in ("GET", "HEAD", "POST"):
        raise FHIRError(405, "not-supported", "method-not-allowed", method=req.method, path="/" + req.path)
    ctx.require(rtype, "r")
    instance = _instance(ctx, rtype, rid) if rid is not None else None
    if req.method == "POST" and isinstance(req.body, dict) and req.body.get("resourceType") == "Parameters":
        validator().validate(req.body, "Parameters")  # a malformed Parameters body: 400 at the element
    try:
        inputs = operations.Inputs.build(req.params, req.body if req.method == "POST" else None)
        body = operations.OPERATIONS[(rtype, segment[1:])](inputs, ctx.reader, instance, ctx.lang)
    except TerminologyError as exc:
        raise FHIRError(exc.status, issues=[Issue(exc.issue, exc.key, exc.expression, params=exc.params)]) from None
    return Resp(200, body=body)
