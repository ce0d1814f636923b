"""Search criteria of conditional interactions compiled to MongoDB filters.

Conditional create / update / delete and conditional references (R4 http.html
3.1.0.8, 3.1.0.9, 3.1.0.12; bundle.html 3.3.1.5.3) name their target with search
parameters. An ignored criterion could make a conditional delete or update hit the
wrong resource, so unsupported parameters are refused, never skipped.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ..errors import FHIRError
from ..validation import structure

SUPPORTED = ("_id", "identifier")


def _split_unescaped(value: str, sep: str) -> list[str]:
    """Split on `sep` where it is not escaped by a backslash (search.html 3.1.1.1.1); escapes are kept."""
    parts, start, i = [], 0, 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == sep:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    parts.append(value[start:])
    return parts


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        out.append(value[i])
        i += 1
    return "".join(out)


def _split_token(value: str) -> tuple[str | None, str, bool]:
    """(system, code, has_bar) of an escaped token value."""
    parts = _split_unescaped(value, "|")
    if len(parts) == 1:
        return None, _unescape(value), False
    return _unescape(parts[0]), _unescape("|".join(parts[1:])), True


def parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def compile_criteria(rtype: str, query: str) -> dict:
    params = parse_query(query)
    if not params:
        raise FHIRError(400, "invalid", "conditional-empty")
    has_identifier = "identifier" in structure().types.get(rtype, {})
    clauses = []
    for name, raw in params:
        if name not in SUPPORTED or (name == "identifier" and not has_identifier):
            raise FHIRError(400, "not-supported", "conditional-param", name=name, supported=", ".join(SUPPORTED))
        if raw == "":
            raise FHIRError(400, "invalid", "bad-param", name=name, value=raw)
        values = _split_unescaped(raw, ",")
        if name == "_id":
            clauses.append({"_id": {"$in": [_unescape(v) for v in values]}})
            continue
        ors = []
        for v in values:
            system, code, has_bar = _split_token(v)
            if not has_bar:
                ors.append({"idx.identifier.c": code})
            elif system == "":
                ors.append({"idx.identifier": {"$elemMatch": {"s": None, "c": code}}})
            elif code == "":
                ors.append({"idx.identifier.s": system})
            else:
                ors.append({"idx.identifier": {"$elemMatch": {"s": system, "c": code}}})
        clauses.append(ors[0] if len(ors) == 1 else {"$or": ors})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
