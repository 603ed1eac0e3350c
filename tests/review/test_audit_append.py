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
