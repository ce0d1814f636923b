"""The key that signs access tokens and id tokens.

FHIR_AUTH_SIGNING_KEY holds a PEM private key (RSA of 2048 bits or more: RS256; EC
P-256: ES256), as text or as the path of a file. Without it an ephemeral EC P-256 key is
made at start: tokens then die with the process and several worker processes cannot
check each other's tokens, so a warning is logged. No key is ever written anywhere.
"""

from __future__ import annotations

import logging
import pathlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc.jwk import ECKey, KeySet, RSAKey

log = logging.getLogger("fhir_server.auth")


class SigningKeyError(ValueError):
    """The configured signing key is unusable."""


@dataclass(frozen=True)
class SigningKey:
    private: RSAKey | ECKey
    alg: str  # RS256 | ES256
    kid: str
    ephemeral: bool

    @property
    def public_jwk(self) -> dict:
        return {**self.private.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}

    @property
    def jwks(self) -> dict:
        return {"keys": [self.public_jwk]}

    @property
    def keyset(self) -> KeySet:
        """The key as a set: joserfc then writes its `kid` into the JWT header."""
        return KeySet([self.private])


def _with_kid(key, alg: str):
    kid = key.thumbprint()
    keyed = type(key).import_key(key.as_dict(private=True), {"kid": kid, "use": "sig", "alg": alg})
    return keyed, kid


def _pem_text(value: str) -> bytes:
    text = value.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    path = pathlib.Path(text).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"FHIR_AUTH_SIGNING_KEY: cannot read {path}: {exc.strerror}") from None


def load_signing_key(value: str | None) -> SigningKey:
    if not value:
        key = ECKey.generate_key("P-256", private=True)
        log.warning(
            "FHIR_AUTH_SIGNING_KEY is not set: tokens are signed with an ephemeral key made now; they stop "
            "working when the process ends and other worker processes reject them. Set FHIR_AUTH_SIGNING_KEY "
            "(a PEM private key, RSA 2048+ or EC P-256) in production."
        )
        key, kid = _with_kid(key, "ES256")
        return SigningKey(key, "ES256", kid, ephemeral=True)
    pem = _pem_text(value)
    try:
        crypto_key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"FHIR_AUTH_SIGNING_KEY is not an unencrypted PEM private key ({type(exc).__name__})") from None
    if isinstance(crypto_key, rsa.RSAPrivateKey):
        if crypto_key.key_size < 2048:
            raise SigningKeyError("FHIR_AUTH_SIGNING_KEY: an RSA key needs at least 2048 bits")
        key, alg = RSAKey.import_key(pem), "RS256"
    elif isinstance(crypto_key, ec.EllipticCurvePrivateKey) and crypto_key.curve.name == "secp256r1":
        key, alg = ECKey.import_key(pem), "ES256"
    else:
        raise SigningKeyError("FHIR_AUTH_SIGNING_KEY: use an RSA (2048+) or EC P-256 private key")
    key, kid = _with_kid(key, alg)
    return SigningKey(key, alg, kid, ephemeral=False)
