"""A small demo medical card, loaded at start with `fhir-server serve --demo`.

One patient of a Moscow polyclinic with a type 2 diabetes history: an encounter, lab
and vital-sign observations, a lab report, a prescription and a consent. Fixed ids and
PUT entries make loading idempotent. It goes through the public transaction path, as
every seed does. Beside it, FHIR_DEMO_PATIENTS generated patients (seed/generator.py, seed 1;
the first DEMO_GRANTED of them also grant demo-practitioner-1) make the demo card a living one.

With the SMART authorization server on (FHIR_AUTH=smart), `load_demo_auth` adds the
demo accounts (DEMO_ACCOUNTS) and two clients with fixed ids (DEMO_CLIENTS). Passwords
come from FHIR_DEMO_PASSWORD (all accounts) and FHIR_DEMO_CLIENT_SECRET; unset, they are
generated and printed once to the console. None is ever committed or logged.
"""

from __future__ import annotations

import logging
import sys

import orjson

log = logging.getLogger("seed.demo")

SNILS = "urn:oid:1.2.643.100.3"
LOINC = "http://loinc.org"
ICD10 = "urn:oid:1.2.643.5.1.13.13.11.1005"  # МКБ-10 in the Minzdrav NSI


def _obs(oid: str, code: str, display: str, value: dict, when: str, category: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": "Patient/demo-patient-1"},
        "encounter": {"reference": "Encounter/demo-encounter-1"},
        "effectiveDateTime": when,
        "performer": [{"reference": "Practitioner/demo-practitioner-1"}],
        **value,
    }


def demo_resources() -> list[dict]:
    when = "2026-10-14T09:30:00+03:00"
    return [
        {
            "resourceType": "Organization",
            "id": "demo-org-1",
            "active": True,
            "name": "ГБУЗ «Городская поликлиника № 2 ДЗМ»",
            "address": [{"city": "Москва", "line": ["ул. Фрунзе, д. 12"], "country": "RU"}],
        },
        {
            "resourceType": "Practitioner",
            "id": "demo-practitioner-1",
            "active": True,
            "identifier": [{"system": SNILS, "value": "11223344595"}],
            "name": [{"family": "Смирнова", "given": ["Елена", "Викторовна"], "text": "Смирнова Елена Викторовна"}],
            "gender": "female",
        },
        {
            "resourceType": "Practitioner",
            "id": "demo-practitioner-2",
            "active": True,
            "identifier": [{"system": SNILS, "value": "12345678964"}],
            "name": [{"family": "Кузнецов", "given": ["Андрей", "Павлович"], "text": "Кузнецов Андрей Павлович"}],
            "gender": "male",
        },
        {
            "resourceType": "Patient",
            "id": "demo-patient-1",
            "active": True,
            "identifier": [{"system": SNILS, "value": "08765432102"}],
            "name": [{"use": "official", "family": "Иванов", "given": ["Иван", "Иванович"], "text": "Иванов Иван Иванович"}],
            "gender": "male",
            "birthDate": "1961-03-12",
            "telecom": [{"system": "phone", "value": "+7 900 000-00-00", "use": "mobile"}],
            "address": [{"city": "Москва", "line": ["ул. Тверская, д. 1, кв. 1"], "postalCode": "125009", "country": "RU"}],
            "managingOrganization": {"reference": "Organization/demo-org-1"},
            "generalPractitioner": [{"reference": "Practitioner/demo-practitioner-1"}],
        },
        {
            "resourceType": "Condition",
            "id": "demo-condition-1",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": ICD10, "code": "E11.9", "display": "Сахарный диабет 2 типа без осложнений"}]},
            "subject": {"reference": "Patient/demo-patient-1"},
            "onsetDateTime": "2019-05-20",
        },
        {
            "resourceType": "Encounter",
            "id": "demo-encounter-1",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
            "subject": {"reference": "Patient/demo-patient-1"},
            "participant": [{"individual": {"reference": "Practitioner/demo-practitioner-1"}}],
            "period": {"start": when, "end": "2026-10-14T10:00:00+03:00"},
            "reasonReference": [{"reference": "Condition/demo-condition-1"}],
            "serviceProvider": {"reference": "Organization/demo-org-1"},
        },
        _obs("demo-obs-glucose", "2345-7", "Глюкоза в крови", {"valueQuantity": {"value": 7.4, "unit": "ммоль/л", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}, when, "laboratory"),
        _obs("demo-obs-hba1c", "4548-4", "Гликированный гемоглобин (HbA1c)", {"valueQuantity": {"value": 7.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}, when, "laboratory"),
        _obs(
            "demo-obs-bp",
            "85354-9",
            "Артериальное давление",
            {
                "component": [
                    {"code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Систолическое"}]}, "valueQuantity": {"value": 138, "unit": "мм рт. ст.", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                    {"code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Диастолическое"}]}, "valueQuantity": {"value": 86, "unit": "мм рт. ст.", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                ]
            },
            when,
            "vital-signs",
        ),
        {
            "resourceType": "DiagnosticReport",
            "id": "demo-report-1",
            "status": "final",
            "code": {"text": "Биохимический анализ крови"},
            "subject": {"reference": "Patient/demo-patient-1"},
            "encounter": {"reference": "Encounter/demo-encounter-1"},
            "effectiveDateTime": when,
            "issued": "2026-10-14T15:00:00+03:00",
            "performer": [{"reference": "Organization/demo-org-1"}],
            "result": [{"reference": "Observation/demo-obs-glucose"}, {"reference": "Observation/demo-obs-hba1c"}],
            "conclusion": "Гипергликемия; компенсация диабета неполная.",
        },
        {
            "resourceType": "MedicationRequest",
            "id": "demo-medrx-1",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": {"text": "Метформин 1000 мг, таблетки"},
            "subject": {"reference": "Patient/demo-patient-1"},
            "encounter": {"reference": "Encounter/demo-encounter-1"},
            "authoredOn": "2026-10-14",
            "requester": {"reference": "Practitioner/demo-practitioner-1"},
            "dosageInstruction": [{"text": "По 1 таблетке 2 раза в день во время еды"}],
        },
        {
            "resourceType": "Consent",
            "id": "demo-consent-1",
            "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/demo-patient-1"},
            "dateTime": "2026-10-14T09:25:00+03:00",
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {
                "type": "permit",
                "actor": [
                    {
                        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
                        "reference": {"reference": "Practitioner/demo-practitioner-1"},
                    }
                ],
            },
        },
    ]


def demo_bundle() -> dict:
    entries = []
    for r in demo_resources():
        entries.append(
            {"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def load_demo(app) -> None:
    from consent.principal import Principal
    from fhir_server.app import internal_client

    client = internal_client(app, Principal("admin", subject="demo-seed", client_id="fhir-server"))
    r = client.post("/fhir", data=orjson.dumps(demo_bundle()), headers={"Content-Type": "application/fhir+json"})
    if r.status_code != 200:
        raise RuntimeError(f"demo card did not load: HTTP {r.status_code}")
    log.info("demo card loaded: %d resources, Patient/demo-patient-1", len(r.get_json()["entry"]))
    load_demo_population(app, client)


DEMO_SEED = 1
DEMO_GRANTED = 5  # the first generated patients also grant demo-practitioner-1 (doctor@demo.example); nobody grants -2


def demo_population_consents(patients: int) -> list[dict]:
    """Consents of the first DEMO_GRANTED generated patients naming demo-practitioner-1, so the demo doctor has a panel."""
    from .generator import Population

    prefix = Population(0, DEMO_SEED).prefix
    out = []
    for i in range(min(patients, DEMO_GRANTED)):
        consent = next(r for r in demo_resources() if r["id"] == "demo-consent-1")
        out.append({**consent, "id": f"demo-consent-{prefix}-pat-{i}", "patient": {"reference": f"Patient/{prefix}-pat-{i}"}})
    return out


def load_demo_population(app, client) -> None:
    """FHIR_DEMO_PATIENTS generated patients (seed DEMO_SEED) beside the fixed card, through the same transaction path."""
    from .generator import Population, transaction
    from .load import load

    patients = app.config["FHIR_SETTINGS"].demo_patients
    if not patients:
        return

    def post(data: bytes) -> tuple[int, dict]:
        r = client.post("/fhir", data=data, headers={"Content-Type": "application/fhir+json"})
        return r.status_code, r.get_json(silent=True) or {}

    report = load(Population(patients, DEMO_SEED), post)
    if report.failures:
        raise RuntimeError(f"demo population did not load: {report.failures[0]}")
    status, _ = post(orjson.dumps(transaction(demo_population_consents(patients))))
    if status != 200:
        raise RuntimeError(f"demo population consents did not load: HTTP {status}")
    log.info("demo population loaded: %d patients, %d resources in %.1f s", patients, report.resources, report.seconds)


# login, role, fhirUser, name
DEMO_ACCOUNTS = (
    ("patient@demo.example", "patient", "Patient/demo-patient-1", "Иванов Иван Иванович"),
    ("doctor@demo.example", "practitioner", "Practitioner/demo-practitioner-1", "Смирнова Елена Викторовна"),
    ("doctor2@demo.example", "practitioner", "Practitioner/demo-practitioner-2", "Кузнецов Андрей Павлович"),
    ("registrar@demo.example", "staff", None, "Регистратура"),
    ("admin@demo.example", "admin", None, "Администратор"),
)
DEMO_REDIRECT_URIS = ("http://localhost:8000/callback", "http://127.0.0.1:8000/callback")
DEMO_SCOPE = "openid fhirUser launch/patient offline_access online_access patient/*.cruds user/*.cruds"
DEMO_PUBLIC_CLIENT = "demo-public-app"
DEMO_CONFIDENTIAL_CLIENT = "demo-confidential-app"


def load_demo_auth(app) -> None:
    """Demo accounts and clients; the generated passwords and secret are printed once."""
    service = app.extensions.get("fhir_auth")
    if service is None:  # FHIR_AUTH=off
        return
    from fhir_server.auth import passwords
    from fhir_server.auth.clients import register_client

    settings = app.config["FHIR_SETTINGS"]
    fixed_password = settings.demo_password.get_secret_value() if settings.demo_password else None
    if fixed_password:
        try:
            passwords.check(fixed_password)
        except passwords.PasswordPolicyError as exc:
            raise RuntimeError(f"FHIR_DEMO_PASSWORD does not meet the password policy. {exc}") from None
    fixed_secret = settings.demo_client_secret.get_secret_value() if settings.demo_client_secret else None
    records = service.records
    shown = []
    for login, role, fhir_user, name in DEMO_ACCOUNTS:
        if records.account_by_login(login) is not None:
            continue
        password = fixed_password or passwords.generate()
        records.add_account(login, role, password, fhir_user=fhir_user, name=name)
        shown.append((login, role, fhir_user or "-", "(FHIR_DEMO_PASSWORD)" if fixed_password else password))
    secret = None
    if records.client(DEMO_PUBLIC_CLIENT) is None:
        register_client(records, name="Demo patient app (public)", public=True, redirect_uris=DEMO_REDIRECT_URIS,
                        scope=DEMO_SCOPE, client_id=DEMO_PUBLIC_CLIENT)
    if records.client(DEMO_CONFIDENTIAL_CLIENT) is None:
        _, secret = register_client(records, name="Demo clinic app (confidential)", public=False, redirect_uris=DEMO_REDIRECT_URIS,
                                    scope=DEMO_SCOPE, client_id=DEMO_CONFIDENTIAL_CLIENT, secret=fixed_secret)
    log.info("demo accounts and clients ready: %s, %s", DEMO_PUBLIC_CLIENT, DEMO_CONFIDENTIAL_CLIENT)
    if not shown and secret is None:
        return
    # Printed, not logged: the console of `make run` is where a developer looks for them.
    lines = ["", "Demo sign-in (shown once; set FHIR_DEMO_PASSWORD / FHIR_DEMO_CLIENT_SECRET to fix them):"]
    lines += [f"  {login:<24} {role:<13} {fhir_user:<34} password: {password}" for login, role, fhir_user, password in shown]
    lines.append(f"  client {DEMO_PUBLIC_CLIENT} (public, PKCE), redirect URIs: {' '.join(DEMO_REDIRECT_URIS)}")
    lines.append("  OMS policy (ENP) of Patient/demo-patient-1 for POST /fhir/Patient/demo-patient-1/$bind-oms-policy: "
                 "7700000000000016 (registry: seed/oms_policies.json)")
    if secret is not None:
        shown_secret = "(FHIR_DEMO_CLIENT_SECRET)" if fixed_secret else secret
        lines.append(f"  client {DEMO_CONFIDENTIAL_CLIENT} (confidential), client_secret: {shown_secret}")
    print("\n".join(lines) + "\n", file=sys.stderr, flush=True)
