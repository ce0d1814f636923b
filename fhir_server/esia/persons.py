"""Test persons of the ESIA emulator, and the SNILS check digit (russia.md section 4).

A person is a JSON object shaped like ESIA's own data: the /rs/prns/{oid} fields
(firstName, lastName, middleName, birthDate dd.MM.yyyy, gender M/F, snils "XXX-XXX-XXX YY",
trusted, citizenship), plus `contacts` (ctts elements: type MBT/PHN/EML, value, vrfStu) and
`documents` (docs elements: type RF_PASSPORT with series, number, issueDate, issueId,
issuedBy; MDCL_PLCY with number). A file given to the emulator is a JSON array of them.
"""

from __future__ import annotations

import json
import pathlib
import re

from profiles_ru import identifiers

SNILS_FORMAT = re.compile(r"^\d{3}-\d{3}-\d{3} \d{2}$")


def snils_digits(text: str | None) -> str:
    return re.sub(r"\D", "", text or "")


def snils_valid(text: str | None) -> bool:
    """The check number rule of profiles_ru.identifiers (russia.md section 4)."""
    return identifiers.check("snils", snils_digits(text)) is None


def _person(oid, trusted, last, first, middle, birth, gender, snils, passport, policy, phone, email) -> dict:
    docs = [{"type": "RF_PASSPORT", "vrfStu": "VERIFIED", "series": passport[0], "number": passport[1], "issueDate": passport[2],
             "issueId": passport[3], "issuedBy": passport[4]}]
    if policy:
        docs.append({"type": "MDCL_PLCY", "vrfStu": "VERIFIED", "number": policy})
    return {
        "oid": oid, "trusted": trusted, "status": "REGISTERED", "citizenship": "RUS",
        "lastName": last, "firstName": first, "middleName": middle, "birthDate": birth, "gender": gender, "snils": snils,
        "contacts": [{"type": "MBT", "value": phone, "vrfStu": "VERIFIED"}, {"type": "EML", "value": email, "vrfStu": "VERIFIED"}],
        "documents": docs,
    }


# Fictional people; SNILS valid by the check digit, ENPs valid by Luhn. Смирнова and Кузнецов have
# the SNILS of the demo card's practitioners, Иванов that of its patient (and the demo OMS policy).
DEFAULT_PERSONS = (
    _person("1000299654", True, "Петрова", "Анна", "Сергеевна", "23.07.1985", "F", "987-654-321 83",
            ("4510", "123456", "14.08.2005", "770-001", "ОВД района Хамовники г. Москвы"), "5598718357093420",
            "+7(916)1234567", "anna.petrova@example.ru"),
    _person("1000299655", False, "Сидоров", "Пётр", "Алексеевич", "02.11.1990", "M", "174-003-542 29",
            ("4612", "654321", "20.12.2010", "500-002", "ТП УФМС России по Московской обл."), None,
            "+7(903)7654321", "p.sidorov@example.ru"),
    _person("1000299656", True, "Смирнова", "Елена", "Викторовна", "05.05.1975", "F", "112-233-445 95",
            ("4505", "111222", "10.06.2000", "770-003", "ОВД района Арбат г. Москвы"), None,
            "+7(925)1112233", "e.smirnova@example.ru"),
    _person("1000299657", True, "Кузнецов", "Андрей", "Павлович", "19.01.1980", "M", "123-456-789 64",
            ("4503", "333444", "01.03.2001", "770-004", "ОВД района Басманный г. Москвы"), None,
            "+7(926)4445566", "a.kuznetsov@example.ru"),
    _person("1000299658", True, "Иванов", "Иван", "Иванович", "12.03.1961", "M", "087-654-321 02",
            ("4507", "555666", "15.04.2006", "770-005", "ОВД района Тверской г. Москвы"), "7700000000000016",
            "+7(900)0000000", "i.ivanov@example.ru"),
)

_REQUIRED = ("oid", "lastName", "firstName", "birthDate", "gender", "snils")


def check_persons(persons: list) -> list[dict]:
    """The persons, or ValueError naming the first problem."""
    if not isinstance(persons, list) or not persons:
        raise ValueError("the persons file must hold a non-empty JSON array")
    seen = set()
    for i, p in enumerate(persons):
        if not isinstance(p, dict):
            raise ValueError(f"person [{i}] is not an object")
        for name in _REQUIRED:
            if not isinstance(p.get(name), str) or not p[name]:
                raise ValueError(f"person [{i}] has no {name}")
        if not p["oid"].isdigit() or p["oid"] in seen:
            raise ValueError(f"person [{i}]: oid must be digits and unique")
        seen.add(p["oid"])
        if not SNILS_FORMAT.match(p["snils"]) or not snils_valid(p["snils"]):
            raise ValueError(f"person [{i}]: SNILS {p['snils']!r} is not XXX-XXX-XXX YY with a valid check number")
        for doc in p.get("documents") or []:
            if isinstance(doc, dict) and doc.get("type") == "MDCL_PLCY" and identifiers.check("enp", str(doc.get("number", ""))) is not None:
                raise ValueError(f"person [{i}]: the MDCL_PLCY number is not a valid 16-digit ENP")
        if p["gender"] not in ("M", "F"):
            raise ValueError(f"person [{i}]: gender must be M or F")
        if not re.match(r"^\d{2}\.\d{2}\.\d{4}$", p["birthDate"]):
            raise ValueError(f"person [{i}]: birthDate must be dd.MM.yyyy")
        for key in ("contacts", "documents"):
            if not isinstance(p.get(key, []), list):
                raise ValueError(f"person [{i}]: {key} must be an array")
    return persons


def load_persons(path: str | pathlib.Path | None) -> list[dict]:
    if path is None:
        return [json.loads(json.dumps(p)) for p in DEFAULT_PERSONS]
    return check_persons(json.loads(pathlib.Path(path).read_text(encoding="utf-8")))
