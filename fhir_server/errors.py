"""FHIR errors and OperationOutcome construction (R4 operationoutcome.html).

Every failure a handler can report is a FHIRError: an HTTP status plus one or more
issues, each with an issue-type code, a message key (rendered in the client's
language) and the FHIRPath of the offending element in `expression`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .i18n import render


@dataclass
class Issue:
    code: str  # http://hl7.org/fhir/issue-type
    key: str  # message key in i18n.MESSAGES
    expression: str | None = None
    severity: str = "error"
    params: dict = field(default_factory=dict)
    detail: str | None = None  # technical detail from a parser, appended verbatim

    def to_json(self, lang: str) -> dict:
        text = render(self.key, lang, self.params)
        if self.detail:
            text = f"{text}: {self.detail}"
        out = {"severity": self.severity, "code": self.code, "diagnostics": text}
        if self.expression:
            out["expression"] = [self.expression]
        return out


class FHIRError(Exception):
    """An error reported to the client as an OperationOutcome with `status`."""

    def __init__(
        self,
        status: int,
        code: str = "invalid",
        key: str = "validation-failed",
        expression: str | None = None,
        detail: str | None = None,
        issues: list[Issue] | None = None,
        headers: dict | None = None,
        **params,
    ):
        super().__init__(key)
        self.status = status
        self.issues = issues or [Issue(code, key, expression, params=params, detail=detail)]
        self.headers = headers or {}

    def outcome(self, lang: str) -> dict:
        return operation_outcome(self.issues, lang)

    def first_text(self, lang: str = "en") -> str:
        return self.issues[0].to_json(lang)["diagnostics"]


def operation_outcome(issues: list[Issue], lang: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json(lang) for i in issues]}


def info_outcome(key: str, lang: str, **params) -> dict:
    return operation_outcome([Issue("informational", key, severity="information", params=params)], lang)
