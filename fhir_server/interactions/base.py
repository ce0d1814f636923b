"""The internal request and response every interaction handler speaks.

The HTTP edge (rest.py) and batch/transaction entries (transaction.py) both build a
`Req` and get a `Resp`, so an entry in a Bundle behaves exactly like the same call
made over HTTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from consent.enforce import GuardedReader, check_scope
from resources import registry

from .. import fhirtime
from ..errors import FHIRError
from ..storage import ResourceStore, Version

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
ETAG_RE = re.compile(r'^\s*(W/)?"([^"]+)"\s*$')


@dataclass
class Req:
    method: str
    path: str  # relative to the FHIR base, no leading slash: "Patient/1/_history/2"
    query: str = ""  # raw query string
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: object = None  # parsed JSON, or None
    resolve_refs: bool = False  # resolve conditional references in the body (batch entries)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        for k, v in self.params:
            if k == name:
                return v
        return None


@dataclass
class Resp:
    status: int
    version: Version | None = None  # the resource version the response is about
    body: dict | None = None  # a resource to return (when not the version's own content)
    headers: dict[str, str] = field(default_factory=dict)
    outcome: dict | None = None  # OperationOutcome for Prefer: return=OperationOutcome
    is_write: bool = False  # Prefer applies
    location: bool = False  # send Location (create, update-as-create)
    touched: list = field(default_factory=list)  # versions the response discloses (for the audit trail)


@dataclass
class Ctx:
    store: ResourceStore
    settings: object
    base: str  # the FHIR base URL, no trailing slash
    lang: str = "en"
    unit: object = None  # set inside a transaction: reads and writes share it
    policy: object = None  # consent.policy.Policy of the request; None = unrestricted (internal use)

    def guard(self, reader):
        """`reader` limited to what this request may see (consent/enforce.py)."""
        if self.policy is None or self.policy.unrestricted or isinstance(reader, GuardedReader):
            return reader
        return GuardedReader(reader, self.policy)

    @property
    def reader(self):
        return self.guard(self.unit if self.unit is not None else self.store.reader())

    def require(self, rtype: str, perm: str) -> None:
        """The token's scopes must grant `perm` (c r u d s) on `rtype`: 403 otherwise."""
        if self.policy is not None:
            check_scope(self.policy, rtype, perm)


def require_type(rtype: str) -> str:
    if not registry.is_supported(rtype):
        raise FHIRError(404, "not-supported", "unknown-type", type=rtype)
    return rtype


def require_id(rid: str) -> str:
    if not ID_RE.match(rid):
        raise FHIRError(400, "invalid", "id-invalid", value=rid[:80])
    return rid


def parse_etag_version(value: str, header: str = "If-Match") -> int:
    m = ETAG_RE.match(value)
    if not m or not m.group(2).isdigit():
        raise FHIRError(400, "invalid", "bad-header", name=header, value=value[:80])
    return int(m.group(2))


def version_headers(v: Version, base: str) -> dict[str, str]:
    return {
        "ETag": v.etag,
        "Last-Modified": fhirtime.http_date(v.last_updated),
        "Content-Location": f"{base}/{v.type}/{v.id}/_history/{v.version}",
    }
