"""What an item page shows: the page, its hosting, each media with hashes and matches.

Plain dataclasses, loaded in one read session; templates and the JSON API both render
these. Exact matches (md5/sha1/sha256) against a *known* list mean the content is already
verified: such media are shown as metadata only (HAZARDS A-13), and an item whose every
media matched that way needs no viewing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.db.models import (
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
from review.queue import OPEN_STATUSES

EXACT_TYPES = ("md5", "sha1", "sha256")


@dataclass(frozen=True)
class MatchView:
    list_name: str
    list_kind: str
    match_type: str
    distance: int
    category: str | None
    reference: str | None

    @property
    def exact_known(self) -> bool:
        return self.list_kind == "known" and self.match_type in EXACT_TYPES


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
    matches: list[MatchView] = field(default_factory=list)

    @property
    def exact_known(self) -> bool:
        return any(m.exact_known for m in self.matches)

    @property
    def previewable(self) -> bool:
        # Exact known matches are metadata only; video is never previewed (no autoplay).
        return not self.exact_known and self.media_type != "video"


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


def _matches(session: Session, media_ids: list[int]) -> dict[int, list[MatchView]]:
    out: dict[int, list[MatchView]] = {}
    if not media_ids:
        return out
    rows = session.execute(
        select(Match, HashList.name, HashList.kind, HashEntry.category, HashEntry.reference)
        .join(HashList, HashList.id == Match.list_id)
        .join(HashEntry, HashEntry.id == Match.entry_id)
        .where(Match.media_id.in_(media_ids))
        .order_by(Match.media_id, Match.distance, HashList.name)
    )
    for match, name, kind, category, reference in rows:
        view = MatchView(name, kind, match.match_type, match.distance, category, reference)
        out.setdefault(match.media_id, []).append(view)
    return out


def _media(session: Session, page_id: int) -> list[MediaView]:
    rows = session.execute(
        select(Observation, Media)
        .outerjoin(Media, Media.id == Observation.media_id)
        .where(Observation.page_id == page_id)
        .order_by(Observation.id)
    ).all()
    matches = _matches(session, [m.id for _, m in rows if m is not None])
    return [_media_view(obs, media, matches) for obs, media in rows]


def _media_view(
    obs: Observation, media: Media | None, matches: dict[int, list[MatchView]]
) -> MediaView:
    def attr(name: str) -> Any:
        return getattr(media, name) if media is not None else None

    return MediaView(
        obs.id,
        obs.media_url,
        obs.status,
        obs.error,
        obs.gone_at,
        attr("id"),
        attr("media_type"),
        attr("format"),
        attr("sha256"),
        attr("sha1"),
        attr("md5"),
        attr("pdq"),
        attr("pdq_quality"),
        attr("width"),
        attr("height"),
        matches.get(media.id, []) if media is not None else [],
    )


def related_items(session: Session, item: ReviewItem, media: list[MediaView]) -> list[RelatedItem]:
    """Other open items whose pages show media that matched a known list exactly."""
    exact = sorted({m.media_id for m in media if m.exact_known and m.media_id is not None})
    if not exact:
        return []
    rows = session.execute(
        select(ReviewItem.id, Page.url, ReviewItem.status)
        .join(Page, Page.id == ReviewItem.page_id)
        .where(
            ReviewItem.id != item.id,
            ReviewItem.status.in_(OPEN_STATUSES),
            ReviewItem.page_id.in_(
                select(Observation.page_id).where(Observation.media_id.in_(exact))
            ),
        )
        .order_by(ReviewItem.id)
        .limit(500)
    )
    return [RelatedItem(*row) for row in rows]


def _name(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return user.username if user else None


def load_item(session: Session, item_id: int) -> ItemView | None:
    item = session.get(ReviewItem, item_id)
    if item is None:
        return None
    page = session.get(Page, item.page_id)
    assert page is not None
    host = session.get(Host, page.host_id) if page.host_id else None
    media = _media(session, page.id)
    return ItemView(
        item.id,
        item.status,
        item.priority,
        item.version,
        item.claimed_by,
        _name(session, item.claimed_by),
        item.lease_until,
        item.category,
        item.notes,
        _name(session, item.decided_by),
        item.decided_at,
        _name(session, item.countersigned_by),
        item.removed_at,
        item.no_viewing_needed,
        page.url,
        page.final_url,
        page.title,
        page.status_code,
        page.first_seen,
        page.last_seen,
        host.host if host else None,
        host.ip if host else None,
        host.country if host else None,
        host.asn if host else None,
        host.as_org if host else None,
        host.abuse_contact if host else None,
        media,
        related_items(session, item, media),
    )


def observation_for(session: Session, item_id: int, observation_id: int) -> MediaView | None:
    """The media of `observation_id` only if it belongs to item `item_id` (no IDOR)."""
    item = session.get(ReviewItem, item_id)
    obs = session.get(Observation, observation_id)
    if item is None or obs is None or obs.page_id != item.page_id:
        return None
    media = session.get(Media, obs.media_id) if obs.media_id else None
    matches = _matches(session, [media.id]) if media is not None else {}
    return _media_view(obs, media, matches)
