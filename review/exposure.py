"""Exposure counters: reveals, item views and time on item pages, per analyst per UTC day.

Time on an item page is counted from one item view to the next view or decision by the
same analyst, capped per view so a tab left open overnight does not count as a shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.orm import Session

from crawler.db.models import ExposureDay, User


def day_of(now: datetime) -> str:
    return now.date().isoformat()


_KEY = and_(ExposureDay.user_id == bindparam("uid"), ExposureDay.day == bindparam("d"))
_READ = select(
    ExposureDay.reveals,
    ExposureDay.views,
    ExposureDay.seconds,
    ExposureDay.open_item_id,
    ExposureDay.open_since,
).where(_KEY)
_NEW = insert(ExposureDay).values(
    user_id=bindparam("uid"), day=bindparam("d"), reveals=0, views=0, seconds=0
)
_WRITE = (
    update(ExposureDay)
    .where(_KEY)
    .values(
        reveals=bindparam("n_reveals"),
        views=bindparam("n_views"),
        seconds=bindparam("n_seconds"),
        open_item_id=bindparam("n_open_item"),
        open_since=bindparam("n_open_since"),
    )
)


@dataclass
class _Day:
    """Today's counters of one analyst, read and written back in the caller's transaction."""

    reveals: int = 0
    views: int = 0
    seconds: int = 0
    open_item_id: int | None = None
    open_since: datetime | None = None


def _row(session: Session, user_id: int, now: datetime) -> _Day:
    """Today's row (created at zero), read inside the caller's write transaction."""
    key = {"uid": user_id, "d": day_of(now)}
    conn = session.connection()
    found = conn.execute(_READ, key).first()
    if found is None:
        conn.execute(_NEW, key)
        return _Day()
    return _Day(*found)


def _save(session: Session, user_id: int, now: datetime, row: _Day) -> None:
    values = {
        "n_reveals": row.reveals,
        "n_views": row.views,
        "n_seconds": row.seconds,
        "n_open_item": row.open_item_id,
        "n_open_since": row.open_since,
    }
    session.connection().execute(_WRITE, {"uid": user_id, "d": day_of(now), **values})


def _close_open_view(row: _Day, now: datetime, cap_s: int) -> None:
    if row.open_since is not None:
        row.seconds += int(min(max((now - row.open_since).total_seconds(), 0), cap_s))
    row.open_item_id, row.open_since = None, None


def item_viewed(
    session: Session, user: tuple[int, str], item_id: int, now: datetime, cap_s: int, budget: int
) -> Exposure:
    """Count a view of `item_id` (closing the previous one); returns today's counters."""
    row = _row(session, user[0], now)
    _close_open_view(row, now, cap_s)
    row.views += 1
    row.open_item_id, row.open_since = item_id, now
    _save(session, user[0], now, row)
    return Exposure(user[1], day_of(now), row.reveals, row.views, row.seconds, budget)


def item_left(session: Session, user_id: int, now: datetime, cap_s: int) -> None:
    row = _row(session, user_id, now)
    if row.open_since is not None:
        _close_open_view(row, now, cap_s)
        _save(session, user_id, now, row)


def revealed(session: Session, user_id: int, now: datetime) -> int:
    """Count one reveal; returns today's reveals including this one."""
    row = _row(session, user_id, now)
    row.reveals += 1
    _save(session, user_id, now, row)
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
    found = session.connection().execute(_READ, {"uid": user[0], "d": day_of(now)}).first()
    row = _Day(*found) if found is not None else _Day()
    return Exposure(user[1], day_of(now), row.reveals, row.views, row.seconds, budget)


def team_day(session: Session, now: datetime, budget: int) -> list[Exposure]:
    rows = session.execute(
        select(User.username, ExposureDay)
        .join(ExposureDay, ExposureDay.user_id == User.id)
        .where(ExposureDay.day == day_of(now))
        .order_by(User.username)
    )
    return [Exposure(name, e.day, e.reveals, e.views, e.seconds, budget) for name, e in rows]
