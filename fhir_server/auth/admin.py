"""The administration API (/admin), documented by flask-smorest in /api/openapi.json.

Every call needs `Authorization: Bearer <access token>` of an account whose role is
admin (any SMART access token of this server issued to an admin account).
"""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, jsonify, request
from flask_smorest import Api, Blueprint, abort
from werkzeug.exceptions import HTTPException

from .clients import RegistrationError, register_client
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

    return blp
