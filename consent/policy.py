"""The access policy of one request: (who, what access, when) -> a filter per resource type.

`Policy.filter(rtype)` is the MongoDB filter fragment the storage layer ANDs into every
query on `rtype` for this request - reads, searches, counts, chains, `_has`, includes,
history, bundle entries. FALSE means "nothing"; TRUE means "everything".

    admin, open (FHIR_AUTH=off)   everything
    patient                       their own Patient compartment; directory types
    practitioner, system client   the compartments of patients whose active Consents
                                  grant them (as decided by consent/decision.py);
                                  directory types
    staff                         scheduling data (Patient, Appointment, Slot, ...) and
                                  what Consents grant them
    AuditEvents                   the patient's own and admins' only (PATIENT_ONLY)
In every case the token's SMART scopes bound it first: a type no scope covers is
FALSE, and a scope's `?param=value` restriction is ANDed in.

Types outside the Patient compartment that are not "directory" types (Binary, Bundle,
Basic-like containers of anything) are visible to admins only: deny by default.
Decisions are never stale: a revoked Consent is not honoured on the very next request.
What a decision is made of - the asker's actors (PractitionerRole, CareTeam), the Consents
that can apply to them, the filter they compile to - is memoised across requests only
under the store's generation counters of Consent, PractitionerRole and CareTeam (moved by
every write of those types, inside its atomic unit: WATCHED) and, for compiled filters,
only until the next period boundary of those Consents (a start or an end), so an expiry
takes effect at its instant with no job running (and a request whose clock reads earlier than
the one that compiled a filter does not use it across a boundary either).
"""

from __future__ import annotations

import json
from datetime import datetime

from fhir_server import fhirtime
from fhir_server.search import execute
from fhir_server.search.params import lookup
from fhir_server.search.query import parse

from . import decision as d
from .principal import Principal

# Shared reference data every signed-in user may read (within their scopes).
DIRECTORY = frozenset(
    (
        "Practitioner", "PractitionerRole", "Organization", "Location", "HealthcareService", "Endpoint",
        "Medication", "Substance", "CodeSystem", "ValueSet", "ConceptMap", "NamingSystem", "StructureDefinition",
        "SearchParameter", "OperationDefinition", "CapabilityStatement", "Questionnaire", "PlanDefinition",
        "ActivityDefinition", "Library", "Slot", "OrganizationAffiliation",
    )
)
STAFF_TYPES = frozenset(("Patient", "Appointment", "AppointmentResponse", "Schedule", "Coverage"))
# The record of who looked at a card is the patient's (and the admins'): no Consent shares it,
# since its entities name resources a Consent may withhold (a denied label, another period).
PATIENT_ONLY = frozenset(("AuditEvent",))
CONSENT_SCOPE = "patient-privacy"
MAX_CONSENTS = 100_000
# The types a decision is made of: the store counts their writes (ResourceStore.watch).
WATCHED = ("Consent", "PractitionerRole", "CareTeam")
MEMO_ENTRIES = 20_000


def patient_compartment_types() -> frozenset[str]:
    return frozenset(execute.compartments()["Patient"])


def compartment(rtype: str, ids: list[str], id_field: str = "_id") -> dict:
    """Resources of `rtype` in the Patient compartment of any of `ids`."""
    if not ids:
        return d.FALSE
    ids = sorted(set(ids))
    member = {"$in": ids} if len(ids) > 1 else ids[0]
    alts = []
    if rtype == "Patient":
        alts.append({id_field: member})
    for code in execute.compartments()["Patient"].get(rtype, ()):
        if lookup(rtype, code) is not None:
            alts.append({f"idx.{code}": {"$elemMatch": {"t": "Patient", "i": member}}})
    return d.f_or(*alts)


def _boundaries(consents: dict[str, list[dict]]) -> list[datetime]:
    """Every instant at which a provision of these Consents starts or stops applying."""
    out = set()

    def walk(prov: dict) -> None:
        period = prov.get("period") or {}
        if period.get("start"):
            out.add(fhirtime.parse_range(period["start"])[0])
        if period.get("end"):
            out.add(fhirtime.parse_range(period["end"])[1])
        for child in prov.get("provision", []):
            walk(child)

    for group in consents.values():
        for c in group:
            walk(c.get("provision") or {})
    return sorted(out)


class Policy:
    def __init__(self, principal: Principal, reader, now: datetime | None = None, memo: dict | None = None):
        self.principal = principal
        self.reader = reader  # an unguarded reader: the policy's own look-ups see everything
        self.now = now or fhirtime.now()
        self.memo = memo  # the store's cross-request memo (ResourceStore.memo), or None
        self._cache: dict = {}
        self._consents: dict[str, list[dict]] | None = None
        self._actors: frozenset[str] | None = None
        self._generation: tuple | None = None

    # -- memo across requests, never stale ----------------------------------------------------
    def _remember(self, key, compute, window=None):
        """compute(), or its value from an earlier request when no watched type has been
        written since and now lies in the same `window()` - (since, until), the period
        boundaries around the instant it was computed (None: unbounded) - as then."""
        if self.memo is None:
            return compute()
        if self._generation is None:
            self._generation = self.reader.generations(WATCHED)
        hit = self.memo.get(key)
        if hit is not None and hit[0] == self._generation:
            since, until = hit[1]
            if (since is None or since <= self.now) and (until is None or self.now < until):
                return hit[2]
        value = compute()
        if len(self.memo) >= MEMO_ENTRIES:
            self.memo.clear()
        self.memo[key] = (self._generation, window() if window else (None, None), value)
        return value

    def _window(self) -> tuple[datetime | None, datetime | None]:
        """The period boundaries of the relevant Consents around now: (last <= now, first > now)."""
        bounds = self._remember(("bounds", self.actors()), lambda: _boundaries(self.consents()))
        since = next((b for b in reversed(bounds) if b <= self.now), None)
        until = next((b for b in bounds if b > self.now), None)
        return since, until

    @property
    def unrestricted(self) -> bool:
        return self.principal.unrestricted

    # -- scopes -------------------------------------------------------------------------------
    def scope_allows(self, rtype: str, perm: str) -> bool:
        return self.unrestricted or self.principal.scopes.allows(rtype, perm)

    def _scope_filter(self, rtype: str, id_field: str) -> dict:
        """OR of the read scopes covering rtype, each with its ?param restriction."""
        scopes = [s for s in self.principal.scopes.resource if s.covers(rtype, "r") or s.covers(rtype, "s")]
        alts = []
        for s in scopes:
            if not s.params:
                return d.TRUE
            parsed = parse(rtype, list(s.params))
            if parsed.unknown:
                continue  # a restriction the server cannot apply grants nothing
            flt = execute.filter_for(self.reader, rtype, parsed.criteria)
            alts.append(flt if id_field == "_id" else _rename_id(flt, id_field))
        return d.f_or(*alts)

    # -- who the actor is ---------------------------------------------------------------------------
    def actors(self) -> frozenset[str]:
        """References that name this principal in a Consent's provision.actor."""
        if self._actors is None:
            self._actors = self._remember(("actors", self.principal.fhir_user), self._find_actors)
        return self._actors

    def _find_actors(self) -> frozenset[str]:
        p = self.principal
        refs = {p.fhir_user} if p.fhir_user else set()
        if p.fhir_user and p.fhir_user.startswith("Practitioner/"):
            pid = p.fhir_user.split("/", 1)[1]
            for role in self.reader.search("PractitionerRole", {"idx.practitioner": {"$elemMatch": {"t": "Practitioner", "i": pid}}}, [("_id", 1)], 1000):
                refs.add(f"PractitionerRole/{role.id}")
                org = (role.resource().get("organization") or {}).get("reference")
                if org:
                    refs.add(org)
            for team in self.reader.search("CareTeam", {"idx.participant": {"$elemMatch": {"t": "Practitioner", "i": pid}}}, [("_id", 1)], 1000):
                refs.add(f"CareTeam/{team.id}")
        return frozenset(r for r in refs if r)

    def consents(self) -> dict[str, list[dict]]:
        """Active patient-privacy Consents that can have an opinion on this principal, by
        patient id: those whose root provision names one of its actors, or names no actor
        (it applies to everyone). A root naming only others never applies (decision.py), so
        leaving those out changes no decision - and the store's index on the R4 `actor`
        parameter (Consent.provision.actor, the root) finds the rest without a scan."""
        if self._consents is None:
            actors = self.actors()
            self._consents = self._remember(("consents", actors), lambda: self._find_consents(actors))
        return self._consents

    def _find_consents(self, actors: frozenset[str]) -> dict[str, list[dict]]:
        by_type: dict[str, list[str]] = {}
        for ref in actors:
            rtype, _, rid = ref.partition("/")
            by_type.setdefault(rtype, []).append(rid)
        mine = [{"idx.actor": {"$elemMatch": {"t": t, "i": {"$in": sorted(ids)}}}} for t, ids in sorted(by_type.items())]
        flt = {"idx.status.c": "active", "idx.scope.c": CONSENT_SCOPE, "$or": [*mine, {"idx.actor": {"$exists": False}}]}
        by_patient: dict[str, list[dict]] = {}
        for v in self.reader.search("Consent", flt, [("_id", 1)], MAX_CONSENTS):
            c = v.resource()
            ref = (c.get("patient") or {}).get("reference", "")
            if ref.startswith("Patient/"):
                by_patient.setdefault(ref.split("/", 1)[1], []).append(c)
        return by_patient

    def granted(self, rtype: str, action: str = "access", id_field: str = "_id") -> dict:
        """Resources of rtype that active Consents grant this principal for `action`."""
        actors = self.actors()
        if not actors:
            return d.FALSE
        # Shared across requests: filters are only ever composed (decision.f_and, f_or), never changed.
        return self._remember(("granted", actors, rtype, action, id_field),
                              lambda: self._compile_grants(actors, rtype, action, id_field), window=self._window)

    def _compile_grants(self, actors: frozenset[str], rtype: str, action: str, id_field: str) -> dict:
        groups: dict[str, tuple[dict, list[str]]] = {}
        for pid, consents in self.consents().items():
            perms, denies = [], []
            for c in consents:
                perm, denied = d.consent_grant(c, rtype, actors, action, self.now, id_field)
                perms.append(perm)
                denies.append(denied)
            allowed = d.f_and(d.f_or(*perms), d.f_not(d.f_or(*denies)))
            if allowed == d.FALSE:
                continue
            key = json.dumps(allowed, sort_keys=True, default=str)
            groups.setdefault(key, (allowed, []))[1].append(pid)
        return d.f_or(*(d.f_and(compartment(rtype, ids, id_field), allowed) for allowed, ids in groups.values()))

    def break_glass_patients(self) -> frozenset[str]:
        """Patients ("Patient/x") this principal reaches through an active emergency grant."""
        actors = self.actors()
        return self._remember(("break-glass", actors), lambda: self._find_break_glass(actors), window=self._window)

    def _find_break_glass(self, actors: frozenset[str]) -> frozenset[str]:
        out = set()
        for pid, consents in self.consents().items():
            for c in consents:
                labels = {(x.get("system"), x.get("code")) for x in (c.get("meta") or {}).get("security", [])}
                if ("http://terminology.hl7.org/CodeSystem/v3-ActReason", "BTG") in labels and d.applies(c.get("provision") or {}, actors, "access", self.now, root=True):
                    out.add(f"Patient/{pid}")
        return frozenset(out)

    # -- the filter ---------------------------------------------------------------------------------
    def filter(self, rtype: str, id_field: str = "_id") -> dict:
        """What of `rtype` this request may read (TRUE / FALSE / a filter fragment)."""
        key = (rtype, id_field)
        if key not in self._cache:
            self._cache[key] = self._compute(rtype, id_field)
        return self._cache[key]

    def _compute(self, rtype: str, id_field: str) -> dict:
        if self.unrestricted:
            return d.TRUE
        scoped = self._scope_filter(rtype, id_field)
        if scoped == d.FALSE:
            return d.FALSE
        p = self.principal
        clinical = rtype in patient_compartment_types()
        if rtype in DIRECTORY:
            base = d.TRUE
        elif not clinical:
            base = d.FALSE
        elif rtype in PATIENT_ONLY and p.kind != "patient":
            base = d.FALSE
        elif p.kind == "patient":
            own = p.patient or (p.fhir_user.split("/", 1)[1] if p.fhir_user and p.fhir_user.startswith("Patient/") else None)
            base = compartment(rtype, [own], id_field) if own else d.FALSE
        elif p.kind == "staff" and rtype in STAFF_TYPES:
            base = d.TRUE
        elif p.kind in ("practitioner", "system", "staff"):
            base = self.granted(rtype, "access", id_field)
        else:
            base = d.FALSE
        if base != d.FALSE and clinical and p.kind != "patient" and p.patient and self._patient_context_only():
            # patient/ scopes with a launch context: that patient only.
            base = d.f_and(base, compartment(rtype, [p.patient], id_field))
        return d.f_and(base, scoped)

    def _patient_context_only(self) -> bool:
        return all(s.context == "patient" for s in self.principal.scopes.resource)

    def types_visible(self, types) -> list[str]:
        return [t for t in types if self.filter(t) != d.FALSE]


def _rename_id(flt, id_field: str):
    if isinstance(flt, dict):
        return {(id_field if k == "_id" else k): _rename_id(v, id_field) for k, v in flt.items()}
    if isinstance(flt, list):
        return [_rename_id(x, id_field) for x in flt]
    return flt
