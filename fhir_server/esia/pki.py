"""Keys, certificates and signatures of the ESIA exchange.

    streebog256(data) -> bytes                 GOST R 34.11-2012, 256-bit (memory byte order, as OpenSSL prints it)
    certificate_hash(cert_der) -> str          client_certificate_hash: Streebog-256 of the DER, lower-case hex
    load_certificate(text_or_path) -> Certificate
    load_signer(key, certificate) -> Signer    the key type (GOST R 34.10-2012 256 or RSA) comes from the key itself
    Certificate.verify(data, signature)        raw signature check with the certificate's public key
    cms_sign / cms_verify                      detached PKCS#7 (the legacy ac/te API)
    self_signed(kind, common_name) -> (Signer, Certificate)   development and test PKI (keys made at run time)

Raw GOST signatures use the OpenSSL-gost layout, which ESIA accepts as-is: the digest is
read as a little-endian number, the signature is s || r, 32 bytes each, big-endian
(CryptoPro csptest writes the same bytes reversed). GOST public keys in certificates are
an OCTET STRING of x || y, each little-endian (RFC 4491 / R 1323565.1.023). RSA uses
PKCS#1 v1.5 with SHA-256 (test stands only: production ESIA requires GOST).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import pathlib
import secrets
from dataclasses import dataclass

import gostcrypto
from asn1crypto import algos, cms, core, keys, pem, x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

GOST_KEY_OID = "1.2.643.7.1.1.1.1"  # id-tc26-gost3410-12-256
GOST_SIGN_OID = "1.2.643.7.1.1.3.2"  # id-tc26-signwithdigest-gost3410-12-256
STREEBOG256_OID = "1.2.643.7.1.1.2.2"  # id-tc26-gost3411-12-256
RSA_KEY_OID = "1.2.840.113549.1.1.1"
RSA_SHA256_OID = "1.2.840.113549.1.1.11"
SHA256_OID = "2.16.840.1.101.3.4.2.1"
# GOST R 34.10-2012 256-bit curves: parameter-set OID -> gostcrypto's name of the same curve.
GOST_CURVES = {
    "1.2.643.7.1.2.1.1.2": "id-tc26-gost-3410-2012-256-paramSetB",  # = CryptoPro-A
    "1.2.643.2.2.35.1": "id-tc26-gost-3410-2012-256-paramSetB",  # CryptoPro-A
    "1.2.643.2.2.36.0": "id-tc26-gost-3410-2012-256-paramSetB",  # CryptoPro-XchA (= A)
    "1.2.643.7.1.2.1.1.3": "id-tc26-gost-3410-2012-256-paramSetC",  # = CryptoPro-B
    "1.2.643.2.2.35.2": "id-tc26-gost-3410-2012-256-paramSetC",
    "1.2.643.7.1.2.1.1.4": "id-tc26-gost-3410-2012-256-paramSetD",  # = CryptoPro-C
    "1.2.643.2.2.35.3": "id-tc26-gost-3410-2012-256-paramSetD",
    "1.2.643.2.2.36.1": "id-tc26-gost-3410-2012-256-paramSetD",  # CryptoPro-XchB (= C)
}
DEFAULT_CURVE_OID = "1.2.643.7.1.2.1.1.2"


class PKIError(ValueError):
    """A key, certificate or signature that cannot be used (the message names no secret)."""


def streebog256(data: bytes) -> bytes:
    return bytes(gostcrypto.gosthash.new("streebog256", data=bytes(data)).digest())


def certificate_hash(cert_der: bytes) -> str:
    return streebog256(cert_der).hex()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or not text or any(c in text for c in "+/ \n"):
        raise PKIError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise PKIError("not base64url") from None


def _text_or_file(value: str | bytes) -> bytes:
    """PEM (or DER) given inline, or the path of a file holding it."""
    if isinstance(value, bytes):
        return value
    if "-----BEGIN" in value:
        return value.encode("ascii")
    path = pathlib.Path(value).expanduser()
    if not path.is_file():
        raise PKIError(f"no such key or certificate file: {path}")
    return path.read_bytes()


def _der(data: bytes) -> bytes:
    if pem.detect(data):
        _, _, der = pem.unarmor(data)
        return der
    return data


# -- GOST R 34.10-2012 (256) --------------------------------------------------------------
def _curve(curve_oid: str):
    name = GOST_CURVES.get(curve_oid)
    if name is None:
        raise PKIError(f"unsupported GOST curve {curve_oid}")
    return gostcrypto.gostsignature.new(gostcrypto.gostsignature.MODE_256, gostcrypto.gostsignature.CURVES_R_1323565_1_024_2019[name])


def gost_sign(private_key: int, curve_oid: str, data: bytes) -> bytes:
    digest = streebog256(data)
    r_s = _curve(curve_oid).sign(bytearray(private_key.to_bytes(32, "big")), bytearray(digest[::-1]))
    return bytes(r_s[32:] + r_s[:32])  # s || r


def gost_verify(public_xy: bytes, curve_oid: str, data: bytes, signature: bytes) -> bool:
    if len(signature) != 64 or len(public_xy) != 64:
        return False
    r_s = bytearray(signature[32:] + signature[:32])
    try:
        return bool(_curve(curve_oid).verify(bytearray(public_xy), bytearray(streebog256(data)[::-1]), r_s))
    except gostcrypto.gostsignature.GOSTSignatureError:
        return False


def gost_public(private_key: int, curve_oid: str) -> bytes:
    """x || y, big-endian (gostcrypto's order)."""
    return bytes(_curve(curve_oid).public_key_generate(bytearray(private_key.to_bytes(32, "big"))))


def _gost_params(curve_oid: str) -> core.Sequence:
    class _Params(core.Sequence):
        _fields = [("curve", core.ObjectIdentifier), ("digest", core.ObjectIdentifier, {"optional": True})]

    return _Params({"curve": curve_oid, "digest": STREEBOG256_OID})


def _parse_gost_params(params) -> str:
    raw = params.dump() if hasattr(params, "dump") else bytes(params)
    seq = core.Sequence.load(raw)
    return seq[0].dotted if hasattr(seq[0], "dotted") else core.ObjectIdentifier.load(seq[0].dump()).dotted


# -- certificates ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Certificate:
    der: bytes
    kind: str  # "gost" | "rsa"
    curve_oid: str | None = None
    public_xy: bytes | None = None  # GOST: x || y big-endian
    rsa_public: object = None

    @property
    def hash(self) -> str:
        return certificate_hash(self.der)

    @property
    def pem(self) -> str:
        return pem.armor("CERTIFICATE", self.der).decode("ascii")

    @property
    def asn1(self) -> x509.Certificate:
        return x509.Certificate.load(self.der)

    def verify(self, data: bytes, signature: bytes) -> bool:
        if self.kind == "gost":
            return gost_verify(self.public_xy, self.curve_oid, data, signature)
        try:
            self.rsa_public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    @classmethod
    def from_der(cls, der: bytes) -> Certificate:
        try:
            cert = x509.Certificate.load(der)
            spki = _RawPublicKeyInfo.load(cert["tbs_certificate"]["subject_public_key_info"].dump())
            alg = spki["algorithm"]["algorithm"].dotted
            if alg == GOST_KEY_OID:
                curve = _parse_gost_params(spki["algorithm"]["parameters"])
                inner = core.OctetString.load(spki["public_key"].contents[1:]).native
                if len(inner) != 64:
                    raise PKIError("a GOST R 34.10-2012 256 public key has 64 bytes")
                xy = inner[:32][::-1] + inner[32:][::-1]
                _curve(curve)
                return cls(der=der, kind="gost", curve_oid=curve, public_xy=xy)
            if alg == RSA_KEY_OID:
                public = serialization.load_der_public_key(spki.dump())
                return cls(der=der, kind="rsa", rsa_public=public)
        except PKIError:
            raise
        except Exception as exc:  # asn1crypto raises many kinds on malformed input
            raise PKIError(f"not a usable X.509 certificate ({type(exc).__name__})") from None
        raise PKIError(f"unsupported public key algorithm {alg}")


def load_certificate(value: str | bytes) -> Certificate:
    """A certificate from PEM text, a PEM or DER file path, or DER bytes."""
    return Certificate.from_der(_der(_text_or_file(value)))


# -- signers ---------------------------------------------------------------------------------
class Signer:
    """A private key with its certificate. `sign(data)` gives the raw signature."""

    kind: str
    certificate: Certificate

    def sign(self, data: bytes) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def sign_oid(self) -> str:
        return GOST_SIGN_OID if self.kind == "gost" else RSA_SHA256_OID

    @property
    def digest_oid(self) -> str:
        return STREEBOG256_OID if self.kind == "gost" else SHA256_OID

    @property
    def jws_alg(self) -> str:
        return "GOST3410_2012_256" if self.kind == "gost" else "RS256"


class GostSigner(Signer):
    kind = "gost"

    def __init__(self, private_key: int, curve_oid: str, certificate: Certificate | None = None):
        self._d = private_key
        self.curve_oid = curve_oid
        self.certificate = certificate
        self.public_xy = gost_public(private_key, curve_oid)

    def sign(self, data: bytes) -> bytes:
        return gost_sign(self._d, self.curve_oid, data)

    def pkcs8_pem(self) -> str:
        info = _RawPrivateKeyInfo(
            {
                "version": 0,
                "algorithm": {"algorithm": GOST_KEY_OID, "parameters": _gost_params(self.curve_oid)},
                "private_key": core.OctetString(self._d.to_bytes(32, "big")[::-1]).dump(),
            }
        )
        return pem.armor("PRIVATE KEY", _any_private_key(info)).decode("ascii")


class RsaSigner(Signer):
    kind = "rsa"

    def __init__(self, key: rsa.RSAPrivateKey, certificate: Certificate | None = None):
        self._key = key
        self.certificate = certificate

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def pkcs8_pem(self) -> str:
        return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode("ascii")


def _any_private_key(info) -> bytes:
    return info.dump()


def _bits(data: bytes) -> core.BitString:
    return core.BitString.load(b"\x03" + _der_len(len(data) + 1) + b"\x00" + data)


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


class _RawPublicKeyInfo(core.Sequence):
    _fields = [("algorithm", algos.AlgorithmIdentifier), ("public_key", core.BitString)]


class _RawPrivateKeyInfo(core.Sequence):
    _fields = [("version", core.Integer), ("algorithm", algos.AlgorithmIdentifier), ("private_key", core.OctetString)]


def load_signer(key: str | bytes, certificate: str | bytes) -> Signer:
    """The signer of a PKCS#8 private key (PEM text or a file path; GOST R 34.10-2012 256 or
    RSA) and its certificate; the key must match the certificate."""
    cert = load_certificate(certificate)
    der = _der(_text_or_file(key))
    try:
        info = _RawPrivateKeyInfo.load(der)
        alg = info["algorithm"]["algorithm"].dotted
    except Exception:
        raise PKIError("the private key is not PKCS#8 (PEM 'PRIVATE KEY')") from None
    if alg == GOST_KEY_OID:
        inner = info["private_key"].native
        try:
            value = core.load(inner)
            raw = value.native
        except Exception:
            raw = inner
        d = raw if isinstance(raw, int) else int.from_bytes(bytes(raw), "little")
        curve = _parse_gost_params(info["algorithm"]["parameters"])
        signer: Signer = GostSigner(d, curve, cert)
        if cert.kind != "gost" or cert.public_xy != signer.public_xy:
            raise PKIError("the private key does not match the certificate")
        return signer
    if alg == RSA_KEY_OID:
        private = serialization.load_der_private_key(der, password=None)
        ok = cert.kind == "rsa" and cert.rsa_public.public_numbers() == private.public_key().public_numbers()
        if not ok:
            raise PKIError("the private key does not match the certificate")
        return RsaSigner(private, cert)
    raise PKIError(f"unsupported private key algorithm {alg}")


# -- a self-signed certificate (development and tests) ------------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name.build({"common_name": common_name, "country_name": "RU"})


def self_signed(kind: str, common_name: str, days: int = 365) -> Signer:
    """A fresh key and a minimal self-signed X.509 v3 certificate for it ("gost" or "rsa")."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    if kind == "gost":
        curve = DEFAULT_CURVE_OID
        q = gostcrypto.gostsignature.CURVES_R_1323565_1_024_2019[GOST_CURVES[curve]]["q"]
        d = secrets.randbelow(q - 1) + 1
        signer: Signer = GostSigner(d, curve)
        xy = signer.public_xy
        raw = _RawPublicKeyInfo(
            {
                "algorithm": {"algorithm": GOST_KEY_OID, "parameters": _gost_params(curve)},
                "public_key": _bits(core.OctetString(xy[:32][::-1] + xy[32:][::-1]).dump()),
            }
        )
        spki = keys.PublicKeyInfo.load(raw.dump())
        sig_alg = {"algorithm": GOST_SIGN_OID}
    elif kind == "rsa":
        private = rsa.generate_private_key(65537, 2048)
        signer = RsaSigner(private)
        spki = keys.PublicKeyInfo.load(private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
        sig_alg = {"algorithm": "sha256_rsa", "parameters": None}
    else:
        raise PKIError(f"unknown key kind {kind!r}")
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": int.from_bytes(os.urandom(8), "big"),
            "signature": sig_alg,
            "issuer": _name(common_name),
            "validity": {"not_before": x509.Time({"utc_time": now - dt.timedelta(minutes=5)}),
                         "not_after": x509.Time({"utc_time": now + dt.timedelta(days=days)})},
            "subject": _name(common_name),
            "subject_public_key_info": spki,
        }
    )
    signature = signer.sign(tbs.dump())
    cert = x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": sig_alg, "signature_value": signature})
    signer.certificate = Certificate.from_der(cert.dump())
    return signer


# -- detached PKCS#7 (legacy API) ---------------------------------------------------------
def cms_sign(signer: Signer, data: bytes) -> bytes:
    """A detached CMS SignedData (DER) over `data`, without signed attributes, carrying the certificate."""
    cert = signer.certificate.asn1
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": signer.digest_oid}],
            "encap_content_info": {"content_type": "data"},
            "certificates": [cert],
            "signer_infos": [
                {
                    "version": "v1",
                    "sid": cms.SignerIdentifier(
                        {"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}}
                    ),
                    "digest_algorithm": {"algorithm": signer.digest_oid},
                    "signature_algorithm": {"algorithm": signer.sign_oid},
                    "signature": signer.sign(data),
                }
            ],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


def cms_verify(certificate: Certificate, data: bytes, signature: bytes) -> bool:
    """Is `signature` a detached CMS over `data` by the holder of `certificate`?"""
    try:
        info = cms.ContentInfo.load(signature)
        if info["content_type"].native != "signed_data":
            return False
        signed = info["content"]
        if signed["encap_content_info"]["content"].native is not None:
            return False  # attached content: not the detached signature over our string
        cert = certificate.asn1
        for si in signed["signer_infos"]:
            sid = si["sid"].chosen
            if not isinstance(sid, cms.IssuerAndSerialNumber):
                continue
            if sid["serial_number"].native != cert.serial_number or sid["issuer"].dump() != cert.issuer.dump():
                continue
            attrs = si["signed_attrs"]
            if attrs.native:
                # With signed attributes the signature covers them (re-tagged as a SET),
                # and their message digest covers the data (RFC 5652 5.4).
                digest = {a["type"].native: a["values"][0].native for a in attrs}.get("message_digest")
                if digest != (streebog256(data) if certificate.kind == "gost" else _sha256(data)):
                    return False
                signed_bytes = b"\x31" + attrs.dump()[1:]
            else:
                signed_bytes = data
            if certificate.verify(signed_bytes, si["signature"].native):
                return True
    except Exception:
        return False
    return False


def _sha256(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()
