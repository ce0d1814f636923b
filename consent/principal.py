"""Who is asking: the authenticated party behind a FHIR request."""

from __future__ import annotations

from dataclasses import dataclass, field

from .scopes import ScopeSet

KINDS = ("patient", "practitioner", "staff", "admin", "system", "open")


@dataclass(frozen=True)
class Principal:
    """
    kind        patient | practitioner | staff | admin | system; "open" when FHIR_AUTH=off
    subject     the account id (users) or client id (systems): who, for the audit trail
    fhir_user   "Patient/123", "Practitioner/9"; for a system client its "Organization/x"
    client_id   the OAuth2 client the token was issued to
    scopes      the token's scopes
    patient     the launch context patient id (SMART `patient`), for patient/ scopes
    token_id    the access token's jti (for audit and revocation checks)
    """

    kind: str
    subject: str | None = None
    fhir_user: str | None = None
    client_id: str | None = None
    scopes: ScopeSet = field(default_factory=lambda: ScopeSet(()))
    patient: str | None = None
    token_id: str | None = None

    @property
    def unrestricted(self) -> bool:
        return self.kind in ("admin", "open")


OPEN = Principal("open", subject="anonymous")
