"""The administration API (/admin), documented by flask-smorest in /api/openapi.json.

    /admin/clients               registered SMART clients
    /admin/accounts              local accounts: add (the password policy applies), list,
                                 set a password, lift a sign-in lock (audited), switch off
                                 the second factor

Every call needs `Authorization: Bearer <access token>` of an account whose role is
admin (any SMART access token of this server issued to an admin account).
"""

from __future__ import annotations

import re

import marshmallow as ma
from flask import current_app, g, jsonify, request
from flask_smorest import Api, Blueprint, abort
from werkzeug.exceptions import HTTPException

from . import local
from .clients import RegistrationError, register_client
from .models import ROLES, LoginFormatError, aware, login_key, utcnow
from .passwords import PasswordPolicyError
from .server import InvalidToken

BEARER = [{"bearerAuth": []}]


class ClientIn(ma.Schema):
    client_id = ma.fields.String(metadata={"description": "Fixed client id; a random one when absent"})
    name = ma.fields.String(required=True)
    type = ma.fields.String(required=True, validate=ma.validate.OneOf(["public", "confidential"]))
    redirect_uris = ma.fields.List(ma.fields.String(), load_default=list)
    scope = ma.fields.String(required=True, metadata={"description": "Space-separated SMART scopes the client may be granted"})
    jwks = ma.fields.Dict(metadata={"description": "Public keys (JWKS) for private_key_jwt; makes a backend-services client"})
    organization = ma.fields.String(metadata={"description": "Organization/<id> a backend client acts for"})


class ClientOut(ma.Schema):
    client_id = ma.fields.String()
    name = ma.fields.String()
    type = ma.fields.String()
    token_endpoint_auth_method = ma.fields.String()
    redirect_uris = ma.fields.List(ma.fields.String())
    scope = ma.fields.String()
    grant_types = ma.fields.List(ma.fields.String())
    organization = ma.fields.String(allow_none=True)
    jwks = ma.fields.Boolean(metadata={"description": "Whether public keys are registered"})
    created_at = ma.fields.DateTime(allow_none=True)


class ClientCreated(ClientOut):
    client_secret = ma.fields.String(metadata={"description": "Shown once, for confidential clients with a secret"})


FHIR_USER = re.compile(r"^(Patient|Practitioner|PractitionerRole|RelatedPerson|Person)/[A-Za-z0-9\-.]{1,64}$")


class AccountIn(ma.Schema):
    login = ma.fields.String(required=True, metadata={"description": "E-mail address or phone number"})
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(ROLES))
    password = ma.fields.String(required=True, load_only=True, metadata={
        "description": "At least 8 characters with upper- and lower-case letters, digits and special characters; no spaces at the ends"})
    fhir_user = ma.fields.String(validate=ma.validate.Regexp(FHIR_USER), metadata={"description": "Patient/<id>, Practitioner/<id>, ..."})
    name = ma.fields.String()


class AccountOut(ma.Schema):
    id = ma.fields.String()
    login = ma.fields.String()
    role = ma.fields.String()
    fhir_user = ma.fields.String(allow_none=True)
    name = ma.fields.String(allow_none=True)
    disabled = ma.fields.Boolean()
    locked = ma.fields.Boolean(metadata={"description": "Sign-in is locked after wrong attempts"})
    totp = ma.fields.Boolean(metadata={"description": "The second factor (one-time codes) is on"})
    created_at = ma.fields.DateTime(allow_none=True)


class PasswordIn(ma.Schema):
    password = ma.fields.String(required=True, load_only=True)


def _account_out(account) -> dict:
    throttle = _service().records.throttle(login_key(account.login))
    locked = bool(throttle and throttle.locked_until and aware(throttle.locked_until) > utcnow())
    return {"id": account.id, "login": account.login, "role": account.role, "fhir_user": account.fhir_user, "name": account.name,
            "disabled": bool(account.disabled), "locked": locked, "totp": account.totp_enabled, "created_at": aware(account.created_at)}


def _account_or_404(account_id: str):
    account = _service().records.account(account_id)
    if account is None:
        abort(404, message=f"no account {account_id}")
    return account


class AdminApi(Api):
    """flask-smorest's Api without its app-wide HTTPException handler: the FHIR endpoint
    keeps answering errors with OperationOutcomes; the admin blueprint has its own handler."""

    def _register_error_handlers(self):
        pass


def init_api(app) -> AdminApi:
    app.config.setdefault("API_TITLE", "fhir-server-ru: authorization and administration")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = AdminApi(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    return api


def _service():
    return current_app.extensions["fhir_auth"]


def _json_error(exc: HTTPException):
    body = {"code": exc.code, "status": exc.name}
    data = getattr(exc, "data", None) or {}
    if data.get("message"):
        body["message"] = data["message"]
    elif exc.description:
        body["message"] = exc.description
    if data.get("messages"):
        body["errors"] = data["messages"]
    resp = jsonify(body)
    resp.status_code = exc.code or 500
    for k, v in (data.get("headers") or {}).items():
        resp.headers[k] = v
    return resp


def make_blueprint() -> Blueprint:
    blp = Blueprint("admin", __name__, url_prefix="/admin", description="Administration: registered SMART clients (admin accounts only)")
    blp.register_error_handler(HTTPException, _json_error)

    @blp.before_request
    def _admin_only():
        svc = _service()
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            abort(401, message="an admin access token is required", headers={"WWW-Authenticate": 'Bearer realm="admin"'})
        try:
            claims, record = svc.verify_access_token(value.strip())
        except InvalidToken:
            abort(401, message="the access token is invalid, expired or revoked",
                  headers={"WWW-Authenticate": 'Bearer realm="admin", error="invalid_token"'})
        account = svc.records.account(claims["sub"]) if record.role == "admin" else None
        if account is None or account.disabled or account.role != "admin":
            abort(403, message="only administrators may use this API",
                  headers={"WWW-Authenticate": 'Bearer realm="admin", error="insufficient_scope"'})
        g.admin_account_id = account.id

    @blp.route("/clients", methods=["GET"])
    @blp.doc(security=BEARER)
    @blp.response(200, ClientOut(many=True))
    def list_clients():
        """List the registered clients"""
        return [c.summary() for c in _service().records.clients()]

    @blp.route("/clients", methods=["POST"])
    @blp.doc(security=BEARER)
    @blp.arguments(ClientIn)
    @blp.response(201, ClientCreated)
    def add_client(data):
        """Register a client

        The response carries the client secret of a confidential client without JWKS: it
        is shown this once and stored only as an Argon2id hash."""
        try:
            client, secret = register_client(
                _service().records,
                name=data["name"],
                public=data["type"] == "public",
                redirect_uris=data.get("redirect_uris") or [],
                scope=data["scope"],
                jwks=data.get("jwks"),
                organization=data.get("organization"),
                client_id=data.get("client_id"),
            )
        except RegistrationError as exc:
            abort(422, message=str(exc))
        out = client.summary()
        if secret:
            out["client_secret"] = secret
        return out

    @blp.route("/clients/<client_id>", methods=["DELETE"])
    @blp.doc(security=BEARER)
    @blp.response(204)
    def remove_client(client_id: str):
        """Remove a client and revoke every token it holds"""
        if not _service().records.remove_client(client_id):
            abort(404, message=f"no client {client_id}")

    @blp.route("/accounts", methods=["GET"])
    @blp.doc(security=BEARER)
    @blp.response(200, AccountOut(many=True))
    def list_accounts():
        """List the accounts (never their passwords or second-factor secrets)"""
        return [_account_out(a) for a in _service().records.accounts()]

    @blp.route("/accounts", methods=["POST"])
    @blp.doc(security=BEARER)
    @blp.arguments(AccountIn)
    @blp.response(201, AccountOut)
    def add_account(data):
        """Add a local account

        The password must meet the policy; the answer names every rule it breaks (422)."""
        if data["role"] == "patient" and not (data.get("fhir_user") or "").startswith("Patient/"):
            abort(422, message="a patient account needs fhir_user Patient/<id>")
        try:
            account = _service().records.add_account(data["login"], data["role"], data["password"],
                                                     fhir_user=data.get("fhir_user"), name=data.get("name"))
        except (PasswordPolicyError, LoginFormatError) as exc:
            abort(422, message=str(exc))
        except ValueError as exc:  # the login exists
            abort(409, message=str(exc))
        return _account_out(account)

    @blp.route("/accounts/<account_id>/password", methods=["PUT"])
    @blp.doc(security=BEARER)
    @blp.arguments(PasswordIn)
    @blp.response(204)
    def set_password(data, account_id: str):
        """Set an account's password (the policy applies)"""
        account = _account_or_404(account_id)
        try:
            _service().records.set_account_password(account.login, data["password"])
        except PasswordPolicyError as exc:
            abort(422, message=str(exc))

    @blp.route("/accounts/<account_id>/unlock", methods=["POST"])
    @blp.doc(security=BEARER)
    @blp.response(204)
    def unlock_account(account_id: str):
        """Lift the sign-in lock of an account (audited); 409 when it is not locked"""
        svc = _service()
        account = _account_or_404(account_id)
        if not _account_out(account)["locked"] or not local.unlock(svc, account, by=g.admin_account_id):
            abort(409, message="the account is not locked")

    @blp.route("/accounts/<account_id>/totp", methods=["DELETE"])
    @blp.doc(security=BEARER)
    @blp.response(204)
    def reset_totp(account_id: str):
        """Switch off the second factor of an account (for a lost authenticator)"""
        account = _account_or_404(account_id)
        _service().records.set_account_fields(account.id, totp_secret=None, totp_pending=None, totp_last_step=0)

    return blp
