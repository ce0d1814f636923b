"""Assertions shared by the interaction tests."""

from __future__ import annotations

import re

from tests.conftest import patient

FHIR_JSON_UTF8 = "application/fhir+json;charset=utf-8"
HTTP_DATE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def assert_error(r, status: int, expression: str | None = None, code: str | None = None) -> dict:
    """The response is `status` with an OperationOutcome whose first issue is an error
    (at `expression` when given). Returns the OperationOutcome."""
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True))
    assert r.headers["Content-Type"] == FHIR_JSON_UTF8
    body = r.get_json()
    assert body["resourceType"] == "OperationOutcome", body
    issue = body["issue"][0]
    assert issue["severity"] in ("error", "fatal"), body
    assert issue["diagnostics"], body
    if expression is not None:
        assert expression in issue.get("expression", []), body
    if code is not None:
        assert issue["code"] == code, body
    return body


def assert_information(body: dict) -> dict:
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and all(i["severity"] == "information" for i in body["issue"]), body
    return body


def history_total(client, path: str = "/fhir/_history") -> int:
    r = client.get(path)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["total"]


def identified(system: str = "urn:oid:1.2.643.100.3", value: str = "123-456-789 00", **extra) -> dict:
    """A Patient with one identifier (SNILS by default)."""
    return patient(identifier=[{"system": system, "value": value}], **extra)
