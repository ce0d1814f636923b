"""HTTP endpoints of the SMART authorization server (documented in the OpenAPI document).

    GET  /.well-known/smart-configuration     discovery (also under /fhir/)
    GET  /auth/authorize  POST /auth/authorize  authorization code request; consent page
    POST /auth/token                           authorization_code, refresh_token, client_credentials
    POST /auth/introspect                      RFC 7662
    POST /auth/revoke                          RFC 7009
    GET  /auth/jwks                            public key of the token signer
    GET|POST /auth/login                       sign-in page (local accounts)
    GET  /auth/login/<provider>[/callback]     other identity providers
    POST /auth/logout
"""

from __future__ import annotations

import logging

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from flask import abort, current_app, jsonify, redirect, request, session, url_for
from flask_smorest import Blueprint

from . import login, scoping
from .grants import GrantUser
from .providers import ProviderError

log = logging.getLogger("fhir_server.auth")

CORS = {"Access-Control-Allow-Origin": "*"}

_FORM = "application/x-www-form-urlencoded"


def _form_body(properties: dict, required: list[str]) -> dict:
    return {"required": True, "content": {_FORM: {"schema": {"type": "object", "properties": properties, "required": required}}}}


_STR = {"type": "string"}
_TOKEN_BODY = _form_body(
    {
        "grant_type": {"type": "string", "enum": ["authorization_code", "refresh_token", "client_credentials"]},
        "code": _STR,
        "redirect_uri": _STR,
        "code_verifier": _STR,
        "client_id": _STR,
        "client_secret": _STR,
        "refresh_token": _STR,
        "scope": _STR,
        "client_assertion_type": {"type": "string", "enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]},
        "client_assertion": _STR,
    },
    ["grant_type"],
)
_TOKEN_PARAM_BODY = _form_body({"token": _STR, "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
                                "client_id": _STR, "client_secret": _STR, "client_assertion_type": _STR, "client_assertion": _STR}, ["token"])
_JSON_OK = {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}}
_HTML_OK = {"200": {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}}


def service():
    return current_app.extensions["fhir_auth"]


def _with(resp, headers: dict):
    for k, v in headers.items():
        resp.headers[k] = v
    return resp


def make_blueprint() -> Blueprint:
    blp = Blueprint("smart", __name__, description="SMART App Launch 2.0 authorization server (OAuth 2.0, OpenID Connect)")

    def discovery():
        """SMART configuration (discovery document)

        SMART App Launch 2.0 section 2.0.6: endpoints, capabilities and supported scopes."""
        return _with(jsonify(service().smart_configuration()), CORS)

    discovery = blp.doc(responses=_JSON_OK)(discovery)
    blp.add_url_rule("/.well-known/smart-configuration", "smart_configuration", discovery, methods=["GET"])
    # The FHIR blueprint catches every /fhir/<path>; this rule is static, so it is more
    # specific and Werkzeug matches it first.
    blp.add_url_rule("/fhir/.well-known/smart-configuration", "smart_configuration_fhir", discovery, methods=["GET"])

    @blp.route("/auth/jwks", methods=["GET"])
    @blp.doc(responses=_JSON_OK)
    def jwks():
        """Public keys of the access-token and id-token signer (JWKS)"""
        return _with(jsonify(service().key.jwks), CORS)

    @blp.route("/auth/token", methods=["POST"])
    @blp.doc(requestBody=_TOKEN_BODY, responses=_JSON_OK)
    def token():
        """Token endpoint

        Grants: authorization_code (with the PKCE code_verifier), refresh_token (rotated on
        every use), client_credentials (SMART Backend Services, private_key_jwt assertion)."""
        return _with(service().server.create_token_response(), CORS)

    @blp.route("/auth/introspect", methods=["POST"])
    @blp.doc(requestBody=_TOKEN_PARAM_BODY, responses=_JSON_OK)
    def introspect():
        """Token introspection (RFC 7662)

        The client must authenticate; it learns about the tokens issued to it only."""
        return _with(service().server.create_endpoint_response("introspection"), CORS)

    @blp.route("/auth/revoke", methods=["POST"])
    @blp.doc(requestBody=_TOKEN_PARAM_BODY, responses=_JSON_OK)
    def revoke():
        """Token revocation (RFC 7009)

        Revoking a refresh token revokes every token of its family."""
        return _with(service().server.create_endpoint_response("revocation"), CORS)

    @blp.route("/auth/authorize", methods=["GET", "POST"])
    @blp.doc(responses={"302": {"description": "Redirect to the sign-in page, or back to the app with code or error"}, **_HTML_OK})
    def authorize():
        """Authorization endpoint

        GET with response_type=code, client_id, redirect_uri, scope, state, aud,
        code_challenge, code_challenge_method=S256 (and nonce for openid). Without a
        signed-in account it redirects to the sign-in page; then it shows the consent page,
        which POSTs the decision back here."""
        svc = service()
        account = login.current_account(svc)
        try:
            grant = svc.server.get_consent_grant(end_user=account)
        except OAuth2Error as err:
            return _authorize_error(svc, err)
        if account is None:
            if request.method != "GET":
                return login.render(login.ERROR_PAGE, 400, error="login_required", description=None)
            login.remember_pending()
            return redirect(url_for("smart.login"))
        if request.method == "GET":
            return _consent_page(grant, account)
        if not login.csrf_ok():
            return login.render(login.ERROR_PAGE, 400, error="invalid_request", description=login.TEXTS[login.lang()]["csrf"])
        if request.form.get("decision") != "approve":
            return svc.server.create_authorization_response(grant_user=None, grant=grant)
        patient = account.patient_id
        scopes = scoping.split(scoping.grantable(account.role, grant.request.scope, grant.request.client.scope, svc.providers.scope_ceiling(account)))
        if "launch/patient" in scopes and account.role != "patient":
            chosen = (request.form.get("patient") or "").strip()
            if chosen:
                if not _patient_exists(svc, chosen):
                    return _consent_page(grant, account, error="bad-patient", status=400)
                patient = chosen
        if "launch/patient" in scopes and not patient:
            scopes.remove("launch/patient")  # no patient chosen: no launch context
        if not scopes:
            err = InvalidScopeError("None of the requested scopes can be granted.")
            err.redirect_uri, err.state = grant.redirect_uri, grant.request.payload.state
            return svc.server.handle_error_response(None, err)
        user = GrantUser(account, patient=patient, scope=scoping.join(scopes), auth_time=session.get("auth_time"))
        return svc.server.create_authorization_response(grant_user=user, grant=grant)

    @blp.route("/auth/login", endpoint="login", methods=["GET", "POST"])
    @blp.doc(responses={"302": {"description": "Signed in: back to the waiting authorization request"}, **_HTML_OK})
    def login_page():
        """Sign-in page for local accounts

        The form posts login (e-mail or phone), password and csrf. In Russian or English by Accept-Language. After signing in, the browser goes back to
        the authorization request that was waiting."""
        svc = service()
        others = [p for p in svc.providers if p.name != "local"]
        if request.method == "GET":
            account = login.current_account(svc)
            return login.render(login.LOGIN_PAGE, account=account, others=others, error=None, login="", notices=login.notices_for(svc, account))
        if not login.csrf_ok():
            return login.render(login.LOGIN_PAGE, 400, account=None, others=others, error="csrf", login="")
        try:
            account = svc.providers.get("local").finish(request)
        except ProviderError as err:
            return login.render(login.LOGIN_PAGE, account=None, others=others, error=err.key, login=request.form.get("login", "")[:200])
        return _signed_in(account, "local")

    @blp.route("/auth/login/<name>", methods=["GET"])
    def login_with(name: str):
        """Sign in with an identity provider (redirects to it)"""
        provider = service().providers.get(name)
        if provider is None:
            abort(404)
        return provider.start(request)

    @blp.route("/auth/login/<name>/callback", methods=["GET", "POST"])
    def login_callback(name: str):
        """Return from an identity provider"""
        svc = service()
        provider = svc.providers.get(name)
        if provider is None or name == "local":
            abort(404)
        # A SameSite=Strict session cookie does not come with the cross-site return from the
        # provider: its page re-enters this URL from our own site first (see EsiaProvider.hop).
        hop = getattr(provider, "hop", None)
        page = hop(request) if hop is not None else None
        if page is not None:
            return page
        try:
            account = provider.finish(request)
        except ProviderError as err:
            others = [p for p in svc.providers if p.name != "local"]
            return login.render(login.LOGIN_PAGE, err.status, account=None, others=others, error=err.key, login="")
        return _signed_in(account, name)

    @blp.route("/auth/logout", methods=["POST"])
    def logout():
        """Sign out of the browser session (and of the identity provider that signed it in, e.g. ESIA)"""
        target = None
        if login.csrf_ok():
            target = service().providers.logout_url(session.get("idp"))
            session.clear()
        return redirect(target or url_for("smart.login"))

    return blp


def _signed_in(account, provider: str):
    pending = login.sign_in(account, provider)
    log.info("account %s signed in (%s)", account.id, provider)
    return redirect(pending or url_for("smart.login"))


def _consent_page(grant, account, error: str | None = None, status: int = 200):
    svc = service()
    language = login.lang()
    requested = scoping.split(grant.request.payload.scope)
    granted = scoping.split(scoping.grantable(account.role, grant.request.scope, grant.request.client.scope, svc.providers.scope_ceiling(account)))
    if "launch/patient" in granted and account.role == "patient" and not account.patient_id:
        granted.remove("launch/patient")
    dropped = [s for s in requested if s not in granted]
    return login.render(
        login.CONSENT_PAGE,
        status,
        client=grant.request.client,
        account=account,
        granted=[(s, login.describe_scope(s, language)) for s in granted],
        dropped=[(s, login.describe_scope(s, language)) for s in dropped],
        ask_patient="launch/patient" in granted and account.role != "patient",
        patient=request.form.get("patient", "") if request.method == "POST" else "",
        action=request.script_root + request.full_path,
        error=error,
        notices=login.notices_for(svc, account),
    )


def _authorize_error(svc, err: OAuth2Error):
    """Back to the app with the error when its redirect_uri is known; an error page otherwise."""
    if err.redirect_uri:
        err.state = request.values.get("state")
        return svc.server.handle_error_response(None, err)
    return login.render(login.ERROR_PAGE, 400, error=err.error, description=err.description)


def _patient_exists(svc, pid: str) -> bool:
    if not login.PATIENT_ID.match(pid):
        return False
    if svc.store is None:
        return True
    version = svc.store.read("Patient", pid)
    return version is not None and not version.deleted
