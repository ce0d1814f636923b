"""Unknown and malformed parameters, error language, and how writes change what matches
(R4 search.html 3.1.1.2 handling, http.html 3.1.0.11; search.html 3.1.1.5 result parameters).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from ._data import bundle, delete, error, ids, link, mk, obs, patient, private_client

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
STRICT = {"Prefer": "handling=strict"}
RU = {"Accept-Language": "ru"}


def _two(client) -> dict[str, str]:
    return {"a": mk(client, patient("Иванов", birthDate="1980-01-01")), "b": mk(client, patient("Петров", birthDate="1990-01-01"))}


# -- unknown parameters ---------------------------------------------------------------------------------
def test_unknown_parameters_ignored_and_left_out_of_self(client, two):
    assert ids(client, "/fhir/Patient?family=иванов&foo=bar") == {two["a"]}
    b = bundle(client, "/fhir/Patient?foo=bar&family=иванов&_count=5&unknown:exact=1")
    self_params = parse_qsl(urlsplit(link(b, "self")).query)
    assert ("family", "иванов") in self_params and ("_count", "5") in self_params
    assert not any(k in ("foo", "unknown:exact") for k, _ in self_params), self_params
    assert ids(client, "/fhir/Patient?foo=bar") == {two["a"], two["b"]}
    b = bundle(client, "/fhir/Patient?foo=bar", headers={"Prefer": "handling=lenient"})
    assert b["total"] == 2 and "foo" not in link(b, "self")
    # an unknown parameter at the end of a chain is unknown too
    b = bundle(client, "/fhir/Observation?subject:Patient.nosuchparam=x")
    assert "nosuchparam" not in link(b, "self")


@pytest.mark.parametrize(
    "query,name",
    [
        ("foo=bar", "foo"),
        ("family=иванов&foo=bar", "foo"),
        ("family=иванов&organization.nosuch=x", "organization.nosuch"),
        ("_has:Observation:subject:nosuch=x", "_has:Observation:subject:nosuch"),
    ],
)
def test_unknown_parameters_strict(two_ro, query, name):
    client, two = two_ro
    issue = error(client, f"/fhir/Patient?{query}", 400, headers=STRICT)
    assert name in issue["diagnostics"], issue
    issue = error(client, f"/fhir/Patient?{query}", 400, headers={**STRICT, **RU})
    assert name in issue["diagnostics"] and CYRILLIC.search(issue["diagnostics"]), issue


def test_strict_with_only_known_parameters_is_fine(client, two):
    assert ids(client, "/fhir/Patient?family=иванов&_count=5&_sort=family", headers=STRICT) == {two["a"]}


# -- malformed values -----------------------------------------------------------------------------------
MALFORMED = [
    ("/fhir/Patient?birthdate=notadate", "birthdate"),
    ("/fhir/Patient?birthdate=2020-13-45", "birthdate"),
    ("/fhir/Patient?birthdate=gt", "birthdate"),
    ("/fhir/Patient?birthdate=xx2020", "birthdate"),
    ("/fhir/Patient?_lastUpdated=yesterday", "_lastUpdated"),
    ("/fhir/Observation?value-quantity=abc", "value-quantity"),
    ("/fhir/Observation?value-quantity=1|a|b|c", "value-quantity"),
    ("/fhir/RiskAssessment?probability=ten", "probability"),
    ("/fhir/Observation?code-value-quantity=http://loinc.org|8480-6", "code-value-quantity"),
    ("/fhir/Observation?code-value-quantity=8480-6$abc", "code-value-quantity"),
    ("/fhir/Patient?identifier=a|b|c", "identifier"),
    ("/fhir/Patient?identifier:of-type=a|b", "identifier:of-type"),
    ("/fhir/Patient?_count=x", "_count"),
    ("/fhir/Patient?_count=-1", "_count"),
    ("/fhir/Patient?name:foo=x", "name"),
    ("/fhir/Patient?gender:exact=male", "gender"),
    ("/fhir/Patient?birthdate:contains=1980", "birthdate"),
    ("/fhir/Patient?name:missing=maybe", "name:missing"),
    ("/fhir/Patient?name:text=x", "name"),
    ("/fhir/Patient?name:below=x", "name"),
    ("/fhir/Observation?code:contains=x", "code"),
    ("/fhir/Patient?gender:identifier=x|y", "gender"),
    ("/fhir/Patient?birthdate:not=1980", "birthdate"),
    ("/fhir/Patient?_sort=nosuchparam", "nosuchparam"),
    ("/fhir/Patient?_sort=-nosuchparam", "nosuchparam"),
    ("/fhir/Patient?_total=sometimes", "_total"),
    ("/fhir/Patient?_summary=maybe", "_summary"),
    ("/fhir/Observation?_include=Observation:nosuch", "_include"),
    ("/fhir/Observation?_include=Observation:subject:Medication", "_include"),
    ("/fhir/Patient?_revinclude=Observation:code", "_revinclude"),
    ("/fhir/Patient?_has:Observation:nosuch:code=A", "_has:Observation:nosuch:code"),
    ("/fhir/Observation?subject:Medication=123", "subject"),
    ("/fhir/Observation?subject:Device=Patient/123", "subject"),
    ("/fhir/Observation?status.name=x", "status.name"),
    ("/fhir/Patient?_cursor=not-a-cursor", "_cursor"),
    ("/fhir?_type=Patient,NoSuchType", "_type"),
]


@pytest.mark.parametrize("path,name", MALFORMED, ids=[p.split("?", 1)[1] for p, _ in MALFORMED])
def test_malformed_values(two_ro, path, name):
    client, two = two_ro
    issue = error(client, path, 400)
    assert name in issue["diagnostics"], issue
    issue = error(client, path, 400, headers=RU)
    assert name in issue["diagnostics"], issue
    assert CYRILLIC.search(issue["diagnostics"]), issue


@pytest.mark.parametrize("lang", ["ru", "ru-RU", "ru-RU,ru;q=0.9,en;q=0.5", "de, ru;q=0.8"])
def test_russian_by_accept_language(two_ro, lang):
    client, two = two_ro
    issue = error(client, "/fhir/Patient?_count=x", 400, headers={"Accept-Language": lang})
    assert "_count" in issue["diagnostics"] and CYRILLIC.search(issue["diagnostics"]), issue
    issue = error(client, "/fhir/Patient?foo=1", 400, headers={"Accept-Language": lang, **STRICT})
    assert "foo" in issue["diagnostics"] and CYRILLIC.search(issue["diagnostics"]), issue


def test_russian_diagnostics_differ_from_english(client, two):
    en = error(client, "/fhir/Patient?birthdate=notadate", 400)
    ru = error(client, "/fhir/Patient?birthdate=notadate", 400, headers=RU)
    assert not CYRILLIC.search(en["diagnostics"].replace("notadate", ""))
    assert CYRILLIC.search(ru["diagnostics"]) and en["diagnostics"] != ru["diagnostics"]
    assert "birthdate" in ru["diagnostics"] and "notadate" in ru["diagnostics"]


def test_cursor_of_another_query_is_refused(client, two):
    for i in range(5):
        mk(client, patient(f"П{i}"))
    b = bundle(client, "/fhir/Patient?_count=2&_sort=family")
    nxt = link(b, "next")
    cursor = dict(parse_qsl(urlsplit(nxt).query))["_cursor"]
    issue = error(client, f"/fhir/Patient?_count=2&_sort=-birthdate&_cursor={cursor}", 400)
    assert "_cursor" in issue["diagnostics"]
    issue = error(client, f"/fhir/Observation?_count=2&_cursor={cursor}", 400)
    assert "_cursor" in issue["diagnostics"]


def test_system_search_needs_type(client, two):
    issue = error(client, "/fhir?family=иванов", 400)
    assert "_type" in issue["diagnostics"]


# -- deletes and updates ----------------------------------------------------------------------------------
def test_deleted_resources_never_match(client):
    org = mk(client, {"resourceType": "Organization", "name": "Клиника"})
    p1 = mk(client, patient("Удаляемый", ["Иван"], birthDate="1970-01-01", managingOrganization={"reference": f"Organization/{org}"}))
    p2 = mk(client, patient("Остающийся", ["Иван"], birthDate="1970-01-01"))
    o1 = mk(client, obs("A", subject=f"Patient/{p1}"))
    o2 = mk(client, obs("A", subject=f"Patient/{p2}"))
    o3 = mk(client, obs("B", subject=f"Patient/{p2}"))
    delete(client, "Patient", p1)
    delete(client, "Observation", o3)
    assert ids(client, "/fhir/Patient?given=иван") == {p2}
    assert ids(client, "/fhir/Patient?family=удаляемый") == set()
    assert ids(client, f"/fhir/Patient?_id={p1}") == set()
    assert ids(client, "/fhir/Patient?birthdate=1970-01-01") == {p2}
    assert ids(client, f"/fhir/Patient?organization={org}") == set()
    assert ids(client, "/fhir/Patient?family:missing=false") == {p2}
    assert ids(client, "/fhir/Patient?_lastUpdated=ge2000") == {p2}
    assert ids(client, "/fhir/Patient") == {p2}
    assert bundle(client, "/fhir/Patient")["total"] == 1
    assert bundle(client, "/fhir/Patient?_summary=count")["total"] == 1
    # chains and _has see neither the deleted target nor the deleted source
    assert ids(client, "/fhir/Observation?subject:Patient.family=удаляемый") == set()
    assert ids(client, "/fhir/Observation?subject:Patient.given=иван") == {o2}
    assert ids(client, "/fhir/Patient?_has:Observation:subject:code=B") == set()
    assert ids(client, "/fhir/Patient?_has:Observation:subject:code=A") == {p2}
    assert ids(client, "/fhir/Organization?_has:Patient:organization:given=иван") == set()
    # the observation that refers to the deleted patient still exists and still matches by reference
    assert ids(client, f"/fhir/Observation?subject=Patient/{p1}") == {o1}
    assert ids(client, f"/fhir/Observation?_id={o3}") == set()
    assert ids(client, "/fhir/Observation?code=B") == set()
    assert ids(client, f"/fhir?_type=Patient,Observation&_id={p1},{o3},{o2}") == {o2}
    assert ids(client, f"/fhir/Patient/{p2}/Observation") == {o2}
    # a deleted resource brought back by an update matches by its new values only
    r = client.put(f"/fhir/Patient/{p1}", {**patient("Вернувшийся", ["Пётр"]), "id": p1})
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    assert ids(client, "/fhir/Patient?family=вернувшийся") == {p1}
    assert ids(client, "/fhir/Patient?family=удаляемый") == set()
    assert ids(client, "/fhir/Patient?birthdate=1970-01-01") == {p2}
    assert ids(client, f"/fhir/Patient?organization={org}") == set()


def test_updated_resources_match_by_new_values_only(client):
    p1 = mk(client, patient("Старая", ["Анна"], birthDate="1970-01-01", identifier=[{"system": "urn:x", "value": "1"}]))
    p2 = mk(client, patient("Другая", ["Анна"]))
    o = client.create(obs("A", subject=f"Patient/{p1}", valueQuantity={"value": 5, "system": "http://unitsofmeasure.org", "code": "g"}))
    client.put(
        f"/fhir/Patient/{p1}",
        {**patient("Новая", ["Мария"], birthDate="1980-05-05", identifier=[{"system": "urn:x", "value": "2"}]), "id": p1},
    )
    client.put(f"/fhir/Observation/{o['id']}", obs("B", subject=f"Patient/{p2}", valueQuantity={"value": 7, "system": "http://unitsofmeasure.org", "code": "g"}) | {"id": o["id"]})
    assert ids(client, "/fhir/Patient?family=старая") == set()
    assert ids(client, "/fhir/Patient?family=новая") == {p1}
    assert ids(client, "/fhir/Patient?given=анна") == {p2}
    assert ids(client, "/fhir/Patient?given=мария") == {p1}
    assert ids(client, "/fhir/Patient?birthdate=1970-01-01") == set()
    assert ids(client, "/fhir/Patient?birthdate=1980-05") == {p1}
    assert ids(client, "/fhir/Patient?identifier=urn:x|1") == set()
    assert ids(client, "/fhir/Patient?identifier=urn:x|2") == {p1}
    assert ids(client, f"/fhir/Observation?subject=Patient/{p1}") == set()
    assert ids(client, f"/fhir/Observation?subject=Patient/{p2}") == {o["id"]}
    assert ids(client, "/fhir/Observation?code=A") == set()
    assert ids(client, "/fhir/Observation?value-quantity=5") == set()
    assert ids(client, "/fhir/Observation?value-quantity=7|http://unitsofmeasure.org|g") == {o["id"]}
    assert ids(client, "/fhir/Patient?_has:Observation:subject:code=B") == {p2}
    assert ids(client, "/fhir/Patient?_has:Observation:subject:code=A") == set()
    assert ids(client, "/fhir/Observation?subject:Patient.family=старая") == set()
    assert ids(client, "/fhir/Observation?subject:Patient.family=другая") == {o["id"]}
    assert ids(client, f"/fhir/Patient/{p1}/Observation") == set()
    # PATCH re-indexes too
    r = client.patch(f"/fhir/Patient/{p1}", [{"op": "replace", "path": "/name/0/family", "value": "Пропатченная"}])
    assert r.status_code == 200, r.get_data(as_text=True)
    assert ids(client, "/fhir/Patient?family=новая") == set()
    assert ids(client, "/fhir/Patient?family=пропатченная") == {p1}
    # element removed by an update: :missing follows
    client.put(f"/fhir/Patient/{p2}", {"resourceType": "Patient", "id": p2, "gender": "female"})
    assert ids(client, "/fhir/Patient?name:missing=true") == {p2}
    assert ids(client, "/fhir/Patient?gender=female") == {p2}


def test_strict_applies_to_post_search(client, two):
    r = client.request(
        "POST",
        "/fhir/Patient/_search",
        data="family=%D0%B8%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2&bogus=1".encode(),
        content_type="application/x-www-form-urlencoded",
        headers=STRICT,
    )
    assert r.status_code == 400, r.get_data(as_text=True)
    body = r.get_json()
    assert body["resourceType"] == "OperationOutcome" and "bogus" in body["issue"][0]["diagnostics"]
    r = client.request(
        "POST",
        "/fhir/Patient/_search",
        data="family=%D0%B8%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2&bogus=1".encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert r.status_code == 200
    assert {e["resource"]["id"] for e in r.get_json()["entry"]} == {two["a"]}
    assert "bogus" not in next(l["url"] for l in r.get_json()["link"] if l["relation"] == "self")


@pytest.fixture
def two(client) -> dict[str, str]:
    return _two(client)


@pytest.fixture(scope="module")
def two_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _two(c)
