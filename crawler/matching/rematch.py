"""`takedown rematch`: every stored media hash against the lists as they are now.

No network: only the `media` table is read. Exact matches come from SQL joins of `media`
with `hash_entries` on type and hash (both indexed); near matches from the matcher's PDQ
index, queried in batches over every media with PDQ quality >= 50. Matches are inserted
with ON CONFLICT DO NOTHING, so a second run inserts nothing (videos: their stored frame
hashes, `media.vpdq`, against pdq and vpdq entries, `crawler.matching.matcher`); then the flood guard counts
distinct media per entry, and every page with evidence or an open item is re-assessed
(`crawler.matching.candidates`), which opens new candidates and closes (suppresses) pending ones
whose matches are now benign, disabled, quarantined or out of threshold.

Each batch commits on its own so a long rematch never holds the SQLite write lock for
minutes; an interrupted run is simply run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from crawler.db.audit import Event, record
from crawler.db.models import HashEntry, HashList, Match, Media, Observation
from crawler.db.session import Database
from crawler.matching.candidates import CandidateChanges, open_pages, update_candidates
from crawler.matching.matcher import (
    EXACT_TYPES,
    MIN_PDQ_QUALITY,
    Matcher,
    MatcherConfig,
    MatchResult,
    Quarantine,
    archive_matches,
    quarantine_entry,
    record_matches,
)

PDQ_BATCH = 20_000
# Called with (phase, done, total) as work advances; total 0 when unknown.
Progress = Callable[[str, int, int], None]


@dataclass
class RematchSummary:
    lists: int = 0
    entries: int = 0
    media: int = 0
    pdq_media: int = 0
    exact_matches: int = 0
    pdq_matches: int = 0
    new_matches: int = 0
    candidates: CandidateChanges = field(default_factory=CandidateChanges)
    quarantines: list[Quarantine] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        c = self.candidates
        return [
            f"lists: {self.lists} enabled, {self.entries} entries",
            f"media: {self.media} scanned, {self.pdq_media} with usable PDQ (quality >= "
            f"{MIN_PDQ_QUALITY})",
            f"matches: {self.exact_matches} exact, {self.pdq_matches} PDQ, {self.new_matches} new",
            f"candidates: {c.opened} opened, {c.reopened} reopened, {c.suppressed} closed "
            f"(suppressed), {c.updated} re-ranked, {c.auto_confirmed} confirmed by auto lists",
            *(q.line() for q in self.quarantines),
            f"done in {self.seconds:.1f} s",
        ]


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    return None


def rematch(
    db: Database, config: MatcherConfig | None = None, progress: Progress | None = None
) -> RematchSummary:
    """Match all stored media against the enabled lists; idempotent."""
    report = progress or _no_progress
    started = time.monotonic()
    summary = RematchSummary()
    with db.read_session() as session:
        matcher = Matcher.load(session, config)
        summary.media = int(session.execute(select(func.count()).select_from(Media)).scalar_one())
    summary.lists, summary.entries = len(matcher.snapshot.lists), matcher.snapshot.size
    _exact_phase(db, matcher, summary, report)
    _pdq_phase(db, matcher, summary, report)
    _video_phase(db, matcher, summary, report)
    with db.session() as session:
        summary.new_matches += archive_matches(session)
    with db.session() as session:
        summary.quarantines = flood_guard(session, matcher.config.flood_limit)
        report("candidates", 0, 0)
        pages = pages_with_matches(session) | open_pages(session)
        summary.candidates = update_candidates(session, pages, matcher.config.categories)
        report("candidates", len(pages), len(pages))
        summary.seconds = time.monotonic() - started
        _audit(session, summary)
    return summary


def _exact_phase(db: Database, matcher: Matcher, summary: RematchSummary, report: Progress) -> None:
    for done, kind in enumerate(EXACT_TYPES):
        report("exact", done, len(EXACT_TYPES))
        with db.session() as session:
            rows = list(exact_pairs(session, matcher, kind))
            summary.exact_matches += len(rows)
            summary.new_matches += len(record_matches(session, rows))
    report("exact", len(EXACT_TYPES), len(EXACT_TYPES))


def exact_pairs(session: Session, matcher: Matcher, kind: str) -> Iterator[tuple[int, MatchResult]]:
    """(media id, result) for every media whose `kind` hash is an entry of an enabled list."""
    snap = matcher.snapshot
    if not snap.lists:
        return
    column = getattr(Media, kind)
    query = (
        select(Media.id, HashEntry.id)
        .join(HashEntry, and_(HashEntry.hash_type == kind, HashEntry.hash == column))
        .where(HashEntry.list_id.in_(list(snap.lists)), HashEntry.quarantined_at.is_(None))
        .execution_options(yield_per=10_000)
    )
    for media_id, entry_id in session.execute(query):
        if entry_id in snap.entries:  # loaded in another transaction: skip newer entries
            yield int(media_id), matcher.result_for(int(entry_id), kind, 0)


def _pdq_phase(db: Database, matcher: Matcher, summary: RematchSummary, report: Progress) -> None:
    if matcher.snapshot.pdq_index is None:
        return
    with db.read_session() as session:
        total = int(
            session.execute(select(func.count()).select_from(_pdq_media().subquery())).scalar_one()
        )
    summary.pdq_media = total
    done, after = 0, 0
    while True:
        with db.session() as session:
            batch = _pdq_batch(session, after)
            if not batch:
                break
            rows = _pdq_rows(matcher, batch)
            summary.pdq_matches += len(rows)
            summary.new_matches += len(record_matches(session, rows))
        done, after = done + len(batch), batch[-1][0]
        report("pdq", done, total)


VIDEO_BATCH = 500


def _video_phase(db: Database, matcher: Matcher, summary: RematchSummary, report: Progress) -> None:
    """Videos' stored frame hashes (`media.vpdq`) against pdq entries and vpdq entries."""
    if matcher.snapshot.pdq_index is None:
        return
    done, after = 0, 0
    while True:
        with db.session() as session:
            query = (
                select(Media.id, Media.vpdq)
                .where(Media.vpdq.is_not(None), Media.id > after)
                .order_by(Media.id)
                .limit(VIDEO_BATCH)
            )
            batch = [(int(i), str(v)) for i, v in session.execute(query)]
            if not batch:
                break
            rows = [(i, r) for i, v in batch for r in matcher.video_results(v)]
            summary.pdq_matches += len(rows)
            summary.new_matches += len(record_matches(session, rows))
        done, after = done + len(batch), batch[-1][0]
        report("video", done, 0)


def _pdq_media():  # type: ignore[no-untyped-def]
    return select(Media.id, Media.pdq).where(
        Media.pdq.is_not(None), Media.pdq_quality >= MIN_PDQ_QUALITY
    )


def _pdq_batch(session: Session, after: int) -> list[tuple[int, str]]:
    # Keyset pagination on the primary key: stable while crawls add media meanwhile.
    query = _pdq_media().where(Media.id > after).order_by(Media.id).limit(PDQ_BATCH)
    return [(int(i), str(h).lower()) for i, h in session.execute(query)]


def _pdq_rows(matcher: Matcher, batch: list[tuple[int, str]]) -> list[tuple[int, MatchResult]]:
    qidx, ids, dists = matcher.snapshot.pdq_search([h for _, h in batch])
    return [
        (batch[int(q)][0], matcher.result_for(int(e), "pdq", int(d)))
        for q, e, d in zip(qidx, ids, dists, strict=True)
        if e >= 0  # negative ids are vpdq frame slots: images never match those
    ]


def flood_guard(session: Session, limit: int) -> list[Quarantine]:
    """Quarantine every known entry matching more than `limit` distinct media (0: off)."""
    if limit <= 0:
        return []
    query = (
        select(Match.entry_id, func.count())
        .join(HashEntry, HashEntry.id == Match.entry_id)
        .join(HashList, HashList.id == HashEntry.list_id)
        .where(HashList.kind == "known", HashEntry.quarantined_at.is_(None))
        .group_by(Match.entry_id)
        .having(func.count() > limit)
    )
    found = [quarantine_entry(session, int(e), int(n)) for e, n in session.execute(query).all()]
    return [q for q in found if q is not None]


def pages_with_matches(session: Session) -> set[int]:
    query = select(Observation.page_id).join(Match, Match.media_id == Observation.media_id)
    return {int(p) for p in session.execute(query.distinct()).scalars()}


def _audit(session: Session, summary: RematchSummary) -> None:
    c = summary.candidates
    details = {
        "media": summary.media,
        "new_matches": summary.new_matches,
        "opened": c.opened,
        "reopened": c.reopened,
        "suppressed": c.suppressed,
        "auto_confirmed": c.auto_confirmed,
        "quarantined": [q.entry_id for q in summary.quarantines],
    }
    record(session, Event("cli", "rematch", None, None, details))
