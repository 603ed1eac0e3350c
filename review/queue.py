"""The review queue: listing with filters, and atomic claims with a renewable lease.

Two analysts must never hold the same item (docs/hazards.md S-07). A claim is ONE conditional
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
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    ScalarSelect,
    Select,
    Update,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session, aliased

from crawler.db.audit import Event
from crawler.db.models import (
    ITEM_STATUSES,
    ExposureDay,
    HashList,
    Host,
    Match,
    Observation,
    Page,
    ReviewItem,
)
from review import exposure
from review.audit import record
from review.auth import Principal

ANALYST_STATUSES = ("pending",)
LEAD_STATUSES = ("escalated", "pending")
OPEN_ITEM_STATUSES = ("pending", "escalated")
FILTER_STATUSES = ITEM_STATUSES  # what the queue's status filter accepts (page and API)
PAGE_SIZE = 50
COUNT_CAP = 1000  # open items counted exactly up to this many


Shape = tuple[bool, bool, bool, bool]  # which filters are set: country, host, list, status


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

    def problem(self) -> str | None:
        """Why no row can match, for a 400: PostgreSQL text cannot even hold a NUL."""
        if any("\x00" in value for value in self.as_dict().values()):
            return "filter values cannot contain NUL characters"
        return None

    def shape(self) -> Shape:
        return (bool(self.country), bool(self.host), bool(self.list_name), bool(self.status))

    def params(self) -> dict[str, str]:
        """Values for the bound parameters of `_filter_clauses(self.shape())`."""
        values = {
            "f_country": self.country.upper() if self.country else None,
            "f_host": self.host.lower() if self.host else None,
            "f_list": self.list_name,
            "f_status": self.status,
        }
        return {k: v for k, v in values.items() if v}


def claimable_statuses(principal: Principal) -> tuple[str, ...]:
    """Escalated items go to leads; analysts take pending work only."""
    return LEAD_STATUSES if principal.is_lead else ANALYST_STATUSES


# Statements are built once per filter shape (values are bound parameters) and cached:
# building and cache-keying a SELECT costs more CPU than SQLite takes to run it.


def _filter_clauses(shape: Shape) -> list[ColumnElement[bool]]:
    country, host_name, list_name, status = shape
    clauses: list[ColumnElement[bool]] = []
    if status:
        clauses.append(ReviewItem.status == bindparam("f_status"))
    if country or host_name:
        # Aliases: the queue listing joins Page and Host itself, and an EXISTS over the
        # same tables would otherwise correlate away its whole FROM clause.
        page, host = aliased(Page), aliased(Host)
        host_match = [host.id == page.host_id, page.id == ReviewItem.page_id]
        if country:
            host_match.append(host.country == bindparam("f_country"))
        if host_name:
            host_match.append(host.host == bindparam("f_host"))
        clauses.append(exists().where(and_(*host_match)))
    if list_name:
        clauses.append(
            exists().where(
                Observation.page_id == ReviewItem.page_id,
                Match.media_id == Observation.media_id,
                HashList.id == Match.list_id,
                HashList.name == bindparam("f_list"),
            )
        )
    return clauses


def _free() -> ColumnElement[bool]:
    return or_(ReviewItem.claimed_by.is_(None), ReviewItem.lease_until < bindparam("now"))


def _order() -> tuple[ColumnElement[Any], ...]:
    # Highest priority first and, within a priority, newest first: exactly the reverse of
    # the (status, priority, id) index, so one status is read off the index in order
    # instead of sorting 100,000 rows per request (docs/benchmarks.md).
    return (ReviewItem.priority.desc(), ReviewItem.id.desc())


@lru_cache(maxsize=32)
def _pick_stmt(shape: Shape, skip_locked: bool) -> Select[Any]:
    stmt = (
        select(ReviewItem.id)
        .where(ReviewItem.status == bindparam("q_status"), _free(), *_filter_clauses(shape))
        .order_by(*_order())
        .limit(1)
    )
    return stmt.with_for_update(skip_locked=True, of=ReviewItem) if skip_locked else stmt


def _pick(status: str, filters: QueueFilters, now: datetime) -> Select[Any]:
    """The best claimable item of `status` (a plain read: see `claim_next_naive`)."""
    return _pick_stmt(filters.shape(), False).params(q_status=status, now=now, **filters.params())


@lru_cache(maxsize=64)
def _take_stmt(shape: Shape | None, skip_locked: bool) -> Update:
    """Take the item `:item_id` (shape None) or the best pick if still free."""
    target: ColumnElement[Any]
    if shape is None:
        target = bindparam("item_id")
    else:
        target = _pick_stmt(shape, skip_locked).scalar_subquery()
    return (
        update(ReviewItem)
        .where(ReviewItem.id == target, _free())
        .values(
            claimed_by=bindparam("q_user"),
            lease_until=bindparam("q_lease"),
            version=ReviewItem.version + 1,
            updated_at=bindparam("now"),
        )
        .returning(ReviewItem.id)
    )


def _take(
    session: Session,
    target: tuple[Shape, dict[str, Any]] | int,
    user_id: int,
    now: datetime,
    lease: timedelta,
) -> Any:
    """Claim the item named by id, or the pick of (filter shape, its parameters)."""
    conn = session.connection()
    values: dict[str, Any] = {"q_user": user_id, "now": now, "q_lease": now + lease}
    if isinstance(target, int):
        stmt, values["item_id"] = _take_stmt(None, False), target
    else:
        stmt = _take_stmt(target[0], conn.dialect.name == "postgresql")
        values.update(target[1])
    return conn.execute(stmt, values).scalar()


# Only the claimed_by index, statuses checked here: with `status IN (...)` in the query,
# PostgreSQL with statistics from before a bulk insert ANDed a bitmap of every pending
# row into the lookup (10 ms of database CPU a claim at 100,000 items). A user holds
# few rows: decisions clear `claimed_by`.
_HELD = (
    select(ReviewItem.id, ReviewItem.status)
    .where(ReviewItem.claimed_by == bindparam("q_user"), ReviewItem.lease_until >= bindparam("now"))
    .order_by(ReviewItem.id)
)


def _held(session: Session, principal: Principal, now: datetime) -> int | None:
    """An item this user already holds with a live lease: Next item returns it first."""
    statuses = claimable_statuses(principal)
    rows = session.connection().execute(_HELD, {"q_user": principal.user_id, "now": now})
    return next((item_id for item_id, status in rows if status in statuses), None)


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
    # On PostgreSQL the pick is FOR UPDATE SKIP LOCKED (see the module docstring).
    target = (filters.shape(), {"q_status": status, **filters.params()})
    item_id = _take(session, target, principal.user_id, now, lease)
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
            ReviewItem.status.in_(OPEN_ITEM_STATUSES),
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
    created_at: datetime | None = None  # the queue shows each item's age


def list_queue(
    session: Session, filters: QueueFilters, *, limit: int = PAGE_SIZE, offset: int = 0
) -> list[QueueRow]:
    """Open items (or the filtered status), highest priority first.

    One index-ordered, limited SELECT per status, in one UNION ALL statement, merged
    here: an `IN` over two statuses would make the database sort every open item.
    """
    statuses = (filters.status,) if filters.status else OPEN_ITEM_STATUSES
    stmt = _list_stmt(filters.shape(), len(statuses))
    params: dict[str, Any] = {"limit": limit + offset, **filters.params()}
    params.update((f"q_status{i}", status) for i, status in enumerate(statuses))
    rows = [QueueRow(*r) for r in session.connection().execute(stmt, params)]
    rows.sort(key=lambda r: (-r.priority, -r.id))
    return rows[offset : offset + limit]


@lru_cache(maxsize=32)
def _list_stmt(shape: Shape, statuses: int) -> Select[*tuple[Any, ...]] | CompoundSelect[Any]:
    """The columns of `QueueRow`, in its field order, for `statuses` bound statuses."""

    def one(i: int) -> Select[*tuple[Any, ...]]:
        return (
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
                ReviewItem.created_at,
            )
            .join(Page, Page.id == ReviewItem.page_id)
            .outerjoin(Host, Host.id == Page.host_id)
            .where(ReviewItem.status == bindparam(f"q_status{i}"), *_filter_clauses(shape))
            .order_by(*_order())
            .limit(bindparam("limit", type_=Integer))
        )

    if statuses == 1:
        return one(0)
    # SQLite allows ORDER BY and LIMIT in a compound's members only inside subqueries.
    return union_all(*(select(one(i).subquery()) for i in range(statuses)))


@lru_cache(maxsize=4)
def _count_stmt(cap: int) -> Select[Any]:
    def capped(status: str) -> ScalarSelect[Any]:
        first = select(ReviewItem.id).where(ReviewItem.status == status).limit(cap).subquery()
        return select(func.count()).select_from(first).scalar_subquery()

    return select(*(capped(status).label(status) for status in OPEN_ITEM_STATUSES))


@lru_cache(maxsize=4)
def _page_counts_stmt(cap: int) -> Select[Any]:
    """`_count_stmt`'s counts and the analyst's exposure counters of the day, in one row."""

    def today(column: Any) -> ScalarSelect[Any]:
        return select(column).where(exposure.DAY_KEY).scalar_subquery()  # NULL without a row

    counts = _count_stmt(cap).selected_columns
    return select(
        *counts, today(ExposureDay.reveals), today(ExposureDay.views), today(ExposureDay.seconds)
    )


def page_counts(
    session: Session, user_id: int, day: str, cap: int = COUNT_CAP
) -> tuple[dict[str, int], tuple[int, int, int]]:
    """Open items per status counted up to `cap` (the page shows "1000+"), and the user's
    (reveals, views, seconds) of `day`: the queue page's figures in one round trip.

    An exact count reads every open row's index entry on every queue page: 20-90 ms at
    100,000 items (docs/benchmarks.md); a capped count stops after `cap` entries.
    """
    row = session.connection().execute(_page_counts_stmt(cap), {"uid": user_id, "d": day}).one()
    n = len(OPEN_ITEM_STATUSES)
    counts = {status: int(v) for status, v in zip(OPEN_ITEM_STATUSES, row[:n], strict=True)}
    reveals, views, seconds = (int(v or 0) for v in row[n:])
    return counts, (reveals, views, seconds)
