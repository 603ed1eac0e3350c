"""The schema: SQLAlchemy 2.0 typed models for the whole pipeline.

Media bytes are never stored: `Media` holds hashes and metadata of one distinct
content (one row per SHA-256); `Observation` records which page showed which media URL,
served by which host, with what outcome. The same image on a thousand pages is one
`Media` row and a thousand observations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from crawler.db.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("analyst", "lead", "admin")
LIST_KINDS = ("known", "benign")
LIST_ACTIONS = ("review", "auto")  # auto: an exact match confirms without a person
HASH_TYPES = ("md5", "sha1", "sha256", "pdq", "vpdq")
ITEM_STATUSES = ("pending", "escalated", "confirmed", "rejected", "removed", "suppressed")
OBSERVATION_STATUSES = ("hashed", "skipped", "error")
NOTICE_STATUSES = ("draft", "sent", "removed", "escalated", "closed", "held")
NOTICE_ROUTES = ("host", "hotline", "hold")
DISPUTE_OUTCOMES = ("upheld", "withdrawn")
FRONTIER_STATES = ("queued", "leased", "done", "failed", "skipped")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Bumped on logout-everywhere, role change or disable: sessions carry the number
    # they were issued with, so every older session dies at once.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserSession(Base):
    """Server-side review-app sessions; the cookie holds only a random id."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_version: Mapped[int] = mapped_column(Integer)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class HashList(Base):
    __tablename__ = "hash_lists"
    __table_args__ = (
        CheckConstraint(_in("kind", LIST_KINDS), name="kind"),
        CheckConstraint(_in("action", LIST_ACTIONS), name="action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="known")
    pdq_threshold: Mapped[int] = mapped_column(Integer, default=31)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped whenever entries or settings change, so a running crawl knows to reload.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # vPDQ: a video matches an entry when this share of its frames match (docs/interface.md).
    vpdq_percent: Mapped[int] = mapped_column(Integer, default=80, server_default="80")
    action: Mapped[str] = mapped_column(String(8), default="review", server_default="review")


class HashEntry(Base):
    __tablename__ = "hash_entries"
    __table_args__ = (
        UniqueConstraint("list_id", "hash_type", "hash", name="uq_hash_entries_list_type_hash"),
        CheckConstraint(_in("hash_type", HASH_TYPES), name="hash_type"),
        Index("ix_hash_entries_type_hash", "hash_type", "hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("hash_lists.id", ondelete="CASCADE"))
    hash_type: Mapped[str] = mapped_column(String(8))
    hash: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(256))
    # Set by the flood guard: an entry matching too many distinct media stops matching.
    quarantined_at: Mapped[datetime | None]
    # vpdq entries: the serialisation (JSON array of "pdq_hex,quality,timestamp"); `hash`
    # then holds its SHA-256, which keeps the unique key short.
    vpdq: Mapped[str | None] = mapped_column(Text)


class SeedSet(Base):
    __tablename__ = "seed_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Seed(Base):
    __tablename__ = "seeds"
    __table_args__ = (UniqueConstraint("set_id", "url", name="uq_seeds_set_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    set_id: Mapped[int] = mapped_column(ForeignKey("seed_sets.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class CrawlRun(Base):
    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="crawl")  # crawl | recheck
    status: Mapped[str] = mapped_column(String(16), default="running")
    policy_text: Mapped[str] = mapped_column(Text, default="")
    seed_set: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    finish_reason: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    media: Mapped[int] = mapped_column(Integer, default=0)
    matches: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    stats: Mapped[dict[str, Any] | None]
    software_version: Mapped[str | None] = mapped_column(String(64))


class FrontierEntry(Base):
    """The crawl frontier in the database: the truth a killed crawl resumes from."""

    __tablename__ = "frontier"
    __table_args__ = (
        UniqueConstraint("run_id", "fingerprint", name="uq_frontier_run_fingerprint"),
        CheckConstraint(_in("state", FRONTIER_STATES), name="state"),
        Index("ix_frontier_run_state", "run_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crawl_runs.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8), default="page")  # page | media
    depth: Mapped[int] = mapped_column(Integer, default=0)
    parent_url: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(8), default="queued")
    worker: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)


class Host(Base):
    """A (host name, address) pair as connected to, with its attribution."""

    __tablename__ = "hosts"
    __table_args__ = (UniqueConstraint("host", "ip", name="uq_hosts_host_ip"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    registered_domain: Mapped[str | None] = mapped_column(String(255), index=True)
    ip: Mapped[str] = mapped_column(String(45), default="")
    country: Mapped[str | None] = mapped_column(String(2))
    asn: Mapped[int | None] = mapped_column(BigInteger)
    as_org: Mapped[str | None] = mapped_column(String(255))
    abuse_contact: Mapped[str | None] = mapped_column(String(254))
    abuse_contact_source: Mapped[str | None] = mapped_column(String(16))  # rdap | guess
    rdap_status: Mapped[str | None] = mapped_column(String(16))
    rdap_error: Mapped[str | None] = mapped_column(Text)
    looked_up_at: Mapped[datetime | None]


class RdapCache(Base):
    """RDAP answers cached per network with an expiry."""

    __tablename__ = "rdap_cache"

    network: Mapped[str] = mapped_column(String(64), primary_key=True)
    abuse_contact: Mapped[str | None] = mapped_column(String(254))
    org: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    looked_up_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class Page(Base):
    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    canonical_url: Mapped[str] = mapped_column(Text, unique=True)
    final_url: Mapped[str | None] = mapped_column(Text)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    status_code: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(Text)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    parse_incomplete: Mapped[bool] = mapped_column(Boolean, default=False)
    tls_verified: Mapped[bool | None] = mapped_column(Boolean)  # H-07; None: plain HTTP
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))

    host: Mapped[Host | None] = relationship()


class Media(Base):
    """One distinct content, by SHA-256. Never its bytes."""

    __tablename__ = "media"
    __table_args__ = (Index("ix_media_md5", "md5"), Index("ix_media_sha1", "sha1"))

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    sha1: Mapped[str] = mapped_column(String(40))
    md5: Mapped[str] = mapped_column(String(32))
    pdq: Mapped[str | None] = mapped_column(String(64))
    pdq_quality: Mapped[int | None] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(16))
    format: Mapped[str | None] = mapped_column(String(16))
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    # Videos: the per-second frame hashes (hashes only) in vPDQ's serialisation, so that
    # `rematch` can match them again, and the decoded length.
    vpdq: Mapped[str | None] = mapped_column(Text)
    duration_s: Mapped[float | None] = mapped_column(Float)


class Observation(Base):
    """A media URL seen on a page: what was fetched, from where, with what outcome."""

    __tablename__ = "observations"
    __table_args__ = (
        UniqueConstraint("page_id", "media_url", name="uq_observations_page_media_url"),
        CheckConstraint(_in("status", OBSERVATION_STATUSES), name="status"),
        # "This run's observation of that URL": how a page listing a media URL fetched
        # for another page gets its own observation (crawler.engine.storage).
        Index("ix_observations_media_url_run", "media_url", "run_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"))
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id"), index=True)
    media_url: Mapped[str] = mapped_column(Text)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    declared_type: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    gone_at: Mapped[datetime | None]


class ArchiveMember(Base):
    """A file inside an archive media (ZIP, TAR, tar.gz; nested ones by path): its
    outcome and, for images and videos, the media row of its hashes. Never bytes.

    Keyed by the archive's media row, so one archive seen on many pages is opened once.
    `path` is the member's name as text (cleaned, capped): never used as a path.
    """

    __tablename__ = "archive_members"
    __table_args__ = (
        UniqueConstraint("archive_id", "path", name="uq_archive_members_archive_path"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    archive_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(Text)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id"), index=True)
    status: Mapped[str] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)
    depth: Mapped[int] = mapped_column(Integer, default=1)


class PageMediaRef(Base):
    """A media URL listed on a page in one run, fetched or not.

    The spider fetches each media URL once per run; every other page embedding it only
    lists it. These rows let storage (and the end-of-run reconciliation) give each such
    page its own observation of the media, so a known image on ten pages makes ten
    candidate pages. The key leads with (run, URL): the lookup when the media arrives.
    """

    __tablename__ = "page_media_refs"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("crawl_runs.id", ondelete="CASCADE"), primary_key=True
    )
    media_url: Mapped[str] = mapped_column(Text, primary_key=True)
    page_id: Mapped[int] = mapped_column(
        ForeignKey("pages.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Match(Base):
    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("media_id", "entry_id", name="uq_matches_media_entry"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("hash_lists.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("hash_entries.id", ondelete="CASCADE"))
    match_type: Mapped[str] = mapped_column(String(8))
    distance: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Video frame matches: seconds into the video; vpdq matches: share of frames matched.
    timestamp: Mapped[float | None] = mapped_column(Float)
    match_percent: Mapped[float | None] = mapped_column(Float)


class ReviewItem(Base):
    """A candidate page waiting for, or past, analyst review."""

    __tablename__ = "review_items"
    __table_args__ = (
        CheckConstraint(_in("status", ITEM_STATUSES), name="status"),
        Index("ix_review_items_queue", "status", "priority", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    no_viewing_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Indexed: `Next item` first looks for an item the analyst already holds.
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    lease_until: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    category: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    countersigned_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    removed_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What settled it: "analyst", "list:NAME" (an auto list) or "media:ITEM_ID" (an
    # analyst's media decision on item ITEM_ID, spread); NULL while undecided.
    decided_via: Mapped[str | None] = mapped_column(String(160), index=True)
    review_kind: Mapped[str] = mapped_column(String(16), default="page", server_default="page")

    page: Mapped[Page] = relationship()


class Decision(Base):
    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("review_items.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16))  # confirm | reject | escalate | countersign
    category: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)
    item_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notice(Base):
    __tablename__ = "notices"
    __table_args__ = (CheckConstraint(_in("status", NOTICE_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    abuse_contact: Mapped[str] = mapped_column(String(254))
    contact_is_guess: Mapped[bool] = mapped_column(Boolean, default=False)
    asn: Mapped[int | None] = mapped_column(BigInteger)
    as_org: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    last_sent_at: Mapped[datetime | None]
    send_count: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Set when any URL sits behind a CDN: the contact is the CDN's, not the origin host's.
    cdn_fronted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The upstream network's contact once escalated; NULL means "not known yet".
    escalation_contact: Mapped[str | None] = mapped_column(String(254))
    # What the notice said, frozen at build time so every re-export says the same.
    operator_name: Mapped[str | None] = mapped_column(String(255))
    operator_contact: Mapped[str | None] = mapped_column(String(254))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    appeal: Mapped[str | None] = mapped_column(Text)
    # Routing (TAKEDOWN_ROUTING), frozen at build: a later change of the file never
    # re-routes a notice. `recipient` is the address it goes to (the abuse contact, or a
    # partner hotline's address); a `hold` notice waits as `held` until released.
    route: Mapped[str] = mapped_column(String(16), default="host", server_default="host")
    recipient: Mapped[str | None] = mapped_column(String(254))
    hotline_name: Mapped[str | None] = mapped_column(String(255))
    held_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    trusted_flagger: Mapped[str | None] = mapped_column(Text)
    trusted_flagger_authority: Mapped[str | None] = mapped_column(Text)
    # `urgent`: a referral to TAKEDOWN_URGENT_CONTACT (a child may be at risk now), sent
    # at once and apart from the takedown notices of the same URLs (crawler.notices.urgent).
    kind: Mapped[str] = mapped_column(String(16), default="takedown", server_default="takedown")


class NoticeUrl(Base):
    __tablename__ = "notice_urls"
    __table_args__ = (UniqueConstraint("notice_id", "item_id", name="uq_notice_urls_notice_item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    first_seen: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(45))
    removed_at: Mapped[datetime | None]
    legal_basis: Mapped[str | None] = mapped_column(Text)  # per category, frozen at build
    withdrawn_at: Mapped[datetime | None]  # a dispute withdrew it (crawler.notices.disputes)
    # item_id while the notice is open, NULL once it is removed or closed: the unique
    # constraint is what keeps a URL in at most one open notice, even under races.
    open_item_id: Mapped[int | None] = mapped_column(Integer, unique=True)


class NoticeDispute(Base):
    """A provider's dispute of one URL of a notice, and a second lead's re-assessment."""

    __tablename__ = "notice_disputes"
    __table_args__ = (
        CheckConstraint(f"outcome IS NULL OR {_in('outcome', DISPUTE_OUTCOMES)}", name="outcome"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("review_items.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(16))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution_notes: Mapped[str | None] = mapped_column(Text)


class NoticeSerial(Base):
    """The last serial number handed out per year; bumped by one atomic upsert."""

    __tablename__ = "notice_serials"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(Integer, default=0)


class LoginFailure(Base):
    """Failed sign-ins per account and per client address: the review app's login throttle.

    Shared by every app process (docs/review.md); rows quiet for an hour are deleted.
    """

    __tablename__ = "login_failures"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # account | address
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime] = mapped_column(index=True)


class RateBucket(Base):
    """A token bucket per key of the review app's rate limits (previews per user)."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime]


class AuditEvent(Base):
    """Append-only, hash-chained: each row carries the hash of the previous one."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any] | None]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """A single row locked by every append, so concurrent appends never fork the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class ExposureDay(Base):
    """Per analyst and UTC day: reveals, item views and time spent on item pages.

    `open_item_id`/`open_since` remember the item page last opened, so the time until
    the next view or decision can be added to `seconds` (capped by the review app).
    """

    __tablename__ = "exposure_days"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD, UTC
    reveals: Mapped[int] = mapped_column(Integer, default=0)
    views: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[int] = mapped_column(Integer, default=0)
    open_item_id: Mapped[int | None] = mapped_column(Integer)
    open_since: Mapped[datetime | None]


class Schedule(Base):
    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    cron: Mapped[str] = mapped_column(String(128))
    seed_set: Mapped[str | None] = mapped_column(String(128))
    seeds_file: Mapped[str | None] = mapped_column(Text)
    policy_path: Mapped[str | None] = mapped_column(Text)
    recheck: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_run_at: Mapped[datetime | None]
    next_run_at: Mapped[datetime | None]
    lock_owner: Mapped[str | None] = mapped_column(String(128))
    lock_until: Mapped[datetime | None]
    exchange: Mapped[str | None] = mapped_column(String(128))  # `exchange fetch NAME`


class ScheduleRun(Base):
    __tablename__ = "schedule_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    exit_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)


class EvidenceRecord(Base):
    """What the crawler saw of one page at one fetch: provenance without media bytes.

    The page text itself (with every `data:` media replaced by its hashes) lives in the
    WARC file named by `warc_path`, relative to `TAKEDOWN_HOME/evidence`. Rows and files
    are removed together by `takedown evidence purge` once past retention.
    """

    __tablename__ = "evidence_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id", ondelete="SET NULL"))
    requested_url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str] = mapped_column(Text)
    redirect_chain: Mapped[list[str]] = mapped_column(JSON)
    status_code: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))
    tls_fingerprint: Mapped[str | None] = mapped_column(String(64))  # SHA-256 of the DER cert
    tls_issuer: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime]
    content_sha256: Mapped[str | None] = mapped_column(String(64))  # the body as received
    policy_sha256: Mapped[str | None] = mapped_column(String(64))
    software_version: Mapped[str | None] = mapped_column(String(64))
    data_media: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # replaced data: URIs
    warc_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Exchange(Base):
    """A hash exchange feeding one list (crawler.matching.exchanges). Never its credentials."""

    __tablename__ = "exchanges"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    api: Mapped[str] = mapped_column(String(32))
    list_id: Mapped[int] = mapped_column(ForeignKey("hash_lists.id"), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    checkpoint: Mapped[dict[str, Any] | None]
    # A full fetch (first, stale checkpoint, or a snapshot exchange) marks every record
    # with a new generation; records left on an older one are deleted when it completes.
    generation: Mapped[int] = mapped_column(Integer, default=0)
    full_fetch: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_fetch_at: Mapped[datetime | None]
    last_status: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(Text)
    # One fetch at a time: host:pid of the running fetch and its lease.
    lock_owner: Mapped[str | None] = mapped_column(String(128))
    lock_until: Mapped[datetime | None]


class ExchangeRecord(Base):
    """Which signal each upstream record key put in the list: deletions follow keys."""

    __tablename__ = "exchange_records"
    __table_args__ = (
        UniqueConstraint(
            "exchange_id", "record_key", "hash_type", "hash", name="uq_exchange_records_key"
        ),
        Index("ix_exchange_records_signal", "exchange_id", "hash_type", "hash"),
        Index("ix_exchange_records_generation", "exchange_id", "generation"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id", ondelete="CASCADE"))
    record_key: Mapped[str] = mapped_column(String(256))
    hash_type: Mapped[str] = mapped_column(String(8))
    hash: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(Integer)


class ExchangeOpinion(Base):
    """A false positive found in review, to be reported to the exchange it came from."""

    __tablename__ = "exchange_opinions"
    __table_args__ = (
        UniqueConstraint("exchange_id", "hash_type", "hash", name="uq_exchange_opinions_signal"),
        Index("ix_exchange_opinions_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    exchange_id: Mapped[int] = mapped_column(ForeignKey("exchanges.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("review_items.id", ondelete="SET NULL"))
    hash_type: Mapped[str] = mapped_column(String(8))
    hash: Mapped[str] = mapped_column(String(64))
    opinion: Mapped[str] = mapped_column(String(16), default="negative")
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|sent|unsupported|failed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class WellnessSetting(Base):
    """What the review app shows an analyst: one row per user, `user_id` NULL for the
    team default an admin sets (docs/review.md, "Wellness settings")."""

    __tablename__ = "wellness_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    blur_px: Mapped[int] = mapped_column(Integer, default=12)
    greyscale: Mapped[bool] = mapped_column(Boolean, default=True)
    reveal_confirm: Mapped[bool] = mapped_column(Boolean, default=False)
    keyframes_only: Mapped[bool] = mapped_column(Boolean, default=True)
    break_minutes: Mapped[int] = mapped_column(Integer, default=0)  # 0: no reminder
    break_reveals: Mapped[int] = mapped_column(Integer, default=0)  # 0: no reminder
    theme: Mapped[str] = mapped_column(String(8), default="auto")  # auto | light | dark
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BenignProposal(Base):
    """An analyst's benign-listing of one media awaiting a second person's agreement
    (`TAKEDOWN_BENIGN_FOUR_EYES`, docs/review.md); agreed: its hashes join the list."""

    __tablename__ = "benign_proposals"
    __table_args__ = (Index("ix_benign_proposals_media", "media_id", "agreed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("review_items.id", ondelete="SET NULL"))
    list_name: Mapped[str] = mapped_column(String(128))
    proposed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    agreed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    agreed_at: Mapped[datetime | None]
