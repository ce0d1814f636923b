"""JSON encoding and decoding for FHIR bodies (orjson: fast, strict UTF-8)."""

from __future__ import annotations

import orjson

from .errors import FHIRError


def loads(raw: bytes):
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FHIRError(400, "invalid", "json-parse", detail=str(exc)) from None


def dumps(obj, pretty: bool = False) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2 if pretty else 0)


def repretty(raw: bytes) -> bytes:
    return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2)
