"""Russian identifier systems as one data table, with their check-digit algorithms.

Each row: the FHIR `Identifier.system` this server writes, the alternative systems it
recognises (HL7 Russia RuCore NamingSystems), how many digits, the check-digit function,
and where the OID comes from. Sources are the research notes ../shared/docs/russia.md
(section 2 for systems, section 4 for the algorithms, each verified there with a worked
example; tests/profiles_ru repeats those examples).

    check(name, value)   None when valid, else "format" (not the right digits) or "check-digit"
    normalize(name, v)   the digits of a value written with separators ("112-233-445 95")
    by_system(system)    the row of an Identifier.system, or None
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


# -- check-digit algorithms (russia.md section 4) -------------------------------------------
def _snils(d: str) -> bool:
    """PFR rule: S = sum of the 9 digits weighted 9..1; check = S if S < 100, 00 if S is
    100 or 101, else S mod 101 (100 -> 00). Numbers up to 001-001-998 carry no check."""
    body, check = d[:9], int(d[9:])
    if int(body) <= 1001998:
        return True
    s = sum(int(c) * w for c, w in zip(body, range(9, 0, -1), strict=True))
    if s > 101:
        s %= 101
    return check == (0 if s in (100, 101) else s)


def _luhn(d: str) -> bool:
    """ENP (unified OMS policy number): the FFOMS rule as commonly quoted equals Luhn over
    all 16 digits (russia.md section 4, [P]: the primary FFOMS text was not retrieved)."""
    total = 0
    for i, c in enumerate(reversed(d)):
        n = int(c)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _weighted_mod11(d: str, weights: tuple[int, ...]) -> int:
    return sum(int(c) * w for c, w in zip(d, weights, strict=True)) % 11 % 10


_INN10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _inn_legal(d: str) -> bool:
    return _weighted_mod11(d[:9], _INN10) == int(d[9])


def _inn_person(d: str) -> bool:
    return _weighted_mod11(d[:10], _INN11) == int(d[10]) and _weighted_mod11(d[:11], _INN12) == int(d[11])


def _ogrn(d: str) -> bool:
    return int(d[:12]) % 11 % 10 == int(d[12])


def _ogrnip(d: str) -> bool:
    return int(d[:14]) % 13 % 10 == int(d[14])


@dataclass(frozen=True)
class IdentifierSystem:
    name: str
    system: str  # the Identifier.system this server writes
    digits: int
    valid: Callable[[str], bool]  # check-digit test of exactly `digits` digits
    label_en: str
    label_ru: str
    source: str
    aliases: tuple[str, ...] = ()  # other systems meaning the same identifier


# name -> row. OIDs and their sources:
#   SNILS 1.2.643.100.3, OGRN 1.2.643.100.1, INN of a legal entity 1.2.643.100.4, OGRNIP
#     1.2.643.100.5, INN of a person 1.2.643.3.131.1.1: russia.md section 2 "Certificate/CDA
#     OIDs" (X.509 subject attributes, also the SEMD CDA root for SNILS).
#   ENP urn:oid:1.2.643.2.69.1.1.1.6.228: russia.md section 2, N3.Health document-type OIDs
#     (".228 unified OMS (ENP)", sample {"system":"urn:oid:1.2.643.2.69.1.1.1.6.228", ...}).
#   Aliases: the HL7 Russia RuCore NamingSystems (russia.md section 2, Core_NamingSystems.fsh).
SYSTEMS: dict[str, IdentifierSystem] = {
    row.name: row
    for row in (
        IdentifierSystem("snils", "urn:oid:1.2.643.100.3", 11, _snils, "SNILS", "СНИЛС", "russia.md §2, §4",
                         ("https://fhir.ru/ig/core/systems/snils",)),
        IdentifierSystem("enp", "urn:oid:1.2.643.2.69.1.1.1.6.228", 16, _luhn, "OMS policy number (ENP)",
                         "Единый номер полиса ОМС (ЕНП)", "russia.md §2 (N3.Health), §4",
                         ("https://fhir.ru/ig/core/systems/oms",)),
        IdentifierSystem("inn-person", "urn:oid:1.2.643.3.131.1.1", 12, _inn_person, "INN (person)", "ИНН физического лица",
                         "russia.md §2, §4", ("https://fhir.ru/ig/core/systems/inn",)),
        IdentifierSystem("inn-legal", "urn:oid:1.2.643.100.4", 10, _inn_legal, "INN (legal entity)", "ИНН юридического лица",
                         "russia.md §2, §4"),
        IdentifierSystem("ogrn", "urn:oid:1.2.643.100.1", 13, _ogrn, "OGRN", "ОГРН", "russia.md §2, §4",
                         ("https://fhir.ru/ig/core/systems/ogrn",)),
        IdentifierSystem("ogrnip", "urn:oid:1.2.643.100.5", 15, _ogrnip, "OGRNIP", "ОГРНИП", "russia.md §2, §4"),
    )
}

# Code systems used next to these identifiers (russia.md section 3, Minzdrav NSI).
OMS_POLICY_TYPES = "urn:oid:1.2.643.5.1.13.13.99.2.245"  # 1 old, 2 temporary, 3 unified
INSURERS = "urn:oid:1.2.643.5.1.13.13.99.2.183"  # insurers (SMO)

_SEPARATORS = re.compile(r"[\s\-]")
_BY_SYSTEM = {s: row for row in SYSTEMS.values() for s in (row.system, *row.aliases)}


def normalize(name: str, value: str) -> str:
    """The value without the spaces and hyphens people write it with."""
    return _SEPARATORS.sub("", value or "")


def check(name: str, value: str) -> str | None:
    """None when `value` is a valid `name` identifier; "format" or "check-digit" otherwise."""
    row = SYSTEMS[name]
    digits = normalize(name, value)
    if len(digits) != row.digits or not digits.isascii() or not digits.isdigit():
        return "format"
    return None if row.valid(digits) else "check-digit"


def by_system(system: str | None) -> IdentifierSystem | None:
    return _BY_SYSTEM.get(system or "")
