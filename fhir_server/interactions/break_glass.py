"""Patient/{id}/$break-glass: emergency access for a practitioner (purpose of use ETREAT).

The practitioner states a reason; the server then writes, in one atomic unit:
  * a Consent that permits this practitioner access to the patient's card for a limited
    time (FHIR_BREAK_GLASS_MINUTES), labelled BTG - enforced like any other Consent, so
    it expires on its own, with no job running;
  * a Communication to the patient saying who opened their card, when and why.
The request's own AuditEvent, and every later access under this grant, carry the
break-the-glass flag (purposeOfEvent ETREAT + BTG).
"""

from __future__ import annotations

from datetime import timedelta

from .. import fhirtime
from ..audit import BTG, ETREAT
from ..errors import FHIRError
from ..search import index_resource
from .base import Ctx, Req, Resp
from .write import new_id


def _reason(req: Req) -> str:
    body = req.body if isinstance(req.body, dict) else {}
    if body.get("resourceType") == "Parameters":
        for p in body.get("parameter", []):
            if p.get("name") == "reason" and isinstance(p.get("valueString"), str):
                return p["valueString"].strip()
    return (req.param("reason") or "").strip()


def break_glass(ctx: Ctx, req: Req, pid: str) -> Resp:
    p = ctx.policy.principal if ctx.policy is not None else None
    if p is None or p.kind != "practitioner" or not (p.fhir_user or "").startswith("Practitioner/"):
        raise FHIRError(403, "forbidden", "break-glass-practitioner")
    reason = _reason(req)
    if not reason:
        raise FHIRError(400, "required", "break-glass-reason", expression="Parameters.parameter[reason]")
    if ctx.store.read("Patient", pid) is None:
        raise FHIRError(404, "not-found", "not-found", ref=f"Patient/{pid}")
    now = fhirtime.now()
    until = now + timedelta(minutes=ctx.settings.break_glass_minutes)
    consent = {
        "resourceType": "Consent",
        "id": new_id(),
        "meta": {"security": [BTG]},
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "dateTime": fhirtime.format_instant(now),
        "policyRule": {"coding": [ETREAT]},
        "provision": {
            "type": "permit",
            "period": {"start": fhirtime.format_instant(now), "end": fhirtime.format_instant(until)},
            "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
                       "reference": {"reference": p.fhir_user}}],
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}],
            "purpose": [ETREAT],
        },
    }
    note = {
        "resourceType": "Communication",
        "id": new_id(),
        "status": "completed",
        "category": [{"text": "Экстренный доступ к медицинской карте"}],
        "subject": {"reference": f"Patient/{pid}"},
        "recipient": [{"reference": f"Patient/{pid}"}],
        "sender": {"reference": p.fhir_user},
        "sent": fhirtime.format_instant(now),
        "about": [{"reference": f"Consent/{consent['id']}"}],
        "payload": [{"contentString": (
            f"{fhirtime.format_instant(now)}: {p.fhir_user} открыл(а) вашу медицинскую карту в экстренном порядке "
            f"(доступ до {fhirtime.format_instant(until)}). Причина: {reason[:500]}"
        )}],
    }

    def write(unit):
        unit.write("Consent", consent["id"], consent, "POST", None, index_resource(consent, ctx.base))
        unit.write("Communication", note["id"], note, "POST", None, index_resource(note, ctx.base))

    ctx.store.atomic(write)
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "consent", "valueReference": {"reference": f"Consent/{consent['id']}"}},
        {"name": "expires", "valueInstant": fhirtime.format_instant(until)},
        {"name": "notification", "valueReference": {"reference": f"Communication/{note['id']}"}},
    ]}
    v = ctx.store.read("Consent", consent["id"])
    return Resp(200, body=body, touched=[v] if v else [], headers={"X-Break-Glass": "true"})
