"""Exposure counters: reveals, item views and time on item pages, per analyst per UTC day.

Time on an item page is counted from one item view to the next view or decision by the
same analyst, capped per view so a tab left open overnight does not count as a shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.db.models import ExposureDay, User


def day_of(now: datetime) -> str:
    return now.date().isoformat()


def _row(session: Session, user_id: int, now: datetime) -> ExposureDay:
    row = session.get(ExposureDay, (user_id, day_of(now)))
    if row is None:
        row = ExposureDay(user_id=user_id, day=day_of(now), reveals=0, views=0, seconds=0)
        session.add(row)
        session.flush()
    return row


def _close_open_view(row: ExposureDay, now: datetime, cap_s: int) -> None:
    if row.open_since is not None:
        row.seconds += int(min(max((now - row.open_since).total_seconds(), 0), cap_s))
    row.open_item_id, row.open_since = None, None


def item_viewed(session: Session, user_id: int, item_id: int, now: datetime, cap_s: int) -> None:
    row = _row(session, user_id, now)
    _close_open_view(row, now, cap_s)
    row.views += 1
    row.open_item_id, row.open_since = item_id, now


def item_left(session: Session, user_id: int, now: datetime, cap_s: int) -> None:
    _close_open_view(_row(session, user_id, now), now, cap_s)


def revealed(session: Session, user_id: int, now: datetime) -> int:
    """Count one reveal; returns today's reveals including this one."""
    row = _row(session, user_id, now)
    row.reveals += 1
    return row.reveals


@dataclass(frozen=True)
class Exposure:
    username: str
    day: str
    reveals: int
    views: int
    seconds: int
    budget: int

    @property
    def over_budget(self) -> bool:
        return self.reveals >= self.budget

    @property
    def minutes(self) -> int:
        return self.seconds // 60


def own_day(session: Session, user: tuple[int, str], now: datetime, budget: int) -> Exposure:
    row = session.get(ExposureDay, (user[0], day_of(now)))
    if row is None:
        return Exposure(user[1], day_of(now), 0, 0, 0, budget)
    return Exposure(user[1], row.day, row.reveals, row.views, row.seconds, budget)


def team_day(session: Session, now: datetime, budget: int) -> list[Exposure]:
    rows = session.execute(
        select(User.username, ExposureDay)
        .join(ExposureDay, ExposureDay.user_id == User.id)
        .where(ExposureDay.day == day_of(now))
        .order_by(User.username)
    )
    return [Exposure(name, e.day, e.reveals, e.views, e.seconds, budget) for name, e in rows]
