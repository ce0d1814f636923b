"""Validation of a resource against a constraining StructureDefinition's differential.

What a differential element may say, and how each is checked (every miss is an Issue whose
`expression` is the element's FHIRPath in the instance, e.g. `Patient.identifier[0].value`):

    min / max                 how many values each parent holds          required / processing
    fixed[x] / pattern[x]     equality / "contains at least" (pattern)   processing
    type (targetProfile)      a Reference's target type; a choice's type processing
    slicing (value, pattern)  values sorted into slices by the discriminator (`system`, `$this`,
                              or a dotted path); slice min/max; `closed` rules   required / processing
    binding (required)        terminology.validate_code per code/Coding/CodeableConcept   code-invalid
    constraint                by `key`, in the rule table RULES below    invariant

Constraints are not FHIRPath-evaluated: the RU profiles' invariants are check digits and
alphabet rules that FHIRPath cannot state, so each key names a Python rule here (an unknown
key is ignored). Identifier systems count as equal when identifiers.py says they name the same
identifier (`urn:oid:1.2.643.100.3` and RuCore's `https://fhir.ru/ig/core/systems/snils`), both
for slice discriminators on `system` and for a fixed `system`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from fhir_server.errors import Issue
from fhir_server.i18n import MESSAGES

from . import identifiers

R4_BASE = "http://hl7.org/fhir/StructureDefinition/"


def _segments(element_id: str) -> list[tuple[str, str | None]]:
    """'Patient.identifier:snils.value' -> [('identifier', 'snils'), ('value', None)]."""
    out = []
    for part in element_id.split(".")[1:]:
        name, _, slice_name = part.partition(":")
        out.append((name, slice_name or None))
    return out


def _children(node, name: str, expr: str) -> list[tuple[object, str]]:
    if not isinstance(node, dict):
        return []
    if name.endswith("[x]"):
        stem = name[:-3]
        keys = [k for k in node if k.startswith(stem) and k[len(stem) : len(stem) + 1].isupper()]
    else:
        keys = [name] if name in node else []
    out = []
    for k in keys:
        v = node[k]
        if isinstance(v, list):
            out.extend((x, f"{expr}.{k}[{i}]") for i, x in enumerate(v))
        else:
            out.append((v, f"{expr}.{k}"))
    return out


def _at(node, path: str) -> list:
    """Values at a dotted path inside a node ('$this' is the node)."""
    nodes = [node]
    if path == "$this":
        return nodes
    for key in path.split("."):
        nodes = [c for n in nodes for c, _ in _children(n, key, "")]
    return nodes


def _fixed_of(element: dict) -> tuple[str, object] | None:
    for k, v in element.items():
        if k.startswith(("fixed", "pattern")):
            return ("fixed" if k.startswith("fixed") else "pattern"), v
    return None


def _is_identifier_system(path: str) -> bool:
    return path.endswith("identifier.system") or path == "Identifier.system"


def _equal(actual, wanted, path: str) -> bool:
    if isinstance(actual, str) and isinstance(wanted, str) and _is_identifier_system(path):
        return identifiers.same_system(actual, wanted)
    return actual == wanted


def _contains(actual, pattern, path: str) -> bool:
    """pattern[x]: every element of the pattern is in the value; a repeating element's pattern
    items each match some item of the value."""
    if isinstance(pattern, dict):
        return isinstance(actual, dict) and all(k in actual and _contains(actual[k], v, f"{path}.{k}") for k, v in pattern.items())
    if isinstance(pattern, list):
        items = actual if isinstance(actual, list) else [actual]
        return all(any(_contains(a, p, path) for a in items) for p in pattern)
    return _equal(actual, pattern, path)


def _reference_type(value: dict, resource: dict) -> str | None:
    ref = value.get("reference")
    if isinstance(ref, str):
        if ref.startswith("#"):
            for c in resource.get("contained") or []:
                if isinstance(c, dict) and c.get("id") == ref[1:]:
                    return c.get("resourceType")
            return None
        if ref.startswith("urn:"):
            return value.get("type") if isinstance(value.get("type"), str) else None
        parts = ref.split("?")[0].rstrip("/").split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) >= 2 and parts[-2][:1].isupper():
            return parts[-2]
    return value.get("type") if isinstance(value.get("type"), str) else None


def _show(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))[:200]


# -- constraint rules, by key ------------------------------------------------------------------
_CYRILLIC = re.compile(r"[А-ЯЁа-яё]+(?:[-'’ ][А-ЯЁа-яё]+)*")


def _identifier_rule(v, expr: str, run: _Run) -> None:
    """ru-identifier: an identifier of a system in identifiers.py has its format and check digits."""
    row = identifiers.of_identifier(v)
    if row is None or not isinstance(v.get("value"), str):
        return
    found = identifiers.problem(row.name, v["value"])
    if found is not None:
        run.add("invariant", found[0], f"{expr}.value", **found[1])


def _cyrillic_rule(v, expr: str, run: _Run) -> None:
    """ru-name-cyrillic: an official name (or one with no use) has a Cyrillic family name and given names."""
    if not isinstance(v, dict) or v.get("use") not in (None, "official"):
        return
    for part, p_expr in _children(v, "family", expr) + _children(v, "given", expr):
        if isinstance(part, str) and not _CYRILLIC.fullmatch(part):
            run.add("invariant", "profile-cyrillic", p_expr, path=p_expr, value=part[:60])


def _organization_identifier_rule(v, expr: str, run: _Run) -> None:
    """ru-organization-identifier: an OGRN, an FRMO OID or an NSI insurer code."""
    found = v.get("identifier") if isinstance(v, dict) else None
    for ident in found if isinstance(found, list) else []:
        row = identifiers.of_identifier(ident)
        if (row is not None and row.name in ("ogrn", "frmo")) or (isinstance(ident, dict) and ident.get("system") == identifiers.INSURERS):
            return
    run.add("invariant", "profile-org-identifier", f"{expr}.identifier" if isinstance(v, dict) and v.get("identifier") else expr,
            path=expr)


RULES: dict[str, Callable] = {
    "ru-identifier": _identifier_rule,
    "ru-name-cyrillic": _cyrillic_rule,
    "ru-organization-identifier": _organization_identifier_rule,
}


# -- the walk ------------------------------------------------------------------------------------
class _Run:
    def __init__(self, profile: Profile, resource: dict, reader):
        self.profile = profile
        self.resource = resource
        self.reader = reader
        self.issues: list[Issue] = []

    def add(self, issue_code: str, key: str, expression: str, severity: str = "error", /, **params) -> None:
        params.setdefault("profile", self.profile.url)
        self.issues.append(Issue(issue_code, key, expression, severity, params))


class Profile:
    """A StructureDefinition (derivation constraint) compiled from its differential."""

    def __init__(self, sd: dict):
        self.sd = sd
        self.url: str = sd["url"]
        self.type: str = sd["type"]
        self.elements: list[dict] = list((sd.get("differential") or {}).get("element") or [])
        self.by_id = {e.get("id") or e["path"]: e for e in self.elements}

    # the values an element id stands for, each with its FHIRPath
    def nodes(self, resource: dict, element_id: str) -> list[tuple[object, str]]:
        nodes: list[tuple[object, str]] = [(resource, self.type)]
        prefix = self.type
        for name, slice_name in _segments(element_id):
            sliced_id = f"{prefix}.{name}"
            nxt = []
            for node, expr in nodes:
                kids = _children(node, name, expr)
                if slice_name is not None:
                    kids = [k for k in kids if self.in_slice(sliced_id, slice_name, k[0])]
                nxt.extend(kids)
            nodes = nxt
            prefix = f"{sliced_id}:{slice_name}" if slice_name else sliced_id
        return nodes

    def in_slice(self, sliced_id: str, slice_name: str, value) -> bool:
        slicing = (self.by_id.get(sliced_id) or {}).get("slicing") or {}
        discriminators = slicing.get("discriminator") or []
        if not discriminators:
            return False
        for d in discriminators:
            path = d.get("path", "$this")
            target = self.by_id.get(f"{sliced_id}:{slice_name}" if path == "$this" else f"{sliced_id}:{slice_name}.{path}")
            fixed = _fixed_of(target or {})
            if fixed is None:
                return False
            kind, wanted = fixed
            where = (target or {}).get("path", sliced_id)
            test = _equal if kind == "fixed" and d.get("type") == "value" else _contains
            if not any(test(a, wanted, where) for a in _at(value, path)):
                return False
        return True

    def validate(self, resource: dict, reader=None) -> list[Issue]:
        run = _Run(self, resource, reader)
        if not isinstance(resource, dict) or resource.get("resourceType") != self.type:
            return run.issues
        for e in self.elements:
            self._element(run, e)
        return run.issues

    def _element(self, run: _Run, e: dict) -> None:
        eid = e.get("id") or e["path"]
        segs = _segments(eid)
        if segs:
            self._cardinality(run, e, eid, segs)
        values = self.nodes(run.resource, eid)
        fixed = _fixed_of(e)
        targets = [t for t in e.get("type") or [] if t.get("code") == "Reference" and t.get("targetProfile")]
        choice = {t.get("code") for t in e.get("type") or []} if e["path"].endswith("[x]") else None
        binding = e.get("binding") or {}
        for value, expr in values:
            if fixed is not None:
                kind, wanted = fixed
                ok = _equal(value, wanted, e["path"]) if kind == "fixed" else _contains(value, wanted, e["path"])
                if not ok:
                    run.add("processing", f"profile-{kind}", expr, path=expr, value=_show(wanted))
            if choice:
                key = expr.rsplit(".", 1)[-1].split("[")[0]  # valueQuantity
                suffix = key[len(e["path"].rsplit(".", 1)[-1]) - 3 :]  # Quantity
                if suffix not in {c[:1].upper() + c[1:] for c in choice if c}:
                    run.add("processing", "profile-type", expr, path=expr, allowed=", ".join(sorted(c for c in choice if c)), found=suffix)
            if targets and isinstance(value, dict):
                self._target(run, value, expr, targets)
            if binding.get("strength") == "required" and binding.get("valueSet"):
                self._binding(run, value, expr, binding["valueSet"])
            for c in e.get("constraint") or []:
                rule = RULES.get(c.get("key"))
                if rule is not None:
                    before = len(run.issues)
                    rule(value, expr, run)
                    if c.get("severity") == "warning":
                        for i in run.issues[before:]:
                            i.severity = "warning"
        if e.get("slicing", {}).get("rules") == "closed":
            names = [x["sliceName"] for x in self.elements if x.get("id", "").startswith(eid + ":") and x.get("sliceName")
                     and "." not in x["id"][len(eid) + 1 :]]
            for value, expr in values:
                if not any(self.in_slice(eid, n, value) for n in names):
                    run.add("processing", "profile-slice-closed", expr, path=expr, slices=", ".join(names))

    def _cardinality(self, run: _Run, e: dict, eid: str, segs) -> None:
        lo = e.get("min")
        hi = e.get("max")
        if not lo and hi in (None, "*"):
            return
        parent_id = eid.rsplit(".", 1)[0] if len(segs) > 1 else self.type
        name, slice_name = segs[-1]
        sliced_id = f"{parent_id}.{name}"
        for parent, p_expr in self.nodes(run.resource, parent_id) if len(segs) > 1 else [(run.resource, self.type)]:
            kids = _children(parent, name, p_expr)
            if slice_name is not None:
                kids = [k for k in kids if self.in_slice(sliced_id, slice_name, k[0])]
            n = len(kids)
            where = f"{p_expr}.{name}"
            extra = {"slice": slice_name} if slice_name else {}
            key = "profile-slice" if slice_name else "profile"
            if lo and n < lo:
                run.add("required", f"{key}-min", where, path=where, min=lo, count=n, **extra)
            if hi not in (None, "*") and n > int(hi):
                run.add("processing", f"{key}-max", where, path=where, max=hi, count=n, **extra)

    def _target(self, run: _Run, value: dict, expr: str, types: list[dict]) -> None:
        from . import profiles  # the registry knows the type of our own profiles

        allowed = set()
        for t in types:
            for tp in t["targetProfile"]:
                allowed.add(tp[len(R4_BASE) :] if tp.startswith(R4_BASE) else profiles.type_of(tp))
        found = _reference_type(value, run.resource)
        if found is not None and found not in allowed:
            run.add("processing", "profile-type", f"{expr}.reference" if "reference" in value else expr,
                    path=expr, allowed=", ".join(sorted(a for a in allowed if a)), found=found)

    def _binding(self, run: _Run, value, expr: str, valueset: str) -> None:
        if isinstance(value, str):
            checks = [(None, value, None, expr)]
        elif isinstance(value, dict) and "coding" in value:
            checks = [(c.get("system"), c.get("code"), c.get("display"), f"{expr}.coding[{i}]")
                      for i, c in enumerate(value.get("coding") or []) if isinstance(c, dict) and isinstance(c.get("code"), str)]
        elif isinstance(value, dict) and isinstance(value.get("code"), str):
            checks = [(value.get("system"), value["code"], value.get("display"), expr)]
        else:
            checks = []
        if not checks:
            run.add("code-invalid", "profile-binding-no-code", expr, path=expr, valueset=valueset)
            return
        verdicts = [(_validate_code(valueset, system, code, display, run.reader), system, code, where)
                    for system, code, display, where in checks]
        wrong_display = [x for x in verdicts if x[0].ok is False and getattr(x[0], "key", None) == DISPLAY_WRONG]
        for v, _, _, where in wrong_display:
            # the code is in the value set, its display is not the code system's: a warning (the binding holds)
            run.add("code-invalid", v.key, f"{where}.display", "warning", **dict(v.params))
        if any(v.ok for v, *_ in verdicts) or wrong_display:
            return
        if all(v.ok is None for v, *_ in verdicts):
            v, system, code, _ = verdicts[0]
            if getattr(v, "key", None) in MESSAGES:  # the terminology service says why it cannot tell
                run.add("processing", v.key, expr, "warning", **dict(v.params))
            else:
                run.add("processing", "profile-binding-unknown", expr, "warning", path=expr, valueset=valueset,
                        code=f"{system}|{code}" if system else code)
            return
        # a CodeableConcept is wrong once none of its codings is in the value set: report it at the concept
        _, system, code, where = next(x for x in verdicts if x[0].ok is False)
        run.add("code-invalid", "profile-binding", expr if len(checks) > 1 else where, path=expr, valueset=valueset,
                code=f"{system}|{code}" if system else code)


DISPLAY_WRONG = "tx-display-wrong"  # terminology's verdict key: the code is right, its display is not


class _Unknown:
    ok = None
    message = None
    display = None
    key = None
    params = ()


def _validate_code(valueset: str, system: str | None, code: str, display: str | None, reader):
    """terminology.validate_code (engineer A's service); `ok is None` when it cannot tell."""
    try:
        from terminology import validate_code
    except ImportError:
        return _Unknown()
    return validate_code(valueset=valueset, system=system, code=code, display=display, reader=reader)
