"""Search at every level over HTTP: GET vs POST _search, compartment search, system search,
Patient/$everything (R4 http.html 3.1.0.11, search.html 3.1.1, compartmentdefinition.html,
patient-operation-everything.html).
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from ._data import LOINC, bundle, delete, enc, error, link, matches, mk, obs, patient, private_client, refs

FORM = "application/x-www-form-urlencoded"


def _data(client) -> dict[str, str]:
    w: dict[str, str] = {}
    w["org"] = mk(client, {"resourceType": "Organization", "name": "Клиника"})
    w["pr"] = mk(client, {"resourceType": "Practitioner", "name": [{"family": "Врачев"}]})
    w["pat1"] = mk(
        client,
        patient(
            "Иванов",
            ["Иван"],
            birthDate="1980-01-01",
            managingOrganization={"reference": f"Organization/{w['org']}"},
            generalPractitioner=[{"reference": f"Practitioner/{w['pr']}"}],
        ),
    )
    w["pat2"] = mk(client, patient("Иванова", ["Мария"], birthDate="1990-01-01"))
    w["pat3"] = mk(client, patient("Петров", ["Пётр"], birthDate="1985-01-01"))
    p1, p2 = w["pat1"], w["pat2"]
    w["o1"] = mk(client, obs("A", subject=f"Patient/{p1}", effectiveDateTime="2021-01-01"))
    w["o2"] = mk(client, obs("B", subject=f"Patient/{p1}", effectiveDateTime="2021-02-01"))
    w["o3"] = mk(client, obs("A", subject=f"Patient/{p2}", effectiveDateTime="2021-03-01"))
    # pat1 is only the performer here: still in pat1's compartment
    w["o4"] = mk(client, obs("A", subject=f"Patient/{p2}") | {"performer": [{"reference": f"Patient/{p1}"}]})
    w["o5"] = mk(client, obs("A"))
    w["enc1"] = mk(
        client,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{p1}"},
        },
    )
    w["med"] = mk(client, {"resourceType": "Medication", "code": {"text": "Аспирин"}})
    w["mr1"] = mk(
        client,
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationReference": {"reference": f"Medication/{w['med']}"},
            "subject": {"reference": f"Patient/{p1}"},
            "requester": {"reference": f"Practitioner/{w['pr']}"},
        },
    )
    return w


def _named(w, got: set[str]) -> set[str]:
    back = {f"{t}/{i}": k for k, i in w.items() for t in ("Patient", "Observation", "Encounter", "MedicationRequest", "Organization", "Practitioner", "Medication")}
    return {back.get(r, r) for r in got}


def _post(client, path: str, form: list[tuple[str, str]], content_type: str = FORM):
    return client.request("POST", enc(path), data=urlencode(form).encode(), content_type=content_type)


# -- GET vs POST -----------------------------------------------------------------------------------
SAME_QUERIES = [
    [("family", "иванов")],
    [("family", "иванов"), ("given", "мария")],
    [("birthdate", "ge1985-01-01"), ("_sort", "-birthdate")],
    [("name", "иван,петр"), ("_sort", "family"), ("_count", "2")],
    [("_has:Observation:subject:code", "A")],
]


@pytest.mark.parametrize("form", SAME_QUERIES, ids=[urlencode(f) for f in SAME_QUERIES])
def test_post_search_equals_get(data_ro, form):
    client, data = data_ro
    g = bundle(client, "/fhir/Patient?" + "&".join(f"{k}={v}" for k, v in form))
    r = _post(client, "/fhir/Patient/_search", form)
    assert r.status_code == 200, r.get_data(as_text=True)
    p = r.get_json()
    assert p["type"] == "searchset"
    assert [e["resource"]["id"] for e in matches(p)] == [e["resource"]["id"] for e in matches(g)]
    assert p["total"] == g["total"]
    assert bool(link(p, "next")) == bool(link(g, "next"))
    if link(p, "next"):  # the next link of a POST search is a GET that continues it
        assert [e["resource"]["id"] for e in matches(bundle(client, link(p, "next")))] == [
            e["resource"]["id"] for e in matches(bundle(client, link(g, "next")))
        ]


def test_post_search_url_and_body_together(client, data):
    r = _post(client, "/fhir/Patient/_search?family=иванов", [("given", "мария")])
    assert r.status_code == 200
    assert {e["resource"]["id"] for e in matches(r.get_json())} == {data["pat2"]}
    r = _post(client, "/fhir/Patient/_search", [])
    assert r.status_code == 200 and r.get_json()["total"] == 3


def test_post_search_other_content_type(client, data):
    for ctype in ("application/json", "application/fhir+json", "text/plain"):
        issue = error(client, "/fhir/Patient/_search", 415, method="POST", data=b"family=x", content_type=ctype)
        assert issue["code"] == "not-supported"
    r = client.get("/fhir/Patient/_search")
    assert r.status_code == 405


# -- compartment -------------------------------------------------------------------------------------
def test_compartment_search(client, data):
    p1 = data["pat1"]
    q = lambda path: _named(data, refs(client, path))  # noqa: E731
    assert q(f"/fhir/Patient/{p1}/Observation") == {"o1", "o2", "o4"}
    assert q(f"/fhir/Patient/{p1}/Observation?code=A") == {"o1", "o4"}
    assert q(f"/fhir/Patient/{p1}/Observation?code=A&date=2021-01") == {"o1"}
    assert q(f"/fhir/Patient/{p1}/Observation?code=Z") == set()
    assert q(f"/fhir/Patient/{data['pat2']}/Observation") == {"o3", "o4"}
    assert q(f"/fhir/Patient/{data['pat3']}/Observation") == set()
    assert q(f"/fhir/Patient/{p1}/Encounter") == {"enc1"}
    assert q(f"/fhir/Patient/{p1}/MedicationRequest?status=active") == {"mr1"}
    b = bundle(client, f"/fhir/Patient/{p1}/Observation?_count=1&_sort=date")
    assert b["total"] == 3
    assert link(b, "self").startswith(f"http://localhost/fhir/Patient/{p1}/Observation?")
    pages = []
    url = f"/fhir/Patient/{p1}/Observation?_count=1&_sort=-_lastUpdated"
    while url:
        b = bundle(client, url)
        pages += [e["resource"]["id"] for e in matches(b)]
        url = link(b, "next")
    assert pages == [data["o4"], data["o2"], data["o1"]]
    r = _post(client, f"/fhir/Patient/{p1}/Observation/_search", [("code", "B")])
    assert r.status_code == 200
    assert {e["resource"]["id"] for e in matches(r.get_json())} == {data["o2"]}


# -- system ------------------------------------------------------------------------------------------
def test_system_search(client, data):
    w = data
    q = lambda path: _named(w, refs(client, path))  # noqa: E731
    assert q(f"/fhir?_type=Patient,Observation&_id={w['pat1']},{w['o3']},{w['enc1']}") == {"pat1", "o3"}
    assert q(f"/fhir?_type=Patient&_id={w['pat1']},{w['o3']}") == {"pat1"}
    assert q(f"/fhir?_type=Patient,Encounter&_id={w['pat1']},{w['o3']},{w['enc1']}") == {"pat1", "enc1"}
    assert q("/fhir?_type=Patient,Organization") == {"pat1", "pat2", "pat3", "org"}
    assert q(f"/fhir?_type=Patient,Observation&_lastUpdated=ge2000-01-01&_id={w['pat3']},{w['o5']}") == {"pat3", "o5"}
    r = _post(client, "/fhir/_search", [("_type", "Patient,Observation"), ("_id", f"{w['pat2']},{w['o1']}")])
    assert r.status_code == 200
    assert {e["resource"]["id"] for e in matches(r.get_json())} == {w["pat2"], w["o1"]}
    # paging over several types: every resource once
    got, url = [], "/fhir?_type=Patient,Observation&_count=3"
    while url:
        b = bundle(client, url)
        assert b["total"] == 8
        got += [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in matches(b)]
        url = link(b, "next")
    assert len(got) == len(set(got)) == 8


def test_system_search_sorts_across_types(client, data):
    """_sort orders the whole result set, not each type on its own (search.html 3.1.1.5.4)."""
    w = data
    created = [f"Patient/{w[k]}" for k in ("pat1", "pat2", "pat3")] + [f"Observation/{w[f'o{i}']}" for i in range(1, 6)]
    for count in (3, 100):
        got, url = [], f"/fhir?_type=Patient,Observation&_count={count}&_sort=-_lastUpdated"
        while url:
            b = bundle(client, url)
            got += [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in matches(b)]
            url = link(b, "next")
        assert got == created[::-1], count


# -- $everything -------------------------------------------------------------------------------------
def test_everything(client, data):
    w, p1 = data, data["pat1"]
    got = _named(w, refs(client, f"/fhir/Patient/{p1}/$everything?_count=500"))
    # the compartment at least (the referenced support resources are checked below)
    assert {"pat1", "o1", "o2", "o4", "enc1", "mr1"} <= got
    assert not got & {"pat2", "pat3", "o3", "o5"}
    assert _named(w, refs(client, f"/fhir/Patient/{w['pat3']}/$everything")) == {"pat3"}
    assert _named(w, refs(client, f"/fhir/Patient/{p1}/$everything?_type=Observation")) == {"o1", "o2", "o4"}
    assert _named(w, refs(client, f"/fhir/Patient/{p1}/$everything?_type=Patient,Encounter")) == {"pat1", "enc1"}
    r = client.get("/fhir/Patient/no-such-patient/$everything")
    assert r.status_code == 404


def test_everything_includes_referenced_resources(client, data):
    """R4 patient-operation-everything: "The server also returns whatever resources are needed to
    support the records - e.g. linked practitioners, medications, locations, organizations etc."
    (HAPI FHIR adds the resources the compartment refers to.)"""
    w = data
    b = client.get(enc(f"/fhir/Patient/{w['pat1']}/$everything?_count=500")).get_json()
    modes = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["search"]["mode"] for e in b["entry"]}
    assert _named(w, set(modes)) == {"pat1", "o1", "o2", "o4", "enc1", "mr1", "org", "pr", "med"}
    # The compartment's own resources are the matches (and the total); what they refer to comes as includes.
    assert _named(w, {r for r, m in modes.items() if m == "match"}) == {"pat1", "o1", "o2", "o4", "enc1", "mr1"}
    assert b["total"] == 6


def test_everything_since_and_paging(client, data):
    w, p1 = data, data["pat1"]
    all_refs = refs(client, f"/fhir/Patient/{p1}/$everything")
    # _count pages through every resource exactly once
    seen, url, n = [], f"/fhir/Patient/{p1}/$everything?_count=2", 0
    while url:
        n += 1
        assert n < 30
        b = bundle(client, url)
        assert len(matches(b)) <= 2
        seen += [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in matches(b)]
        url = link(b, "next")
    assert len(seen) == len(set(seen)) and set(seen) == all_refs
    assert n == (len(all_refs) + 1) // 2
    # _since: only what changed since then
    time.sleep(0.005)
    since = client.create(obs("C", subject=f"Patient/{p1}"))["meta"]["lastUpdated"]
    o6 = client.create(obs("D", subject=f"Patient/{p1}"))["id"]
    client.put(f"/fhir/Observation/{w['o2']}", obs("B2", subject=f"Patient/{p1}") | {"id": w["o2"]})
    delete(client, "Observation", w["o1"])
    got = refs(client, f"/fhir/Patient/{p1}/$everything?_since={since}")
    assert {f"Observation/{o6}", f"Observation/{w['o2']}"} <= got
    assert f"Observation/{w['o1']}" not in got and f"Patient/{p1}" not in got
    assert f"Observation/{w['o1']}" not in refs(client, f"/fhir/Patient/{p1}/$everything")


def test_search_levels_agree(client, data):
    """The same criteria at type, compartment and system level find the same resources."""
    p1 = data["pat1"]
    t = refs(client, f"/fhir/Observation?subject=Patient/{p1}&code={LOINC}|A")
    c = refs(client, f"/fhir/Patient/{p1}/Observation?subject=Patient/{p1}&code={LOINC}|A")
    assert t == c == {f"Observation/{data['o1']}"}


def test_other_compartments(client, data):
    w = data
    enc_obs = mk(client, obs("E", subject=f"Patient/{w['pat1']}") | {"encounter": {"reference": f"Encounter/{w['enc1']}"}})
    perf_obs = mk(client, obs("P", subject=f"Patient/{w['pat2']}") | {"performer": [{"reference": f"Practitioner/{w['pr']}"}]})
    assert refs(client, f"/fhir/Encounter/{w['enc1']}/Observation") == {f"Observation/{enc_obs}"}
    assert refs(client, f"/fhir/Practitioner/{w['pr']}/Observation") == {f"Observation/{perf_obs}"}
    assert refs(client, f"/fhir/Practitioner/{w['pr']}/MedicationRequest") == {f"MedicationRequest/{w['mr1']}"}
    assert refs(client, f"/fhir/Practitioner/{w['pr']}/Observation?code=E") == set()


@pytest.fixture
def data(client) -> dict[str, str]:
    return _data(client)


@pytest.fixture(scope="module")
def data_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _data(c)
