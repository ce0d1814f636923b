"""`fhir-server reindex`: stored search values recomputed from the stored JSON, no new version."""

from __future__ import annotations

from click.testing import CliRunner

from fhir_server.cli import main

SNILS = "urn:oid:1.2.643.100.3"
RUCORE_SNILS = "https://fhir.ru/ig/core/systems/snils"


def _total(client, query: str) -> int:
    r = client.get(f"/fhir/Patient?{query}&_summary=count")
    assert r.status_code == 200
    return r.get_json()["total"]


def _age_the_index(app, rid: str) -> None:
    """Make the stored search values look as an older server wrote them: without the entry
    under the canonical SNILS system (as before identifier normalisation)."""
    store = app.config["FHIR_STORE"]
    with store._reading():
        for col, key in ((store.db["Patient"], rid), (store.db["history"], f"Patient/{rid}/1")):
            doc = col.find_one({"_id": key})
            idx = dict(doc["idx"])
            idx["identifier"] = [e for e in idx["identifier"] if e.get("s") != SNILS]
            col.update_one({"_id": key}, {"$set": {"idx": idx}})
            if col.name == "Patient":
                store.engine.note_write("Patient", rid, {**doc, "idx": idx})


def test_reindex_makes_old_data_findable_without_a_new_version(app, client):
    r = client.post("/fhir/Patient", {"resourceType": "Patient", "identifier": [{"system": RUCORE_SNILS, "value": "112-233-445 95"}]})
    assert r.status_code == 201
    rid = r.get_json()["id"]
    client.post("/fhir/Patient", {"resourceType": "Patient", "gender": "female"})
    assert _total(client, f"identifier={SNILS}|11223344595") == 1
    _age_the_index(app, rid)
    assert _total(client, f"identifier={SNILS}|11223344595") == 0

    out = CliRunner().invoke(main, ["reindex", "--type", "Patient"], obj={"store": app.config["FHIR_STORE"]})
    assert out.exit_code == 0, out.output
    assert "reindexed 2" in out.output  # the current version and its history copy
    assert _total(client, f"identifier={SNILS}|11223344595") == 1
    assert _total(client, f"identifier={RUCORE_SNILS}|112-233-445 95") == 1
    read = client.get(f"/fhir/Patient/{rid}")
    assert read.get_json()["meta"]["versionId"] == "1"
    assert client.get(f"/fhir/Patient/{rid}/_history").get_json()["total"] == 1
    # Nothing left to change the second time.
    again = CliRunner().invoke(main, ["reindex"], obj={"store": app.config["FHIR_STORE"]})
    assert again.exit_code == 0 and "reindexed 0" in again.output


def test_reindex_refuses_unknown_types_and_the_embedded_store(app, monkeypatch):
    out = CliRunner().invoke(main, ["reindex", "--type", "Nonsense"], obj={"store": app.config["FHIR_STORE"]})
    assert out.exit_code == 2 and "Nonsense" in out.output
    monkeypatch.delenv("FHIR_MONGODB_URI", raising=False)
    out = CliRunner().invoke(main, ["reindex"])
    assert out.exit_code == 2 and "FHIR_MONGODB_URI" in out.output
