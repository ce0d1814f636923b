"""Generate resources/search_params.json from the official R4 (4.0.1) SearchParameters.

Each R4 SearchParameter carries a FHIRPath `expression`. The server needs something
simpler and exact: for every resource type and parameter, the concrete JSON element
paths whose values the parameter indexes, the FHIR datatype at the end of each path,
and the few filters R4 applies on the way (`.where(resolve() is Patient)`,
`.where(system='phone')`). This script translates the FHIRPath subset R4's own
definitions use into that table, resolving choice types (`value as Quantity` ->
`valueQuantity`) against the generated structure table (resources/r4_structure.json).

Expressions outside the subset (and `special` parameters) are left out and listed on
stdout, so the table never claims a parameter the server cannot evaluate exactly.

Usage: python tools/gen_search_params.py [DEFINITIONS_DIR]
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "search_params.json"
STRUCTURE = ROOT / "resources" / "r4_structure.json"

# Modifiers R4 defines per parameter type (search.html 3.1.1.5, table of modifiers) that
# this server implements. The terminology modifiers of tokens (TERMINOLOGY_MODIFIERS) go to
# the parameters that index codes (terminology/: value set expansion and code hierarchies).
MODIFIERS = {
    "string": ["missing", "exact", "contains"],
    "token": ["missing", "text", "not", "of-type"],
    "reference": ["missing", "identifier", "type"],
    "date": ["missing"],
    "number": ["missing"],
    "quantity": ["missing"],
    "uri": ["missing", "above", "below"],
    "composite": [],
}
TERMINOLOGY_MODIFIERS = ["in", "not-in", "below", "above"]
CODED = ("Coding", "CodeableConcept", "code")
PREFIXED = ("number", "date", "quantity")
ALL_PREFIXES = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]

# Datatypes each parameter type can index (search.html 3.1.1.4).
INDEXABLE = {
    "string": {"string", "markdown", "HumanName", "Address", "uri", "url", "code", "id"},
    "token": {"code", "boolean", "string", "uri", "url", "canonical", "id", "oid", "uuid", "Coding", "CodeableConcept", "Identifier", "ContactPoint"},
    "reference": {"Reference", "canonical", "uri", "url"},
    "date": {"date", "dateTime", "instant", "Period", "Timing"},
    "number": {"integer", "decimal", "positiveInt", "unsignedInt"},
    "quantity": {"Quantity", "Age", "Duration", "Money", "Count", "Distance", "SimpleQuantity"},
    "uri": {"uri", "url", "canonical", "oid", "uuid"},
}
# Hand translations of the few R4 expressions that are not paths.
OVERRIDES = {
    # "Patient.deceased.exists() and Patient.deceased != false": a boolean flag.
    ("Patient", "deceased"): [{"p": "deceasedBoolean", "t": "boolean"}, {"p": "deceasedDateTime", "t": "deceased-flag"}],
}
SKIP_CODES = {"_content", "_query", "_text", "_list", "_filter", "_has", "_type"}

_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<dot>\.)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?P<call>\((?P<arg>[^()]*(?:\([^()]*\)[^()]*)*)\))?)"
)


class Unsupported(Exception):
    pass


def split_union(expr: str) -> list[str]:
    out, depth, cur, quote = [], 0, [], False
    for ch in expr:
        if ch == "'":
            quote = not quote
        if not quote:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "|" and depth == 0:
                out.append("".join(cur).strip())
                cur = []
                continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return [x for x in out if x]


def strip_parens(s: str) -> str:
    s = s.strip()
    while s.startswith("(") and s.endswith(")"):
        depth = 0
        for i, ch in enumerate(s):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(s) - 1:
                return s
        s = s[1:-1].strip()
    return s


def _element_prefix(tname: str) -> str:
    """ElementDefinition id of a schema type name: Observation_Component -> Observation.component."""
    head, *rest = tname.split("_")
    return ".".join([head, *(r[:1].lower() + r[1:] for r in rest)])


def code_systems(defs_dir: pathlib.Path) -> dict[str, str]:
    """Element id -> the code system of a `code` element's required binding.

    A `code` carries no system in the instance, but it has one: the code system behind
    its required value set (R4 search.html 3.1.1.4.10, tokens). The value set -> code
    system link is read from the official CodeSystems (`CodeSystem.valueSet`) in the
    examples folder beside the definitions.
    """
    examples = defs_dir.parent / "r4-examples"
    vs_to_cs = {}
    for path in sorted(examples.glob("codesystem-*.json")):
        cs = json.loads(path.read_text())
        if cs.get("valueSet") and cs.get("url"):
            vs_to_cs[cs["valueSet"].split("|")[0]] = cs["url"]
    out = {}
    sources = [json.loads((defs_dir / "profiles-types.json").read_text())["entry"]]
    sources += [[{"resource": json.loads(p.read_text())}] for p in sorted((defs_dir / "profiles-resources").glob("*.json"))]
    for entries in sources:
        for e in entries:
            sd = e.get("resource", {})
            for el in (sd.get("snapshot") or {}).get("element", []):
                b = el.get("binding") or {}
                types = [t.get("code") for t in el.get("type", [])]
                if b.get("strength") == "required" and types == ["code"] and b.get("valueSet"):
                    system = vs_to_cs.get(b["valueSet"].split("|")[0])
                    if system:
                        out[el["id"]] = system
    return out


class Paths:
    """Resolves a FHIRPath step sequence against the structure table."""

    def __init__(self, structure: dict):
        self.types = structure["types"]
        self.resource_types = set(structure["resourceTypes"])

    def elements(self, tname: str) -> dict:
        return self.types.get(tname, {}).get("elements", {})

    def step(self, branches: list[dict], name: str) -> list[dict]:
        out = []
        for b in branches:
            elems = self.elements(b["t"])
            if name in elems:
                eid = f"{_element_prefix(b['t'])}.{name}"
                out.append({**b, "p": f"{b['p']}.{name}".lstrip("."), "t": elems[name][0], "choice": None, "eid": eid})
                continue
            choices = [k for k in elems if k.startswith(name) and k[len(name) : len(name) + 1].isupper()]
            for k in choices:
                out.append({**b, "p": f"{b['p']}.{k}".lstrip("."), "t": elems[k][0], "choice": name})
        if not out:
            raise Unsupported(f"no element {name}")
        return out

    @staticmethod
    def cast(branches: list[dict], tname: str) -> list[dict]:
        want = tname[0].upper() + tname[1:]
        out = [b for b in branches if b["t"] == tname or (b.get("choice") and b["p"].endswith(want))]
        if not out:
            raise Unsupported(f"no {tname} branch")
        return out

    def resolve(self, expr: str, root: str, context: list[dict] | None = None) -> list[dict]:
        """Branches {p, t, [ref], [w]} of one union member."""
        s = strip_parens(expr)
        m = re.fullmatch(r"\((.+)\)\s*\.(.+)", s)
        if m:  # "(X as T).text"
            inner = self.resolve(m.group(1), root, context)
            return self._walk(inner, m.group(2))
        m = re.fullmatch(r"(.+?)\s+as\s+([A-Za-z]+)", s)
        if m:
            return self.cast(self.resolve(m.group(1), root, context), m.group(2))
        if context is None:
            head, _, rest = s.partition(".")
            if head != root and not (head == "Resource" or head == "DomainResource"):
                raise Unsupported(f"root {head}")
            branches = [{"p": "", "t": root}]
            return self._walk(branches, rest) if rest else branches
        return self._walk(context, s)

    def _walk(self, branches: list[dict], rest: str) -> list[dict]:
        pos = 0
        rest = rest.strip()
        while pos < len(rest):
            m = _TOKEN.match(rest, pos)
            if not m or m.end() == pos:
                raise Unsupported(f"syntax at {rest[pos:]}")
            pos = m.end()
            if m.group("dot"):
                continue
            name, call, arg = m.group("name"), m.group("call"), m.group("arg")
            if name is None:
                raise Unsupported(f"syntax at {rest}")
            if call is None:
                branches = self.step(branches, name)
            elif name in ("as", "ofType"):
                branches = self.cast(branches, arg.strip())
            elif name == "where":
                branches = self.where(branches, arg.strip())
            else:
                raise Unsupported(f"function {name}")
        return branches

    @staticmethod
    def where(branches: list[dict], arg: str) -> list[dict]:
        m = re.fullmatch(r"resolve\(\)\s+is\s+([A-Za-z]+)", arg)
        if m:
            return [{**b, "ref": [m.group(1)]} for b in branches]
        m = re.fullmatch(r"([a-z]+)\s*=\s*'([^']*)'", arg)
        if m:
            # "wd": the filter applies to the values at this depth (the element the where() follows)
            return [{**b, "w": {m.group(1): m.group(2)}, "wd": len(b["p"].split(".")) if b["p"] else 0} for b in branches]
        raise Unsupported(f"where({arg})")


CODE_SYSTEMS: dict[str, str] = {}


def _clean(branch: dict, ptype: str) -> dict | None:
    if branch["t"] not in INDEXABLE[ptype] and branch["t"] != "deceased-flag":
        return None
    out = {"p": branch["p"], "t": branch["t"]}
    if ptype == "token" and branch["t"] == "code" and branch.get("eid") in CODE_SYSTEMS:
        out["sys"] = CODE_SYSTEMS[branch["eid"]]
    if branch.get("ref"):
        out["ref"] = branch["ref"]
    if branch.get("w"):
        out["w"] = branch["w"]
        if branch["wd"] != len(branch["p"].split(".")):
            out["wd"] = branch["wd"]
    return out


def build(defs_dir: pathlib.Path) -> tuple[dict, list[str]]:
    structure = json.loads(STRUCTURE.read_text())
    CODE_SYSTEMS.update(code_systems(defs_dir))
    paths = Paths(structure)
    resource_types = sorted(structure["resourceTypes"])
    bundle = json.loads((defs_dir / "search-parameters.json").read_text())
    defs = [e["resource"] for e in bundle["entry"]]
    by_url = {d["url"]: d for d in defs}
    table: dict[str, dict] = {}
    skipped: list[str] = []

    for d in defs:
        code, ptype = d["code"], d["type"]
        if code in SKIP_CODES or ptype == "special":
            skipped.append(f"{'/'.join(d['base'])}.{code}: {ptype} parameter not supported")
            continue
        bases = resource_types if d["base"] in (["Resource"], ["DomainResource"]) else d["base"]
        for base in bases:
            if base not in structure["resourceTypes"]:
                continue
            entry = {"type": ptype, "url": d["url"]}
            try:
                if code in ("_id", "_lastUpdated"):
                    entry["paths"] = []  # served from the stored document's own _id / ts
                elif (base, code) in OVERRIDES:
                    entry["paths"] = OVERRIDES[(base, code)]
                elif ptype == "composite":
                    entry.update(_composite(paths, d, base, by_url))
                else:
                    members = [m for m in split_union(d.get("expression") or "") if _member_of(m, base, d["base"])]
                    if not members:
                        raise Unsupported("no expression")
                    out = []
                    for m in members:
                        for b in paths.resolve(m, base):
                            c = _clean(b, ptype)
                            if c is not None and c not in out:
                                out.append(c)
                    if not out:
                        raise Unsupported("no indexable element")
                    entry["paths"] = out
            except Unsupported as exc:
                skipped.append(f"{base}.{code}: {exc} in {d.get('expression', '')[:120]}")
                continue
            if d.get("target"):
                entry["target"] = sorted(t for t in d["target"] if t in structure["resourceTypes"])
            entry["modifier"] = _modifiers(code, ptype, entry)
            if ptype in PREFIXED:
                entry["comparator"] = list(ALL_PREFIXES)
            table.setdefault(base, {})[code] = entry
    used = {e["url"] for params in table.values() for e in params.values()}
    definitions = {d["url"]: _definition(d, table) for d in defs if d["url"] in used}
    return {"fhirVersion": "4.0.1", "generatedFrom": "FHIR R4 search-parameters.json", "params": table, "definitions": definitions}, skipped


def _definition(d: dict, table: dict) -> dict:
    """The SearchParameter resource the server serves for a definition: the official one,
    trimmed to what a client needs, its `base` limited to the types the table covers."""
    keep = ("id", "url", "version", "name", "status", "experimental", "date", "publisher", "description", "code",
            "base", "type", "expression", "xpath", "xpathUsage", "target", "multipleOr", "multipleAnd", "comparator",
            "modifier", "chain", "component")
    out = {"resourceType": "SearchParameter", **{k: d[k] for k in keep if k in d}}
    out["base"] = [b for b in d["base"] if d["code"] in table.get(b, {}) and table[b][d["code"]]["url"] == d["url"]] or d["base"]
    return out


def _modifiers(code: str, ptype: str, entry: dict) -> list[str]:
    if code in ("_id", "_lastUpdated"):
        return []  # always present, never text: only plain values
    mods = list(MODIFIERS[ptype])
    if "of-type" in mods and not any(p["t"] == "Identifier" for p in entry["paths"]):
        mods.remove("of-type")
    if ptype == "token" and any(p["t"] in CODED for p in entry["paths"]):
        mods += TERMINOLOGY_MODIFIERS
    return mods


def _member_of(member: str, base: str, bases: list[str]) -> bool:
    head = strip_parens(member).lstrip("(").split(".", 1)[0].split(" ", 1)[0]
    return head == base or (head in ("Resource", "DomainResource") and bases in (["Resource"], ["DomainResource"]))


def _composite(paths: Paths, d: dict, base: str, by_url: dict) -> dict:
    """A composite: a context element and components evaluated within each instance of it."""
    members = [m for m in split_union(d["expression"]) if _member_of(m, base, d["base"])]
    contexts = [b for m in members for b in paths.resolve(m, base)]
    if not contexts or len({c["t"] for c in contexts}) != len(contexts):
        raise Unsupported("composite context")
    comps = []
    for c in d["component"]:
        sub = by_url.get(c["definition"])
        if sub is None:
            raise Unsupported(f"component {c['definition']}")
        per_context = []
        for ctx in contexts:
            branches = [b for m in split_union(c["expression"]) for b in paths.resolve(m, base, context=[{"p": "", "t": ctx["t"]}])]
            cleaned = [x for x in (_clean(b, sub["type"]) for b in branches) if x is not None]
            if not cleaned:
                raise Unsupported(f"component {c['expression']}")
            per_context.append(cleaned)
        comps.append({"code": sub["code"], "type": sub["type"], "paths": per_context})
    # components[i]["paths"][j]: the paths of component i inside context j.
    return {"contexts": [c["p"] for c in contexts], "components": comps, "paths": []}


def main() -> None:
    defs_dir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "fixtures" / "r4-definitions"
    table, skipped = build(defs_dir)
    OUT.write_text(json.dumps(table, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n")
    n = sum(len(v) for v in table["params"].values())
    print(f"wrote {OUT.relative_to(ROOT)}: {n} parameters over {len(table['params'])} types; skipped {len(skipped)}:")
    for s in skipped:
        print("  " + s)


if __name__ == "__main__":
    main()
