"""Pages settled with no person (auto lists, spread media decisions), for leads and exposure.

Leads see what each source settled (`list:NAME`, `media:ITEM_ID`) so a bad list or a wrong
decision is caught and undone (`crawler.matching.media_decisions.revert`). The exposure page counts
the media settled without a view next to the reveals made: each media on a page settled
this way is one look nobody had to take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, cast, func, literal, select
from sqlalchemy.orm import Session, aliased

from crawler.db.models import Observation, Page, ReviewItem, User

_AUTO = (ReviewItem.status == "confirmed", ReviewItem.decided_by.is_(None))
SOURCE_LIMIT = 200
ROW_LIMIT = 200


@dataclass(frozen=True)
class Source:
    decided_via: str
    pages: int


@dataclass(frozen=True)
class SettledRow:
    id: int
    url: str
    decided_via: str
    category: str | None


@dataclass(frozen=True)
class Avoided:
    """Pages and media settled without a person looking (to date)."""

    who: str
    pages: int
    media: int


def sources(session: Session) -> list[Source]:
    rows = session.execute(
        select(ReviewItem.decided_via, func.count())
        .where(*_AUTO, ReviewItem.decided_via.is_not(None))
        .group_by(ReviewItem.decided_via)
        .order_by(func.count().desc(), ReviewItem.decided_via)
        .limit(SOURCE_LIMIT)
    )
    return [Source(str(v), int(n)) for v, n in rows]


def settled_rows(session: Session, via: str | None) -> list[SettledRow]:
    query = (
        select(ReviewItem.id, Page.url, ReviewItem.decided_via, ReviewItem.category)
        .join(Page, Page.id == ReviewItem.page_id)
        .where(*_AUTO, ReviewItem.decided_via.is_not(None))
        .order_by(ReviewItem.id.desc())
        .limit(ROW_LIMIT)
    )
    if via:
        query = query.where(ReviewItem.decided_via == via)
    return [SettledRow(int(i), u, str(v), c) for i, u, v, c in session.execute(query)]


def _avoided(session: Session, *where: Any) -> tuple[int, int]:
    pages = session.execute(select(func.count()).select_from(ReviewItem).where(*_AUTO, *where))
    media = session.execute(
        select(func.count())
        .select_from(Observation)
        .join(ReviewItem, ReviewItem.page_id == Observation.page_id)
        .where(*_AUTO, Observation.media_id.is_not(None), *where)
    )
    return int(pages.scalar_one()), int(media.scalar_one())


def avoided_by(session: Session, user_id: int, username: str) -> Avoided:
    """What the media decisions of `user_id` settled on other pages."""
    source = aliased(ReviewItem)
    mine = ReviewItem.decided_via.in_(
        select(literal("media:") + cast(source.id, String)).where(source.decided_by == user_id)
    )
    return Avoided(username, *_avoided(session, mine))


def avoided_team(session: Session) -> list[Avoided]:
    """Per analyst whose decisions spread, then by lists alone, then the whole team."""
    deciders = session.execute(
        select(User.id, User.username)
        .where(
            User.id.in_(
                select(ReviewItem.decided_by).where(
                    ReviewItem.decided_by.is_not(None), ReviewItem.status == "confirmed"
                )
            )
        )
        .order_by(User.username)
    ).all()
    out = [avoided_by(session, int(i), str(n)) for i, n in deciders]
    out = [a for a in out if a.pages]
    lists = ReviewItem.decided_via.like("list:%")
    out.append(Avoided("(lists alone)", *_avoided(session, lists)))
    out.append(Avoided("(team)", *_avoided(session)))
    return out
