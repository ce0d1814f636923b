"""Date search parameters over HTTP (R4 search.html 3.1.1.4.2).

Both the parameter value and the resource value are ranges set by their precision;
prefixes compare those ranges:
  eq  the search range contains the target    ne  it does not
  gt  the range above the search value overlaps the target    lt  the range below does
  ge  gt or eq    le  lt or eq
  sa  the target starts after the search range   eb  it ends before it
  ap  approximately (10% of the distance from now)
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from fhir_server.search import compile as search_compile

from ._data import ids, mk, obs, patient, private_client

BIRTH = {
    "Y1980": "1980",
    "M198005": "1980-05",
    "D0501": "1980-05-01",
    "D0502": "1980-05-02",
    "D1981": "1981-01-01",
    "D1979": "1979-12-31",
    "D1970": "1970-06-01",
    "D2000": "2000-01-01",
}


def _births(client) -> dict[str, str]:
    out = {k: mk(client, patient(k, birthDate=v)) for k, v in BIRTH.items()}
    out["NONE"] = mk(client, patient("без даты"))
    return out


def _check(client, keyed, rtype, query, expected):
    want = {keyed[k] for k in expected}
    got = ids(client, f"/fhir/{rtype}?{query}")
    back = {v: k for k, v in keyed.items()}
    assert got == want, (query, sorted(back.get(i, i) for i in got), sorted(expected))


ALL_DATED = set(BIRTH)
BIRTH_CASES = [
    ("birthdate=1980", {"Y1980", "M198005", "D0501", "D0502"}),
    ("birthdate=1980-05", {"M198005", "D0501", "D0502"}),
    ("birthdate=1980-05-01", {"D0501"}),
    ("birthdate=eq1980-05-01", {"D0501"}),
    ("birthdate=eq1980-05", {"M198005", "D0501", "D0502"}),
    ("birthdate=ne1980-05-01", ALL_DATED - {"D0501"}),
    ("birthdate=ne1980", {"D1981", "D1979", "D1970", "D2000"}),
    ("birthdate=gt1980-05-01", {"Y1980", "M198005", "D0502", "D1981", "D2000"}),
    ("birthdate=lt1980-05-01", {"Y1980", "D1979", "D1970"}),
    ("birthdate=ge1980-05-01", {"Y1980", "M198005", "D0501", "D0502", "D1981", "D2000"}),
    ("birthdate=le1980-05-01", {"Y1980", "D0501", "D1979", "D1970"}),
    ("birthdate=sa1980-05-01", {"D0502", "D1981", "D2000"}),
    ("birthdate=eb1980-05-01", {"D1979", "D1970"}),
    ("birthdate=sa1980", {"D1981", "D2000"}),
    ("birthdate=eb1980", {"D1979", "D1970"}),
    ("birthdate=gt1980", {"D1981", "D2000"}),
    ("birthdate=lt1980", {"D1979", "D1970"}),
    ("birthdate=ge1980", {"Y1980", "M198005", "D0501", "D0502", "D1981", "D2000"}),
    ("birthdate=le1980", {"Y1980", "M198005", "D0501", "D0502", "D1979", "D1970"}),
    ("birthdate=ap1980-05-01", {"Y1980", "M198005", "D0501", "D0502", "D1981", "D1979"}),
    ("birthdate=1980-05-01,1981-01-01", {"D0501", "D1981"}),
    ("birthdate=ge1980&birthdate=lt1980-05-02", {"Y1980", "M198005", "D0501"}),
    ("birthdate=gt1979-12-31&birthdate=lt1981", {"Y1980", "M198005", "D0501", "D0502"}),
    ("birthdate:missing=true", {"NONE"}),
    ("birthdate:missing=false", ALL_DATED),
]


@pytest.mark.parametrize("query,expected", BIRTH_CASES, ids=[q for q, _ in BIRTH_CASES])
def test_birthdate_prefixes(births_ro, query, expected):
    client, births = births_ro
    _check(client, births, "Patient", query, expected)


EFFECTIVE = {
    "Oa": {"effectiveDateTime": "2021-03-10T10:00:00+03:00"},  # = 07:00:00Z
    "Ob": {"effectiveDateTime": "2021-03-10T07:00:00Z"},
    "Oc": {"effectiveDateTime": "2021-03-10T10:00:00Z"},
    "Od": {"effectiveDateTime": "2021-03-10"},
    "Oe": {"effectivePeriod": {"start": "2021-03-01", "end": "2021-03-20"}},
    "Of": {"effectivePeriod": {"start": "2021-03-10T12:00:00Z"}},  # open end
    "Og": {"effectivePeriod": {"end": "2021-03-05"}},  # open start
    "Oh": {"effectiveInstant": "2021-03-10T07:00:00.500Z"},
    "Oi": {"effectiveTiming": {"event": ["2021-03-15T09:00:00Z"]}},
    "Ok": {"effectiveTiming": {"repeat": {"boundsPeriod": {"start": "2021-04-01", "end": "2021-04-10"}}}},
    "Oj": {},
}


def _effective(client) -> dict[str, str]:
    return {k: mk(client, obs(**v)) for k, v in EFFECTIVE.items()}


ALL_EFF = set(EFFECTIVE) - {"Oj"}
EFFECTIVE_CASES = [
    # seconds precision, time zones
    ("date=2021-03-10T07:00:00Z", {"Oa", "Ob", "Oh"}),
    ("date=2021-03-10T10:00:00+03:00", {"Oa", "Ob", "Oh"}),
    ("date=2021-03-10T02:00:00-05:00", {"Oa", "Ob", "Oh"}),
    ("date=2021-03-10T10:00:00Z", {"Oc"}),
    ("date=2021-03-10T10:00+03:00", {"Oa", "Ob", "Oh"}),  # minutes
    ("date=2021-03-10T07:00:00.500Z", {"Oh"}),  # milliseconds
    ("date=2021-03-10T07:00:00.5Z", {"Oh"}),
    # day / month / year
    ("date=2021-03-10", {"Oa", "Ob", "Oc", "Od", "Oh"}),
    ("date=2021-03", {"Oa", "Ob", "Oc", "Od", "Oe", "Oh", "Oi"}),
    ("date=2021", ALL_EFF - {"Of", "Og"}),
    ("date=2021-04-05", set()),  # inside Ok's bounds, but the bounds are not contained
    ("date=2021-04", {"Ok"}),
    # prefixes against ranges, open periods and timings
    ("date=gt2021-03-10", {"Oe", "Of", "Oi", "Ok"}),
    ("date=lt2021-03-10", {"Oe", "Og"}),
    ("date=ge2021-03-10", {"Oa", "Ob", "Oc", "Od", "Oe", "Of", "Oh", "Oi", "Ok"}),
    ("date=le2021-03-10", {"Oa", "Ob", "Oc", "Od", "Oe", "Og", "Oh"}),
    ("date=sa2021-03-10", {"Oi", "Ok"}),
    ("date=eb2021-03-10", {"Og"}),
    ("date=ne2021-03-10", {"Oe", "Of", "Og", "Oi", "Ok"}),
    ("date=gt2021-03-10T09:00:00Z", {"Oc", "Od", "Oe", "Of", "Oi", "Ok"}),
    ("date=lt2021-03-10T09:00:00Z", {"Oa", "Ob", "Od", "Oe", "Og", "Oh"}),
    ("date=sa2021-03-05", {"Oa", "Ob", "Oc", "Od", "Of", "Oh", "Oi", "Ok"}),
    ("date=eb2021-03-25", ALL_EFF - {"Of", "Ok"}),
    ("date=le1900-01-01", {"Og"}),  # open start reaches back for ever
    ("date=ge2999-01-01", {"Of"}),  # open end reaches forward for ever
    ("date=gt2021-04-09", {"Of", "Ok"}),
    ("date=2021-03-10T07:00:00Z,2021-03-10T10:00:00Z", {"Oa", "Ob", "Oc", "Oh"}),
    ("date:missing=true", {"Oj"}),
    ("date:missing=false", ALL_EFF),
]


@pytest.mark.parametrize("query,expected", EFFECTIVE_CASES, ids=[q for q, _ in EFFECTIVE_CASES])
def test_observation_effective(effective_ro, query, expected):
    client, effective = effective_ro
    _check(client, effective, "Observation", query, expected)


def test_encounter_period_and_immunization_datetime(client):
    enc = lambda period: {  # noqa: E731
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "period": period,
    }
    day = mk(client, enc({"start": "2022-01-10T09:00:00Z", "end": "2022-01-10T10:00:00Z"}))
    week = mk(client, enc({"start": "2022-01-10", "end": "2022-01-16"}))
    later = mk(client, enc({"start": "2022-02-01"}))
    assert ids(client, "/fhir/Encounter?date=2022-01-10") == {day}
    assert ids(client, "/fhir/Encounter?date=2022-01") == {day, week}
    assert ids(client, "/fhir/Encounter?date=ge2022-01-12") == {week, later}
    assert ids(client, "/fhir/Encounter?date=lt2022-01-11") == {day, week}
    assert ids(client, "/fhir/Encounter?date=sa2022-01-20") == {later}
    assert ids(client, "/fhir/Encounter?date=eb2022-01-20") == {day, week}

    imm = lambda when: {  # noqa: E731
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.11.1361", "code": "1"}]},
        "patient": {"reference": "Patient/x"},
        "occurrenceDateTime": when,
    }
    i1 = mk(client, imm("2019-11-05T12:30:00+03:00"))
    i2 = mk(client, imm("2019-11-05"))
    i3 = mk(client, imm("2019-11"))
    assert ids(client, "/fhir/Immunization?date=2019-11-05") == {i1, i2}
    assert ids(client, "/fhir/Immunization?date=2019-11") == {i1, i2, i3}
    assert ids(client, "/fhir/Immunization?date=gt2019-11-05") == {i3}
    assert ids(client, "/fhir/Immunization?date=lt2019-11-05") == {i3}
    assert ids(client, "/fhir/Immunization?date=2019-11-05T09:30:00Z") == {i1}


def _instant(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _fmt(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_last_updated(client):
    a = client.create(patient("Первый"))
    time.sleep(0.01)
    b = client.create(patient("Второй"))
    ta, tb = a["meta"]["lastUpdated"], b["meta"]["lastUpdated"]
    assert _instant(ta) < _instant(tb)
    A, B = a["id"], b["id"]
    q = lambda v: ids(client, f"/fhir/Patient?_lastUpdated={v}")  # noqa: E731
    assert q(ta) == {A}
    assert q(f"eq{ta}") == {A}
    assert q(f"ne{ta}") == {B}
    assert q(f"gt{ta}") == {B}
    assert q(f"ge{ta}") == {A, B}
    assert q(f"lt{tb}") == {A}
    assert q(f"le{tb}") == {A, B}
    assert q(f"le{ta}") == {A}
    assert q(f"sa{ta}") == {B}
    assert q(f"eb{tb}") == {A}
    # the same instants written in another zone
    msk = timezone(timedelta(hours=3))
    assert q("gt" + _instant(ta).astimezone(msk).isoformat(timespec="milliseconds")) == {B}
    # coarser precision: the day of the writes contains both
    day = _instant(ta).date().isoformat()
    assert q(f"ge{day}") >= {A, B}
    assert q(f"lt{day}") == set()
    assert q("gt2000-01-01&_lastUpdated=lt2999") == {A, B}
    # one millisecond after A's write: A's instant is [ta, ta + 1 ms)
    after_a = _fmt(_instant(ta) + timedelta(milliseconds=1))
    assert q(f"lt{after_a}") == {A}
    assert q(f"ge{after_a}") == {B}
    # an update moves lastUpdated: A now sorts after B
    a2 = client.put(f"/fhir/Patient/{A}", {**patient("Первый-обновлён"), "id": A}).get_json()
    assert q(f"gt{tb}") == {A}
    assert q(f"eq{a2['meta']['lastUpdated']}") == {A}
    assert q(ta) == set()


def test_last_updated_ap_with_a_pinned_clock(client, monkeypatch):
    # `ap` widens the search range by 10% of its distance from now (the search clock, pinned
    # here). The stored instant T is the range [T, T + 1 ms).
    a = client.create(patient("Первый"))
    t = _instant(a["meta"]["lastUpdated"])
    q = lambda v: ids(client, f"/fhir/Patient?_lastUpdated={v}")  # noqa: E731
    ms = lambda n: _fmt(t + timedelta(milliseconds=n))  # noqa: E731
    monkeypatch.setattr(search_compile, "clock", lambda: t + timedelta(milliseconds=6))
    # [T+1, T+2) is 5 ms from now: widened by 0.5 ms to [T+0.5, T+2.5), which [T, T+1) overlaps
    assert q(f"ap{ms(1)}") == {a["id"]}
    # [T+2, T+3) is 4 ms from now: widened by 0.4 ms to [T+1.6, T+3.4), which it does not
    assert q(f"ap{ms(2)}") == set()
    monkeypatch.setattr(search_compile, "clock", lambda: t + timedelta(milliseconds=101))
    # [T+10, T+11) is 91 ms from now: widened by 9.1 ms down to T+0.9, inside [T, T+1)
    assert q(f"ap{ms(10)}") == {a["id"]}
    # [T+11, T+12): widened by 9 ms down to T+2
    assert q(f"ap{ms(11)}") == set()


@pytest.fixture(scope="module")
def births_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _births(c)


@pytest.fixture(scope="module")
def effective_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _effective(c)
