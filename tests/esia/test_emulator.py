"""The emulator's own checks (as ESIA makes them), its CLI stand and the demo wiring."""

from __future__ import annotations

import socket
import uuid
from urllib.parse import urlencode

import pytest
import requests
from click.testing import CliRunner

from fhir_server.esia import protocol
from fhir_server.esia.client import EsiaClient, EsiaConfig
from fhir_server.esia.emulator import create_emulator, make_emulator
from fhir_server.esia.stand import demo_settings, make_stand, run_in_thread
from fhir_server.settings import Settings

from .conftest import CLIENT_ID, PETROVA, query_of

CALLBACK = "http://127.0.0.1:1/auth/login/esia/callback"


@pytest.fixture
def esia(keys):
    emulator = make_emulator({CLIENT_ID: keys["gost"].certificate}, redirect_uris=[CALLBACK])
    server, url = run_in_thread(create_emulator(emulator))
    yield emulator, url
    server.shutdown()


def _ac_params(signer, **over):
    p = {"client_id": CLIENT_ID, "scope": "openid snils contacts", "timestamp": protocol.timestamp(), "state": str(uuid.uuid4()),
         "redirect_uri": CALLBACK}
    p.update({k: v for k, v in over.items() if k not in ("client_secret", "client_certificate_hash")})
    p["client_secret"] = over.get("client_secret") or protocol.API["v2"].secret(signer, p)
    p["client_certificate_hash"] = over.get("client_certificate_hash", signer.certificate.hash)
    p["response_type"] = "code"
    return {k: v for k, v in p.items() if v is not None}


def _ac(url, params):
    return requests.get(url + "/aas/oauth2/v2/ac?" + urlencode(params), allow_redirects=False, timeout=5)


def test_authorization_request_checks(esia, keys):
    _, url = esia
    signer = keys["gost"]
    assert _ac(url, _ac_params(signer)).status_code == 200  # the person picker
    cases = {
        "ESIA-007055": _ac_params(signer, timestamp=protocol.timestamp(__import__("time").time() - 3600)),
        "ESIA-007014": _ac_params(signer, client_certificate_hash=None),
        "ESIA-007011": _ac_params(signer, state="not-a-uuid"),
    }
    for code, params in cases.items():
        r = _ac(url, params)
        assert r.status_code == 302 and query_of(r.headers["Location"])["error_description"].startswith(code), (code, r.headers)
    unknown = _ac(url, _ac_params(signer, client_id="NOBODY"))
    assert unknown.status_code == 400 and "ESIA-007002" in unknown.text
    elsewhere = _ac(url, _ac_params(signer, redirect_uri="https://evil.example/cb"))
    assert elsewhere.status_code == 400 and "ESIA-007004" in elsewhere.text


def test_person_data_needs_the_persons_own_token_and_scope(esia, keys):
    emulator, url = esia
    assert requests.get(f"{url}/rs/prns/{PETROVA}", timeout=5).status_code == 401
    now = int(emulator.now())
    claims = {"iat": now, "nbf": now, "exp": now + 60, "iss": url + "/", "client_id": CLIENT_ID, "urn:esia:sbj_id": int(PETROVA),
              "scope": f"openid snils?oid={PETROVA}"}
    token = protocol.jwt_encode({"sbt": "access"}, claims, emulator.signer)
    auth = {"Authorization": f"Bearer {token}"}
    r = requests.get(f"{url}/rs/prns/{PETROVA}", headers=auth, timeout=5)
    assert r.status_code == 200 and r.json()["snils"] == "987-654-321 83" and r.json()["trusted"] is True
    assert requests.get(f"{url}/rs/prns/{PETROVA}/ctts?embed=(elements)", headers=auth, timeout=5).status_code == 403  # no contacts scope
    assert requests.get(f"{url}/rs/prns/1000299655", headers=auth, timeout=5).status_code == 403  # another person
    forged = protocol.jwt_encode({"sbt": "access"}, claims, keys["rsa"])
    assert requests.get(f"{url}/rs/prns/{PETROVA}", headers={"Authorization": f"Bearer {forged}"}, timeout=5).status_code == 401
    with_docs = protocol.jwt_encode({"sbt": "access"}, {**claims, "scope": f"openid medical_doc?oid={PETROVA}"}, emulator.signer)
    docs = requests.get(f"{url}/rs/prns/{PETROVA}/docs?embed=(elements)", headers={"Authorization": f"Bearer {with_docs}"}, timeout=5).json()
    assert [d["type"] for d in docs["elements"]] == ["MDCL_PLCY"] and docs["elements"][0]["number"] == "5598718357093420"


def test_logout_needs_a_known_client(esia):
    _, url = esia
    r = requests.get(f"{url}/idp/ext/Logout", params={"client_id": CLIENT_ID, "redirect_url": "http://127.0.0.1:1/auth/login"},
                     allow_redirects=False, timeout=5)
    assert r.status_code == 302 and r.headers["Location"] == "http://127.0.0.1:1/auth/login"
    assert requests.get(f"{url}/idp/ext/Logout", params={"client_id": "NOBODY", "redirect_url": "http://x/"}, timeout=5).status_code == 400


def test_stand_files_configure_the_server(tmp_path):
    stand = make_stand("FILES-TEST")
    env = stand.write(tmp_path, "http://127.0.0.1:8090")
    values = dict(line.split("=", 1) for line in env.read_text().splitlines())
    assert (tmp_path / "client.key.pem").stat().st_mode & 0o077 == 0
    settings = Settings(**{k[len("FHIR_"):].lower(): v for k, v in values.items()})
    config = EsiaConfig.from_settings(settings)
    assert config.client_id == "FILES-TEST" and config.signer.kind == "gost"
    assert config.esia_certificate.der == stand.emulator.signer.certificate.der
    url = EsiaClient(config).authorization_url(str(uuid.uuid4()), CALLBACK)
    assert url.startswith("http://127.0.0.1:8090/aas/oauth2/v2/ac?") and query_of(url)["client_certificate_hash"] == config.signer.certificate.hash


def test_half_configured_esia_is_a_clear_error():
    with pytest.raises(ValueError, match="FHIR_ESIA_KEY"):
        EsiaConfig.from_settings(Settings(esia_url="https://esia.gosuslugi.ru", esia_client_id="X"))


def test_cli_refuses_a_bad_persons_file(tmp_path):
    from fhir_server.cli import main

    bad = tmp_path / "persons.json"
    bad.write_text('[{"oid": "1", "lastName": "A", "firstName": "B", "birthDate": "01.01.2000", "gender": "M", "snils": "112-233-445 96"}]')
    result = CliRunner().invoke(main, ["esia-emulator", "--persons", str(bad), "--dir", str(tmp_path / "stand")])
    assert result.exit_code == 2 and "SNILS" in result.output


def test_demo_starts_the_emulator_in_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = demo_settings(Settings(demo=True, auth="smart", esia_emulator_port=port))
    assert settings.esia_url == f"http://127.0.0.1:{port}" and EsiaConfig.from_settings(settings) is not None
    assert requests.get(settings.esia_url + "/public/esia.pem", timeout=5).text.startswith("-----BEGIN CERTIFICATE-----")
    untouched = Settings(demo=False)
    assert demo_settings(untouched) is untouched


def test_stand_keys_are_reused_from_the_directory(tmp_path):
    first = make_stand("REUSE", directory=tmp_path)
    first.write(tmp_path, "http://127.0.0.1:8090")
    again = make_stand("REUSE", directory=tmp_path)
    assert again.client.certificate.der == first.client.certificate.der
    assert again.emulator.signer.certificate.der == first.emulator.signer.certificate.der
    other_kind = make_stand("REUSE", directory=tmp_path, client_kind="rsa")
    assert other_kind.client.kind == "rsa"  # a key of another kind is not reused


def test_demo_runs_on_without_esia_when_the_emulator_port_is_taken(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        settings = Settings(demo=True, auth="smart", esia_emulator_port=s.getsockname()[1])
        assert demo_settings(settings) is settings
    assert "FHIR_ESIA_EMULATOR_PORT" in capsys.readouterr().err
