"""Enforcement: a reader that ANDs the request's access filter into every query.

Every interaction reads through `ctx.reader`; for a restricted principal that reader
is a `GuardedReader`, so read, vread, history, search, count, chains (`ids`), `_has`
and `_revinclude` (`index_values`), includes, conditional matching (`find`) and bundle
entries all see only what the policy allows - in the query, never by dropping results
afterwards, so totals and pages cannot leak. A resource the principal may not see is
indistinguishable from one that does not exist (404, not 403).

Writes: the existing version must be visible (else 404), and the stored result must
satisfy the policy's write filter, checked in the same atomic unit after the write
(so it is MongoDB that decides, and a refusal rolls the write back).
"""

from __future__ import annotations

from fhir_server.errors import FHIRError
from resources import registry

from . import decision as d
from .policy import Policy

# Patients may change only these parts of their own Patient resource (their contact details).
PATIENT_EDITABLE = frozenset(("telecom", "address", "contact", "communication", "meta", "text"))


class GuardedReader:
    """The read side of a Unit (or store reader), limited by a Policy."""

    def __init__(self, inner, policy: Policy):
        self._inner = inner
        self.policy = policy

    def __getattr__(self, name):
        # Writes and compare-and-set reads (current, write, rollback) go to the unit itself.
        return getattr(self._inner, name)

    def _f(self, rtype: str) -> dict:
        return self.policy.filter(rtype)

    def read(self, rtype, rid):
        f = self._f(rtype)
        if f == d.FALSE:
            return None
        return self._inner.read(rtype, rid, extra=f or None)

    def vread(self, rtype, rid, version):
        f = self.policy.filter(rtype, id_field="i")
        if f == d.FALSE:
            return None
        return self._inner.vread(rtype, rid, version, extra=f or None)

    def history(self, rtype=None, rid=None, **kw):
        if rtype is not None:
            f = self.policy.filter(rtype, id_field="i")
            if f == d.FALSE:
                return [], 0
        else:
            f = self._system_history_filter()
        return self._inner.history(rtype, rid, extra=f or None, **kw)

    def _system_history_filter(self) -> dict:
        whole, partial = [], []
        for t in registry.supported_types():
            f = self.policy.filter(t, id_field="i")
            if f == d.TRUE:
                whole.append(t)
            elif f != d.FALSE:
                partial.append(d.f_and({"t": t}, f))
        alts = ([{"t": {"$in": whole}}] if whole else []) + partial
        return d.f_or(*alts) if alts else d.FALSE

    def search(self, rtype, flt, sort, limit):
        f = self._f(rtype)
        return [] if f == d.FALSE else self._inner.search(rtype, d.f_and(flt, f), sort, limit)

    def count(self, rtype, flt):
        f = self._f(rtype)
        return 0 if f == d.FALSE else self._inner.count(rtype, d.f_and(flt, f))

    def ids(self, rtype, flt):
        f = self._f(rtype)
        return [] if f == d.FALSE else self._inner.ids(rtype, d.f_and(flt, f))

    def index_values(self, rtype, flt, code):
        f = self._f(rtype)
        return [] if f == d.FALSE else self._inner.index_values(rtype, d.f_and(flt, f), code)

    def find(self, rtype, query, limit=0):
        f = self._f(rtype)
        return [] if f == d.FALSE else self._inner.find(rtype, d.f_and(query, f), limit)


# -- writes ---------------------------------------------------------------------------------------
PERM = {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}


def check_scope(policy: Policy, rtype: str, perm: str) -> None:
    if not policy.scope_allows(rtype, perm):
        raise FHIRError(403, "forbidden", "scope-missing", type=rtype, perm=perm)


def write_filter(policy: Policy, rtype: str) -> dict:
    """What of rtype this principal may write (TRUE / FALSE / a filter over the stored result)."""
    if policy.unrestricted:
        return d.TRUE
    p = policy.principal
    from .policy import STAFF_TYPES, compartment, patient_compartment_types

    if p.kind == "patient":
        own = p.patient or (p.fhir_user or "").partition("/")[2]
        if rtype == "Consent":
            return compartment("Consent", [own])
        if rtype == "Patient":
            return {"_id": own}
        return d.FALSE
    if p.kind == "staff" and rtype in STAFF_TYPES:
        return d.TRUE
    if rtype in patient_compartment_types() and p.kind in ("practitioner", "system", "staff"):
        return policy.granted(rtype, "correct")
    return d.FALSE


def before_write(policy: Policy, unit, rtype: str, rid: str, method: str) -> None:
    """Scope, and visibility of what is there now (an invisible resource is 'not found')."""
    check_scope(policy, rtype, PERM[method])
    if policy.unrestricted:
        return
    if write_filter(policy, rtype) == d.FALSE:
        raise FHIRError(403, "forbidden", "write-forbidden", type=rtype)
    prev = unit.current(rtype, rid) if rid else None
    if prev is not None and not prev.deleted:
        if unit.count(rtype, d.f_and({"_id": rid}, policy.filter(rtype))) == 0:
            raise FHIRError(404, "not-found", "not-found", ref=f"{rtype}/{rid}")
        if unit.count(rtype, d.f_and({"_id": rid}, write_filter(policy, rtype))) == 0:
            raise FHIRError(403, "forbidden", "write-forbidden", type=rtype)


def after_write(policy: Policy, unit, rtype: str, rid: str, resource: dict | None, prev_resource: dict | None) -> None:
    """The stored result must be writable by this principal; raising rolls the unit back."""
    if policy.unrestricted or resource is None:
        return
    if unit.count(rtype, d.f_and({"_id": rid}, write_filter(policy, rtype))) == 0:
        raise FHIRError(403, "forbidden", "write-forbidden", type=rtype)
    if policy.principal.kind == "patient" and rtype == "Patient" and prev_resource is not None:
        changed = {k for k in set(resource) | set(prev_resource) if resource.get(k) != prev_resource.get(k)}
        if not changed <= PATIENT_EDITABLE | {"id"}:
            raise FHIRError(403, "forbidden", "patient-edit-limited", fields=", ".join(sorted(changed - PATIENT_EDITABLE))[:200])
