"""The HTTP edge of the FHIR API: Flask request in, router, Flask response out.

Everything HTTP-specific lives here: media types, body size, JSON parsing, Prefer,
_format/_pretty/_summary/_elements, headers, and turning every failure into an
OperationOutcome with the right status.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from urllib.parse import parse_qsl, urlencode

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from . import audit, jsonio, negotiation, summary
from consent.policy import Policy
from consent.principal import OPEN, Principal

from .errors import FHIRError
from .i18n import LANGUAGES
from .interactions.base import Ctx, Req, Resp, version_headers
from .router import route

log = logging.getLogger("fhir_server.rest")
bp = Blueprint("fhir", __name__)

_PASSED_HEADERS = ("if-match", "if-none-match", "if-none-exist", "if-modified-since", "prefer")
_STATUS_ERRORS = {404: ("not-found", "unknown-path"), 405: ("not-supported", "method-not-allowed")}


def _lang() -> str:
    best = request.accept_languages.best_match(LANGUAGES)
    return best or "en"


def _base_url() -> str:
    configured = current_app.config["FHIR_SETTINGS"].base_url
    if configured:
        return configured.rstrip("/")
    return request.host_url.rstrip("/") + request.script_root + bp_prefix()


def bp_prefix() -> str:
    return current_app.config.get("FHIR_PREFIX", "/fhir")


def _read_body():
    settings = current_app.config["FHIR_SETTINGS"]
    length = request.content_length
    if length is not None and length > settings.max_body_bytes:
        raise FHIRError(413, "too-costly", "body-too-large", limit=settings.max_body_bytes)
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise FHIRError(413, "too-costly", "body-too-large", limit=settings.max_body_bytes) from None
    if not raw:
        return None
    negotiation.check_body_type(request.headers.get("Content-Type"), request.method)
    return jsonio.loads(raw)


def _search_form() -> list[tuple[str, str]]:
    """The form body of POST _search (search.html 3.1.1: application/x-www-form-urlencoded)."""
    settings = current_app.config["FHIR_SETTINGS"]
    length = request.content_length
    if length is not None and length > settings.max_body_bytes:
        raise FHIRError(413, "too-costly", "body-too-large", limit=settings.max_body_bytes)
    ctype = (request.mimetype or "").lower()
    raw = request.get_data(cache=True)
    if not raw:
        return []
    if ctype != "application/x-www-form-urlencoded":
        raise FHIRError(415, "not-supported", "search-form", value=(request.headers.get("Content-Type") or "")[:80])
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise FHIRError(400, "invalid", "bad-param", name="_search", value="(not UTF-8)") from None


def _principal(path: str) -> Principal:
    """Who is asking. /metadata is open to all (SMART discovery); every other request is
    authenticated by the app's authenticator (fhir_server.auth: a bearer token, or OPEN
    when FHIR_AUTH=off)."""
    if path.strip("/") == "metadata":
        return OPEN
    authenticate = current_app.config["FHIR_AUTHENTICATOR"]
    return authenticate(request)


def _ctx(path: str) -> Ctx:
    app = current_app
    store = app.config["FHIR_STORE"]
    principal = _principal(path)
    g.fhir_principal = principal
    policy = Policy(principal, store.reader(), memo=store.memo)
    return Ctx(store, app.config["FHIR_SETTINGS"], _base_url(), g.fhir_lang, policy=policy)


@bp.before_request
def _negotiate():
    g.fhir_lang = _lang()
    g.fhir_mime = negotiation.response_type(request.headers.get("Accept"), request.args.get("_format"))


@bp.route("/", defaults={"path": ""}, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"], strict_slashes=False)
@bp.route("/<path:path>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
def fhir(path: str):
    params = list(request.args.items(multi=True))
    if request.method == "POST" and (path == "_search" or path.endswith("/_search")):
        params += _search_form()  # POST [base]/Type/_search: URL and form parameters together
        body = None
    else:
        body = _read_body() if request.method in ("POST", "PUT", "PATCH") else None
    headers = {h: request.headers[h] for h in _PASSED_HEADERS if h in request.headers}
    query = request.query_string.decode("utf-8", "replace")
    req = Req(request.method, path, query, params, headers, body)
    ctx = _ctx(path)
    try:
        resp = route(ctx, req)
    except FHIRError as err:
        _audit(ctx, req, err.status, None)
        raise
    _audit(ctx, req, resp.status, resp)
    return _respond(ctx, req, resp)


def _audit(ctx: Ctx, req: Req, status: int, resp: Resp | None) -> None:
    """The interaction's AuditEvents (one per patient touched), written before the response
    leaves; if they cannot be written the request fails (500)."""
    if req.path.strip("/") == "metadata":
        return  # the public capability statement is no access to anyone's data
    query = urlencode(req.params) if req.params else ""
    policy = ctx.policy
    btg_call = req.path.endswith("$break-glass") and status < 400
    emergency: set[str] | None = None
    for patients, refs in audit.per_patient(audit.touched(resp) if resp is not None else {}):
        btg = btg_call
        if not btg and patients and policy is not None and policy.principal.kind == "practitioner":
            if emergency is None:
                emergency = policy.break_glass_patients()
            btg = bool(patients & emergency)
        event = audit.build_event(
            g.fhir_principal, method=req.method, path=req.path, query=query, status=status,
            patients=patients, refs=refs, address=request.remote_addr, break_glass=btg,
        )
        audit.record(ctx.store, event)


def _respond(ctx: Ctx, req: Req, resp: Resp) -> Response:
    headers = dict(resp.headers)
    v = resp.version
    if v is not None:
        headers.update(version_headers(v, ctx.base))
        if resp.location:
            headers["Location"] = f"{ctx.base}/{v.type}/{v.id}/_history/{v.version}"
    if resp.status == 304:
        return _empty(304, {k: headers[k] for k in ("ETag", "Last-Modified") if k in headers})
    pretty = request.args.get("_pretty") == "true"
    payload = None  # bytes
    if resp.is_write:
        mode = negotiation.prefer(req.header("prefer")).get("return", "representation")
        if resp.body is not None:
            payload = jsonio.dumps(resp.body, pretty)
        elif mode == "minimal":
            payload = None
        elif mode == "OperationOutcome":
            payload = jsonio.dumps(resp.outcome, pretty) if resp.outcome else None
        elif v is not None and not v.deleted:
            payload = jsonio.repretty(v.raw) if pretty else v.raw
    elif resp.body is not None:
        payload = jsonio.dumps(_subset(resp.body), pretty)
    elif v is not None and not v.deleted:
        if request.args.get("_summary") or request.args.get("_elements"):
            payload = jsonio.dumps(_subset(v.resource()), pretty)
        else:
            payload = jsonio.repretty(v.raw) if pretty else v.raw
    mime = g.get("fhir_mime", negotiation.FHIR_JSON)
    if payload is None:
        return _empty(resp.status, headers)
    return Response(payload, status=resp.status, headers=headers, content_type=f"{mime};charset=utf-8")


def _empty(status: int, headers: dict) -> Response:
    """A response without a body: no Content-Type (Flask would claim text/html)."""
    out = Response(status=status, headers=headers)
    del out.headers["Content-Type"]
    return out


def _subset(resource: dict) -> dict:
    s, e = request.args.get("_summary"), request.args.get("_elements")
    if (s is None and e is None) or not isinstance(resource, dict) or "resourceType" not in resource:
        return resource
    if resource.get("resourceType") == "Bundle" and resource.get("type") in ("searchset", "history"):
        return resource  # a search applies _summary/_elements to its entries itself
    if resource.get("resourceType") in ("Bundle", "OperationOutcome", "CapabilityStatement") and s is None:
        return resource
    return summary.apply(resource, s, e)


# -- errors ------------------------------------------------------------------------
def error_response(err: FHIRError, lang: str | None = None) -> Response:
    lang = lang or g.get("fhir_lang") or _lang()
    pretty = request.args.get("_pretty") == "true"
    body = jsonio.dumps(err.outcome(lang), pretty)
    return Response(body, status=err.status, headers=err.headers, content_type=f"{negotiation.FHIR_JSON};charset=utf-8")


@bp.errorhandler(FHIRError)
def _fhir_error(err: FHIRError):
    return error_response(err)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return error_response(http_exception_to_fhir(exc))


def http_exception_to_fhir(exc: HTTPException) -> FHIRError:
    if isinstance(exc, RequestEntityTooLarge):
        return FHIRError(413, "too-costly", "body-too-large", limit=current_app.config["FHIR_SETTINGS"].max_body_bytes)
    code, key = _STATUS_ERRORS.get(exc.code, ("processing", "unknown-path"))
    return FHIRError(exc.code or 400, code, key, method=request.method, path=request.path)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    return error_response(internal_error(exc))


def internal_error(exc: Exception) -> FHIRError:
    """500 with a correlation id; logged by exception type and stack only - never the
    message or request data, which may carry personal data."""
    cid = request.headers.get("X-Request-Id") or str(uuid.uuid4())
    frames = "".join(traceback.format_tb(exc.__traceback__)[-8:])
    log.error("internal error cid=%s type=%s\n%s", cid, type(exc).__name__, frames)
    return FHIRError(500, "exception", "internal", cid=cid, headers={"X-Request-Id": cid})
