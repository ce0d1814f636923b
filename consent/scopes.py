"""SMART App Launch scopes (v2 and v1) parsed into permissions.

    patient/Observation.rs                 v2: context / type . permissions (c r u d s, in that order)
    user/*.cruds
    system/Patient.r
    patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory
    patient/Observation.read   user/*.write   user/*.*   v1: read = r+s, write = c+u+d, * = all

Scopes that grant no resource access (openid, fhirUser, launch, launch/patient,
offline_access, online_access) are kept as they are but carry no permissions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

CONTEXTS = ("patient", "user", "system")
PERMS = "cruds"
V1 = {"read": "rs", "write": "cud", "*": "cruds"}
NON_RESOURCE = frozenset(("openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access", "online_access"))
_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.([a-z*]+)(\?(.+))?$")


@dataclass(frozen=True)
class Scope:
    context: str  # patient | user | system
    rtype: str  # a resource type or "*"
    perms: frozenset[str]  # subset of c r u d s
    params: tuple[tuple[str, str], ...] = ()  # v2 finer-grained restriction (?category=...)
    raw: str = ""

    def covers(self, rtype: str, perm: str) -> bool:
        return (self.rtype == "*" or self.rtype == rtype) and perm in self.perms


def parse_scope(text: str) -> Scope | None:
    """The resource scope, or None for a non-resource or malformed scope."""
    m = _SCOPE.match(text)
    if not m:
        return None
    context, rtype, perms, _, query = m.groups()
    if perms in V1:
        letters = V1[perms]
        if query:
            return None  # v1 scopes have no parameters
    else:
        # v2: a non-empty subsequence of "cruds", in that order.
        if not perms or any(ch not in PERMS for ch in perms) or list(perms) != sorted(perms, key=PERMS.index):
            return None
        if len(set(perms)) != len(perms):
            return None
        letters = perms
    params = tuple(parse_qsl(query, keep_blank_values=False)) if query else ()
    return Scope(context, rtype, frozenset(letters), params, text)


class ScopeSet:
    """The scopes a token carries."""

    def __init__(self, scopes):
        self.raw: tuple[str, ...] = tuple(dict.fromkeys(s for s in scopes if s))
        self.resource: tuple[Scope, ...] = tuple(p for p in (parse_scope(s) for s in self.raw) if p is not None)

    @classmethod
    def from_string(cls, text: str | None) -> "ScopeSet":
        return cls((text or "").split())

    def __contains__(self, scope: str) -> bool:
        return scope in self.raw

    def matching(self, rtype: str, perm: str) -> list[Scope]:
        return [s for s in self.resource if s.covers(rtype, perm)]

    def allows(self, rtype: str, perm: str) -> bool:
        return bool(self.matching(rtype, perm))

    def __str__(self) -> str:
        return " ".join(self.raw)


def well_formed(text: str) -> bool:
    return text in NON_RESOURCE or parse_scope(text) is not None


# The scopes each kind of account may ever be granted ("granted scopes never exceed what
# the user's role allows"): a requested scope outside these is dropped from the grant.
ROLE_CONTEXTS = {
    "patient": ("patient",),
    "practitioner": ("user", "patient"),
    "staff": ("user",),
    "admin": ("user", "patient"),
    "system": ("system",),
}
# Staff (registrars, nurses' stations) read and schedule; they never write clinical records.
STAFF_WRITABLE = frozenset(("Appointment", "Schedule", "Slot", "Patient", "Coverage"))


def permitted_for_role(role: str, scope: str) -> bool:
    """May an account of `role` hold this scope at all?"""
    if scope in NON_RESOURCE:
        return role != "system"  # a backend service has no user, no launch, no refresh
    s = parse_scope(scope)
    if s is None or s.context not in ROLE_CONTEXTS.get(role, ()):
        return False
    if role == "patient":
        # Patients read their own card and write only what the spec lets them (Consent, contact details),
        # and their OMS policy's Coverage - through Patient/$bind-oms-policy only: the write filter
        # (consent/enforce.py) still refuses a patient's direct Coverage write.
        if s.rtype == "Consent":
            return True  # grant, narrow, revoke
        if s.rtype == "Coverage":
            return s.perms <= frozenset("rscu")
        return s.perms <= frozenset("rs") or (s.rtype == "Patient" and s.perms <= frozenset("rsu"))
    if role == "staff":
        return s.perms <= frozenset("rs") or (s.rtype in STAFF_WRITABLE)
    return True


def narrow(role: str, requested: str) -> str:
    """The requested scope string limited to what the role permits (order kept)."""
    return " ".join(s for s in dict.fromkeys(requested.split()) if permitted_for_role(role, s))
