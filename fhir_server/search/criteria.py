"""Search criteria of conditional interactions compiled to MongoDB filters.

Conditional create / update / delete / patch and conditional references (R4 http.html
3.1.0.8, 3.1.0.9, 3.1.0.12; bundle.html 3.3.1.5.3) name their target with search
parameters, parsed and compiled exactly as a search. An ignored criterion could make
a conditional delete or update hit the wrong resource, so parameters the server does
not know, and result parameters (_sort, _count, ...), are refused, never skipped.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ..errors import FHIRError
from . import execute
from .query import parse


def parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def compile_criteria(reader, rtype: str, query: str) -> dict:
    params = [(k, v) for k, v in parse_query(query) if k not in ("_format", "_pretty")]
    if not params:
        raise FHIRError(400, "invalid", "conditional-empty")
    parsed = parse(rtype, params)
    refused = parsed.unknown + [k for k, _ in parsed.kept if k.split(":", 1)[0].startswith("_") and k.split(":", 1)[0] in _RESULT]
    if refused:
        raise FHIRError(400, "not-supported", "conditional-param", name=refused[0], supported="the search parameters of " + rtype)
    return execute.filter_for(reader, rtype, parsed.criteria)


_RESULT = ("_sort", "_count", "_total", "_summary", "_elements", "_include", "_revinclude", "_contained", "_containedType")
