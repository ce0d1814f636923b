"""Generate resources/r4_structure.json from the official FHIR R4 (4.0.1) definitions.

The project's validator needs R4-exact facts that the pydantic models do not carry
(fhir.resources ships R4B): which elements exist, which are arrays, the JSON kind and
regex of every primitive, the complete code lists of required bindings, minimum
cardinality, `isSummary`, and reference target types. This script distils them from
`fhir.schema.json` and the base StructureDefinitions into one compact table that is
committed with the project (the inputs themselves are not).

Usage: python tools/gen_r4_tables.py [DEFINITIONS_DIR]
(default: ../shared/fixtures/r4-definitions relative to the repository root).
"""

from __future__ import annotations

import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "r4_structure.json"

# JSON kind of each R4 primitive (json.html: boolean, number or string).
KIND = {
    "boolean": "boolean",
    "integer": "integer",
    "positiveInt": "integer",
    "unsignedInt": "integer",
    "decimal": "decimal",
}


def _ref_name(prop: dict) -> str | None:
    ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
    return ref.rsplit("/", 1)[-1] if ref else None


def _inline_type(prop: str, spec: dict, defs: dict) -> str:
    """Type of a property the schema inlines instead of naming with $ref."""
    if spec.get("enum") or spec.get("items", {}).get("enum"):
        return "code"
    for prim, d in defs.items():
        if "properties" not in d and prim != "ResourceList" and prop.endswith(prim[0].upper() + prim[1:]):
            return prim
    raise SystemExit(f"{prop}: no type")


def build(defs_dir: pathlib.Path) -> dict:
    schema = json.loads((defs_dir / "fhir.schema.json").read_text())
    defs = schema["definitions"]
    resource_types = sorted(x["$ref"].rsplit("/", 1)[-1] for x in defs["ResourceList"]["oneOf"])

    primitives = {}
    types: dict[str, dict] = {}
    for name, d in defs.items():
        if name == "ResourceList":
            continue
        if "properties" not in d:
            primitives[name] = [KIND.get(name, "string"), d.get("pattern")]
            continue
        elements = {}
        for prop, spec in d["properties"].items():
            if prop.startswith("_") or prop == "resourceType":
                continue
            tname = _ref_name(spec)
            if tname == "ResourceList":
                tname = "Resource"
            if tname is None:
                tname = _inline_type(prop, spec, defs)
            is_array = spec.get("type") == "array"
            enum = spec.get("enum") or spec.get("items", {}).get("enum")
            # [type, isArray, min, isSummary, requiredCodes, referenceTargets]
            elements[prop] = [tname, 1 if is_array else 0, 0, 0, enum, None]
        types[name] = {"elements": elements}

    # Overlay min cardinality, isSummary and reference targets from StructureDefinitions,
    # navigating element paths through the schema's $ref chain (no name guessing).
    sd_files = list((defs_dir / "profiles-resources").glob("*.json"))
    bundle_types = json.loads((defs_dir / "profiles-types.json").read_text())
    sds = [json.loads(f.read_text()) for f in sd_files]
    sds += [e["resource"] for e in bundle_types.get("entry", []) if e["resource"]["resourceType"] == "StructureDefinition"]
    for sd in sds:
        if sd.get("derivation") == "constraint" or sd.get("kind") == "logical":
            continue
        root = sd["type"]
        if root not in types:
            continue
        path_to_def = {root: root}
        for el in sd["snapshot"]["element"]:
            path = el["path"]
            if "." not in path:
                continue
            parent, last = path.rsplit(".", 1)
            parent_def = path_to_def.get(parent)
            if parent_def is None:
                continue
            codes = [t["code"] for t in el.get("type", [])]
            if last.endswith("[x]"):
                base = last[:-3]
                props = [base + c[0].upper() + c[1:] for c in codes]
            else:
                props = [last]
            for prop, code in zip(props, codes if last.endswith("[x]") else [codes[0] if codes else None]):
                entry = types[parent_def]["elements"].get(prop)
                if entry is None:
                    continue
                if not last.endswith("[x]"):
                    entry[2] = int(el.get("min", 0))
                entry[3] = 1 if el.get("isSummary") else 0
                if code == "Reference":
                    tgts = []
                    for t in el.get("type", []):
                        if t["code"] == "Reference":
                            tgts += [p.rsplit("/", 1)[-1] for p in t.get("targetProfile", [])]
                    if tgts and "Resource" not in tgts:
                        entry[5] = sorted(set(tgts))
                path_to_def[path if not last.endswith("[x]") else f"{parent}.{prop}"] = entry[0]
    return {
        "fhirVersion": "4.0.1",
        "generatedFrom": "FHIR R4 fhir.schema.json and base StructureDefinitions",
        "resourceTypes": resource_types,
        "primitives": primitives,
        "types": types,
    }


def main() -> None:
    defs_dir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "fixtures" / "r4-definitions"
    table = build(defs_dir)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(table, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(table['types'])} types)")


if __name__ == "__main__":
    main()
