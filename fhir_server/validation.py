"""Structural validation of FHIR R4 JSON resources.

Two passes over a resource, each doing what the other cannot:

1. An R4-exact JSON walk (R4 json.html) driven by the generated structure table:
   known elements only, arrays exactly where the element repeats, the right JSON kind
   for every primitive (no `"true"` for a boolean, no `"2"` for an integer), the R4
   regex of every primitive, no null / empty array / empty object, `_element` shapes,
   required elements, complete code lists of required bindings, reference format and
   target types, contained-reference resolution.
2. The fhir.resources (R4B) pydantic model: choice-type exclusivity, required
   elements and datatype rules the walk does not repeat.

Regexes run with re.ASCII: the spec's `\\s`/`\\S` are the ASCII classes, so Cyrillic
text and non-breaking spaces are ordinary characters, as in the Java reference tools.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from resources import registry

from .errors import FHIRError, Issue

INT32 = (-(2**31), 2**31 - 1)
RELATIVE_REF = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/([A-Za-z0-9\-.]{1,64}))?$")
ABSOLUTE_REF = re.compile(r"^(https?)://[^\s]+/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")
CONDITIONAL_REF = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$")
JSON_KIND_NAME = {bool: "boolean", int: "number", float: "number", str: "string", dict: "object", list: "array"}


@dataclass(slots=True, frozen=True)
class Element:
    type: str
    is_array: bool
    min: int
    summary: bool
    codes: frozenset | None
    targets: tuple | None
    kind: str | None  # JSON kind when primitive: boolean / integer / decimal / string
    regex: re.Pattern | None


class Structure:
    """The R4 structure table compiled for fast lookups."""

    def __init__(self, table: dict):
        prims = table["primitives"]
        self.resource_types = frozenset(table["resourceTypes"])
        self.types: dict[str, dict[str, Element]] = {}
        self.required: dict[str, tuple[str, ...]] = {}
        regex_cache: dict[str, re.Pattern] = {}
        for tname, tdef in table["types"].items():
            elems = {}
            required = []
            for name, (etype, is_array, emin, summary, codes, targets) in tdef["elements"].items():
                kind = regex = None
                if etype in prims:
                    kind, pattern = prims[etype]
                    if pattern and kind == "string":
                        regex = regex_cache.get(pattern)
                        if regex is None:
                            regex = regex_cache[pattern] = re.compile(pattern, re.ASCII)
                elems[name] = Element(
                    etype,
                    bool(is_array),
                    emin,
                    bool(summary),
                    frozenset(codes) if codes else None,
                    tuple(targets) if targets else None,
                    kind,
                    regex,
                )
                if emin > 0:
                    required.append(name)
            self.types[tname] = elems
            self.required[tname] = tuple(required)
        # The only R4 element named `resourceType` that is not a resource's own type tag:
        # ExampleScenario.instance.resourceType, code 1..1, required binding to the
        # resource types. The table generator drops every `resourceType` property, so it
        # is restored here (otherwise the spec's own examplescenario-example is refused).
        instance = self.types.get("ExampleScenario_Instance")
        if instance is not None and "resourceType" not in instance:
            instance["resourceType"] = Element(
                "code", False, 1, False, self.resource_types, None, prims["code"][0], re.compile(prims["code"][1], re.ASCII)
            )
            self.required["ExampleScenario_Instance"] += ("resourceType",)


_STRUCTURE: Structure | None = None


def structure() -> Structure:
    global _STRUCTURE
    if _STRUCTURE is None:
        _STRUCTURE = Structure(registry.structure())
    return _STRUCTURE


class _Walk:
    __slots__ = ("s", "issues", "contained_ids", "allow_conditional")

    def __init__(self, s: Structure, allow_conditional: bool):
        self.s = s
        self.issues: list[Issue] = []
        self.contained_ids: set[str] = set()
        self.allow_conditional = allow_conditional

    def add(self, code: str, key: str, path: str, **params):
        self.issues.append(Issue(code, key, path, params=params))

    # -- resources ---------------------------------------------------------------
    def resource(self, obj, path: str, expected: str | None = None, top: bool = False):
        if type(obj) is not dict:
            self.add("structure", "expected-object", path, type=expected or "Resource")
            return
        rtype = obj.get("resourceType")
        if not isinstance(rtype, str):
            self.add("required", "resource-type-missing", path)
            return
        if expected and rtype != expected:
            self.add("invalid", "resource-type-mismatch", path + ".resourceType", expected=expected)
            return
        if not registry.is_supported(rtype):
            self.add("not-supported", "unknown-type", path + ".resourceType", type=rtype)
            return
        if top:
            contained = obj.get("contained")
            if type(contained) is list:
                self.contained_ids = {c["id"] for c in contained if type(c) is dict and isinstance(c.get("id"), str)}
        self.complex(obj, rtype, path)

    # -- complex types -----------------------------------------------------------
    def complex(self, obj, tname: str, path: str):
        if type(obj) is not dict:
            self.add("structure", "expected-object", path, type=tname)
            return
        if not obj:
            self.add("structure", "empty-object", path)
            return
        elems = self.s.types[tname]
        for key, val in obj.items():
            if key == "resourceType" and tname in self.s.resource_types:
                continue
            if key[:1] == "_":
                self.primitive_extension(obj, key, val, elems, path)
                continue
            e = elems.get(key)
            if e is None:
                self.add("structure", "unknown-element", f"{path}.{key}", name=key)
                continue
            if val is None:
                self.add("structure", "null-value", f"{path}.{key}")
                continue
            if e.is_array:
                if type(val) is not list:
                    self.add("structure", "expected-array", f"{path}.{key}")
                    continue
                if not val:
                    self.add("structure", "empty-array", f"{path}.{key}")
                    continue
                ext = obj.get("_" + key) if e.kind else None
                for i, item in enumerate(val):
                    if item is None:
                        if not (type(ext) is list and i < len(ext) and ext[i] is not None):
                            self.add("structure", "null-value", f"{path}.{key}[{i}]")
                        continue
                    self.value(item, e, f"{path}.{key}[{i}]")
            else:
                if type(val) is list:
                    self.add("structure", "expected-single", f"{path}.{key}")
                    continue
                self.value(val, e, f"{path}.{key}")
        for name in self.s.required[tname]:
            if name not in obj and ("_" + name) not in obj:
                self.add("required", "required", f"{path}.{name}")
        if tname == "Reference":
            self.reference(obj, path)

    def primitive_extension(self, obj, key, val, elems, path):
        name = key[1:]
        e = elems.get(name)
        p = f"{path}.{key}"
        if e is None:
            self.add("structure", "unknown-element", p, name=key)
            return
        if e.kind is None:
            self.add("structure", "primitive-ext-only", p, name=name)
            return
        if e.is_array:
            base = obj.get(name)
            if type(val) is not list:
                self.add("structure", "expected-array", p)
                return
            if base is not None and (type(base) is not list or len(base) != len(val)):
                self.add("structure", "extension-array", p, name=name)
                return
            if all(v is None for v in val):
                self.add("structure", "null-value", p)
            for i, item in enumerate(val):
                if item is not None:
                    self.complex(item, "Element", f"{p}[{i}]")
        else:
            if val is None:
                self.add("structure", "null-value", p)
                return
            self.complex(val, "Element", p)

    # -- values ------------------------------------------------------------------
    def value(self, v, e: Element, path: str):
        kind = e.kind
        if kind is None:
            if e.type == "Resource":
                self.resource(v, path)
            else:
                self.complex(v, e.type, path)
            return
        tv = type(v)
        if kind == "string":
            if tv is not str:
                self.add("structure", "expected-kind", path, kind="string", type=e.type, got=JSON_KIND_NAME.get(tv, "value"))
                return
            if e.regex is not None and e.regex.match(v) is None:
                self.add("value", "bad-format", path, value=v[:100], type=e.type)
                return
            if not v:
                self.add("value", "bad-format", path, value=v, type=e.type)
                return
        elif kind == "boolean":
            if tv is not bool:
                self.add("structure", "expected-kind", path, kind="boolean", type=e.type, got=JSON_KIND_NAME.get(tv, "value"))
            return
        elif kind == "integer":
            if tv is not int:
                self.add("structure", "expected-kind", path, kind="integer", type=e.type, got=JSON_KIND_NAME.get(tv, "value"))
                return
            lo = 1 if e.type == "positiveInt" else 0 if e.type == "unsignedInt" else INT32[0]
            if v < lo or v > INT32[1]:
                self.add("value", "out-of-range", path, value=v, type=e.type)
            return
        else:  # decimal
            if tv is not int and tv is not float:
                self.add("structure", "expected-kind", path, kind="number", type=e.type, got=JSON_KIND_NAME.get(tv, "value"))
            return
        if e.codes is not None and v not in e.codes:
            self.add("code-invalid", "bad-code", path, value=v[:100], allowed=", ".join(sorted(e.codes)[:12]))

    def reference(self, obj: dict, path: str):
        ref = obj.get("reference")
        if not isinstance(ref, str):
            return
        p = path + ".reference"
        if ref.startswith("#"):
            if len(ref) > 1 and ref[1:] not in self.contained_ids:
                self.add("invalid", "contained-missing", p, value=ref)
            return
        if ref.startswith("urn:uuid:") or ref.startswith("urn:oid:"):
            return
        m = RELATIVE_REF.match(ref) or ABSOLUTE_REF.match(ref)
        if m is None:
            cond = CONDITIONAL_REF.match(ref)
            if cond and cond.group(1) in self.s.resource_types:
                if not self.allow_conditional:
                    self.add("invalid", "conditional-reference-outside", p, value=ref)
                return
            if ref.startswith(("http://", "https://")):
                return  # an absolute URL that is not a FHIR RESTful address: legal
            self.add("invalid", "bad-reference", p, value=ref[:100])
            return
        target = m.group(1) if m.re is RELATIVE_REF else m.group(2)
        if target not in self.s.resource_types:
            if m.re is RELATIVE_REF:
                self.add("invalid", "bad-reference", p, value=ref[:100])
            return
        allowed = self.targets_for(path)
        if allowed and target not in allowed:
            self.add("invalid", "reference-target", p, target=target, allowed=", ".join(allowed))

    def targets_for(self, path: str):
        return self._targets.get(path) if hasattr(self, "_targets") else None


def _model_issues(exc: ValidationError, root: str) -> list[Issue]:
    issues = []
    for err in exc.errors():
        parts = [root]
        for loc in err["loc"]:
            if isinstance(loc, int):
                parts[-1] += f"[{loc}]"
            elif loc in ("resource_type", "__root__"):
                continue
            else:
                name = str(loc)
                if name.endswith("__ext"):
                    name = "_" + name[:-5]
                parts.append(name)
        msg = err.get("msg", "invalid")
        issues.append(Issue("invalid", "model", ".".join(parts), params={"text": msg}))
    return issues


class Validator:
    """Validates a resource; raises FHIRError(400) listing every issue found."""

    def __init__(self):
        self.s = structure()

    def issues(self, resource, expected_type: str | None = None, allow_conditional: bool = False) -> list[Issue]:
        root = expected_type or (resource.get("resourceType") if isinstance(resource, dict) else None) or "Resource"
        walk = _TargetedWalk(self.s, allow_conditional)
        walk.resource(resource, root if isinstance(root, str) else "Resource", expected_type, top=True)
        if walk.issues:
            return walk.issues
        model = registry.model_class(resource["resourceType"])
        try:
            model.model_validate(resource)
        except ValidationError as exc:
            return _model_issues(exc, resource["resourceType"])
        except (ValueError, TypeError) as exc:  # model-level validators outside pydantic's error type
            return [Issue("invalid", "model", resource["resourceType"], params={"text": str(exc)[:300]})]
        return []

    def validate(self, resource, expected_type: str | None = None, allow_conditional: bool = False) -> None:
        issues = self.issues(resource, expected_type, allow_conditional)
        if issues:
            raise FHIRError(400, issues=issues)


class _TargetedWalk(_Walk):
    """The walk, with reference-target checks keyed by the element being walked."""

    __slots__ = ("_current",)

    def __init__(self, s, allow_conditional):
        super().__init__(s, allow_conditional)
        self._current: Element | None = None

    def value(self, v, e, path):
        if e.type == "Reference":
            prev, self._current = self._current, e
            try:
                super().value(v, e, path)
            finally:
                self._current = prev
        else:
            super().value(v, e, path)

    def targets_for(self, path):
        return self._current.targets if self._current is not None else None


_VALIDATOR: Validator | None = None


def validator() -> Validator:
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = Validator()
    return _VALIDATOR
