"""tls_facts: fingerprint and issuer of a (synthetic, self-signed) server certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import Store

from crawler.evidence import tls
from crawler.evidence.tls import tls_facts, tls_verified


def _cert() -> x509.Certificate:
    key = generate_private_key(SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Synthetic Test CA")])
    now = datetime.now(UTC)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name)
    builder = builder.public_key(key.public_key()).serial_number(1)
    builder = builder.not_valid_before(now).not_valid_after(now + timedelta(days=1))
    return builder.sign(key, hashes.SHA256())


class _TwistedLike:
    """What Scrapy's `response.certificate.original` offers: pyOpenSSL's to_cryptography()."""

    def __init__(self, cert: x509.Certificate) -> None:
        self.original = self
        self._cert = cert

    def to_cryptography(self) -> x509.Certificate:
        return self._cert


def test_fingerprint_and_issuer_from_each_accepted_form() -> None:
    cert = _cert()
    expected = (cert.fingerprint(hashes.SHA256()).hex(), "CN=Synthetic Test CA")
    der = cert.public_bytes(serialization.Encoding.DER)
    assert tls_facts(cert) == tls_facts(der) == tls_facts(_TwistedLike(cert)) == expected


def test_plain_http_or_garbage_gives_nothing() -> None:
    assert tls_facts(None) == (None, None)
    assert tls_facts(b"not a certificate") == (None, None)
    assert tls_facts(object()) == (None, None)


# --- tls_verified (H-07) ------------------------------------------------------------------


def _ca_and_leaf(host: str) -> tuple[x509.Certificate, x509.Certificate]:
    """A synthetic CA and a leaf it signed for *host*, with the extensions Web PKI needs."""
    ca_key, leaf_key = generate_private_key(SECP256R1()), generate_private_key(SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Synthetic Root")])
    now = datetime.now(UTC) - timedelta(minutes=1)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(3)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca, leaf


def test_tls_verified_none_for_plain_http_false_for_self_signed() -> None:
    assert tls_verified(None, "site-a.test") is None
    assert tls_verified(_TwistedLike(_cert()), "site-a.test") is False
    assert tls_verified(object(), "site-a.test") is False  # TLS we cannot read: unverified


def test_tls_verified_against_the_trust_store_and_host(monkeypatch: pytest.MonkeyPatch) -> None:
    ca, leaf = _ca_and_leaf("shop.test")
    monkeypatch.setattr(tls, "_trust_store", lambda: Store([ca]))
    monkeypatch.setattr(tls, "_verdicts", {})
    assert tls_verified(_TwistedLike(leaf), "shop.test") is True
    assert tls_verified(leaf, "other.test") is False  # right chain, wrong host
