"""`export media` and `export candidates`: the contract's records, as JSON Lines or CSV.

Guarantees (docs/hazards.md E-01, E-02, E-03):

- Fields are exactly the contract's, in its order; fields may be added at the end, never
  renamed. Timestamps are UTC ISO-8601 with a `Z`. Hashes and metadata only: no table
  read here holds media bytes.
- One snapshot: PostgreSQL `REPEATABLE READ, READ ONLY`; SQLite one deferred read
  transaction (WAL keeps it stable while the crawl writes), then a passive WAL
  checkpoint. Rows are read in keyset batches in id order, so memory stays flat and the
  order is stable, and inserts running meanwhile are simply not part of the export.
- CSV is RFC 4180 (CRLF, minimal quoting); a text cell starting with `=`, `+`, `-`, `@`,
  TAB or CR gets a `'` prefix so spreadsheets never run it as a formula, the JSON text
  of `matches` included.
- `matches` holds only the matches that count now (`crawler.matching.match_state`): known matches
  a benign list suppresses are in `suppressed_matches` (with `suppressed_by`), the benign
  matches themselves in `benign_matches`; matches of a disabled list, a quarantined entry
  or beyond a PDQ threshold are left out.
- `ExportSummary` carries the row count and the SHA-256 of the bytes written, for the
  audit event the caller records (`audit_export`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from crawler.db.audit import Event, record
from crawler.db.models import (
    ArchiveMember,
    HashEntry,
    HashList,
    Host,
    Match,
    Media,
    Observation,
    Page,
    ReviewItem,
    User,
)
from crawler.db.session import Database
from crawler.matching.match_state import ACTIVE, BENIGN, SUPPRESSED, active_clause, match_states

Format = Literal["jsonl", "csv"]
Record = dict[str, Any]
AnySelect = Select[*tuple[Any, ...]]

MEDIA_FIELDS = (
    "page_url", "media_url", "media_type", "status", "error",
    "sha256", "sha1", "md5", "pdq", "pdq_quality", "bytes", "width", "height",
    "host", "registered_domain", "ip", "country", "asn", "as_org",
    "first_seen", "last_seen", "matches",
    # additions to the contract (second round: only active matches are `matches`):
    "suppressed_matches", "benign_matches",
    # additions (docs/interface.md, video records):
    "vpdq_frames", "duration_s",
    # archive members (records of their own, after their archive's):
    "archive_member", "archive_sha256",
)  # fmt: skip
CANDIDATE_FIELDS = (
    "id", "page_url", "host", "registered_domain", "ip", "country", "asn", "as_org",
    "abuse_contact", "priority", "status", "media", "matched_media", "matches",
    "first_seen", "last_seen", "decided_by", "decided_at", "category", "removed_at",
    # additions to the contract:
    "abuse_contact_source", "created_at", "tls_verified",
    "page_id", "suppressed_matches", "benign_matches",
    "decided_via", "review_kind",
)  # fmt: skip
BATCH = 1000
logger = logging.getLogger(__name__)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CandidateFilter:
    """`export candidates` filters; `since`/`until` bound the page's first_seen, half-open."""

    statuses: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    country: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "status": list(self.statuses) or None,
            "since": iso(self.since),
            "until": iso(self.until),
            "country": self.country,
        }


@dataclass(frozen=True)
class ExportSummary:
    kind: str
    format: str
    rows: int
    sha256: str


def iso(value: datetime | None) -> str | None:
    """UTC, second precision, `Z` suffix: the one timestamp spelling of every export."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- snapshot -------------------------------------------------------------------------


@contextmanager
def snapshot(db: Database) -> Iterator[Session]:
    """A read-only session that sees one consistent state of the database throughout."""
    with db.read_session() as session:
        if not db.is_sqlite:
            # Must be the session's first use: it starts the transaction at this level.
            session.connection(
                execution_options={
                    "isolation_level": "REPEATABLE READ",
                    "postgresql_readonly": True,
                }
            )
        yield session
    if db.is_sqlite:
        _checkpoint(db)


def _checkpoint(db: Database) -> None:
    """The long read held the WAL open; let it shrink now (housekeeping, best effort)."""
    raw = db.engine.raw_connection()  # outside SQLAlchemy's BEGIN: PRAGMAs need autocommit
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
    except sqlite3.Error as exc:
        logger.debug("WAL checkpoint after export skipped: %s", exc)
    finally:
        raw.close()


def _batches(session: Session, query: AnySelect, id_column: Any) -> Iterator[list[Any]]:
    """Keyset pagination over `query` in `id_column` order, inside the caller's snapshot."""
    last = 0
    while True:
        rows = session.execute(query.where(id_column > last).order_by(id_column).limit(BATCH)).all()
        if not rows:
            return
        yield list(rows)
        last = rows[-1][0]


# --- matches --------------------------------------------------------------------------


def match_rows(*columns: Any) -> AnySelect:
    """`columns` over each match joined to its hash list and entry, so that
    `active_clause(Match, HashEntry, HashList)` can say whether it is in force: the one
    match-row query, of the exports and of the review app's item page (`review.items`)."""
    return (
        select(*columns)
        .join(HashList, HashList.id == Match.list_id)
        .join(HashEntry, HashEntry.id == Match.entry_id)
    )


def _match_query() -> AnySelect:
    return (
        match_rows(
            Match.media_id,
            HashList.name,
            Match.match_type,
            Match.distance,
            HashEntry.category,
            HashEntry.reference,
            HashList.kind,
            Media.sha256,
            active_clause(Match, HashEntry, HashList).label("active"),
            Match.timestamp,
            Match.match_percent,
        )
        .join(Media, Media.id == Match.media_id)
        .order_by(Match.media_id, Match.distance, Match.id)
    )


def _match_record(row: Any) -> Record:
    # `kind` is an addition: a benign-list match is a recorded suppression.
    return {
        "list": row.name,
        "type": row.match_type,
        "distance": row.distance,
        "category": row.category,
        "reference": row.reference,
        "kind": row.kind,
        "timestamp": row.timestamp,
        "match_percent": row.match_percent,
    }


@dataclass
class _Matches:
    """One media's (or page's) match rows by state (`crawler.matching.match_state`)."""

    active: list[Any]
    suppressed: list[Any]
    benign: list[Any]


def _by_state(rows: list[Any]) -> _Matches:
    """Split match rows (of one or several media) by each one's state, keeping their order."""
    per_media: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        per_media[row.media_id].append(row)
    state_of: dict[int, str] = {}
    for media_rows in per_media.values():
        states = match_states((r.kind, r.active) for r in media_rows)
        state_of.update((id(r), st) for r, st in zip(media_rows, states, strict=True))
    parts: dict[str, list[Any]] = {ACTIVE: [], SUPPRESSED: [], BENIGN: []}
    for row in rows:
        parts.get(state_of[id(row)], []).append(row)
    return _Matches(parts[ACTIVE], parts[SUPPRESSED], parts[BENIGN])


def _suppressed_record(row: Any, found: _Matches) -> Record:
    by = sorted({b.name for b in found.benign if b.media_id == row.media_id})
    return {**_match_record(row), "suppressed_by": by}


def _matches_by_media(session: Session, media_ids: Iterable[int]) -> dict[int, list[Any]]:
    ids = sorted(set(media_ids))
    found: dict[int, list[Any]] = defaultdict(list)
    if ids:
        for row in session.execute(_match_query().where(Match.media_id.in_(ids))):
            found[row.media_id].append(row)
    return found


# --- export media ---------------------------------------------------------------------


def _media_query() -> AnySelect:
    return (
        select(Observation.id, Observation, Page.url, Media, Host)
        .join(Page, Page.id == Observation.page_id)
        .outerjoin(Media, Media.id == Observation.media_id)
        .outerjoin(Host, Host.id == Observation.host_id)
    )


def _media_record(
    obs: Observation, page_url: str, media: Media | None, host: Host | None, rows: list[Any]
) -> Record:
    matches = _by_state(rows)

    def m(name: str) -> Any:
        return getattr(media, name) if media is not None else None

    def h(name: str) -> Any:
        return getattr(host, name) if host is not None else None

    return {
        "page_url": page_url, "media_url": obs.media_url, "media_type": m("media_type"),
        "status": obs.status, "error": obs.error,
        "sha256": m("sha256"), "sha1": m("sha1"), "md5": m("md5"), "pdq": m("pdq"),
        "pdq_quality": m("pdq_quality"), "bytes": m("bytes"),
        "width": m("width"), "height": m("height"),
        "host": h("host"), "registered_domain": h("registered_domain"), "ip": h("ip") or None,
        "country": h("country"), "asn": h("asn"), "as_org": h("as_org"),
        "first_seen": iso(obs.first_seen), "last_seen": iso(obs.last_seen),
        "matches": [_match_record(r) for r in matches.active],
        "suppressed_matches": [_suppressed_record(r, matches) for r in matches.suppressed],
        "benign_matches": [_match_record(r) for r in matches.benign],
        "vpdq_frames": _frame_count(m("vpdq")) if m("media_type") == "video" else None,
        "duration_s": m("duration_s"),
        "archive_member": None, "archive_sha256": None,
    }  # fmt: skip


def _frame_count(vpdq: str | None) -> int:
    """Frames in a stored vPDQ serialisation (a JSON array of strings)."""
    return len(json.loads(vpdq)) if vpdq else 0


def _members_by_archive(session: Session, archive_ids: list[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    if archive_ids:
        query = (
            select(ArchiveMember, Media)
            .outerjoin(Media, Media.id == ArchiveMember.media_id)
            .where(ArchiveMember.archive_id.in_(archive_ids))
            .order_by(ArchiveMember.archive_id, ArchiveMember.id)
        )
        for member, media in session.execute(query):
            found[member.archive_id].append((member, media))
    return found


def _member_records(
    session: Session,
    obs: Observation,
    page_url: str,
    archive: Media,
    host: Host | None,
    members: list[Any],
) -> Iterator[Record]:
    """Each member of an archive as its own record: the archive's URL, the member's path."""
    matches = _matches_by_media(session, (m.id for _, m in members if m is not None))
    for member, media in members:
        found = matches.get(media.id, []) if media is not None else []
        record = _media_record(obs, page_url, media, host, found)
        record["status"], record["error"] = member.status, member.error
        record["archive_member"], record["archive_sha256"] = member.path, archive.sha256
        yield record


def iter_media(session: Session) -> Iterator[Record]:
    """One record per observation (a media URL seen on a page), in observation order;
    an archive's members follow its record, one record each."""
    for rows in _batches(session, _media_query(), Observation.id):
        matches = _matches_by_media(session, (r[3].id for r in rows if r[3] is not None))
        archives = [r[3].id for r in rows if r[3] is not None and r[3].media_type == "archive"]
        members = _members_by_archive(session, archives)
        for _id, obs, page_url, media, host in rows:
            found = matches.get(media.id, []) if media is not None else []
            yield _media_record(obs, page_url, media, host, found)
            if media is not None and media.id in members:
                yield from _member_records(session, obs, page_url, media, host, members[media.id])


# --- export candidates ----------------------------------------------------------------


def _candidate_query(flt: CandidateFilter) -> AnySelect:
    decider = aliased(User)
    query = (
        select(ReviewItem.id, ReviewItem, Page, Host, decider.username)
        .join(Page, Page.id == ReviewItem.page_id)
        .outerjoin(Host, Host.id == Page.host_id)
        .outerjoin(decider, decider.id == ReviewItem.decided_by)
    )
    if flt.statuses:
        query = query.where(ReviewItem.status.in_(flt.statuses))
    if flt.since is not None:
        query = query.where(Page.first_seen >= flt.since)
    if flt.until is not None:
        query = query.where(Page.first_seen < flt.until)
    if flt.country:
        query = query.where(Host.country == flt.country.upper())
    return query


def _media_counts(session: Session, page_ids: list[int]) -> dict[int, int]:
    query = (
        select(Observation.page_id, func.count())
        .where(Observation.page_id.in_(page_ids))
        .group_by(Observation.page_id)
    )
    return {int(p): int(n) for p, n in session.execute(query)}


def _page_matches(session: Session, page_ids: list[int]) -> dict[int, list[Any]]:
    query = (
        _match_query()
        .add_columns(Observation.page_id)
        .join(Observation, Observation.media_id == Match.media_id)
        .where(Observation.page_id.in_(page_ids))
        .distinct()
        .order_by(None)  # PostgreSQL: DISTINCT cannot order by unselected columns
    )
    found: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(query):
        found[row.page_id].append(row)
    return found


def _candidate_record(
    item: ReviewItem,
    page: Page,
    host: Host | None,
    decided_by: str | None,
    media: int,
    rows: list[Any],
) -> Record:
    def h(name: str) -> Any:
        return getattr(host, name) if host is not None else None

    matches = _by_state(rows)
    matched = {r.media_id for r in matches.active}
    listed = [{**_match_record(r), "sha256": r.sha256} for r in matches.active]
    return {
        "id": item.id, "page_url": page.url, "host": h("host"),
        "registered_domain": h("registered_domain"), "ip": h("ip") or None,
        "country": h("country"), "asn": h("asn"), "as_org": h("as_org"),
        "abuse_contact": h("abuse_contact"), "priority": item.priority, "status": item.status,
        "media": media, "matched_media": len(matched), "matches": listed,
        "first_seen": iso(page.first_seen), "last_seen": iso(page.last_seen),
        "decided_by": decided_by, "decided_at": iso(item.decided_at),
        "category": item.category, "removed_at": iso(item.removed_at),
        "abuse_contact_source": h("abuse_contact_source"), "created_at": iso(item.created_at),
        "tls_verified": page.tls_verified,  # H-07: null for plain HTTP
        "page_id": page.id,  # what `evidence export --page` takes; `id` is the review item
        "suppressed_matches": [
            {**_suppressed_record(r, matches), "sha256": r.sha256} for r in matches.suppressed
        ],
        "benign_matches": [{**_match_record(r), "sha256": r.sha256} for r in matches.benign],
        **_settled_by(item, decided_by),
    }  # fmt: skip


def _settled_by(item: ReviewItem, decided_by: str | None) -> Record:
    """`decided_via` (analyst, list:NAME, media:ITEM_ID) and `review_kind`; a page a list
    settled has `decided_by` `list:NAME` (media:ITEM_ID: the analyst-confirmed list)."""
    via = item.decided_via or ("analyst" if item.decided_by is not None else None)
    if decided_by is None and via is not None and via != "analyst":
        decided_by = via if via.startswith("list:") else "list:analyst-confirmed"
    return {"decided_by": decided_by, "decided_via": via, "review_kind": item.review_kind}


def iter_candidates(session: Session, flt: CandidateFilter | None = None) -> Iterator[Record]:
    """One record per review item matching `flt`, in item id order."""
    for rows in _batches(session, _candidate_query(flt or CandidateFilter()), ReviewItem.id):
        page_ids = [r[2].id for r in rows]
        counts, matches = _media_counts(session, page_ids), _page_matches(session, page_ids)
        for _id, item, page, host, decided_by in rows:
            found = sorted(matches.get(page.id, []), key=lambda r: (r.media_id, r.distance))
            yield _candidate_record(item, page, host, decided_by, counts.get(page.id, 0), found)


# --- writing --------------------------------------------------------------------------


class _HashingWriter:
    """Passes text through to `handle` and hashes the UTF-8 bytes written."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()

    def write(self, text: str) -> int:
        self.digest.update(text.encode("utf-8"))
        return self._handle.write(text)


def csv_cell(value: Any) -> str:
    """One CSV cell: JSON for structures, and no cell a spreadsheet would evaluate."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    cell = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def _write_jsonl(records: Iterable[Record], out: _HashingWriter) -> int:
    rows = 0
    for rec in records:
        out.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        rows += 1
    return rows


def _write_csv(records: Iterable[Record], fields: tuple[str, ...], out: _HashingWriter) -> int:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(fields)
    rows = 0
    for rec in records:
        writer.writerow([csv_cell(rec.get(f)) for f in fields])
        rows += 1
    return rows


def write_records(
    records: Iterable[Record], fields: tuple[str, ...], fmt: Format, handle: IO[str]
) -> tuple[int, str]:
    """Write `records` to `handle`; returns (rows, SHA-256 of the UTF-8 output)."""
    out = _HashingWriter(handle)
    rows = _write_csv(records, fields, out) if fmt == "csv" else _write_jsonl(records, out)
    return rows, out.digest.hexdigest()


# --- the two exports ------------------------------------------------------------------

_KINDS: dict[
    str, tuple[tuple[str, ...], Callable[[Session, CandidateFilter], Iterator[Record]]]
] = {
    "media": (MEDIA_FIELDS, lambda session, _flt: iter_media(session)),
    "candidates": (CANDIDATE_FIELDS, iter_candidates),
}


def export(
    db: Database,
    kind: Literal["media", "candidates"],
    fmt: Format,
    handle: IO[str],
    flt: CandidateFilter | None = None,
) -> ExportSummary:
    """Stream one export from one snapshot into `handle`."""
    fields, rows_of = _KINDS[kind]
    with snapshot(db) as session:
        rows, digest = write_records(
            rows_of(session, flt or CandidateFilter()), fields, fmt, handle
        )
    return ExportSummary(kind, fmt, rows, digest)


def audit_export(
    db: Database,
    summary: ExportSummary,
    *,
    actor: str = "cli",
    output: str | None = None,
    filters: dict[str, Any] | None = None,
) -> None:
    """Record that an export left the system, with what it held (E-03)."""
    details = {
        "format": summary.format,
        "rows": summary.rows,
        "sha256": summary.sha256,
        "output": output or "-",
        "filters": filters or {},
    }
    with db.session() as session:
        record(session, Event(actor, f"export.{summary.kind}", "export", None, details))
