"""Patient/{id}/$bind-oms-policy: link a patient's OMS policy (ENP) to their card as a Coverage.

    POST [base]/Patient/{id}/$bind-oms-policy
    {"resourceType": "Parameters", "parameter": [{"name": "enp", "valueString": "5598718357093420"}]}

1. The ENP is checked first on its own: 16 digits (spaces and hyphens allowed), and the
   check digit (profiles_ru.identifiers) - 400 with a message saying which.
2. Two sources may confirm it:
   - the insurers' registry (a pluggable client, FHIR_OMS_REGISTRY) knows the number, for
     this person: family name, first name (and patronymic when both have one) and birth
     date as in the Patient resource;
   - Gosuslugi (ESIA): the patient themself asks, and the ENP is the one ESIA reported
     (a verified MDCL_PLCY document) at their account's last, confirmed sign-in
     (esia.linking). ESIA vouches that the number is this person's; the registry, when it
     knows the number, still gives the insurer and the period.
   Either way a policy the registry knows must be in force today. When neither confirms
   it, each mismatch is its own issue (422), the ESIA one included; nothing is written.
3. On success one Coverage per patient and policy type (status active, beneficiary the
   patient, identifier the ENP, payor the insurer, type OMS) is created (201) or updated
   (200) through the store's normal write path (validation, indexing, one atomic unit);
   the insurer's Organization is created the first time (conditional create on its
   registry code). Confirmed by ESIA, the Coverage's meta.source is ESIA's URL; not known
   to the registry, its payor is a display-only Reference (R4 Reference: at least one of
   reference, identifier, display).

Who may: the patient themself (a patient token for this Patient) or an admin. For anyone
else the consent layer decides, as for any write (staff may register policies; others
get 403/404).

A registry client is any object with `lookup(enp) -> PolicyRecord | None`; it raises
RegistryUnavailable when it cannot answer (503). `JsonRegistry` serves a file of
policies (seed/oms_policies.json in development).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
import json
import pathlib
from dataclasses import dataclass
from typing import Protocol

from profiles_ru import identifiers

from .. import fhirtime
from ..errors import FHIRError, Issue
from . import write
from .base import Ctx, Req, Resp

ENP = identifiers.SYSTEMS["enp"]
OMS_TYPE = {
    "coding": [
        {"system": identifiers.OMS_POLICY_TYPES, "code": "3", "display": "Полис ОМС единого образца"},
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PUBLICPOL", "display": "public healthcare"},
    ],
    "text": "ОМС",
}
INSURER_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type", "code": "ins", "display": "Insurance Company"}]}
NO_INSURER = "Страховая медицинская организация не указана в ЕСИА"  # payor display when only ESIA knows the policy
DEMO_FILE = pathlib.Path(__file__).resolve().parents[2] / "seed" / "oms_policies.json"


# -- the registry --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyRecord:
    enp: str
    family: str
    given: tuple[str, ...]  # first name, then patronymic
    birth_date: str  # YYYY-MM-DD
    insurer_name: str
    insurer_system: str
    insurer_code: str
    start: str | None = None  # YYYY-MM-DD
    end: str | None = None  # YYYY-MM-DD, inclusive; None = no end


class RegistryUnavailable(Exception):
    """The registry could not answer (network, timeout, maintenance)."""


class InsurersRegistry(Protocol):
    def lookup(self, enp: str) -> PolicyRecord | None: ...


class JsonRegistry:
    """Policies from a JSON file: {"insurers": {key: {"name", "system", "code"}}, "policies":
    [{"enp", "family", "given": [...], "birthDate", "start", "end", "insurer": key}]}."""

    def __init__(self, path: pathlib.Path):
        data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        insurers = data["insurers"]
        self._by_enp = {}
        for p in data["policies"]:
            ins = insurers[p["insurer"]]
            self._by_enp[p["enp"]] = PolicyRecord(
                enp=p["enp"], family=p["family"], given=tuple(p.get("given", ())), birth_date=p["birthDate"],
                insurer_name=ins["name"], insurer_system=ins.get("system", identifiers.INSURERS), insurer_code=ins["code"],
                start=p.get("start"), end=p.get("end"),
            )

    def lookup(self, enp: str) -> PolicyRecord | None:
        return self._by_enp.get(enp)


@functools.lru_cache(maxsize=32)
def _load(spec: str):
    if spec == "demo":
        return JsonRegistry(DEMO_FILE)
    if spec.endswith(".json"):
        return JsonRegistry(pathlib.Path(spec))
    module, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module), attr)
    return obj() if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "lookup")) else obj


def registry_for(settings) -> InsurersRegistry | None:
    spec = settings.oms_registry or ("demo" if settings.demo else None)
    return _load(spec) if spec else None


# -- the operation ---------------------------------------------------------------------------------
def _enp_param(req: Req) -> tuple[str, str]:
    """(expression of the value, the ENP as typed)."""
    body = write.prepare("Parameters", req.body)
    params = body.get("parameter") or []
    for i, p in enumerate(params):
        if p.get("name") == "enp":
            expr = f"Parameters.parameter[{i}].value[x]"
            if not isinstance(p.get("valueString"), str):
                raise FHIRError(400, "invalid", "enp-type", expression=expr)
            return expr, p["valueString"]
    raise FHIRError(400, "required", "enp-required", expression="Parameters.parameter")


def _fold(text) -> str:
    return " ".join(str(text or "").replace("ё", "е").replace("Ё", "Е").casefold().split())


def _official_name(patient: dict) -> dict:
    names = patient.get("name") or []
    return next((n for n in names if n.get("use") == "official"), names[0] if names else {})


def person_mismatches(record: PolicyRecord, patient: dict) -> list[tuple[str, str, dict]]:
    """(issue code, message key, params) of each way the registry's holder is not the patient."""
    out = []
    name = _official_name(patient)
    given = [_fold(g) for g in name.get("given") or []]
    wanted = [_fold(g) for g in record.given]
    same_given = bool(given) and bool(wanted) and given[0] == wanted[0] and (len(given) < 2 or len(wanted) < 2 or given[1] == wanted[1])
    if _fold(name.get("family")) != _fold(record.family) or not same_given:
        out.append(("business-rule", "enp-name-mismatch", {}))
    if patient.get("birthDate") != record.birth_date:
        out.append(("business-rule", "enp-birthdate-mismatch", {}))
    return out


def period_mismatches(record: PolicyRecord, today: dt.date) -> list[tuple[str, str, dict]]:
    """The registry's policy not in force today."""
    out = []
    if record.end and dt.date.fromisoformat(record.end) < today:
        out.append(("business-rule", "enp-expired", {"date": record.end}))
    if record.start and dt.date.fromisoformat(record.start) > today:
        out.append(("business-rule", "enp-not-started", {"date": record.start}))
    return out


def mismatches(record: PolicyRecord, patient: dict, today: dt.date) -> list[tuple[str, str, dict]]:
    """(issue code, message key, params) of each way the registry record does not fit."""
    return person_mismatches(record, patient) + period_mismatches(record, today)


def _coverage(pid: str, enp: str, record: PolicyRecord | None, insurer_id: str | None, source: str | None) -> dict:
    payor = {"reference": f"Organization/{insurer_id}", "display": record.insurer_name} if record is not None else {"display": NO_INSURER}
    cov = {
        "resourceType": "Coverage",
        "status": "active",
        "identifier": [{"system": ENP.system, "value": enp}],
        "type": OMS_TYPE,
        "beneficiary": {"reference": f"Patient/{pid}"},
        "payor": [payor],
    }
    if source:
        cov["meta"] = {"source": source}
    period = {k: v for k, v in (("start", record.start), ("end", record.end)) if v} if record is not None else {}
    if period:
        cov["period"] = period
    return cov


def _insurer(record: PolicyRecord) -> dict:
    return {
        "resourceType": "Organization",
        "active": True,
        "identifier": [{"system": record.insurer_system, "value": record.insurer_code}],
        "type": [INSURER_TYPE],
        "name": record.insurer_name,
    }


def _esia_policy(own: bool, principal) -> tuple[str, str] | None:
    """(ENP, ESIA's URL) ESIA reported for the asking patient's account, if any."""
    if not own:
        return None
    from ..esia import linking  # the sign-in side; imported late (it needs the auth server)

    return linking.reported_policy(principal.subject)


def bind_oms_policy(ctx: Ctx, req: Req, pid: str) -> Resp:
    expr, typed = _enp_param(req)
    problem = identifiers.check("enp", typed)
    if problem is not None:
        raise FHIRError(400, "invalid", f"enp-{problem}", expression=expr)
    enp = identifiers.normalize("enp", typed)
    version = ctx.reader.read("Patient", pid)  # what this request may see of the patient
    if version is None:
        raise FHIRError(404, "not-found", "not-found", ref=f"Patient/{pid}")
    if version.deleted:
        raise FHIRError(410, "deleted", "gone", ref=f"Patient/{pid}")
    p = ctx.policy.principal if ctx.policy is not None else None
    own = p is not None and p.kind == "patient" and pid in (p.patient, (p.fhir_user or "").removeprefix("Patient/"))
    esia = _esia_policy(own, p)
    by_esia = esia is not None and esia[0] == enp
    registry = registry_for(ctx.settings)
    if registry is None and esia is None:
        raise FHIRError(503, "transient", "oms-registry-unavailable")
    record = None
    if registry is not None:
        try:
            record = registry.lookup(enp)
        except RegistryUnavailable:
            raise FHIRError(503, "transient", "oms-registry-unavailable") from None
    today = fhirtime.now().date()
    if by_esia:  # the person is ESIA's word; a policy the registry knows must still be in force
        issues = period_mismatches(record, today) if record is not None else []
    else:
        issues = mismatches(record, version.resource(), today) if record is not None else []
        if record is None and registry is not None:
            issues.append(("not-found", "enp-unknown", {}))
        if esia is not None and (record is None or issues):
            issues.append(("business-rule", "enp-not-esia", {}))
    if issues:
        raise FHIRError(422, issues=[Issue(code, key, expr, params=params) for code, key, params in issues])

    # The patient's own, checked binding is written by the server for them (a patient may
    # not write Coverage or Organization resources directly); anyone else's write goes
    # through the consent layer like any other.
    server = dataclasses.replace(ctx, policy=None)
    writer = server if own else ctx
    criteria = f"beneficiary=Patient/{pid}&type={identifiers.OMS_POLICY_TYPES}|3"
    source = esia[1] if by_esia else None

    def bind(unit) -> Resp:
        existing = write.match(unit, "Coverage", criteria)
        if own:
            ctx.require("Coverage", "u" if existing is not None else "c")
        insurer_id = None
        if record is not None:  # the insurer's directory entry comes from the registry, not from the caller
            org = write.create(unit, server, "Organization", write.prepare("Organization", _insurer(record), for_create=True),
                               if_none_exist=f"identifier={record.insurer_system}|{record.insurer_code}")
            insurer_id = org.version.id
        coverage = write.prepare("Coverage", _coverage(pid, enp, record, insurer_id, source))
        if existing is not None:
            return write.update(unit, writer, "Coverage", existing.id, {**coverage, "id": existing.id})
        return write.create(unit, writer, "Coverage", coverage)

    if ctx.unit is not None:
        return bind(ctx.unit if writer.policy is None else ctx.guard(ctx.unit))
    return ctx.store.atomic(lambda u: bind(u if writer.policy is None else ctx.guard(u)))
