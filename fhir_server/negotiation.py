"""Content negotiation (R4 http.html 3.1.0.1.6 - 3.1.0.1.7) and Prefer parsing.

JSON is the only format served. `_format` overrides Accept; XML and other types are
refused with 406; a fhirVersion other than 4.0 in a MIME parameter is refused too.
"""

from __future__ import annotations

from .errors import FHIRError

FHIR_JSON = "application/fhir+json"
JSON_TYPES = frozenset((FHIR_JSON, "application/json", "application/json+fhir", "text/json"))
FORMAT_ALIASES = {"json": FHIR_JSON, "application/fhir+json": FHIR_JSON, "application/json": "application/json", "application/json+fhir": FHIR_JSON, "text/json": FHIR_JSON}
WILDCARDS = frozenset(("*/*", "application/*", "text/*"))
PATCH_JSON = "application/json-patch+json"


def _split_mime(value: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in value.split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return parts[0].lower(), params


def _check_version(params: dict[str, str], value: str, status: int) -> None:
    version = params.get("fhirversion")
    if version is not None and not version.startswith("4.0"):
        raise FHIRError(status, "not-supported", "fhir-version", value=version[:20])


def response_type(accept: str | None, fmt: str | None) -> str:
    """The media type to answer with; 406 when only something else is acceptable."""
    if fmt is not None:
        mime, params = _split_mime(fmt)
        if mime not in FORMAT_ALIASES:
            raise FHIRError(406, "not-supported", "not-acceptable", value=fmt[:80])
        _check_version(params, fmt, 406)
        return FORMAT_ALIASES[mime]
    if not accept:
        return FHIR_JSON
    ranked = []
    for item in accept.split(","):
        if not item.strip():
            continue
        mime, params = _split_mime(item)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            ranked.append((q, mime, params))
    ranked.sort(key=lambda x: -x[0])
    for _, mime, params in ranked:
        if mime in JSON_TYPES:
            _check_version(params, mime, 406)
            return "application/json" if mime == "application/json" else FHIR_JSON
        if mime in WILDCARDS:
            return FHIR_JSON
    raise FHIRError(406, "not-supported", "not-acceptable", value=accept[:80])


def check_body_type(content_type: str | None, method: str) -> None:
    """415 unless the body is FHIR JSON (or JSON Patch for PATCH)."""
    mime, params = _split_mime(content_type or "")
    if method == "PATCH":
        if mime != PATCH_JSON:
            raise FHIRError(415, "not-supported", "patch-media-type", value=(content_type or "")[:80])
        return
    if mime not in JSON_TYPES:
        raise FHIRError(415, "not-supported", "unsupported-media-type", value=(content_type or "")[:80])
    _check_version(params, content_type, 415)


def prefer(header: str | None) -> dict[str, str]:
    """Prefer header tokens (RFC 7240): {'return': 'minimal', 'handling': 'strict', ...}."""
    out: dict[str, str] = {}
    if not header:
        return out
    for token in header.replace(";", ",").split(","):
        token = token.strip()
        if not token:
            continue
        k, _, v = token.partition("=")
        out[k.strip().lower()] = v.strip().strip('"')
    return out
