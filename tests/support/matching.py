"""Helpers for matching tests: synthetic images and their hashes, hash lists, stored media.

Every image is synthetic (tests/support/media.py); its bytes live only in memory while hashed.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

from PIL import Image
from sqlalchemy import select

from crawler.db.models import HashEntry, HashList, Media, Observation, Page, ReviewItem
from crawler.db.session import Database
from crawler.matching.matcher import Matcher
from crawler.media.hashing import hash_media
from crawler.media.hashlists import HashRow, import_rows
from tests.support.media import picture
from tests.support.rows import added

Cli = Callable[..., tuple[int, str, str]]
_ids = count(1)


@dataclass(frozen=True, slots=True)
class SampleHashes:
    """What matching reads from a media (`crawler.matching.matcher.HasHashes`), for tests
    that add media without crawling them."""

    sha256: str
    sha1: str
    md5: str
    pdq: str | None = None
    pdq_quality: int | None = None


def synthetic(seed: int, size: int = 512) -> Image.Image:
    """Smooth gradients, a few filled shapes and mild noise: PDQ quality ~100."""
    return picture(seed, size, size, "waves")


def encode(image: Image.Image, fmt: str = "PNG", quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=quality) if fmt == "JPEG" else image.save(buffer, fmt)
    return buffer.getvalue()


def hashes_of(data: bytes) -> SampleHashes:
    """The hashes the crawl would store for `data` (the bytes are then dropped)."""
    h = hash_media(data)
    assert h.status == "hashed", h.error
    return SampleHashes(h.sha256, h.sha1, h.md5, h.pdq, h.pdq_quality)


def flip(pdq: str, bits: int, offset: int = 0) -> str:
    """`pdq` with `bits` distinct bits flipped: a hash exactly `bits` away."""
    value = int(pdq, 16)
    for k in range(offset, offset + bits):
        value ^= 1 << (k * 7 % 256)
    return f"{value:064x}"


def fake_hashes(pdq: str | None, quality: int | None = 100) -> SampleHashes:
    """Hashes of a media item that exists only as numbers (unique digests)."""
    n = next(_ids)
    digest = hashlib.sha256(f"synthetic-{n}".encode()).hexdigest()
    return SampleHashes(digest, digest[:40], digest[:32], pdq, quality)


def add_list(
    db: Database,
    name: str,
    rows: list[tuple[str, str, str | None]],
    *,
    kind: str = "known",
    threshold: int | None = None,
) -> None:
    parsed = [HashRow(t, h, c, f"ref-{name}-{i}") for i, (t, h, c) in enumerate(rows)]
    with db.session() as session:
        import_rows(session, name, parsed, kind=kind, pdq_threshold=threshold)


def known_sha256(session: Any, name: str, *bodies: bytes) -> HashList:
    """A `known` hash list holding the SHA-256 of each body (category A), in `session`."""
    listed = added(session, HashList(name=name, kind="known"))
    for body in bodies:
        digest = hashlib.sha256(body).hexdigest()
        session.add(HashEntry(list_id=listed.id, hash_type="sha256", category="A", hash=digest))
    return listed


def add_media(db: Database, hashes: SampleHashes, page_urls: list[str]) -> int:
    """A stored media item observed on each of `page_urls`; returns its id."""
    with db.session() as session:
        media = Media(
            sha256=hashes.sha256,
            sha1=hashes.sha1,
            md5=hashes.md5,
            pdq=hashes.pdq,
            pdq_quality=hashes.pdq_quality,
            bytes=1000,
            media_type="image",
        )
        added(session, media)
        for url in page_urls:
            page = session.execute(select(Page).where(Page.canonical_url == url)).scalar()
            if page is None:
                page = added(session, Page(url=url, canonical_url=url))
            session.add(
                Observation(
                    page_id=page.id,
                    media_id=media.id,
                    media_url=f"{url}/{media.id}.png",
                    status="hashed",
                )
            )
        return media.id


def page_id(db: Database, url: str) -> int:
    with db.read_session() as session:
        return session.execute(select(Page.id).where(Page.canonical_url == url)).scalar_one()


def crawl_step(db: Database, matcher: Matcher, media_id: int, url: str) -> None:
    """What the store pipeline does after storing one media item."""
    with db.session() as session:
        matcher.refresh_if_changed(session)
        matcher.after_media_stored(session, media_id, page_id(db, url))


def review_items(db: Database, *columns: Any) -> dict[str, tuple[Any, ...]]:
    """page URL -> the given ReviewItem columns, for every page that has a review item."""
    with db.read_session() as session:
        rows = session.execute(
            select(Page.canonical_url, *columns).join(ReviewItem, ReviewItem.page_id == Page.id)
        )
        return {url: tuple(rest) for url, *rest in rows}
