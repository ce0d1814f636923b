#!/usr/bin/env python3
"""RU profile benchmark (not a test): what checking a write against an RU profile costs.

1. The validator alone (`profiles_ru.profiles.issues`) on a valid RU Patient and a valid RU lab
   Observation, with the packaged terminology (no store reader), and on a Patient that declares
   no profile (the cost every other write pays: nothing to check).
2. Over HTTP, the embedded store, FHIR_AUTH=off (the REST core, not consent): POST /fhir/Patient
   of the same valid patient plain, declaring ru-patient, and undeclared under
   FHIR_ENFORCE_RU_PROFILES=1; POST Observation lab plain and declared; `$validate?profile=ru-patient`.
   Median and p95 per request over N requests each (default 300), after 20 warm-up requests.

    .venv/bin/python bench/bench_profiles.py [--requests 300]

Figures go to stdout and to BENCHMARKS.md between the `bench_profiles` markers.
"""

from __future__ import annotations

import argparse
import copy
import pathlib
import statistics
import sys
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson
import report

SD = "https://fhir-server-ru.github.io/fhir/StructureDefinition/"
PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.643.100.3", "value": "112-233-445 95"},
                   {"system": "urn:oid:1.2.643.2.69.1.1.1.6.228", "value": "5598718357093420"},
                   {"system": "urn:oid:1.2.643.2.69.1.1.1.6.14", "value": "45 08 123456"}],
    "name": [{"use": "official", "family": "Иванова", "given": ["Анна", "Сергеевна"]}],
    "gender": "female", "birthDate": "1985-03-14",
}
LAB = {
    "resourceType": "Observation", "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
    "code": {"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.11.1080", "code": "1017128"}, {"system": "http://loinc.org", "code": "718-7"}]},
    "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-02T09:30:00+03:00",
    "valueQuantity": {"value": 135, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
}


def declared(resource: dict, pid: str) -> dict:
    r = copy.deepcopy(resource)
    r["meta"] = {"profile": [SD + pid]}
    return r


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return sorted(out)


def validator_costs(n: int) -> list[tuple[str, list[float]]]:
    from profiles_ru import profiles

    cases = [("RU Patient", declared(PATIENT, "ru-patient")), ("RU lab Observation", declared(LAB, "ru-observation-lab")),
             ("Patient without a profile", PATIENT)]
    out = []
    for label, r in cases:
        assert not [i for i in profiles.issues(r) if i.severity == "error"], label
        timed(lambda r=r: profiles.issues(r), 20)
        out.append((label, timed(lambda r=r: profiles.issues(r), n * 10)))
    return out


def http_costs(n: int) -> list[tuple[str, list[float]]]:
    from fhir_server.app import create_app
    from fhir_server.settings import Settings

    out = []
    apps = {}
    for enforce in (False, True):
        apps[enforce] = create_app(Settings(db_name=f"bench_{uuid.uuid4().hex[:8]}", auth="off", load_definitions=False,
                                            enforce_ru_profiles=enforce))
    cases = [
        ("POST Patient, no profile", False, "/fhir/Patient", PATIENT),
        ("POST Patient, meta.profile ru-patient", False, "/fhir/Patient", declared(PATIENT, "ru-patient")),
        ("POST Patient, FHIR_ENFORCE_RU_PROFILES=1", True, "/fhir/Patient", PATIENT),
        ("POST Observation lab, no profile", False, "/fhir/Observation", LAB),
        ("POST Observation lab, meta.profile ru-observation-lab", False, "/fhir/Observation", declared(LAB, "ru-observation-lab")),
        ("POST Patient/$validate?profile=ru-patient", False, f"/fhir/Patient/$validate?profile={SD}ru-patient", PATIENT),
    ]
    headers = {"Content-Type": "application/fhir+json"}
    for label, enforce, path, body in cases:
        client = apps[enforce].test_client()
        data = orjson.dumps(body)

        def post(client=client, path=path, data=data):
            r = client.post(path, data=data, headers=headers)
            assert r.status_code in (200, 201), r.get_data(as_text=True)[:500]

        timed(post, 20)
        out.append((label, timed(post, n)))
    for app in apps.values():
        app.config["FHIR_STORE"].engine.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "BENCHMARKS.md")
    args = ap.parse_args(argv)
    facts = report.machine_facts()
    v = validator_costs(args.requests)
    h = http_costs(args.requests)
    lines = ["## RU profile benchmark: the cost of checking a write against an RU profile", "",
             (f"{facts['date']}, commit {facts['commit']}, {facts['nproc']} CPU ({facts['cpu']}), {facts['mem']}, "
              f"Python {facts['python']}; embedded store, FHIR_AUTH=off. `bench/bench_profiles.py --requests {args.requests}`."), "",
             "| Validator alone (`profiles_ru.profiles.issues`, packaged terminology) | median | p95 |", "|---|---:|---:|"]
    lines += [f"| {label} | {statistics.median(t) * 1e6:.0f} µs | {report.pct(t, 95) * 1e6:.0f} µs |" for label, t in v]
    lines += ["", "| Request | median | p95 |", "|---|---:|---:|"]
    lines += [f"| {label} | {statistics.median(t) * 1e3:.2f} ms | {report.pct(t, 95) * 1e3:.2f} ms |" for label, t in h]
    base = statistics.median(h[0][1])
    lines += ["", (f"A write that declares no profile pays one look at `meta.profile` (row 3 of the first table). Declaring ru-patient "
                   f"adds {(statistics.median(h[1][1]) - base) * 1e3:.2f} ms to the median POST ({base * 1e3:.2f} ms); the bindings are "
                   "answered from the terminology service's in-memory expansions, the store is asked once per write for newer "
                   "versions of the profile."), ""]
    text = "\n".join(lines) + "\n"
    print(text)
    report.write_section(args.out, "bench_profiles", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
