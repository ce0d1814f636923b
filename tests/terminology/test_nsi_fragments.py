"""The NSI fragments taken from public SEMD/MIS sources (terminology/data/SOURCES.md): FSLI biochemistry,
positions 1002, dental specialties 1066 — over HTTP; and that every packaged code of these fragments has its
source recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.terminology.test_operations import CANONICAL, FSLI, get_ok, params, parts, q

POSITIONS = "urn:oid:1.2.643.5.1.13.13.11.1002"
SPECIALTIES = "urn:oid:1.2.643.5.1.13.13.11.1066"
DATA = Path(__file__).resolve().parents[2] / "terminology" / "data"


def _validate(client, system, code, display=None):
    url = f"/fhir/CodeSystem/$validate-code?url={q(system)}&code={q(code)}"
    if display is not None:
        url += f"&display={q(display)}"
    return params(get_ok(client, url))


def test_fsli_serum_chemistry_codes_validate_and_translate_to_loinc(client):
    for code, display, loinc in (("1003870", "Глюкоза, молярная концентрация в сыворотке или плазме крови", "14749-6"),
                                 ("1006477", "Креатинин, молярная концентрация в сыворотке или плазме крови", "14682-9"),
                                 ("1007210", "Мочевина, молярная концентрация в сыворотке или плазме крови", "22664-7"),
                                 ("1002880", "Белок общий, массовая концентрация в сыворотке или плазме крови", "2885-2")):
        assert _validate(client, FSLI, code, display)["result"] == [True], code
        vs = params(get_ok(client, f"/fhir/ValueSet/$validate-code?url={q(CANONICAL + '/ValueSet/fsli')}&system={q(FSLI)}&code={code}"))
        assert vs["result"] == [True]
        out = params(get_ok(client, f"/fhir/ConceptMap/$translate?url={q(CANONICAL + '/ConceptMap/fsli-to-loinc')}"
                                    f"&system={q(FSLI)}&code={code}"))
        assert out["result"] == [True] and parts(out["match"][0])["concept"]["code"] == loinc
    # the wrong display of a real code is refused; a code whose source contradicts itself is not packaged
    assert _validate(client, FSLI, "1006477", "Мочевина, молярная концентрация в сыворотке или плазме крови")["result"] == [False]
    out = _validate(client, FSLI, "1003706")
    assert out["result"] == [False] and "fragment" in out["message"][0]


def test_fsli_mappings_added_by_definition_say_so():
    cm = json.loads((DATA / "ConceptMap-fsli-to-loinc.json").read_text(encoding="utf-8"))
    by_code = {e["code"]: e for e in cm["group"][0]["element"]}
    for code in ("1002880", "1003870", "1006477", "1007210"):
        assert "определению LOINC" in by_code[code]["target"][0]["comment"]


def test_positions_lookup_and_display_in_either_case(client):
    out = params(get_ok(client, f"/fhir/CodeSystem/$lookup?system={q(POSITIONS)}&code=109"))
    assert out["display"] == ["Врач-терапевт"]
    # SEMD of NSI 6.x spell positions in lower case, 9.x capitalise them: both are the display
    assert _validate(client, POSITIONS, "34", "врач-кардиолог")["result"] == [True]
    assert _validate(client, POSITIONS, "35", "Врач клинической лабораторной диагностики")["result"] == [True]
    assert _validate(client, POSITIONS, "34", "Врач-терапевт")["result"] == [False]
    # FRMR's own position codes without an NSI 1002 source stay out: not checkable, not refused
    out = _validate(client, POSITIONS, "110")
    assert out["result"] == [False] and "fragment" in out["message"][0]
    expanded = get_ok(client, f"/fhir/ValueSet/$expand?url={q(CANONICAL + '/ValueSet/positions')}&filter=врач-хирург")
    assert [c["code"] for c in expanded["expansion"]["contains"]] == ["122"]


def test_specialties_are_a_dental_fragment(client):
    cs = json.loads((DATA / "CodeSystem-specialties.json").read_text(encoding="utf-8"))
    assert cs["content"] == "fragment"
    assert _validate(client, SPECIALTIES, "171", "Стоматология общей практики")["result"] == [True]
    out = _validate(client, SPECIALTIES, "27")  # N3 samples use it, without a name: outside the fragment
    assert out["result"] == [False] and "fragment" in out["message"][0]
    from terminology import validate_code

    assert validate_code(valueset=f"{CANONICAL}/ValueSet/specialties", system=SPECIALTIES, code="27").ok is None


def test_every_code_of_the_sourced_fragments_is_in_sources_md():
    sources = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"(?<![\d.])(\d{2,7})(?![\d.])", sources)) | set(re.findall(r"\|\s*(\d{1,3})\s*\|", sources))
    for name in ("CodeSystem-fsli.json", "CodeSystem-positions.json", "CodeSystem-specialties.json"):
        cs = json.loads((DATA / name).read_text(encoding="utf-8"))
        assert "SOURCES.md" in cs["description"], name
        missing = [c["code"] for c in cs["concept"] if c["code"] not in listed]
        assert not missing, f"{name}: no source recorded for {missing}"
