"""Access tokens on the FHIR endpoint (authenticate), expiry, revocation, refresh
rotation and reuse detection, scope narrowing, introspection."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from consent.principal import OPEN, Principal
from fhir_server.auth import authenticate, mint_token

from .conftest import (
    Flow,
    add_account,
    add_public_client,
    add_secret_client,
    claims_of,
    pkce_pair,
    principal_or_error,
    query_of,
)


def test_authenticate_returns_the_principal(app, world):
    tok = world.full("patient@example.org", "launch/patient patient/*.rs patient/Consent.cruds")
    p = principal_or_error(app, tok["access_token"])
    assert isinstance(p, Principal)
    assert p.kind == "patient" and p.fhir_user == "Patient/p1" and p.patient == "p1" and p.client_id == "app-public"
    assert p.subject == claims_of(tok["access_token"])["sub"] and p.token_id == claims_of(tok["access_token"])["jti"]
    assert p.scopes.allows("Observation", "r") and p.scopes.allows("Consent", "c") and not p.scopes.allows("Observation", "c")


def test_authenticate_errors_and_challenge(app, world):
    from flask import request

    from fhir_server.errors import FHIRError

    with app.test_request_context("/fhir/Patient"), pytest.raises(FHIRError) as missing:
        authenticate(request, app.config["FHIR_SETTINGS"])
    assert missing.value.status == 401 and missing.value.issues[0].key == "auth-required"
    assert missing.value.issues[0].code == "login"
    assert missing.value.headers["WWW-Authenticate"] == 'Bearer realm="fhir"'
    for header in ("Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer " + "e30." * 2 + "x"):
        with app.test_request_context("/fhir/Patient", headers={"Authorization": header}):
            with pytest.raises(FHIRError) as bad:
                authenticate(request, app.config["FHIR_SETTINGS"])
        assert bad.value.issues[0].key == "auth-invalid"
        assert bad.value.headers["WWW-Authenticate"] == 'Bearer realm="fhir", error="invalid_token"'


def test_fhir_endpoint_requires_a_token_by_default(app, world):
    """The app as created (FHIR_AUTH=smart, the default) checks bearer tokens on every FHIR
    request but /metadata; the 401s are OperationOutcomes with the RFC 6750 challenge."""
    api = app.test_client()
    assert api.get("/fhir/metadata").status_code == 200
    r = api.get("/fhir/Patient")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="fhir"'
    outcome = r.get_json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "login"
    assert "Authorization: Bearer" in outcome["issue"][0]["diagnostics"]
    r = api.get("/fhir/Patient", headers={"Authorization": "Bearer nonsense", "Accept-Language": "ru"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    assert "Токен доступа недействителен" in r.get_json()["issue"][0]["diagnostics"]
    assert api.post("/fhir/Patient", data=b"{}", content_type="application/fhir+json").status_code == 401
    assert api.post("/fhir", data=b"{}", content_type="application/fhir+json").status_code == 401
    tok = world.full("admin@example.org", "user/*.cruds")["access_token"]
    r = api.get("/fhir/Patient", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200 and r.get_json()["type"] == "searchset"


def test_auth_off_is_open(make_app):
    app = make_app(auth="off")
    assert "fhir_auth" not in app.extensions
    assert app.test_client().get("/auth/login").status_code == 404
    with app.test_request_context("/fhir/Patient"):
        from flask import request

        assert authenticate(request, app.config["FHIR_SETTINGS"]) is OPEN


def test_id_token_is_not_an_access_token(app, world):
    tok = world.full("patient@example.org", "openid fhirUser patient/*.rs")
    assert principal_or_error(app, tok["id_token"]) == "auth-invalid"


def test_token_for_another_base_url_is_refused(app, world):
    tok = world.full("patient@example.org", "patient/*.rs")
    other = app.config["FHIR_SETTINGS"].model_copy(update={"base_url": "https://fhir.example.ru/fhir"})
    assert principal_or_error(app, tok["access_token"], other) == "auth-invalid"


def test_token_of_another_app_is_refused(app, make_app, world):
    tok = world.full("patient@example.org", "patient/*.rs")
    other = make_app()
    assert principal_or_error(other, tok["access_token"]) == "auth-invalid"
    assert other.extensions["fhir_auth"].records.client("app-public") is None  # apps share no records


def test_access_token_expires(make_app):
    app = make_app(auth_access_token_seconds=60)
    svc = app.extensions["fhir_auth"]
    add_account(svc, "patient@example.org", "patient", "Patient/p1")
    add_public_client(svc)
    tok = Flow(app, "app-public").full("patient@example.org", "patient/*.rs")
    assert tok["expires_in"] == 60
    assert isinstance(principal_or_error(app, tok["access_token"]), Principal)
    later = datetime.now(UTC) + timedelta(seconds=61)
    with freeze_time(later):
        assert principal_or_error(app, tok["access_token"]) == "auth-invalid"
        r = app.test_client().post("/auth/introspect", data={"token": tok["access_token"], "client_id": "app-public"})
        assert r.get_json() == {"active": False}


def test_revoked_access_token_fails_at_once(app, world):
    tok = world.full("patient@example.org", "patient/*.rs")
    assert isinstance(principal_or_error(app, tok["access_token"]), Principal)
    r = world.api.post("/auth/revoke", data={"token": tok["access_token"], "token_type_hint": "access_token", "client_id": "app-public"})
    assert r.status_code == 200
    assert principal_or_error(app, tok["access_token"]) == "auth-invalid"


def test_another_client_cannot_revoke_my_token(app, svc, world):
    tok = world.full("patient@example.org", "patient/*.rs")
    add_public_client(svc, client_id="app-2")
    r = world.api.post("/auth/revoke", data={"token": tok["access_token"], "client_id": "app-2"})
    assert r.status_code == 400
    assert isinstance(principal_or_error(app, tok["access_token"]), Principal)


def refresh(flow: Flow, token: str, **extra):
    return flow.token({"grant_type": "refresh_token", "refresh_token": token, "client_id": flow.client_id, **extra})


def test_refresh_rotation_and_reuse_revokes_the_family(app, world):
    first = world.full("patient@example.org", "launch/patient offline_access patient/*.rs")
    r = refresh(world, first["refresh_token"])
    assert r.status_code == 200, r.get_data(as_text=True)
    second = r.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["patient"] == "p1" and second["scope"] == first["scope"]
    assert claims_of(second["access_token"])["patient"] == "p1"
    r = refresh(world, second["refresh_token"])
    third = r.get_json()
    assert r.status_code == 200
    # an attacker replays the first (rotated) refresh token
    r = refresh(world, first["refresh_token"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    # ... and the whole family is gone: the newest refresh token, and every access token
    r = refresh(world, third["refresh_token"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    for t in (first, second, third):
        assert principal_or_error(app, t["access_token"]) == "auth-invalid"
    # other grants of the same person are untouched
    other = world.full("patient@example.org", "offline_access patient/*.rs")
    assert refresh(world, other["refresh_token"]).status_code == 200


def test_refresh_cannot_widen_the_scope(world):
    tok = world.full("patient@example.org", "offline_access patient/Observation.rs")
    r = refresh(world, tok["refresh_token"], scope="offline_access patient/*.rs")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_scope"
    # a refused request does not use the token up; asking for less is fine
    r = refresh(world, tok["refresh_token"], scope="offline_access patient/Observation.rs")
    assert r.status_code == 200 and r.get_json()["scope"] == "offline_access patient/Observation.rs"


def test_refresh_token_of_another_client_is_refused(svc, world):
    tok = world.full("patient@example.org", "offline_access patient/*.rs")
    add_public_client(svc, client_id="app-2")
    r = world.token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "client_id": "app-2"})
    assert r.get_json()["error"] == "invalid_grant"


def test_revoking_a_refresh_token_revokes_the_family(app, world):
    tok = world.full("patient@example.org", "offline_access patient/*.rs")
    world.api.post("/auth/revoke", data={"token": tok["refresh_token"], "client_id": "app-public"})
    assert refresh(world, tok["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert principal_or_error(app, tok["access_token"]) == "auth-invalid"


def test_refresh_tokens_are_stored_hashed(svc, world):
    tok = world.full("patient@example.org", "offline_access patient/*.rs")
    from fhir_server.auth.models import AuthorizationCode, RefreshToken

    rows = list(svc.records.q(RefreshToken).as_pymongo())
    assert rows and all(tok["refresh_token"] not in str(row) for row in rows)
    assert svc.records.refresh(tok["refresh_token"]) is not None
    assert all(len(c["_id"]) == 64 for c in svc.records.q(AuthorizationCode).as_pymongo())


def test_patient_asking_for_user_scopes_is_narrowed(world):
    tok = world.full("patient@example.org", "patient/*.rs user/*.cruds patient/Observation.cruds")
    assert tok["scope"] == "patient/*.rs"
    c = claims_of(tok["access_token"])
    assert c["scope"] == "patient/*.rs"


def test_consent_page_shows_what_is_not_granted(world):
    world.sign_in("patient@example.org")
    page = world.browser.get(world.authorize_url("patient/*.rs user/*.cruds", challenge=pkce_pair()[1]),
                             headers={"Accept-Language": "en"}).get_data(as_text=True)
    granted, dropped = page.split("Not allowed")
    assert "patient/*.rs" in granted and "user/*.cruds" not in granted and "user/*.cruds" in dropped


def test_nothing_grantable_is_invalid_scope(world):
    world.sign_in("patient@example.org")
    url = world.authorize_url("user/*.cruds", challenge=pkce_pair()[1], state="s-scope")
    r = world.consent(url)
    q = query_of(r.headers["Location"])
    assert q["error"] == "invalid_scope" and q["state"] == "s-scope"


def test_client_cannot_get_more_than_it_registered(svc, world):
    add_public_client(svc, scope="launch/patient patient/Observation.rs", client_id="narrow-app")
    world.client_id = "narrow-app"
    tok = world.full("patient@example.org", "launch/patient patient/*.rs patient/Observation.rs patient/Observation.rs?category=laboratory offline_access")
    assert tok["scope"] == "launch/patient patient/Observation.rs patient/Observation.rs?category=laboratory"
    assert "refresh_token" not in tok
    # entirely outside the registration: refused at the authorization endpoint
    r = world.browser.get(world.authorize_url("user/*.rs system/*.rs", challenge=pkce_pair()[1], state="s2"))
    q = query_of(r.headers["Location"])
    assert q["error"] == "invalid_scope" and q["state"] == "s2"


def test_v1_scopes(world):
    tok = world.full("doctor@example.org", "user/*.read patient/*.read")
    assert tok["scope"] == "user/*.read patient/*.read"


def _basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def test_introspection(app, svc, world):
    _, secret = add_secret_client(svc)
    world.client_id = "app-conf"
    verifier, challenge = pkce_pair()
    code = world.code("doctor@example.org", "openid fhirUser offline_access user/*.rs", challenge=challenge)
    tok = world.exchange(code, verifier, client_secret=secret).get_json()
    c = world.api
    r = c.post("/auth/introspect", data={"token": tok["access_token"]}, headers=_basic("app-conf", secret))
    body = r.get_json()
    assert r.status_code == 200 and body["active"] is True
    assert body["scope"] == tok["scope"] and body["client_id"] == "app-conf" and body["token_type"] == "Bearer"
    assert body["fhirUser"] == "Practitioner/d1" and body["aud"] == "http://localhost/fhir" and body["exp"] > body["iat"]
    r = c.post("/auth/introspect", data={"token": tok["refresh_token"], "token_type_hint": "refresh_token"}, headers=_basic("app-conf", secret))
    assert r.get_json()["active"] is True and r.get_json()["token_type"] == "refresh_token"
    # inactive: garbage, someone else's token, revoked
    assert c.post("/auth/introspect", data={"token": "garbage"}, headers=_basic("app-conf", secret)).get_json() == {"active": False}
    mine = world.__class__(app, "app-public").full("patient@example.org", "patient/*.rs")
    assert c.post("/auth/introspect", data={"token": mine["access_token"]}, headers=_basic("app-conf", secret)).get_json() == {"active": False}
    c.post("/auth/revoke", data={"token": tok["access_token"]}, headers=_basic("app-conf", secret))
    assert c.post("/auth/introspect", data={"token": tok["access_token"]}, headers=_basic("app-conf", secret)).get_json() == {"active": False}
    # the caller must authenticate
    r = c.post("/auth/introspect", data={"token": tok["refresh_token"]}, headers=_basic("app-conf", "wrong"))
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


def test_mint_token_for_in_process_callers(app, svc):
    token = mint_token(app, subject="seed", role="admin", scope="user/*.cruds", fhir_user="Practitioner/x")
    p = principal_or_error(app, token)
    assert p.kind == "admin" and p.fhir_user == "Practitioner/x" and p.client_id == "internal"
