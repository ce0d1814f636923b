"""The FHIR R4 terminology operations over the engine (terminology/service.py):

    CodeSystem/$lookup          codesystem-operation-lookup.html
    CodeSystem/$validate-code   codesystem-operation-validate-code.html
    ValueSet/$validate-code     valueset-operation-validate-code.html
    ValueSet/$expand            valueset-operation-expand.html
    ConceptMap/$translate       conceptmap-operation-translate.html

Each takes the operation's input parameters (`Inputs`: from the URL of a GET, or a
Parameters body of a POST, or both), the request's store reader and, at instance level,
the resource the operation runs on, and returns the output resource (Parameters, or the
expanded ValueSet). A request the operation cannot run raises TerminologyError (status,
issue code, message key, the parameter name as expression).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from fhir_server import fhirtime
from fhir_server.search.index import fold

from . import service as tx
from .service import TerminologyError

_SYNONYM = {"system": "http://snomed.info/sct", "code": "900000000000013009", "display": "Synonym"}


# -- input parameters ------------------------------------------------------------------------------
# Input parameters that carry a resource, and its type.
RESOURCE_PARAMS = {"valueSet": "ValueSet", "codeSystem": "CodeSystem", "conceptMap": "ConceptMap"}

@dataclass
class Inputs:
    """Input parameters by name: each a list of values (str, or dict for Coding,
    CodeableConcept and resources)."""

    values: dict[str, list] = field(default_factory=dict)

    @classmethod
    def build(cls, query: list[tuple[str, str]], body) -> Inputs:
        out = cls()
        for name, value in query:
            if not name.startswith("_"):
                out.values.setdefault(name, []).append(value)
        if body is not None:
            if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
                raise TerminologyError(400, "invalid", "tx-parameters-body", None)
            for p in body.get("parameter") or ():
                name = p.get("name")
                value = p.get("resource")
                if value is None:
                    value = next((v for k, v in p.items() if k.startswith("value")), None)
                if name and value is not None:
                    out.values.setdefault(name, []).append(value)
        return out

    def one(self, name: str, kind: type = str):
        got = self.values.get(name) or []
        if len(got) > 1:
            raise TerminologyError(400, "invalid", "tx-param-repeated", name, name=name)
        if not got:
            return None
        value = got[0]
        if value == "":
            raise TerminologyError(400, "invalid", "tx-param-invalid", name, name=name, value="")
        if kind is dict and isinstance(value, str) and name == "coding":
            system, sep, code = value.partition("|")  # GET: coding=system|code
            value = {"system": system, "code": code} if sep else {"code": value}
        if not isinstance(value, kind):
            raise TerminologyError(400, "invalid", "tx-param-invalid", name, name=name, value=str(value)[:80])
        wanted = RESOURCE_PARAMS.get(name)
        if wanted and value.get("resourceType") != wanted:
            raise TerminologyError(400, "invalid", "tx-param-invalid", name, name=name, value=str(value.get("resourceType"))[:80])
        return value

    def all(self, name: str) -> list:
        return list(self.values.get(name) or [])

    def flag(self, name: str) -> bool:
        v = self.one(name, object)
        if v is None or isinstance(v, bool):
            return bool(v)
        if v in ("true", "false"):
            return v == "true"
        raise TerminologyError(400, "invalid", "tx-param-invalid", name, name=name, value=str(v)[:80])

    def count(self, name: str) -> int | None:
        v = self.one(name, object)
        if v is None:
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            n = v
        elif isinstance(v, str) and v.isdigit():
            n = int(v)
        else:
            raise TerminologyError(400, "invalid", "tx-param-invalid", name, name=name, value=str(v)[:80])
        return n


def _param(name: str, value) -> dict:
    if isinstance(value, bool):
        return {"name": name, "valueBoolean": value}
    return {"name": name, "valueString": value}


def _parameters(parts: list[dict]) -> dict:
    return {"resourceType": "Parameters", "parameter": parts}


def _codings(inputs: Inputs, default_system: str | None = None) -> list[tuple[str, dict]]:
    """The codings to check: (expression, {system, code, display, version}) from code/system,
    coding or codeableConcept (exactly one of them)."""
    code = inputs.one("code")
    coding = inputs.one("coding", dict)
    concept = inputs.one("codeableConcept", dict)
    given = [x for x in (code, coding, concept) if x is not None]
    if not given:
        raise TerminologyError(400, "required", "tx-param-one-of", "code", names="code, coding, codeableConcept")
    if len(given) > 1:
        raise TerminologyError(400, "invalid", "tx-param-one-of", "code", names="code, coding, codeableConcept")
    if code is not None:
        system = inputs.one("system") if default_system is None else default_system
        if system is None:  # "If a code is provided, a system must be provided"
            raise TerminologyError(400, "required", "tx-param-missing", "system", name="system")
        version = inputs.one("systemVersion") or inputs.one("version")
        return [("code", {"system": system, "code": code, "display": inputs.one("display"), "version": version})]
    if coding is not None:
        if not coding.get("code"):
            raise TerminologyError(400, "required", "tx-param-missing", "coding.code", name="coding.code")
        return [("coding", coding)]
    out = [(f"codeableConcept.coding[{i}]", c) for i, c in enumerate(concept.get("coding") or ()) if c.get("code")]
    if not out:
        raise TerminologyError(400, "required", "tx-param-missing", "codeableConcept.coding", name="codeableConcept.coding")
    return out


def _verdict_parameters(verdicts: list[tx.Verdict], lang: str) -> dict:
    """result/message/display: true when any coding is valid (R4: a CodeableConcept is
    valid when one of its codings is); "cannot check" is reported as false with its reason."""
    good = next((v for v in verdicts if v.ok), None)
    parts = [_param("result", good is not None)]
    chosen = good or verdicts[0]
    problems = [v for v in verdicts if not v.ok and v.key]
    if good is None and problems:
        parts.append(_param("message", "; ".join(v.text(lang) for v in problems)))
    if chosen.display:
        parts.append(_param("display", chosen.display))
    return _parameters(parts)


# -- CodeSystem --------------------------------------------------------------------------------------
def _code_system(inputs: Inputs, reader, instance: dict | None, url_param: str) -> tx.CodeSystemIndex:
    version = inputs.one("version")
    if instance is not None:
        return tx.code_system_of(instance)
    inline = inputs.one("codeSystem", dict)
    if inline is not None:
        return tx.code_system_of(inline)
    url = inputs.one(url_param)
    coding = inputs.one("coding", dict)
    if url is None and coding is not None:
        url, version = coding.get("system"), version or coding.get("version")
    if url is None:
        raise TerminologyError(400, "required", "tx-param-missing", url_param, name=url_param)
    cs = tx.code_system(url, version, reader)
    if cs is None:
        raise TerminologyError(404, "not-found", "tx-unknown-codesystem", url_param, url=f"{url}|{version}" if version else url)
    return cs


def lookup(inputs: Inputs, reader, instance: dict | None = None, lang: str = "en") -> dict:
    cs = _code_system(inputs, reader, instance, "system")
    coding = inputs.one("coding", dict)
    code = inputs.one("code") or (coding or {}).get("code")
    if code is None:
        raise TerminologyError(400, "required", "tx-param-missing", "code", name="code")
    c = cs.get(code)
    if c is None:
        raise TerminologyError(404, "not-found", "tx-code-not-found", "code", code=code, url=cs.url)
    wanted = set(inputs.all("property"))
    parts = [_param("name", cs.resource.get("title") or cs.name)]
    if cs.version:
        parts.append(_param("version", cs.version))
    if c.display:
        parts.append(_param("display", c.display))
    if c.definition and (not wanted or "definition" in wanted):
        parts.append(_param("definition", c.definition))
    if not wanted or "designation" in wanted:
        for d in c.designations:
            part = [{"name": "value", "valueString": d["value"]}]
            if d.get("language"):
                part.insert(0, {"name": "language", "valueCode": d["language"]})
            if d.get("use"):
                part.insert(-1, {"name": "use", "valueCoding": d["use"]})
            parts.append({"name": "designation", "part": part})
    props = [(p["code"], p) for p in c.properties]
    props += [("parent", {"code": "parent", "valueCode": p}) for p in c.parents]
    props += [("child", {"code": "child", "valueCode": ch}) for ch in c.children]
    for code_, p in props:
        if wanted and code_ not in wanted:
            continue
        value_key = next(k for k in p if k.startswith("value"))
        parts.append({"name": "property", "part": [{"name": "code", "valueCode": code_}, {"name": "value", value_key: p[value_key]}]})
    return _parameters(parts)


def validate_code_cs(inputs: Inputs, reader, instance: dict | None = None, lang: str = "en") -> dict:
    cs = _code_system(inputs, reader, instance, "url")
    verdicts = []
    for _where, coding in _codings(inputs, default_system=cs.url):
        if coding.get("system") not in (None, cs.url):
            verdicts.append(tx.verdict(False, "tx-code-not-in-vs", code=f"{coding.get('system')}|{coding['code']}", url=cs.url))
            continue
        verdicts.append(tx.check_in_code_system(cs, coding["code"], coding.get("display")))
    return _verdict_parameters(verdicts, lang)


# -- ValueSet ----------------------------------------------------------------------------------------
def _value_set(inputs: Inputs, reader, instance: dict | None) -> dict:
    if instance is not None:
        return instance
    inline = inputs.one("valueSet", dict)
    if inline is not None:
        return inline
    url = inputs.one("url")
    if url is None:
        raise TerminologyError(400, "required", "tx-param-one-of", "url", names="url, valueSet")
    version = inputs.one("valueSetVersion")
    vs = tx.value_set(url, version, reader)
    if vs is None:
        raise TerminologyError(404, "not-found", "tx-unknown-valueset", "url", url=f"{url}|{version}" if version else url)
    return vs


def validate_code_vs(inputs: Inputs, reader, instance: dict | None = None, lang: str = "en") -> dict:
    vs = _value_set(inputs, reader, instance)
    codings = _codings(inputs)
    for where, coding in codings:
        if coding.get("system") is None:
            raise TerminologyError(400, "required", "tx-param-missing", "system" if where == "code" else f"{where}.system", name="system")
    exp = tx.expand_resource(vs, reader)
    url = vs.get("url") or "ValueSet"
    verdicts = [tx.check_in_expansion(exp, url, c["system"], c["code"], c.get("display"), reader, c.get("version")) for _, c in codings]
    return _verdict_parameters(verdicts, lang)


def expand(inputs: Inputs, reader, instance: dict | None = None, lang: str = "en") -> dict:
    vs = _value_set(inputs, reader, instance)
    count, offset = inputs.count("count"), inputs.count("offset")
    text = inputs.one("filter")
    exp = tx.expand_resource(vs, reader)
    entries = exp.entries
    if text:
        needle = fold(text.strip())
        entries = [e for e, display, code in exp.folded() if needle in display or code.startswith(needle)]
    total = len(entries)
    start = offset or 0
    page = entries[start:] if count is None else entries[start : start + count]
    parameters = []
    if text:
        parameters.append({"name": "filter", "valueString": text})
    if count is not None:
        parameters.append({"name": "count", "valueInteger": count})
    if offset is not None:
        parameters.append({"name": "offset", "valueInteger": offset})
    parameters += [{"name": name, "valueUri": value} for name, value in exp.used]
    expansion = {"identifier": f"urn:uuid:{uuid.uuid4()}", "timestamp": fhirtime.format_instant(fhirtime.now()), "total": total}
    if offset is not None:
        expansion["offset"] = offset
    if parameters:
        expansion["parameter"] = parameters
    contains = []
    for e in page:
        item = {"system": e.system, "code": e.code}
        if e.version:
            item["version"] = e.version
        if e.display:
            item["display"] = e.display
        contains.append(item)
    if contains:
        expansion["contains"] = contains
    out = {k: v for k, v in vs.items() if k not in ("compose", "expansion", "text", "meta")}
    out.setdefault("status", "active")
    out["expansion"] = expansion
    return out


# -- ConceptMap --------------------------------------------------------------------------------------
def _all_maps(reader) -> list[dict]:
    found = {}
    for rtype, url in tx._packaged_by_url():
        if rtype == "ConceptMap":
            found[url] = tx.resolve("ConceptMap", url, None, reader)
    if reader is not None:
        for v in reader.search("ConceptMap", {}, [("_id", 1)], 1000):
            r = v.resource()
            if r.get("url") and r["url"] not in found:
                found[r["url"]] = tx.resolve("ConceptMap", r["url"], None, reader)
    return [m for m in found.values() if m is not None]


def translate(inputs: Inputs, reader, instance: dict | None = None, lang: str = "en") -> dict:
    reverse = inputs.flag("reverse")
    codings = _codings(inputs)
    source_vs, target_vs, target_system = inputs.one("source"), inputs.one("target"), inputs.one("targetsystem")
    if instance is not None:
        maps = [instance]
    elif inputs.one("conceptMap", dict) is not None:
        maps = [inputs.one("conceptMap", dict)]
    elif inputs.one("url") is not None:
        url = inputs.one("url")
        cm = tx.resolve("ConceptMap", url, inputs.one("conceptMapVersion"), reader)
        if cm is None:
            raise TerminologyError(404, "not-found", "tx-unknown-conceptmap", "url", url=url)
        maps = [cm]
    else:
        maps = _all_maps(reader)
    matches = []
    for cm in maps:
        src_uri = cm.get("targetUri" if reverse else "sourceUri") or cm.get("targetCanonical" if reverse else "sourceCanonical")
        tgt_uri = cm.get("sourceUri" if reverse else "targetUri") or cm.get("sourceCanonical" if reverse else "targetCanonical")
        if source_vs and src_uri and source_vs != src_uri:
            continue
        if target_vs and tgt_uri and target_vs != tgt_uri:
            continue
        for group in cm.get("group") or ():
            g_src, g_tgt = (group.get("target"), group.get("source")) if reverse else (group.get("source"), group.get("target"))
            if target_system and g_tgt != target_system:
                continue
            for _, coding in codings:
                if coding.get("system") not in (None, g_src):
                    continue
                matches.extend(_group_matches(cm, group, coding["code"], g_tgt, reverse))
    parts = [_param("result", any(m["equivalence"] not in ("unmatched", "disjoint") for m in matches))]
    if not matches:
        first = codings[0][1]
        parts.append(_param("message", tx.verdict(False, "tx-no-conceptmap", system=f"{first.get('system')}|{first['code']}", target=target_system or target_vs or "*").text(lang)))
    for m in matches:
        part = [{"name": "equivalence", "valueCode": m["equivalence"]}]
        if m.get("concept"):
            part.append({"name": "concept", "valueCoding": m["concept"]})
        part.append({"name": "source", "valueUri": m["source"]})
        parts.append({"name": "match", "part": part})
    return _parameters(parts)


_REVERSED = {"wider": "narrower", "narrower": "wider", "subsumes": "specializes", "specializes": "subsumes"}


def _group_matches(cm: dict, group: dict, code: str, target_system: str | None, reverse: bool) -> list[dict]:
    out = []
    for element in group.get("element") or ():
        for t in element.get("target") or ():
            if not reverse and element.get("code") == code:
                concept = {"system": target_system, "code": t["code"], **({"display": t["display"]} if t.get("display") else {})} if t.get("code") else None
                out.append({"equivalence": t.get("equivalence", "equivalent"), "concept": concept, "source": cm["url"]})
            elif reverse and t.get("code") == code:
                concept = {"system": target_system, "code": element["code"], **({"display": element["display"]} if element.get("display") else {})}
                eq = t.get("equivalence", "equivalent")
                out.append({"equivalence": _REVERSED.get(eq, eq), "concept": concept, "source": cm["url"]})
    return out


# (resource type, operation name) -> function; fhir_server/interactions/terminology.py routes them.
OPERATIONS = {
    ("CodeSystem", "lookup"): lookup,
    ("CodeSystem", "validate-code"): validate_code_cs,
    ("ValueSet", "validate-code"): validate_code_vs,
    ("ValueSet", "expand"): expand,
    ("ConceptMap", "translate"): translate,
}
