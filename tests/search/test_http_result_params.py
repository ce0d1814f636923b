"""Result parameters over HTTP (R4 search.html 3.1.1.5): _sort, _count, _total, _summary,
_elements, _include and _revinclude (with :iterate), search.mode.
"""

from __future__ import annotations

import pytest

from ._data import SUBSETTED, bundle, delete, ids, included, link, matches, mk, obs, ordered, patient, private_client


# -- _sort ------------------------------------------------------------------------------------------
def _sortable(client) -> dict[str, str]:
    return {
        "p1": mk(client, patient("Бета", ["Анна"], birthDate="1990-01-01", gender="female")),
        "p2": mk(client, patient("Альфа", ["Борис"], birthDate="1985-01-01", gender="male")),
        "p3": mk(client, patient("Альфа", ["Анна"], birthDate="2000-01-01", gender="female")),
        "p4": mk(client, patient("Гамма", ["Яков", "Аарон"], birthDate="1970-01-01", gender="male")),
        "p5": mk(client, patient("Ёлкин", ["Вера"], birthDate="1995-01-01", gender="male")),
    }


SORT_CASES = [
    ("family,given", ["p3", "p2", "p1", "p4", "p5"]),  # Ё sorts as Е, after Г
    ("-family,given", ["p5", "p4", "p1", "p3", "p2"]),
    ("family,-given", ["p2", "p3", "p1", "p4", "p5"]),
    ("birthdate", ["p4", "p2", "p1", "p5", "p3"]),
    ("-birthdate", ["p3", "p5", "p1", "p2", "p4"]),
    ("gender,birthdate", ["p1", "p3", "p4", "p2", "p5"]),
    ("gender,-birthdate", ["p3", "p1", "p5", "p2", "p4"]),
    ("-gender,family", ["p2", "p4", "p5", "p3", "p1"]),
    # a repeating element sorts by its lowest value ascending, its highest descending
    ("given,birthdate", ["p4", "p1", "p3", "p2", "p5"]),
    ("-given,birthdate", ["p4", "p5", "p2", "p1", "p3"]),
]


@pytest.mark.parametrize("sort,expected", SORT_CASES, ids=[s for s, _ in SORT_CASES])
def test_sort(sortable_ro, sort, expected):
    client, sortable = sortable_ro
    want = [sortable[k] for k in expected]
    assert ordered(client, f"/fhir/Patient?_sort={sort}") == want
    # the same order across pages of two
    assert ordered(client, f"/fhir/Patient?_sort={sort}&_count=2") == want


def test_sort_id_and_last_updated(client, sortable):
    created = list(sortable.values())  # creation order
    assert ordered(client, "/fhir/Patient?_sort=_lastUpdated") == created
    assert ordered(client, "/fhir/Patient?_sort=-_lastUpdated") == created[::-1]
    assert ordered(client, "/fhir/Patient?_sort=_id") == sorted(created)
    assert ordered(client, "/fhir/Patient?_sort=-_id&_count=3") == sorted(created, reverse=True)
    # an update moves a resource to the end of _lastUpdated order
    p1 = sortable["p1"]
    client.put(f"/fhir/Patient/{p1}", {**patient("Бета", ["Анна"], birthDate="1990-01-02", gender="female"), "id": p1})
    assert ordered(client, "/fhir/Patient?_sort=_lastUpdated") == [*[i for i in created if i != p1], p1]
    # sort combined with a filter
    assert ordered(client, "/fhir/Patient?gender=male&_sort=-birthdate") == [sortable[k] for k in ("p5", "p2", "p4")]


def test_sort_token_and_date_on_observations(client):
    a = mk(client, obs("B", effectiveDateTime="2021-01-02T10:00:00Z"))
    b = mk(client, obs("A", effectiveDateTime="2021-01-02T09:00:00+03:00"))  # 06:00Z
    c = mk(client, obs("C", effectiveDateTime="2020-12-31"))
    assert ordered(client, "/fhir/Observation?_sort=date") == [c, b, a]
    assert ordered(client, "/fhir/Observation?_sort=-date") == [a, b, c]
    assert ordered(client, "/fhir/Observation?_sort=code") == [b, a, c]
    assert ordered(client, "/fhir/Observation?_sort=-code") == [c, a, b]


# -- _count, _total, _summary, _elements ----------------------------------------------------------
def test_count_default_and_total(client):
    made = {mk(client, patient(f"Пациент{i:02d}")) for i in range(25)}
    b = bundle(client, "/fhir/Patient")
    assert len(matches(b)) == 20  # FHIR_DEFAULT_PAGE_SIZE
    assert b["total"] == 25
    assert link(b, "next")
    b = bundle(client, "/fhir/Patient?_count=7")
    assert len(matches(b)) == 7 and b["total"] == 25
    b = bundle(client, "/fhir/Patient?_count=100")
    assert len(matches(b)) == 25 and link(b, "next") is None
    assert {e["resource"]["id"] for e in matches(b)} == made
    b = bundle(client, "/fhir/Patient?_count=0")
    assert b["total"] == 25 and "entry" not in b
    b = bundle(client, "/fhir/Patient?_total=none")
    assert "total" not in b and len(matches(b)) == 20
    b = bundle(client, "/fhir/Patient?_total=accurate&family=пациент0")
    assert b["total"] == 10 and len(matches(b)) == 10
    b = bundle(client, "/fhir/Patient?_summary=count")
    assert b["total"] == 25 and "entry" not in b
    b = bundle(client, "/fhir/Patient?_summary=count&family=пациент1")
    assert b["total"] == 10 and "entry" not in b


def _full_patient() -> dict:
    return patient(
        "Полный",
        ["Пётр"],
        birthDate="1970-02-03",
        gender="male",
        text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Полный Пётр</div>'},
        maritalStatus={"text": "женат"},
        contact=[{"name": {"family": "Контакт"}}],
        communication=[{"language": {"text": "русский"}}],
    )


def _tagged(res: dict) -> bool:
    return any(t.get("code") == SUBSETTED for t in res.get("meta", {}).get("tag", []))


def test_summary_true_and_elements(client):
    pid = mk(client, _full_patient())
    mk(client, patient("Другой"))
    b = bundle(client, "/fhir/Patient?family=полный&_summary=true")
    assert b["total"] == 1
    (res,) = [e["resource"] for e in matches(b)]
    assert res["id"] == pid and _tagged(res)
    assert res["name"][0]["family"] == "Полный" and res["birthDate"] == "1970-02-03" and res["gender"] == "male"
    for absent in ("text", "maritalStatus", "contact", "communication"):
        assert absent not in res, absent

    b = bundle(client, "/fhir/Patient?family=полный&_elements=name,birthDate")
    (res,) = [e["resource"] for e in matches(b)]
    assert _tagged(res)
    assert set(res) == {"resourceType", "id", "meta", "name", "birthDate"}

    b = bundle(client, "/fhir/Patient?family=полный&_summary=text")
    (res,) = [e["resource"] for e in matches(b)]
    assert _tagged(res) and set(res) == {"resourceType", "id", "meta", "text"}

    b = bundle(client, "/fhir/Patient?family=полный&_summary=data")
    (res,) = [e["resource"] for e in matches(b)]
    assert _tagged(res) and "text" not in res and "contact" in res

    b = bundle(client, "/fhir/Patient?family=полный&_summary=false")
    (res,) = [e["resource"] for e in matches(b)]
    assert not _tagged(res) and "contact" in res and "text" in res

    b = bundle(client, "/fhir/Patient?family=полный")
    (res,) = [e["resource"] for e in matches(b)]
    assert not _tagged(res) and "contact" in res


# -- _include / _revinclude ------------------------------------------------------------------------
def _graph(client) -> dict[str, str]:
    g: dict[str, str] = {}
    g["org1"] = mk(client, {"resourceType": "Organization", "name": "Клиника"})
    g["org2"] = mk(client, {"resourceType": "Organization", "name": "Фарм-завод"})
    g["pr1"] = mk(client, {"resourceType": "Practitioner", "name": [{"family": "Врачев"}]})
    g["pat1"] = mk(
        client,
        patient("Иванов", managingOrganization={"reference": f"Organization/{g['org1']}"}, generalPractitioner=[{"reference": f"Practitioner/{g['pr1']}"}]),
    )
    g["pat2"] = mk(client, patient("Петров"))
    g["pat3"] = mk(client, patient("Сидоров"))  # nothing refers to this one
    g["grp"] = mk(client, {"resourceType": "Group", "type": "person", "actual": True})
    g["obs1"] = mk(client, obs("A", subject=f"Patient/{g['pat1']}") | {"performer": [{"reference": f"Practitioner/{g['pr1']}"}]})
    g["obs2"] = mk(client, obs("B", subject=f"Patient/{g['pat2']}"))
    g["obs3"] = mk(client, obs("A", subject=f"Group/{g['grp']}"))
    g["obs4"] = mk(client, obs("B", subject=f"Patient/{g['pat1']}"))
    g["med"] = mk(
        client,
        {"resourceType": "Medication", "code": {"text": "Аспирин"}, "manufacturer": {"reference": f"Organization/{g['org2']}"}},
    )
    g["mr"] = mk(
        client,
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationReference": {"reference": f"Medication/{g['med']}"},
            "subject": {"reference": f"Patient/{g['pat2']}"},
        },
    )
    return g


def _split(client, g, path):
    """(match ids, include ids as keys of g) of one page, each entry checked once."""
    b = bundle(client, path.format(**g))
    back = {v: k for k, v in g.items()}
    m = [back.get(e["resource"]["id"], e["resource"]["id"]) for e in matches(b)]
    inc = [back.get(e["resource"]["id"], e["resource"]["id"]) for e in included(b)]
    assert len(m) + len(inc) == len(b.get("entry", [])), "an entry without search.mode match/include"
    assert len(set(m)) == len(m) and len(set(inc)) == len(inc), (m, inc)
    for e in b.get("entry", []):
        r = e["resource"]
        assert e["fullUrl"] == f"http://localhost/fhir/{r['resourceType']}/{r['id']}"
    return b, set(m), set(inc)


INCLUDE_CASES = [
    ("/fhir/Observation?_include=Observation:subject", {"obs1", "obs2", "obs3", "obs4"}, {"pat1", "pat2", "grp"}),
    ("/fhir/Observation?_include=Observation:subject:Patient", {"obs1", "obs2", "obs3", "obs4"}, {"pat1", "pat2"}),
    ("/fhir/Observation?_include=Observation:subject:Group", {"obs1", "obs2", "obs3", "obs4"}, {"grp"}),
    ("/fhir/Observation?_include=Observation:patient", {"obs1", "obs2", "obs3", "obs4"}, {"pat1", "pat2"}),
    ("/fhir/Observation?code=A&_include=Observation:subject", {"obs1", "obs3"}, {"pat1", "grp"}),
    ("/fhir/Observation?code=B&_include=Observation:subject", {"obs2", "obs4"}, {"pat1", "pat2"}),
    ("/fhir/Observation?code=A&_include=Observation:performer", {"obs1", "obs3"}, {"pr1"}),
    (
        "/fhir/Observation?code=A&_include=Observation:subject&_include=Observation:performer",
        {"obs1", "obs3"},
        {"pat1", "grp", "pr1"},
    ),
    ("/fhir/Observation?code=A&_include=Observation:*", {"obs1", "obs3"}, {"pat1", "grp", "pr1"}),
    ("/fhir/Observation?code=A&_include=*", {"obs1", "obs3"}, {"pat1", "grp", "pr1"}),
    ("/fhir/Observation?code=Z&_include=Observation:subject", set(), set()),
    # not iterated: Patient:organization is not applied to included Patients
    ("/fhir/Observation?code=A&_include=Observation:subject&_include=Patient:organization", {"obs1", "obs3"}, {"pat1", "grp"}),
    # :iterate - Observation -> Patient -> Organization / Practitioner
    (
        "/fhir/Observation?code=A&_include=Observation:subject&_include:iterate=Patient:organization",
        {"obs1", "obs3"},
        {"pat1", "grp", "org1"},
    ),
    (
        "/fhir/Observation?code=B&_include=Observation:patient&_include:iterate=Patient:*",
        {"obs2", "obs4"},
        {"pat1", "pat2", "org1", "pr1"},
    ),
    # MedicationRequest -> Medication -> Organization (manufacturer)
    ("/fhir/MedicationRequest?_include=MedicationRequest:medication", {"mr"}, {"med"}),
    (
        "/fhir/MedicationRequest?_include=MedicationRequest:medication&_include:iterate=Medication:manufacturer",
        {"mr"},
        {"med", "org2"},
    ),
    (
        "/fhir/MedicationRequest?_include=MedicationRequest:medication&_include=MedicationRequest:patient"
        "&_include:iterate=Medication:manufacturer",
        {"mr"},
        {"med", "org2", "pat2"},
    ),
    # _revinclude
    ("/fhir/Patient?_revinclude=Observation:subject", {"pat1", "pat2", "pat3"}, {"obs1", "obs2", "obs4"}),
    ("/fhir/Patient?family=иванов&_revinclude=Observation:subject", {"pat1"}, {"obs1", "obs4"}),
    ("/fhir/Patient?family=сидоров&_revinclude=Observation:subject", {"pat3"}, set()),
    ("/fhir/Patient?family=петров&_revinclude=Observation:patient&_revinclude=MedicationRequest:patient", {"pat2"}, {"obs2", "mr"}),
    ("/fhir/Group?_revinclude=Observation:subject", {"grp"}, {"obs3"}),
    ("/fhir/Group?_revinclude=Observation:patient", {"grp"}, set()),
    ("/fhir/Practitioner?_revinclude=Observation:performer&_revinclude=Patient:general-practitioner", {"pr1"}, {"obs1", "pat1"}),
    # _revinclude:iterate: Organization <- Patient <- Observation
    (
        "/fhir/Organization?name=клиника&_revinclude=Patient:organization&_revinclude:iterate=Observation:subject",
        {"org1"},
        {"pat1", "obs1", "obs4"},
    ),
    ("/fhir/Organization?name=клиника&_revinclude=Patient:organization&_revinclude=Observation:subject", {"org1"}, {"pat1"}),
    # _include and _revinclude together
    (
        "/fhir/Patient?family=иванов&_include=Patient:organization&_revinclude=Observation:subject",
        {"pat1"},
        {"org1", "obs1", "obs4"},
    ),
]


@pytest.mark.parametrize("path,want_match,want_include", INCLUDE_CASES, ids=[p.split("?", 1)[1] for p, _, _ in INCLUDE_CASES])
def test_include_revinclude(graph_ro, path, want_match, want_include):
    client, graph = graph_ro
    b, m, inc = _split(client, graph, path)
    assert m == want_match
    assert inc == want_include
    assert b["total"] == len(want_match)  # includes are not counted


def test_include_per_page_and_deleted_targets(client, graph):
    # each page carries the includes of its own matches
    seen_match, pages = [], 0
    url = "/fhir/Observation?_include=Observation:subject&_sort=_lastUpdated&_count=1"
    back = {v: k for k, v in graph.items()}
    while url:
        pages += 1
        b = bundle(client, url)
        (m,) = [back[e["resource"]["id"]] for e in matches(b)]
        inc = {back[e["resource"]["id"]] for e in included(b)}
        want = {"obs1": {"pat1"}, "obs2": {"pat2"}, "obs3": {"grp"}, "obs4": {"pat1"}}[m]
        assert inc == want, (m, inc)
        assert b["total"] == 4
        seen_match.append(m)
        url = link(b, "next")
    assert seen_match == ["obs1", "obs2", "obs3", "obs4"]
    # a deleted target is not included; a deleted referrer is not revincluded
    delete(client, "Patient", graph["pat2"])
    delete(client, "Observation", graph["obs4"])
    _, m, inc = _split(client, graph, "/fhir/Observation?code=B&_include=Observation:subject")
    assert (m, inc) == ({"obs2"}, set())
    _, m, inc = _split(client, graph, "/fhir/Patient?_revinclude=Observation:subject")
    assert (m, inc) == ({"pat1", "pat3"}, {"obs1"})


def test_elements_and_summary_with_includes(graph_ro):
    client, graph = graph_ro
    b, m, inc = _split(client, graph, "/fhir/Observation?code=A&_include=Observation:subject:Patient&_elements=status")
    assert m == {"obs1", "obs3"} and inc == {"pat1"}
    for e in matches(b):
        assert _tagged(e["resource"]) and "subject" not in e["resource"] and e["resource"]["status"] == "final"
    assert ids(client, "/fhir/Observation?code=A&_summary=true&_include=Observation:subject") == {graph["obs1"], graph["obs3"]}


def test_include_of_a_match_and_iterate_cycles(client):
    """A resource that is a match is not repeated as an include; :iterate over a cycle ends."""
    a = mk(client, patient("Цикл-А"))
    b = mk(client, patient("Цикл-Б", link=[{"other": {"reference": f"Patient/{a}"}, "type": "seealso"}]))
    client.put(f"/fhir/Patient/{a}", {**patient("Цикл-А", link=[{"other": {"reference": f"Patient/{b}"}, "type": "seealso"}]), "id": a})
    c = mk(client, patient("Цикл-В", link=[{"other": {"reference": f"Patient/{b}"}, "type": "seealso"}]))
    bb = bundle(client, "/fhir/Patient?family=цикл&_include=Patient:link")
    assert {e["resource"]["id"] for e in matches(bb)} == {a, b, c} and included(bb) == []
    bb = bundle(client, f"/fhir/Patient?_id={c}&_include:iterate=Patient:link")
    assert {e["resource"]["id"] for e in matches(bb)} == {c}
    assert sorted(e["resource"]["id"] for e in included(bb)) == sorted([a, b])
    bb = bundle(client, f"/fhir/Patient?_id={a}&_revinclude:iterate=Patient:link")
    assert {e["resource"]["id"] for e in matches(bb)} == {a}
    assert sorted(e["resource"]["id"] for e in included(bb)) == sorted([b, c])
    assert bb["total"] == 1


def test_include_absolute_reference_on_this_server(client):
    org = mk(client, {"resourceType": "Organization", "name": "Абсолютная"})
    p = mk(client, patient("Абс", managingOrganization={"reference": f"http://localhost/fhir/Organization/{org}"}))
    bb = bundle(client, "/fhir/Patient?_include=Patient:organization")
    assert [e["resource"]["id"] for e in matches(bb)] == [p]
    assert [e["resource"]["id"] for e in included(bb)] == [org]
    bb = bundle(client, "/fhir/Organization?_revinclude=Patient:organization")
    assert [e["resource"]["id"] for e in included(bb)] == [p]


@pytest.fixture
def sortable(client) -> dict[str, str]:
    return _sortable(client)


@pytest.fixture(scope="module")
def sortable_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _sortable(c)


@pytest.fixture
def graph(client) -> dict[str, str]:
    return _graph(client)


@pytest.fixture(scope="module")
def graph_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _graph(c)
