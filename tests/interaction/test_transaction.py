"""transaction Bundles (R4 http.html 3.1.0.11.2, bundle.html 3.3.1.5)."""

from __future__ import annotations

import pytest

from tests.conftest import patient

SYS = "urn:oid:1.2.643.100.3"  # СНИЛС


def txn(*entries) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def post(resource, full_url=None, **request) -> dict:
    e = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}
    if full_url:
        e["fullUrl"] = full_url
    return e


def put(resource, url=None, **request) -> dict:
    return {"resource": resource, "request": {"method": "PUT", "url": url or f"{resource['resourceType']}/{resource['id']}", **request}}


def req(method, url, **request) -> dict:
    return {"request": {"method": method, "url": url, **request}}


def observation(subject: str, **extra) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        **extra,
    }


def snils(value: str) -> list:
    return [{"system": SYS, "value": value}]


def system_total(client) -> int:
    r = client.get("/fhir/_history?_count=1")
    assert r.status_code == 200
    return r.get_json()["total"]


def issue_expr(r) -> str:
    return r.get_json()["issue"][0]["expression"][0]


# -- success -------------------------------------------------------------------------
def test_urn_uuid_references_rewritten_and_response_in_request_order(client):
    pat_url = "urn:uuid:11111111-1111-4111-8111-111111111111"
    obs_url = "urn:uuid:22222222-2222-4222-8222-222222222222"
    bundle = txn(
        # Observation first: the reference points forward to a later entry.
        post(observation(pat_url), obs_url),
        post(patient(), pat_url),
        post({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "subject": {"reference": pat_url}}, "urn:uuid:33333333-3333-4333-8333-333333333333"),
    )
    r = client.post("/fhir", bundle)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "transaction-response"
    entries = body["entry"]
    assert len(entries) == 3
    types = []
    for e in entries:
        assert e["response"]["status"] == "201 Created"
        assert e["response"]["etag"] == 'W/"1"'
        loc = e["response"]["location"]
        rtype, rid, hist, ver = loc.split("/")
        assert (hist, ver) == ("_history", "1")
        assert e["fullUrl"].endswith(f"/fhir/{rtype}/{rid}")
        assert "resource" not in e  # default return=minimal
        types.append((rtype, rid))
    assert [t for t, _ in types] == ["Observation", "Patient", "Encounter"]
    pid = types[1][1]
    obs = client.get(f"/fhir/Observation/{types[0][1]}").get_json()
    assert obs["subject"] == {"reference": f"Patient/{pid}"}
    enc = client.get(f"/fhir/Encounter/{types[2][1]}").get_json()
    assert enc["subject"] == {"reference": f"Patient/{pid}"}
    assert client.get(f"/fhir/Patient/{pid}").status_code == 200


def test_urn_uuid_in_put_resource_rewritten(client):
    pat_url = "urn:uuid:44444444-4444-4444-8444-444444444444"
    bundle = txn(post(patient(), pat_url), put({**observation(pat_url), "id": "obs-1"}))
    r = client.post("/fhir", bundle)
    assert r.status_code == 200, r.get_data(as_text=True)
    pid = r.get_json()["entry"][0]["response"]["location"].split("/")[1]
    assert r.get_json()["entry"][1]["response"]["status"] == "201 Created"
    assert client.get("/fhir/Observation/obs-1").get_json()["subject"]["reference"] == f"Patient/{pid}"


def test_delete_runs_before_get(client):
    client.put("/fhir/Patient/x1", patient(id="x1"))
    # GET listed first, DELETE second: GETs are processed last, so the GET sees the delete.
    r = client.post("/fhir", txn(req("GET", "Patient/x1"), req("DELETE", "Patient/x1")))
    # A GET failing inside a transaction fails the transaction (410 Gone).
    assert r.status_code == 410, r.get_data(as_text=True)
    assert issue_expr(r).startswith("Bundle.entry[0]")
    # Nothing happened: the delete was rolled back.
    assert client.get("/fhir/Patient/x1").status_code == 200


def test_put_runs_before_get(client):
    client.put("/fhir/Patient/x2", patient(id="x2"))
    r = client.post("/fhir", txn(req("GET", "Patient/x2"), put(patient(id="x2", gender="female"))))
    assert r.status_code == 200, r.get_data(as_text=True)
    got, updated = r.get_json()["entry"]
    assert got["response"]["status"] == "200 OK"
    assert got["resource"]["gender"] == "female"
    assert got["resource"]["meta"]["versionId"] == "2"
    assert updated["response"]["status"] == "200 OK"
    assert updated["response"]["etag"] == 'W/"2"'


def test_delete_then_post_in_one_transaction(client):
    client.put("/fhir/Patient/x3", patient(id="x3"))
    r = client.post("/fhir", txn(post(patient()), req("DELETE", "Patient/x3")))
    assert r.status_code == 200, r.get_data(as_text=True)
    created, deleted = r.get_json()["entry"]
    assert created["response"]["status"] == "201 Created"
    assert deleted["response"]["status"] == "200 OK"
    assert client.get("/fhir/Patient/x3").status_code == 410


# -- all or nothing --------------------------------------------------------------------
def _assert_nothing_written(client, before: int, ids=()):
    assert system_total(client) == before
    for ref in ids:
        assert client.get(f"/fhir/{ref}").status_code == 404


def test_invalid_third_entry_fails_everything(client):
    before = system_total(client)
    r = client.post(
        "/fhir",
        txn(
            put(patient(id="t0")),
            put(observation("Patient/t0", id="t1")),
            put(patient(id="t2", birthDate="1980-13-45")),
        ),
    )
    assert r.status_code == 400, r.get_data(as_text=True)
    exprs = [e for i in r.get_json()["issue"] for e in i["expression"]]
    assert exprs and all(e.startswith("Bundle.entry[2]") for e in exprs)
    assert "Bundle.entry[2].resource.birthDate" in exprs
    _assert_nothing_written(client, before, ["Patient/t0", "Observation/t1", "Patient/t2"])


def test_stale_if_match_fails_everything(client):
    client.put("/fhir/Patient/s1", patient(id="s1"))
    client.put("/fhir/Patient/s1", patient(id="s1", gender="female"))
    before = system_total(client)
    r = client.post(
        "/fhir",
        txn(
            put(patient(id="n1")),
            post(patient()),
            put(patient(id="s1", gender="other"), ifMatch='W/"1"'),
        ),
    )
    assert r.status_code == 412, r.get_data(as_text=True)
    assert issue_expr(r).startswith("Bundle.entry[2]")
    _assert_nothing_written(client, before, ["Patient/n1"])
    assert client.get("/fhir/Patient/s1").get_json()["gender"] == "female"


def test_conditional_update_with_multiple_matches_fails_everything(client):
    client.create(patient(identifier=snils("dup")))
    client.create(patient(identifier=snils("dup")))
    before = system_total(client)
    r = client.post(
        "/fhir",
        txn(put(patient(id="n2")), post(patient()), put(patient(), url=f"Patient?identifier={SYS}|dup")),
    )
    assert r.status_code == 412, r.get_data(as_text=True)
    assert issue_expr(r).startswith("Bundle.entry[2]")
    _assert_nothing_written(client, before, ["Patient/n2"])


def test_delete_of_unknown_id_fails_everything(client):
    before = system_total(client)
    r = client.post("/fhir", txn(put(patient(id="n3")), post(patient()), req("DELETE", "Patient/never-existed")))
    assert r.status_code == 404, r.get_data(as_text=True)
    assert issue_expr(r).startswith("Bundle.entry[2]")
    _assert_nothing_written(client, before, ["Patient/n3"])


def test_failed_update_leaves_previous_version_current(client):
    client.put("/fhir/Patient/u1", patient(id="u1"))
    before = system_total(client)
    r = client.post("/fhir", txn(put(patient(id="u1", gender="female")), req("DELETE", "Patient/never-existed")))
    assert r.status_code == 404
    assert system_total(client) == before
    got = client.get("/fhir/Patient/u1")
    assert got.get_json()["gender"] == "male"
    assert got.headers["ETag"] == 'W/"1"'
    assert client.get("/fhir/Patient/u1/_history/2").status_code == 404


# -- ifNoneExist -------------------------------------------------------------------------
def test_if_none_exist_matching_returns_existing_and_redirects_references(client):
    existing = client.create(patient(identifier=snils("111")))
    pat_url = "urn:uuid:55555555-5555-4555-8555-555555555555"
    before = system_total(client)
    r = client.post(
        "/fhir",
        txn(
            post(patient(identifier=snils("111"), gender="female"), pat_url, ifNoneExist=f"identifier={SYS}|111"),
            post(observation(pat_url)),
        ),
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    e0, e1 = r.get_json()["entry"]
    assert e0["response"]["status"] == "200 OK"
    assert e0["response"]["location"] == f"Patient/{existing['id']}/_history/1"
    assert e1["response"]["status"] == "201 Created"
    oid = e1["response"]["location"].split("/")[1]
    assert client.get(f"/fhir/Observation/{oid}").get_json()["subject"]["reference"] == f"Patient/{existing['id']}"
    assert system_total(client) == before + 1  # only the Observation
    assert client.get(f"/fhir/Patient/{existing['id']}").get_json()["gender"] == "male"


def test_if_none_exist_not_matching_creates(client):
    client.create(patient(identifier=snils("111")))
    pat_url = "urn:uuid:66666666-6666-4666-8666-666666666666"
    r = client.post(
        "/fhir",
        txn(post(patient(identifier=snils("222")), pat_url, ifNoneExist=f"identifier={SYS}|222"), post(observation(pat_url))),
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    e0, e1 = r.get_json()["entry"]
    assert e0["response"]["status"] == "201 Created"
    pid = e0["response"]["location"].split("/")[1]
    oid = e1["response"]["location"].split("/")[1]
    assert client.get(f"/fhir/Observation/{oid}").get_json()["subject"]["reference"] == f"Patient/{pid}"
    assert client.get(f"/fhir/Patient/{pid}").get_json()["identifier"] == snils("222")


def test_if_none_exist_multiple_matches_fails(client):
    client.create(patient(identifier=snils("333")))
    client.create(patient(identifier=snils("333")))
    before = system_total(client)
    r = client.post("/fhir", txn(post(patient()), post(patient(), ifNoneExist=f"identifier={SYS}|333")))
    assert r.status_code == 412, r.get_data(as_text=True)
    assert issue_expr(r).startswith("Bundle.entry[1]")
    assert system_total(client) == before


# -- conditional references -------------------------------------------------------------
def test_conditional_reference_resolved(client):
    p = client.create(patient(identifier=snils("444")))
    client.create(patient(identifier=snils("555")))
    r = client.post("/fhir", txn(post(observation(f"Patient?identifier={SYS}|444"))))
    assert r.status_code == 200, r.get_data(as_text=True)
    oid = r.get_json()["entry"][0]["response"]["location"].split("/")[1]
    assert client.get(f"/fhir/Observation/{oid}").get_json()["subject"]["reference"] == f"Patient/{p['id']}"


def test_conditional_reference_to_resource_created_in_same_transaction(client):
    # Conditional references are resolved against the database as it is before the
    # transaction: a Patient POSTed in the same Bundle is not a match (404).
    before = system_total(client)
    r = client.post("/fhir", txn(post(patient(identifier=snils("777"))), post(observation(f"Patient?identifier={SYS}|777"))))
    assert r.status_code == 404, r.get_data(as_text=True)
    assert system_total(client) == before


def test_conditional_reference_no_match_fails(client):
    client.create(patient(identifier=snils("444")))
    before = system_total(client)
    r = client.post("/fhir", txn(put(patient(id="c1")), post(observation(f"Patient?identifier={SYS}|999"))))
    assert r.status_code == 404, r.get_data(as_text=True)
    assert issue_expr(r).startswith("Bundle.entry[1]")
    _assert_nothing_written(client, before, ["Patient/c1"])


def test_conditional_reference_two_matches_fails(client):
    client.create(patient(identifier=snils("444")))
    client.create(patient(identifier=snils("444")))
    before = system_total(client)
    r = client.post("/fhir", txn(put(patient(id="c2")), post(observation(f"Patient?identifier={SYS}|444"))))
    assert r.status_code == 412, r.get_data(as_text=True)
    assert issue_expr(r).startswith("Bundle.entry[1]")
    _assert_nothing_written(client, before, ["Patient/c2"])


def test_conditional_reference_unknown_parameter_fails(client):
    client.create(patient(identifier=snils("444")))
    r = client.post("/fhir", txn(post(observation("Patient?no-such-param=Иванов"))))
    assert r.status_code == 400, r.get_data(as_text=True)
    assert issue_expr(r).startswith("Bundle.entry[0]")


def test_conditional_reference_by_any_search_parameter(client):
    p = client.create(patient(identifier=snils("444")))
    r = client.post("/fhir", txn(post(observation("Patient?name=иванов&birthdate=1980"))))
    assert r.status_code == 200, r.get_data(as_text=True)
    obs = client.get("/fhir/" + r.get_json()["entry"][0]["response"]["location"].split("/_history")[0]).get_json()
    assert obs["subject"]["reference"] == f"Patient/{p['id']}"


# -- malformed bundles -------------------------------------------------------------------
@pytest.mark.parametrize(
    "bundle, expr",
    [
        (txn(post(patient(), "urn:uuid:77777777-7777-4777-8777-777777777777"), post(patient(), "urn:uuid:77777777-7777-4777-8777-777777777777")), "Bundle.entry[1].fullUrl"),
        (txn(put(patient(id="same")), put(patient(id="same", gender="female"))), "Bundle.entry[1]"),
        (txn(put(patient(id="same")), req("DELETE", "Patient/same")), "Bundle.entry[1]"),
        (txn(post(patient()), {"resource": patient(), "request": {"method": "FETCH", "url": "Patient"}}), "Bundle.entry[1].request.method"),
        (txn(post(patient()), {"resource": patient()}), "Bundle.entry[1].request"),
        (txn(post(patient()), {"resource": patient(), "request": {"method": "POST"}}), "Bundle.entry[1].request.url"),
        (txn(post(patient()), req("POST", "Patient")), "Bundle.entry[1].resource"),
        (txn(post(patient()), {"resource": patient(), "request": {"method": "POST", "url": "Observation"}}), "Bundle.entry[1].resource.resourceType"),
        ({"resourceType": "Bundle", "type": "collection", "entry": [post(patient())]}, "Bundle.type"),
        ({"resourceType": "Bundle", "entry": [post(patient())]}, "Bundle.type"),
        (patient(), "Bundle"),
    ],
    ids=["dup-fullurl", "dup-target-put", "dup-target-delete", "bad-method", "no-request", "no-url", "post-without-resource", "type-mismatch", "collection", "no-type", "not-a-bundle"],
)
def test_malformed_transaction_is_400(client, bundle, expr):
    before = system_total(client)
    r = client.post("/fhir", bundle)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["resourceType"] == "OperationOutcome"
    assert issue_expr(r) == expr
    assert system_total(client) == before


def test_non_json_array_body_is_400(client):
    r = client.post("/fhir", [1, 2])
    assert r.status_code == 400


def test_empty_transaction(client):
    r = client.post("/fhir", {"resourceType": "Bundle", "type": "transaction"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["type"] == "transaction-response"
    assert "entry" not in body


# -- Prefer ------------------------------------------------------------------------------
def test_prefer_representation_returns_resources(client):
    r = client.post("/fhir", txn(post(patient()), put(patient(id="p1"))), headers={"Prefer": "return=representation"})
    assert r.status_code == 200
    e0, e1 = r.get_json()["entry"]
    assert e0["resource"]["resourceType"] == "Patient"
    assert e0["resource"]["meta"]["versionId"] == "1"
    assert e0["resource"]["id"] == e0["response"]["location"].split("/")[1]
    assert e1["resource"]["id"] == "p1"
    assert "outcome" not in e0["response"]


def test_prefer_operation_outcome_returns_outcomes(client):
    r = client.post("/fhir", txn(post(patient()), put(patient(id="p2"))), headers={"Prefer": "return=OperationOutcome"})
    assert r.status_code == 200
    for e in r.get_json()["entry"]:
        assert "resource" not in e
        assert e["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert e["response"]["outcome"]["issue"][0]["severity"] == "information"


def test_prefer_minimal_is_default(client):
    for headers in ({}, {"Prefer": "return=minimal"}):
        r = client.post("/fhir", txn(post(patient())), headers=headers)
        assert r.status_code == 200
        (e,) = r.get_json()["entry"]
        assert "resource" not in e
        assert "outcome" not in e["response"]
        assert e["response"]["status"] == "201 Created"


# -- PATCH ------------------------------------------------------------------------------
def _binary_patch(ops) -> dict:
    import base64
    import json

    return {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": base64.b64encode(json.dumps(ops).encode()).decode()}


def test_patch_entry_in_transaction(client):
    client.put("/fhir/Patient/pp", patient(id="pp"))
    r = client.post(
        "/fhir",
        txn(
            {"resource": _binary_patch([{"op": "replace", "path": "/gender", "value": "female"}]), "request": {"method": "PATCH", "url": "Patient/pp"}},
            req("GET", "Patient/pp"),
        ),
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    e0, e1 = r.get_json()["entry"]
    assert e0["response"]["status"] == "200 OK"
    assert e0["response"]["etag"] == 'W/"2"'
    assert e1["resource"]["gender"] == "female"


def test_patch_entry_failure_rolls_back(client):
    client.put("/fhir/Patient/pq", patient(id="pq"))
    before = system_total(client)
    r = client.post(
        "/fhir",
        txn(
            post(patient()),
            {"resource": _binary_patch([{"op": "replace", "path": "/birthDate", "value": "not-a-date"}]), "request": {"method": "PATCH", "url": "Patient/pq"}},
        ),
    )
    assert r.status_code == 422, r.get_data(as_text=True)
    assert issue_expr(r).startswith("Bundle.entry[1]")
    assert system_total(client) == before


def test_conditional_update_body_id_must_match(client):
    p = client.create(patient(identifier=snils("888")))
    before = system_total(client)
    r = client.post("/fhir", txn(put(patient(id="other", identifier=snils("888")), url=f"Patient?identifier={SYS}|888")))
    assert r.status_code == 400, r.get_data(as_text=True)
    assert issue_expr(r) == "Bundle.entry[0].resource.id"
    assert system_total(client) == before
    assert client.get("/fhir/Patient/other").status_code == 404
    assert client.get(f"/fhir/Patient/{p['id']}").headers["ETag"] == 'W/"1"'


def test_conditional_update_without_match_creates(client):
    r = client.post("/fhir", txn(put(patient(identifier=snils("999")), url=f"Patient?identifier={SYS}|999")))
    assert r.status_code == 200, r.get_data(as_text=True)
    (e,) = r.get_json()["entry"]
    assert e["response"]["status"] == "201 Created"
    rid = e["response"]["location"].split("/")[1]
    assert client.get(f"/fhir/Patient/{rid}").get_json()["identifier"] == snils("999")


def test_post_to_instance_url_is_refused(client):
    r = client.post("/fhir", txn(post(patient(), url="Patient/abc")))
    assert r.status_code == 400, r.get_data(as_text=True)
    assert issue_expr(r) == "Bundle.entry[0].request.url"
    assert client.get("/fhir/Patient/abc").status_code == 404


@pytest.mark.parametrize(
    "entry, status, expr",
    [
        ({"resource": patient(), "request": {"method": "POST", "url": "NoSuchType"}}, 404, "Bundle.entry[1]"),
        ({"resource": patient(id="a_b"), "request": {"method": "PUT", "url": "Patient/a_b"}}, 400, "Bundle.entry[1]"),
        ({"resource": patient(), "request": {"method": "POST", "url": "https://elsewhere.example/fhir/Patient"}}, 400, "Bundle.entry[1].request.url"),
    ],
    ids=["unknown-type", "bad-id", "foreign-base"],
)
def test_bad_entry_url_names_the_entry(client, entry, status, expr):
    before = system_total(client)
    r = client.post("/fhir", txn(post(patient()), entry))
    assert r.status_code == status, r.get_data(as_text=True)
    assert issue_expr(r) == expr
    assert system_total(client) == before
