"""The authorization code flow with PKCE, end to end over HTTP."""

from __future__ import annotations

from joserfc import jwt
from joserfc.jwk import KeySet

from fhir_server.app import internal_client

from .conftest import BASE, REDIRECT, claims_of, pkce_pair, principal_or_error, query_of, wire_fhir


def test_public_client_full_flow(app, svc, world):
    flow = world
    r = internal_client(app).put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1", "gender": "female"},
                     headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.get_data(as_text=True)
    verifier, challenge = pkce_pair()
    url = flow.authorize_url("openid fhirUser launch/patient offline_access patient/*.rs", challenge=challenge, state="xyz-42", nonce="n-1")
    r = flow.browser.get(url)
    assert r.status_code == 302 and r.headers["Location"].endswith("/auth/login")
    r = flow.sign_in("patient@example.org")
    assert r.status_code == 302 and r.headers["Location"] == url
    page = flow.browser.get(url, headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Allow access?" in html and "patient/*.rs" in html and "Test app" in html
    assert page.headers["X-Frame-Options"] == "DENY"
    r = flow.browser.post(url, data={"csrf": flow.csrf(html), "decision": "approve"})
    assert r.status_code == 302
    loc = r.headers["Location"]
    assert loc.startswith(REDIRECT + "?")
    q = query_of(loc)
    assert q["state"] == "xyz-42"

    r = flow.exchange(q["code"], verifier)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.headers["Cache-Control"] == "no-store"
    tok = r.get_json()
    assert tok["token_type"] == "Bearer"
    assert tok["expires_in"] == 300
    assert tok["scope"].split() == ["openid", "fhirUser", "launch/patient", "offline_access", "patient/*.rs"]
    assert tok["patient"] == "p1"
    assert tok["refresh_token"]

    keys = KeySet.import_key_set(flow.api.get("/auth/jwks").get_json())
    access = jwt.decode(tok["access_token"], keys, algorithms=["ES256"])
    c = access.claims
    assert access.header["typ"] == "at+jwt"
    assert c["iss"] == "http://localhost/auth" and c["aud"] == BASE
    assert c["client_id"] == "app-public" and c["patient"] == "p1" and c["fhirUser"] == "Patient/p1"
    assert c["scope"] == tok["scope"] and c["exp"] - c["iat"] == 300 and c["jti"] and c["sub"]

    idt = jwt.decode(tok["id_token"], keys, algorithms=["ES256"]).claims
    assert idt["aud"] == "app-public" and idt["iss"] == "http://localhost/auth" and idt["nonce"] == "n-1"
    assert idt["sub"] == c["sub"] and idt["fhirUser"] == BASE + "/Patient/p1"
    assert idt["exp"] > idt["iat"]

    # The token opens the FHIR endpoint.
    wire_fhir(app)
    r = flow.api.get("/fhir/Patient/p1", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["id"] == "p1"


def test_wrong_pkce_verifier_is_invalid_grant(world):
    _, challenge = pkce_pair()
    code = world.code("patient@example.org", "patient/*.rs", challenge=challenge)
    other_verifier, _ = pkce_pair()
    r = world.exchange(code, other_verifier)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_missing_verifier_is_refused(world):
    _, challenge = pkce_pair()
    code = world.code("patient@example.org", "patient/*.rs", challenge=challenge)
    r = world.exchange(code, None)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_request"


def test_public_client_without_pkce_is_refused_at_authorize(world):
    world.sign_in("patient@example.org")
    r = world.browser.get(world.authorize_url("patient/*.rs", state="s-77"))
    assert r.status_code == 302
    q = query_of(r.headers["Location"])
    assert r.headers["Location"].startswith(REDIRECT) and q["error"] == "invalid_request" and q["state"] == "s-77"
    assert "PKCE" in q["error_description"]


def test_plain_pkce_is_refused(world):
    world.sign_in("patient@example.org")
    verifier, _ = pkce_pair()
    r = world.browser.get(world.authorize_url("patient/*.rs", challenge=verifier, method="plain"))
    assert query_of(r.headers["Location"])["error"] == "invalid_request"


def test_aud_mismatch_is_refused(world):
    world.sign_in("patient@example.org")
    _, challenge = pkce_pair()
    for aud in ("https://evil.example.com/fhir", "http://localhost/other"):
        r = world.browser.get(world.authorize_url("patient/*.rs", challenge=challenge, aud=aud, state="s-aud"))
        assert r.status_code == 302
        q = query_of(r.headers["Location"])
        assert q["error"] == "invalid_request" and "aud" in q["error_description"] and q["state"] == "s-aud"
    # aud is required (SMART 2.0)
    url = world.authorize_url("patient/*.rs", challenge=challenge).replace("&aud=http%3A%2F%2Flocalhost%2Ffhir", "")
    assert "aud=" not in url
    assert query_of(world.browser.get(url).headers["Location"])["error"] == "invalid_request"
    # a trailing slash is the same URL
    r = world.browser.get(world.authorize_url("patient/*.rs", challenge=challenge, aud=BASE + "/"))
    assert r.status_code == 200


def test_redirect_uri_mismatch_is_an_error_page_not_a_redirect(world):
    world.sign_in("patient@example.org")
    _, challenge = pkce_pair()
    r = world.browser.get(world.authorize_url("patient/*.rs", challenge=challenge, redirect_uri="https://evil.example.com/cb"))
    assert r.status_code == 400 and "Location" not in r.headers
    assert "invalid_request" in r.get_data(as_text=True)


def test_redirect_uri_must_match_at_the_token_endpoint(world, svc):
    svc.records.q(type(svc.records.client("app-public"))).filter(client_id="app-public").update_one(
        push__redirect_uris="https://app.example.org/other")
    verifier, challenge = pkce_pair()
    code = world.code("patient@example.org", "patient/*.rs", challenge=challenge)
    r = world.exchange(code, verifier, redirect_uri="https://app.example.org/other")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_unknown_client_is_an_error_page(world):
    world.client_id = "nobody"
    r = world.browser.get(world.authorize_url("patient/*.rs", challenge=pkce_pair()[1]))
    assert r.status_code == 400 and "invalid_client" in r.get_data(as_text=True)


def test_deny_returns_access_denied_with_state(world):
    world.sign_in("patient@example.org")
    url = world.authorize_url("patient/*.rs", challenge=pkce_pair()[1], state="deny-me")
    r = world.consent(url, decision="deny")
    q = query_of(r.headers["Location"])
    assert q == {"error": "access_denied", "state": "deny-me"} or (q["error"] == "access_denied" and q["state"] == "deny-me")


def test_consent_post_needs_csrf(world):
    world.sign_in("patient@example.org")
    url = world.authorize_url("patient/*.rs", challenge=pkce_pair()[1])
    r = world.browser.post(url, data={"decision": "approve", "csrf": "forged"})
    assert r.status_code == 400 and "Location" not in r.headers


def test_code_is_single_use_and_reuse_revokes_its_tokens(app, world):
    verifier, challenge = pkce_pair()
    code = world.code("patient@example.org", "offline_access patient/*.rs", challenge=challenge)
    first = world.exchange(code, verifier)
    assert first.status_code == 200
    again = world.exchange(code, verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert principal_or_error(app, first.get_json()["access_token"]) == "auth-invalid"
    r = world.token({"grant_type": "refresh_token", "refresh_token": first.get_json()["refresh_token"], "client_id": "app-public"})
    assert r.get_json()["error"] == "invalid_grant"


def test_no_refresh_token_without_offline_or_online_access(world):
    tok = world.full("patient@example.org", "patient/*.rs")
    assert "refresh_token" not in tok and "id_token" not in tok and "patient" not in tok


def test_confidential_client_with_secret(app, svc, world):
    from .conftest import add_secret_client

    _, secret = add_secret_client(svc)
    world.client_id = "app-conf"
    verifier, challenge = pkce_pair()
    code = world.code("doctor@example.org", "user/*.rs", challenge=challenge)
    r = world.exchange(code, verifier, client_secret="wrong")
    assert r.status_code in (400, 401) and r.get_json()["error"] == "invalid_client"
    r = world.exchange(code, verifier, client_secret=secret)
    assert r.status_code == 200 and r.get_json()["scope"] == "user/*.rs"
    # without PKCE, a confidential client still gets a code (PKCE is mandatory for public clients)
    code = world.code("doctor@example.org", "user/*.rs", challenge=None)
    import base64

    basic = base64.b64encode(f"app-conf:{secret}".encode()).decode()
    r = world.token({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.get_data(as_text=True)


def test_practitioner_chooses_the_launch_patient(app, world):
    r = internal_client(app).put("/fhir/Patient/p9", json={"resourceType": "Patient", "id": "p9"}, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201
    world.sign_in("doctor@example.org")
    verifier, challenge = pkce_pair()
    url = world.authorize_url("launch/patient patient/*.rs user/Patient.rs", challenge=challenge)
    page = world.browser.get(url, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'name="patient"' in page
    r = world.consent(url, patient="no-such-patient")
    assert r.status_code == 400 and "No patient with this id" in r.get_data(as_text=True) or "Пациента" in r.get_data(as_text=True)
    r = world.consent(url, patient="p9")
    tok = world.exchange(query_of(r.headers["Location"])["code"], verifier).get_json()
    assert tok["patient"] == "p9" and claims_of(tok["access_token"])["patient"] == "p9"
    # no patient chosen: no launch context, launch/patient is not granted
    verifier, challenge = pkce_pair()
    url = world.authorize_url("launch/patient user/Patient.rs", challenge=challenge)
    r = world.consent(url)
    tok = world.exchange(query_of(r.headers["Location"])["code"], verifier).get_json()
    assert "patient" not in tok and tok["scope"] == "user/Patient.rs"


def test_launch_scope_for_ehr_launch_is_not_granted(world):
    tok = world.full("patient@example.org", "launch launch/encounter patient/*.rs")
    assert tok["scope"] == "patient/*.rs"
