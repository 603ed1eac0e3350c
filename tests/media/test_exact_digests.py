"""One place computes SHA-256, SHA-1 and MD5 (`crawler.media.hashing.exact_digests`): a body
the policy skipped (`storage.exact_hashes`) gets the hashes a hashed one does."""

from __future__ import annotations

import hashlib

import pytest

from crawler.engine.storage import exact_hashes
from crawler.media.hashing import exact_digests, hash_media
from tests.support.media import synthetic_png


@pytest.mark.parametrize("data", [b"", b"not an image", synthetic_png(1)])
def test_skipped_and_hashed_bodies_get_the_same_exact_hashes(data: bytes) -> None:
    want = (
        hashlib.sha256(data).hexdigest(),
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )
    assert exact_digests(data) == want
    hashed, skipped = hash_media(data), exact_hashes(data)
    assert (hashed.sha256, hashed.sha1, hashed.md5) == want
    assert (skipped.sha256, skipped.sha1, skipped.md5, skipped.bytes) == (*want, len(data))
