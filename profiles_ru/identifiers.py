"""Russian identifier systems as one data table, with their check-digit algorithms.

Each row: the FHIR `Identifier.system` this server writes, the alternative systems it
recognises (HL7 Russia RuCore NamingSystems), how many digits, the check-digit function,
and where the OID comes from. Sources are the research notes ../shared/docs/russia.md
(section 2 for systems, section 4 for the algorithms, each verified there with a worked
example; tests/profiles_ru repeats those examples).

    check(name, value)    None when valid, else "format" (not the right digits) or "check-digit"
    problem(name, value)  None when valid, else (i18n key, params) of a message naming what is wrong
    normalize(name, v)    the digits of a value written with separators ("112-233-445 95")
    by_system(system, v)  the row of an Identifier.system (an alias too), or None
    of_identifier(ident)  the row of an Identifier (RuCore's identity-document system: by its type)
    search_key(system, v) (system, value) as the search index keeps them (canonical system, digits)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass


# -- check-digit algorithms (russia.md section 4) -------------------------------------------
# Each takes the digits before the check part and returns the check part they must end with,
# or None when the number carries no check. A second source for each is in the tests' docstring.
def _snils(body: str) -> str | None:
    """PFR rule: S = sum of the 9 digits weighted 9..1; check = S if S < 100, 00 if S is
    100 or 101, else S mod 101 (100 -> 00). Numbers up to 001-001-998 carry no check."""
    if int(body) <= 1001998:
        return None
    s = sum(int(c) * w for c, w in zip(body, range(9, 0, -1), strict=True))
    if s > 101:
        s %= 101
    return "00" if s in (100, 101) else f"{s:02d}"


def _luhn(body: str) -> str:
    """ENP (unified OMS policy number): the FFOMS rule as commonly quoted equals Luhn over
    all 16 digits (russia.md section 4, [P]: the primary FFOMS text was not retrieved)."""
    total = 0
    for i, c in enumerate(reversed(body)):  # the check digit itself will be position 0
        n = int(c)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return str((10 - total % 10) % 10)


def _weighted_mod11(d: str, weights: tuple[int, ...]) -> str:
    return str(sum(int(c) * w for c, w in zip(d, weights, strict=True)) % 11 % 10)


_INN10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _inn_legal(body: str) -> str:
    return _weighted_mod11(body, _INN10)


def _inn_person(body: str) -> str:
    n11 = _weighted_mod11(body, _INN11)
    return n11 + _weighted_mod11(body + n11, _INN12)


def _ogrn(body: str) -> str:
    return str(int(body) % 11 % 10)


def _ogrnip(body: str) -> str:
    return str(int(body) % 13 % 10)


def _no_check(body: str) -> None:
    return None


@dataclass(frozen=True)
class IdentifierSystem:
    name: str
    system: str  # the Identifier.system this server writes and indexes
    digits: int
    check_len: int  # how many of the last digits are the check part (0: none)
    compute: Callable[[str], str | None]  # the check part for the digits before it (None: no check)
    label_en: str
    label_ru: str
    source: str
    aliases: tuple[str, ...] = ()  # other systems meaning the same identifier
    pattern: str | None = None  # identifiers that are not digits (an OID): the whole value's format

    def expected(self, digits: str) -> str | None:
        """The check part `digits` (all of them, already normalised) must end with."""
        return self.compute(digits[: self.digits - self.check_len]) if self.check_len else None

    def valid(self, digits: str) -> bool:
        want = self.expected(digits)
        return want is None or digits.endswith(want)


# HL7 Russia's systems: RuCore (fhir-ru/RuCoreIG input/fsh/Core_NamingSystems.fsh, Core_Patient.fsh,
# Core_Practitioner.fsh, Core_Organization.fsh - the guide spells them in both cases and under
# core/ and semd/) and the temporary Ru-SEMD ones (fhir-ru/Ru-SEMD input/pagecontent/terminology.md).
_CORE = "https://fhir.ru/ig/core/systems/"
_SEMD = "http://fhir.ru/ig/RuSEMD/systems/"
_N3 = "urn:oid:1.2.643.2.69.1.1.1.6."  # N3.Health document-type OIDs (russia.md section 2)

# name -> row. OIDs and their sources:
#   SNILS 1.2.643.100.3, OGRN 1.2.643.100.1, INN of a legal entity 1.2.643.100.4, OGRNIP
#     1.2.643.100.5, INN of a person 1.2.643.3.131.1.1: russia.md section 2 "Certificate/CDA
#     OIDs" (X.509 subject attributes, also the SEMD CDA root for SNILS).
#   ENP urn:oid:1.2.643.2.69.1.1.1.6.228 and passport .14, SNILS alias .223: russia.md section 2,
#     N3.Health document-type OIDs (sample {"system":"urn:oid:1.2.643.2.69.1.1.1.6.228", ...}).
#   Passport alias urn:oid:1.2.643.5.1.13.13.99.2.48.1: the SEMD CDA root 1.2.643.5.1.13.13.99.2.48.{code}
#     of identity documents, code 1 = passport of a citizen of the RF (what ESIA sign-in writes).
#   The INN systems of RuCore and Ru-SEMD name both INNs: the row is chosen by the number of digits.
SYSTEMS: dict[str, IdentifierSystem] = {
    row.name: row
    for row in (
        IdentifierSystem("snils", "urn:oid:1.2.643.100.3", 11, 2, _snils, "SNILS", "СНИЛС", "russia.md §2, §4",
                         (_CORE + "snils", "http://fhir.ru/core/systems/snils", "https://fhir.ru/ig/semd/systems/snils",
                          _SEMD + "snils", _N3 + "223")),
        IdentifierSystem("enp", _N3 + "228", 16, 1, _luhn, "OMS policy number (ENP)", "ЕНП полиса ОМС",
                         "russia.md §2 (N3.Health), §4", (_CORE + "oms", _CORE + "OMS", _SEMD + "OMS")),
        IdentifierSystem("passport", _N3 + "14", 10, 0, _no_check, "RF passport", "Паспорт гражданина РФ",
                         "russia.md §2 (N3.Health .14; NSI 1.2.643.5.1.13.13.99.2.48 code 1)",
                         ("urn:oid:1.2.643.5.1.13.13.99.2.48.1", _SEMD + "passport-RF")),
        IdentifierSystem("inn-person", "urn:oid:1.2.643.3.131.1.1", 12, 2, _inn_person, "INN (person)", "ИНН физического лица",
                         "russia.md §2, §4", (_CORE + "inn", _SEMD + "inn")),
        IdentifierSystem("inn-legal", "urn:oid:1.2.643.100.4", 10, 1, _inn_legal, "INN (legal entity)", "ИНН юридического лица",
                         "russia.md §2, §4", (_CORE + "inn", _SEMD + "inn")),
        IdentifierSystem("ogrn", "urn:oid:1.2.643.100.1", 13, 1, _ogrn, "OGRN", "ОГРН", "russia.md §2, §4",
                         (_CORE + "ogrn", _SEMD + "ogrn")),
        IdentifierSystem("ogrnip", "urn:oid:1.2.643.100.5", 15, 1, _ogrnip, "OGRNIP", "ОГРНИП", "russia.md §2, §4"),
        # A medical organisation's OID in FRMO (NSI 1.2.643.5.1.13.13.11.1461): 1.2.643.5.1.13.13.12.2.<region>.<id>,
        # the root the SEMD identifiers are built on (RuCoreIG semd-identifiers.md, russia.md §2 and §3).
        IdentifierSystem("frmo", "urn:oid:1.2.643.5.1.13.13.11.1461", 0, 0, _no_check, "FRMO OID of the medical organisation",
                         "OID медицинской организации в ФРМО", "russia.md §2, §3",
                         ("https://fhir.ru/ig/core/CodeSystem/core-cs-nsi-register-of-medical-organizations", _SEMD + "frmo"),
                         pattern=r"1\.2\.643\.5\.1\.13\.13\.12\.2\.[1-9][0-9]*\.[1-9][0-9]*"),
    )
}

# Code systems used next to these identifiers (russia.md section 3, Minzdrav NSI).
OMS_POLICY_TYPES = "urn:oid:1.2.643.5.1.13.13.99.2.245"  # 1 old, 2 temporary, 3 unified
INSURERS = "urn:oid:1.2.643.5.1.13.13.99.2.183"  # insurers (SMO)
IDENTITY_DOCUMENTS = "urn:oid:1.2.643.5.1.13.13.99.2.48"  # 1 = passport of a citizen of the RF
# RuCore's one system for every identity document: the document is told by Identifier.type.
_IDENTITY_DOCUMENT_SYSTEMS = (_CORE + "identity-document", "https://fhir.ru/ig/semd/systems/identity-document")
_IDENTITY_DOCUMENT_ROWS = {"1": "passport"}  # NSI 99.2.48 code -> row

_FORMAT_KEYS = {"passport": "identifier-passport-format", "frmo": "identifier-oid-format"}  # else identifier-format
_SEPARATORS = re.compile(r"[\s\-]")
_BY_SYSTEM: dict[str, tuple[IdentifierSystem, ...]] = {}
for _row in SYSTEMS.values():
    for _s in (_row.system, *_row.aliases):
        _BY_SYSTEM[_s] = (*_BY_SYSTEM.get(_s, ()), _row)


def normalize(name: str, value: str) -> str:
    """The value without the spaces and hyphens people write it with."""
    return _SEPARATORS.sub("", value or "")


def check(name: str, value: str) -> str | None:
    """None when `value` is a valid `name` identifier; "format" or "check-digit" otherwise."""
    row = SYSTEMS[name]
    if row.pattern is not None:
        return None if isinstance(value, str) and re.fullmatch(row.pattern, value) else "format"
    digits = normalize(name, value)
    if len(digits) != row.digits or not digits.isascii() or not digits.isdigit():
        return "format"
    return None if row.valid(digits) else "check-digit"


def problem(name: str, value: str) -> tuple[str, dict] | None:
    """None when valid, else an i18n message key of fhir_server/i18n.py and its parameters, e.g.
    ("identifier-check-digit", {... "value": "112-233-445 96", "found": "96", "expected": "95"})."""
    row = SYSTEMS[name]
    found = check(name, value)
    if found is None:
        return None
    params = {"label_en": row.label_en, "label_ru": row.label_ru, "value": str(value)[:40], "digits": row.digits}
    if found == "format":
        return _FORMAT_KEYS.get(name, "identifier-format"), params
    digits = normalize(name, value)
    return "identifier-check-digit", {**params, "found": digits[-row.check_len:], "expected": row.expected(digits)}


def by_system(system: str | None, value: str | None = None) -> IdentifierSystem | None:
    """The row of an Identifier.system; where one system names two rows (RuCore's INN), the
    one whose length the value has, else the first."""
    rows = _BY_SYSTEM.get(system or "", ())
    if len(rows) > 1 and value is not None:
        n = len(normalize(rows[0].name, value))
        rows = tuple(r for r in rows if r.digits == n) or rows
    return rows[0] if rows else None


def of_identifier(ident: dict) -> IdentifierSystem | None:
    """The row of an Identifier: by its system, or for RuCore's identity-document system by its
    type coded in NSI 1.2.643.5.1.13.13.99.2.48."""
    if not isinstance(ident, dict) or not isinstance(ident.get("system"), str):
        return None
    system, value = ident["system"], ident.get("value")
    if system in _IDENTITY_DOCUMENT_SYSTEMS:
        codings = (ident.get("type") or {}).get("coding") if isinstance(ident.get("type"), dict) else None
        for c in codings if isinstance(codings, list) else ():
            if isinstance(c, dict) and c.get("system") == IDENTITY_DOCUMENTS and c.get("code") in _IDENTITY_DOCUMENT_ROWS:
                return SYSTEMS[_IDENTITY_DOCUMENT_ROWS[c["code"]]]
        return None
    return by_system(system, value if isinstance(value, str) else None)


def same_system(a: str | None, b: str | None) -> bool:
    """Two Identifier.system values that name the same identifier (equal, or rows of the table in common)."""
    return a == b or bool(set(_BY_SYSTEM.get(a or "", ())) & set(_BY_SYSTEM.get(b or "", ())))


def search_key(system: str | None, value: str) -> tuple[str | None, str]:
    """(system, value) as the search index keeps an identifier: a system of the table becomes
    its row's system and a number loses its separators (an OID is kept as written); anything
    else is unchanged."""
    row = by_system(system, value)
    if row is None:
        return system, value
    return row.system, (value if row.pattern is not None else normalize(row.name, value))


def index_key(ident: dict) -> tuple[str, str] | None:
    """(canonical system, value without separators) under which the search index also keeps an
    Identifier of the table (its written system and value are kept too), or None."""
    row = of_identifier(ident)
    if row is None or not isinstance(ident.get("value"), str):
        return None
    return row.system, (ident["value"] if row.pattern is not None else normalize(row.name, ident["value"]))
