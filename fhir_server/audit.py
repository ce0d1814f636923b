"""The audit trail: one AuditEvent per FHIR interaction and patient, hash-chained.

Each request to the FHIR API - by anyone, successful or not - is recorded before its
response is sent, following IHE Basic Audit Log Patterns (BALP): who (the user's
fhirUser or account, the OAuth2 client, the network address), what (the patient
whose data was touched, the resources, or the search query), the action, the
outcome, the purpose of use and a break-the-glass flag. An interaction that touched
several patients' data is recorded as one event per patient, each naming only that
patient's resources, so a patient reading their trail (`AuditEvent?patient=...`)
sees nothing of another patient. If an event cannot be written, the access fails.

Tamper evidence: every event carries an extension with its position in the chain
(`seq`), the previous event's hash and its own: hash = SHA-256(prev hash | seq |
canonical JSON of the event without meta and the hash itself). The chain head lives
in one document updated compare-and-set inside the same atomic unit as the event, so
concurrent requests serialise on it and the chain cannot fork. `verify()` walks the
chain and names the first broken link.

AuditEvents are written only here: the API refuses to create, change or delete them.
"""

from __future__ import annotations

import base64
import hashlib
import uuid

import orjson

from consent.principal import Principal

from . import fhirtime
from .search import index_resource
from .search.execute import compartments
from .search.index import entries
from .search.params import lookup

CHAIN_URL = "urn:fhir-server-ru:StructureDefinition:audit-chain"
CHAIN = "audit_chain"
GENESIS = "0" * 64
BTG = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG", "display": "break the glass"}
ETREAT = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT", "display": "Emergency Treatment"}
# restful-interaction code and DICOM/BALP action letter of each interaction.
ACTION = {"read": "R", "vread": "R", "search-type": "E", "search-system": "E", "history-instance": "R",
          "history-type": "R", "history-system": "R", "create": "C", "update": "U", "patch": "U", "delete": "D",
          "transaction": "E", "batch": "E", "operation": "E", "capabilities": "R"}


def interaction_of(method: str, path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return {"POST": "transaction", "GET": "search-system"}.get(method, "operation")
    if any(p.startswith("$") for p in parts):
        return "operation"
    if parts[-1] == "_search" or (method in ("GET", "HEAD") and len(parts) in (1, 3) and parts[-1] != "_history" and (len(parts) == 1 or parts[2][:1].isupper())):
        return "search-type" if parts[0] != "_search" else "search-system"
    if "_history" in parts:
        i = parts.index("_history")
        if i + 1 < len(parts):
            return "vread"
        return {0: "history-system", 1: "history-type"}.get(i, "history-instance")
    if parts == ["metadata"]:
        return "capabilities"
    if method == "POST":
        return "create"
    return {"GET": "read", "HEAD": "read", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "operation")


# -- patients of resources --------------------------------------------------------------------
def patients_of(resource: dict) -> set[str]:
    """The patients in whose compartment a resource is ("Patient/x")."""
    rtype = resource.get("resourceType")
    out = set()
    if rtype == "Patient" and resource.get("id"):
        out.add(f"Patient/{resource['id']}")
    for code in compartments()["Patient"].get(rtype, ()):
        p = lookup(rtype, code)
        if p is None:
            continue
        for e in entries(resource, "reference", p.paths):
            if e.get("t") == "Patient":
                out.add(f"Patient/{e['i']}")
    return out


def touched(resp) -> dict[str | None, list[str]]:
    """The resource references a response carries (resp.touched, or its version), grouped by
    the patient whose compartment each is in ("Patient/x"; None for no patient's)."""
    versions = list(getattr(resp, "touched", None) or ())
    if not versions and resp is not None and resp.version is not None:
        versions = [resp.version]
    groups: dict[str | None, list[str]] = {}
    for v in versions:
        ref = f"{v.type}/{v.id}/_history/{v.version}"
        owners = patients_of(v.resource()) if v.raw is not None else set()
        for owner in sorted(owners) or [None]:
            groups.setdefault(owner, []).append(ref)
    return groups


def per_patient(groups: dict[str | None, list[str]]) -> list[tuple[set[str], list[str]]]:
    """(patients, refs) of each AuditEvent of one interaction: one event per patient whose data
    it touched, holding that patient's resources only (BALP: each patient's trail shows no
    other patient's data), shared resources (no patient's) in each; one event when no patient."""
    shared = groups.get(None, [])
    owned = [(p, refs) for p, refs in groups.items() if p is not None]
    if not owned:
        return [(set(), shared)]
    return [({p}, refs + shared) for p, refs in sorted(owned)]


# -- building the event -----------------------------------------------------------------------------
def build_event(principal: Principal, *, method: str, path: str, query: str, status: int, patients, refs,
                address: str | None, break_glass: bool = False) -> dict:
    interaction = interaction_of(method, path)
    who: dict
    if principal.fhir_user:
        who = {"reference": principal.fhir_user}
    else:
        who = {"identifier": {"system": "urn:fhir-server-ru:account", "value": principal.subject or "anonymous"}}
    requestor = {
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient"}]},
        "who": who,
        "requestor": True,
    }
    if principal.kind:
        requestor["role"] = [{"coding": [{"system": "urn:fhir-server-ru:role", "code": principal.kind}]}]
    if address:
        requestor["network"] = {"address": address[:100], "type": "2"}
    if principal.token_id:
        requestor["policy"] = [f"urn:uuid:{principal.token_id}" if _is_uuid(principal.token_id) else f"urn:jti:{principal.token_id}"]
    agents = [requestor]
    if principal.client_id:
        agents.append({
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
            "who": {"identifier": {"system": "urn:fhir-server-ru:client", "value": principal.client_id}},
            "requestor": False,
        })
    event: dict = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "Restful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": interaction if interaction != "capabilities" else "capabilities"}],
        "action": ACTION.get(interaction, "E"),
        "recorded": fhirtime.format_instant(fhirtime.now()),
        "outcome": "0" if status < 400 else ("4" if status < 500 else "8"),
        "outcomeDesc": str(status),
        "agent": agents,
        "source": {
            "observer": {"display": "fhir-server-ru"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}],
        },
    }
    if break_glass:
        event["purposeOfEvent"] = [{"coding": [ETREAT]}, {"coding": [BTG]}]
        event["meta"] = {"security": [BTG]}
    entity = []
    for p in sorted(patients):
        entity.append({
            "what": {"reference": p},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
        })
    for r in refs[:50]:
        if r.startswith("Patient/") and r in patients:
            continue
        entity.append({"what": {"reference": r}, "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}})
    if query:
        entity.append({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "24", "display": "Query"},
            "description": f"{method} {path}"[:200],
            "query": base64.b64encode(query.encode()[:4096]).decode(),
        })
    elif not entity:
        entity.append({"description": f"{method} {path or '/'}"[:200]})
    event["entity"] = entity
    return event


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
        return True
    except ValueError:
        return False


# -- the chain --------------------------------------------------------------------------------------------
def _content_hash(prev: str, seq: int, event: dict) -> str:
    body = {k: v for k, v in event.items() if k != "meta"}
    body["extension"] = [x for x in body.get("extension", []) if x.get("url") != CHAIN_URL]
    if not body["extension"]:
        del body["extension"]
    raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev.encode() + b"|" + str(seq).encode() + b"|" + raw).hexdigest()


def _chain_ext(seq: int, prev: str, digest: str) -> dict:
    return {"url": CHAIN_URL, "extension": [
        {"url": "seq", "valueInteger": seq}, {"url": "previous", "valueString": prev}, {"url": "hash", "valueString": digest},
    ]}


def append(unit, event: dict) -> dict:
    """Write `event` as the next link of the chain inside `unit` (raises ConcurrentWrite to retry)."""
    seq, prev = unit.chain_head(CHAIN)
    seq += 1
    event = dict(event)
    event["id"] = str(uuid.uuid4())
    digest = _content_hash(prev, seq, event)
    event["extension"] = [*event.get("extension", []), _chain_ext(seq, prev, digest)]
    unit.chain_link(CHAIN, seq, prev, digest, event["id"])
    unit.write("AuditEvent", event["id"], event, "POST", None, index_resource(event))
    return event


def record(store, event: dict) -> dict:
    return store.atomic(lambda unit: append(unit, event), retries=50)


def verify(store) -> dict:
    """Walk the chain: {"ok": bool, "checked": n, "broken": {"seq", "id", "reason"} | None}."""
    reader = store.reader()
    links, head = store.chain(CHAIN)
    head = head or {"seq": 0, "hash": GENESIS}
    prev = GENESIS
    checked = 0
    for expected_seq, link in enumerate(links, start=1):
        broken = {"seq": expected_seq, "id": link.get("ev")}
        if link["_id"] != expected_seq:
            return {"ok": False, "checked": checked, "broken": {**broken, "reason": "missing link"}}
        v = reader.read("AuditEvent", link["ev"])
        if v is None or v.deleted:
            return {"ok": False, "checked": checked, "broken": {**broken, "reason": "event missing"}}
        event = v.resource()
        ext = next((x for x in event.get("extension", []) if x.get("url") == CHAIN_URL), None)
        values = {e["url"]: next(iter(val for k, val in e.items() if k.startswith("value"))) for e in (ext or {}).get("extension", [])}
        digest = _content_hash(prev, expected_seq, event)
        if values.get("seq") != expected_seq or values.get("previous") != prev or values.get("hash") != digest or link["hash"] != digest:
            return {"ok": False, "checked": checked, "broken": {**broken, "reason": "hash mismatch"}}
        prev = digest
        checked += 1
    if head["seq"] != checked or head["hash"] != prev:
        return {"ok": False, "checked": checked, "broken": {"seq": checked + 1, "id": None, "reason": "head does not match the last link"}}
    return {"ok": True, "checked": checked, "broken": None}
