"""Identity providers: how a person proves who they are before an app gets a token.

An identity provider has a `name` (used in URLs: /auth/login/<name>), a `label` per
language, `start(request)` that answers with a redirect (to its own sign-in: a form here,
an external site for federated providers), and `finish(request)` that answers with the
signed-in Account or a ProviderError. The sign-in page lists every registered provider.

Only the local login-and-password provider exists today; Gosuslugi (ESIA) will register
here as another provider.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from flask import redirect, url_for

from . import hashing

log = logging.getLogger("fhir_server.auth")


class ProviderError(Exception):
    """Sign-in failed; `key` names the message shown on the sign-in page (login.TEXTS)."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


@runtime_checkable
class IdentityProvider(Protocol):
    name: str
    label: dict[str, str]  # language -> text of the sign-in button

    def start(self, request):
        """A redirect response that begins sign-in with this provider."""

    def finish(self, request):
        """The signed-in Account; raises ProviderError."""


class ProviderRegistry:
    def __init__(self):
        self._providers: dict[str, IdentityProvider] = {}

    def register(self, provider: IdentityProvider) -> None:
        if not isinstance(provider, IdentityProvider):
            raise TypeError("an identity provider needs name, label, start(request) and finish(request)")
        self._providers[provider.name] = provider

    def get(self, name: str) -> IdentityProvider | None:
        return self._providers.get(name)

    def __iter__(self):
        return iter(self._providers.values())

    def __contains__(self, name: str) -> bool:
        return name in self._providers


class LocalPasswordProvider:
    """Accounts of this server: login (e-mail or phone) and password, checked with Argon2id.

    Password policy and lockout come later; this only verifies. Nothing typed into the
    form is ever logged.
    """

    name = "local"
    label = {"en": "Login and password", "ru": "Логин и пароль"}

    def __init__(self, records):
        self.records = records

    def start(self, request):
        return redirect(url_for("smart.login"))

    def finish(self, request):
        login = (request.form.get("login") or "").strip()
        password = request.form.get("password") or ""
        if not login or not password:
            raise ProviderError("missing-credentials")
        account = self.records.account_by_login(login)
        ok = hashing.verify_secret(account.password_hash if account else None, password)
        if not ok or account is None:
            log.info("sign-in refused: wrong login or password")
            raise ProviderError("bad-credentials")
        if account.disabled:
            log.info("sign-in refused: account %s is disabled", account.id)
            raise ProviderError("account-disabled")
        if hashing.needs_rehash(account.password_hash):
            self.records.set_password_hash(account.id, hashing.hash_secret(password))
        return account
