#!/usr/bin/env python3
"""Terminology benchmark (not a test): what the NSI terminology service costs.

1. Start: create_app with FHIR_LOAD_DEFINITIONS off and on (the first start writes the packaged
   resources; a second start against the same store finds them and writes nothing).
2. The engine alone, packaged content (no store reader): `terminology.validate_code` against the
   МКБ-10 value set, and the whole МКБ-10 expansion cold (compiled) and warm (cached).
3. Over HTTP, the embedded store with the packaged resources loaded, FHIR_AUTH=off (the REST core,
   not consent): $lookup, ValueSet/$validate-code, $expand with a filter and a page, $translate,
   and searches with :below and :in over C Conditions (default 2000) with МКБ-10 codes.
   Median and p95 per request over N requests each (default 200), after 20 warm-up requests.

    .venv/bin/python bench/bench_terminology.py [--requests 200] [--conditions 2000]

Figures go to stdout and to BENCHMARKS.md between the `bench_terminology` markers.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
import uuid
from urllib.parse import quote

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson
import report

from profiles_ru import CANONICAL

ICD10 = "urn:oid:1.2.643.5.1.13.13.11.1005"
CODES = ("E11.9", "I10", "I11.9", "J06.9", "J18.9", "K29.7", "M54.5", "N39.0", "I25.1", "E78.0", "J45.9", "E03.9")


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return sorted(out)


def _settings(**kw):
    from fhir_server.settings import Settings

    return Settings(db_name=f"bench_{uuid.uuid4().hex[:8]}", auth="off", **kw)


def start_costs() -> list[tuple[str, float]]:
    from fhir_server.app import create_app

    create_app(_settings(load_definitions=False)).config["FHIR_STORE"].engine.close()  # imports, caches
    out = []
    t = time.perf_counter()
    app = create_app(_settings(load_definitions=False))
    out.append(("create_app, FHIR_LOAD_DEFINITIONS=0", time.perf_counter() - t))
    app.config["FHIR_STORE"].engine.close()
    t = time.perf_counter()
    app = create_app(_settings(load_definitions=True))
    out.append(("create_app, FHIR_LOAD_DEFINITIONS=1, empty store (writes them)", time.perf_counter() - t))
    t = time.perf_counter()
    again = create_app(app.config["FHIR_SETTINGS"], store=app.config["FHIR_STORE"])
    out.append(("create_app again on the same store (nothing to write)", time.perf_counter() - t))
    again.config["FHIR_STORE"].engine.close()
    return out


def engine_costs(n: int) -> list[tuple[str, list[float]]]:
    from terminology import service, validate_code

    vs_url = f"{CANONICAL}/ValueSet/icd10"
    vs = service.value_set(vs_url)

    def cold():
        service._cache.clear()
        service.expand_resource(vs)

    out = [("МКБ-10 expansion, cold (index + expansion compiled)", timed(cold, max(n // 10, 5)))]
    service.expand_resource(vs)
    out.append(("МКБ-10 expansion, warm (cached)", timed(lambda: service.expand_resource(vs), n * 10)))
    out.append(("validate_code(valueset=icd10, code=E11.9, display=…)",
                timed(lambda: validate_code(valueset=vs_url, system=ICD10, code="E11.9", display="Инсулиннезависимый сахарный диабет без осложнений"), n * 10)))
    return out


def http_costs(n: int, conditions: int) -> list[tuple[str, list[float]]]:
    from fhir_server.app import create_app

    app = create_app(_settings(load_definitions=True))
    client = app.test_client()
    headers = {"Content-Type": "application/fhir+json"}
    batch = 200
    for start in range(0, conditions, batch):
        entries = [{"resource": {"resourceType": "Condition", "subject": {"reference": f"Patient/p{i % 500}"},
                                 "code": {"coding": [{"system": ICD10, "code": CODES[i % len(CODES)]}]}},
                    "request": {"method": "POST", "url": "Condition"}} for i in range(start, min(start + batch, conditions))]
        r = client.post("/fhir", data=orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries}), headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
    icd_vs = quote(f"{CANONICAL}/ValueSet/icd10", safe="")
    sys_ = quote(ICD10, safe="")
    cases = [
        ("GET CodeSystem/$lookup (МКБ-10 E11.9)", f"/fhir/CodeSystem/$lookup?system={sys_}&code=E11.9"),
        ("GET ValueSet/$validate-code (icd10, I10)", f"/fhir/ValueSet/$validate-code?url={icd_vs}&system={sys_}&code=I10"),
        ("GET ValueSet/$expand (icd10, filter=диабет, count=10)", f"/fhir/ValueSet/$expand?url={icd_vs}&filter={quote('диабет')}&count=10"),
        ("GET ValueSet/$expand (icd10, whole, ~530 codes)", f"/fhir/ValueSet/$expand?url={icd_vs}"),
        ("GET ConceptMap/$translate (FSLI 1017128 → LOINC)", f"/fhir/ConceptMap/$translate?system={quote('urn:oid:1.2.643.5.1.13.13.11.1080', safe='')}&code=1017128"),
        (f"GET Condition?code:below=…|E10-E14&_count=20 ({conditions} Conditions)", f"/fhir/Condition?code:below={sys_}|E10-E14&_count=20"),
        (f"GET Condition?code:in=…/ValueSet/icd10&_count=20 ({conditions} Conditions)", f"/fhir/Condition?code:in={icd_vs}&_count=20"),
        (f"GET Condition?code={ICD10}|E11.9&_count=20 (plain token, for comparison)", f"/fhir/Condition?code={sys_}|E11.9&_count=20"),
    ]
    out = []
    for label, path in cases:
        def get(path=path):
            r = client.get(path)
            assert r.status_code == 200, r.get_data(as_text=True)[:300]

        timed(get, 20)
        out.append((label, timed(get, n)))
    app.config["FHIR_STORE"].engine.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--conditions", type=int, default=2000)
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args(argv)
    facts = report.machine_facts()
    s = start_costs()
    e = engine_costs(args.requests)
    h = http_costs(args.requests, args.conditions)
    lines = ["## Terminology benchmark: NSI terminology operations and search modifiers", "",
             (f"{facts['date']}, commit {facts['commit']}, {facts['nproc']} CPU ({facts['cpu']}), {facts['mem']}, "
              f"Python {facts['python']}; embedded store, FHIR_AUTH=off. "
              f"`bench/bench_terminology.py --requests {args.requests} --conditions {args.conditions}`."), "",
             "| Start | time |", "|---|---:|"]
    lines += [f"| {label} | {t * 1e3:.0f} ms |" for label, t in s]
    lines += ["", "| Engine alone (packaged content) | median | p95 |", "|---|---:|---:|"]
    lines += [f"| {label} | {statistics.median(t) * 1e6:.0f} µs | {report.pct(t, 95) * 1e6:.0f} µs |" for label, t in e]
    lines += ["", "| Request | median | p95 |", "|---|---:|---:|"]
    lines += [f"| {label.replace('|', chr(92) + '|')} | {statistics.median(t) * 1e3:.2f} ms | {report.pct(t, 95) * 1e3:.2f} ms |" for label, t in h]
    plain, below, inside = (statistics.median(h[i][1]) for i in (-1, -3, -2))
    lines += ["", ("Test apps start with FHIR_LOAD_DEFINITIONS=0 (tests/conftest.py), so only the tests that ask for the "
              "loaded copies pay the second row. Operations use the in-memory compiled code systems and expansions, "
              "cached by the identity of the versions they draw on (stored versions are parsed once); each request "
              "still asks the store which versions of the url it holds. A :below or :in search is one $in on the "
              f"index: :below МКБ-10 E10-E14 (~20 codes) costs {below / plain:.1f}× the plain token search, :in the whole "
              f"МКБ-10 value set (~530 codes in the $in) {inside / plain:.1f}× on the embedded store."), ""]
    text = "\n".join(lines) + "\n"
    print(text)
    report.write_section(args.out, "bench_terminology", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
