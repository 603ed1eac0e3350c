"""The review app's audit append: `crawler.audit.record` in three Core statements.

Same chain, same rows, same lock: the `audit_head` row is read `FOR UPDATE` (PostgreSQL;
SQLite write transactions are already exclusive), the event is inserted with the hash of
the previous one, and the head moves on. `crawler.audit.record` does this through ORM
objects and a flush, about 1 ms of CPU an append; every item view, claim and decision
appends one, so the review app's hot paths use these prebuilt statements instead
(docs/benchmarks.md, "Review app"). `crawler.audit.verify_chain` checks both alike.

On PostgreSQL the head row's lock is what every write transaction of every worker queues
on, held from the append until COMMIT; there the append is one statement (the hash
computed by the server's `sha256()` over the same JSON text as `event_hash`), so the
lock is held for two round trips instead of four.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, insert, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from crawler.audit import GENESIS, Event, event_hash, event_json
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


# Lock the head, insert the event hashed over head + id + middle + prev hash + tail (the
# JSON of `event_hash` around its two values known only under the lock), move the head.
_PG_APPEND = text(
    """
WITH head AS (
    SELECT last_id + 1 AS id, last_hash AS prev FROM audit_head WHERE id = 1 FOR UPDATE
), event AS (
    INSERT INTO audit_events
        (id, at, actor, action, target_type, target_id, details, prev_hash, hash)
    SELECT id, :at, :actor, :action, :target_type, :target_id, CAST(:details AS JSON), prev,
           encode(sha256(convert_to(
               CAST(:head AS text) || id::text || CAST(:middle AS text) || prev
               || CAST(:tail AS text), 'UTF8')), 'hex')
    FROM head
    RETURNING id, hash
)
UPDATE audit_head SET last_id = event.id, last_hash = event.hash
FROM event WHERE audit_head.id = 1
RETURNING event.id
"""
)


def _json_around(at: datetime, event: Event) -> tuple[str, str, str]:
    """`event_hash`'s JSON text cut where the id and the previous hash go."""
    marker = secrets.token_hex(8)
    blob = event_json(f"@{marker}id", f"@{marker}prev", at, event)
    head, rest = blob.split(f'"@{marker}id"')
    middle, tail = rest.split(f'"@{marker}prev"')
    return head, middle + '"', '"' + tail


def _append_pg(conn: Connection, event: Event) -> int | None:
    """The one-statement append; None when there is no head row yet."""
    at = utcnow()
    head, middle, tail = _json_around(at, event)
    params = {
        "at": at.astimezone(UTC).replace(tzinfo=None),  # stored as naive UTC (UTCDateTime)
        "actor": event.actor[:64],
        "action": event.action[:64],
        "target_type": event.target_type,
        "target_id": None if event.target_id is None else str(event.target_id)[:64],
        "details": json.dumps(event.details),
        "head": head,
        "middle": middle,
        "tail": tail,
    }
    event_id: int | None = conn.execute(_PG_APPEND, params).scalar()
    return event_id


def record(session: Session, event: Event) -> int:
    """Append `event` inside the caller's transaction; returns the event's id."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        event_id = _append_pg(conn, event)
        if event_id is not None:
            _forget_orm_head(session)
            return event_id
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
