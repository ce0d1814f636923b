"""Check digits of Russian identifiers, with the worked examples of russia.md section 4."""

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
]
BAD_FORMAT = [
    ("snils", "1122334459"),
    ("snils", "112-233-445 9x"),
    ("enp", "559871835709342"),  # 15 digits
    ("enp", "55987183570934200"),  # 17 digits
    ("enp", "５５９８７１８３５７０９３４２０"),  # full-width digits are not ASCII digits
    ("enp", ""),
    ("ogrn", "10277001321951"),
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
