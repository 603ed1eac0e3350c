"""Exposure counters: reveals, item views and time on item pages, per analyst per UTC day.

Time on an item page is counted from one item view to the next view or decision by the
same analyst, capped per view so a tab left open overnight does not count as a shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, bindparam, cast, extract, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crawler.db.models import ExposureDay, User
from crawler.db.types import UTCDateTime
from review import audit


def day_of(now: datetime) -> str:
    return now.date().isoformat()


# One analyst's day: parameters `uid` and `d` (`day_of`); also read by `queue.page_counts`.
DAY_KEY = and_(ExposureDay.user_id == bindparam("uid"), ExposureDay.day == bindparam("d"))
_READ = select(ExposureDay.reveals, ExposureDay.views, ExposureDay.seconds).where(DAY_KEY)
_NOW = bindparam("now", type_=UTCDateTime())


def _elapsed(dialect: str) -> ColumnElement[int]:
    """Whole seconds from the open item view to `:now`, within 0 and `:cap` (NULL if none).

    In SQL so that one statement reads and moves the counters: a read, then a write of
    the values computed here, lost a count to every concurrent request of the same
    analyst on PostgreSQL (two reveals at once), and cost a statement more each time.
    """
    cap = bindparam("cap", type_=Integer())
    if dialect == "postgresql":
        seconds = extract("epoch", _NOW - ExposureDay.open_since)
        return cast(func.floor(func.least(func.greatest(seconds, 0), cap)), Integer)
    # SQLite: julianday() keeps milliseconds; round there so 30 s apart is not 29.99...
    days = func.julianday(_NOW) - func.julianday(ExposureDay.open_since)
    return cast(func.min(func.max(func.round(days * 86400.0, 3), 0), cap), Integer)


@lru_cache(maxsize=8)
def _upsert(dialect: str, kind: str) -> Any:
    """Count a view (`kind` "view") or a reveal ("reveal"), creating today's row."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row: dict[str, Any] = {"user_id": bindparam("uid"), "day": bindparam("d")}
    if kind == "view":
        row |= {"reveals": 0, "views": 1, "seconds": 0}
        row |= {"open_item_id": bindparam("item"), "open_since": _NOW}
        change = {
            "views": ExposureDay.views + 1,
            "seconds": ExposureDay.seconds + func.coalesce(_elapsed(dialect), 0),
            "open_item_id": bindparam("item"),
            "open_since": _NOW,
        }
    else:
        row |= {"reveals": 1, "views": 0, "seconds": 0}
        change = {"reveals": ExposureDay.reveals + 1}
    return (
        insert(ExposureDay)
        .values(row)
        .on_conflict_do_update(index_elements=["user_id", "day"], set_=change)
        .returning(ExposureDay.reveals, ExposureDay.views, ExposureDay.seconds)
    )


@lru_cache(maxsize=4)
def _leave(dialect: str) -> Any:
    return (
        update(ExposureDay)
        .where(DAY_KEY, ExposureDay.open_since.is_not(None))
        .values(
            seconds=ExposureDay.seconds + _elapsed(dialect),
            open_item_id=None,
            open_since=None,
        )
    )


def item_viewed(
    session: Session, user: tuple[int, str], item_id: int, now: datetime, cap_s: int, budget: int
) -> Exposure:
    """Count a view of `item_id` (closing the previous one); returns today's counters."""
    conn = session.connection()
    values = {"uid": user[0], "d": day_of(now), "item": item_id, "now": now, "cap": cap_s}
    reveals, views, seconds = conn.execute(_upsert(conn.dialect.name, "view"), values).one()
    return Exposure(user[1], day_of(now), reveals, views, seconds, budget)


def item_left(session: Session, user_id: int, now: datetime, cap_s: int) -> None:
    """Add the time since the open item view (a decision or logout ends it)."""
    values = {"uid": user_id, "d": day_of(now), "now": now, "cap": cap_s}
    # Nothing reads it back: on PostgreSQL it goes with the COMMIT (review.audit).
    audit.at_commit(session, _leave(session.get_bind().dialect.name), values)


def revealed(session: Session, user_id: int, now: datetime) -> int:
    """Count one reveal; returns today's reveals including this one."""
    conn = session.connection()
    values = {"uid": user_id, "d": day_of(now)}
    reveals: int = conn.execute(_upsert(conn.dialect.name, "reveal"), values).one()[0]
    return reveals


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
    reveals, views, seconds = found if found is not None else (0, 0, 0)
    return Exposure(user[1], day_of(now), reveals, views, seconds, budget)


def team_day(session: Session, now: datetime, budget: int) -> list[Exposure]:
    rows = session.execute(
        select(User.username, ExposureDay)
        .join(ExposureDay, ExposureDay.user_id == User.id)
        .where(ExposureDay.day == day_of(now))
        .order_by(User.username)
    )
    return [Exposure(name, e.day, e.reveals, e.views, e.seconds, budget) for name, e in rows]
