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
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crawler.audit import Event, record
from crawler.db.models import CrawlRun, EvidenceRecord, Host, Media, Observation, Page
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.evidence.datauri import sanitize
from crawler.evidence.warc import PageWarc, append_media_record, write_page_warc
from crawler.items import MediaItem, PageItem
from crawler.storage import page_key

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


def media_facts(
    session: Session, page_id: int, media_url: str | None = None
) -> list[dict[str, Any]]:
    """Hashes and served-by facts of a page's media, from observations and media rows."""
    stmt = (
        select(Observation, Media, Host)
        .outerjoin(Media, Media.id == Observation.media_id)
        .outerjoin(Host, Host.id == Observation.host_id)
        .where(Observation.page_id == page_id)
        .order_by(Observation.id)
    )
    if media_url is not None:
        stmt = stmt.where(Observation.media_url == media_url)
    return [_media_dict(o, m, h) for o, m, h in session.execute(stmt).all()]


def media_facts_many(
    session: Session, pairs: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], dict[str, Any]]:
    """`media_facts` of many (page, media URL) pairs: the first observation of each."""
    wanted = set(pairs)
    found: dict[tuple[int, str], dict[str, Any]] = {}
    pages = sorted({p for p, _ in wanted})
    for start in range(0, len(pages), 500):
        stmt = (
            select(Observation, Media, Host)
            .outerjoin(Media, Media.id == Observation.media_id)
            .outerjoin(Host, Host.id == Observation.host_id)
            .where(Observation.page_id.in_(pages[start : start + 500]))
            .order_by(Observation.id)
        )
        for o, m, h in session.execute(stmt).all():
            if (o.page_id, o.media_url) in wanted:
                found.setdefault((o.page_id, o.media_url), _media_dict(o, m, h))
    return found


def _media_dict(obs: Observation, media: Media | None, host: Host | None) -> dict[str, Any]:
    hashes = ("sha256", "sha1", "md5", "pdq", "pdq_quality", "bytes", "width", "height")
    out: dict[str, Any] = {
        "media_url": obs.media_url,
        "status": obs.status,
        "error": obs.error,
        "declared_type": obs.declared_type,
        "host": host.host if host else None,
        "ip": (host.ip or None) if host else None,
        "first_seen": obs.first_seen.isoformat(),
        "last_seen": obs.last_seen.isoformat(),
        "media_type": media.media_type if media else None,
    }
    out.update({name: getattr(media, name) if media else None for name in hashes})
    return out


@dataclass
class _OpenWarc:
    path: Path
    refers_to: str
    page_id: int


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
        with self.db.session() as session:
            rows: list[tuple[EvidenceRecord | None, str | None, dict[str, Any]]] = []
            for item, html in zip(items, texts, strict=True):
                if item.status is None:
                    rows.append((None, None, {}))
                    continue
                facts = self._facts(session, item)
                row = _new_row(item, _page_id(session, item.url), facts)
                session.add(row)
                rows.append((row, html, facts))
            session.flush()  # one round of inserts; the ids name the WARC files
            for item, (record, html, facts) in zip(items, rows, strict=True):
                if record is not None:
                    written[page_key(item.url)] = self._write_warc(record, html, facts)
            return [r.id if r is not None else None for r, _, _ in rows]

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

    def _write_warc(
        self, row: EvidenceRecord, html: str | None, facts: dict[str, Any]
    ) -> _OpenWarc:
        """Write the WARC inside the row's transaction; a failed commit removes the file."""
        clean = sanitize(html) if html is not None else None
        replaced = [m.as_dict() for m in clean.replaced] if clean else []
        facts["data_media"] = row.data_media = replaced
        rel = f"warc/{row.fetched_at:%Y/%m/%d}/page-{row.page_id}-{row.id}-{uuid.uuid4().hex[:8]}.warc.gz"
        row.warc_path = rel
        path = evidence_root(self.home) / rel
        page = PageWarc(
            row.final_url,
            row.fetched_at,
            row.ip,
            clean.text if clean else None,
            row.content_sha256,
            facts,
        )
        try:
            refers_to = write_page_warc(path, page)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return _OpenWarc(path, refers_to, row.page_id)

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
            with self.db.read_session() as session:
                facts = media_facts_many(session, pairs)
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


def _page_id(session: Session, url: str) -> int:
    page_id = session.execute(select(Page.id).where(Page.canonical_url == page_key(url))).scalar()
    if page_id is None:
        raise LookupError(f"page {url} is not stored: the store pipeline must run first")
    return int(page_id)


def _new_row(item: PageItem, page_id: int, facts: dict[str, Any]) -> EvidenceRecord:
    return EvidenceRecord(
        page_id=page_id,
        run_id=facts["run_id"],
        requested_url=item.url,
        final_url=facts["final_url"],
        redirect_chain=facts["redirect_chain"],
        status_code=item.status,
        headers=facts["headers"],
        ip=item.ip,
        tls_fingerprint=item.tls_fingerprint,
        tls_issuer=item.tls_issuer,
        fetched_at=datetime.fromisoformat(facts["fetched_at"]),
        content_sha256=item.content_sha256,
        policy_sha256=facts["policy_sha256"],
        software_version=facts["software"],
        data_media=[],
    )


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
