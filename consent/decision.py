"""Consent provisions -> MongoDB filter fragments (pure functions, no I/O).

An R4 Consent (scope `patient-privacy`) is a tree of provisions. Each provision has a
type (permit/deny) and constraints: who (`actor`), what action (`action`: access to
read, correct to write), when (`period`), and which resources (`class` = resource
types, `code`, `data` = specific resources, `securityLabel`). Nested provisions are
exceptions to their parent.

For one actor, at one instant, for one action and one resource type, a provision
tree decides a set of resources, written here as a filter:

    decided(N)   = the resources N's constraints select (its opinion covers them)
    permitted(N) = decided(N) and, for a permit, not denied by any applicable child;
                   for a deny, permitted by some applicable child
    denied(N)    = decided(N) and not permitted(N)

A provision whose actor, action or period does not apply to the request has no
opinion (and neither do its children). What a consent grants is permitted(root),
always within the patient's compartment; everything else is denied by default.
Across several consents of one patient the permits add up, and a deny that names the
actor explicitly wins over them (a baseline "deny unless" with no actor does not).
"""

from __future__ import annotations

from datetime import datetime

from fhir_server import fhirtime
from fhir_server.search.params import lookup, params_of

RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
ACTIONS = "http://terminology.hl7.org/CodeSystem/consentaction"
TRUE: dict = {}
FALSE: dict = {"_id": {"$in": []}}


# -- filter algebra ---------------------------------------------------------------------------
def f_and(*parts: dict) -> dict:
    if any(p == FALSE for p in parts):
        return FALSE
    parts = tuple(p for p in parts if p != TRUE)
    if not parts:
        return TRUE
    return parts[0] if len(parts) == 1 else {"$and": list(parts)}


def f_or(*parts: dict) -> dict:
    if any(p == TRUE for p in parts):
        return TRUE
    parts = tuple(p for p in parts if p != FALSE)
    if not parts:
        return FALSE
    return parts[0] if len(parts) == 1 else {"$or": list(parts)}


def f_not(part: dict) -> dict:
    if part == TRUE:
        return FALSE
    if part == FALSE:
        return TRUE
    return {"$nor": [part]}


# -- applicability ---------------------------------------------------------------------------------
def _in_period(period: dict | None, now: datetime) -> bool:
    if not period:
        return True
    start = fhirtime.parse_range(period["start"]) if period.get("start") else None
    end = fhirtime.parse_range(period["end"]) if period.get("end") else None
    if start and now < start[0]:
        return False
    if end and now >= end[1]:
        return False
    return True


def _actor_applies(prov: dict, actors: frozenset[str]) -> bool:
    refs = [a.get("reference", {}).get("reference") for a in prov.get("actor", [])]
    refs = [r for r in refs if r]
    return not refs or any(r in actors for r in refs)


def _action_applies(prov: dict, action: str, explicit: bool = False) -> bool:
    """A provision without `action` covers every action - except that a write
    (`correct`) must be granted by name at the consent's root: reading access never
    implies the right to change the record."""
    codes = {c.get("code") for a in prov.get("action", []) for c in a.get("coding", [])}
    if not codes:
        return not (explicit and action != "access")
    return action in codes


def applies(prov: dict, actors: frozenset[str], action: str, now: datetime, root: bool = False) -> bool:
    return _actor_applies(prov, actors) and _action_applies(prov, action, explicit=root) and _in_period(prov.get("period"), now)


def names_actor(prov: dict, actors: frozenset[str]) -> bool:
    return any(a.get("reference", {}).get("reference") in actors for a in prov.get("actor", []))


# -- what a provision's constraints select -----------------------------------------------------------
def _token_clause(rtype: str, codes: list[str], coding: dict) -> dict:
    pred = {"c": coding.get("code")}
    if coding.get("system"):
        pred["s"] = coding["system"]
    return f_or(*(({f"idx.{c}": {"$elemMatch": pred}}) for c in codes if lookup(rtype, c)))


def constraints(prov: dict, rtype: str, id_field: str = "_id") -> dict:
    """The resources of `rtype` a provision's own constraints select (TRUE: all)."""
    parts = []
    classes = prov.get("class", [])
    if classes:
        if not any(c.get("code") == rtype and c.get("system", RESOURCE_TYPES) == RESOURCE_TYPES for c in classes):
            return FALSE
    codes = [c for cc in prov.get("code", []) for c in cc.get("coding", [])]
    if codes:
        # "e.g. only lab results": a code matches the resource's code or its category.
        parts.append(f_or(*(_token_clause(rtype, ["code", "category"], c) for c in codes)))
    data = prov.get("data", [])
    if data:
        alts = []
        for d in data:
            ref = (d.get("reference") or {}).get("reference", "")
            dtype, _, did = ref.partition("/")
            if not did:
                continue
            if dtype == rtype:
                alts.append({id_field: did})
            if d.get("meaning") in ("related", "dependents"):
                # resources that refer to the named one
                for code, p in params_of(rtype).items():
                    if p.type == "reference" and (not p.targets or dtype in p.targets):
                        alts.append({f"idx.{code}": {"$elemMatch": {"t": dtype, "i": did}}})
        parts.append(f_or(*alts))
    labels = prov.get("securityLabel", [])
    if labels:
        parts.append(f_or(*(_token_clause(rtype, ["_security"], c) for c in labels)))
    return f_and(*parts)


def permitted(prov: dict, rtype: str, actors: frozenset[str], action: str, now: datetime, id_field: str = "_id") -> tuple[dict, dict]:
    """(decided, permitted) filters of one applicable provision subtree."""
    decided = constraints(prov, rtype, id_field)
    if decided == FALSE:
        return FALSE, FALSE
    children = [c for c in prov.get("provision", []) if applies(c, actors, action, now)]
    if prov.get("type") == "permit":
        denied_by_children = []
        for c in children:
            c_dec, c_perm = permitted(c, rtype, actors, action, now, id_field)
            denied_by_children.append(f_and(c_dec, f_not(c_perm)))
        return decided, f_and(decided, f_not(f_or(*denied_by_children)))
    permits = [permitted(c, rtype, actors, action, now, id_field)[1] for c in children]
    return decided, f_and(decided, f_or(*permits))


def consent_grant(consent: dict, rtype: str, actors: frozenset[str], action: str, now: datetime, id_field: str = "_id") -> tuple[dict, dict]:
    """(granted, explicitly denied) filters of one Consent for one resource type,
    without the compartment membership (the caller adds it per patient)."""
    if consent.get("status") != "active":
        return FALSE, FALSE
    root = consent.get("provision")
    if not root or not applies(root, actors, action, now, root=True):
        return FALSE, FALSE
    decided, perm = permitted(root, rtype, actors, action, now, id_field)
    denied = FALSE
    if root.get("type") == "deny" and names_actor(root, actors):
        denied = f_and(decided, f_not(perm))
    return perm, denied


def may_act_on_type(consent: dict, rtype: str, actors: frozenset[str], action: str, now: datetime) -> bool:
    """Does this consent permit `action` on at least some resources of `rtype`?"""
    perm, _ = consent_grant(consent, rtype, actors, action, now)
    return perm != FALSE


__all__ = ["FALSE", "TRUE", "applies", "consent_grant", "constraints", "f_and", "f_not", "f_or", "may_act_on_type", "permitted"]
