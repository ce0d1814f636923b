"""Local accounts over HTTP: the password policy wherever a password is set, the login format,
the lockout (and its audit), the session cookie, CSRF, session expiry, and sign-out when a
refresh token is reused."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from fhir_server.auth import hashing, mint_token, passwords
from fhir_server.cli import main
from fhir_server.validation import validator

from .conftest import PASSWORD, Flow, add_account, add_public_client

EN = {"Accept-Language": "en"}
T0 = dt.datetime(2026, 12, 1, 9, 0, 0, tzinfo=dt.UTC)

# each rule of the policy, broken alone
WEAK = [
    ("Sh0rt-x", "at least 8 characters"),
    ("no-upper-case-1", "an upper-case letter"),
    ("NO-LOWER-CASE-1", "a lower-case letter"),
    ("No-digits-at-all", "a digit"),
    ("NoSpecialChars123", "a special character"),
    (" Leading-space-1", "no spaces at the start or end"),
    ("Trailing-space-1 ", "no spaces at the start or end"),
]


def post_login(browser, login, password, lang="en"):
    page = browser.get("/auth/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return browser.post("/auth/login", data={"login": login, "password": password, "csrf": csrf}, headers={"Accept-Language": lang})


def text(r) -> str:
    return r.get_data(as_text=True)


def signed_in(browser) -> bool:
    return "You are signed in as" in text(browser.get("/auth/login", headers=EN))


def account_events(app) -> list[dict]:
    reader = app.config["FHIR_STORE"].reader()
    events = [v.resource() for v in reader.search("AuditEvent", {}, [("_id", 1)], 1000)]
    return sorted((e for e in events if e["type"]["code"] == "110114"), key=lambda e: e["recorded"])


@pytest.fixture
def admin_auth(app, svc):
    admin = add_account(svc, "root@example.org", "admin")
    return {"Authorization": "Bearer " + mint_token(app, subject=admin.id, role="admin", scope="user/*.cruds")}


# -- password policy ------------------------------------------------------------------------------
@pytest.mark.parametrize(("password", "rule"), WEAK)
def test_admin_api_refuses_each_weak_password(app, admin_auth, password, rule):
    c = app.test_client()
    r = c.post("/admin/accounts", headers=admin_auth, json={"login": "new@example.org", "role": "staff", "password": password})
    assert r.status_code == 422 and rule in r.get_json()["message"], r.get_json()
    assert passwords.broken_rules(password) != [] and len(passwords.broken_rules(password)) == 1
    assert "new@example.org" not in [a["login"] for a in c.get("/admin/accounts", headers=admin_auth).get_json()]


@pytest.mark.parametrize(("password", "rule"), WEAK)
def test_cli_refuses_each_weak_password(app, svc, password, rule):
    records = svc.records
    r = CliRunner().invoke(main, ["accounts", "add", "--login", "cli@example.org", "--role", "staff"], obj={"auth_records": records},
                           input=f"{password}\n{password}\n")
    assert r.exit_code == 2 and rule in r.output
    assert password.strip() not in r.stdout.replace("Password", "") and records.account_by_login("cli@example.org") is None


def test_admin_api_adds_accounts_and_sets_passwords(app, svc, admin_auth):
    c = app.test_client()
    r = c.post("/admin/accounts", headers=admin_auth, json={"login": "Nurse@Example.org", "role": "staff", "password": PASSWORD, "name": "Медсестра"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["login"] == "nurse@example.org" and "password" not in body and body["locked"] is False and body["totp"] is False
    assert c.post("/admin/accounts", headers=admin_auth, json={"login": "nurse@example.org", "role": "staff", "password": PASSWORD}).status_code == 409
    r = c.post("/admin/accounts", headers=admin_auth, json={"login": "p@example.org", "role": "patient", "password": PASSWORD})
    assert r.status_code == 422
    r = c.put(f"/admin/accounts/{body['id']}/password", headers=admin_auth, json={"password": "weakpass"})
    assert r.status_code == 422 and "an upper-case letter" in r.get_json()["message"]
    assert c.put(f"/admin/accounts/{body['id']}/password", headers=admin_auth, json={"password": "Another-pass-42"}).status_code == 204
    assert c.put("/admin/accounts/nobody/password", headers=admin_auth, json={"password": "Another-pass-42"}).status_code == 404
    browser = app.test_client()
    assert post_login(browser, "nurse@example.org", PASSWORD).status_code == 200  # the old one no longer works
    assert post_login(browser, "nurse@example.org", "Another-pass-42").status_code == 302
    listed = c.get("/admin/accounts", headers=admin_auth).get_json()
    assert all("password" not in a and "password_hash" not in a for a in listed)
    assert c.get("/admin/accounts").status_code == 401


def test_demo_passwords_meet_the_policy(make_app, capsys):
    make_app(demo=True)
    err = capsys.readouterr().err
    shown = [line.rsplit("password: ", 1)[1].strip() for line in err.splitlines() if "password: " in line]
    assert len(shown) == 5 and all(passwords.broken_rules(p) == [] for p in shown)
    with pytest.raises(RuntimeError, match="FHIR_DEMO_PASSWORD does not meet the password policy"):
        make_app(demo=True, demo_password="demo-pass-1")


def test_generated_passwords_always_meet_the_policy():
    assert all(passwords.broken_rules(passwords.generate()) == [] for _ in range(200))


# -- login format and form messages -----------------------------------------------------------
@pytest.mark.parametrize("login", ["not-a-login", "user@", "@example.org", "user@example", "12345", "+7 (900) 123-45-67-89-01-23", "вася"])
def test_login_must_be_an_email_or_phone(app, svc, admin_auth, login):
    r = post_login(app.test_client(), login, PASSWORD)
    assert r.status_code == 200 and "The login must be an e-mail address or a phone number." in text(r)
    r = app.test_client().post("/admin/accounts", headers=admin_auth, json={"login": login, "role": "staff", "password": PASSWORD})
    assert r.status_code == 422


def test_accepted_logins(app, admin_auth):
    c = app.test_client()
    for login, stored in (("Ivan.Petrov+card@Mail.example.ru", "ivan.petrov+card@mail.example.ru"), ("8 (900) 111-22-33", "+79001112233"),
                          ("+44 20 7946 0958", "+442079460958")):
        r = c.post("/admin/accounts", headers=admin_auth, json={"login": login, "role": "staff", "password": PASSWORD})
        assert r.status_code == 201 and r.get_json()["login"] == stored


def test_each_missing_field_is_named(app):
    browser = app.test_client()
    assert "Enter your login (e-mail or phone number)." in text(post_login(browser, "", PASSWORD))
    assert "Enter your password." in text(post_login(browser, "a@example.org", ""))
    assert "Введите логин и пароль." in text(post_login(browser, "", "", lang="ru"))


# -- lockout ------------------------------------------------------------------------------------------
def test_three_wrong_passwords_lock_the_account_until_the_period_ends(app, svc):
    account = add_account(svc, "doc@example.org", "practitioner", "Practitioner/d1")
    browser = app.test_client()
    with freeze_time(T0) as clock:
        for _ in range(2):
            assert "Wrong login or password." in text(post_login(browser, "doc@example.org", "Wrong-pass-1"))
        r = post_login(browser, "doc@example.org", "Wrong-pass-1")
        assert "sign-in with this login is locked for 15 min" in text(r)
        # the right password does not help while locked
        r = post_login(browser, "doc@example.org", PASSWORD)
        assert r.status_code == 200 and "locked" in text(r) and not signed_in(browser)
        clock.tick(15 * 60 - 5)
        assert "locked" in text(post_login(browser, "doc@example.org", PASSWORD))
        clock.tick(10)
        assert post_login(browser, "doc@example.org", PASSWORD).status_code == 302
        assert signed_in(browser)
    events = account_events(app)
    assert [e["subtype"][0]["code"] for e in events] == ["lock", "unlock"]
    lock, unlock = events
    assert lock["period"]["end"].startswith("2026-12-01T09:15:00")
    for e in events:
        validator().validate(e, "AuditEvent")
        dumped = str(e)
        assert e["entity"][0]["what"]["identifier"]["value"] == account.id
        assert "doc@example.org" not in dumped and "Practitioner/d1" not in dumped


def test_a_right_password_resets_the_count(app, svc):
    add_account(svc, "doc@example.org", "practitioner", "Practitioner/d1")
    browser = app.test_client()
    post_login(browser, "doc@example.org", "Wrong-pass-1")
    post_login(browser, "doc@example.org", "Wrong-pass-1")
    assert post_login(browser, "doc@example.org", PASSWORD).status_code == 302
    # the count starts again: two more wrong passwords do not lock, the third does
    assert "Wrong login or password." in text(post_login(browser, "doc@example.org", "Wrong-pass-1"))
    assert "Wrong login or password." in text(post_login(browser, "doc@example.org", "Wrong-pass-1"))
    assert account_events(app) == []
    assert "locked" in text(post_login(browser, "doc@example.org", "Wrong-pass-1"))
    assert [e["subtype"][0]["code"] for e in account_events(app)] == ["lock"]


def test_unknown_logins_look_exactly_like_existing_ones(app, svc, monkeypatch):
    add_account(svc, "doc@example.org", "practitioner", "Practitioner/d1")
    verified = []

    class Counting:
        def __init__(self, inner):
            self.inner = inner

        def verify(self, h, p):
            verified.append(h)
            return self.inner.verify(h, p)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(hashing, "_hasher", Counting(hashing._hasher))

    def walk(login):
        browser = app.test_client()
        verified.clear()
        pages = [re.sub(r'value="[^"]*"', "", text(post_login(browser, login, "Wrong-pass-1"))) for _ in range(4)]
        pages.append(re.sub(r'value="[^"]*"', "", text(post_login(browser, login, PASSWORD))))
        return pages, len(verified)

    known, known_hashes = walk("doc@example.org")
    unknown, unknown_hashes = walk("ghost@example.org")
    assert [p.replace("ghost@example.org", "doc@example.org") for p in unknown] == known
    assert known_hashes == unknown_hashes == 5  # one Argon2id verification per attempt, locked or not
    assert "locked" in known[2] and "locked" in known[4]
    assert [e["subtype"][0]["code"] for e in account_events(app)] == ["lock"]  # only the real account is audited


def test_wrong_one_time_codes_count_too_and_admin_unlock_is_audited(app, svc, admin_auth):
    import pyotp

    staff = add_account(svc, "reg@example.org", "staff")
    svc.records.set_account_fields(staff.id, totp_secret=pyotp.random_base32())
    browser = app.test_client()
    assert post_login(browser, "reg@example.org", PASSWORD).headers["Location"].endswith("/auth/totp/verify")
    for expected in ("Wrong or expired code.", "Wrong or expired code.", "locked"):
        page = text(browser.get("/auth/totp/verify"))
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        r = browser.post("/auth/totp/verify", data={"code": "000000", "csrf": csrf}, headers=EN)
        assert expected in text(r)
    c = app.test_client()
    listed = {a["login"]: a for a in c.get("/admin/accounts", headers=admin_auth).get_json()}
    assert listed["reg@example.org"]["locked"] is True and listed["reg@example.org"]["totp"] is True
    assert c.post(f"/admin/accounts/{staff.id}/unlock", headers=admin_auth).status_code == 204
    assert c.post(f"/admin/accounts/{staff.id}/unlock", headers=admin_auth).status_code == 409
    unlock = account_events(app)[-1]
    assert unlock["subtype"][0]["code"] == "unlock" and unlock["outcomeDesc"] == "unlocked by an administrator"
    assert unlock["agent"][0]["requestor"] is True and unlock["entity"][0]["what"]["identifier"]["value"] == staff.id
    validator().validate(unlock, "AuditEvent")


# -- the session cookie ---------------------------------------------------------------------------
def _session_cookie(r) -> str:
    return next(h for h in r.headers.getlist("Set-Cookie") if h.startswith("fhir_auth_session="))


def test_cookie_attributes(make_app):
    for base, secure in (("https://fhir.example.org/fhir", True), ("http://192.168.0.10:8080/fhir", True), (None, False),
                         ("http://127.0.0.1:8080/fhir", False)):
        app = make_app(base_url=base) if base else make_app()
        svc = app.extensions["fhir_auth"]
        add_account(svc, "doc@example.org", "practitioner", "Practitioner/d1")
        with freeze_time(T0):
            r = post_login(app.test_client(), "doc@example.org", PASSWORD)
        assert r.status_code == 302
        cookie = _session_cookie(r)
        attrs = [a.strip() for a in cookie.split(";")]
        assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/auth" in attrs
        assert ("Secure" in attrs) is secure, (base, cookie)
        expires = next(a for a in attrs if a.startswith("Expires="))
        # the session lifetime (8 h by default) plus the minute in which the page says it expired
        assert "Tue, 01 Dec 2026 17:01:00 GMT" in expires


# -- CSRF -----------------------------------------------------------------------------------------------
def test_every_form_refuses_a_missing_or_wrong_csrf_token(app, svc):
    add_account(svc, "doc@example.org", "practitioner", "Practitioner/d1")
    add_public_client(svc)
    flow = Flow(app, "app-public")
    browser = flow.browser
    assert browser.post("/auth/login", data={"login": "doc@example.org", "password": PASSWORD}, headers=EN).status_code == 400
    assert post_login(browser, "doc@example.org", PASSWORD).status_code == 302
    from .conftest import pkce_pair

    url = flow.authorize_url("openid user/*.rs", challenge=pkce_pair()[1])
    assert browser.get(url).status_code == 200
    r = browser.post(url, data={"decision": "approve", "csrf": "forged"}, headers=EN)
    assert r.status_code == 400 and "The form has expired" in text(r)
    assert browser.post("/auth/totp", data={"code": "123456", "csrf": "forged"}, headers=EN).status_code == 400
    assert browser.post("/auth/logout", data={"csrf": "forged"}).status_code == 302
    assert signed_in(browser)  # a forged sign-out does nothing
    browser.post("/auth/logout", data={"csrf": re.search(r'name="csrf" value="([^"]+)"', text(browser.get("/auth/login"))).group(1)})
    assert not signed_in(browser)


# -- session expiry and forced sign-out --------------------------------------------------------------
def test_session_expires_with_its_lifetime(make_app):
    app = make_app(auth_session_seconds=3600)
    svc = app.extensions["fhir_auth"]
    add_account(svc, "doc@example.org", "practitioner", "Practitioner/d1")
    add_public_client(svc)
    flow = Flow(app, "app-public")
    with freeze_time(T0) as clock:
        assert post_login(flow.browser, "doc@example.org", PASSWORD).status_code == 302
        clock.tick(3599)
        assert signed_in(flow.browser)
        clock.tick(2)
        page = text(flow.browser.get("/auth/login", headers=EN))
        assert "Your session has expired." in page and 'type="password"' in page
        r = flow.browser.get(flow.authorize_url("openid user/*.rs", challenge="x" * 43))
        assert r.status_code == 302 and r.headers["Location"].endswith("/auth/login")


def test_session_lifetime_never_exceeds_the_online_token_lifetime(make_app):
    app = make_app(auth_session_seconds=8 * 3600, auth_online_refresh_seconds=1800)
    add_account(app.extensions["fhir_auth"], "doc@example.org", "practitioner", "Practitioner/d1")
    browser = app.test_client()
    with freeze_time(T0) as clock:
        post_login(browser, "doc@example.org", PASSWORD)
        clock.tick(1801)
        assert not signed_in(browser)


def test_refresh_token_reuse_signs_the_account_out_everywhere(app, svc, world):
    tok = world.full("patient@example.org", "openid offline_access patient/*.rs")
    assert signed_in(world.browser)
    other_browser = app.test_client()
    assert post_login(other_browser, "patient@example.org", PASSWORD).status_code == 302
    add_public_client(svc, scope="online_access patient/*.rs", client_id="app-online")
    online = Flow(app, "app-online")
    online_tok = online.full("patient@example.org", "online_access patient/*.rs")
    r = world.token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "client_id": "app-public"})
    assert r.status_code == 200
    # the old refresh token again: someone else has it
    r = world.token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "client_id": "app-public"})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    for browser in (world.browser, other_browser, online.browser):
        page = text(browser.get("/auth/login", headers=EN))
        assert "You were signed out for your safety" in page and 'type="password"' in page
    # online_access tokens live only while the user is signed in
    r = online.token({"grant_type": "refresh_token", "refresh_token": online_tok["refresh_token"], "client_id": "app-online"})
    assert r.status_code == 400
    # a new sign-in works
    assert post_login(world.browser, "patient@example.org", PASSWORD).status_code == 302 and signed_in(world.browser)


def test_an_authorization_code_used_twice_signs_the_account_out(app, svc, world):
    from .conftest import pkce_pair

    verifier, challenge = pkce_pair()
    code = world.code("doctor@example.org", "openid user/*.rs", challenge=challenge)
    assert world.exchange(code, verifier).status_code == 200
    assert world.exchange(code, verifier).status_code == 400
    assert "You were signed out for your safety" in text(world.browser.get("/auth/login", headers=EN))


def test_a_cross_site_federated_callback_is_reloaded_from_our_site(app, svc):
    """Browsers send no SameSite=Strict cookie on the cross-site return from an identity
    provider; the callback reloads itself same-site once, so the session (its state) is there."""
    from .test_login import FakeProvider

    add_account(svc, "+79001234567", "patient", "Patient/p1")
    svc.providers.register(FakeProvider(svc.records))
    browser = app.test_client()
    r = browser.get("/auth/login/fake/callback?ok=1", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200 and not r.headers.getlist("Set-Cookie")
    target = "/auth/login/fake/callback?ok=1&amp;_same_site=1"
    assert f'<meta http-equiv="refresh" content="0;url={target}">' in text(r)
    assert r.headers["Cache-Control"] == "no-store" and r.headers["Referrer-Policy"] == "no-referrer"
    r = browser.get(target.replace("&amp;", "&"), headers={"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 302 and signed_in(browser)
    # never twice, and nothing else is reloaded
    r = app.test_client().get("/auth/login/fake/callback?ok=0&_same_site=1", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 401
    assert app.test_client().get("/auth/login/fake/callback?ok=0").status_code == 401
    r = app.test_client().get("/auth/authorize?client_id=x", headers={"Sec-Fetch-Site": "cross-site"})
    assert "http-equiv" not in text(r)
