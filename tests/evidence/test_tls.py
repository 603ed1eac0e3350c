"""tls_facts: fingerprint and issuer of a (synthetic, self-signed) server certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.x509.oid import NameOID

from crawler.evidence import tls_facts


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
