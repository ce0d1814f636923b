"""Write-time extraction of search values into a resource's stored `idx` part.

Tokens are stored as {s: system or None, c: code}; a query then compiles to an
indexed MongoDB match on `idx.<param>` instead of looking inside the resource.
"""

from __future__ import annotations


def _tokens_of_identifiers(values) -> list[dict]:
    out = []
    if not isinstance(values, list):
        values = [values]
    for ident in values:
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            out.append({"s": ident.get("system"), "c": ident["value"]})
    return out


def index_resource(resource: dict) -> dict:
    idx: dict = {}
    if "identifier" in resource:
        tokens = _tokens_of_identifiers(resource["identifier"])
        if tokens:
            idx["identifier"] = tokens
    return idx
