"""S-07/S-08: many concurrent claimers never share an item; 20 parallel decisions make one row."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from crawler.db.models import Decision, ReviewItem
from crawler.db.session import Database
from review.auth import Principal
from review.config import ReviewConfig
from review.decisions import DecisionRequest, decide
from review.queue import QueueFilters, claim_next, claim_next_naive
from tests.support.review import seed_item
from tests.support.threads import run_in_threads

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=15)
CLAIMERS = 12
ROUNDS = 20


def _seed(db: Database, n: int) -> None:
    for i in range(n):
        seed_item(db, priority=i % 7)


def _run(workers: int, work: Callable[[int], list[int]]) -> list[int]:
    barrier, results, lock = threading.Barrier(workers), [], threading.Lock()

    def body(worker: int) -> None:
        barrier.wait()
        got = work(worker)
        with lock:
            results.extend(got)

    assert run_in_threads(body, workers) == []
    return results


def _users(db: Database, n: int) -> list[Principal]:
    from crawler.accounts.users import add_user

    with db.session() as s:
        return [
            Principal(add_user(s, f"c{i}", "analyst", "password-123").id, f"c{i}", "analyst")
            for i in range(n)
        ]


def test_atomic_claims_never_double_claim(db: Database) -> None:
    _seed(db, CLAIMERS * ROUNDS // 2)  # fewer items than attempts: contention to the end
    people = _users(db, CLAIMERS)

    def work(worker: int) -> list[int]:
        got = []
        for r in range(ROUNDS):
            with db.session() as s:
                p = Principal(people[worker].user_id, people[worker].username, "analyst")
                item = claim_next(s, p, QueueFilters(), NOW + timedelta(seconds=r), LEASE)
                if item is not None:
                    got.append(item)
                    s.execute(
                        ReviewItem.__table__.update()
                        .where(ReviewItem.id == item)
                        .values(status="rejected")  # done: lets the claimer move on
                    )
        return got

    claimed = _run(CLAIMERS, work)
    dupes = {k: v for k, v in Counter(claimed).items() if v > 1}
    assert dupes == {}
    assert len(claimed) == CLAIMERS * ROUNDS // 2


def test_naive_claim_then_update_double_claims(db: Database) -> None:
    """Why the conditional UPDATE exists: read-then-update hands one item to several people.

    On SQLite every write transaction is BEGIN IMMEDIATE, which serialises even the naive
    shape; the race shows when the read happens outside the writing transaction, which
    is what a read-committed engine (PostgreSQL) does by default.
    """
    _seed(db, 5)
    people = _users(db, CLAIMERS)
    read_all = threading.Barrier(CLAIMERS)  # every read before any write, even under load

    def work(worker: int) -> list[int]:
        with db.read_session() as r:
            from review.queue import _pick

            item = r.execute(_pick("pending", QueueFilters(), NOW)).scalar()
        read_all.wait()
        if item is None:
            return []
        with db.session() as s:
            s.execute(
                ReviewItem.__table__.update()
                .where(ReviewItem.id == item)
                .values(claimed_by=people[worker].user_id, lease_until=NOW + LEASE)
            )
        return [item]

    claimed = _run(CLAIMERS, work)
    assert max(Counter(claimed).values()) > 1  # several people "hold" the same item
    assert claim_next_naive is not None


def test_twenty_parallel_decisions_make_one_row(db: Database) -> None:
    item_id = seed_item(db)
    (p,) = _users(db, 1)
    with db.session() as s:
        claim_next(s, p, QueueFilters(), NOW, LEASE)
        version = s.get(ReviewItem, item_id).version
    cfg = ReviewConfig(db_url=db.url, secret_key="x" * 32)
    statuses: list[int] = []

    def work(_: int) -> list[int]:
        with db.session() as s:
            out = decide(s, p, item_id, DecisionRequest("confirm", version, "A"), cfg, NOW)
        statuses.append(out.http_status)
        return []

    _run(20, work)
    assert sorted(statuses) == [200] + [409] * 19
    with db.read_session() as s:
        assert s.execute(select(func.count()).select_from(Decision)).scalar() == 1
