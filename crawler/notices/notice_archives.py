"""The archives a notice's URLs hold, with how many matched members each.

An archive (ZIP, TAR, tar.gz; `crawler.media.archive`) found on a noticed page is named in
the notice by its own URL, with the number of its members (nested ones included) that have
an active known match (`crawler.matching.match_state`: a benign list suppresses a member's match).
Read at export time from `archive_members` and `matches`, so it is only ever hashes and
counts, never member bytes or names.

`notices export --format json` URL records gain `archive_members_matched` (the sum over
the page's archives) and `archives` (`[{"url", "members_matched"}]`, by URL); the text and
HTML of the e-mail name each archive with its count.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from crawler.db.models import (
    ArchiveMember,
    HashEntry,
    HashList,
    Match,
    Media,
    NoticeUrl,
    Observation,
    ReviewItem,
)
from crawler.matching.match_state import ACTIVE, active_clause, match_states

_CHUNK = 500


@dataclass(frozen=True)
class ArchiveCount:
    url: str
    members_matched: int


def _chunks(values: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _matched_members(session: Session, media_ids: set[int]) -> set[int]:
    """Those of `media_ids` with at least one active, unsuppressed known match."""
    states: dict[int, list[tuple[str, object]]] = {}
    for chunk in _chunks(sorted(media_ids)):
        rows = session.execute(
            select(Match.media_id, HashList.kind, active_clause(Match, HashEntry, HashList))
            .join(HashEntry, HashEntry.id == Match.entry_id)
            .join(HashList, HashList.id == Match.list_id)
            .where(Match.media_id.in_(chunk))
        )
        for media_id, kind, active in rows:
            states.setdefault(int(media_id), []).append((str(kind), active))
    return {mid for mid, pairs in states.items() if ACTIVE in match_states(pairs)}


def archive_counts(session: Session, item_ids: Iterable[int]) -> dict[int, list[ArchiveCount]]:
    """For each review item: the archives on its page holding matched members, by URL."""
    found: dict[int, dict[str, set[int]]] = {}  # item -> archive URL -> matched member rows
    held: list[tuple[int, str, int, int]] = []  # (item, archive URL, member row, member media)
    for chunk in _chunks(sorted(set(item_ids))):
        rows = session.execute(
            select(ReviewItem.id, Observation.media_url, ArchiveMember.id, ArchiveMember.media_id)
            .join(Observation, Observation.page_id == ReviewItem.page_id)
            .join(Media, Media.id == Observation.media_id)
            .join(ArchiveMember, ArchiveMember.archive_id == Media.id)
            .where(
                ReviewItem.id.in_(chunk),
                Media.media_type == "archive",
                ArchiveMember.media_id.is_not(None),
            )
        )
        held += [(int(i), str(url), int(row), int(media or 0)) for i, url, row, media in rows]
    matched = _matched_members(session, {media for *_, media in held})
    for item_id, url, row, media in held:
        rows_of = found.setdefault(item_id, {}).setdefault(url, set())
        if media in matched:
            rows_of.add(row)
    return {
        item_id: [ArchiveCount(url, len(rows)) for url, rows in sorted(urls.items()) if rows]
        for item_id, urls in found.items()
    }


def counts_for(urls: Sequence[NoticeUrl]) -> dict[int, list[ArchiveCount]]:
    """`archive_counts` for a notice's URLs, read through the session they were loaded in
    (none: no archives are named)."""
    session = object_session(urls[0]) if urls else None
    if session is None:
        return {}
    return archive_counts(session, (u.item_id for u in urls))
