"""The review queue: listing with filters, and atomic claims with a renewable lease.

Two analysts must never hold the same item (HAZARDS S-07). A claim is ONE conditional
UPDATE that picks the best claimable row and takes it only if it is still unclaimed or
its lease has expired, bumping `version` so any decision prepared under an older claim
gets 409. On PostgreSQL the pick runs `FOR UPDATE SKIP LOCKED`, so concurrent claimers
skip a row another transaction is taking instead of queueing behind it and then finding
it gone; on SQLite every write transaction is `BEGIN IMMEDIATE` (one writer at a time),
and SQLAlchemy drops `SKIP LOCKED` there. `claim_next_naive` is the read-then-update
shape that double-claims; the concurrency tests keep it to show why this one exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from crawler.audit import Event, record
from crawler.db.models import HashList, Host, Match, Observation, Page, ReviewItem
from review.auth import Principal

ANALYST_STATUSES = ("pending",)
LEAD_STATUSES = ("escalated", "pending")
OPEN_STATUSES = ("pending", "escalated")
PAGE_SIZE = 50
COUNT_CAP = 1000  # open items counted exactly up to this many


@dataclass(frozen=True)
class QueueFilters:
    country: str | None = None
    host: str | None = None
    list_name: str | None = None
    status: str | None = None

    def as_dict(self) -> dict[str, str]:
        pairs = {
            "country": self.country,
            "host": self.host,
            "list": self.list_name,
            "status": self.status,
        }
        return {k: v for k, v in pairs.items() if v}


def claimable_statuses(principal: Principal) -> tuple[str, ...]:
    """Escalated items go to leads; analysts take pending work only."""
    return LEAD_STATUSES if principal.is_lead else ANALYST_STATUSES


def _filter_clauses(filters: QueueFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if filters.status:
        clauses.append(ReviewItem.status == filters.status)
    if filters.country or filters.host:
        # Aliases: the queue listing joins Page and Host itself, and an EXISTS over the
        # same tables would otherwise correlate away its whole FROM clause.
        page, host = aliased(Page), aliased(Host)
        host_match = [host.id == page.host_id, page.id == ReviewItem.page_id]
        if filters.country:
            host_match.append(host.country == filters.country.upper())
        if filters.host:
            host_match.append(host.host == filters.host.lower())
        clauses.append(exists().where(and_(*host_match)))
    if filters.list_name:
        clauses.append(
            exists().where(
                Observation.page_id == ReviewItem.page_id,
                Match.media_id == Observation.media_id,
                HashList.id == Match.list_id,
                HashList.name == filters.list_name,
            )
        )
    return clauses


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(ReviewItem.claimed_by.is_(None), ReviewItem.lease_until < now)


def _order() -> tuple[ColumnElement[Any], ...]:
    # Highest priority first and, within a priority, newest first: exactly the reverse of
    # the (status, priority, id) index, so one status is read off the index in order
    # instead of sorting 100,000 rows per request (docs/benchmarks.md).
    return (ReviewItem.priority.desc(), ReviewItem.id.desc())


def _pick(status: str, filters: QueueFilters, now: datetime) -> Select[Any]:
    return (
        select(ReviewItem.id)
        .where(ReviewItem.status == status, _free(now), *_filter_clauses(filters))
        .order_by(*_order())
        .limit(1)
    )


def _take(session: Session, item_id: Any, user_id: int, now: datetime, lease: timedelta) -> Any:
    stmt = (
        update(ReviewItem)
        .where(ReviewItem.id == item_id, _free(now))
        .values(
            claimed_by=user_id,
            lease_until=now + lease,
            version=ReviewItem.version + 1,
            updated_at=now,
        )
        .returning(ReviewItem.id)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).scalar()


def _held(session: Session, principal: Principal, now: datetime) -> int | None:
    """An item this user already holds with a live lease: Next item returns it first."""
    return session.execute(
        select(ReviewItem.id)
        .where(
            ReviewItem.claimed_by == principal.user_id,
            ReviewItem.lease_until >= now,
            ReviewItem.status.in_(claimable_statuses(principal)),
        )
        .order_by(ReviewItem.id)
        .limit(1)
    ).scalar()


def claim_next(
    session: Session,
    principal: Principal,
    filters: QueueFilters,
    now: datetime,
    lease: timedelta,
) -> int | None:
    """Atomically claim the best unclaimed item for `principal`; None when none is left."""
    held = _held(session, principal, now)
    if held is not None:
        return held
    for status in claimable_statuses(principal):  # leads: escalated work first
        item_id = _claim_one(session, principal, status, filters, now, lease)
        if item_id is not None:
            record(session, Event(principal.username, "item.claim", "review_item", item_id))
            return item_id
    return None


def _claim_one(
    session: Session,
    principal: Principal,
    status: str,
    filters: QueueFilters,
    now: datetime,
    lease: timedelta,
) -> int | None:
    pick = _pick(status, filters, now)
    if session.get_bind().dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True, of=ReviewItem)
    item_id = _take(session, pick.scalar_subquery(), principal.user_id, now, lease)
    return int(item_id) if item_id is not None else None


def claim_next_naive(session: Session, user_id: int, now: datetime, lease: timedelta) -> int | None:
    """The broken shape (read, then unconditional update): kept only for the tests."""
    item_id = session.execute(_pick("pending", QueueFilters(), now)).scalar()
    if item_id is None:
        return None
    session.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item_id)
        .values(claimed_by=user_id, lease_until=now + lease, version=ReviewItem.version + 1)
        .execution_options(synchronize_session=False)
    )
    return int(item_id)


def claim_item(
    session: Session, principal: Principal, item_id: int, now: datetime, lease: timedelta
) -> bool:
    """Claim one named item (from its page) if it is open to this role and free."""
    item = session.get(ReviewItem, item_id)
    if item is None or item.status not in claimable_statuses(principal):
        return False
    if item.claimed_by == principal.user_id:
        return renew_lease(session, principal, item_id, now, lease)
    taken = _take(session, item_id, principal.user_id, now, lease)
    if taken is not None:
        record(session, Event(principal.username, "item.claim", "review_item", item_id))
    return taken is not None


def renew_lease(
    session: Session, principal: Principal, item_id: int, now: datetime, lease: timedelta
) -> bool:
    """Extend the holder's lease. The version stays, so an open decision form stays valid."""
    result = session.execute(
        update(ReviewItem)
        .where(
            ReviewItem.id == item_id,
            ReviewItem.claimed_by == principal.user_id,
            ReviewItem.status.in_(OPEN_STATUSES),
        )
        .values(lease_until=now + lease)
        .returning(ReviewItem.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if result is not None:
        record(session, Event(principal.username, "item.lease_renew", "review_item", item_id))
    return result is not None


@dataclass(frozen=True)
class QueueRow:
    id: int
    url: str
    title: str | None
    host: str | None
    country: str | None
    priority: int
    status: str
    claimed_by: int | None
    lease_until: datetime | None
    no_viewing_needed: bool


def list_queue(
    session: Session, filters: QueueFilters, *, limit: int = PAGE_SIZE, offset: int = 0
) -> list[QueueRow]:
    """Open items (or the filtered status), highest priority first.

    One index-ordered query per status, merged here: an `IN` over two statuses would make
    the database sort every open item.
    """
    statuses = (filters.status,) if filters.status else OPEN_STATUSES
    rows: list[QueueRow] = []
    for status in statuses:
        rows.extend(_list_status(session, status, filters, limit + offset))
    rows.sort(key=lambda r: (-r.priority, -r.id))
    return rows[offset : offset + limit]


def _list_status(
    session: Session, status: str, filters: QueueFilters, limit: int
) -> list[QueueRow]:
    query = (
        select(
            ReviewItem.id,
            Page.url,
            Page.title,
            Host.host,
            Host.country,
            ReviewItem.priority,
            ReviewItem.status,
            ReviewItem.claimed_by,
            ReviewItem.lease_until,
            ReviewItem.no_viewing_needed,
        )
        .join(Page, Page.id == ReviewItem.page_id)
        .outerjoin(Host, Host.id == Page.host_id)
        .where(ReviewItem.status == status, *_filter_clauses(filters))
        .order_by(*_order())
        .limit(limit)
    )
    return [
        QueueRow(
            id=r.id,
            url=r.url,
            title=r.title,
            host=r.host,
            country=r.country,
            priority=r.priority,
            status=r.status,
            claimed_by=r.claimed_by,
            lease_until=r.lease_until,
            no_viewing_needed=r.no_viewing_needed,
        )
        for r in session.execute(query)
    ]


def count_open(session: Session, cap: int = COUNT_CAP) -> dict[str, int]:
    """Open items per status, counted up to `cap` (the page shows "1000+").

    An exact count reads every open row's index entry on every queue page: 20-90 ms at
    100,000 items (docs/benchmarks.md); a capped count stops after `cap` entries.
    """
    counts: dict[str, int] = {}
    for status in OPEN_STATUSES:
        capped = select(ReviewItem.id).where(ReviewItem.status == status).limit(cap).subquery()
        counts[status] = int(session.execute(select(func.count()).select_from(capped)).scalar_one())
    return counts
