"""Matching: stored media hashes against the enabled hash lists.

A `Matcher` is loaded once (per crawl, per `rematch`) from the enabled lists: one dict per
exact hash type (lower-case hex -> entry ids) and one PDQ index over every enabled list's
PDQ entries. The index is queried at the largest threshold of any list; each hit is then
kept only if it is within *its own* list's threshold, so a list at 10 and a list at 31 share
one index. Quarantined entries (flood guard) are left out.

`refresh_if_changed` compares the lists' versions (every import, setting change, enable,
disable and quarantine bumps one) and, when they differ, builds a complete new snapshot
before swapping the single reference: a match running meanwhile sees the old lists or the
new ones, never half of each (docs/hazards.md M-12).

Media whose PDQ quality is below 50 are never PDQ-matched; their exact hashes still are.

Videos (docs/interface.md): the frames of every listed `vpdq` entry (quality >= 50,
duplicates removed) sit in the same PDQ index as the `pdq` entries, under negative ids
(frame slots), so one lookup serves images and frames. A crawled video's frames are looked
up once: a frame within a `pdq` entry's threshold is a `pdq` match with that frame's
`timestamp`; a `vpdq` entry matches when at least its list's `vpdq_percent` of the video's
frames are within the threshold of one of its frames (`match_percent`). Images never
match vpdq frames.

Flood guard: an entry of a *known* list that has matched more than `flood_limit` distinct
media, counted over every crawl and rematch so far (not per run: a hash that matches 500
different files is a bad entry whichever run found them, and a per-run count would let it
flood the queue again on each new crawl), is quarantined: `quarantined_at` is set, its
list's version bumped, an audit event written, and its matches stop producing candidates.
Benign entries are never quarantined: matching many media is what a benign list is for.
`TAKEDOWN_FLOOD_LIMIT=0` turns the guard off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Table, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from crawler.config import Settings
from crawler.db.audit import Event, record
from crawler.db.models import HashEntry, HashList, Match, Media, Observation
from crawler.db.prepared import Insert, prepared
from crawler.db.types import utcnow
from crawler.matching.candidates import CandidateChanges, update_candidates
from crawler.media.pdq_index import MAX_RADIUS, PDQIndex, hexes_to_array
from crawler.media.video import Frame, parse_vpdq, usable_frames

log = logging.getLogger(__name__)

# Meta's PDQ gate: below this quality a hash describes too little structure to match on.
MIN_PDQ_QUALITY = 50
EXACT_TYPES = ("sha256", "sha1", "md5")
_INSERT_BATCH = 5_000
_READ_CHUNK = 500  # ids per IN (...) read: well under SQLite's parameter limit

I64 = NDArray[np.int64]


class HasHashes(Protocol):
    """What matching reads from a media item (a `Media` row, or any object with these fields)."""

    @property
    def sha256(self) -> str: ...
    @property
    def sha1(self) -> str: ...
    @property
    def md5(self) -> str: ...
    @property
    def pdq(self) -> str | None: ...
    @property
    def pdq_quality(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class ListInfo:
    id: int
    name: str
    kind: str
    pdq_threshold: int
    version: int
    vpdq_percent: int = 80


@dataclass(frozen=True, slots=True)
class EntryInfo:
    list_id: int
    category: str | None
    reference: str | None


@dataclass(frozen=True, slots=True)
class MatchResult:
    list_id: int
    list_name: str
    list_kind: str
    entry_id: int
    match_type: str
    distance: int
    category: str | None
    reference: str | None
    timestamp: float | None = None  # a video frame's match: seconds into the video
    match_percent: float | None = None  # a vpdq match: share of the video's frames


@dataclass(frozen=True, slots=True)
class Quarantine:
    """A flood-guard quarantine, for the crawl or rematch summary."""

    entry_id: int
    list_name: str
    hash_type: str
    media: int

    def line(self) -> str:
        return (
            f"flood guard: entry {self.entry_id} ({self.hash_type}) of list {self.list_name!r} "
            f"matched {self.media} distinct media and was quarantined"
        )


@dataclass(frozen=True)
class MatcherConfig:
    """The settings the matcher reads, read once."""

    flood_limit: int = 500
    categories: tuple[str, ...] = ("A", "B", "C")

    @classmethod
    def from_settings(cls, settings: Settings) -> MatcherConfig:
        return cls(flood_limit=settings.flood_limit, categories=settings.categories)


def list_signature(session: Session) -> tuple[tuple[int, int, bool], ...]:
    """(id, version, enabled) of every list: changes whenever a reload is due."""
    rows = session.execute(
        select(HashList.id, HashList.version, HashList.enabled).order_by(HashList.id)
    )
    return tuple((int(i), int(v), bool(e)) for i, v, e in rows)


@dataclass
class Snapshot:
    """Everything loaded from the lists at one moment; never mutated after `load`."""

    signature: tuple[tuple[int, int, bool], ...]
    lists: dict[int, ListInfo]
    entries: dict[int, EntryInfo]
    exact: dict[str, dict[str, tuple[int, ...]]]
    pdq_index: PDQIndex | None = None
    # PDQ entry ids, sorted, with each one's list threshold: hits are filtered vectorised.
    pdq_ids: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    pdq_thresholds: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    radius: int = 0
    # Frame slot k (index id -k-1) belongs to vpdq entry frame_entries[k].
    frame_entries: list[int] = field(default_factory=list)

    @classmethod
    def load(cls, session: Session) -> Snapshot:
        signature = list_signature(session)
        lists = _enabled_lists(session)
        snap = cls(signature, lists, {}, {t: {} for t in EXACT_TYPES})
        pdq_hashes: list[str] = []
        pdq_ids: list[int] = []
        for row in _entry_rows(session, lists):
            entry_id, list_id, hash_type, value, category, reference, vpdq = row
            snap.entries[entry_id] = EntryInfo(list_id, category, reference)
            if hash_type == "pdq":
                pdq_hashes.append(value)
                pdq_ids.append(entry_id)
            elif hash_type == "vpdq":
                for frame in _listed_frames(vpdq):
                    snap.frame_entries.append(entry_id)
                    pdq_hashes.append(frame.pdq)
                    pdq_ids.append(-len(snap.frame_entries))
            else:
                bucket = snap.exact[hash_type]
                bucket[value] = (*bucket.get(value, ()), entry_id)
        snap._build_pdq(pdq_hashes, pdq_ids)
        return snap

    def _build_pdq(self, hashes: list[str], ids: list[int]) -> None:
        if not hashes:
            return
        # Thresholds above the index's limit are clamped: beyond 64 bits PDQ says nothing.
        self.radius = min(MAX_RADIUS, max(x.pdq_threshold for x in self.lists.values()))
        id_array = np.asarray(ids, dtype=np.int64)
        order = np.argsort(id_array)
        self.pdq_ids = id_array[order]
        limits = [self.lists[self.entries[self.entry_of(i)].list_id].pdq_threshold for i in ids]
        self.pdq_thresholds = np.asarray(limits, dtype=np.int64)[order]
        self.pdq_index = PDQIndex(hexes_to_array(hashes), id_array, max_radius=self.radius)

    def pdq_search(self, hashes: list[str]) -> tuple[I64, I64, I64]:
        """(query row, entry id, distance) within each entry's own list threshold."""
        if self.pdq_index is None or not hashes:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        qidx, ids, dists = self.pdq_index.query_batch_arrays(hexes_to_array(hashes), self.radius)
        limits = self.pdq_thresholds[np.searchsorted(self.pdq_ids, ids)]
        keep = dists <= limits
        return qidx[keep], ids[keep], dists[keep]

    def entry_of(self, index_id: int) -> int:
        """The entry an index id stands for: itself, or the vpdq entry of a frame slot."""
        return index_id if index_id >= 0 else self.frame_entries[-index_id - 1]

    @property
    def size(self) -> int:
        return len(self.entries)


def _listed_frames(vpdq: str | None) -> list[Frame]:
    try:
        return usable_frames(parse_vpdq(vpdq or ""))
    except ValueError:  # validated on import; a hand-edited row must not stop the crawl
        log.warning("a vpdq entry could not be read and is left out")
        return []


def _enabled_lists(session: Session) -> dict[int, ListInfo]:
    rows = session.execute(select(HashList).where(HashList.enabled.is_(True))).scalars()
    return {
        x.id: ListInfo(x.id, x.name, x.kind, x.pdq_threshold, x.version, x.vpdq_percent)
        for x in rows
    }


def _entry_rows(
    session: Session, lists: dict[int, ListInfo]
) -> Iterable[tuple[int, int, str, str, str | None, str | None, str | None]]:
    if not lists:
        return []
    # Core columns, not ORM attributes: skips ORM row loading, half the load time.
    c = HashEntry.__table__.c
    query = (
        select(c.id, c.list_id, c.hash_type, c.hash, c.category, c.reference, c.vpdq)
        .where(c.list_id.in_(list(lists)), c.quarantined_at.is_(None))
        .execution_options(yield_per=50_000)
    )
    return ((int(a), int(b), t, h, g, r, v) for a, b, t, h, g, r, v in session.execute(query))


def pdq_usable(media: HasHashes) -> bool:
    """PDQ below quality 50 describes too little structure to be matched on."""
    return bool(media.pdq) and (media.pdq_quality or 0) >= MIN_PDQ_QUALITY


def _sort_key(result: MatchResult) -> tuple[int, int, int]:
    return (result.match_type in ("pdq", "vpdq"), result.distance, result.entry_id)


class Matcher:
    """Matches media against one snapshot of the lists; swaps in a new one on change.

    Safe to share between the store pipeline's worker threads: `match` reads `self._snap`
    once per call, so a concurrent swap is seen whole or not at all; reloads and the flood
    counters are serialised by a lock.

    The crawl wires `after_media_stored` into `crawler.engine.storage.Storage`; it re-checks the
    list versions at most every `refresh_interval` seconds (one small query).
    """

    refresh_interval = 30.0

    def __init__(self, snapshot: Snapshot, config: MatcherConfig | None = None) -> None:
        self._snap = snapshot
        self.config = config or MatcherConfig()
        self._media_counts: Counter[int] = Counter()  # entry -> distinct media matched
        self._quarantined: set[int] = set()
        self._pages_to_recheck: set[int] = set()
        self.quarantines: list[Quarantine] = []
        self._lock = threading.Lock()
        self._checked_at = time.monotonic()

    @classmethod
    def load(cls, session: Session, config: MatcherConfig | None = None) -> Matcher:
        return cls(Snapshot.load(session), config)

    @property
    def snapshot(self) -> Snapshot:
        return self._snap

    def refresh_if_changed(self, session: Session) -> bool:
        """Reload when any list changed; the new snapshot is complete before the swap."""
        with self._lock:
            self._checked_at = time.monotonic()
            if list_signature(session) == self._snap.signature:
                return False
            fresh = Snapshot.load(session)
            self._snap = fresh
            self._quarantined.clear()  # the fresh snapshot already leaves them out
        log.info("hash lists reloaded: %d lists, %d entries", len(fresh.lists), fresh.size)
        return True

    # -- matching ------------------------------------------------------------------------

    def match(self, media: HasHashes) -> list[MatchResult]:
        """Every entry `media` matches, exact first, then nearest PDQ first."""
        snap = self._snap
        found = [
            self._result(snap, entry_id, kind, 0)
            for kind in EXACT_TYPES
            for entry_id in snap.exact[kind].get((getattr(media, kind) or "").lower(), ())
            if entry_id not in self._quarantined
        ]
        if pdq_usable(media):
            _, ids, dists = snap.pdq_search([str(media.pdq).lower()])
            found += [
                self._result(snap, int(i), "pdq", int(d))
                for i, d in zip(ids, dists, strict=True)
                if int(i) >= 0 and int(i) not in self._quarantined
            ]
        found += self.video_results(getattr(media, "vpdq", None))
        return sorted(found, key=_sort_key)

    def match_batch(self, media: Sequence[HasHashes]) -> list[list[MatchResult]]:
        """`match` of each of *media*, with one PDQ index query for all of them."""
        snap = self._snap
        quarantined = self._quarantined
        found = [
            [
                self._result(snap, entry_id, kind, 0)
                for kind in EXACT_TYPES
                for entry_id in snap.exact[kind].get((getattr(m, kind) or "").lower(), ())
                if entry_id not in quarantined
            ]
            for m in media
        ]
        usable = [n for n, m in enumerate(media) if pdq_usable(m)]
        rows, ids, dists = snap.pdq_search([str(media[n].pdq).lower() for n in usable])
        for row, i, d in zip(rows.tolist(), ids.tolist(), dists.tolist(), strict=True):
            if i >= 0 and i not in quarantined:
                found[usable[row]].append(self._result(snap, i, "pdq", d))
        for n, m in enumerate(media):
            found[n] += self.video_results(getattr(m, "vpdq", None))
        return [sorted(results, key=_sort_key) for results in found]

    def video_results(self, vpdq: str | None) -> list[MatchResult]:
        """A video's frame matches (`pdq`, with `timestamp`) and `vpdq` matches (with
        `match_percent`), from one index lookup of its usable frames."""
        if not vpdq:
            return []
        snap = self._snap
        try:
            frames = usable_frames(parse_vpdq(vpdq))
        except ValueError:
            return []
        rows, ids, dists = snap.pdq_search([f.pdq for f in frames])
        best: dict[int, tuple[int, float]] = {}  # pdq entry -> (distance, timestamp)
        hits: dict[int, dict[int, int]] = {}  # vpdq entry -> {frame row: distance}
        for row, i, d in zip(rows.tolist(), ids.tolist(), dists.tolist(), strict=True):
            entry = snap.entry_of(i)
            if entry in self._quarantined:
                continue
            if i >= 0:
                found = (d, frames[row].timestamp)
                best[entry] = min(best.get(entry, found), found)
            else:
                seen = hits.setdefault(entry, {})
                seen[row] = min(seen.get(row, d), d)
        results = [
            replace(self._result(snap, e, "pdq", d), timestamp=t) for e, (d, t) in best.items()
        ]
        for entry, matched in hits.items():
            percent = round(100.0 * len(matched) / len(frames), 1)
            if percent >= snap.lists[snap.entries[entry].list_id].vpdq_percent:
                result = self._result(snap, entry, "vpdq", min(matched.values()))
                results.append(replace(result, match_percent=percent))
        return results

    def result_for(self, entry_id: int, kind: str, distance: int) -> MatchResult:
        """The result for a hit on `entry_id` of the current snapshot."""
        return self._result(self._snap, entry_id, kind, distance)

    def _result(self, snap: Snapshot, entry_id: int, kind: str, distance: int) -> MatchResult:
        entry = snap.entries[entry_id]
        hash_list = snap.lists[entry.list_id]
        return MatchResult(
            hash_list.id,
            hash_list.name,
            hash_list.kind,
            entry_id,
            kind,
            distance,
            entry.category,
            entry.reference,
        )

    # -- the crawl's entry points --------------------------------------------------------

    def after_media_stored(self, session: Session, media_id: int, page_id: int) -> None:
        """`Storage`'s hook: match the media just stored and update its page's item."""
        if time.monotonic() - self._checked_at >= self.refresh_interval:
            self.refresh_if_changed(session)
        self.match_media(session, media_id)
        self.update_candidates(session, [page_id])

    def after_batch_stored(
        self, session: Session, media_ids: Collection[int], page_ids: Collection[int]
    ) -> set[int]:
        """`Storage`'s batch hook: match each media stored in one transaction once, then
        update each touched page's review item once (not once per media: that query was a
        quarter of the store writer's time). Returns the media ids that matched."""
        if time.monotonic() - self._checked_at >= self.refresh_interval:
            self.refresh_if_changed(session)
        matched = self.match_many(session, media_ids)
        archive_matches(session, media_ids)
        self.update_candidates(session, page_ids)
        return matched

    def match_many(self, session: Session, media_ids: Collection[int]) -> set[int]:
        """`match_media` for many media: one read and one insert per chunk; returns the
        ids of the media with at least one match (the crawl's live `matches` figure)."""
        ordered = sorted(set(media_ids))
        conn = session.connection()
        hit: set[int] = set()
        for start in range(0, len(ordered), _READ_CHUNK):
            chunk = ordered[start : start + _READ_CHUNK]
            rows = conn.execute(_MEDIA_HASHES, {"ids": chunk}).all()
            matched = self.match_batch(rows)
            found = [(m.id, r) for m, results in zip(rows, matched, strict=True) for r in results]
            hit.update(media_id for media_id, _ in found)
            new_entries = record_matches(session, found)
            with self._lock:
                self._count_new(session, new_entries)
        return hit

    def match_media(self, session: Session, media_id: int) -> list[MatchResult]:
        """Match one stored media item, record its matches, apply the flood guard."""
        media = session.get(Media, media_id)
        if media is None:
            return []
        results = self.match(media)
        new_entries = record_matches(session, [(media_id, r) for r in results])
        with self._lock:
            self._count_new(session, new_entries)
        return [r for r in results if r.entry_id not in self._quarantined]

    def update_candidates(self, session: Session, page_ids: Iterable[int]) -> CandidateChanges:
        """Open, update or close the review items of `page_ids` (and of flooded pages)."""
        pages = set(page_ids) | self._pages_to_recheck
        self._pages_to_recheck.clear()
        return update_candidates(session, pages, self.config.categories)

    # -- flood guard ---------------------------------------------------------------------

    def _count_new(self, session: Session, new_entries: Sequence[int]) -> None:
        snap = self._snap
        for entry_id in new_entries:
            entry = snap.entries.get(entry_id)
            if entry is None or snap.lists[entry.list_id].kind != "known":
                continue
            if entry_id not in self._media_counts:
                # First sight in this process: start from what earlier runs recorded.
                self._media_counts[entry_id] = media_count(session, entry_id)
            else:
                self._media_counts[entry_id] += 1
            if over_flood_limit(self._media_counts[entry_id], self.config.flood_limit):
                self._quarantine(session, entry_id, self._media_counts[entry_id])

    def _quarantine(self, session: Session, entry_id: int, media: int) -> None:
        report = quarantine_entry(session, entry_id, media)
        self._quarantined.add(entry_id)
        if report is not None:
            self.quarantines.append(report)
            self._pages_to_recheck.update(pages_matched_by(session, entry_id))
            self._adopt_own_bump(session, report)

    def _adopt_own_bump(self, session: Session, report: Quarantine) -> None:
        """Skip the full reload our own version bump would cause, if it is the only change."""
        list_id = self._snap.entries[report.entry_id].list_id
        expected = tuple((i, v + 1 if i == list_id else v, e) for i, v, e in self._snap.signature)
        if list_signature(session) == expected:
            self._snap = replace(self._snap, signature=expected)


def over_flood_limit(media: int, limit: int) -> bool:
    """A limit of 0 turns the flood guard off."""
    return limit > 0 and media > limit


# Core statements built once (`crawler.db.prepared`): an ORM entity load of every media
# row and a multi-row insert built per chunk were most of matching's cost in the crawl.
_MEDIA: Table = Media.__table__  # type: ignore[assignment]
_MEDIA_HASHES = select(
    _MEDIA.c.id,
    _MEDIA.c.sha256,
    _MEDIA.c.sha1,
    _MEDIA.c.md5,
    _MEDIA.c.pdq,
    _MEDIA.c.pdq_quality,
    _MEDIA.c.vpdq,
).where(_MEDIA.c.id.in_(bindparam("ids", expanding=True)))
_MATCHES: Table = Match.__table__  # type: ignore[assignment]


def _match_insert(insert: Insert) -> Any:
    stmt = insert(_MATCHES).on_conflict_do_nothing(index_elements=["media_id", "entry_id"])
    return stmt.returning(_MATCHES.c.entry_id)


def record_matches(session: Session, rows: Sequence[tuple[int, MatchResult]]) -> list[int]:
    """Insert Match rows, ignoring ones already there; returns the newly matched entries."""
    new: list[int] = []
    conn = session.connection()
    for start in range(0, len(rows), _INSERT_BATCH):
        now = utcnow()
        values = [
            {
                "media_id": media_id,
                "list_id": r.list_id,
                "entry_id": r.entry_id,
                "match_type": r.match_type,
                "distance": r.distance,
                "created_at": now,
                "timestamp": r.timestamp,
                "match_percent": r.match_percent,
            }
            for media_id, r in rows[start : start + _INSERT_BATCH]
        ]
        found = conn.execute(prepared(conn, _match_insert), values)
        new += [int(e) for e in found.scalars()]
    return new


_ARCHIVE_MATCHES = (
    "INSERT INTO matches (media_id, list_id, entry_id, match_type, distance, created_at, "
    "timestamp, match_percent) "
    "SELECT a.archive_id, m.list_id, m.entry_id, m.match_type, m.distance, m.created_at, "
    "m.timestamp, m.match_percent FROM matches m JOIN archive_members a ON a.media_id = m.media_id "
    "JOIN hash_lists l ON l.id = m.list_id "
    "WHERE l.kind != 'benign' AND {where} ON CONFLICT (media_id, entry_id) DO NOTHING"
)
# A benign member's match is not copied: it would suppress every known match of the
# archive (benign wins, crawler.matching.match_state), so one benign-listed image would hide a ZIP.
_STALE_BENIGN_COPIES = (
    "DELETE FROM matches WHERE list_id IN (SELECT id FROM hash_lists WHERE kind = 'benign') "
    "AND EXISTS (SELECT 1 FROM archive_members a JOIN matches m ON m.media_id = a.media_id "
    "WHERE a.archive_id = matches.media_id AND m.entry_id = matches.entry_id)"
)


def archive_matches(session: Session, media_ids: Collection[int] | None = None) -> int:
    """An archive matches what its members match: the archive's URL is what a notice
    names and what makes its page a candidate. Copies each member match to the archive's
    media (idempotent); ``media_ids`` limits it to archives among, or holding, those."""
    conn = session.connection()
    if media_ids is None:
        conn.execute(text(_STALE_BENIGN_COPIES))  # rematch: copies made before the fix go
        return conn.execute(text(_ARCHIVE_MATCHES.format(where="1 = 1"))).rowcount or 0
    ids = sorted(set(media_ids))
    added = 0
    for start in range(0, len(ids), _READ_CHUNK):
        chunk = ids[start : start + _READ_CHUNK]
        where = "(a.archive_id IN :ids OR a.media_id IN :ids)"
        stmt = text(_ARCHIVE_MATCHES.format(where=where)).bindparams(
            bindparam("ids", expanding=True)
        )
        added += conn.execute(stmt, {"ids": chunk}).rowcount or 0
    return added


def media_count(session: Session, entry_id: int) -> int:
    query = select(func.count()).select_from(Match).where(Match.entry_id == entry_id)
    return int(session.execute(query).scalar_one())


def pages_matched_by(session: Session, entry_id: int) -> set[int]:
    query = (
        select(Observation.page_id)
        .join(Match, Match.media_id == Observation.media_id)
        .where(Match.entry_id == entry_id)
        .distinct()
    )
    return {int(p) for p in session.execute(query).scalars()}


def quarantine_entry(session: Session, entry_id: int, media: int) -> Quarantine | None:
    """Quarantine one entry (idempotent): None when it already was."""
    entry = session.get(HashEntry, entry_id)
    if entry is None or entry.quarantined_at is not None:
        return None
    entry.quarantined_at = utcnow()
    hash_list = session.get(HashList, entry.list_id)
    assert hash_list is not None
    session.execute(
        update(HashList).where(HashList.id == hash_list.id).values(version=HashList.version + 1)
    )
    details = {"list": hash_list.name, "hash_type": entry.hash_type, "media": media}
    record(session, Event("matcher", "hashlist.entry_quarantined", "hash_entry", entry_id, details))
    log.warning(
        "flood guard: quarantined entry %d of %s (%d media)", entry_id, hash_list.name, media
    )
    return Quarantine(entry_id, hash_list.name, entry.hash_type, media)
