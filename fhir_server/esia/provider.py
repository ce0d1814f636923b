"""The Gosuslugi (ESIA) identity provider behind our SMART /auth/authorize.

    start   -> 302 to ESIA's v2/ac (or legacy ac) with a fresh UUID v4 state kept in the session
    finish  <- /auth/login/esia/callback?code&state: state check (once), code exchange,
               token checks, person data, linking (linking.Linker) -> the Account

Confirmed-account gating: an account ESIA does not report as confirmed (no
urn:esia:sbj:is_tru in the id token and no trusted=true in the person record) signs in,
but `scope_ceiling` limits its grants to its own Patient's demographics (UNCONFIRMED), and
the pages it sees explain how to confirm the account (`notices`).
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import urlencode

from flask import current_app, redirect, session
from markupsafe import escape

from ..auth import hashing, login, urls
from ..auth.providers import ProviderError
from .client import EsiaClient, EsiaConfig, EsiaRefused, EsiaUnavailable
from .linking import Linker

log = logging.getLogger("fhir_server.esia")

# What an unconfirmed account may be granted, by role: identity, and a patient's own demographics.
UNCONFIRMED = {
    "patient": ("openid", "fhirUser", "profile", "launch/patient", "online_access", "patient/Patient.rs"),
}
IDENTITY_ONLY = ("openid", "fhirUser", "profile")

HOP_PAGE = """<!doctype html><html lang="ru"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={url}">
<title>Вход через Госуслуги</title></head><body><p>Возвращаемся из Госуслуг… <a href="{url}">Продолжить</a></p></body></html>"""


class EsiaProvider:
    name = "esia"
    label = {"ru": "Войти через Госуслуги", "en": "Sign in with Gosuslugi (ESIA)"}

    def __init__(self, config: EsiaConfig, records, settings, client: EsiaClient | None = None):
        self.config = config
        self.settings = settings
        self.client = client or EsiaClient(config)
        self.linker = Linker(records)

    def _redirect_uri(self) -> str:
        return self.config.redirect_uri or urls.endpoint(self.settings, "login/esia/callback")

    def start(self, request):
        state = str(uuid.uuid4())
        session["esia_state"] = state
        return redirect(self.client.authorization_url(state, self._redirect_uri()))

    def finish(self, request):
        expected = session.pop("esia_state", None)  # one callback per state: a replay finds none
        if not expected or not hashing.same(expected, request.args.get("state") or ""):
            log.info("ESIA callback refused: unknown or reused state")
            raise ProviderError("esia-state")
        error = request.args.get("error")
        if error:
            log.info("ESIA answered the sign-in with error %s", error[:40])
            raise ProviderError("esia-declined" if error == "access_denied" else "esia-refused")
        code = request.args.get("code")
        if not code:
            raise ProviderError("esia-refused")
        try:
            id_claims, _, access_token = self.client.exchange(code, self._redirect_uri())
            signin = self.client.person(str(id_claims["sub"]), access_token, id_claims)
        except EsiaUnavailable:
            raise ProviderError("esia-unavailable", status=503) from None
        except EsiaRefused as err:
            log.info("ESIA sign-in refused: %s", err)
            raise ProviderError(err.key) from None
        return self.linker.link(signin)

    def hop(self, request):
        """The browser came back from ESIA without our session (the session cookie is
        SameSite=Strict, and this is a cross-site navigation): answer a page that re-enters
        the same URL from our own site, with which the cookie is sent. None: go on.

        Browsers that send `Sec-Fetch-Site: cross-site` are reloaded before this by
        auth.sessions.bounce_cross_site_callback (marked `_same_site=1`); this is for those
        that send no Fetch Metadata, and never hops a request either mechanism already made."""
        if session or not request.args.get("state") or request.args.get("hop") == "1" or request.args.get("_same_site"):
            return None
        args = request.args.to_dict()
        args["hop"] = "1"
        target = request.script_root + request.path + "?" + urlencode(args)
        html = HOP_PAGE.replace("{url}", escape(target))
        return current_app.response_class(html, status=200, headers=login.PAGE_HEADERS, mimetype="text/html")

    # -- what the registry asks of providers ----------------------------------------------
    def scope_ceiling(self, account) -> tuple[str, ...] | None:
        if self.linker.trusted(account.id) is False:
            return UNCONFIRMED.get(account.role, IDENTITY_ONLY)
        return None

    def notices(self, account) -> list[str]:
        return ["esia-unconfirmed"] if self.linker.trusted(account.id) is False else []

    def logout_url(self) -> str:
        return self.client.logout_url(urls.endpoint(self.settings, "login"))


def from_settings(settings, records) -> EsiaProvider | None:
    config = EsiaConfig.from_settings(settings)
    return EsiaProvider(config, records, settings) if config is not None else None
