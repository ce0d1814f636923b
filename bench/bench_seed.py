#!/usr/bin/env python3
"""Seed benchmark (not a test): how fast the synthetic population is generated and loaded.

1. Generation only, streaming: `seed.generator.Population(N, S).bundles()` for N = 100,000
   patients (default), each Bundle serialised with orjson as the loader sends it and then dropped;
   resources/s, bytes, and the process's resident memory (VmRSS) at every tenth of the run and its
   peak (VmHWM) - flat memory is the point. A time limit (default 300 s) stops a slow run; the
   figures are then extrapolated to N and the section says so.
2. Generation + load into the embedded store: `fhir-server seed`'s path - the same Bundles POSTed
   to /fhir of an app made by `create_app` (authorization on, the operator principal of
   `internal_client`, so every transaction is validated, checked against the RU profiles it
   declares, indexed and audited), for N = 1,000 patients (default); resources/s and peak memory.
3. MongoDB: no mongod on this machine, so loading 100,000 patients into a real MongoDB is not
   measured; the section says what the figures above imply.

    .venv/bin/python bench/bench_seed.py [--patients 100000] [--gen-seconds 300] [--load-patients 1000] [--seed 1]

Figures go to stdout and to BENCHMARKS.md between the `bench_seed` markers.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import sys
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson
import report


def status_kb(key: str) -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def generate(patients: int, seed: int, limit: float) -> dict:
    from seed.generator import Population

    rss_before = status_kb("VmRSS")
    started = time.perf_counter()
    pop = Population(patients, seed)
    counts: collections.Counter = collections.Counter()  # resources of the patients' Bundles
    directory = collections.Counter()
    nbytes = done = 0
    samples = []
    step = max(1, patients // 10)
    for n, bundle in enumerate(pop.bundles()):
        nbytes += len(orjson.dumps(bundle))
        (counts if n else directory).update(e["resource"]["resourceType"] for e in bundle["entry"])
        if n:
            done = n
            if n % step == 0:
                samples.append((n, status_kb("VmRSS")))
                print(f"  generated {n} patients, {sum(counts.values())} resources, {time.perf_counter() - started:.0f} s", flush=True)
            if time.perf_counter() - started > limit:
                break
    seconds = time.perf_counter() - started
    return {"patients": done, "asked": patients, "seconds": seconds, "resources": sum(counts.values()) + sum(directory.values()),
            "counts": counts, "directory": directory,
            "bytes": nbytes, "rss_before": rss_before, "samples": samples, "hwm": status_kb("VmHWM")}


def generate_and_load(patients: int, seed: int) -> dict:
    from fhir_server.app import create_app
    from fhir_server.settings import Settings
    from seed.generator import Population
    from seed.load import in_process, load

    settings = Settings(db_name=f"benchseed_{uuid.uuid4().hex[:8]}", mongodb_uri=None, load_definitions=False, demo=False)
    app = create_app(settings)
    hwm_before = status_kb("VmHWM")
    started = time.perf_counter()
    result = load(Population(patients, seed), in_process(app),
                  progress=lambda r: print(f"  loaded {r.bundles - 1} patients, {r.resources} resources, "
                                           f"{r.resources / r.seconds:.0f}/s", flush=True), every=max(1, patients // 10))
    seconds = time.perf_counter() - started
    app.config["FHIR_STORE"].engine.close()
    return {"patients": patients, "seconds": seconds, "resources": result.resources, "failures": len(result.failures),
            "bundles": result.bundles, "auth": settings.auth, "hwm_before": hwm_before, "hwm": status_kb("VmHWM")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=100_000, help="patients to generate (generation only)")
    ap.add_argument("--gen-seconds", type=float, default=300.0, help="time limit of the generation run")
    ap.add_argument("--load-patients", type=int, default=1_000, help="patients to generate and load into the embedded store")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    print(f"generation: {args.patients} patients (limit {args.gen_seconds:.0f} s)", flush=True)
    gen = generate(args.patients, args.seed, args.gen_seconds)
    print(f"loading: {args.load_patients} patients into the embedded store", flush=True)
    ld = generate_and_load(args.load_patients, args.seed)
    facts = report.machine_facts()

    g_rate = gen["resources"] / gen["seconds"]
    per_patient = sum(gen["counts"].values()) / max(gen["patients"], 1)
    directory = ", ".join(f"{t} {n:,}" for t, n in gen["directory"].most_common())
    complete = gen["patients"] >= gen["asked"]
    if complete:
        gen_line = f"{gen['patients']:,} patients: {gen['resources']:,} resources in {gen['seconds']:.1f} s"
    else:
        est = gen["seconds"] * gen["asked"] / max(gen["patients"], 1)
        gen_line = (f"{gen['patients']:,} of {gen['asked']:,} patients in the {args.gen_seconds:.0f} s limit "
                    f"({gen['resources']:,} resources in {gen['seconds']:.1f} s); **extrapolated** to {gen['asked']:,}: "
                    f"{est / 60:.1f} min, {per_patient * gen['asked']:,.0f} resources")
    rss = ", ".join(f"{n:,}: {kb / 1024:.0f}" for n, kb in gen["samples"])
    l_rate = ld["resources"] / ld["seconds"]
    load_100k_h = per_patient * 100_000 / l_rate / 3600
    counts = ", ".join(f"{t} {n / max(gen['patients'], 1):.1f}" for t, n in gen["counts"].most_common())
    body = f"""## Seed benchmark: synthetic population, generation and load

Command: `.venv/bin/python bench/bench_seed.py --patients {args.patients} --gen-seconds {args.gen_seconds:.0f} --load-patients {args.load_patients}` (from the repository root)  
Machine: `nproc` = {facts['nproc']}, CPU `{facts['cpu']}`, RAM {facts['mem']}, Python {facts['python']}  
Date: {facts['date']}, commit {facts['commit']}; whole run {(time.perf_counter() - t0) / 60:.1f} min; seed {args.seed}  
Population: `seed/generator.py`, {per_patient:.1f} resources per patient on average: {counts}; directory Bundle of the {gen['asked']:,}-patient population: {directory}

| Measure | Figure |
| --- | --- |
| Generation only, streaming (make every Bundle + `orjson.dumps`, then drop it) | **{g_rate:,.0f} resources/s**, {gen['patients'] / gen['seconds']:,.0f} patients/s; {gen_line}; {gen['bytes'] / 2**20:,.0f} MiB of JSON |
| Generation memory | VmRSS {gen['rss_before'] / 1024:.0f} MB before; MB at each tenth (patients: MB) {rss}; peak VmHWM {gen['hwm'] / 1024:.0f} MB |
| Generation + load into the embedded store (`POST /fhir` transactions of `create_app`, authorization on, operator principal; validation, RU profiles, search index, audit) | **{l_rate:,.0f} resources/s**: {ld['patients']:,} patients, {ld['resources']:,} resources in {ld['bundles']:,} Bundles, {ld['seconds']:.1f} s; failed Bundles: {ld['failures']} |
| Load memory (process VmHWM, includes the generation run before it) | {ld['hwm_before'] / 1024:.0f} MB before -> {ld['hwm'] / 1024:.0f} MB after: about {(ld['hwm'] - ld['hwm_before']) / max(ld['resources'], 1):.0f} KB per loaded resource (the embedded store keeps every version, the search index and the AuditEvents in this process) |

Generation is a small share of seeding: the load path (validation, index, audit, one atomic unit per Bundle) is about
{g_rate / l_rate:.0f}x slower than generating. **100,000 patients into a real MongoDB were not measured**: there is no
mongod on this machine. At this machine's in-process load rate they would take about {load_100k_h:.1f} h
({per_patient * 100_000:,.0f} resources) from one sequential client; the embedded store holds everything in the
server's memory, so it is not the place for them. Against MongoDB (`FHIR_MONGODB_URI=… fhir-server seed --patients
100000`) the server's own work per resource (validation, RU profiles, index extraction, audit) is what was measured
here, but MongoDB's writes and transactions replace mongomock's, so this run does not tell the rate there.
"""
    print(body)
    if not args.no_write:
        report.write_section(ROOT / "BENCHMARKS.md", "bench_seed", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
