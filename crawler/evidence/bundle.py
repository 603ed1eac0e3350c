"""Evidence bundles: a signed zip a court can check without trusting the hotline's database.

Members, in this order:

- `manifest.json`: page facts, one entry per evidence record (fetch facts and its WARC),
  media hashes, the review state and decisions, a summary of the audit excerpt, the
  SHA-256 of every other member (`files`) and the signing public key;
- `manifest.sig`: the Ed25519 signature of `manifest.json`'s bytes, in hex;
- `warc/<record id>.warc.gz`: one WARC per evidence record (`crawler.evidence.warc`);
- `audit.json`: the page's audit events with their stored hashes, so each hash can be
  recomputed with `crawler.db.audit.event_hash` and the links between events with adjacent
  ids checked.

The zip is written by `pack` in one canonical layout (stored, fixed times and modes, no
extra fields), so the verifier rebuilds it from the members and compares bytes: a flip in
a zip header that no reader would notice still fails verification.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crawler.db.audit import GENESIS, Event, record
from crawler.db.models import (
    AuditEvent,
    AuditHead,
    Decision,
    EvidenceRecord,
    Page,
    ReviewItem,
    User,
)
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.errors import TakedownError, UsageError
from crawler.evidence.keys import key_id, load_or_create_key, public_raw
from crawler.evidence.records import evidence_root, media_facts
from crawler.net.urls import InvalidURL, canonical_url

BUNDLE_FORMAT = "takedown-evidence-bundle/1"
MANIFEST, SIGNATURE, AUDIT = "manifest.json", "manifest.sig", "audit.json"
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01: fixed, so the same members give the same bytes
_UTF8_NAMES = 0x0800
_MODE = 0o100644 << 16


class EvidenceError(TakedownError):
    """Evidence cannot be exported (a WARC file is missing, a bundle too large)."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8") + b"\n"


def _entry(name: bytes, data: bytes, offset: int) -> tuple[bytes, bytes]:
    """(local header + data, central directory entry) of one stored member."""
    crc, size = zlib.crc32(data), len(data)
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, _UTF8_NAMES, 0, 0, _DOS_DATE, crc, size, size, len(name), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50, (3 << 8) | 20, 20, _UTF8_NAMES, 0, 0, _DOS_DATE,
        crc, size, size, len(name), 0, 0, 0, 0, _MODE, offset,
    )  # fmt: skip
    return local + name + data, central + name


def pack(members: list[tuple[str, bytes]]) -> bytes:
    """The one canonical zip of `members` (no ZIP64: bundles stay under 4 GiB)."""
    body, directory = bytearray(), bytearray()
    for name, data in members:
        local, central = _entry(name.encode("utf-8"), data, len(body))
        body += local
        directory += central
    if len(body) + len(directory) >= 2**32 or len(members) >= 2**16:
        raise EvidenceError("bundle too large for a plain zip (4 GiB, 65535 members)")
    count = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), len(body), 0)
    return bytes(body + directory + end)


def audit_dict(row: AuditEvent) -> dict[str, Any]:
    """An audit row as the excerpt carries it: every input of `event_hash`, plus hashes."""
    return {
        "id": row.id,
        "at": row.at.isoformat(timespec="microseconds"),
        "actor": row.actor,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "details": row.details,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _audit_rows(session: Session, page_id: int, item: ReviewItem | None) -> list[AuditEvent]:
    targets = [(AuditEvent.target_type == "page") & (AuditEvent.target_id == str(page_id))]
    if item is not None:
        targets.append(
            (AuditEvent.target_type == "review_item") & (AuditEvent.target_id == str(item.id))
        )
    stmt = select(AuditEvent).where(or_(*targets)).order_by(AuditEvent.id)
    return list(session.execute(stmt).scalars())


def _decisions(session: Session, item: ReviewItem | None) -> list[dict[str, Any]]:
    if item is None:
        return []
    stmt = (
        select(Decision, User.username)
        .join(User, User.id == Decision.user_id)
        .where(Decision.item_id == item.id)
        .order_by(Decision.id)
    )
    return [
        {
            "action": d.action,
            "category": d.category,
            "notes": d.notes,
            "by": username,
            "at": d.created_at.isoformat(),
        }
        for d, username in session.execute(stmt).all()
    ]


def _review(item: ReviewItem | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {
        "item_id": item.id,
        "status": item.status,
        "category": item.category,
        "decided_at": item.decided_at.isoformat() if item.decided_at else None,
        "removed_at": item.removed_at.isoformat() if item.removed_at else None,
    }


def _record_dict(rec: EvidenceRecord, member: str | None) -> dict[str, Any]:
    return {
        "id": rec.id,
        "requested_url": rec.requested_url,
        "final_url": rec.final_url,
        "redirect_chain": rec.redirect_chain,
        "status": rec.status_code,
        "headers": rec.headers,
        "ip": rec.ip,
        "tls_fingerprint": rec.tls_fingerprint,
        "tls_issuer": rec.tls_issuer,
        "fetched_at": rec.fetched_at.isoformat(),
        "content_sha256": rec.content_sha256,
        "policy_sha256": rec.policy_sha256,
        "software_version": rec.software_version,
        "run_id": rec.run_id,
        "data_media": rec.data_media,
        "warc": member,
    }


def _page_dict(page: Page) -> dict[str, Any]:
    return {
        "id": page.id,
        "url": page.url,
        "final_url": page.final_url,
        "title": page.title,
        "content_sha256": page.content_sha256,
        "first_seen": page.first_seen.isoformat(),
        "last_seen": page.last_seen.isoformat(),
    }


@dataclass(frozen=True)
class BundleContent:
    """Everything a bundle holds, read in one snapshot; `warcs` are file bytes."""

    manifest: dict[str, Any]
    warcs: list[tuple[str, bytes]]
    audit: list[dict[str, Any]]


def _warc_members(home: Path, records: list[EvidenceRecord]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for rec in records:
        if rec.warc_path is None:
            continue
        path = evidence_root(home) / rec.warc_path
        try:
            out.append((f"warc/{rec.id}.warc.gz", path.read_bytes()))
        except FileNotFoundError:
            raise EvidenceError(f"evidence record {rec.id}: WARC file {path} is missing") from None
    return out


@dataclass(frozen=True)
class PageRef:
    """Which page a bundle is for: exactly one of a page id, a review item id or a URL."""

    page_id: int | None = None
    item_id: int | None = None
    url: str | None = None

    def describe(self) -> str:
        if self.item_id is not None:
            return f"item {self.item_id}"
        if self.url is not None:
            return f"URL {self.url!r}"
        return f"page {self.page_id}"


def resolve_page(session: Session, ref: PageRef) -> int:
    """The page id `ref` names; `UsageError` (exit 2) when it names none or is ambiguous."""
    given = [v for v in (ref.page_id, ref.item_id, ref.url) if v is not None]
    if len(given) != 1:
        raise UsageError("name one page: a page id (--page), a review item id (--item) or a URL")
    found: int | None
    if ref.item_id is not None:
        query = select(ReviewItem.page_id).where(ReviewItem.id == ref.item_id)
        found = session.execute(query).scalar()
    elif ref.url is not None:
        found = _page_of_url(session, ref.url)
    else:
        found = session.execute(select(Page.id).where(Page.id == ref.page_id)).scalar()
    if found is None:
        raise UsageError(f"{ref.describe()}: no such page")
    return int(found)


def _page_of_url(session: Session, url: str) -> int | None:
    """The page crawled at `url` (as given, else its canonical form); None if none or several."""
    exact = list(session.execute(select(Page.id).where(Page.url == url).limit(2)).scalars())
    if len(exact) == 1:
        return int(exact[0])
    if len(exact) > 1:
        raise UsageError(f"URL {url!r}: several pages; name one with --page")
    try:
        canonical = canonical_url(url)
    except (InvalidURL, ValueError):
        return None
    query = select(Page.id).where(Page.canonical_url == canonical)
    return session.execute(query).scalar()


def collect(session: Session, home: Path, page_id: int) -> BundleContent:
    page = session.get(Page, page_id)
    if page is None:
        raise UsageError(f"page {page_id}: no such page")
    stmt = select(EvidenceRecord).where(EvidenceRecord.page_id == page_id)
    records = list(
        session.execute(stmt.order_by(EvidenceRecord.fetched_at, EvidenceRecord.id)).scalars()
    )
    if not records:
        raise UsageError(f"page {page_id}: no evidence records (never recorded, or purged)")
    item = session.execute(select(ReviewItem).where(ReviewItem.page_id == page_id)).scalar()
    warcs = _warc_members(home, records)
    members = {f"warc/{r.id}.warc.gz" for r in records if r.warc_path}
    audit = [audit_dict(row) for row in _audit_rows(session, page_id, item)]
    head = session.get(AuditHead, 1)
    manifest = {
        "format": BUNDLE_FORMAT,
        "created_at": utcnow().isoformat(),
        "page": _page_dict(page),
        "records": [
            _record_dict(r, f"warc/{r.id}.warc.gz" if f"warc/{r.id}.warc.gz" in members else None)
            for r in records
        ],
        "media": media_facts(session, page_id),
        "review": _review(item),
        "decisions": _decisions(session, item),
        "audit": {
            "file": AUDIT,
            "events": len(audit),
            "chain_head": {"id": head.last_id, "hash": head.last_hash} if head else None,
        },
    }
    return BundleContent(manifest, warcs, audit)


def build(content: BundleContent, key: Ed25519PrivateKey) -> bytes:
    """Sign the manifest (with every member's digest) and pack the bundle."""
    files = [*content.warcs, (AUDIT, canonical_json(content.audit))]
    public = key.public_key()
    manifest = {
        **content.manifest,
        "files": {name: sha256_hex(data) for name, data in files},
        "signing_key": {
            "algorithm": "ed25519",
            "public_key": public_raw(public).hex(),
            "key_id": key_id(public),
        },
    }
    manifest_bytes = canonical_json(manifest)
    signature = key.sign(manifest_bytes).hex().encode("ascii") + b"\n"
    return pack([(MANIFEST, manifest_bytes), (SIGNATURE, signature), *files])


def _add_checkpoint(content: BundleContent, key: Ed25519PrivateKey, home: Path, url: str) -> None:
    """The signed checkpoint of the chain head the bundle was read at (the newest one if it
    already holds that head, else a new one): `manifest.audit.checkpoint`, one line of
    TAKEDOWN_HOME/audit/checkpoints.jsonl, to be found in the operator's exported copies."""
    from crawler.db.audit_checkpoint import checkpoint_path, database_name, of_head

    audit = content.manifest["audit"]
    head = audit["chain_head"] or {"id": 0, "hash": GENESIS}
    checkpoint, _new = of_head(
        key, checkpoint_path(home), database_name(url), head["id"], head["hash"]
    )
    audit["checkpoint"] = checkpoint.as_json()


@dataclass(frozen=True)
class ExportResult:
    data: bytes
    page_id: int
    records: int
    media: int
    audit_events: int
    sha256: str


def export_bundle(
    db: Database, home: Path, page: int | PageRef, actor: str = "cli"
) -> ExportResult:
    """Build the page's bundle and log the export (with the bundle's digest) as an audit event.

    `page` is a page id or a `PageRef` (page id, review item id or URL); a reference that
    names no page is a `UsageError` and nothing is written.
    """
    with db.read_session() as session:
        page_id = resolve_page(session, page if isinstance(page, PageRef) else PageRef(page))
        content = collect(session, home, page_id)
    key = load_or_create_key(home)  # after the checks: a refused export writes nothing
    _add_checkpoint(content, key, home, db.url)
    data = build(content, key)
    result = ExportResult(
        data,
        page_id,
        len(content.manifest["records"]),
        len(content.manifest["media"]),
        len(content.audit),
        sha256_hex(data),
    )
    details = {
        "records": result.records,
        "bundle_sha256": result.sha256,
        "key_id": key_id(key.public_key()),
    }
    with db.session() as session:
        record(session, Event(actor, "evidence.export", "page", page_id, details))
    return result
