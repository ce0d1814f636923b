"""String search parameters over HTTP (R4 search.html 3.1.1.4.7, 3.1.1.5.3).

Default: the value equals or starts with the parameter, both case- and accent-folded;
`:exact` is the whole value, case and accents included; `:contains` matches anywhere.
HumanName searches family, given, prefix, suffix and text; Address searches line, city,
district, state, postalCode, country and text.
"""

from __future__ import annotations

import pytest

from ._data import ids, mk, patient, private_client

ADDR_MOSCOW = {
    "line": ["ул. Ленина, д. 1"],
    "city": "Москва",
    "district": "Тверской",
    "state": "Московская область",
    "postalCode": "101000",
    "country": "Россия",
}
ADDR_SPB = {"line": ["Невский проспект, 5"], "city": "Санкт-Петербург", "postalCode": "190000", "country": "Россия", "text": "СПб, Невский пр."}
ADDR_NEAR = {"city": "Московский", "country": "Russia"}

PEOPLE = {
    "A": patient("Иванов", ["Пётр", "Ильич"]),
    "B": patient("Сидоров", ["Петр"]),
    "C": patient("Петровский", ["Иван"]),
    "D": patient("Йорк", ["Анна"]),
    "E": patient("Иорк", ["Анна"]),
    "F": patient("McDonald", ["René"]),
    "G": patient("Mcdonald", ["Rene"]),
    "H": {
        "resourceType": "Patient",
        "name": [{"family": "McDonald-Smith", "given": ["Ronald"], "prefix": ["Dr."], "suffix": ["Jr."], "text": "Dr. Ronald McDonald-Smith"}],
    },
    "I": {"resourceType": "Patient", "address": [ADDR_MOSCOW]},
    "J": {"resourceType": "Patient", "name": [{"text": "Доктор Хаус"}], "address": [ADDR_SPB]},
    "K": patient("Ёлкин", ["Семён"], address=[ADDR_NEAR]),
}
ALL = set(PEOPLE)


def _people(client) -> dict[str, str]:
    return {k: mk(client, r) for k, r in PEOPLE.items()}


def _check(client, people, query: str, expected: set[str]) -> None:
    want = {people[k] for k in expected}
    got = ids(client, f"/fhir/Patient?{query}")
    back = {v: k for k, v in people.items()}
    assert got == want, (query, sorted(back.get(i, i) for i in got), sorted(expected))


NAME_CASES = [
    # default: starts-with, case- and accent-insensitive; ё folds to е
    ("given=петр", {"A", "B"}),
    ("given=ПЕТР", {"A", "B"}),
    ("given=Пётр", {"A", "B"}),
    ("given=пЁтр", {"A", "B"}),
    ("given=пе", {"A", "B"}),
    ("given=петра", set()),
    ("given=ильич", {"A"}),  # the second given name
    ("given=семен", {"K"}),
    ("family=елкин", {"K"}),
    ("family=ЕЛ", {"K"}),
    ("family=петр", {"C"}),
    ("family=иванов", {"A"}),
    ("family=ванов", set()),  # not starts-with
    # й is a letter of its own, not an accented и
    ("family=йорк", {"D"}),
    ("family=ЙОРК", {"D"}),
    ("family=иорк", {"E"}),
    ("family=Иорк", {"E"}),
    # Latin accents
    ("given=rene", {"F", "G"}),
    ("given=RENÉ", {"F", "G"}),
    ("given=rené", {"F", "G"}),
    ("family=mcdonald", {"F", "G", "H"}),
    # :exact is the whole value, case and accents included
    ("family:exact=McDonald", {"F"}),
    ("family:exact=Mcdonald", {"G"}),
    ("family:exact=mcdonald", set()),
    ("family:exact=McDon", set()),
    ("family:exact=McDonald-Smith", {"H"}),
    ("given:exact=Пётр", {"A"}),
    ("given:exact=Петр", {"B"}),
    ("given:exact=пётр", set()),
    ("given:exact=René", {"F"}),
    ("given:exact=Rene", {"G"}),
    ("family:exact=Иван", set()),
    # :contains anywhere, folded
    ("family:contains=DONALD", {"F", "G", "H"}),
    ("family:contains=ров", {"B", "C"}),
    ("family:contains=ОРК", {"D", "E"}),
    ("family:contains=йор", {"D"}),
    ("given:contains=ЁТ", {"A", "B"}),
    ("family:contains=smith", {"H"}),
    # name: any part of HumanName - family, given, prefix, suffix, text
    ("name=петр", {"A", "B", "C"}),
    ("name=иван", {"A", "C"}),
    ("name=dr", {"H"}),
    ("name=dr.", {"H"}),
    ("name=jr", {"H"}),
    ("name=ronald", {"H"}),  # given
    ("name=доктор хаус", {"J"}),  # text
    ("name=доктор", {"J"}),
    ("name=хаус", set()),  # text is not split into words
    ("name:contains=хаус", {"J"}),
    ("name:exact=Доктор Хаус", {"J"}),
    ("name:exact=доктор хаус", set()),
    ("name:exact=Dr.", {"H"}),
    ("name=анна", {"D", "E"}),
    # :missing
    ("name:missing=true", {"I"}),
    ("name:missing=false", ALL - {"I"}),
    ("family:missing=true", {"I", "J"}),
    ("family:missing=false", ALL - {"I", "J"}),
    ("given:missing=true", {"I", "J"}),
]


@pytest.mark.parametrize("query,expected", NAME_CASES, ids=[q for q, _ in NAME_CASES])
def test_human_name(people_ro, query, expected):
    client, people = people_ro
    _check(client, people, query, expected)


ADDRESS_CASES = [
    ("address=москва", {"I"}),
    ("address=МОСК", {"I", "K"}),  # city Москва / state Московская область / city Московский
    ("address=тверской", {"I"}),  # district
    ("address=московская обл", {"I"}),  # state
    ("address=101", {"I"}),  # postalCode
    ("address=ул. ленина", {"I"}),  # line
    ("address=ленина", set()),
    ("address:contains=ленина", {"I"}),
    ("address=невский", {"J"}),  # line
    ("address=спб", {"J"}),  # text
    ("address=россия", {"I", "J"}),  # country
    ("address=russia", {"K"}),
    ("address=санкт-петербург", {"J"}),
    ("address=петербург", set()),
    ("address:contains=петербург", {"J"}),
    ("address:exact=Москва", {"I"}),
    ("address:exact=москва", set()),
    ("address-city=москва", {"I"}),
    ("address-city=моск", {"I", "K"}),
    ("address-city:exact=Москва", {"I"}),
    ("address-city:exact=Моск", set()),
    ("address-city=тверской", set()),  # district is not the city
    ("address-state=моск", {"I"}),
    ("address-postalcode=1900", {"J"}),
    ("address-postalcode=101000", {"I"}),
    ("address-postalcode:contains=000", {"I", "J"}),
    ("address-country=россия", {"I", "J"}),
    ("address-country=РОСС", {"I", "J"}),
    ("address-country=russia", {"K"}),
    ("address:missing=true", ALL - {"I", "J", "K"}),
    ("address:missing=false", {"I", "J", "K"}),
    ("address-city:missing=false", {"I", "J", "K"}),
    ("address-state:missing=false", {"I"}),
]


@pytest.mark.parametrize("query,expected", ADDRESS_CASES, ids=[q for q, _ in ADDRESS_CASES])
def test_address(people_ro, query, expected):
    client, people = people_ro
    _check(client, people, query, expected)


def test_string_on_other_types(client):
    """Organization.name and ValueSet.name are plain string elements."""
    a = mk(client, {"resourceType": "Organization", "name": "Городская поликлиника №1"})
    b = mk(client, {"resourceType": "Organization", "name": "ГОРОДСКАЯ БОЛЬНИЦА"})
    c = mk(client, {"resourceType": "Organization", "name": "Областная больница"})
    mk(client, {"resourceType": "Organization", "active": True})
    assert ids(client, "/fhir/Organization?name=городская") == {a, b}
    assert ids(client, "/fhir/Organization?name:contains=больница") == {b, c}
    assert ids(client, "/fhir/Organization?name:exact=ГОРОДСКАЯ БОЛЬНИЦА") == {b}
    assert ids(client, "/fhir/Organization?name=поликлиника") == set()
    assert ids(client, "/fhir/Organization?name:contains=№1") == {a}


def test_canonically_equivalent_spellings_fold_alike(client):
    """Й written decomposed (И + U+0306 COMBINING BREVE) is canonically equivalent to the
    precomposed Й (Unicode NFC/NFD): the same letter, so it must fold like it (й stays й),
    whether the decomposed form is in the search value or in the stored resource."""
    import unicodedata

    york = mk(client, patient("Йорк"))
    iork = mk(client, patient("Иорк"))
    york_nfd = mk(client, patient(unicodedata.normalize("NFD", "Йоркшир")))
    assert ids(client, "/fhir/Patient?family=" + unicodedata.normalize("NFD", "Йорк")) == {york, york_nfd}
    assert ids(client, "/fhir/Patient?family=йорк") == {york, york_nfd}
    assert ids(client, "/fhir/Patient?family=иорк") == {iork}
    # ё decomposed (е + U+0308) folds to е like the precomposed ё
    petr = mk(client, patient("Пётров"))
    assert ids(client, "/fhir/Patient?family=" + unicodedata.normalize("NFD", "Пётров")) == {petr}


@pytest.fixture(scope="module")
def people_ro():
    """(client, ids) of one store shared by the module's read-only cases."""
    with private_client() as c:
        yield c, _people(c)
