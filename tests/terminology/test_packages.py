"""The shared loader of packaged conformance resources (fhir_server/packages.py)."""

from __future__ import annotations

import pytest

from fhir_server import packages
from fhir_server.app import create_app
from tests.conftest import FHIRClient, make_settings

NSI_SEX = "urn:oid:1.2.643.5.1.13.13.11.1040"


@pytest.fixture
def settings():
    return make_settings(load_definitions=True)


def _history_total(client, path):
    r = client.get(f"/fhir/{path}/_history")
    assert r.status_code == 200
    return r.get_json()["total"]


def _restart(app):
    """A second start of the server against the same store."""
    return create_app(app.config["FHIR_SETTINGS"], store=app.config["FHIR_STORE"])


def test_packaged_resource_is_loaded_at_start(client):
    r = client.get(f"/fhir/CodeSystem?url={NSI_SEX}")
    assert r.status_code == 200
    entries = r.get_json()["entry"]
    assert len(entries) == 1
    cs = entries[0]["resource"]
    assert cs["id"] == "nsi-sex" and cs["version"] == "2.1" and cs["language"] == "ru"


def test_second_start_does_not_duplicate(app, client):
    before = _history_total(client, "CodeSystem/nsi-sex")
    again = _restart(app)
    assert packages.load(again) == 0
    assert _history_total(client, "CodeSystem/nsi-sex") == before == 1
    assert len(client.get(f"/fhir/CodeSystem?url={NSI_SEX}").get_json()["entry"]) == 1


def test_newer_user_version_is_not_overwritten(app, client):
    cs = client.get("/fhir/CodeSystem/nsi-sex").get_json()
    cs["version"] = "9.0"
    cs["concept"][2]["display"] = "Не определён"
    assert client.put("/fhir/CodeSystem/nsi-sex", cs).status_code == 200
    _restart(app)
    stored = client.get("/fhir/CodeSystem/nsi-sex").get_json()
    assert stored["version"] == "9.0" and stored["meta"]["versionId"] == "2"


def test_another_resource_at_the_packaged_id_is_left_alone(client):
    app = create_app(make_settings())  # nothing loaded yet
    try:
        c = FHIRClient(app.test_client())
        mine = {"resourceType": "CodeSystem", "id": "nsi-sex", "url": "https://example.org/cs/mine", "status": "active", "content": "not-present"}
        assert c.put("/fhir/CodeSystem/nsi-sex", mine).status_code == 201
        settings = app.config["FHIR_SETTINGS"].model_copy(update={"load_definitions": True})
        create_app(settings, store=app.config["FHIR_STORE"])
        assert c.get("/fhir/CodeSystem/nsi-sex").get_json()["url"] == "https://example.org/cs/mine"
        assert c.get("/fhir/ValueSet/nsi-sex").get_json()["url"].endswith("/ValueSet/nsi-sex")  # the rest loaded
    finally:
        app.config["FHIR_STORE"].engine.close()


def test_newer_packaged_version_replaces_an_older_one(app, client):
    packaged = client.get("/fhir/CodeSystem/nsi-sex").get_json()
    newer = {k: v for k, v in packaged.items() if k != "meta"}
    newer["version"] = "2.2"
    source = lambda: [newer]
    packages.register(source)
    try:
        _restart(app)
    finally:
        packages._sources.remove(source)
    assert client.get("/fhir/CodeSystem/nsi-sex").get_json()["version"] == "2.2"
    assert _history_total(client, "CodeSystem/nsi-sex") == 2


def test_switched_off_loads_nothing():
    app = create_app(make_settings())
    try:
        r = FHIRClient(app.test_client()).get(f"/fhir/CodeSystem?url={NSI_SEX}")
        assert r.status_code == 200 and r.get_json()["total"] == 0
    finally:
        app.config["FHIR_STORE"].engine.close()


def test_version_order():
    key = packages.version_key
    assert key("1.10") > key("1.9") > key("1") > key(None)
    assert sorted(["2.1", "10.0", "2.10", "2.2"], key=key) == ["2.1", "2.2", "2.10", "10.0"]
