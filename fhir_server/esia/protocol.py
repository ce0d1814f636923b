"""What both ends of the ESIA exchange agree on (../shared/docs/russia.md section 1): the
endpoints of each API generation, the strings that are signed, the timestamp format, the
person REST paths, and ESIA's signed JWTs.

    API["v2"]       GET /aas/oauth2/v2/ac, POST /aas/oauth2/v3/te; client_secret = raw signature
                    over client_id + scope + timestamp + state + redirect_uri (+ code at te)
    API["legacy"]   GET /aas/oauth2/ac, POST /aas/oauth2/te; client_secret = detached PKCS#7
                    over scope + timestamp + client_id + state (ac and te alike)
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass

from . import pki

TIMESTAMP_FORMAT = "%Y.%m.%d %H:%M:%S %z"  # yyyy.MM.dd HH:mm:ss Z, e.g. 2025.09.02 13:00:29 +0300
MSK = dt.timezone(dt.timedelta(hours=3))
LOGOUT_PATH = "/idp/ext/Logout"
PERSON_PATH = "/rs/prns/{oid}"
COLLECTIONS = ("ctts", "docs")  # read with ?embed=(elements)
JWT_ALGS = {"gost": "GOST3410_2012_256", "rsa": "RS256"}


def _v2_string(p: dict, with_code: bool) -> str:
    return p["client_id"] + p["scope"] + p["timestamp"] + p["state"] + p["redirect_uri"] + (p["code"] if with_code else "")


def _legacy_string(p: dict, with_code: bool) -> str:
    return p["scope"] + p["timestamp"] + p["client_id"] + p["state"]


def _raw_secret(signer: pki.Signer, text: str) -> str:
    return pki.b64url(signer.sign(text.encode("utf-8")))


def _raw_check(certificate: pki.Certificate, text: str, secret: str) -> bool:
    return certificate.verify(text.encode("utf-8"), pki.b64url_decode(secret))


def _cms_secret(signer: pki.Signer, text: str) -> str:
    return pki.b64url(pki.cms_sign(signer, text.encode("utf-8")))


def _cms_check(certificate: pki.Certificate, text: str, secret: str) -> bool:
    return pki.cms_verify(certificate, text.encode("utf-8"), pki.b64url_decode(secret))


@dataclass(frozen=True)
class Api:
    name: str
    ac: str
    te: str
    signed: object  # (params, with_code) -> str
    make_secret: object  # (signer, text) -> client_secret
    check_secret: object  # (certificate, text, client_secret) -> bool
    certificate_hash: bool  # does the request carry client_certificate_hash?

    def secret(self, signer: pki.Signer, params: dict, with_code: bool = False) -> str:
        return self.make_secret(signer, self.signed(params, with_code))

    def verify(self, certificate: pki.Certificate, params: dict, with_code: bool = False) -> bool:
        try:
            return bool(self.check_secret(certificate, self.signed(params, with_code), params.get("client_secret") or ""))
        except (pki.PKIError, KeyError, TypeError):
            return False


API = {
    "v2": Api("v2", "/aas/oauth2/v2/ac", "/aas/oauth2/v3/te", _v2_string, _raw_secret, _raw_check, True),
    "legacy": Api("legacy", "/aas/oauth2/ac", "/aas/oauth2/te", _legacy_string, _cms_secret, _cms_check, False),
}


def timestamp(now: float | None = None) -> str:
    return dt.datetime.fromtimestamp(time.time() if now is None else now, MSK).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> float | None:
    try:
        return dt.datetime.strptime(text, TIMESTAMP_FORMAT).timestamp()
    except (TypeError, ValueError):
        return None


# -- ESIA's JWTs ---------------------------------------------------------------------------
class TokenError(ValueError):
    """A token that is malformed, badly signed, or whose claims do not hold."""


def jwt_encode(header: dict, claims: dict, signer: pki.Signer) -> str:
    head = pki.b64url(json.dumps({**header, "alg": JWT_ALGS[signer.kind]}, separators=(",", ":")).encode())
    body = pki.b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signing_input = f"{head}.{body}".encode("ascii")
    return f"{head}.{body}.{pki.b64url(signer.sign(signing_input))}"


def jwt_decode(token: str, certificate: pki.Certificate) -> tuple[dict, dict]:
    """Header and claims of a token signed by the holder of `certificate`. The algorithm
    must be the one of the certificate's key (no algorithm choice by the token)."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenError("not a compact JWS")
    head, body, sig = token.split(".")
    try:
        header = json.loads(pki.b64url_decode(head))
        claims = json.loads(pki.b64url_decode(body))
        signature = pki.b64url_decode(sig)
    except (pki.PKIError, ValueError, UnicodeDecodeError):
        raise TokenError("not a compact JWS") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("not a compact JWS")
    if header.get("alg") != JWT_ALGS[certificate.kind]:
        raise TokenError(f"unexpected alg {str(header.get('alg'))[:40]}")
    if not certificate.verify(f"{head}.{body}".encode("ascii"), signature):
        raise TokenError("bad signature")
    return header, claims


def check_times(claims: dict, now: float, leeway: int) -> None:
    exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if not isinstance(exp, int | float) or now > exp + leeway:
        raise TokenError("expired")
    if not isinstance(nbf, int | float) or now + leeway < nbf:
        raise TokenError("not yet valid")
