"""The audit trail: append-only events, each carrying the hash of the previous one.

Appends are serialised by locking the single `audit_head` row (`SELECT … FOR UPDATE` on
PostgreSQL; SQLite write transactions are already exclusive), so concurrent appends can
never fork the chain. `verify_chain` names the first row that does not fit: an edit,
deletion, insertion or reordering anywhere breaks the chain from that row on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.db.models import AuditEvent, AuditHead
from crawler.db.types import utcnow

GENESIS = "0" * 64
NAME_CHARS = 64  # what the actor, action and target_id columns hold


@dataclass(frozen=True)
class Event:
    """One thing that happened, by whom, to what."""

    actor: str
    action: str
    target_type: str | None = None
    target_id: str | int | None = None
    details: dict[str, Any] | None = None


def event_json(event_id: object, prev_hash: object, at: datetime, event: Event) -> str:
    """The canonical JSON text an event's hash is taken over (`event_hash`); the review
    app's one-statement append fills the id and the previous hash in on the server."""
    body = {
        "id": event_id,
        "prev": prev_hash,
        "at": at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": None if event.target_id is None else str(event.target_id),
        "details": event.details or {},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def event_hash(prev_hash: str, at: datetime, event: Event, event_id: int) -> str:
    return hashlib.sha256(event_json(event_id, prev_hash, at, event).encode()).hexdigest()


def as_stored(event: Event) -> Event:
    """`event` as its row holds it, which is what its hash is taken over.

    Actor, action and target id longer than their columns are cut to `NAME_CHARS`; the
    whole values move to ``details["untruncated"]``, so nothing is lost and the row still
    verifies (hashing the event as given made `verify_chain` reject any such row).
    """
    target = None if event.target_id is None else str(event.target_id)
    named = {"actor": event.actor, "action": event.action, "target_id": target}
    cut = {k: v for k, v in named.items() if v is not None and len(v) > NAME_CHARS}
    if not cut:
        return event
    return Event(
        event.actor[:NAME_CHARS],
        event.action[:NAME_CHARS],
        event.target_type,
        None if target is None else target[:NAME_CHARS],
        {**(event.details or {}), "untruncated": cut},
    )


def event_columns(event: Event) -> dict[str, Any]:
    """The columns that hold who did what to what, as `as_stored` cuts them."""
    return _columns(as_stored(event))


def _columns(stored: Event) -> dict[str, Any]:
    return {
        "actor": stored.actor,
        "action": stored.action,
        "target_type": stored.target_type,
        "target_id": None if stored.target_id is None else str(stored.target_id),
    }


def event_row(event_id: int, prev_hash: str, at: datetime, event: Event) -> dict[str, Any]:
    """Every column of the `audit_events` row that appends `event` after `prev_hash`: the
    one rule for what an append writes, used by `record` (ORM) and by the review app's
    Core statements (`review.audit.record`)."""
    stored = as_stored(event)
    return {
        "id": event_id,
        "at": at,
        **_columns(stored),
        "details": stored.details,
        "prev_hash": prev_hash,
        "hash": event_hash(prev_hash, at, stored, event_id),
    }


def _lock_head(session: Session) -> AuditHead:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar()
    if head is None:
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        session.add(head)
        session.flush()
    return head


# A write transaction may defer its appends to its commit (`review.audit`, PostgreSQL):
# `session.info[DEFERRED]` then holds a callable that writes them now. An ORM append calls
# it first, so the chain keeps the order in which the events were recorded.
DEFERRED = "td_audit_deferred"


def record(session: Session, event: Event) -> AuditEvent:
    """Append `event` inside the caller's transaction."""
    write_deferred = session.info.get(DEFERRED)
    if write_deferred is not None:
        write_deferred(session)
    head = _lock_head(session)
    row = AuditEvent(**event_row(head.last_id + 1, head.last_hash, utcnow(), event))
    session.add(row)
    head.last_id, head.last_hash = row.id, row.hash
    session.flush()
    return row


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str | None = None


def _row_event(row: AuditEvent) -> Event:
    return Event(row.actor, row.action, row.target_type, row.target_id, row.details)


def verify_chain(session: Session) -> ChainReport:
    """Walk every event in id order; report the first one that breaks the chain."""
    prev, expected_id, checked = GENESIS, 1, 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
    for row in rows:
        if row.id != expected_id:
            return ChainReport(False, checked, row.id, f"event {expected_id} is missing")
        if row.prev_hash != prev:
            return ChainReport(False, checked, row.id, "previous-hash link broken")
        if event_hash(prev, row.at, _row_event(row), row.id) != row.hash:
            return ChainReport(False, checked, row.id, "contents do not match their hash")
        prev, expected_id, checked = row.hash, expected_id + 1, checked + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_id != checked or head.last_hash != prev):
        return ChainReport(False, checked, head.last_id, "events after the last one were removed")
    return ChainReport(True, checked)
