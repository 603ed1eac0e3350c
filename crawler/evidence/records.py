"""Evidence records at crawl time, and their purge once past retention.

`EvidenceRecorder` is called with the items the spider yields, after the store pipeline
has written them (the page row and the media observations exist). It is not thread-safe
by design: the pipeline calls it from one worker thread, so appends to a page's WARC
never interleave. Media items that arrive before their page (items finish in any order)
wait in memory, as hashes and URLs only, until the page's WARC exists.

`purge` removes records older than the retention, file first then row, in batches that
each commit with one `evidence.purge` audit event holding the counts (E-11): a purge
killed anywhere leaves rows whose files may be gone, and the next run finishes them.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from crawler.db.audit import Event, record
from crawler.db.models import (
    ArchiveMember,
    CrawlRun,
    EvidenceRecord,
    Host,
    Media,
    Observation,
    Page,
)
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.engine.storage import page_key
from crawler.evidence.datauri import sanitize
from crawler.evidence.warc import PageWarc, append_media_record, write_page_warc
from crawler.items import MediaItem, PageItem

logger = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 365
PURGE_BATCH = 500


def evidence_root(home: Path) -> Path:
    return home / "evidence"


@dataclass(frozen=True)
class RunFacts:
    policy_sha256: str | None
    software_version: str | None


def run_facts(session: Session, run_id: int | None) -> RunFacts:
    run = session.get(CrawlRun, run_id) if run_id is not None else None
    if run is None:
        return RunFacts(None, None)
    digest = hashlib.sha256(run.policy_text.encode("utf-8")).hexdigest()
    return RunFacts(digest, run.software_version)


# Core columns, not ORM entities: loading three objects per media row was most of the
# evidence thread's media time. A missing media or host row reads as NULLs.
_O, _M, _H = Observation.__table__.c, Media.__table__.c, Host.__table__.c
# vpdq: a video's frame hashes (hashes only, never frames), duration_s its decoded length.
_HASHES = (
    "sha256", "sha1", "md5", "pdq", "pdq_quality", "bytes", "width", "height", "vpdq", "duration_s",
)  # fmt: skip
_FACTS = (
    select(
        _O.page_id,
        _O.media_url,
        _O.status,
        _O.error,
        _O.declared_type,
        _O.first_seen,
        _O.last_seen,
        _H.host,
        _H.ip,
        _O.media_id,
        _M.media_type,
        *(_M[name] for name in _HASHES),
    )
    .select_from(
        Observation.__table__.outerjoin(Media.__table__, _M.id == _O.media_id).outerjoin(
            Host.__table__, _H.id == _O.host_id
        )
    )
    .order_by(_O.id)
)
_FACTS_OF_PAGES = _FACTS.where(_O.page_id.in_(bindparam("pages", expanding=True)))

# An archive's members (crawler.media.archive): the path as text, where it sits, the
# outcome and the member's hashes; never its bytes (docs/hazards.md Z-01..Z-03).
_MEMBER_MEDIA = Media.__table__.alias("member")
_A, _MM = ArchiveMember.__table__.c, _MEMBER_MEDIA.c
_MEMBER_HASHES = ("sha256", "sha1", "md5", "pdq", "pdq_quality", "bytes", "vpdq", "duration_s")
_MEMBERS = (
    select(
        _A.archive_id,
        _A.path,
        _A.depth,
        _A.status,
        _A.error,
        _MM.media_type,
        *(_MM[name] for name in _MEMBER_HASHES),
    )
    .select_from(ArchiveMember.__table__.outerjoin(_MEMBER_MEDIA, _MM.id == _A.media_id))
    .where(_A.archive_id.in_(bindparam("archives", expanding=True)))
    .order_by(_A.archive_id, _A.id)
)


def _members_of(conn: Connection, archive_ids: set[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    ids = sorted(archive_ids)
    for start in range(0, len(ids), 500):
        for row in conn.execute(_MEMBERS, {"archives": ids[start : start + 500]}).mappings():
            member = {k: row[k] for k in ("path", "depth", "status", "error", "media_type")}
            member.update({name: row[name] for name in _MEMBER_HASHES})
            found.setdefault(int(row["archive_id"]), []).append(member)
    return found


def _with_members(conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
    """`_media_dict` of each row, an archive's with its `archive_members` (hashes only)."""
    archives = {int(r["media_id"]) for r in rows if r["media_type"] == "archive"}
    members = _members_of(conn, archives) if archives else {}
    out = []
    for row in rows:
        facts = _media_dict(row)
        if row["media_type"] == "archive":
            facts["archive_members"] = members.get(int(row["media_id"]), [])
        out.append(facts)
    return out


def media_facts(
    session: Session, page_id: int, media_url: str | None = None
) -> list[dict[str, Any]]:
    """Hashes and served-by facts of a page's media, from observations and media rows."""
    stmt = _FACTS.where(_O.page_id == page_id)
    if media_url is not None:
        stmt = stmt.where(_O.media_url == media_url)
    return _with_members(session.connection(), list(session.execute(stmt).mappings()))


def _media_facts_many(
    conn: Connection, pairs: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], dict[str, Any]]:
    wanted = set(pairs)
    found: dict[tuple[int, str], dict[str, Any]] = {}
    pages = sorted({p for p, _ in wanted})
    for start in range(0, len(pages), 500):
        rows = conn.execute(_FACTS_OF_PAGES, {"pages": pages[start : start + 500]})
        kept = [r for r in rows.mappings() if (r["page_id"], r["media_url"]) in wanted]
        for row, facts in zip(kept, _with_members(conn, kept), strict=True):
            found.setdefault((row["page_id"], row["media_url"]), facts)
    return found


def _media_dict(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "media_url": row["media_url"],
        "status": row["status"],
        "error": row["error"],
        "declared_type": row["declared_type"],
        "host": row["host"],
        "ip": row["ip"] or None,
        "first_seen": row["first_seen"].isoformat(),
        "last_seen": row["last_seen"].isoformat(),
        "media_type": row["media_type"],
    }
    out.update({name: row[name] for name in _HASHES})
    return out


@dataclass
class _OpenWarc:
    path: Path
    refers_to: str
    page_id: int


@dataclass
class _Pending:
    """A page's evidence row before its id is known, and what its WARC needs."""

    key: str
    row: dict[str, Any]
    facts: dict[str, Any]
    text: str | None


_RECORDS = cast(Table, EvidenceRecord.__table__)
_INSERT_RECORD = insert(_RECORDS).returning(_RECORDS.c.id, sort_by_parameter_order=True)
_SET_WARC_PATH = (
    update(_RECORDS)
    .where(_RECORDS.c.id == bindparam("record_id"))
    .values(warc_path=bindparam("path"))
)
_PAGE_IDS = select(Page.__table__.c.canonical_url, Page.__table__.c.id).where(
    Page.__table__.c.canonical_url.in_(bindparam("keys", expanding=True))
)


@dataclass
class EvidenceRecorder:
    """Writes evidence rows and WARCs for one crawl; see the module docstring."""

    db: Database
    home: Path
    run_id: int | None = None
    _runs: dict[int | None, RunFacts] = field(default_factory=dict)
    _open: dict[str, _OpenWarc] = field(default_factory=dict)
    _waiting: dict[str, list[MediaItem]] = field(default_factory=dict)

    def record_page(self, item: PageItem) -> int | None:
        """Write the page's WARC and row; returns the record id (None: nothing fetched)."""
        return self.record_pages([item])[0]

    def record_pages(self, items: Sequence[PageItem]) -> list[int | None]:
        """`record_page` for many pages in one transaction (the crawl's group commit).
        A failure removes the WARCs written and puts each page's text back, so the
        caller can record them again one by one."""
        texts = [item.html for item in items]
        for item in items:
            item.html = None  # the raw text, data: bytes and all, goes now
        written: dict[str, _OpenWarc] = {}
        try:
            ids = self._write_pages(items, texts, written)
        except BaseException:
            for opened in written.values():
                opened.path.unlink(missing_ok=True)
            for item, html in zip(items, texts, strict=True):
                item.html = html
            raise
        self._open.update(written)
        self.record_media_many([m for key in written for m in self._waiting.pop(key, [])])
        return ids

    def _write_pages(
        self, items: Sequence[PageItem], texts: list[str | None], written: dict[str, _OpenWarc]
    ) -> list[int | None]:
        """One read of the page ids, one insert executemany (the ids name the WARC files),
        the WARCs, one update executemany of their paths."""
        fetched = [(i, t) for i, t in zip(items, texts, strict=True) if i.status is not None]
        if not fetched:
            return [None] * len(items)
        with self.db.session() as session:
            conn = session.connection()
            page_ids = _page_ids(conn, [item for item, _ in fetched])
            pending = [self._pending(session, item, html, page_ids) for item, html in fetched]
            found = conn.execute(_INSERT_RECORD, [p.row for p in pending]).scalars().all()
            paths = []
            for record_id, page in zip(found, pending, strict=True):
                row = page.row
                rel = f"warc/{row['fetched_at']:%Y/%m/%d}/page-{row['page_id']}-{record_id}-{uuid.uuid4().hex[:8]}.warc.gz"
                written[page.key] = self._write_warc(rel, page)
                paths.append({"record_id": int(record_id), "path": rel})
            conn.execute(_SET_WARC_PATH, paths)
        ids = iter(int(i) for i in found)
        return [next(ids) if item.status is not None else None for item in items]

    def _pending(
        self, session: Session, item: PageItem, html: str | None, page_ids: dict[str, int]
    ) -> _Pending:
        key = page_key(item.url)
        facts = self._facts(session, item)
        clean = sanitize(html) if html is not None else None
        facts["data_media"] = [m.as_dict() for m in clean.replaced] if clean else []
        row = _new_row(item, page_ids[key], facts)
        return _Pending(key, row, facts, clean.text if clean else None)

    def _facts(self, session: Session, item: PageItem) -> dict[str, Any]:
        run_id = item.run_id if item.run_id is not None else self.run_id
        if run_id not in self._runs:
            self._runs[run_id] = run_facts(session, run_id)
        run = self._runs[run_id]
        return {
            "requested_url": item.url,
            "final_url": item.final_url or item.url,
            "redirect_chain": list(item.redirect_chain),
            "status": item.status,
            "headers": dict(item.headers),
            "ip": item.ip,
            "tls_fingerprint": item.tls_fingerprint,
            "tls_issuer": item.tls_issuer,
            "fetched_at": (item.fetched_at or utcnow()).isoformat(),
            "content_sha256": item.content_sha256,
            "policy_sha256": run.policy_sha256,
            "software": run.software_version,
            "run_id": run_id,
        }

    def _write_warc(self, rel: str, page: _Pending) -> _OpenWarc:
        """Write the WARC inside the row's transaction; a failed commit removes the file."""
        row = page.row
        path = evidence_root(self.home) / rel
        warc = PageWarc(
            row["final_url"],
            row["fetched_at"],
            row["ip"],
            page.text,
            row["content_sha256"],
            page.facts,
        )
        try:
            refers_to = write_page_warc(path, warc)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return _OpenWarc(path, refers_to, row["page_id"])

    def record_media(self, item: MediaItem) -> bool:
        """Append the media's hashes to its page's WARC; False while the page is awaited."""
        return self.record_media_many([item])[0]

    def record_media_many(self, items: Sequence[MediaItem]) -> list[bool]:
        """`record_media` for many items, reading their facts in one query (the evidence
        thread's main cost was a query per media)."""
        opened = [self._open.get(page_key(item.page_url)) for item in items]
        pairs = [(o.page_id, i.media_url) for i, o in zip(items, opened, strict=True) if o]
        if not pairs:
            facts: dict[tuple[int, str], dict[str, Any]] = {}
        else:
            with self.db.read_engine.connect() as conn:  # a snapshot; no ORM objects
                facts = _media_facts_many(conn, pairs)
        return [self._append_media(i, o, facts) for i, o in zip(items, opened, strict=True)]

    def _append_media(
        self,
        item: MediaItem,
        opened: _OpenWarc | None,
        facts: dict[tuple[int, str], dict[str, Any]],
    ) -> bool:
        if opened is None:
            item.body = None  # never held here, whatever a caller forgot
            self._waiting.setdefault(page_key(item.page_url), []).append(item)
            return False
        default = {"media_url": item.media_url}
        found = dict(facts.get((opened.page_id, item.media_url), default))
        found.update({"page_url": item.page_url, "http_status": item.status, "served_ip": item.ip})
        append_media_record(opened.path, item.media_url, found, opened.refers_to, utcnow())
        return True

    def unmatched_media(self) -> int:
        """Media items whose page never produced evidence (the page fetch failed)."""
        return sum(len(items) for items in self._waiting.values())


def _page_ids(conn: Connection, items: Sequence[PageItem]) -> dict[str, int]:
    """Page ids by canonical URL, in one read per 500 pages; every page must be stored."""
    keys = sorted({page_key(item.url) for item in items})
    ids: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        found = conn.execute(_PAGE_IDS, {"keys": keys[start : start + 500]})
        ids |= {str(k): int(i) for k, i in found}
    for item in items:
        if page_key(item.url) not in ids:
            raise LookupError(f"page {item.url} is not stored: the store pipeline must run first")
    return ids


def _new_row(item: PageItem, page_id: int, facts: dict[str, Any]) -> dict[str, Any]:
    return {
        "page_id": page_id,
        "run_id": facts["run_id"],
        "requested_url": item.url,
        "final_url": facts["final_url"],
        "redirect_chain": facts["redirect_chain"],
        "status_code": item.status,
        "headers": facts["headers"],
        "ip": item.ip,
        "tls_fingerprint": item.tls_fingerprint,
        "tls_issuer": item.tls_issuer,
        "fetched_at": datetime.fromisoformat(facts["fetched_at"]),
        "content_sha256": item.content_sha256,
        "policy_sha256": facts["policy_sha256"],
        "software_version": facts["software"],
        "data_media": facts["data_media"],
        "created_at": utcnow(),
    }


@dataclass(frozen=True)
class PurgeResult:
    cutoff: datetime
    rows: int
    files: int  # WARC files removed; files already gone (an interrupted purge) not counted
    batches: int


def _purge_batch(
    session: Session, root: Path, cutoff: datetime, days: int, actor: str
) -> tuple[int, int]:
    rows = session.execute(
        select(EvidenceRecord.id, EvidenceRecord.warc_path)
        .where(EvidenceRecord.created_at < cutoff)
        .order_by(EvidenceRecord.id)
        .limit(PURGE_BATCH)
    ).all()
    if not rows:
        return 0, 0
    files = sum(_remove(root, path) for _id, path in rows)
    ids = [row_id for row_id, _path in rows]
    session.execute(delete(EvidenceRecord).where(EvidenceRecord.id.in_(ids)))
    details = {
        "rows": len(ids),
        "files": files,
        "older_than_days": days,
        "cutoff": cutoff.isoformat(),
    }
    record(session, Event(actor, "evidence.purge", "evidence", None, details))
    return len(ids), files


def _remove(root: Path, rel: str | None) -> int:
    if not rel:
        return 0
    path = (root / rel).resolve()
    if root.resolve() not in path.parents:
        logger.warning("evidence purge: %r lies outside %s, left alone", rel, root)
        return 0
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def purge(
    db: Database, home: Path, older_than_days: int, actor: str = "cli", now: datetime | None = None
) -> PurgeResult:
    """Remove records created more than `older_than_days` ago, with their WARC files."""
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    root = evidence_root(home)
    total_rows = total_files = batches = 0
    while True:
        with db.session() as session:
            rows, files = _purge_batch(session, root, cutoff, older_than_days, actor)
        if rows == 0:
            return PurgeResult(cutoff, total_rows, total_files, batches)
        total_rows, total_files, batches = total_rows + rows, total_files + files, batches + 1
