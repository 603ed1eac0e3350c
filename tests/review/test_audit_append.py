"""The review app's Core audit append writes the same chain as `crawler.audit.record`."""

from __future__ import annotations

from sqlalchemy import select

from crawler.audit import Event, verify_chain
from crawler.audit import record as orm_record
from crawler.db.models import AuditEvent
from crawler.db.session import Database
from review.audit import record


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
