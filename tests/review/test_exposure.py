"""Exposure counters: views, time on item pages and reveals, per analyst per UTC day."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from crawler.db.session import Database
from review import exposure

CAP = 600
BUDGET = 40
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _view(db: Database, user_id: int, item_id: int, at: datetime) -> exposure.Exposure:
    with db.session() as s:
        return exposure.item_viewed(s, (user_id, "ana"), item_id, at, CAP, BUDGET)


def _leave(db: Database, user_id: int, at: datetime) -> None:
    with db.session() as s:
        exposure.item_left(s, user_id, at, CAP)


def _day(db: Database, user_id: int, at: datetime) -> exposure.Exposure:
    with db.read_session() as s:
        return exposure.own_day(s, (user_id, "ana"), at, BUDGET)


def test_time_runs_from_a_view_to_the_next_view_or_decision(
    db: Database, users: dict[str, int]
) -> None:
    ana = users["ana"]
    first = _view(db, ana, 1, T0)
    assert (first.views, first.seconds, first.reveals) == (1, 0, 0)
    second = _view(db, ana, 2, T0 + timedelta(seconds=30.9))  # whole seconds, truncated
    assert (second.views, second.seconds) == (2, 30)
    _leave(db, ana, T0 + timedelta(seconds=75.9))  # the decision on item 2: 45 s more
    _leave(db, ana, T0 + timedelta(seconds=500))  # nothing open any more: no change
    day = _day(db, ana, T0)
    assert (day.views, day.seconds, day.minutes) == (2, 75, 1)
    assert _day(db, users["bob"], T0).views == 0  # per analyst


def test_a_view_left_open_counts_at_most_the_cap_and_never_negative(
    db: Database, users: dict[str, int]
) -> None:
    ana = users["ana"]
    _view(db, ana, 1, T0)
    assert _view(db, ana, 2, T0 + timedelta(hours=3)).seconds == CAP  # tab left open
    _leave(db, ana, T0 + timedelta(hours=3) - timedelta(seconds=20))  # clock stepped back
    assert _day(db, ana, T0).seconds == CAP


def test_each_utc_day_has_its_own_counters(db: Database, users: dict[str, int]) -> None:
    ana = users["ana"]
    late = datetime(2026, 11, 23, 23, 59, 50, tzinfo=UTC)
    _view(db, ana, 1, late)
    with db.session() as s:
        assert exposure.revealed(s, ana, late) == 1
    next_day = _view(db, ana, 2, late + timedelta(seconds=20))
    assert (next_day.day, next_day.views, next_day.reveals) == ("2026-11-24", 1, 0)
    assert _day(db, ana, late).views == 1


def test_concurrent_reveals_of_one_analyst_are_all_counted(
    db: Database, users: dict[str, int]
) -> None:
    """Two previews revealed at once: a read-then-write lost one of them on PostgreSQL."""
    ana, threads, each = users["ana"], 8, 15
    start = threading.Barrier(threads)
    seen: list[int] = []

    def reveal() -> None:
        start.wait()
        for _ in range(each):
            with db.session() as s:
                seen.append(exposure.revealed(s, ana, T0))

    workers = [threading.Thread(target=reveal) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert _day(db, ana, T0).reveals == threads * each
    assert sorted(seen) == list(range(1, threads * each + 1))  # each saw its own count
    with db.session() as s:
        assert exposure.revealed(s, ana, T0) == threads * each + 1


def test_the_queue_page_reads_counts_and_exposure_in_one_statement(
    db: Database, users: dict[str, int]
) -> None:
    from review import queue
    from tests.support.review import seed_item

    for status in ("pending", "pending", "escalated", "rejected"):
        seed_item(db, status=status)
    ana = users["ana"]
    with db.read_session() as s:
        assert queue.page_counts(s, ana, exposure.day_of(T0)) == (
            {"pending": 2, "escalated": 1},
            (0, 0, 0),  # no row for the day yet
        )
    _view(db, ana, 1, T0)
    _view(db, ana, 2, T0 + timedelta(seconds=12))
    with db.session() as s:
        exposure.revealed(s, ana, T0)
    with db.read_session() as s:
        assert queue.page_counts(s, ana, exposure.day_of(T0)) == (
            {"pending": 2, "escalated": 1},
            (1, 2, 12),
        )
        assert queue.page_counts(s, users["bob"], exposure.day_of(T0))[1] == (0, 0, 0)
        assert queue.page_counts(s, ana, "2026-11-24")[1] == (0, 0, 0)


def test_open_counts_stop_at_the_cap(db: Database, users: dict[str, int]) -> None:
    from review import queue
    from tests.support.review import seed_item

    for _ in range(3):
        seed_item(db)
    with db.read_session() as s:
        assert queue.page_counts(s, users["ana"], "2026-11-23", cap=2)[0] == {
            "pending": 2,  # shown as "2+"
            "escalated": 0,
        }
        assert queue.page_counts(s, users["ana"], "2026-11-23", cap=5)[0]["pending"] == 3
