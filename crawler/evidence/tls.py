"""TLS facts of a response, for the spider to put on the `PageItem`.

`tls_facts(response.certificate)` gives (SHA-256 fingerprint of the DER certificate in
hex, issuer as an RFC 4514 string), or (None, None) for plain HTTP or an object it does
not understand. Scrapy gives a `twisted.internet.ssl.Certificate` whose `.original` is a
pyOpenSSL X509; a `cryptography` certificate or DER bytes are accepted too.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes


def _as_x509(certificate: Any) -> x509.Certificate | None:
    if isinstance(certificate, x509.Certificate):
        return certificate
    if isinstance(certificate, bytes):
        return x509.load_der_x509_certificate(certificate)
    original = getattr(certificate, "original", None)
    if original is not None and hasattr(original, "to_cryptography"):
        converted = original.to_cryptography()
        return converted if isinstance(converted, x509.Certificate) else None
    return None


def tls_facts(certificate: Any) -> tuple[str | None, str | None]:
    """(fingerprint, issuer) of the server certificate; (None, None) when there is none."""
    if certificate is None:
        return None, None
    try:
        cert = _as_x509(certificate)
    except ValueError:
        return None, None
    if cert is None:
        return None, None
    return cert.fingerprint(hashes.SHA256()).hex(), cert.issuer.rfc4514_string()
