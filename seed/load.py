"""Load a generated population through the server's own transaction path (POST /fhir).

    post = in_process(app)                       # or over_http(url, token)
    report = load(Population(100, seed=1), post)  # -> LoadReport(counts, failures, resources, seconds)

Bundles are made, sent and dropped one at a time (the directory first), so memory stays flat.
A transaction is all-or-nothing: a failed Bundle changes nothing, and is reported with the
first issues of its OperationOutcome (never the resources: they are personal data, if synthetic).
"""

from __future__ import annotations

import collections
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import orjson

from .generator import Population

Post = Callable[[bytes], tuple[int, dict]]
FHIR_JSON = "application/fhir+json"


@dataclass
class LoadReport:
    counts: collections.Counter = field(default_factory=collections.Counter)  # resource type -> entries written
    failures: list[str] = field(default_factory=list)  # one line per failed Bundle
    bundles: int = 0
    seconds: float = 0.0
    stopped: bool = False  # gave up: server not reached, or 401/403

    @property
    def resources(self) -> int:
        return sum(self.counts.values())


def in_process(app, principal=None) -> Post:
    """POST /fhir into `app` as the operator (or `principal`), through fhir_server.app.internal_client."""
    from fhir_server.app import internal_client

    client = internal_client(app) if principal is None else internal_client(app, principal)

    def post(data: bytes) -> tuple[int, dict]:
        r = client.post("/fhir", data=data, headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
        return r.status_code, r.get_json(silent=True) or {}

    return post


def over_http(base: str, token: str | None = None, timeout: float = 600) -> Post:
    """POST to a running server's FHIR base URL, with a bearer token when given."""
    base = base.rstrip("/")
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if token:
        headers["Authorization"] = f"Bearer {token}"

    def post(data: bytes) -> tuple[int, dict]:
        req = urllib.request.Request(base, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read() or b"{}")
            except ValueError:
                return exc.code, {}
        except (urllib.error.URLError, OSError) as exc:  # not reached at all: status 0
            reason = getattr(exc, "reason", exc)
            return 0, {"issue": [{"severity": "fatal", "code": "transient", "diagnostics": f"cannot reach {base}: {reason}"}]}

    return post


def _issues(body: dict) -> str:
    issues = body.get("issue") or [i for e in body.get("entry", []) for i in (e.get("response", {}).get("outcome") or {}).get("issue", [])]
    return "; ".join(f"{i.get('diagnostics', i.get('code'))}" + (f" at {', '.join(i['expression'])}" if i.get("expression") else "")
                     for i in issues[:3])


STOP = (0, 401, 403)  # not reached, or the server refuses who is asking: every further Bundle would fail too


def load(pop: Population, post: Post, progress: Callable[[LoadReport], None] | None = None, every: int = 1000,
         concurrency: int = 1) -> LoadReport:
    """Post every Bundle of `pop`: the directory first and alone (the patients refer to it), then the patients, up to
    `concurrency` Bundles in flight (at most twice that many made ahead, so memory stays flat). Stops when the server
    cannot be reached or refuses the credentials (401, 403), never at a Bundle it refuses."""
    report = LoadReport()
    started = time.perf_counter()

    def send(n: int, bundle: dict) -> tuple[int, collections.Counter | None, int, str]:
        status, body = post(orjson.dumps(bundle))
        entries = body.get("entry", []) if status == 200 else []
        ok = status == 200 and len(entries) == len(bundle["entry"]) and all(
            str(e.get("response", {}).get("status", "")).startswith(("200", "201")) for e in entries)
        if ok:
            return n, collections.Counter(e["resource"]["resourceType"] for e in bundle["entry"]), status, ""
        return n, None, status, _issues(body)

    def record(result) -> None:
        n, counts, status, issues = result
        report.bundles += 1
        if counts is not None:
            report.counts.update(counts)
        else:
            report.failures.append(f"{'directory' if n == 0 else f'patient {n - 1}'}: HTTP {status}: {issues}")
            report.stopped = report.stopped or status in STOP
        if progress is not None and report.bundles % every == 0:
            report.seconds = time.perf_counter() - started
            progress(report)

    bundles = pop.bundles()
    record(send(0, next(bundles)))
    if concurrency <= 1:
        for n, bundle in enumerate(bundles, 1):
            if report.stopped:
                break
            record(send(n, bundle))
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            pending: set = set()
            for n, bundle in enumerate(bundles, 1):
                if report.stopped:
                    break
                pending.add(pool.submit(send, n, bundle))
                if len(pending) >= 2 * concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        record(f.result())
            for f in pending:
                record(f.result())
    report.seconds = time.perf_counter() - started
    return report
