from tests.conftest import patient


def test_create_then_read_round_trips(client):
    created = client.create(patient())
    r = client.get(f"/fhir/Patient/{created['id']}")
    assert r.status_code == 200
    assert r.get_json()["name"] == [{"family": "Иванов", "given": ["Иван", "Иванович"]}]
