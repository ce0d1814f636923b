"""Signers, hashes, certificates and the detached PKCS#7 of the ESIA exchange."""

from __future__ import annotations

import pytest

from fhir_server.esia import pki, protocol
from fhir_server.esia.persons import DEFAULT_PERSONS, check_persons, snils_valid

# GOST R 34.11-2012, example 1: M1 is the 63 ASCII digits "0123456789012...012". The
# standard prints H(M1) most significant byte first: 00557be5...; in memory byte order (what
# OpenSSL's `-md_streebog256` prints) the digest is the reverse, 9d151eef....
M1 = b"0123456789" * 6 + b"012"
H_M1_STANDARD = "00557be5e584fd52a449b16b0251d05d27f94ab76cbaa6da890b59d8ef1e159d"
# Streebog-256 of the empty string (memory byte order).
H_EMPTY = "3f539a213e97c802cc229d474c6aa32a825a360b2a933a949fd925208d9ce1bb"


def test_streebog256_known_vectors():
    assert pki.streebog256(M1)[::-1].hex() == H_M1_STANDARD
    assert pki.streebog256(M1).hex() == "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500"
    assert pki.streebog256(b"").hex() == H_EMPTY


@pytest.fixture(scope="module")
def gost():
    return pki.self_signed("gost", "GOST test")


@pytest.fixture(scope="module")
def rsa():
    return pki.self_signed("rsa", "RSA test")


def test_gost_sign_verify_round_trip(gost):
    sig = gost.sign(b"client_id scope timestamp state")
    assert len(sig) == 64 and len(pki.b64url(sig)) == 86
    assert gost.certificate.verify(b"client_id scope timestamp state", sig)
    assert not gost.certificate.verify(b"client_id scope timestamp statf", sig)
    tampered = bytes([sig[0] ^ 1]) + sig[1:]
    assert not gost.certificate.verify(b"client_id scope timestamp state", tampered)
    assert not pki.self_signed("gost", "other").certificate.verify(b"client_id scope timestamp state", sig)
    assert gost.sign(b"x") != gost.sign(b"x")  # a fresh random k each time


def test_gost_signature_layout_is_s_then_r_over_the_little_endian_digest(gost):
    """The OpenSSL-gost layout: verify the equation by hand with gostcrypto's own curve."""
    import gostcrypto

    curve = gostcrypto.gostsignature.CURVES_R_1323565_1_024_2019[pki.GOST_CURVES[gost.curve_oid]]
    q = curve["q"]
    sig = gost.sign(b"layout")
    s, r = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    e = int.from_bytes(pki.streebog256(b"layout"), "little") % q or 1
    engine = pki._curve(gost.curve_oid)
    v = pow(e, -1, q)
    z1, z2 = s * v % q, (q - r) * v % q
    x_pub, y_pub = int.from_bytes(gost.public_xy[:32], "big"), int.from_bytes(gost.public_xy[32:], "big")
    p1 = engine._mul_point(z1)
    p2 = engine._mul_point(z2, x_pub, y_pub)
    assert engine._add(p1[0], p2[0], p1[1], p2[1])[0] % q == r


def test_rsa_sign_verify_round_trip(rsa):
    sig = rsa.sign(b"data")
    assert rsa.certificate.verify(b"data", sig) and not rsa.certificate.verify(b"dat", sig)


def test_certificate_hash_is_streebog_of_the_der(gost):
    assert gost.certificate.hash == pki.streebog256(gost.certificate.der).hex()
    assert len(gost.certificate.hash) == 64
    assert gost.certificate.hash != pki.streebog256(gost.certificate.pem.encode()).hex()  # not of the PEM (ESIA-007053)


@pytest.mark.parametrize("kind", ["gost", "rsa"])
def test_self_signed_certificate_is_well_formed(kind, gost, rsa):
    signer = {"gost": gost, "rsa": rsa}[kind]
    cert = signer.certificate.asn1
    assert cert.subject.native["common_name"].endswith("test")
    tbs = cert["tbs_certificate"]
    assert signer.certificate.verify(tbs.dump(), cert["signature_value"].native)
    assert cert["signature_algorithm"]["algorithm"].dotted == (pki.GOST_SIGN_OID if kind == "gost" else pki.RSA_SHA256_OID)
    again = pki.load_certificate(signer.certificate.pem)
    assert again.der == signer.certificate.der and again.kind == kind


@pytest.mark.parametrize("kind", ["gost", "rsa"])
def test_keys_load_from_pem_and_must_match_the_certificate(kind, gost, rsa, tmp_path):
    signer = {"gost": gost, "rsa": rsa}[kind]
    key = tmp_path / "key.pem"
    key.write_text(signer.pkcs8_pem())
    loaded = pki.load_signer(str(key), signer.certificate.pem)
    assert loaded.kind == kind and signer.certificate.verify(b"m", loaded.sign(b"m"))
    other = pki.self_signed(kind, "other")
    with pytest.raises(pki.PKIError, match="does not match"):
        pki.load_signer(signer.pkcs8_pem(), other.certificate.pem)
    with pytest.raises(pki.PKIError, match="no such key"):
        pki.load_signer(str(tmp_path / "missing.pem"), signer.certificate.pem)


def test_a_broken_certificate_is_a_clear_error():
    with pytest.raises(pki.PKIError, match="not a usable X.509 certificate"):
        pki.load_certificate(b"\x30\x03\x02\x01\x01")


@pytest.mark.parametrize("kind", ["gost", "rsa"])
def test_detached_pkcs7_round_trip(kind, gost, rsa):
    signer = {"gost": gost, "rsa": rsa}[kind]
    text = b"openid fullname2025.09.02 13:00:29 +0300FHIRSRV0b5e1d6a-0000-4000-8000-000000000000"
    cms = pki.cms_sign(signer, text)
    assert pki.cms_verify(signer.certificate, text, cms)
    assert not pki.cms_verify(signer.certificate, text + b"x", cms)
    assert not pki.cms_verify(pki.self_signed(kind, "other").certificate, text, cms)
    assert not pki.cms_verify(signer.certificate, text, b"not a cms")


def test_signed_strings_of_each_api(gost):
    p = {"client_id": "C", "scope": "openid snils", "timestamp": "2025.09.02 13:00:29 +0300", "state": "S", "redirect_uri": "R", "code": "K"}
    assert protocol.API["v2"].signed(p, False) == "Copenid snils2025.09.02 13:00:29 +0300SR"
    assert protocol.API["v2"].signed(p, True) == "Copenid snils2025.09.02 13:00:29 +0300SRK"
    assert protocol.API["legacy"].signed(p, True) == "openid snils2025.09.02 13:00:29 +0300CS"
    signed = {**p, "client_secret": protocol.API["v2"].secret(gost, p, with_code=True)}
    assert protocol.API["v2"].verify(gost.certificate, signed, with_code=True)
    assert not protocol.API["v2"].verify(gost.certificate, {**signed, "code": "other"}, with_code=True)


def test_timestamp_format():
    text = protocol.timestamp(1756807229)  # 2025-09-02 10:00:29 UTC
    assert text == "2025.09.02 13:00:29 +0300"
    assert protocol.parse_timestamp(text) == 1756807229
    assert protocol.parse_timestamp("2025-09-02T13:00:29Z") is None


def test_jwt_round_trip_and_algorithm_pinning(gost, rsa):
    token = protocol.jwt_encode({"sbt": "id"}, {"sub": 1}, gost)
    header, claims = protocol.jwt_decode(token, gost.certificate)
    assert header == {"sbt": "id", "alg": "GOST3410_2012_256"} and claims == {"sub": 1}
    with pytest.raises(protocol.TokenError, match="unexpected alg"):
        protocol.jwt_decode(token, rsa.certificate)  # an RSA-configured client never accepts a GOST token
    head, _, sig = token.split(".")
    other_body = pki.b64url(b'{"sub":2}')
    forged = f"{head}.{other_body}.{sig}"
    with pytest.raises(protocol.TokenError, match="bad signature"):
        protocol.jwt_decode(forged, gost.certificate)


def test_snils_check_digits_from_russia_md():
    assert snils_valid("112-233-445 95") and snils_valid("174-003-542 29")
    assert not snils_valid("112-233-445 96") and not snils_valid("112-233-445")
    assert snils_valid("001-001-998 00")  # small numbers carry no check


def test_default_persons_are_valid_and_bad_ones_are_refused():
    check_persons([dict(p) for p in DEFAULT_PERSONS])
    assert {p["trusted"] for p in DEFAULT_PERSONS} == {True, False}
    assert any(d["type"] == "MDCL_PLCY" for p in DEFAULT_PERSONS for d in p["documents"])
    bad = dict(DEFAULT_PERSONS[0], snils="112-233-445 96")
    with pytest.raises(ValueError, match="SNILS"):
        check_persons([bad])
    bad_policy = dict(DEFAULT_PERSONS[0], documents=[{"type": "MDCL_PLCY", "number": "5598718357093421"}])
    with pytest.raises(ValueError, match="ENP"):
        check_persons([bad_policy])
    with pytest.raises(ValueError, match="oid"):
        check_persons([dict(DEFAULT_PERSONS[0]), dict(DEFAULT_PERSONS[0])])
