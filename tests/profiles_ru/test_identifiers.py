"""Check digits of Russian identifiers, with the worked examples of russia.md section 4.

Second sources the algorithms were checked against (search corpus "code"):
SNILS - vasiunov/SNILS_CheckAndCount (after the PFR text on consultant.ru: 001-001-998 00 carries no
check, 001-001-999 00 is wrong) and Sigiller/validators (100 and 101 -> 00, S mod 101 = 100 -> 00);
ENP - resilencelyn/rt.srz EnpChecker.cs (a register of insured persons: odd positions from the right
doubled, the others prefixed, digit sum, 10 - sum mod 10), which is Luhn; INN and OGRN/OGRNIP -
Borodin/russian-requisites-validator and rt.srz OgrnChecker.cs; real registered numbers (Yandex
INN 7736207543, OGRN 1027700229193) pass.
"""

from __future__ import annotations

import pytest

from profiles_ru import identifiers as ids

VALID = [
    ("snils", "112-233-445 95"),  # S = 95
    ("snils", "17400354229"),  # S = 130 -> 130 mod 101 = 29
    ("snils", "001-001-998 00"),  # at or below 001-001-998: no check
    ("enp", "5598718357093420"),  # the public N3 sample, check digit 0
    ("inn-legal", "7707083893"),  # sum 267 -> 3
    ("inn-person", "500100732259"),  # 148 -> 5, 141 -> 9
    ("ogrn", "1027700132195"),  # 102770013219 mod 11 = 5
    ("ogrnip", "304500116000157"),  # mod 13 = 7
    ("inn-legal", "7736207543"),  # Yandex LLC
    ("ogrn", "1027700229193"),  # Yandex LLC
    ("passport", "45 08 123456"),
    ("passport", "4508 123456"),
    ("passport", "4508123456"),
    ("frmo", "1.2.643.5.1.13.13.12.2.77.7800"),
]
WRONG_CHECK = [
    ("snils", "112-233-445 96"),
    ("snils", "17400354228"),
    ("enp", "5598718357093421"),
    ("enp", "5598718357093402"),  # two digits swapped
    ("inn-legal", "7707083894"),
    ("inn-person", "500100732258"),
    ("inn-person", "500100732269"),
    ("ogrn", "1027700132196"),
    ("ogrnip", "304500116000158"),
    ("snils", "001-001-999 00"),  # just above 001-001-998: checked, S = 65
]
BAD_FORMAT = [
    ("snils", "1122334459"),
    ("snils", "112-233-445 9x"),
    ("enp", "559871835709342"),  # 15 digits
    ("enp", "55987183570934200"),  # 17 digits
    ("enp", "５５９８７１８３５７０９３４２０"),  # full-width digits are not ASCII digits
    ("enp", ""),
    ("ogrn", "10277001321951"),
    ("passport", "45 08 12345"),  # 9 digits
    ("passport", "45O8 123456"),  # a letter O
    ("frmo", "1.2.643.5.1.13.13.12.2.77"),
    ("frmo", "1.2.643.100.1"),
]


@pytest.mark.parametrize(("name", "value"), VALID)
def test_worked_examples_are_valid(name, value):
    assert ids.check(name, value) is None


@pytest.mark.parametrize(("name", "value"), WRONG_CHECK)
def test_a_wrong_check_digit_is_found(name, value):
    assert ids.check(name, value) == "check-digit"


@pytest.mark.parametrize(("name", "value"), BAD_FORMAT)
def test_wrong_length_or_characters(name, value):
    assert ids.check(name, value) == "format"


def test_snils_check_values_100_and_101_become_00():
    # Find bodies whose weighted sum is 100 and 101 and 202 (202 mod 101 = 0) - all give "00".
    def body_with_sum(target):
        digits = [0] * 9
        rest = target
        for i, w in enumerate(range(9, 0, -1)):
            n = min(9, rest // w)
            digits[i] = n
            rest -= n * w
        assert rest == 0
        return "".join(map(str, digits))

    for s in (100, 101, 202):
        body = body_with_sum(s)
        assert ids.check("snils", body + "00") is None, (s, body)
        assert ids.check("snils", body + "01") == "check-digit"


def test_enp_is_luhn_every_single_digit_error_is_caught():
    good = "5598718357093420"
    for pos in range(16):
        for d in "0123456789":
            if d != good[pos]:
                assert ids.check("enp", good[:pos] + d + good[pos + 1:]) == "check-digit"


def test_systems_and_aliases():
    assert ids.SYSTEMS["snils"].system == "urn:oid:1.2.643.100.3"
    assert ids.SYSTEMS["enp"].system == "urn:oid:1.2.643.2.69.1.1.1.6.228"
    assert ids.by_system("https://fhir.ru/ig/core/systems/oms").name == "enp"
    assert ids.by_system("urn:oid:1.2.643.100.3").name == "snils"
    assert ids.by_system("http://example.org") is None and ids.by_system(None) is None
    assert ids.normalize("snils", "112-233-445 95") == "11223344595"


def test_snils_at_or_below_001_001_998_is_not_checked():
    for v in ("001-001-998 00", "001-001-998 17", "000-000-001 99"):
        assert ids.check("snils", v) is None, v


@pytest.mark.parametrize(
    ("name", "value", "found", "expected"),
    [
        ("snils", "112-233-445 96", "96", "95"),
        ("snils", "001-001-999 00", "00", "65"),
        ("enp", "5598718357093421", "1", "0"),
        ("inn-person", "500100732258", "58", "59"),
        ("inn-legal", "7707083894", "4", "3"),
        ("ogrn", "1027700132196", "6", "5"),
        ("ogrnip", "304500116000158", "8", "7"),
    ],
)
def test_problem_names_the_check_number_found_and_expected(name, value, found, expected):
    from fhir_server.i18n import render

    key, params = ids.problem(name, value)
    assert key == "identifier-check-digit" and (params["found"], params["expected"]) == (found, expected)
    if name == "snils" and value.endswith("96"):
        assert render(key, "ru", params) == "СНИЛС 112-233-445 96: контрольное число 96 не совпадает с 95"
        assert render(key, "en", params) == "SNILS 112-233-445 96: check number 96 does not match 95"


def test_problem_of_a_wrong_format_says_what_is_expected():
    from fhir_server.i18n import render

    assert ids.problem("snils", "112-233-445 95") is None
    key, params = ids.problem("snils", "112-233-445")
    assert render(key, "ru", params) == "СНИЛС 112-233-445: должно быть 11 цифр (пробелы и дефисы допускаются)"
    key, params = ids.problem("passport", "45 08 12345")
    assert "4508 123456" in render(key, "en", params) and render(key, "ru", params).startswith("Паспорт гражданина РФ 45 08 12345:")


def test_alias_systems_of_n3_rucore_and_ru_semd():
    for system, name in [
        ("urn:oid:1.2.643.2.69.1.1.1.6.223", "snils"),
        ("http://fhir.ru/ig/RuSEMD/systems/snils", "snils"),
        ("https://fhir.ru/ig/core/systems/OMS", "enp"),
        ("http://fhir.ru/ig/RuSEMD/systems/OMS", "enp"),
        ("urn:oid:1.2.643.2.69.1.1.1.6.14", "passport"),
        ("urn:oid:1.2.643.5.1.13.13.99.2.48.1", "passport"),
        ("http://fhir.ru/ig/RuSEMD/systems/passport-RF", "passport"),
        ("https://fhir.ru/ig/core/systems/ogrn", "ogrn"),
    ]:
        assert ids.by_system(system).name == name, system
    # RuCore's INN system names both INNs: the number of digits decides
    assert ids.by_system("https://fhir.ru/ig/core/systems/inn", "7707083893").name == "inn-legal"
    assert ids.by_system("https://fhir.ru/ig/core/systems/inn", "500100732259").name == "inn-person"
    assert ids.same_system("https://fhir.ru/ig/core/systems/snils", "urn:oid:1.2.643.100.3")
    assert not ids.same_system("https://fhir.ru/ig/core/systems/snils", "urn:oid:1.2.643.2.69.1.1.1.6.228")
    passport = {"system": "https://fhir.ru/ig/core/systems/identity-document", "value": "4508 123456",
                "type": {"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.99.2.48", "code": "1"}]}}
    assert ids.of_identifier(passport).name == "passport"
    assert ids.of_identifier({**passport, "type": {"coding": [{"system": "urn:oid:1.2.643.5.1.13.13.99.2.48", "code": "3"}]}}) is None
    assert ids.search_key("https://fhir.ru/ig/core/systems/snils", "112-233-445 95") == ("urn:oid:1.2.643.100.3", "11223344595")
    assert ids.search_key("http://example.org/mrn", "12-34") == ("http://example.org/mrn", "12-34")
