#!/usr/bin/env python3
"""Core benchmark (not a test): transaction ingest and read-by-id through gunicorn, and the floor.

1. Ingest: starts `fhir-server serve --no-demo` (embedded store: one gunicorn worker process
   with threads) on a free loopback port, POSTs transaction Bundles sequentially from one
   client and reports resources/s, failures and the worker's peak memory (VmHWM).
2. Reads: GET /fhir/{Type}/{id} over ~500 stored ids, a bounded number of requests from a
   concurrent client (wrk when installed, else several Python processes, one keep-alive
   connection each); req/s, p50/p95 latency, errors.
3. Floor, same run, in-process: orjson.loads of the same bundles + Unit.write of the same
   resources into a fresh embedded store (ids assigned, no reference rewriting, no
   validation, no search index) -> resources/s; ratio full ingest / floor.

Figures go to stdout and to the section of BENCHMARKS.md this script owns. A target miss
is reported, never a failing exit code. Everything started here is stopped in `finally`.

    .venv/bin/python bench/bench_core.py [--patients N] [--reads 20000] [--client auto|wrk|python]
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import multiprocessing as mp
import os
import pathlib
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import orjson

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import report  # noqa: E402  (bench/report.py: the BENCHMARKS.md sections)

DEFAULT_FIXTURES = ROOT.parent / "shared" / "fixtures" / "synthea" / "smart-r4-2019"
TARGET_INGEST = 1000.0  # resources/s, full validation
TARGET_READS = 1500.0  # req/s
PEER_INGEST = "70-100 resources/s"
HEADERS_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


# -- data --------------------------------------------------------------------------------
def load_bundles(fixtures: pathlib.Path, patients: int | None, seed: int) -> tuple[list[tuple[str, bytes]], str]:
    """[(name, raw bytes)]: hospital and practitioner bundles first, then the patients."""
    if fixtures.is_dir():
        files = sorted(glob.glob(str(fixtures / "*.json")))
        first = [f for f in files if os.path.basename(f).startswith(("hospitalInformation", "practitionerInformation"))]
        first.sort(key=lambda f: 0 if "hospitalInformation" in f else 1)
        rest = [f for f in files if f not in first]
        if patients is not None:
            rest = rest[:patients]
        out = [(os.path.basename(f), pathlib.Path(f).read_bytes()) for f in first + rest]
        return out, f"Synthea `{fixtures.name}` ({len(first)} organisation/practitioner + {len(rest)} patient bundles)"
    n = 60 if patients is None else patients
    return synthetic_bundles(n, seed), f"synthetic (seed {seed}, {n} patient bundles; {fixtures} not found)"


def synthetic_bundles(n: int, seed: int) -> list[tuple[str, bytes]]:
    """Transactions shaped like Synthea's: Patient + Encounters + Observations linked by urn:uuid."""
    rnd = random.Random(seed)
    ids = lambda: str(uuid.UUID(int=rnd.getrandbits(128), version=4))  # noqa: E731 - deterministic uuid4
    loinc = [("8302-2", "Body Height", "cm"), ("29463-7", "Body Weight", "kg"), ("8867-4", "Heart rate", "/min"),
             ("9279-1", "Respiratory rate", "/min"), ("8310-5", "Body temperature", "Cel"), ("2339-0", "Glucose", "mg/dL")]
    out = []
    for p in range(n):
        pid = ids()
        entries = []

        def add(resource: dict, full: str) -> None:
            entries.append({"fullUrl": f"urn:uuid:{full}", "resource": resource,
                            "request": {"method": "POST", "url": resource["resourceType"]}})

        given, family = rnd.choice(["Ivan", "Anna", "Pyotr", "Olga", "Sergei"]), rnd.choice(["Ivanov", "Petrova", "Smirnov", "Popova"])
        add({"resourceType": "Patient", "identifier": [{"system": "urn:oid:1.2.643.100.3", "value": f"{rnd.randrange(10**10, 10**11)}"}],
             "name": [{"use": "official", "family": family, "given": [given]}], "gender": rnd.choice(["male", "female"]),
             "birthDate": f"{rnd.randrange(1930, 2015)}-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}"}, pid)
        for _ in range(rnd.randrange(5, 15)):
            eid = ids()
            year, month, day = rnd.randrange(2000, 2019), rnd.randrange(1, 13), rnd.randrange(1, 29)
            start = f"{year}-{month:02d}-{day:02d}T{rnd.randrange(8, 17):02d}:00:00+03:00"
            end = start.replace(":00:00+", ":30:00+")
            add({"resourceType": "Encounter", "status": "finished",
                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                 "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003", "display": "Encounter for check up"}]}],
                 "subject": {"reference": f"urn:uuid:{pid}"}, "period": {"start": start, "end": end}}, eid)
            for _ in range(rnd.randrange(2, 6)):
                code, display, unit = rnd.choice(loinc)
                add({"resourceType": "Observation", "status": "final",
                     "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
                     "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
                     "subject": {"reference": f"urn:uuid:{pid}"}, "encounter": {"reference": f"urn:uuid:{eid}"},
                     "effectiveDateTime": start, "issued": start.replace("+03:00", ".000+03:00"),
                     "valueQuantity": {"value": round(rnd.uniform(1, 200), 1), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}},
                    ids())
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        out.append((f"synthetic-{p:03d}.json", orjson.dumps(bundle)))
    return out


# -- the server process --------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    out = []
    for f in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            out += [int(x) for x in pathlib.Path(f).read_text().split()]
        except OSError:
            pass
    return sorted(set(out))


def proc_status_kb(pid: int, field: str) -> int | None:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Server:
    def __init__(self, threads: int | None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/fhir"
        self.log = tempfile.NamedTemporaryFile(prefix="bench_core_server_", suffix=".log", delete=False)
        exe = ROOT / ".venv" / "bin" / "fhir-server"
        if not exe.exists():
            exe = pathlib.Path(shutil.which("fhir-server") or "fhir-server")
        self.cmd = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--no-demo"]
        if threads:
            self.cmd += ["--threads", str(threads)]
        env = {k: v for k, v in os.environ.items() if k != "FHIR_MONGODB_URI"}
        env.setdefault("FHIR_LOG_LEVEL", "WARNING")
        # The REST core's own cost, as a conformance-testing server runs: consent enforcement and
        # token checks are measured by bench_consent.py. (Every request still writes its AuditEvent.)
        env["FHIR_AUTH"] = "off"
        # Own process group, so the master and its workers are stopped together.
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=ROOT)

    def wait_ready(self, timeout: float = 90.0) -> float:
        t0 = time.perf_counter()
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base + "/metadata", timeout=5) as r:
                    if r.status == 200:
                        r.read()
                        return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def peak_kb(self) -> dict[int, int]:
        """VmHWM of each worker process (the resident high-water mark)."""
        return {pid: kb for pid in self.workers() if (kb := proc_status_kb(pid, "VmHWM")) is not None}

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(pathlib.Path(self.log.name).read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        else:
            # The master is gone; make sure no worker of its group survives it.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass


# -- 1. ingest -----------------------------------------------------------------------------
def ingest(server: Server, bundles: list[tuple[str, bytes]], time_limit: float) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    stored, failed, posted, locations, problems = 0, 0, 0, [], []
    sent_entries = 0
    t0 = time.perf_counter()
    try:
        for name, raw in bundles:
            if time.perf_counter() - t0 > time_limit:
                problems.append(f"time limit {time_limit:.0f}s reached after {posted} bundles")
                break
            n_entries = raw.count(b'"request"')  # informational only; the response is what counts
            try:
                conn.request("POST", "/fhir", body=raw, headers=HEADERS_JSON)
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
                failed += n_entries
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            posted += 1
            sent_entries += n_entries
            try:
                doc = orjson.loads(body)
            except orjson.JSONDecodeError:
                doc = {}
            entries = doc.get("entry", []) if isinstance(doc, dict) else []
            if status != 200 or not entries:
                failed += n_entries
                issues = [i.get("diagnostics") for i in doc.get("issue", [])][:2] if isinstance(doc, dict) else []
                problems.append(f"{name}: HTTP {status} {issues}")
                continue
            for e in entries:
                r = e.get("response", {})
                if str(r.get("status", "")).startswith("2"):
                    stored += 1
                    if r.get("location"):
                        locations.append(r["location"])
                else:
                    failed += 1
            if len(problems) < 5 and any(not str(e.get("response", {}).get("status", "")).startswith("2") for e in entries):
                problems.append(f"{name}: non-2xx entries")
    finally:
        conn.close()
    wall = time.perf_counter() - t0
    return {"bundles": posted, "stored": stored, "failed": failed, "wall": wall,
            "rate": stored / wall if wall > 0 else 0.0, "locations": locations, "problems": problems}


# -- 2. reads ------------------------------------------------------------------------------
def pick_paths(locations: list[str], n: int, seed: int) -> list[str]:
    refs = sorted({"/".join(loc.split("/")[:2]) for loc in locations if loc.count("/") >= 1})
    rnd = random.Random(seed)
    chosen = rnd.sample(refs, min(n, len(refs)))
    return [f"/fhir/{r}" for r in chosen]


def _py_reader(args) -> dict:
    port, paths, count, offset, deadline, start_at = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lat, errors, done = [], 0, 0
    while time.time() < start_at:  # every process starts at the same moment
        time.sleep(0.0005)
    t0 = time.perf_counter()
    npaths = len(paths)
    for i in range(count):
        if time.time() > deadline:
            break
        path = paths[(offset + i) % npaths]
        s = time.perf_counter()
        try:
            conn.request("GET", path, headers={"Accept": "application/fhir+json"})
            resp = conn.getresponse()
            body = resp.read()
            ok = resp.status == 200 and len(body) > 0
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            ok = False
        lat.append(time.perf_counter() - s)
        done += 1
        errors += not ok
    t1 = time.perf_counter()
    conn.close()
    return {"lat": lat, "errors": errors, "done": done, "t0": t0, "t1": t1}


def reads_python(port: int, paths: list[str], total: int, procs: int, time_limit: float) -> dict:
    share = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    start_at = time.time() + 1.0
    deadline = start_at + time_limit
    jobs = [(port, paths, share[i], i * len(paths) // procs, deadline, start_at) for i in range(procs)]
    ctx = mp.get_context("fork")
    with ctx.Pool(procs) as pool:
        res = pool.map(_py_reader, jobs)
    lat = sorted(x for r in res for x in r["lat"])
    done = sum(r["done"] for r in res)
    # perf_counter is CLOCK_MONOTONIC on Linux: comparable across processes.
    wall = max(r["t1"] for r in res) - min(r["t0"] for r in res)
    return {"client": f"Python http.client, {procs} processes x 1 keep-alive connection", "requests": done,
            "errors": sum(r["errors"] for r in res), "wall": wall, "rate": done / wall if wall > 0 else 0.0,
            "p50_ms": 1000 * report.pct(lat, 50), "p95_ms": 1000 * report.pct(lat, 95), "p99_ms": 1000 * report.pct(lat, 99)}


WRK_LUA = r"""
local paths = {}
for line in io.lines(os.getenv("BENCH_PATHS")) do paths[#paths + 1] = line end
local counter = 0
local threads = {}
local tid = 0
function setup(thread)
  thread:set("id", tid)
  tid = tid + 1
  table.insert(threads, thread)
end
local i = 0
local sent = 0
function init(args)
  i = (id or 0) * 97
end
function request()
  i = i + 1
  sent = sent + 1
  return wrk.format("GET", paths[(i % #paths) + 1], {["Accept"] = "application/fhir+json"})
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def reads_wrk(port: int, paths: list[str], seconds: int, conns: int, threads: int) -> dict:
    """wrk for a fixed duration (a Lua `response` callback that stops after N responses would
    slow wrk down, and wrk.thread:stop() does not end the run before -d): requests / duration.
    Non-2xx/3xx answers are wrk's `status` errors."""
    with tempfile.TemporaryDirectory(prefix="bench_core_wrk_") as tmp:
        pfile, lua = pathlib.Path(tmp, "paths.txt"), pathlib.Path(tmp, "reads.lua")
        pfile.write_text("\n".join(paths) + "\n")
        lua.write_text(WRK_LUA)
        env = {**os.environ, "BENCH_PATHS": str(pfile)}
        cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua),
               f"http://127.0.0.1:{port}/"]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (rc {out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
    r = json.loads(line[len("BENCHJSON "):])
    wall = r["duration_us"] / 1e6
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {"client": f"wrk {threads} thread(s) x {conns} keep-alive connections for {seconds} s",
            "requests": r["requests"], "errors": errors, "wall": wall, "rate": r["requests"] / wall if wall > 0 else 0.0,
            "p50_ms": r["p50_us"] / 1000, "p95_ms": r["p95_us"] / 1000, "p99_ms": r["p99_us"] / 1000}


# -- 3. floor ------------------------------------------------------------------------------
def floor(bundles: list[tuple[str, bytes]], with_index: bool = False) -> dict:
    from resources import registry

    from fhir_server.storage import ResourceStore, connect

    index_resource = None
    if with_index:
        from fhir_server.search import index_resource
    store = ResourceStore(connect(None, "floor-index" if with_index else "floor"))
    store.ensure_indexes(registry.supported_types())  # as the server's open_store does
    n = 0
    t0 = time.perf_counter()
    for _name, raw in bundles:
        bundle = orjson.loads(raw)
        items = []
        for e in bundle.get("entry", []):
            res = e["resource"]
            res["id"] = str(uuid.uuid4())
            items.append((res["resourceType"], res))

        def run(unit, items=items):
            for rtype, res in items:
                unit.write(rtype, res["id"], res, "POST", None, index_resource(res) if index_resource else None)
            return len(items)

        n += store.atomic(run)
    wall = time.perf_counter() - t0
    store.engine.close()
    return {"stored": n, "wall": wall, "rate": n / wall if wall > 0 else 0.0}


# -- report --------------------------------------------------------------------------------
def verdict(value: float, target: float) -> str:
    return "PASS" if value >= target else "MISS"


def render(facts: dict, command: str, data_desc: str, ing: dict, peak: dict, rd: dict | None, fl: dict, fli: dict | None,
           server_threads: int) -> str:
    peak_mb = max(peak.get("workers", {}).values(), default=0) / 1024
    ratio = ing["rate"] / fl["rate"] if fl["rate"] else float("nan")
    lines = [
        "## Core benchmark: ingest, read, floor",
        "",
        f"Command: `{command}` (from the repository root)  ",
        f"Machine: `nproc` = {facts['nproc']}, CPU `{facts['cpu']}`, RAM {facts['mem']}, Python {facts['python']}  ",
        f"Date: {facts['date']}, commit {facts['commit']}  ",
        f"Data: {data_desc}; {ing['stored']} resources in {ing['bundles']} transaction Bundles  ",
        f"Server: `FHIR_AUTH=off fhir-server serve --no-demo` (gunicorn, embedded mongomock store, 1 worker process x {server_threads} threads), loopback",
        "",
        "| Measure | Figure | Target | Result |",
        "| --- | --- | --- | --- |",
        f"| Transaction ingest through gunicorn, full validation | **{ing['rate']:,.0f} resources/s** ({ing['stored']:,} resources, {ing['wall']:.1f} s, 1 sequential client) | >= {TARGET_INGEST:,.0f} resources/s (peer on this machine: {PEER_INGEST}) | {verdict(ing['rate'], TARGET_INGEST)} |",
        f"| Ingest failures (entries whose status is not 2xx) | {ing['failed']} | 0 | {'PASS' if ing['failed'] == 0 and not ing['problems'] else 'MISS'} |",
        f"| Server worker peak memory (VmHWM, after reads) | {peak_mb:,.0f} MB (after ingest {max(peak.get('after_ingest', {}).values(), default=0) / 1024:,.0f} MB) | - | - |",
    ]
    if rd is not None:
        lines += [
            f"| Read by id `GET /fhir/{{Type}}/{{id}}` | **{rd['rate']:,.0f} req/s** ({rd['requests']:,} requests over {rd['ids']} ids, {rd['wall']:.1f} s) | >= {TARGET_READS:,.0f} req/s | {verdict(rd['rate'], TARGET_READS)} |",
            f"| Read latency p50 / p95 / p99 | {rd['p50_ms']:.2f} / {rd['p95_ms']:.2f} / {rd['p99_ms']:.2f} ms | - | - |",
            f"| Read errors | {rd['errors']} | 0 | {'PASS' if rd['errors'] == 0 else 'MISS'} |",
        ]
    lines += [
        f"| Floor: orjson.loads + `Unit.write` into a fresh embedded store, in-process | {fl['rate']:,.0f} resources/s ({fl['stored']:,} resources, {fl['wall']:.1f} s) | - | - |",
    ]
    if fli is not None:
        lines.append(f"| Floor + search index (`index_resource`), in-process | {fli['rate']:,.0f} resources/s ({fli['wall']:.1f} s) | - | - |")
    lines += [
        f"| Ratio full ingest / floor | {ratio:.2f} | - | - |",
        "",
        f"Read client: {rd['client'] if rd else 'skipped'}; the client and the server share the {facts['nproc']} cores of this machine. "
        "The floor has no HTTP, no validation, no reference rewriting and no search index; ids are assigned and each "
        "Bundle is one `store.atomic` unit.",
    ]
    if ing["problems"]:
        lines += ["", "Ingest problems: " + "; ".join(ing["problems"][:5])]
    return "\n".join(lines) + "\n"


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=None, help="use only the first N patient bundles (default: all)")
    ap.add_argument("--fixtures", type=pathlib.Path, default=DEFAULT_FIXTURES, help="folder of Synthea transaction bundles")
    ap.add_argument("--seed", type=int, default=20190531)
    ap.add_argument("--reads", type=int, default=20000, help="number of read requests (Python client)")
    ap.add_argument("--wrk-seconds", type=int, default=20, help="duration of the wrk read run")
    ap.add_argument("--read-ids", type=int, default=500, help="distinct resources read")
    ap.add_argument("--concurrency", type=int, default=4, help="client connections (Python: one process each)")
    ap.add_argument("--client", choices=("auto", "wrk", "python", "both"), default="auto",
                    help="read load generator: wrk when installed (auto), or Python processes")
    ap.add_argument("--threads", type=int, default=None, help="server threads per worker (default: the CLI's)")
    ap.add_argument("--ingest-time-limit", type=float, default=1800.0, help="seconds; stop posting after this")
    ap.add_argument("--read-time-limit", type=float, default=120.0, help="seconds; stop reading after this")
    ap.add_argument("--no-floor-index", action="store_true", help="skip the informational floor + search-index row")
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "BENCHMARKS.md", help="markdown file to update ('-' for none)")
    args = ap.parse_args(argv)
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/bench_core.py", *(argv if argv is not None else sys.argv[1:])])

    facts = report.machine_facts()
    bundles, data_desc = load_bundles(args.fixtures, args.patients, args.seed)
    print(f"data: {data_desc}", flush=True)
    server_threads = args.threads or 8

    server = Server(args.threads)
    rd_results: list[dict] = []
    peak: dict = {}
    try:
        ready = server.wait_ready()
        print(f"server up on port {server.port} in {ready:.1f}s; master {server.proc.pid}, workers {server.workers()}", flush=True)

        ing = ingest(server, bundles, args.ingest_time_limit)
        peak["after_ingest"] = server.peak_kb()
        print(f"ingest: {ing['stored']} resources stored, {ing['failed']} failed, {ing['bundles']} bundles in "
              f"{ing['wall']:.1f}s -> {ing['rate']:.0f} resources/s [{verdict(ing['rate'], TARGET_INGEST)} vs {TARGET_INGEST:.0f}]", flush=True)
        for p in ing["problems"][:5]:
            print(f"  problem: {p}", flush=True)

        paths = pick_paths(ing["locations"], args.read_ids, args.seed)
        if paths:
            # Warm-up, not counted: each chosen path once.
            warm = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            for p in paths:
                warm.request("GET", p)
                warm.getresponse().read()
            warm.close()
            use_wrk = shutil.which("wrk") is not None
            kinds = {"auto": ["wrk" if use_wrk else "python"], "wrk": ["wrk"], "python": ["python"], "both": ["wrk", "python"]}[args.client]
            for kind in kinds:
                if kind == "wrk" and not use_wrk:
                    print("wrk not installed: falling back to the Python client", flush=True)
                    kind = "python"
                if kind == "wrk":
                    r = reads_wrk(server.port, paths, args.wrk_seconds, args.concurrency, 1)
                else:
                    r = reads_python(server.port, paths, args.reads, args.concurrency, args.read_time_limit)
                r["ids"] = len(paths)
                rd_results.append(r)
                print(f"reads ({r['client']}): {r['requests']} requests, {r['errors']} errors, {r['wall']:.1f}s -> "
                      f"{r['rate']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms "
                      f"[{verdict(r['rate'], TARGET_READS)} vs {TARGET_READS:.0f}]", flush=True)
        else:
            print("reads: skipped, nothing stored", flush=True)
        peak["workers"] = server.peak_kb()
        peak["master"] = proc_status_kb(server.proc.pid, "VmHWM")
        print(f"server peak memory (VmHWM): workers { {k: f'{v / 1024:.0f} MB' for k, v in peak['workers'].items()} }, "
              f"master {(peak['master'] or 0) / 1024:.0f} MB", flush=True)
    finally:
        server.stop()

    fl = floor(bundles)
    print(f"floor: {fl['stored']} resources in {fl['wall']:.1f}s -> {fl['rate']:.0f} resources/s; "
          f"ratio full/floor {ing['rate'] / fl['rate']:.2f}", flush=True)
    fli = None
    if not args.no_floor_index:
        fli = floor(bundles, with_index=True)
        print(f"floor + search index: {fli['rate']:.0f} resources/s", flush=True)

    rd = rd_results[0] if rd_results else None
    text = render(facts, command, data_desc, ing, peak, rd, fl, fli, server_threads)
    for extra in rd_results[1:]:
        text += (f"\nCross-check with {extra['client']}: {extra['rate']:,.0f} req/s, p50 {extra['p50_ms']:.2f} ms, "
                 f"p95 {extra['p95_ms']:.2f} ms, {extra['errors']} errors.\n")
    print("\n" + text)
    if str(args.out) != "-":
        report.write_section(args.out, "bench_core", text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
