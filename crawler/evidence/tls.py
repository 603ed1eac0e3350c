"""TLS facts of a response, for the spider to put on the `PageItem`.

`tls_facts(response.certificate)` gives (SHA-256 fingerprint of the DER certificate in
hex, issuer as an RFC 4514 string), or (None, None) for plain HTTP or an object it does
not understand; `tls_verified(response.certificate, host)` whether it verifies against
the system trust store for that host (None for plain HTTP). Scrapy gives a `twisted.internet.ssl.Certificate` whose `.original` is a
pyOpenSSL X509; a `cryptography` certificate or DER bytes are accepted too.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
import warnings
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError


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


# --- H-07: did the certificate verify? ---------------------------------------------------
# Scrapy accepts any certificate (fetch for discovery); the evidence says whether this one
# would have passed a browser-like check: the system trust store and the host name.
# `response.certificate` holds the leaf only, so a server that relies on intermediates
# reads False here: the verdict errs towards "unverified", never the other way.

_verdicts: dict[tuple[str, str], bool] = {}  # (host, leaf SHA-256) -> verified


@functools.cache
def _trust_store() -> Store | None:
    paths = ssl.get_default_verify_paths()
    for cafile in (paths.cafile, paths.openssl_cafile):
        if cafile and os.path.isfile(cafile):
            with open(cafile, "rb") as fh, warnings.catch_warnings():
                # System bundles carry a few legacy roots (e.g. a zero serial) that
                # cryptography loads with a deprecation warning: noise, not a fault.
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                return Store(x509.load_pem_x509_certificates(fh.read()))
    return None  # no trust store: nothing can verify


def _subject(host: str) -> x509.DNSName | x509.IPAddress:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _verify(cert: x509.Certificate, host: str) -> bool:
    store = _trust_store()
    if store is None:
        return False
    verifier = PolicyBuilder().store(store).build_server_verifier(_subject(host))
    try:
        verifier.verify(cert, [])
    except (VerificationError, ValueError):
        return False
    return True


def tls_verified(certificate: Any, host: str | None) -> bool | None:
    """None without a certificate (plain HTTP), else whether it verifies for *host*."""
    if certificate is None:
        return None
    try:
        cert = _as_x509(certificate)
    except ValueError:
        cert = None
    if cert is None or not host:
        return False  # a TLS response we cannot check is unverified evidence
    key = (host, cert.fingerprint(hashes.SHA256()).hex())
    if key not in _verdicts:
        _verdicts[key] = _verify(cert, host)
    return _verdicts[key]
