"""AuditEvent/$verify-chain: prove the audit trail's hash chain unbroken (admins only)."""

from __future__ import annotations

from .. import audit
from ..errors import FHIRError
from .base import Ctx, Resp


def verify_chain(ctx: Ctx) -> Resp:
    if ctx.policy is not None and not ctx.policy.unrestricted:
        raise FHIRError(403, "forbidden", "admin-only", op="$verify-chain")
    result = audit.verify(ctx.store)
    params = [{"name": "result", "valueBoolean": result["ok"]}, {"name": "checked", "valueInteger": result["checked"]}]
    if result["broken"]:
        b = result["broken"]
        params.append({"name": "brokenSeq", "valueInteger": b["seq"]})
        if b.get("id"):
            params.append({"name": "brokenEvent", "valueReference": {"reference": f"AuditEvent/{b['id']}"}})
        params.append({"name": "reason", "valueString": b["reason"]})
    return Resp(200, body={"resourceType": "Parameters", "parameter": params})
