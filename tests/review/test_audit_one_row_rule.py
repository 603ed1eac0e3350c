"""One rule says what an audit append writes (`crawler.db.audit.event_row`): the ORM
append, the review app's Core append and its PostgreSQL one-statement append store the
same columns for the same event, and the chain over them verifies (both engines)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from crawler.db.audit import GENESIS, Event, event_columns, event_hash, event_row, verify_chain
from crawler.db.audit import record as orm_record
from crawler.db.models import AuditEvent
from crawler.db.session import Database
from review.audit import commit, defer_to_commit, record

EVENT = Event("ana", "item.view", "review_item", 12345, {"k": ["v", 1]})


def test_every_append_path_stores_the_columns_of_event_row(db: Database) -> None:
    with db.session() as s:
        record(s, EVENT)  # Core (or one statement on PostgreSQL once the head exists)
        orm_record(s, EVENT)
        record(s, EVENT)
    with db.session() as s:
        defer_to_commit(s)  # held for the COMMIT on PostgreSQL
        record(s, EVENT)
        commit(s)
    with db.read_session() as s:
        assert verify_chain(s).ok
        rows = s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    want = {**event_columns(EVENT), "details": EVENT.details}
    assert want["target_id"] == "12345"
    assert len(rows) == 4
    prev = GENESIS
    for row in rows:
        stored = {k: getattr(row, k) for k in want}
        assert stored == want
        assert row.prev_hash == prev
        assert row.hash == event_hash(prev, row.at, EVENT, row.id)
        prev = row.hash


def test_event_row_cuts_long_names_to_their_columns_and_keeps_them_whole_in_details() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    long = Event("a" * 80, "b" * 80, "review_item", "c" * 80, {"k": 1})
    row = event_row(7, GENESIS, at, long)
    assert (len(row["actor"]), len(row["action"]), len(row["target_id"])) == (64, 64, 64)
    assert row["id"] == 7 and row["prev_hash"] == GENESIS and row["at"] == at
    whole = {"actor": "a" * 80, "action": "b" * 80, "target_id": "c" * 80}
    assert row["details"] == {"k": 1, "untruncated": whole}
    stored = Event(row["actor"], row["action"], "review_item", row["target_id"], row["details"])
    assert row["hash"] == event_hash(GENESIS, at, stored, 7)


def test_a_chain_with_names_longer_than_their_columns_verifies(db: Database) -> None:
    """Every append path; the hash was once taken over the uncut event, and
    `audit verify` then called such a row tampered with."""
    long = Event("exchange:" + "x" * 80, "item.view", "review_item", "9" * 70)
    with db.session() as s:
        record(s, long)
        orm_record(s, long)
        record(s, long)
    with db.session() as s:
        defer_to_commit(s)
        record(s, long)
        commit(s)
    with db.read_session() as s:
        report = verify_chain(s)
        rows = s.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
    assert report.ok and report.checked == 4, report
    for row in rows:
        assert row.actor == long.actor[:64] and row.target_id == "9" * 64
        assert row.details == {"untruncated": {"actor": long.actor, "target_id": "9" * 70}}
