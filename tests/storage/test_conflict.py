"""A compare-and-set that keeps losing ends in 409 Conflict, and nothing is written."""

from fhir_server.storage import ConcurrentWrite, Unit
from tests.conftest import patient


def test_update_that_always_loses_the_race_is_409(client, app, monkeypatch):
    created = client.create(patient())
    real_write = Unit.write

    def losing_write(self, rtype, rid, resource, method, prev, index=None):
        if method == "PUT":
            raise ConcurrentWrite(f"{rtype}/{rid}")
        return real_write(self, rtype, rid, resource, method, prev, index)

    monkeypatch.setattr(Unit, "write", losing_write)
    r = client.put(f"/fhir/Patient/{created['id']}", {**created, "gender": "female"})
    assert r.status_code == 409
    body = r.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "conflict"
    monkeypatch.undo()
    assert client.get(f"/fhir/Patient/{created['id']}").get_json()["gender"] == "male"
