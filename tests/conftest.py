"""Shared test fixtures.

Every test gets a fresh database: a new in-process mongomock store by default, or a
uniquely named database on the server in FHIR_MONGODB_URI (dropped afterwards), so
the whole suite runs unchanged against a real MongoDB.
"""

from __future__ import annotations

import json
import pathlib
import uuid

import pytest

from fhir_server.app import create_app
from fhir_server.settings import Settings

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"
FHIR_JSON = "application/fhir+json"


def shared_fixture(*parts: str) -> pathlib.Path:
    """Path under ../shared/fixtures; the test is skipped when it is not there."""
    path = SHARED_FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared fixture {path} not present")
    return path


def make_settings(**overrides) -> Settings:
    """Settings of one test's app. The REST and search suites test FHIR conformance, so they
    run as FHIR_AUTH=off (a conformance-testing server); the auth, consent and ESIA suites
    ask for auth="smart". Packaged conformance resources are not loaded unless asked for
    (load_definitions=True), so an ordinary app starts fast."""
    overrides.setdefault("auth", "off")
    overrides.setdefault("load_definitions", False)  # packaged definitions: only the tests that need them
    return Settings(db_name=f"fhirtest_{uuid.uuid4().hex[:12]}", **overrides)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def app(settings):
    app = create_app(settings)
    yield app
    store = app.config["FHIR_STORE"]
    if not settings.embedded:
        store.engine.client.drop_database(settings.db_name)
    store.engine.close()


class FHIRClient:
    """The Flask test client with JSON conveniences for FHIR calls."""

    def __init__(self, client):
        self.raw = client

    def request(self, method: str, path: str, body=None, headers: dict | None = None, content_type: str = FHIR_JSON, data=None):
        headers = dict(headers or {})
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
        if data is not None and content_type:
            headers.setdefault("Content-Type", content_type)
        return self.raw.open(path, method=method, data=data, headers=headers)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, ops=None, **kw):
        kw.setdefault("content_type", "application/json-patch+json")
        return self.request("PATCH", path, ops, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def create(self, resource: dict) -> dict:
        """POST a resource and return the stored representation (asserting 201)."""
        r = self.post(f"/fhir/{resource['resourceType']}", resource)
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()


@pytest.fixture
def client(app) -> FHIRClient:
    return FHIRClient(app.test_client())


def patient(**extra) -> dict:
    base = {
        "resourceType": "Patient",
        "name": [{"family": "Иванов", "given": ["Иван", "Иванович"]}],
        "gender": "male",
        "birthDate": "1980-05-01",
    }
    base.update(extra)
    return base
