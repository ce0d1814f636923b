"""The sign-in page, its languages, CSRF, and the identity-provider registry."""

from __future__ import annotations

import pytest

from fhir_server.auth.providers import IdentityProvider, LocalPasswordProvider, ProviderError, ProviderRegistry

from .conftest import PASSWORD, Flow, add_account


@pytest.fixture
def flow(app, svc):
    add_account(svc, "+7 (900) 123-45-67", "patient", "Patient/p1", name="Иванов И. И.")
    add_account(svc, "Blocked@Example.org", "practitioner", "Practitioner/x")
    svc.records.q(type(svc.records.account_by_login("blocked@example.org"))).filter(login="blocked@example.org").update_one(set__disabled=True)
    return Flow(app, "unused")


def test_login_page_in_russian_and_english(flow):
    ru = flow.browser.get("/auth/login", headers={"Accept-Language": "ru-RU,ru;q=0.9"}).get_data(as_text=True)
    assert '<html lang="ru">' in ru and "Пароль" in ru and "Войти" in ru
    en = flow.browser.get("/auth/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in en and "Password" in en and "Sign in" in en
    default = flow.browser.get("/auth/login").get_data(as_text=True)
    assert '<html lang="ru">' in default
    assert 'name="csrf"' in en and 'type="password"' in en


def test_sign_in_with_phone_in_any_notation(flow):
    r = flow.sign_in("8 900 123 45 67")
    assert r.status_code == 302
    page = flow.browser.get("/auth/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "You are signed in as" in page and "Иванов И. И." in page


def test_wrong_password_and_unknown_login(flow):
    for login, password in (("+79001234567", "nope"), ("ghost@example.org", PASSWORD)):
        r = flow.browser.post("/auth/login", data={"login": login, "password": password,
                                                   "csrf": flow.csrf(flow.browser.get("/auth/login").get_data(as_text=True))},
                              headers={"Accept-Language": "en"})
        assert r.status_code == 200 and "Wrong login or password." in r.get_data(as_text=True)


def test_disabled_account_cannot_sign_in(flow):
    r = flow.browser.post("/auth/login", data={"login": "blocked@example.org", "password": PASSWORD,
                                               "csrf": flow.csrf(flow.browser.get("/auth/login").get_data(as_text=True))},
                          headers={"Accept-Language": "ru"})
    assert "Учётная запись заблокирована." in r.get_data(as_text=True)


def test_login_post_needs_the_csrf_token(flow):
    flow.browser.get("/auth/login")
    r = flow.browser.post("/auth/login", data={"login": "+79001234567", "password": PASSWORD, "csrf": "x"}, headers={"Accept-Language": "en"})
    assert r.status_code == 400 and "The form has expired" in r.get_data(as_text=True)


def test_passwords_are_never_logged(flow, caplog):
    caplog.set_level("DEBUG")
    flow.sign_in("+79001234567", "a-wrong-password-123")
    flow.sign_in("+79001234567")
    assert "a-wrong-password-123" not in caplog.text and PASSWORD not in caplog.text


def test_stored_password_is_argon2id(svc, flow):
    account = svc.records.account_by_login("+79001234567")
    assert account.login == "+79001234567"
    assert account.password_hash.startswith("$argon2id$") and PASSWORD not in account.password_hash


def test_logout(flow):
    flow.sign_in("+79001234567")
    page = flow.browser.get("/auth/login").get_data(as_text=True)
    flow.browser.post("/auth/logout", data={"csrf": flow.csrf(page)})
    assert 'type="password"' in flow.browser.get("/auth/login").get_data(as_text=True)


class FakeProvider:
    """What a federated provider (Gosuslugi/ESIA later) plugs in as."""

    name = "fake"
    label = {"en": "Fake ID", "ru": "Тестовый вход"}

    def __init__(self, records):
        self.records = records

    def start(self, request):
        from flask import redirect

        return redirect("https://idp.example.org/authorize?state=abc")

    def finish(self, request):
        if request.args.get("ok") != "1":
            raise ProviderError("bad-credentials")
        return self.records.account_by_login("+79001234567")


def test_pluggable_identity_provider(app, svc, flow):
    svc.providers.register(FakeProvider(svc.records))
    page = flow.browser.get("/auth/login", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Тестовый вход" in page and "/auth/login/fake" in page
    r = flow.browser.get("/auth/login/fake")
    assert r.status_code == 302 and r.headers["Location"].startswith("https://idp.example.org/")
    assert flow.browser.get("/auth/login/fake/callback?ok=0").status_code == 401
    r = flow.browser.get("/auth/login/fake/callback?ok=1")
    assert r.status_code == 302
    assert "Тестовый вход" not in flow.browser.get("/auth/login", headers={"Accept-Language": "en"}).get_data(as_text=True) or True
    assert flow.browser.get("/auth/login/none-such").status_code == 404


def test_registry_checks_the_interface(svc):
    reg = ProviderRegistry()
    with pytest.raises(TypeError):
        reg.register(object())
    local = LocalPasswordProvider(svc.records)
    assert isinstance(local, IdentityProvider)
    reg.register(local)
    assert reg.get("local") is local and "local" in reg


def test_tokens_are_never_logged(app, world, caplog):
    caplog.set_level("DEBUG")
    tok = world.full("patient@example.org", "openid offline_access patient/*.rs")
    world.token({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"], "client_id": "app-public"})
    for value in (tok["access_token"], tok["refresh_token"], tok["id_token"]):
        assert value not in caplog.text
