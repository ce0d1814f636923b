"""Hashing what the server must recognise but never keep in the clear.

* Random tokens (authorization codes, refresh tokens) are long and uniformly random:
  one SHA-256 is enough and lets the database look them up by hash.
* Passwords and client secrets are chosen or kept by people: Argon2id (RFC 9106).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults are RFC 9106's second recommended option (Argon2id, t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()
_dummy: str | None = None


def _dummy_hash() -> str:
    """A hash of nothing anyone knows: verified against when a login does not exist, so an
    unknown login costs as much time as a wrong password."""
    global _dummy
    if _dummy is None:
        _dummy = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy


def new_token(nbytes: int = 32) -> str:
    """A random token for URLs and forms (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str | None, secret: str | None) -> bool:
    """Argon2id check of a password or client secret; False for a missing hash or secret."""
    if not secret:
        return False
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), secret) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return False


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())
