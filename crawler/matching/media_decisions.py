"""Decisions about media, and how far one decision reaches (docs/interface.md).

An analyst who confirms a page ticks the media that are illegal; their hashes (md5, sha1,
sha256, pdq, and vpdq where the media row has one) join the built-in list
`analyst-confirmed` (kind `known`, action `auto`, the decision's category, reference
`item:ID`). The decision then *spreads* in the same transaction: the new entries are
matched against the stored media only (exact hashes by indexed joins, PDQ by the matcher's
index over the new entries, no refetch), and the pages showing those media are re-assessed
by `crawler.matching.candidates`: exact copies are confirmed (`decided_via` `media:ITEM_ID`), near
copies become pending `confirm-match` items. A crawl later meets the same entries through
its matcher, so pages stored afterwards are decided the same way.

Media an analyst benign-lists on Reject join `analyst-benign` (kind `benign`). Both are
ordinary lists: exportable, importable elsewhere, and revertible by a lead (`revert`).

Two analysts deciding the same media at once insert the same (list, type, hash) rows:
ON CONFLICT DO NOTHING keeps one row each, the first decision's category and reference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from crawler.db.audit import Event, record
from crawler.db.models import HashEntry, HashList, Match, Media, Observation, ReviewItem
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.db.upsert import insert_for
from crawler.matching.candidates import (
    ANALYST_BENIGN,
    ANALYST_CONFIRMED,
    CandidateChanges,
    update_candidates,
)
from crawler.matching.matcher import (
    EXACT_TYPES,
    MIN_PDQ_QUALITY,
    MatchResult,
    record_matches,
)
from crawler.media.pdq_index import MAX_RADIUS, PDQIndex, hexes_to_array

log = logging.getLogger(__name__)

_PDQ_SCAN = 20_000
_CHUNK = 500
REVERT_BATCH = 500


@dataclass
class Spread:
    """What one media decision reached."""

    entries: list[int] = field(default_factory=list)
    media: set[int] = field(default_factory=set)
    pages: set[int] = field(default_factory=set)
    changes: CandidateChanges = field(default_factory=CandidateChanges)

    def as_details(self) -> dict[str, Any]:
        return {
            "entries": len(self.entries),
            "media": sorted(self.media)[:1000],
            "pages": len(self.pages),
            "auto_confirmed": self.changes.auto_confirmed,
            "opened": self.changes.opened,
        }


def ensure_list(session: Session, name: str, kind: str, action: str) -> tuple[int, str, int]:
    """(id, kind, pdq threshold) of built-in list `name`, created when missing."""
    stmt = insert_for(session, HashList.__table__).values(
        name=name, kind=kind, action=action, pdq_threshold=31, enabled=True, version=1,
        created_at=utcnow(), updated_at=utcnow(),
    )  # fmt: skip
    session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
    row = session.execute(
        select(HashList.id, HashList.kind, HashList.pdq_threshold).where(HashList.name == name)
    ).one()
    return int(row[0]), str(row[1]), int(row[2])


def media_hashes(session: Session, media_ids: Collection[int]) -> list[tuple[str, str]]:
    """(hash type, hash) of every hash of `media_ids`: md5, sha1, sha256, pdq, vpdq."""
    columns: list[Any] = [Media.md5, Media.sha1, Media.sha256, Media.pdq, Media.pdq_quality]
    vpdq = getattr(Media, "vpdq", None)  # video hashing (another change) may add it
    if vpdq is not None:
        columns.append(vpdq)
    found: list[tuple[str, str]] = []
    for row in session.execute(select(*columns).where(Media.id.in_(list(media_ids)))):
        found += [("md5", str(row[0])), ("sha1", str(row[1])), ("sha256", str(row[2]))]
        if row[3] and (row[4] or 0) >= MIN_PDQ_QUALITY:
            found.append(("pdq", str(row[3]).lower()))
        if vpdq is not None and row[5]:
            found.append(("vpdq", str(row[5])))
    return [(t, h.lower() if t != "vpdq" else h) for t, h in found if h]


def add_to_list(
    session: Session,
    name: str,
    kind: str,
    action: str,
    media_ids: Collection[int],
    category: str | None,
    reference: str,
) -> tuple[int, list[int]]:
    """Add every hash of `media_ids` to built-in list `name`; (list id, ids of new entries)."""
    list_id, _, _ = ensure_list(session, name, kind, action)
    values = [
        {
            "list_id": list_id,
            "hash_type": t,
            "hash": h,
            "category": category,
            "reference": reference,
        }
        for t, h in dict.fromkeys(media_hashes(session, media_ids))
    ]
    if not values:
        return list_id, []
    stmt = insert_for(session, HashEntry.__table__).on_conflict_do_nothing(
        index_elements=["list_id", "hash_type", "hash"]
    )
    new = [
        int(i) for i in session.execute(stmt.returning(HashEntry.__table__.c.id), values).scalars()
    ]
    if new:
        session.execute(
            update(HashList)
            .where(HashList.id == list_id)
            .values(version=HashList.version + 1, updated_at=utcnow())
        )
    return list_id, new


def benign_listed(session: Session, media_ids: Collection[int]) -> dict[int, str]:
    """media id -> name of an enabled benign list it matched (the decision is refused)."""
    if not media_ids:
        return {}
    rows = session.execute(
        select(Match.media_id, HashList.name)
        .join(HashList, HashList.id == Match.list_id)
        .join(HashEntry, HashEntry.id == Match.entry_id)
        .where(
            Match.media_id.in_(list(media_ids)),
            HashList.kind == "benign",
            HashList.enabled.is_(True),
            HashEntry.quarantined_at.is_(None),
        )
        .order_by(Match.media_id, HashList.name)
    )
    out: dict[int, str] = {}
    for media_id, name in rows:
        out.setdefault(int(media_id), str(name))
    return out


def _entry_results(session: Session, entry_ids: list[int]) -> dict[int, tuple[Any, ...]]:
    rows = session.execute(
        select(
            HashEntry.id, HashEntry.hash_type, HashEntry.hash, HashEntry.category,
            HashEntry.reference, HashList.id, HashList.name, HashList.kind,
            HashList.pdq_threshold,
        )
        .join(HashList, HashList.id == HashEntry.list_id)
        .where(HashEntry.id.in_(entry_ids), HashList.enabled.is_(True))
    )  # fmt: skip
    return {int(r[0]): tuple(r) for r in rows}


def _result(entry: tuple[Any, ...], kind: str, distance: int) -> MatchResult:
    _id, _t, _h, category, reference, list_id, name, list_kind, _th = entry
    return MatchResult(list_id, name, list_kind, int(_id), kind, distance, category, reference)


def _exact_hits(
    session: Session, entries: dict[int, tuple[Any, ...]]
) -> Iterator[tuple[int, MatchResult]]:
    for kind in EXACT_TYPES:
        ids = [i for i, e in entries.items() if e[1] == kind]
        if not ids:
            continue
        column = getattr(Media, kind)
        query = (
            select(Media.id, HashEntry.id)
            .join(HashEntry, and_(HashEntry.hash_type == kind, HashEntry.hash == column))
            .where(HashEntry.id.in_(ids))
        )
        for media_id, entry_id in session.execute(query):
            yield int(media_id), _result(entries[int(entry_id)], kind, 0)


def _pdq_hits(
    session: Session, entries: dict[int, tuple[Any, ...]]
) -> Iterator[tuple[int, MatchResult]]:
    """Stored media within each new PDQ entry's list threshold: one small index of the new
    entries, the stored PDQ hashes streamed through it in keyset batches (as `rematch`)."""
    pdq = [(i, e) for i, e in entries.items() if e[1] == "pdq"]
    if not pdq:
        return
    ids = np.asarray([i for i, _ in pdq], dtype=np.int64)
    limits = {i: min(int(e[8]), MAX_RADIUS) for i, e in pdq}
    radius = max(limits.values())
    index = PDQIndex(hexes_to_array([str(e[2]) for _, e in pdq]), ids, max_radius=radius)
    after = 0
    base = select(Media.id, Media.pdq).where(
        Media.pdq.is_not(None), Media.pdq_quality >= MIN_PDQ_QUALITY
    )
    while True:
        batch = session.execute(
            base.where(Media.id > after).order_by(Media.id).limit(_PDQ_SCAN)
        ).all()
        if not batch:
            return
        after = int(batch[-1][0])
        qidx, hit, dists = index.query_batch_arrays(
            hexes_to_array([str(h).lower() for _, h in batch]), radius
        )
        for q, e, d in zip(qidx.tolist(), hit.tolist(), dists.tolist(), strict=True):
            if d <= limits[e]:
                yield int(batch[q][0]), _result(entries[e], "pdq", int(d))


def spread(session: Session, entry_ids: list[int], categories: tuple[str, ...]) -> Spread:
    """Match `entry_ids` against every stored media and re-assess the pages showing them."""
    out = Spread(entries=list(entry_ids))
    if not entry_ids:
        return out
    entries = _entry_results(session, entry_ids)
    hits = list(_exact_hits(session, entries)) + list(_pdq_hits(session, entries))
    record_matches(session, hits)
    out.media = {m for m, _ in hits}
    for start in range(0, len(out.media), _CHUNK):
        chunk = sorted(out.media)[start : start + _CHUNK]
        query = select(Observation.page_id).where(Observation.media_id.in_(chunk)).distinct()
        out.pages.update(int(p) for p in session.execute(query).scalars())
    out.changes = update_candidates(session, out.pages, categories)
    return out


def confirm_media(
    session: Session,
    media_ids: Collection[int],
    category: str | None,
    item_id: int,
    categories: tuple[str, ...],
    actor: str,
) -> Spread:
    """An analyst's confirmation of `media_ids` on item `item_id`, spread at once."""
    if not media_ids:
        return Spread()
    list_id, new = add_to_list(
        session, ANALYST_CONFIRMED, "known", "auto", media_ids, category, f"item:{item_id}"
    )
    result = spread(session, new, categories)
    details = {"list": ANALYST_CONFIRMED, "category": category, **result.as_details()}
    record(session, Event(actor, "media.confirm", "review_item", item_id, details))
    return result


def benign_media(
    session: Session,
    media_ids: Collection[int],
    item_id: int,
    categories: tuple[str, ...],
    actor: str,
    list_name: str = ANALYST_BENIGN,
) -> Spread:
    """An analyst's benign-listing of `media_ids` on item `item_id` (on Reject, when asked)."""
    if not media_ids:
        return Spread()
    _, new = add_to_list(session, list_name, "benign", "review", media_ids, None, f"item:{item_id}")
    result = spread(session, new, categories)
    details = {"list": list_name, **result.as_details()}
    record(session, Event(actor, "media.benign", "review_item", item_id, details))
    return result


# -- a lead's undo -----------------------------------------------------------------------


@dataclass
class RevertSummary:
    target: str
    reverted: int = 0
    batches: int = 0
    entries_removed: int = 0
    changes: CandidateChanges = field(default_factory=CandidateChanges)

    def line(self) -> str:
        c = self.changes
        return (
            f"{self.target}: {self.reverted} pages reopened in {self.batches} batches, "
            f"{self.entries_removed} entries removed; candidates: {c.suppressed} closed, "
            f"{c.reopened} reopened"
        )


def _settled_by(target: str) -> Any:
    if target == f"list:{ANALYST_CONFIRMED}":
        return ReviewItem.decided_via.like("media:%")
    return ReviewItem.decided_via == target


def revert(
    db: Database,
    *,
    list_name: str | None = None,
    item_id: int | None = None,
    categories: tuple[str, ...] = ("A", "B", "C"),
    actor: str = "cli",
    batch: int = REVERT_BATCH,
    progress: Callable[[int], None] | None = None,
) -> RevertSummary:
    """Undo every page one list (`list_name`) or one media decision (`item_id`) settled.

    First the source stops acting: a list is set back to `review`, a decision's entries
    are removed from `analyst-confirmed`. Then the pages it confirmed with no person go
    back to `pending` in batches, each batch one transaction with its own audit event, so
    an interrupted revert is simply run again (it finds what is left)."""
    if (list_name is None) == (item_id is None):
        raise ValueError("revert one list or one decision")
    target = f"media:{item_id}" if item_id is not None else f"list:{list_name}"
    summary = RevertSummary(target)
    with db.session() as session:
        touched = _stop_source(session, list_name, item_id, actor, summary)
    while True:
        with db.session() as session:
            rows = session.execute(
                select(ReviewItem.id, ReviewItem.page_id)
                .where(
                    _settled_by(target),
                    ReviewItem.status == "confirmed",
                    ReviewItem.decided_by.is_(None),
                )
                .order_by(ReviewItem.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            ids = [int(r[0]) for r in rows]
            session.execute(
                update(ReviewItem)
                .where(ReviewItem.id.in_(ids))
                .values(
                    status="pending", decided_via=None, category=None, decided_at=None,
                    version=ReviewItem.version + 1, updated_at=utcnow(),
                )
            )  # fmt: skip
            pages = [int(r[1]) for r in rows]
            summary.changes.add(update_candidates(session, pages, categories))
            details: dict[str, Any] = {"target": target, "items": ids, "pages": pages}
            record(session, Event(actor, "review.revert", "review_item", None, details))
        summary.reverted += len(ids)
        summary.batches += 1
        if progress is not None:
            progress(summary.reverted)
    if touched:
        with db.session() as session:
            summary.changes.add(update_candidates(session, touched, categories))
    with db.session() as session:
        done = {"target": target, "reverted": summary.reverted, "batches": summary.batches}
        record(session, Event(actor, "review.revert_done", None, None, done))
    return summary


def _stop_source(
    session: Session,
    list_name: str | None,
    item_id: int | None,
    actor: str,
    summary: RevertSummary,
) -> set[int]:
    """Stop the list or decision acting; the pages whose evidence that changes."""
    from crawler.errors import UsageError

    if list_name is not None:
        found = session.execute(select(HashList).where(HashList.name == list_name)).scalar()
        if found is None:
            raise UsageError(f"no hash list named {list_name!r} (see `takedown hashlist list`)")
        if found.action != "review":
            found.action, found.version = "review", found.version + 1
            why = {"action": "review", "reason": "revert"}
            record(session, Event(actor, "hashlist.set", "hash_list", found.id, why))
        return set()
    entries = (
        select(HashEntry.id)
        .join(HashList, HashList.id == HashEntry.list_id)
        .where(HashList.name == ANALYST_CONFIRMED, HashEntry.reference == f"item:{item_id}")
    )
    ids = [int(i) for i in session.execute(entries).scalars()]
    pages = {
        int(p)
        for p in session.execute(
            select(Observation.page_id)
            .join(Match, Match.media_id == Observation.media_id)
            .where(Match.entry_id.in_(ids))
            .distinct()
        ).scalars()
    }
    if ids:
        session.execute(delete(Match).where(Match.entry_id.in_(ids)))
        session.execute(delete(HashEntry).where(HashEntry.id.in_(ids)))
        session.execute(
            update(HashList)
            .where(HashList.name == ANALYST_CONFIRMED)
            .values(version=HashList.version + 1, updated_at=utcnow())
        )
    summary.entries_removed = len(ids)
    details: dict[str, Any] = {"entries_removed": len(ids), "pages": len(pages)}
    record(session, Event(actor, "media.revert", "review_item", item_id, details))
    return pages


def count_settled(session: Session) -> dict[str, int]:
    """Pages confirmed without a person, by what settled them (for leads)."""
    rows = session.execute(
        select(ReviewItem.decided_via, func.count())
        .where(ReviewItem.status == "confirmed", ReviewItem.decided_by.is_(None))
        .group_by(ReviewItem.decided_via)
    )
    return {str(v): int(n) for v, n in rows if v}
