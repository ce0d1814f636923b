"""Identity providers: how a person proves who they are before an app gets a token.

An identity provider has a `name` (used in URLs: /auth/login/<name>), a `label` per
language, `start(request)` that answers with a redirect (to its own sign-in: a form here,
an external site for federated providers), and `finish(request)` that answers with the
signed-in Account or a ProviderError. The sign-in page lists every registered provider.

Providers may also answer, for an account they signed in: `scope_ceiling(account)` (the
most it may be granted, or None), `notices(account)` (keys of login.NOTICES shown on its
pages) and `logout_url()` (where the browser goes after our sign-out). The local provider
and Gosuslugi (ESIA, fhir_server.esia, when FHIR_ESIA_URL is set) are registered.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from flask import redirect, url_for


log = logging.getLogger("fhir_server.auth")


class ProviderError(Exception):
    """Sign-in failed; `key` names the message shown on the sign-in page (login.TEXTS),
    `status` the HTTP status of that page (503 when the provider is unreachable)."""

    def __init__(self, key: str, status: int = 401):
        super().__init__(key)
        self.key = key
        self.status = status


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

    def scope_ceiling(self, account) -> tuple[str, ...] | None:
        """The most `account` may be granted, as the providers limit it (None: no limit)."""
        ceilings = [c for p in self if (c := getattr(p, "scope_ceiling", lambda a: None)(account)) is not None]
        if not ceilings:
            return None
        return tuple(s for s in ceilings[0] if all(s in c for c in ceilings[1:]))

    def notices(self, account) -> list[str]:
        return [n for p in self for n in getattr(p, "notices", lambda a: [])(account)]

    def logout_url(self, name: str | None) -> str | None:
        """Where the browser goes after signing out of a session made by provider `name`."""
        provider = self.get(name) if name else None
        return getattr(provider, "logout_url", lambda: None)()


def register_configured(registry: ProviderRegistry, settings, records) -> None:
    """Register the federated providers the settings configure (ESIA with FHIR_ESIA_URL)."""
    from ..esia.provider import from_settings

    esia = from_settings(settings, records)
    if esia is not None:
        registry.register(esia)


class LocalPasswordProvider:
    """Accounts of this server: login (e-mail or phone) and password, checked with Argon2id.

    The checks and the lockout are in local.py. Nothing typed into the form is ever logged.
    """

    name = "local"
    label = {"en": "Login and password", "ru": "Логин и пароль"}

    def __init__(self, records):
        self.records = records

    def start(self, request):
        return redirect(url_for("smart.login"))

    def finish(self, request):
        from flask import current_app

        from . import local  # the form, the password, the lockout

        return local.authenticate(current_app.extensions["fhir_auth"], request.form)
