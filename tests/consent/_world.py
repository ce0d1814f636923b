"""A small world of two patients, two practitioners and their data, for consent tests.

`as_(app, principal)` switches who the app believes is asking (the authenticator the
SMART authorization server installs); the data is written as the open principal.
"""

from __future__ import annotations

from consent.principal import OPEN, Principal
from consent.scopes import ScopeSet

LOINC = "http://loinc.org"
LAB = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}
VITAL = {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


def as_(app, principal: Principal) -> None:
    app.config["FHIR_AUTHENTICATOR"] = lambda request: principal


def doctor(n: int = 1, scopes: str = "user/*.cruds") -> Principal:
    return Principal("practitioner", subject=f"doc{n}", fhir_user=f"Practitioner/dr{n}", scopes=ScopeSet.from_string(scopes))


def patient_user(pid: str, scopes: str = "patient/*.rs patient/Consent.cruds patient/Patient.rus") -> Principal:
    return Principal("patient", subject=f"acc-{pid}", fhir_user=f"Patient/{pid}", scopes=ScopeSet.from_string(scopes), patient=pid)


def consent(cid: str, pid: str, actor: str = "Practitioner/dr1", status: str = "active", **provision) -> dict:
    prov = {"type": "permit", "actor": [{"role": {"text": "doctor"}, "reference": {"reference": actor}}], **provision}
    return {
        "resourceType": "Consent",
        "id": cid,
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "provision": prov,
    }


def put(client, resource: dict) -> dict:
    r = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", resource)
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    return r.get_json()


def build(app, client) -> None:
    as_(app, OPEN)
    put(client, {"resourceType": "Organization", "id": "org1", "name": "ГКБ №1"})
    for n in (1, 2):
        put(client, {"resourceType": "Practitioner", "id": f"dr{n}", "name": [{"family": f"Врач{n}"}]})
    for pid, family in (("pa", "Алексеева"), ("pb", "Борисов")):
        put(client, {"resourceType": "Patient", "id": pid, "name": [{"family": family}], "managingOrganization": {"reference": "Organization/org1"}})
        put(client, {"resourceType": "Encounter", "id": f"enc-{pid}", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{pid}"}})
        for i, (cat, code, label) in enumerate(((LAB, "2345-7", None), (VITAL, "8480-6", None), (LAB, "7905-3", RESTRICTED))):
            obs = {
                "resourceType": "Observation",
                "id": f"obs-{pid}-{i}",
                "status": "final",
                "category": [{"coding": [cat]}],
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": f"Encounter/enc-{pid}"},
                "performer": [{"reference": "Practitioner/dr1"}],
                "valueQuantity": {"value": 100 + i, "system": "http://unitsofmeasure.org", "code": "mg/dL"},
            }
            if label:
                obs["meta"] = {"security": [label]}
            put(client, obs)
    # Provenance of pb's lab result: it targets the Observation, so it is in no patient's compartment.
    put(client, {"resourceType": "Provenance", "id": "prov-pb", "target": [{"reference": "Observation/obs-pb-0"}],
                 "recorded": "2024-01-01T00:00:00Z", "agent": [{"who": {"reference": "Practitioner/dr1"}}]})
