"""read and vread (R4 http.html 3.1.0.2, 3.1.0.3), with conditional read (If-None-Match, If-Modified-Since)."""

from __future__ import annotations

from .. import fhirtime
from ..errors import FHIRError
from .base import ETAG_RE, Ctx, Req, Resp


def read(ctx: Ctx, req: Req, rtype: str, rid: str) -> Resp:
    v = ctx.reader.read(rtype, rid)
    ref = f"{rtype}/{rid}"
    if v is None:
        raise FHIRError(404, "not-found", "not-found", ref=ref)
    if v.deleted:
        raise FHIRError(410, "deleted", "gone", ref=ref, headers={"ETag": v.etag})
    if _not_modified(req, v):
        return Resp(304, v)
    return Resp(200, v)


def vread(ctx: Ctx, req: Req, rtype: str, rid: str, vid: str) -> Resp:
    ref = f"{rtype}/{rid}"
    if not vid.isdigit():
        raise FHIRError(404, "not-found", "version-not-found", ref=ref, version=vid[:40])
    v = ctx.reader.vread(rtype, rid, int(vid))
    if v is None:
        if ctx.reader.read(rtype, rid) is None:
            raise FHIRError(404, "not-found", "not-found", ref=ref)
        raise FHIRError(404, "not-found", "version-not-found", ref=ref, version=vid)
    if v.deleted:
        raise FHIRError(410, "deleted", "version-gone", ref=ref, version=vid)
    if _not_modified(req, v):
        return Resp(304, v)
    return Resp(200, v)


def _not_modified(req: Req, v) -> bool:
    """RFC 9110 13.1.2 / 13.1.3: If-None-Match wins over If-Modified-Since."""
    inm = req.header("if-none-match")
    if inm is not None:
        tags = [t.strip() for t in inm.split(",")]
        if "*" in tags:
            return True
        for t in tags:
            m = ETAG_RE.match(t)
            if m and m.group(2) == str(v.version):
                return True
        return False
    ims = req.header("if-modified-since")
    if ims is not None:
        since = fhirtime.parse_http_date(ims)
        if since is None:
            return False  # RFC 9110: an invalid date is ignored
        return v.last_updated.replace(microsecond=0) <= since
    return False
