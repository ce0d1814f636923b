"""Reference rewriting for Bundles (R4 bundle.html 3.3.1.5.2 and 3.3.1.5.3).

Inside a transaction or batch, a resource may point at another entry by its
`urn:uuid:` fullUrl, or at a stored resource by a conditional reference such as
`Patient?identifier=sys|val`. Before storing, every such string is replaced by the
literal `Type/id` it identifies. Any element holding exactly a mapped fullUrl is
rewritten (Reference.reference, but also e.g. Attachment.url); conditional references
are only recognised in Reference.reference.
"""

from __future__ import annotations

from resources import registry

from ..errors import FHIRError
from ..search import compile_criteria
from ..validation import CONDITIONAL_REF


def resolve_references(reader, resource: dict, idmap: dict[str, str]) -> dict:
    """A copy of `resource` with mapped fullUrls and conditional references made literal."""
    cache: dict[str, str] = {}

    def conditional(ref: str) -> str:
        hit = cache.get(ref)
        if hit is not None:
            return hit
        m = CONDITIONAL_REF.match(ref)
        rtype = m.group(1)
        found = reader.find(rtype, compile_criteria(reader, rtype, m.group(2)), limit=2)
        if not found:
            raise FHIRError(404, "not-found", "unresolved-reference", value=ref[:200])
        if len(found) > 1:
            raise FHIRError(412, "multiple-matches", "ambiguous-reference", value=ref[:200])
        cache[ref] = out = f"{rtype}/{found[0].id}"
        return out

    def walk(node):
        if type(node) is dict:
            out = {}
            for k, v in node.items():
                if type(v) is str:
                    if v in idmap:
                        v = idmap[v]
                    elif k == "reference" and "?" in v:
                        m = CONDITIONAL_REF.match(v)
                        if m and registry.is_supported(m.group(1)):
                            v = conditional(v)
                    out[k] = v
                elif type(v) is dict or type(v) is list:
                    out[k] = walk(v)
                else:
                    out[k] = v
            return out
        if type(node) is list:
            return [walk(x) if type(x) is dict or type(x) is list else (idmap.get(x, x) if type(x) is str else x) for x in node]
        return node

    return walk(resource)
