"""The second factor of staff accounts over HTTP: enrolment (secret shown once), the code at
sign-in, refusing a code used before, and switching it off."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from freezegun import freeze_time

from fhir_server.auth import mint_token

from .conftest import PASSWORD, add_account
from .test_local_accounts import EN, post_login, signed_in, text

T0 = dt.datetime(2026, 12, 1, 9, 0, 10, tzinfo=dt.UTC)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def secret_of(html: str) -> str:
    uri = re.search(r'<code id="otpauth">([^<]+)</code>', html).group(1).replace("&amp;", "&")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    q = parse_qs(parts.query)
    assert q["issuer"] == ["fhir-server-ru"]
    return q["secret"][0]


def enter_code(browser, code, url="/auth/totp/verify"):
    page = text(browser.get(url, headers=EN))
    return browser.post(url, data={"code": code, "csrf": csrf_of(page)}, headers=EN)


@pytest.fixture
def staff(app, svc):
    return add_account(svc, "reg@example.org", "staff")


def enrol(browser) -> str:
    first = secret_of(text(browser.get("/auth/totp", headers=EN)))
    page = text(browser.get("/auth/totp", headers=EN))
    secret = secret_of(page)
    assert secret != first  # each visit shows a new secret; the one shown is never shown again
    r = browser.post("/auth/totp", data={"code": pyotp.TOTP(first).now(), "csrf": csrf_of(page)}, headers=EN)
    assert "Wrong or expired code." in text(r)  # the superseded secret is gone
    assert "otpauth://" not in text(r)
    r = browser.post("/auth/totp", data={"code": pyotp.TOTP(secret).now(), "csrf": csrf_of(page)}, headers=EN)
    assert r.status_code == 200 and "The second factor is on for this account." in text(r)
    return secret


def test_enrol_then_sign_in_with_a_code(app, svc, staff):
    browser = app.test_client()
    with freeze_time(T0) as clock:
        assert post_login(browser, "reg@example.org", PASSWORD).status_code == 302
        secret = enrol(browser)
        page = text(browser.get("/auth/totp", headers=EN))
        assert "otpauth://" not in page and "The second factor is on" in page
        assert svc.records.account(staff.id).totp_secret == secret and svc.records.account(staff.id).totp_pending is None
        browser.post("/auth/logout", data={"csrf": csrf_of(text(browser.get("/auth/login")))})
        clock.tick(30)

        r = post_login(browser, "reg@example.org", PASSWORD)
        assert r.status_code == 302 and r.headers["Location"].endswith("/auth/totp/verify")
        assert not signed_in(browser)  # the password alone signs nobody in
        assert "Enter the 6-digit code" in text(browser.get("/auth/totp/verify", headers=EN))
        assert "The code is 6 digits." in text(enter_code(browser, "12ab"))
        r = enter_code(browser, pyotp.TOTP(secret).now())
        assert r.status_code == 302 and signed_in(browser)


def test_a_code_is_good_once(app, svc, staff):
    secret = pyotp.random_base32()
    svc.records.set_account_fields(staff.id, totp_secret=secret)
    totp = pyotp.TOTP(secret)
    with freeze_time(T0) as clock:
        browser = app.test_client()
        post_login(browser, "reg@example.org", PASSWORD)
        code = totp.now()
        assert enter_code(browser, code).status_code == 302
        other = app.test_client()
        post_login(other, "reg@example.org", PASSWORD)
        r = enter_code(other, code)  # the same code again, still inside its 30 s
        assert "This code was used already." in text(r) and not signed_in(other)
        # a code of the previous step (inside the drift allowance) is refused too
        assert "used already" in text(enter_code(other, totp.at(T0 - dt.timedelta(seconds=30))))
        clock.tick(30)
        assert enter_code(other, totp.now()).status_code == 302 and signed_in(other)


def test_clock_drift_of_one_step_is_accepted_more_is_not(app, svc, staff):
    secret = pyotp.random_base32()
    svc.records.set_account_fields(staff.id, totp_secret=secret)
    totp = pyotp.TOTP(secret)
    with freeze_time(T0):
        browser = app.test_client()
        post_login(browser, "reg@example.org", PASSWORD)
        assert "Wrong or expired code." in text(enter_code(browser, totp.at(T0 - dt.timedelta(seconds=90))))
        assert enter_code(browser, totp.at(T0 + dt.timedelta(seconds=30))).status_code == 302


def test_the_code_step_times_out(app, svc, staff):
    svc.records.set_account_fields(staff.id, totp_secret=pyotp.random_base32())
    browser = app.test_client()
    with freeze_time(T0) as clock:
        post_login(browser, "reg@example.org", PASSWORD)
        clock.tick(301)
        r = browser.get("/auth/totp/verify")
        assert r.status_code == 302 and r.headers["Location"].endswith("/auth/login")
        assert "The sign-in took too long." in text(browser.get("/auth/login", headers=EN))
    assert browser.get("/auth/totp/verify").status_code == 302  # no half-signed-in state left


def test_patients_cannot_enrol_and_strangers_are_sent_to_sign_in(app, svc):
    add_account(svc, "pat@example.org", "patient", "Patient/p1")
    browser = app.test_client()
    assert browser.get("/auth/totp").headers["Location"].endswith("/auth/login")
    post_login(browser, "pat@example.org", PASSWORD)
    r = browser.get("/auth/totp", headers=EN)
    assert r.status_code == 403 and "staff accounts only" in text(r) and "otpauth://" not in text(r)


def test_admin_switches_the_factor_off(app, svc, staff):
    svc.records.set_account_fields(staff.id, totp_secret=pyotp.random_base32())
    admin = add_account(svc, "root@example.org", "admin")
    auth = {"Authorization": "Bearer " + mint_token(app, subject=admin.id, role="admin", scope="user/*.cruds")}
    assert app.test_client().delete(f"/admin/accounts/{staff.id}/totp", headers=auth).status_code == 204
    assert post_login(app.test_client(), "reg@example.org", PASSWORD).headers["Location"].endswith("/auth/login")


def test_secrets_and_codes_are_never_logged(app, svc, staff, caplog):
    caplog.set_level("DEBUG")
    browser = app.test_client()
    with freeze_time(T0):
        post_login(browser, "reg@example.org", PASSWORD)
        secret = enrol(browser)
        code = pyotp.TOTP(secret).now()
    assert secret not in caplog.text and code not in caplog.text and PASSWORD not in caplog.text


def test_openapi_lists_the_account_endpoints(app):
    paths = app.test_client().get("/api/openapi.json").get_json()["paths"]
    for path in ("/admin/accounts", "/admin/accounts/{account_id}/password", "/admin/accounts/{account_id}/unlock",
                 "/admin/accounts/{account_id}/totp", "/auth/totp", "/auth/totp/verify"):
        assert path in paths, path
