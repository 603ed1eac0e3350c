"""The Ed25519 key that signs evidence bundles, kept under `TAKEDOWN_HOME`.

The private key is `TAKEDOWN_HOME/evidence/signing-key.pem` (PKCS#8, unencrypted,
mode 0600), created on first use with O_EXCL so two processes never make two keys.
Whoever receives a bundle pins the public key (`takedown evidence key`) and passes it to
`takedown evidence verify --key`; a bundle verified without a pinned key proves only
that it is intact, not who made it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crawler.errors import UsageError

KEY_FILE = "signing-key.pem"
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


def key_path(home: Path) -> Path:
    return home / "evidence" / KEY_FILE


def _create(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_or_create_key(home: Path) -> Ed25519PrivateKey:
    """The signing key, created (mode 0600) the first time it is needed."""
    path = key_path(home)
    try:
        return _create(path)
    except FileExistsError:
        pass  # the normal case after the first export, or another process won the race
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path}: not an Ed25519 private key")
    return key


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_pem(key: Ed25519PublicKey) -> str:
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for the key: the first 16 hex digits of SHA-256 of its raw bytes."""
    return "ed25519:" + hashlib.sha256(public_raw(key)).hexdigest()[:16]


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key given as 64 hex digits or as PEM text; UsageError otherwise."""
    stripped = text.strip()
    if _HEX_KEY.fullmatch(stripped):
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(stripped))
    try:
        key = serialization.load_pem_public_key(stripped.encode("ascii", "replace"))
    except (ValueError, UnsupportedAlgorithm):
        raise UsageError("--key: not an Ed25519 public key (PEM or 64 hex digits)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError("--key: not an Ed25519 public key")
    return key
