"""What an item page shows: the page, its hosting, each media with hashes and matches.

Plain dataclasses, loaded in one read session; templates and the JSON API both render
these. Exact matches (md5/sha1/sha256) against a *known* list mean the content is already
verified: such media are shown as metadata only (docs/hazards.md A-13), and an item whose every
media matched that way needs no viewing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session, aliased

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
from crawler.matching.match_state import ACTIVE, active_clause, match_states
from crawler.reporting.exports import match_rows
from review.queue import OPEN_ITEM_STATUSES

EXACT_TYPES = ("md5", "sha1", "sha256")


def clock(seconds: float) -> str:
    """Seconds into a video as m:ss (h:mm:ss past an hour)."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class MatchView:
    list_name: str
    list_kind: str
    match_type: str
    distance: int
    category: str | None
    reference: str | None
    # `crawler.matching.match_state`: active (a hit), suppressed (a benign list wins), benign, inactive
    state: str = ACTIVE
    list_action: str = "review"
    entry_hash: str | None = None
    timestamp: float | None = None  # a video frame's match: seconds into the video
    match_percent: float | None = None  # a vpdq match: share of the video's frames

    def strength(self, categories: Sequence[str] = ()) -> tuple[int, float, float, int, str]:
        """Sort key, strongest first: exact before near, then a smaller distance (a larger
        share of frames for vpdq), then the more severe category."""
        ranked = list(categories)
        cat = self.category or ""
        severity = len(ranked) - ranked.index(cat) if cat in ranked else 0
        share = -(self.match_percent or 0.0)
        tier = 0 if self.match_type in EXACT_TYPES else 1
        return (tier, float(self.distance), share, -severity, self.list_name)

    def words(self) -> str:
        """The match in a sentence: what kind of copy, of which list entry, which category."""
        entry = f"list {self.list_name}" + (f" entry {self.reference}" if self.reference else "")
        category = f", category {self.category}" if self.category else ""
        if self.match_type in EXACT_TYPES:
            return f"Exact copy ({self.match_type}) of {entry}{category}"
        if self.match_type == "vpdq":
            share = f"{self.match_percent:g}% of frames" if self.match_percent else "its frames"
            return f"Video matches {entry}: {share} within PDQ distance {self.distance}{category}"
        near = (
            f"Near copy, {self.match_type.upper()} distance {self.distance}, of {entry}{category}"
        )
        if self.timestamp is not None:
            return f"{near}, at {clock(self.timestamp)}"
        return near

    @property
    def exact_known(self) -> bool:
        return self.list_kind == "known" and self.match_type in EXACT_TYPES

    @property
    def counts(self) -> bool:
        """A hit under the lists as they are now (not suppressed, not inactive)."""
        return self.state == ACTIVE

    @property
    def near_auto(self) -> bool:
        """A near (PDQ) match on a list whose exact matches confirm on their own."""
        return (
            self.list_kind == "known"
            and self.list_action == "auto"
            and self.match_type not in EXACT_TYPES
        )


@dataclass(frozen=True)
class MediaView:
    observation_id: int
    media_url: str
    status: str
    error: str | None
    gone_at: datetime | None
    media_id: int | None
    media_type: str | None
    format: str | None
    sha256: str | None
    sha1: str | None
    md5: str | None
    pdq: str | None
    pdq_quality: int | None
    width: int | None
    height: int | None
    duration_s: float | None
    matches: list[MatchView] = field(default_factory=list)
    # archives: what is inside (path as text, hashes and matches; never previewed)
    members: list[MemberView] = field(default_factory=list)

    @property
    def exact_known(self) -> bool:
        return any(m.exact_known for m in self.matches)

    @property
    def keyframes(self) -> bool:
        """A video shown as a strip of blurred keyframes (never played, never sound)."""
        return self.media_type == "video" and not self.exact_known and self.media_id is not None

    @property
    def own_matches(self) -> list[MatchView]:
        """Matches that count, less those an archive only holds through a member (these
        are shown under the member)."""
        inner = {(x.list_name, x.entry_hash, x.match_type) for m in self.members for x in m.matches}
        return [
            x
            for x in self.matches
            if x.counts and (x.list_name, x.entry_hash, x.match_type) not in inner
        ]

    @property
    def benign(self) -> bool:
        return any(m.list_kind == "benign" for m in self.matches)

    @property
    def near_auto(self) -> MatchView | None:
        """The nearest match on an auto list, when this media only comes near one."""
        if self.exact_known:
            return None
        return next((m for m in self.matches if m.near_auto), None)

    @property
    def previewable(self) -> bool:
        # Exact known matches are metadata only; a video is a keyframe strip (never played);
        # an archive lists its members (never unpacked again for a look).
        return not self.exact_known and self.media_type not in ("video", "archive")


@dataclass(frozen=True)
class MemberView:
    """A file inside an archive: its path (text only), outcome, hashes and matches."""

    path: str
    status: str
    error: str | None
    depth: int
    media_id: int | None
    media_type: str | None
    format: str | None
    sha256: str | None
    pdq: str | None
    matches: list[MatchView] = field(default_factory=list)


@dataclass(frozen=True)
class Reason:
    """One line of "why this page is here": a match of media `number` (and member)."""

    number: int
    media: MediaView
    match: MatchView
    member: str | None = None

    @property
    def text(self) -> str:
        where = f"Media {self.number}"
        if self.member is not None:
            where += f", archive member {self.member}"
        return f"{where}: {self.match.words()}"


@dataclass(frozen=True)
class KnownMedia:
    """Metadata of a media a decision or list already settled: shown, never previewed."""

    list_name: str
    category: str | None
    reference: str | None
    distance: int
    media_type: str | None
    format: str | None
    width: int | None
    height: int | None
    bytes: int | None
    sha256: str | None


@dataclass(frozen=True)
class RelatedItem:
    id: int
    url: str
    status: str


@dataclass(frozen=True)
class ItemView:
    id: int
    status: str
    priority: int
    version: int
    claimed_by: int | None
    claimed_by_name: str | None
    lease_until: datetime | None
    category: str | None
    notes: str | None
    decided_by_name: str | None
    decided_at: datetime | None
    countersigned_by_name: str | None
    removed_at: datetime | None
    flagged_no_viewing: bool
    url: str
    final_url: str | None
    title: str | None
    status_code: int | None
    first_seen: datetime
    last_seen: datetime
    host: str | None
    ip: str | None
    country: str | None
    asn: int | None
    as_org: str | None
    abuse_contact: str | None
    media: list[MediaView]
    related: list[RelatedItem]
    review_kind: str = "page"
    decided_via: str | None = None
    # confirm-match items: near-matched media id -> the known media it comes near
    known_media: dict[int, KnownMedia] = field(default_factory=dict)

    @property
    def default_illegal(self) -> list[int]:
        """Media ids ticked `Illegal` by default: exact known matches (and, on a
        confirm-match item, the media that come near a confirmed one)."""
        ticked = []
        for m in self.media:
            if m.media_id is None or m.benign:
                continue
            if m.exact_known or (self.review_kind == "confirm-match" and m.near_auto):
                ticked.append(m.media_id)
        return ticked

    @property
    def match_category(self) -> str | None:
        """The category a confirm-match item's known media was confirmed with."""
        for m in self.media:
            near = m.near_auto
            if near is not None and near.category:
                return near.category
        return None

    def reasons(self, categories: Sequence[str] = ()) -> list[Reason]:
        """Every counting match of the page's media (archive members included), strongest
        first: exact before near, then smaller distance, then severity."""
        found: list[Reason] = []
        for n, m in enumerate(self.media, 1):
            found += [Reason(n, m, x) for x in m.own_matches]
            for member in m.members:
                found += [Reason(n, m, x, member.path) for x in member.matches if x.counts]
        return sorted(found, key=lambda r: (r.match.strength(categories), r.number))

    @property
    def no_viewing_needed(self) -> bool:
        hashed = [m for m in self.media if m.media_id is not None]
        computed = bool(hashed) and all(m.exact_known for m in hashed)
        return self.flagged_no_viewing or computed

    @property
    def has_exact_known(self) -> bool:
        return any(m.exact_known for m in self.media)

    @property
    def page_gone(self) -> bool:
        return self.removed_at is not None or self.status_code in (404, 410)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["no_viewing_needed"] = self.no_viewing_needed
        for key, value in list(data.items()):
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        for media in data["media"]:
            media["gone_at"] = media["gone_at"].isoformat() if media["gone_at"] else None
        return data


# Statements built once: an item page, a decision and a preview each load an item.
_CLAIMER, _DECIDER, _SIGNER = aliased(User), aliased(User), aliased(User)
_ITEM = (
    select(
        ReviewItem.id,
        ReviewItem.status,
        ReviewItem.priority,
        ReviewItem.version,
        ReviewItem.claimed_by,
        _CLAIMER.username,
        ReviewItem.lease_until,
        ReviewItem.category,
        ReviewItem.notes,
        _DECIDER.username,
        ReviewItem.decided_at,
        _SIGNER.username,
        ReviewItem.removed_at,
        ReviewItem.no_viewing_needed,
        Page.url,
        Page.final_url,
        Page.title,
        Page.status_code,
        Page.first_seen,
        Page.last_seen,
        Host.host,
        Host.ip,
        Host.country,
        Host.asn,
        Host.as_org,
        Host.abuse_contact,
        Page.id,
        ReviewItem.review_kind,
        ReviewItem.decided_via,
    )
    .join(Page, Page.id == ReviewItem.page_id)
    .outerjoin(Host, Host.id == Page.host_id)
    .outerjoin(_CLAIMER, _CLAIMER.id == ReviewItem.claimed_by)
    .outerjoin(_DECIDER, _DECIDER.id == ReviewItem.decided_by)
    .outerjoin(_SIGNER, _SIGNER.id == ReviewItem.countersigned_by)
    .where(ReviewItem.id == bindparam("item_id"))
)
# The columns of `MediaView` up to `matches`, in its field order.
_MEDIA_COLUMNS = (
    Observation.id,
    Observation.media_url,
    Observation.status,
    Observation.error,
    Observation.gone_at,
    Media.id,
    Media.media_type,
    Media.format,
    Media.sha256,
    Media.sha1,
    Media.md5,
    Media.pdq,
    Media.pdq_quality,
    Media.width,
    Media.height,
    Media.duration_s,
)
_OBSERVATION = (
    select(*_MEDIA_COLUMNS)
    .join(ReviewItem, ReviewItem.page_id == Observation.page_id)
    .outerjoin(Media, Media.id == Observation.media_id)
    .where(Observation.id == bindparam("observation_id"), ReviewItem.id == bindparam("item_id"))
)
_MATCHES = (
    match_rows(
        Match.media_id,
        HashList.name,
        HashList.kind,
        Match.match_type,
        Match.distance,
        HashEntry.category,
        HashEntry.reference,
        active_clause(Match, HashEntry, HashList),
        HashList.action,
        HashEntry.hash,
        Match.timestamp,
        Match.match_percent,
    )
    .where(Match.media_id.in_(bindparam("media_ids", expanding=True)))
    .order_by(Match.media_id, Match.distance, HashList.name)
)


def _matches(conn: Connection, media_ids: list[int]) -> dict[int, list[MatchView]]:
    out: dict[int, list[MatchView]] = {}
    if not media_ids:
        return out
    rows: dict[int, list[Any]] = {}
    for row in conn.execute(_MATCHES, {"media_ids": media_ids}):
        rows.setdefault(row[0], []).append(row)
    for media_id, found in rows.items():
        states = match_states((r[2], r[7]) for r in found)
        out[media_id] = [
            MatchView(
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                state=st,
                list_action=r[8],
                entry_hash=r[9],
                timestamp=r[10],
                match_percent=r[11],
            )
            for r, st in zip(found, states, strict=True)
        ]
    return out


def _media_views(conn: Connection, rows: Sequence[Sequence[Any]]) -> list[MediaView]:
    """`MediaView`s of observation rows (columns `_MEDIA_COLUMNS`), with their matches."""
    archives = [r[5] for r in rows if r[5] is not None and r[6] == "archive"]
    members = _members(conn, archives)
    matches = _matches(conn, [r[5] for r in rows if r[5] is not None])
    # Rows spread in column order; mypy cannot count a row's columns, hence the ignores.
    return [
        MediaView(*r, matches=matches.get(r[5], []), members=members.get(r[5], []))  # type: ignore[misc]
        for r in rows
    ]


MAX_MEMBERS_SHOWN = 200  # per archive on an item page; the export lists every member
_MEMBERS = (
    select(
        ArchiveMember.archive_id,
        ArchiveMember.path,
        ArchiveMember.status,
        ArchiveMember.error,
        ArchiveMember.depth,
        Media.id,
        Media.media_type,
        Media.format,
        Media.sha256,
        Media.pdq,
    )
    .outerjoin(Media, Media.id == ArchiveMember.media_id)
    .where(ArchiveMember.archive_id.in_(bindparam("archive_ids", expanding=True)))
    .order_by(ArchiveMember.archive_id, ArchiveMember.id)
    .limit(MAX_MEMBERS_SHOWN * 50)
)


def _members(conn: Connection, archive_ids: list[int]) -> dict[int, list[MemberView]]:
    """The members of each archive (at most `MAX_MEMBERS_SHOWN` each), with matches."""
    if not archive_ids:
        return {}
    rows = conn.execute(_MEMBERS, {"archive_ids": archive_ids}).all()
    matches = _matches(conn, sorted({r[5] for r in rows if r[5] is not None}))
    out: dict[int, list[MemberView]] = {}
    for r in rows:
        shown = out.setdefault(r[0], [])
        if len(shown) < MAX_MEMBERS_SHOWN:
            shown.append(MemberView(*r[1:], matches=matches.get(r[5], [])))  # type: ignore[misc]
    return out


def related_items(session: Session, item_id: int, media: list[MediaView]) -> list[RelatedItem]:
    """Other open items whose pages show media that matched a known list exactly."""
    exact = sorted({m.media_id for m in media if m.exact_known and m.media_id is not None})
    if not exact:
        return []
    rows = session.connection().execute(
        select(ReviewItem.id, Page.url, ReviewItem.status)
        .join(Page, Page.id == ReviewItem.page_id)
        .where(
            ReviewItem.id != item_id,
            ReviewItem.status.in_(OPEN_ITEM_STATUSES),
            ReviewItem.page_id.in_(
                select(Observation.page_id).where(Observation.media_id.in_(exact))
            ),
        )
        .order_by(ReviewItem.id)
        .limit(500)
    )
    return [RelatedItem(*row) for row in rows]


# The item and its page's media in one statement (a row per media, or one with NULLs):
# one round trip fewer for every item page and decision than item, then media.
_ITEM_WIDTH = len(_ITEM.selected_columns)
_ITEM_AND_MEDIA = (
    _ITEM.add_columns(*_MEDIA_COLUMNS)
    .outerjoin(Observation, Observation.page_id == ReviewItem.page_id)
    .outerjoin(Media, Media.id == Observation.media_id)
    .order_by(Observation.id)
)


def load_item(session: Session, item_id: int) -> ItemView | None:
    """The item with its page, hosting, people, media and related items (Core rows)."""
    conn = session.connection()
    rows = conn.execute(_ITEM_AND_MEDIA, {"item_id": item_id}).all()
    if not rows:
        return None
    item = rows[0][: _ITEM_WIDTH - 3]  # then the page id, review kind and decided_via
    kind, via = rows[0][_ITEM_WIDTH - 2], rows[0][_ITEM_WIDTH - 1]
    observed = [r[_ITEM_WIDTH:] for r in rows if r[_ITEM_WIDTH] is not None]
    media = _media_views(conn, observed)
    related = related_items(session, item_id, media)
    known = known_media(conn, media) if kind == "confirm-match" else {}
    return ItemView(  # type: ignore[misc]
        *item, media=media, related=related, review_kind=kind, decided_via=via, known_media=known
    )


def known_media(conn: Connection, media: list[MediaView]) -> dict[int, KnownMedia]:
    """For each media coming near an auto list: the stored media of that entry's PDQ (its
    metadata only), or the entry alone when no stored media has it."""
    out: dict[int, KnownMedia] = {}
    for m in media:
        near = m.near_auto
        if m.media_id is None or near is None:
            continue
        row = conn.execute(
            select(Media.media_type, Media.format, Media.width, Media.height, Media.bytes,
                   Media.sha256)
            .where(Media.pdq == near.entry_hash, Media.id != m.media_id)
            .order_by(Media.id)
            .limit(1)
        ).first()  # fmt: skip
        facts = tuple(row) if row is not None else (None,) * 6
        out[m.media_id] = KnownMedia(
            near.list_name,
            near.category,
            near.reference,
            near.distance,
            *facts,  # type: ignore[arg-type]
        )
    return out


def observation_for(session: Session, item_id: int, observation_id: int) -> MediaView | None:
    """The media of `observation_id` only if it belongs to item `item_id` (no IDOR)."""
    conn = session.connection()
    params = {"observation_id": observation_id, "item_id": item_id}
    rows = conn.execute(_OBSERVATION, params).all()
    return _media_views(conn, rows)[0] if rows else None
