"""The review app's audit append: `crawler.audit.record` in three Core statements.

Same chain, same rows, same lock: the `audit_head` row is read `FOR UPDATE` (PostgreSQL;
SQLite write transactions are already exclusive), the event is inserted with the hash of
the previous one, and the head moves on. `crawler.audit.record` does this through ORM
objects and a flush, about 1 ms of CPU an append; every item view, claim and decision
appends one, so the review app's hot paths use these prebuilt statements instead
(docs/benchmarks.md, "Review app"). `crawler.audit.verify_chain` checks both alike.
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from crawler.audit import GENESIS, Event, event_hash
from crawler.db.models import AuditEvent, AuditHead
from crawler.db.types import utcnow

_LOCK_HEAD = (
    select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()
)
_NEW_HEAD = insert(AuditHead).values(id=1, last_id=0, last_hash=GENESIS)
_MOVE_HEAD = (
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)
_INSERT = insert(AuditEvent)


def record(session: Session, event: Event) -> int:
    """Append `event` inside the caller's transaction; returns the event's id."""
    conn = session.connection()
    head = conn.execute(_LOCK_HEAD).first()
    if head is None:
        conn.execute(_NEW_HEAD)
        last_id, last_hash = 0, GENESIS
    else:
        last_id, last_hash = head
    at, event_id = utcnow(), last_id + 1
    digest = event_hash(last_hash, at, event, event_id)
    conn.execute(
        _INSERT,
        {
            "id": event_id,
            "at": at,
            "actor": event.actor[:64],
            "action": event.action[:64],
            "target_type": event.target_type,
            "target_id": None if event.target_id is None else str(event.target_id)[:64],
            "details": event.details,
            "prev_hash": last_hash,
            "hash": digest,
        },
    )
    conn.execute(_MOVE_HEAD, {"new_id": event_id, "new_hash": digest})
    _forget_orm_head(session)
    return event_id


def _forget_orm_head(session: Session) -> None:
    """An `AuditHead` loaded by `crawler.audit.record` in this transaction is now stale.

    Expiring it makes a later ORM append in the same transaction re-read the head
    instead of reusing the old number (which would fork the chain).
    """
    head = session.identity_map.get(identity_key(AuditHead, 1))
    if head is not None:
        session.expire(head)
