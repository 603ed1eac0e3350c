"""The review app's Core audit append writes the same chain as `crawler.db.audit.record`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from crawler.db.audit import Event, verify_chain
from crawler.db.audit import record as orm_record
from crawler.db.models import AuditEvent, Host, Page
from crawler.db.session import Database
from review.audit import at_commit, commit, defer_to_commit, record


def test_core_and_orm_appends_interleave_into_one_valid_chain(db: Database) -> None:
    with db.session() as s:
        assert record(s, Event("ana", "item.view", "review_item", 1)) == 1  # creates the head
        orm_record(s, Event("ana", "item.claim", "review_item", 1, {"k": "v"}))
        record(s, Event("ana", "decision.reject", "review_item", 1, {"status": "rejected"}))
        orm_record(s, Event("ana", "hashlist.benign_add", "review_item", 1))
    with db.session() as s:
        record(s, Event("bob", "item.view", "review_item", 2))
    with db.read_session() as s:
        report = verify_chain(s)
        actions = s.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars().all()
    assert report.ok and report.checked == 5, report
    assert actions == [
        "item.view",
        "item.claim",
        "decision.reject",
        "hashlist.benign_add",
        "item.view",
    ]


def test_hostile_event_text_hashes_the_same_on_every_path(db: Database) -> None:
    """The PostgreSQL append hashes in SQL: its JSON text must be exactly event_hash's."""
    odd = 'q"uo\\te \u202e ü 中 @id "@prev'  # no NUL: PostgreSQL text cannot hold one
    with db.session() as s:
        record(s, Event(odd, "item.view", None, None, None))
        record(s, Event("ana", odd, "review_item", odd, {"n": [1, 2.5, None], odd: {odd: odd}}))
        orm_record(s, Event(odd, "x", "y", 3, {"k": odd}))
        record(s, Event("ana", "item.claim", "review_item", 10**12, {}))
    with db.read_session() as s:
        report = verify_chain(s)
    assert report.ok and report.checked == 4, report


# --- appends held for the COMMIT (review.audit.defer_to_commit, PostgreSQL) ----------


def _write(db: Database) -> Iterator[Session]:
    """What `review.web.writing` does around a request's write transaction."""
    with db.session() as s:
        defer_to_commit(s)
        yield s
        commit(s)


def _actions(db: Database) -> list[str]:
    with db.read_session() as s:
        report = verify_chain(s)
        assert report.ok, report
        return list(s.execute(select(AuditEvent.action).order_by(AuditEvent.id)).scalars())


def test_held_appends_keep_the_order_they_were_recorded_in(db: Database) -> None:
    with contextmanager(_write)(db) as s:
        record(s, Event("ana", "item.view", "review_item", 1))
        orm_record(s, Event("ana", "item.claim", "review_item", 1))  # writes the held one first
        record(s, Event("ana", "decision.reject", "review_item", 1, {"status": "rejected"}))
        record(s, Event("ana", "item.view", "review_item", 2))
    with contextmanager(_write)(db) as s:
        record(s, Event("bob", "item.view", "review_item", 3))
    with contextmanager(_write)(db) as s:
        pass  # nothing recorded: an ordinary commit
    assert _actions(db) == [
        "item.view",
        "item.claim",
        "decision.reject",
        "item.view",
        "item.view",
    ]


def test_a_failed_request_records_none_of_its_events(db: Database) -> None:
    with contextmanager(_write)(db) as s:
        record(s, Event("ana", "item.view", "review_item", 1))
    with pytest.raises(RuntimeError), contextmanager(_write)(db) as s:
        record(s, Event("ana", "item.claim", "review_item", 1))
        raise RuntimeError("the handler failed after recording")
    assert _actions(db) == ["item.view"]


def test_the_head_lock_is_not_held_while_the_transaction_works(pg_db_url: str) -> None:
    """The point of holding the appends: other writers never queue behind this body."""
    db, other = Database(pg_db_url), Database(pg_db_url)
    with contextmanager(_write)(db) as s:
        record(s, Event("ana", "item.view", "review_item", 1))
        s.execute(
            insert(Host).values(host="held.example", ip="192.0.2.1", country="NL")
        )  # more work after the event, as a decision does
        with other.session() as o:  # another worker's append goes first, unblocked
            o.execute(text("SET LOCAL lock_timeout = '2s'"))
            orm_record(o, Event("bob", "item.claim", "review_item", 2))
    assert _actions(db) == ["item.claim", "item.view"]
    with db.read_session() as s:
        assert s.execute(select(Host.host)).scalars().all() == ["held.example"]
    db.dispose()
    other.dispose()


def test_an_append_that_fails_at_commit_rolls_the_whole_transaction_back(
    pg_db_url: str,
) -> None:
    db = Database(pg_db_url)
    with pytest.raises(DBAPIError, match="too long"), contextmanager(_write)(db) as s:
        s.execute(insert(Host).values(host="lost.example", ip="192.0.2.2", country="NL"))
        record(s, Event("ana", "item.view", "t" * 40, 1))  # target_type holds 32 characters
    with db.read_session() as s:
        assert s.execute(select(Host.host)).scalars().all() == []
        assert s.execute(select(AuditEvent.id)).scalars().all() == []
    with contextmanager(_write)(db) as s:  # the pooled connection is usable again
        record(s, Event("ana", "item.view", "review_item", 1))
    assert _actions(db) == ["item.view"]
    db.dispose()


def test_writes_held_for_the_commit_land_with_it_in_one_transaction(db: Database) -> None:
    """`at_commit`: on PostgreSQL held for the COMMIT's pipeline, on SQLite run at once."""
    values = {"host": "tail.example", "ip": "192.0.2.3", "country": "NL", "asn": 64500}
    with contextmanager(_write)(db) as s:
        at_commit(s, insert(Host), values)
        record(s, Event("ana", "item.view", "review_item", 1))
        held = s.execute(select(Host.host)).scalars().all()
        assert held == ([] if not db.is_sqlite else ["tail.example"])
    with db.read_session() as s:
        assert s.execute(select(Host.host, Host.asn)).all() == [("tail.example", 64500)]
    assert _actions(db) == ["item.view"]
    with pytest.raises(RuntimeError), contextmanager(_write)(db) as s:
        at_commit(s, insert(Host), {**values, "host": "never.example"})
        raise RuntimeError("the handler failed")
    with contextmanager(_write)(db) as s:  # an ORM append writes what is held first
        at_commit(s, insert(Host), {**values, "host": "early.example"})
        orm_record(s, Event("ana", "item.claim", "review_item", 1))
        assert "early.example" in s.execute(select(Host.host)).scalars().all()
    with db.read_session() as s:
        assert sorted(s.execute(select(Host.host)).scalars()) == ["early.example", "tail.example"]


def test_a_held_insert_must_name_every_defaulted_column(pg_db_url: str) -> None:
    from crawler.db.models import Decision

    db = Database(pg_db_url)
    with pytest.raises(ValueError, match="created_at"), contextmanager(_write)(db) as s:
        values = {"item_id": 1, "user_id": 1, "action": "reject", "item_version": 1}
        at_commit(s, insert(Decision), values)
    db.dispose()


def test_held_writes_convert_their_values_as_sqlalchemy_would(db: Database) -> None:
    """Column types still apply to held writes: a UTC+2 time is stored as its UTC time."""
    from datetime import UTC, datetime, timedelta, timezone

    from crawler.accounts.users import add_user
    from crawler.db.models import Decision, ReviewItem

    with db.session() as s:
        host = Host(host="tz.example", ip="192.0.2.4", country="NL")
        s.add(host)
        s.flush()
        page = Page(url="http://tz.example/", canonical_url="http://tz.example/", host_id=host.id)
        s.add(page)
        s.flush()
        item = ReviewItem(page_id=page.id, priority=1, status="pending")
        s.add(item)
        user = add_user(s, "tzana", "analyst", "a long enough password 123")
        s.flush()
        item_id, user_id = item.id, user.id
    at = datetime(2026, 11, 23, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    values = {
        "item_id": item_id,
        "user_id": user_id,
        "action": "reject",
        "category": None,
        "notes": None,
        "item_version": 1,
        "created_at": at,
    }
    with contextmanager(_write)(db) as s:
        if not db.is_sqlite:  # the server would convert an aware time with this zone
            s.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))
        at_commit(s, insert(Decision), values)
    with db.read_session() as s:
        stored = s.execute(select(Decision.created_at)).scalar_one()
    assert stored == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
