"""AuditEvents about local accounts: a login locked after wrong attempts, and unlocked.

They join the same hash-chained trail as the FHIR interactions (fhir_server/audit.py).
They name the account by its internal id only - never its login, name or anything typed.
"""

from __future__ import annotations

import logging

from .. import audit, fhirtime

log = logging.getLogger("fhir_server.auth")

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENTS = "urn:fhir-server-ru:account-event"
ACCOUNT = "urn:fhir-server-ru:account"
# event code -> display, outcome description
ACTIONS = {
    "lock": ("Account locked", "three wrong attempts in a row"),
    "unlock": ("Account unlocked", "the lock period is over"),
    "admin-unlock": ("Account unlocked", "unlocked by an administrator"),
}


def build(action: str, account_id: str, *, by: str | None = None, until=None) -> dict:
    display, why = ACTIONS[action]
    now = fhirtime.now()
    if by is not None:
        agent = {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},
                 "who": {"identifier": {"system": ACCOUNT, "value": by}},
                 "role": [{"coding": [{"system": "urn:fhir-server-ru:role", "code": "admin"}]}], "requestor": True}
    else:
        agent = {"type": {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]},
                 "who": {"display": "fhir-server-ru"}, "requestor": False}
    event = {
        "resourceType": "AuditEvent",
        "type": {"system": DCM, "code": "110114", "display": "User Authentication"},
        "subtype": [{"system": EVENTS, "code": "unlock" if action == "admin-unlock" else action, "display": display}],
        "action": "E",
        "recorded": fhirtime.format_instant(now),
        "outcome": "0",
        "outcomeDesc": why,
        "agent": [agent],
        "source": {
            "observer": {"display": "fhir-server-ru"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}],
        },
        "entity": [{
            "what": {"identifier": {"system": ACCOUNT, "value": account_id}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "11", "display": "Security User"},
        }],
    }
    if until is not None:
        event["period"] = {"start": event["recorded"], "end": fhirtime.format_instant(until)}
    return event


def record(service, action: str, account_id: str, **kw) -> None:
    """Write the event to the trail of the service's store."""
    if service.store is None:
        log.warning("account %s: %s not audited (no FHIR store)", account_id, action)
        return
    audit.record(service.store, build(action, account_id, **kw))
