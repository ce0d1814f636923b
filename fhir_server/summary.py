"""_summary and _elements on returned resources (R4 search.html 3.1.1.5.8, 3.1.1.5.9).

Subsetted resources carry the SUBSETTED tag so no client mistakes them for whole ones.
"""

from __future__ import annotations

from .errors import FHIRError
from .validation import structure

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
ALWAYS = ("resourceType", "id", "meta")
MODES = ("true", "text", "data", "false", "count")


def _tagged(out: dict) -> dict:
    meta = dict(out.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    meta["tag"] = [*tags, SUBSETTED]
    out["meta"] = meta
    return out


def _summary_of(node: dict, tname: str) -> dict:
    elems = structure().types.get(tname, {})
    out = {}
    for k, v in node.items():
        name = k[1:] if k.startswith("_") else k
        if k in ALWAYS:
            out[k] = v
            continue
        e = elems.get(name)
        if e is None or not e.summary:
            continue
        if "_" in e.type and e.kind is None:  # a backbone element: subset its children too
            out[k] = [_summary_of(x, e.type) for x in v] if isinstance(v, list) else _summary_of(v, e.type)
        else:
            out[k] = v
    return out


def _mandatory(rtype: str) -> tuple[str, ...]:
    return structure().required.get(rtype, ())


def apply(resource: dict, summary: str | None, elements: str | None) -> dict:
    rtype = resource.get("resourceType", "")
    if summary is not None and summary not in MODES:
        raise FHIRError(400, "invalid", "bad-param", name="_summary", value=summary[:40])
    if summary in ("true",):
        return _tagged(_summary_of(resource, rtype))
    if summary == "text":
        keep = {*ALWAYS, "text", *_mandatory(rtype)}
        return _tagged({k: v for k, v in resource.items() if k.lstrip("_") in keep})
    if summary == "data":
        return _tagged({k: v for k, v in resource.items() if k != "text"})
    if elements:
        wanted = set()
        for name in elements.split(","):
            name = name.strip()
            if name.startswith(rtype + "."):
                name = name[len(rtype) + 1 :]
            if name:
                wanted.add(name)
        keep = {*ALWAYS, *wanted, *_mandatory(rtype)}
        return _tagged({k: v for k, v in resource.items() if k.lstrip("_") in keep})
    return resource
