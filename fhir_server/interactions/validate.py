"""$validate at type and instance level (R4 operation-resource-validate.html).

The operation succeeds whenever it can run: 200 OK with an OperationOutcome that
lists every error found, or one informational issue when there are none.
`profile` may be the base StructureDefinition of the type or an RU profile
(profiles_ru/definitions); the resource is also checked against the profiles a write
would check (its known meta.profile entries; FHIR_ENFORCE_RU_PROFILES), and a declared
profile the server does not know gets an informational issue.
"""

from __future__ import annotations

from profiles_ru import profiles as ru_profiles

from ..errors import FHIRError, Issue, info_outcome, operation_outcome
from ..validation import validator
from .base import Ctx, Req, Resp
from .write import prepare

MODES = ("create", "update", "delete")


def _parameters(body) -> tuple[object, str | None, str | None]:
    """(resource, mode, profile) from a Parameters body, or the body itself as the resource."""
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        validator().validate(body, "Parameters")
        resource = mode = profile = None
        for p in body.get("parameter", []):
            name = p.get("name")
            if name == "resource":
                resource = p.get("resource")
            elif name == "mode":
                mode = p.get("valueCode") or p.get("valueString")
            elif name == "profile":
                profile = p.get("valueUri") or p.get("valueCanonical")
        return resource, mode, profile
    return body, None, None


def validate(ctx: Ctx, req: Req, rtype: str, rid: str | None = None) -> Resp:
    resource, mode, profile = _parameters(req.body)
    mode = req.param("mode") or mode
    profile = req.param("profile") or profile
    if mode is not None and mode not in MODES:
        raise FHIRError(400, "invalid", "validate-mode", value=mode[:40])
    if mode in ("update", "delete") and rid is None:
        raise FHIRError(400, "invalid", "validate-mode", value=mode)
    nominated = None
    if profile is not None and profile != f"http://hl7.org/fhir/StructureDefinition/{rtype}":
        nominated = ru_profiles.profile(profile, ctx.reader)
        if nominated is None or nominated.type != rtype:
            raise FHIRError(400, "not-supported", "validate-profile", value=profile[:200])
    if mode == "delete":
        v = ctx.reader.read(rtype, rid)
        if v is None or v.deleted:
            raise FHIRError(404, "not-found", "not-found", ref=f"{rtype}/{rid}")
        return Resp(200, body=info_outcome("delete-ok", ctx.lang, ref=f"{rtype}/{rid}"))
    issues: list[Issue] = []
    try:
        resource = prepare(rtype, resource, for_create=mode == "create", url_id=rid if mode == "update" else None)
    except FHIRError as err:
        if err.status >= 500:
            raise
        issues = list(err.issues)
    if isinstance(resource, dict) and resource.get("resourceType") == rtype:
        issues.extend(_profile_issues(ctx, resource, nominated))
    if not any(i.severity in ("error", "fatal", "warning") for i in issues):
        issues.append(Issue("informational", "valid", severity="information"))
    return Resp(200, body=operation_outcome(issues, ctx.lang))


def _profile_issues(ctx: Ctx, resource: dict, nominated) -> list[Issue]:
    """Every issue of the nominated profile and of those a write would check (write.check_profiles)."""
    profiles = ru_profiles.required_profiles(resource, ctx.settings.enforce_ru_profiles, ctx.reader)
    if nominated is not None and nominated not in profiles:
        profiles.insert(0, nominated)
    out = [i for p in profiles for i in p.validate(resource, ctx.reader)]
    rtype = resource["resourceType"]
    for i, url in enumerate(ru_profiles.declared(resource)):
        if ru_profiles.profile(url, ctx.reader) is None and url != f"http://hl7.org/fhir/StructureDefinition/{rtype}":
            out.append(Issue("informational", "profile-unknown", f"{rtype}.meta.profile[{i}]", "information", {"profile": url[:200]}))
    return out
