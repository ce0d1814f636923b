"""An ESIA emulator for development and tests: a separate small Flask application that
speaks the endpoints and formats of ESIA (russia.md section 1).

    GET  /aas/oauth2/v2/ac, /aas/oauth2/ac      check the request, then a page to pick a test person
    POST /aas/oauth2/emulator/select            the pick: back to redirect_uri with code and state
    POST /aas/oauth2/v3/te, /aas/oauth2/te      code -> access_token, id_token (RS256 or GOST3410_2012_256)
    GET  /rs/prns/{oid}, /rs/prns/{oid}/ctts, /rs/prns/{oid}/docs   (Bearer access token; ?embed=(elements))
    GET  /idp/ext/Logout?client_id=…&redirect_url=…
    GET  /public/esia.pem                        the certificate the emulator signs its tokens with

It checks what ESIA checks: a registered client_id and redirect_uri, the client_secret
signature (raw GOST R 34.10-2012 or RSA for v2, detached PKCS#7 for legacy) against the
client's configured certificate, client_certificate_hash (Streebog-256 of that
certificate's DER), a fresh timestamp, and single-use codes that expire. Error codes
follow ESIA's (ESIA-007053 clientSecretWrong, ESIA-007014 no certificate hash, ...).

For tests of a client's resilience, `Emulator.inject(endpoint, *faults)` queues faults for
the next calls of an endpoint (ac, te, person, ctts, docs, logout): an HTTP status to
answer with, or ("delay", seconds) before answering. `Emulator.clock` may be replaced.
"""

from __future__ import annotations

import collections
import logging
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, redirect, render_template_string, request

from . import pki, protocol
from .persons import load_persons

log = logging.getLogger("fhir_server.esia.emulator")

UUID_STATE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
COLLECTION_SCOPES = {"ctts": ("contacts", "email", "mobile"), "docs": ("id_doc", "medical_doc")}
PERSON_FIELDS = ("firstName", "lastName", "middleName", "birthDate", "birthPlace", "gender", "trusted", "citizenship", "snils", "inn", "status")


@dataclass
class EmulatedClient:
    client_id: str
    certificate: pki.Certificate
    redirect_uris: tuple[str, ...] = ()  # empty: any redirect_uri (development)


@dataclass
class Emulator:
    clients: dict[str, EmulatedClient]
    persons: list[dict]
    signer: pki.Signer  # signs the tokens
    issuer: str | None = None  # unset: the emulator's own URL + "/"
    code_seconds: int = 60
    token_seconds: int = 3600
    timestamp_window: int = 600  # how far a request's timestamp may be from now
    clock: object = time.time
    pending: dict = field(default_factory=dict)  # request id -> authorization request awaiting the pick
    codes: dict = field(default_factory=dict)
    faults: dict = field(default_factory=lambda: collections.defaultdict(collections.deque))
    calls: collections.Counter = field(default_factory=collections.Counter)  # endpoint -> requests seen
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, endpoint: str, *faults) -> None:
        with self.lock:
            self.faults[endpoint].extend(faults)

    def forget_expired(self) -> None:
        """Drop sign-ins never finished and codes past use (call with the lock held)."""
        now = self.now()
        for table in (self.pending, self.codes):
            for key in [k for k, v in table.items() if v["expires"] < now - 60]:
                del table[key]

    def person(self, oid: str) -> dict | None:
        return next((p for p in self.persons if p["oid"] == oid), None)

    def now(self) -> float:
        return self.clock()


PICK_PAGE = """<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>ЕСИА (эмулятор)</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto}li{margin:.5rem 0}</style></head><body>
<h1>Госуслуги — эмулятор ЕСИА</h1>
<p>Система <b>{{ client_id }}</b> запрашивает данные: <code>{{ scope }}</code></p>
<p>Выберите тестового пользователя:</p>
<form method="post" action="{{ action }}"><input type="hidden" name="request" value="{{ rid }}"><ul>
{% for p in persons %}<li><button type="submit" name="oid" value="{{ p.oid }}">{{ p.lastName }} {{ p.firstName }} {{ p.middleName or "" }}</button>
СНИЛС {{ p.snils }} — {{ "подтверждённая" if p.trusted else "неподтверждённая" }} учётная запись</li>{% endfor %}
</ul><button type="submit" name="oid" value="">Отказать в доступе</button></form></body></html>"""

ERROR_PAGE = """<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>ЕСИА: ошибка</title></head><body>
<h1>Ошибка ЕСИА</h1><p><code>{{ code }}</code>: {{ text }}</p></body></html>"""


def create_emulator(emulator: Emulator) -> Flask:
    app = Flask(__name__)
    app.extensions["esia_emulator"] = emulator
    em = emulator

    def issuer() -> str:
        return em.issuer or request.host_url

    @app.before_request
    def _faults():
        endpoint = (request.url_rule.endpoint if request.url_rule else None) or ""
        with em.lock:
            em.calls[endpoint] += 1
            queue = em.faults.get(endpoint)
            fault = queue.popleft() if queue else None
        if fault is None:
            return None
        if isinstance(fault, tuple) and fault[0] == "delay":
            time.sleep(fault[1])
            return None
        return jsonify(error="server_error", error_description="ESIA-000000: injected fault"), int(fault)

    def error_page(code: str, text: str, status: int = 400):
        return render_template_string(ERROR_PAGE, code=code, text=text), status

    def back_with_error(redirect_uri: str, state: str | None, code: str, text: str):
        sep = "&" if "?" in redirect_uri else "?"
        q = {"error": "invalid_request", "error_description": f"{code}: {text}"}
        if state:
            q["state"] = state
        return redirect(redirect_uri + sep + urlencode(q))

    def check_signed(api: protocol.Api, params: dict, with_code: bool):
        """(client, None) or (client_or_None, (ESIA code, text))."""
        client = em.clients.get(params.get("client_id") or "")
        if client is None:
            return None, ("ESIA-007002", "unknown client_id")
        if api.certificate_hash:
            given = (params.get("client_certificate_hash") or "").lower()
            if not given:
                return client, ("ESIA-007014", "client_certificate_hash is required")
            if given != client.certificate.hash:
                return client, ("ESIA-007053", "clientSecretWrong: client_certificate_hash does not match the certificate")
        when = protocol.parse_timestamp(params.get("timestamp") or "")
        if when is None or abs(em.now() - when) > em.timestamp_window:
            return client, ("ESIA-007055", "timestamp is missing, malformed or not current")
        if not UUID_STATE.match(params.get("state") or ""):
            return client, ("ESIA-007011", "state must be a UUID v4")
        if not api.verify(client.certificate, params, with_code):
            return client, ("ESIA-007053", "clientSecretWrong: the signature does not verify")
        return client, None

    def authorize(api: protocol.Api):
        params = request.args.to_dict()
        client = em.clients.get(params.get("client_id") or "")
        redirect_uri = params.get("redirect_uri") or ""
        if client is None:
            return error_page("ESIA-007002", "неизвестная система (client_id)")
        if not redirect_uri or (client.redirect_uris and redirect_uri not in client.redirect_uris):
            return error_page("ESIA-007004", "адрес возврата (redirect_uri) не зарегистрирован")
        if params.get("response_type") != "code" or "openid" not in (params.get("scope") or "").split():
            return back_with_error(redirect_uri, params.get("state"), "ESIA-007009", "response_type=code and scope with openid are required")
        client, problem = check_signed(api, params, with_code=False)
        if problem:
            log.info("emulated ESIA refused an authorization request: %s", problem[0])
            return back_with_error(redirect_uri, params.get("state"), *problem)
        rid = secrets.token_urlsafe(16)
        with em.lock:
            em.forget_expired()
            em.pending[rid] = {"api": api.name, "client_id": client.client_id, "scope": params["scope"], "state": params["state"],
                               "redirect_uri": redirect_uri, "expires": em.now() + 900}
        return render_template_string(PICK_PAGE, client_id=client.client_id, scope=params["scope"], persons=em.persons, rid=rid,
                                      action=request.script_root + "/aas/oauth2/emulator/select")

    app.add_url_rule("/aas/oauth2/v2/ac", "ac", lambda: authorize(protocol.API["v2"]))
    app.add_url_rule("/aas/oauth2/ac", "ac_legacy", lambda: authorize(protocol.API["legacy"]))

    @app.post("/aas/oauth2/emulator/select")
    def select():
        with em.lock:
            req = em.pending.pop(request.form.get("request") or "", None)
        if req is None or req["expires"] < em.now():
            return error_page("ESIA-007012", "запрос на вход устарел, начните вход заново")
        sep = "&" if "?" in req["redirect_uri"] else "?"
        oid = request.form.get("oid") or ""
        if not oid:
            return redirect(req["redirect_uri"] + sep + urlencode({"error": "access_denied", "error_description": "ESIA-007007: отказ пользователя",
                                                                   "state": req["state"]}))
        if em.person(oid) is None:
            return error_page("ESIA-007013", "нет такого пользователя")
        code = secrets.token_urlsafe(32)
        with em.lock:
            em.codes[code] = {**req, "oid": oid, "expires": em.now() + em.code_seconds, "used": False}
        return redirect(req["redirect_uri"] + sep + urlencode({"code": code, "state": req["state"]}))

    def token(api: protocol.Api):
        params = request.form.to_dict()
        if params.get("grant_type") != "authorization_code":
            return jsonify(error="unsupported_grant_type", error_description="ESIA-007010: only authorization_code"), 400
        client, problem = check_signed(api, params, with_code=True)
        if problem:
            log.info("emulated ESIA refused a token request: %s", problem[0])
            return jsonify(error="invalid_client" if client is None else "invalid_request", error_description=f"{problem[0]}: {problem[1]}"), 400
        with em.lock:
            grant = em.codes.get(params.get("code") or "")
            fresh = grant is not None and not grant["used"]
            if grant is not None:
                grant["used"] = True  # single use, whatever happens next
        if not fresh:
            return jsonify(error="invalid_grant", error_description="ESIA-007015: the code is unknown or was used"), 400
        if grant["expires"] < em.now():
            return jsonify(error="invalid_grant", error_description="ESIA-007016: the code has expired"), 400
        if (grant["client_id"], grant["redirect_uri"], grant["api"], grant["scope"]) != (client.client_id, params.get("redirect_uri"), api.name, params.get("scope")):
            return jsonify(error="invalid_grant", error_description="ESIA-007017: the code was issued for another request"), 400
        person = em.person(grant["oid"])
        now = int(em.now())
        oid = int(person["oid"])
        sid = str(uuid.uuid4())
        scopes = grant["scope"].split()
        access = {
            "nbf": now, "iat": now, "exp": now + em.token_seconds, "iss": issuer(), "client_id": client.client_id,
            "urn:esia:sid": sid, "urn:esia:sbj_id": oid,
            "scope": " ".join(s if s == "openid" else f"{s}?oid={oid}" for s in scopes),
        }
        subject = {"urn:esia:sbj:typ": "P", "urn:esia:sbj:oid": oid, "urn:esia:sbj:nam": f"OID.{oid}"}
        if person.get("trusted") is True:
            subject["urn:esia:sbj:is_tru"] = True
        ident = {
            "aud": client.client_id, "sub": oid, "iat": now, "nbf": now, "exp": now + em.token_seconds, "auth_time": now,
            "iss": issuer(), "amr": "PWD", "urn:esia:amd": "PWD", "urn:esia:sid": sid, "urn:esia:sbj": subject,
        }
        return jsonify(
            access_token=protocol.jwt_encode({"ver": 1, "typ": "JWT", "sbt": "access"}, access, em.signer),
            id_token=protocol.jwt_encode({"ver": 1, "typ": "JWT", "sbt": "id"}, ident, em.signer),
            state=params["state"], token_type="Bearer", expires_in=em.token_seconds,
        )

    app.add_url_rule("/aas/oauth2/v3/te", "te", lambda: token(protocol.API["v2"]), methods=["POST"])
    app.add_url_rule("/aas/oauth2/te", "te_legacy", lambda: token(protocol.API["legacy"]), methods=["POST"])

    def bearer(oid: str) -> list[str]:
        """The token's scopes (without ?oid=), or abort 401/403."""
        header = request.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme != "Bearer" or not value:
            abort(401)
        try:
            header_, claims = protocol.jwt_decode(value.strip(), em.signer.certificate)
            protocol.check_times(claims, em.now(), 0)
        except protocol.TokenError:
            abort(401)
        if header_.get("sbt") != "access" or str(claims.get("urn:esia:sbj_id")) != oid:
            abort(403)
        return [s.split("?", 1)[0] for s in str(claims.get("scope", "")).split()]

    @app.get("/rs/prns/<oid>")
    def person(oid: str):
        bearer(oid)
        p = em.person(oid) or abort(404)
        return jsonify({k: p[k] for k in PERSON_FIELDS if k in p} | {"eTag": secrets.token_hex(8), "stateFacts": ["EntityRoot"]})

    def collection(oid: str, name: str, key: str):
        scopes = bearer(oid)
        if not set(COLLECTION_SCOPES[name]) & set(scopes):
            abort(403)
        p = em.person(oid) or abort(404)
        items = [dict(e, id=i + 1) for i, e in enumerate(p.get(key) or [])]
        if name == "docs" and "id_doc" not in scopes:
            items = [e for e in items if e.get("type") == "MDCL_PLCY"]
        if name == "docs" and "medical_doc" not in scopes:
            items = [e for e in items if e.get("type") != "MDCL_PLCY"]
        embed = request.args.get("embed") == "(elements)"
        base = request.base_url
        elements = items if embed else [f"{base}/{e['id']}" for e in items]
        return jsonify(stateFacts=["hasSize"], size=len(items), eTag=secrets.token_hex(8), elements=elements)

    app.add_url_rule("/rs/prns/<oid>/ctts", "ctts", lambda oid: collection(oid, "ctts", "contacts"))
    app.add_url_rule("/rs/prns/<oid>/docs", "docs", lambda oid: collection(oid, "docs", "documents"))

    @app.get("/idp/ext/Logout")
    def logout():
        client = em.clients.get(request.args.get("client_id") or "")
        target = request.args.get("redirect_url") or ""
        if client is None or not target.startswith(("http://", "https://")):
            return error_page("ESIA-007002", "неизвестная система или адрес возврата")
        return redirect(target)

    @app.get("/public/esia.pem")
    def certificate():
        return app.response_class(em.signer.certificate.pem, mimetype="application/x-pem-file")

    return app


def make_emulator(clients: dict[str, pki.Certificate], *, persons_file=None, token_kind: str = "rsa", redirect_uris=(), **kw) -> Emulator:
    """An emulator with a fresh token-signing key, for these clients (client_id -> certificate)."""
    return Emulator(
        clients={cid: EmulatedClient(cid, cert, tuple(redirect_uris)) for cid, cert in clients.items()},
        persons=load_persons(persons_file),
        signer=pki.self_signed(token_kind, "ESIA emulator"),
        **kw,
    )
