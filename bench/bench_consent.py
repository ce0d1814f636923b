#!/usr/bin/env python3
"""Consent benchmark (not a test): what consent enforcement and the audit trail cost per request.

1. Data: N patients (default 10,000), each with a Patient, an Encounter and four Observations
   (one of eight LOINC codes each), loaded in-process through the storage layer as the server
   writes, into the embedded (mongomock) store of an app made by `create_app`.
2. Consents: practitioner dr-K is granted access by K patients, for K in 1, 100 and 10,000
   (patients 0..K-1, one active patient-privacy Consent each naming dr-K): 10,101 Consents in
   the store, as on a server where many doctors hold grants. A doctor's decisions are made from
   the Consents that can apply to them (their root actor names the doctor, or no one).
3. Queries through the Flask test client (no socket), the same query as admin and as each
   doctor: p50/p95 latency, and the consent overhead = doctor p50 / admin p50 - 1. Access
   decisions are memoised across requests (consent/policy.py), so each cell's warm-up request
   pays for compiling them and the timed ones measure the steady state.
4. Audit: the cost of writing the AuditEvent(s) of one request - the same read timed with the
   audit trail as it is and with it switched off in-process (the difference), and
   `audit.record` of one event timed alone.

    .venv/bin/python bench/bench_consent.py [--patients 10000] [--reps 60]

Figures go to stdout and to BENCHMARKS.md between the `bench_consent` markers.
"""

from __future__ import annotations

import argparse
import gc
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import report  # noqa: E402  (bench/report.py: shared helpers)

BASE = "http://localhost/fhir"
LOINC = "http://loinc.org"
CODES = ("2339-0", "718-7", "2093-3", "8480-6", "8462-4", "29463-7", "8302-2", "4548-4")
GRANTS = (1, 100, 10_000)


def population(n: int):
    for i in range(n):
        pid = f"p{i}"
        block = [
            {"resourceType": "Patient", "id": pid, "name": [{"family": f"Пациент{i}"}], "gender": "female" if i % 2 else "male"},
            {"resourceType": "Encounter", "id": f"e{i}", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{pid}"}},
        ]
        for j in range(4):
            block.append({
                "resourceType": "Observation", "id": f"o{i}-{j}", "status": "final",
                "code": {"coding": [{"system": LOINC, "code": CODES[(i + j) % len(CODES)]}]},
                "subject": {"reference": f"Patient/{pid}"}, "encounter": {"reference": f"Encounter/e{i}"},
                "valueQuantity": {"value": 50 + (i * 7 + j) % 100, "system": "http://unitsofmeasure.org", "code": "mg/dL"},
            })
        yield block


def consent(pid: str, practitioner: str) -> dict:
    return {
        "resourceType": "Consent", "id": f"c-{practitioner}-{pid}", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "provision": {"type": "permit", "actor": [{"role": {"text": "врач"}, "reference": {"reference": f"Practitioner/{practitioner}"}}]},
    }


def load(store, blocks) -> tuple[int, float]:
    from fhir_server.search import index_resource

    n = 0
    t0 = time.perf_counter()
    for block in blocks:
        def run(unit, block=block):
            for res in block:
                unit.write(res["resourceType"], res["id"], res, "POST", None, index_resource(res, BASE))
        store.atomic(run)
        n += len(block)
    return n, time.perf_counter() - t0


def timed(client, url: str, reps: int, time_limit: float = 15.0) -> list[float]:
    """Latencies (ms, sorted) of `reps` requests, or as many as fit in `time_limit` seconds (at least 3)."""
    client.get(url)  # warm-up
    out = []
    deadline = time.perf_counter() + time_limit
    for i in range(reps):
        if i >= 3 and time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        r = client.get(url)
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, (url, r.status_code, r.get_data(as_text=True)[:300])
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    if args.patients < max(GRANTS):
        ap.error(f"--patients must be at least {max(GRANTS)}")

    from consent.principal import Principal
    from consent.scopes import ScopeSet
    from fhir_server import audit, rest
    from fhir_server.app import create_app
    from fhir_server.settings import Settings

    started = time.perf_counter()
    app = create_app(Settings(db_name="bench_consent", auth="off", log_level="WARNING"))
    store = app.config["FHIR_STORE"]
    practitioners = [{"resourceType": "Practitioner", "id": f"dr{k}", "name": [{"family": f"Врач{k}"}]} for k in GRANTS]
    n_res, wall = load(store, [practitioners, *population(args.patients)])
    consents = [consent(f"p{i}", f"dr{k}") for k in GRANTS for i in range(k)]
    n_con, wall_c = load(store, (consents[i:i + 500] for i in range(0, len(consents), 500)))
    gc.collect()

    scopes = ScopeSet.from_string("user/*.rs")
    who = {"admin": Principal("admin", subject="bench-admin", scopes=scopes)}
    for k in GRANTS:
        who[f"dr{k}"] = Principal("practitioner", subject=f"bench-dr{k}", fhir_user=f"Practitioner/dr{k}", scopes=scopes)
    queries = [
        ("`Observation?patient=P&_count=20` (P granted to every doctor)", "/fhir/Observation?patient=p0&_count=20"),
        ("`Observation?code=http://loinc.org\\|C&_count=20`", f"/fhir/Observation?code={LOINC}%7C{CODES[3]}&_count=20"),
        ("`Observation/id` (read)", "/fhir/Observation/o0-1"),
        ("`Encounter?_count=20&_summary=count`", "/fhir/Encounter?_count=20&_summary=count"),
    ]
    client = app.test_client()
    rows = []
    for label, url in queries:
        row = {"label": label}
        for name, principal in who.items():
            app.config["FHIR_AUTHENTICATOR"] = lambda request, p=principal: p
            row[name] = timed(client, url, args.reps)
        rows.append(row)
        print(label, {k: round(report.pct(v, 50), 2) for k, v in row.items() if k != "label"}, flush=True)

    # Audit: the same read with and without the trail (switched off here only).
    app.config["FHIR_AUTHENTICATOR"] = lambda request: who["dr100"]
    read = "/fhir/Observation/o0-1"
    with_audit = timed(client, read, args.reps * 2)
    real_audit = rest._audit
    rest._audit = lambda *a, **k: None
    try:
        without_audit = timed(client, read, args.reps * 2)
    finally:
        rest._audit = real_audit
    event = audit.build_event(who["dr100"], method="GET", path="Observation/o0-1", query="", status=200,
                              patients={"Patient/p0"}, refs=["Observation/o0-1/_history/1"], address="127.0.0.1")
    rec = []
    for _ in range(args.reps * 2):
        t0 = time.perf_counter()
        audit.record(store, event)
        rec.append((time.perf_counter() - t0) * 1000)
    rec.sort()
    elapsed = time.perf_counter() - started

    facts = report.machine_facts()
    lines = [
        "## Consent benchmark: enforcement and audit cost per request",
        "",
        f"Command: `.venv/bin/python bench/bench_consent.py --patients {args.patients} --reps {args.reps}` (from the repository root)  ",
        f"Machine: `nproc` = {facts['nproc']}, CPU `{facts['cpu']}`, RAM {facts['mem']}, Python {facts['python']}  ",
        f"Date: {facts['date']}, commit {facts['commit']}; whole run {elapsed / 60:.1f} min  ",
        f"Data: {args.patients:,} patients, {n_res:,} resources loaded in {wall:.1f} s; {n_con:,} active Consents "
        f"(dr1 granted by 1 patient, dr100 by 100, dr10000 by 10,000) in {wall_c:.1f} s  ",
        "Store: embedded mongomock store of `create_app`; client: the Flask test client, one sequential client, no socket; "
        f"{args.reps} timed requests per cell after one warm-up (fewer, at least 3, where they pass 15 s); every request writes its AuditEvent(s)",
        "",
        "| Query | admin p50 / p95 ms | dr1 p50 / p95 ms | dr100 p50 / p95 ms | dr10000 p50 / p95 ms | overhead at 1 / 100 / 10,000 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        base = report.pct(row["admin"], 50)
        cells = [f"{report.pct(row[n], 50):.1f} / {report.pct(row[n], 95):.1f}" for n in ("admin", "dr1", "dr100", "dr10000")]
        over = " / ".join(f"{(report.pct(row[f'dr{k}'], 50) / base - 1) * 100:+.0f}%" for k in GRANTS)
        lines.append(f"| {row['label']} | {' | '.join(cells)} | {over} |")
    lines += [
        "",
        f"Audit: the read as dr100 takes p50 {report.pct(with_audit, 50):.2f} ms with its AuditEvent and {report.pct(without_audit, 50):.2f} ms "
        f"with the trail switched off: {report.pct(with_audit, 50) - report.pct(without_audit, 50):.2f} ms per request "
        f"(mean {statistics.mean(with_audit) - statistics.mean(without_audit):.2f} ms). `audit.record` of one event alone "
        f"(hash chain head compare-and-set + event write + its search index): p50 {report.pct(rec, 50):.2f} ms, p95 {report.pct(rec, 95):.2f} ms.",
        "",
        "The admin's query is the same query unfiltered (admins see everything), so the overhead is the whole cost of "
        "deciding and applying the Consents: reading the active Consents, compiling them into a filter per type, "
        "and the larger MongoDB filter. Target (issue 4): at most +15% at 100 granting patients.",
        "",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        report.write_section(ROOT / "BENCHMARKS.md", "bench_consent", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
