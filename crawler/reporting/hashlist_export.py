"""Confirmed media as a hash list, in the import format (`type,hash,category,reference`).

"Confirmed media" are the media observed on review items an analyst confirmed (status
`confirmed` or `removed`). Each gives a row per hash it has: sha256, sha1, md5 and, when
computed, pdq (images) or vpdq (videos: the frame hashes, ThreatExchange's serialisation). The category is the most severe among the items showing it (the order of
`TAKEDOWN_CATEGORIES`, first = most severe); the reference is `item-<lowest item id>` so
the sharing hotline can trace a row back. Hashes only: no URLs, no media bytes. The file
imports with `takedown hashlist import` unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.db.models import Media, Observation, ReviewItem
from crawler.db.session import Database
from crawler.media.hashlists import HEADER
from crawler.reporting.exports import ExportSummary, snapshot, write_records

CONFIRMED = ("confirmed", "removed")
FIELDS = HEADER


def _severity(categories: Sequence[str]) -> dict[str | None, int]:
    ranks: dict[str | None, int] = {c: i for i, c in enumerate(categories)}
    ranks[None] = len(categories) + 1
    return ranks


def confirmed_media(
    session: Session, categories: Sequence[str]
) -> list[tuple[Media, str | None, int]]:
    """(media, most severe category, lowest item id), ordered by SHA-256."""
    rows = session.execute(
        select(Media, ReviewItem.category, ReviewItem.id)
        .join(Observation, Observation.media_id == Media.id)
        .join(ReviewItem, ReviewItem.page_id == Observation.page_id)
        .where(ReviewItem.status.in_(CONFIRMED))
    )
    rank = _severity(categories)
    best: dict[int, tuple[Media, str | None, int]] = {}
    for media, category, item_id in rows:
        seen = best.get(media.id)
        cat = seen[1] if seen and rank.get(seen[1], 99) <= rank.get(category, 99) else category
        best[media.id] = (media, cat, min(item_id, seen[2]) if seen else item_id)
    return sorted(best.values(), key=lambda row: row[0].sha256)


def hashlist_records(session: Session, categories: Sequence[str]) -> Iterator[dict[str, Any]]:
    for media, category, item_id in confirmed_media(session, categories):
        for kind in ("sha256", "sha1", "md5", "pdq", "vpdq"):  # vpdq: a video's frames
            value = getattr(media, kind)
            if value:
                yield {
                    "type": kind,
                    "hash": value.lower(),
                    "category": category,
                    "reference": f"item-{item_id}",
                }


def export_hashlist(db: Database, handle: IO[str], categories: Sequence[str]) -> ExportSummary:
    """Write the hash list from one snapshot; CSV cells are formula-safe (E-01)."""
    with snapshot(db) as session:
        rows, digest = write_records(hashlist_records(session, categories), FIELDS, "csv", handle)
    return ExportSummary("hashlist", "csv", rows, digest)
