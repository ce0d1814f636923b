"""App-internal records of the authorization server (mongoengine), and where they live.

The records sit in the same database as the FHIR store, in collections named `auth_*`
(FHIR types are CamelCase, so the names never meet). Secrets are stored hashed:
authorization codes and refresh tokens by SHA-256, passwords and client secrets by
Argon2id; access tokens are signed JWTs and only their `jti` is recorded (for
revocation and introspection).

Every app gets its own mongoengine connection alias (`Records.connect`), so several
apps in one process (the tests make one per test, each with its own database) never
share records. The documents' class-level alias is deliberately left unregistered:
every query goes through `Records`, which holds the collections of its own alias (no
class-level switch_db, so threads and apps never race on class attributes), and a stray
`Model.objects` fails loudly instead of touching another app's data.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import mongoengine
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin
from authlib.oidc.core import AuthorizationCodeMixin
from mongoengine import (
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    IntField,
    ListField,
    NotUniqueError,
    StringField,
)
from mongoengine.connection import get_db
from mongoengine.queryset import QuerySet

from . import hashing, passwords, scoping

ROLES = ("patient", "practitioner", "staff", "admin")
UNBOUND = "fhir-auth-unbound"  # never registered: see the module docstring
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
_SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """Datetimes read back from a client without tz_aware are naive UTC."""
    if dt is not None and dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt


def _meta(collection: str, indexes: list) -> dict:
    return {"collection": collection, "db_alias": UNBOUND, "auto_create_index": False, "indexes": indexes}


class Account(Document):
    """A person who signs in: a patient, a practitioner, a staff member or an administrator."""

    meta = _meta("auth_accounts", [{"fields": ["login"], "unique": True}])
    id = StringField(primary_key=True)
    login = StringField(required=True)  # normalised e-mail or phone number (see normalize_login)
    role = StringField(required=True, choices=ROLES)
    password_hash = StringField()  # Argon2id; None for accounts that sign in only through an identity provider
    fhir_user = StringField()  # "Patient/123", "Practitioner/9"
    name = StringField()
    disabled = BooleanField(default=False)
    created_at = DateTimeField()
    # Browser sessions carry the epoch they began in; raising it ends them all (sessions.py).
    session_epoch = IntField(default=0)
    # Second factor (totp.py): the RFC 6238 secret once enrolment is confirmed, the secret
    # shown but not yet confirmed, and the last time step used (a code is accepted once).
    totp_secret = StringField()
    totp_pending = StringField()
    totp_last_step = IntField(default=0)

    @property
    def totp_enabled(self) -> bool:
        return bool(self.totp_secret)

    def get_user_id(self) -> str:
        return self.id

    @property
    def patient_id(self) -> str | None:
        """The account's own Patient id, for patient accounts."""
        if self.role == "patient" and self.fhir_user and self.fhir_user.startswith("Patient/"):
            return self.fhir_user.split("/", 1)[1]
        return None


class Client(Document, ClientMixin):
    """A registered OAuth2 client: an app (public or confidential) or a hospital system."""

    meta = _meta("auth_clients", [])
    client_id = StringField(primary_key=True)
    name = StringField(required=True)
    public = BooleanField(required=True)
    secret_hash = StringField()  # Argon2id, confidential clients with a secret
    token_endpoint_auth_method = StringField(required=True, choices=AUTH_METHODS)
    redirect_uris = ListField(StringField())
    scope = StringField(default="")  # the scopes the client may ever be granted
    grant_types = ListField(StringField(choices=GRANT_TYPES))
    jwks = DictField()  # public keys for private_key_jwt (SMART Backend Services)
    organization = StringField()  # "Organization/x" a system client acts for
    created_at = DateTimeField()

    # -- authlib ClientMixin ---------------------------------------------------------------
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self):
        return None  # SMART: redirect_uri is required in every authorization request

    def get_allowed_scope(self, scope):
        allowed = scoping.for_client(scope, self.scope)
        return allowed or None  # None: authlib answers invalid_scope

    def check_redirect_uri(self, redirect_uri) -> bool:
        return redirect_uri in (self.redirect_uris or [])

    def check_client_secret(self, client_secret) -> bool:
        return hashing.verify_secret(self.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method, endpoint) -> bool:
        if self.token_endpoint_auth_method in _SECRET_METHODS:
            return method in _SECRET_METHODS  # a secret may come in the header or the form
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type) -> bool:
        return response_type == "code" and "authorization_code" in (self.grant_types or [])

    def check_grant_type(self, grant_type) -> bool:
        return grant_type in (self.grant_types or [])

    def summary(self) -> dict:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "type": "public" if self.public else "confidential",
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "redirect_uris": list(self.redirect_uris or []),
            "scope": self.scope or "",
            "grant_types": list(self.grant_types or []),
            "organization": self.organization,
            "jwks": bool(self.jwks),
            "created_at": aware(self.created_at),
        }


class AuthorizationCode(Document, AuthorizationCodeMixin):
    meta = _meta(
        "auth_codes",
        [{"fields": ["expires_at"], "expireAfterSeconds": 3600}, {"fields": ["client_id", "nonce"], "sparse": True}],
    )
    code_hash = StringField(primary_key=True)
    client_id = StringField(required=True)
    account_id = StringField(required=True)
    redirect_uri = StringField()
    scope = StringField(default="")
    patient = StringField()
    nonce = StringField()
    auth_time = IntField()
    code_challenge = StringField()
    code_challenge_method = StringField()
    family_id = StringField(required=True)  # the tokens issued for this code
    expires_at = DateTimeField(required=True)
    used = BooleanField(default=False)

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None

    def is_expired(self) -> bool:
        return aware(self.expires_at) <= utcnow()


class _Token(TokenMixin):
    """What introspection and revocation need of both kinds of token."""

    def check_client(self, client) -> bool:
        return client is not None and client.get_client_id() == self.client_id

    def get_scope(self):
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int((aware(self.expires_at) - aware(self.issued_at)).total_seconds()))

    def is_expired(self) -> bool:
        return aware(self.expires_at) <= utcnow()

    def get_user(self):
        return None

    def get_client(self):
        return None


class RefreshToken(Document, _Token):
    """A refresh token (hashed). Each use rotates it: the old one is marked `rotated` and a
    new one of the same family is issued. Presenting a rotated token again is reuse: the
    whole family (refresh and access tokens) is revoked."""

    meta = _meta("auth_refresh_tokens", ["family_id", "client_id", {"fields": ["expires_at"], "expireAfterSeconds": 0}])
    token_hash = StringField(primary_key=True)
    family_id = StringField(required=True)
    client_id = StringField(required=True)
    account_id = StringField(required=True)
    role = StringField()
    fhir_user = StringField()
    patient = StringField()
    scope = StringField(default="")
    issued_at = DateTimeField(required=True)
    expires_at = DateTimeField(required=True)
    rotated = BooleanField(default=False)
    revoked = BooleanField(default=False)

    kind = "refresh_token"

    def is_revoked(self) -> bool:
        return bool(self.revoked or self.rotated)


class IssuedToken(Document, _Token):
    """The record of one access token (a JWT) by its `jti`: revocation and introspection."""

    meta = _meta(
        "auth_access_tokens",
        ["family_id", "client_id", {"fields": ["expires_at"], "expireAfterSeconds": 3600}],
    )
    jti = StringField(primary_key=True)
    family_id = StringField()
    client_id = StringField(required=True)
    subject = StringField(required=True)
    role = StringField(required=True)  # account role, or "system" for client_credentials
    fhir_user = StringField()
    patient = StringField()
    scope = StringField(default="")
    issued_at = DateTimeField(required=True)
    expires_at = DateTimeField(required=True)
    revoked = BooleanField(default=False)

    kind = "access_token"

    def is_revoked(self) -> bool:
        return bool(self.revoked)


class UsedAssertion(Document):
    """A client assertion `jti` already seen (private_key_jwt replay protection)."""

    meta = _meta("auth_used_assertions", [{"fields": ["expires_at"], "expireAfterSeconds": 0}])
    id = StringField(primary_key=True)  # "<client_id> <jti>"
    expires_at = DateTimeField(required=True)


class LoginThrottle(Document):
    """Wrong passwords (and one-time codes) in a row for one login, whether or not an
    account has it - so a locked login looks the same for accounts that exist and that do
    not. Keyed by the SHA-256 of the normalised login: what strangers type is not kept."""

    meta = _meta("auth_login_throttle", [{"fields": ["expires_at"], "expireAfterSeconds": 0}])
    id = StringField(primary_key=True)
    failures = IntField(default=0)
    locked_until = DateTimeField()
    expires_at = DateTimeField(required=True)  # the record goes a day after its last change


MODELS = (Account, Client, AuthorizationCode, RefreshToken, IssuedToken, UsedAssertion, LoginThrottle)


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s.]{2,63}$")
_PHONE_CHARS = re.compile(r"^\+?[\d\s()\-]+$")


class LoginFormatError(ValueError):
    """A login that is neither an e-mail address nor a phone number."""


def check_login(login: str) -> str:
    """The normalised login; LoginFormatError unless it is an e-mail address or a phone
    number (E.164: 10 to 15 digits, optionally written with +, spaces, hyphens, brackets)."""
    text = (login or "").strip()
    if "@" in text:
        if not _EMAIL.match(text):
            raise LoginFormatError("the login must be an e-mail address or a phone number")
        return normalize_login(text)
    digits = normalize_login(text)[1:]
    if not _PHONE_CHARS.match(text) or not 10 <= len(digits) <= 15:
        raise LoginFormatError("the login must be an e-mail address or a phone number")
    return normalize_login(text)


def login_key(login: str) -> str:
    return hashing.token_hash(normalize_login(login))


def normalize_login(login: str) -> str:
    """An e-mail address in lower case, or a phone number as +<digits> (8XXXXXXXXXX -> +7XXXXXXXXXX)."""
    text = (login or "").strip()
    if "@" in text:
        return text.lower()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return text.lower()
    if len(digits) == 11 and digits[0] == "8" and not text.startswith("+"):
        digits = "7" + digits[1:]
    return "+" + digits


class Records:
    """The authorization server's records of one app, under its own mongoengine alias."""

    def __init__(self, alias: str, lock=None):
        self.alias = alias
        # The embedded engine (mongomock) is not thread-safe: share the FHIR store's lock.
        self.lock = lock if lock is not None else contextlib.nullcontext()
        db = get_db(alias)
        self._collections = {}
        for model in MODELS:
            collection = db[model._get_collection_name()]
            self._collections[model] = collection
            with self.lock:
                for spec in model._meta.get("index_specs") or []:
                    spec = dict(spec)
                    collection.create_index(spec.pop("fields"), **spec)

    @classmethod
    def connect(cls, settings, engine=None) -> Records:
        """Records in settings.db_name. With `engine` (the FHIR store's), an embedded store
        shares its in-process client, so the records sit in the same database."""
        alias = f"fhir-auth-{settings.db_name}-{uuid.uuid4().hex[:8]}"
        lock = None
        if engine is not None and engine.embedded:
            client = engine.client
            mongoengine.connect(db=settings.db_name, alias=alias, mongo_client_class=lambda **_: client, uuidRepresentation="standard")
            lock = engine.lock
        elif settings.embedded:
            import mongomock

            mongoengine.connect(db=settings.db_name, alias=alias, mongo_client_class=mongomock.MongoClient, tz_aware=True, uuidRepresentation="standard")
        else:
            mongoengine.connect(db=settings.db_name, alias=alias, host=settings.mongodb_uri, tz_aware=True, uuidRepresentation="standard")
        return cls(alias, lock)

    def close(self) -> None:
        mongoengine.disconnect(self.alias)

    def q(self, model) -> QuerySet:
        return QuerySet(model, self._collections[model])

    def _insert(self, doc: Document) -> Document:
        doc.validate()
        with self.lock:
            self.q(type(doc)).insert(doc, load_bulk=False)
        return doc

    def _first(self, model, **flt):
        with self.lock:
            return self.q(model).filter(**flt).first()

    # -- accounts -----------------------------------------------------------------------------
    def add_account(self, login: str, role: str, password: str | None, fhir_user: str | None = None, name: str | None = None) -> Account:
        """A new account. The login must be an e-mail address or a phone number
        (LoginFormatError) and a password must meet the policy (passwords.PasswordPolicyError);
        None means the account signs in only through an identity provider."""
        normalized = check_login(login)
        if password is not None:
            passwords.check(password)
        account = Account(
            id=uuid.uuid4().hex,
            login=normalized,
            role=role,
            password_hash=hashing.hash_secret(password) if password else None,
            fhir_user=fhir_user,
            name=name,
            created_at=utcnow(),
        )
        try:
            return self._insert(account)
        except NotUniqueError:
            raise ValueError(f"an account with login {account.login} exists") from None

    def account(self, account_id: str | None) -> Account | None:
        return self._first(Account, id=account_id) if account_id else None

    def account_by_login(self, login: str) -> Account | None:
        return self._first(Account, login=normalize_login(login))

    def set_password_hash(self, account_id: str, password_hash: str) -> None:
        with self.lock:
            self.q(Account).filter(id=account_id).update_one(set__password_hash=password_hash)

    def set_account_password(self, login: str, password: str) -> bool:
        passwords.check(password)
        with self.lock:
            n = self.q(Account).filter(login=normalize_login(login)).update_one(set__password_hash=hashing.hash_secret(password))
        return bool(n)

    def accounts(self) -> list[Account]:
        with self.lock:
            return list(self.q(Account).order_by("login"))

    def set_account_fields(self, account_id: str, **fields) -> bool:
        with self.lock:
            return bool(self.q(Account).filter(id=account_id).update_one(**{f"set__{k}": v for k, v in fields.items()}))

    def end_sessions(self, account_id: str) -> None:
        """End every browser session of the account and revoke its online_access refresh
        tokens (SMART: valid only while the user is signed in)."""
        with self.lock:
            self.q(Account).filter(id=account_id).update_one(inc__session_epoch=1)
            families = [r.family_id for r in self.q(RefreshToken).filter(account_id=account_id, revoked=False, scope=re.compile(r"(^| )online_access( |$)"))
                        if "offline_access" not in (r.scope or "").split()]
        for family in set(families):
            self.revoke_family(family)

    def use_totp_step(self, account_id: str, step: int) -> bool:
        """Record the time step of an accepted one-time code; False when that step (or a
        later one) was used already - a code is good once."""
        with self.lock:
            return bool(self.q(Account).filter(id=account_id, totp_last_step__lt=step).update_one(set__totp_last_step=step))

    # -- sign-in throttling -------------------------------------------------------------------
    def throttle(self, key: str) -> LoginThrottle | None:
        return self._first(LoginThrottle, id=key)

    def add_failure(self, key: str, limit: int, lock_seconds: int) -> tuple[int, datetime | None]:
        """Count one more failure; at `limit` lock the login for lock_seconds. (failures,
        locked_until if this failure locked it, else None)."""
        now = utcnow()
        with self.lock:
            doc = self.q(LoginThrottle).filter(id=key).modify(
                upsert=True, new=True, inc__failures=1, set__expires_at=now + timedelta(days=1))
            if doc.failures < limit:
                return doc.failures, None
            until = now + timedelta(seconds=lock_seconds)
            n = self.q(LoginThrottle).filter(id=key, failures=doc.failures).update_one(set__failures=0, set__locked_until=until)
        return doc.failures, until if n else None

    def clear_throttle(self, key: str) -> bool:
        """Forget the failures and any lock of a login; True when there was a lock."""
        with self.lock:
            doc = self.q(LoginThrottle).filter(id=key).modify(remove=True)
        return doc is not None and doc.locked_until is not None

    # -- clients ------------------------------------------------------------------------------
    def add_client(self, client: Client) -> Client:
        client.created_at = client.created_at or utcnow()
        try:
            return self._insert(client)
        except NotUniqueError:
            raise ValueError(f"a client with client_id {client.client_id} exists") from None

    def client(self, client_id) -> Client | None:
        if not isinstance(client_id, str) or not client_id:
            return None
        return self._first(Client, client_id=client_id)

    def clients(self) -> list[Client]:
        with self.lock:
            return list(self.q(Client).order_by("client_id"))

    def remove_client(self, client_id: str) -> bool:
        """Delete the client and revoke every token it holds."""
        with self.lock:
            n = self.q(Client).filter(client_id=client_id).delete()
            self.q(RefreshToken).filter(client_id=client_id).update(set__revoked=True)
            self.q(IssuedToken).filter(client_id=client_id).update(set__revoked=True)
            self.q(AuthorizationCode).filter(client_id=client_id).update(set__used=True)
        return bool(n)

    # -- authorization codes ---------------------------------------------------------------
    def add_code(self, code: str, **fields) -> AuthorizationCode:
        return self._insert(AuthorizationCode(code_hash=hashing.token_hash(code), **fields))

    def code(self, code: str) -> AuthorizationCode | None:
        return self._first(AuthorizationCode, code_hash=hashing.token_hash(code))

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        return self._first(AuthorizationCode, client_id=client_id, nonce=nonce) is not None

    def claim_code(self, code: AuthorizationCode) -> bool:
        """Mark the code used; False when it already was (a second redemption)."""
        with self.lock:
            return bool(self.q(AuthorizationCode).filter(code_hash=code.code_hash, used=False).update_one(set__used=True))

    # -- refresh tokens ----------------------------------------------------------------------
    def add_refresh(self, token: str, **fields) -> RefreshToken:
        return self._insert(RefreshToken(token_hash=hashing.token_hash(token), **fields))

    def refresh(self, token: str) -> RefreshToken | None:
        return self._first(RefreshToken, token_hash=hashing.token_hash(token))

    def claim_refresh(self, record: RefreshToken) -> bool:
        """Rotate: mark the token used; False when it was already rotated or revoked."""
        with self.lock:
            n = self.q(RefreshToken).filter(token_hash=record.token_hash, rotated=False, revoked=False).update_one(set__rotated=True)
        return bool(n)

    def revoke_family(self, family_id: str | None, compromised: bool = False) -> None:
        """Revoke every refresh and access token descended from one grant. `compromised`
        (a refresh token or code presented again): also sign the account out everywhere."""
        if not family_id:
            return
        with self.lock:
            self.q(RefreshToken).filter(family_id=family_id).update(set__revoked=True)
            self.q(IssuedToken).filter(family_id=family_id).update(set__revoked=True)
            accounts = set()
            if compromised:
                accounts |= {r.account_id for r in self.q(RefreshToken).filter(family_id=family_id).only("account_id")}
                accounts |= {c.account_id for c in self.q(AuthorizationCode).filter(family_id=family_id).only("account_id")}
        for account_id in accounts:
            self.end_sessions(account_id)

    # -- access tokens -----------------------------------------------------------------------
    def add_access(self, **fields) -> IssuedToken:
        return self._insert(IssuedToken(**fields))

    def access(self, jti) -> IssuedToken | None:
        if not isinstance(jti, str) or not jti:
            return None
        return self._first(IssuedToken, jti=jti)

    def revoke_access(self, jti: str) -> None:
        with self.lock:
            self.q(IssuedToken).filter(jti=jti).update_one(set__revoked=True)

    # -- client assertions -------------------------------------------------------------------
    def use_assertion(self, client_id: str, jti: str, exp) -> bool:
        """Record an assertion jti; False when the client has used it before."""
        try:
            expires = datetime.fromtimestamp(int(exp), UTC)
        except (TypeError, ValueError, OverflowError):
            expires = utcnow() + timedelta(minutes=10)
        # Keep the record a little past the assertion's expiry (clock leeway).
        expires = max(expires, utcnow()) + timedelta(minutes=5)
        try:
            self._insert(UsedAssertion(id=f"{client_id} {jti}", expires_at=expires))
        except NotUniqueError:
            return False
        return True


def epoch(dt: datetime) -> int:
    return int(aware(dt).timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def now_epoch() -> int:
    return int(time.time())
