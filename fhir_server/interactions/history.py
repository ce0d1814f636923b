"""history at instance, type and system level (R4 http.html 3.1.0.10).

Newest first. Pages are cut with a keyset cursor (lastUpdated, version key), carried
opaquely in the `next` link, so a page never repeats or skips versions while new
versions are being written.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta
from urllib.parse import urlencode

import orjson

from .. import fhirtime
from ..errors import FHIRError
from .base import Ctx, Req, Resp

CURSOR = "_cursor"
_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "200 OK"}


def encode_cursor(ts: datetime, key: str) -> str:
    raw = orjson.dumps([fhirtime.format_instant(ts), key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        ts, key = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return datetime.fromisoformat(ts), str(key)
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
        raise FHIRError(400, "invalid", "bad-param", name=CURSOR, value=token[:60]) from None


def _floor_ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def _ceil_ms(t: datetime) -> datetime:
    floor = _floor_ms(t)
    return floor if floor == t else floor + timedelta(milliseconds=1)


def page_size(ctx: Ctx, req: Req) -> int:
    raw = req.param("_count")
    if raw is None:
        return ctx.settings.default_page_size
    if not raw.isdigit():
        raise FHIRError(400, "invalid", "bad-param", name="_count", value=raw[:40])
    return min(int(raw), ctx.settings.max_page_size)


def history(ctx: Ctx, req: Req, rtype: str | None = None, rid: str | None = None) -> Resp:
    count = page_size(ctx, req)
    since = at = after = None
    raw = req.param("_since")
    if raw is not None:
        rng = fhirtime.parse_range(raw)
        if rng is None:
            raise FHIRError(400, "invalid", "bad-param", name="_since", value=raw[:60])
        # Stored instants have millisecond precision (BSON dates) and a finer query value
        # would be truncated by the driver: round each bound to the equivalent millisecond.
        since = _ceil_ms(rng[0])
    raw = req.param("_at")
    if raw is not None:
        at = fhirtime.parse_range(raw)
        if at is None:
            raise FHIRError(400, "invalid", "bad-param", name="_at", value=raw[:60])
        at = (_floor_ms(at[0]), _ceil_ms(at[1]))  # versions superseded after low, written before high
    raw = req.param(CURSOR)
    if raw is not None:
        after = decode_cursor(raw)
    if rid is not None and ctx.reader.read(rtype, rid) is None:
        raise FHIRError(404, "not-found", "not-found", ref=f"{rtype}/{rid}")
    versions, total = ctx.reader.history(rtype, rid, since=since, at=at, count=count, after=after)

    path = "/".join(p for p in (rtype, rid, "_history") if p)
    kept = [(k, v) for k, v in req.params if k in ("_count", "_since", "_at")]
    links = [{"relation": "self", "url": _url(ctx, path, req.params)}]
    if count and len(versions) == count:
        last = versions[-1]
        nxt = encode_cursor(last.last_updated, f"{last.type}/{last.id}/{last.version}")
        links.append({"relation": "next", "url": _url(ctx, path, [*kept, (CURSOR, nxt)])})
    if after is not None:
        links.append({"relation": "first", "url": _url(ctx, path, kept)})
    entries = []
    for v in versions:
        entry: dict = {"fullUrl": f"{ctx.base}/{v.type}/{v.id}"}
        if not v.deleted:
            entry["resource"] = v.resource()
        method = v.method or "PUT"
        entry["request"] = {"method": method, "url": v.type if method == "POST" else f"{v.type}/{v.id}"}
        status = "201 Created" if method == "PUT" and v.version == 1 else _STATUS.get(method, "200 OK")
        entry["response"] = {"status": status, "etag": v.etag, "lastModified": fhirtime.format_instant(v.last_updated)}
        entries.append(entry)
    bundle = {
        "resourceType": "Bundle",
        "id": _bundle_id(),
        "meta": {"lastUpdated": fhirtime.format_instant(fhirtime.now())},
        "type": "history",
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return Resp(200, body=bundle, touched=versions)


def _url(ctx: Ctx, path: str, params) -> str:
    q = urlencode(list(params))
    return f"{ctx.base}/{path}" + (f"?{q}" if q else "")


def _bundle_id() -> str:
    import uuid

    return str(uuid.uuid4())
