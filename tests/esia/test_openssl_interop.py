"""Interoperability with OpenSSL's GOST engine (the signer ESIA's reference clients use as-is),
where it is installed (Debian: libengine-gost-openssl): our raw signatures, certificate
hash, certificates, PKCS#8 keys and detached PKCS#7 against OpenSSL's, both ways."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from fhir_server.esia import pki


def _gost_engine() -> bool:
    if shutil.which("openssl") is None:
        return False
    return subprocess.run(["openssl", "engine", "gost"], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _gost_engine(), reason="OpenSSL GOST engine not installed (libengine-gost-openssl)")

MSG = b"FHIRSRVopenid snils2025.09.02 13:00:29 +0300a0b1c2d3-0000-4000-8000-000000000000http://127.0.0.1/cb"


def _openssl(*args, **kw):
    r = subprocess.run(["openssl", *args], capture_output=True, **kw)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout


@pytest.fixture
def files(tmp_path):
    signer = pki.self_signed("gost", "interop")
    (tmp_path / "cert.pem").write_text(signer.certificate.pem)
    (tmp_path / "cert.der").write_bytes(signer.certificate.der)
    (tmp_path / "key.pem").write_text(signer.pkcs8_pem())
    (tmp_path / "msg").write_bytes(MSG)
    return signer, tmp_path


def test_certificate_hash_and_self_signature(files):
    signer, d = files
    out = _openssl("dgst", "-engine", "gost", "-md_gost12_256", str(d / "cert.der")).decode()
    assert out.strip().endswith(signer.certificate.hash)
    assert b"OK" in _openssl("verify", "-engine", "gost", "-CAfile", str(d / "cert.pem"), str(d / "cert.pem"))


def test_raw_signatures_both_ways(files):
    signer, d = files
    (d / "ours.sig").write_bytes(signer.sign(MSG))
    (d / "pub.pem").write_bytes(_openssl("x509", "-engine", "gost", "-in", str(d / "cert.pem"), "-noout", "-pubkey"))
    assert b"Verified OK" in _openssl("dgst", "-engine", "gost", "-md_gost12_256", "-verify", str(d / "pub.pem"),
                                      "-signature", str(d / "ours.sig"), str(d / "msg"))
    _openssl("dgst", "-engine", "gost", "-md_gost12_256", "-sign", str(d / "key.pem"), "-out", str(d / "theirs.sig"), str(d / "msg"))
    theirs = (d / "theirs.sig").read_bytes()
    assert len(theirs) == 64 and signer.certificate.verify(MSG, theirs) and not signer.certificate.verify(MSG + b"x", theirs)


def test_detached_pkcs7_both_ways(files):
    signer, d = files
    (d / "ours.p7s").write_bytes(pki.cms_sign(signer, MSG))
    _openssl("cms", "-engine", "gost", "-verify", "-binary", "-inform", "DER", "-in", str(d / "ours.p7s"), "-content", str(d / "msg"),
             "-CAfile", str(d / "cert.pem"), "-purpose", "any", "-out", "/dev/null")
    _openssl("cms", "-engine", "gost", "-sign", "-binary", "-signer", str(d / "cert.pem"), "-inkey", str(d / "key.pem"), "-in", str(d / "msg"),
             "-outform", "DER", "-out", str(d / "theirs.p7s"))
    theirs = (d / "theirs.p7s").read_bytes()
    assert pki.cms_verify(signer.certificate, MSG, theirs) and not pki.cms_verify(signer.certificate, MSG + b"x", theirs)
