"""The review app's audit append: `crawler.db.audit.record` in three Core statements.

Same chain, same rows, same lock: the `audit_head` row is read `FOR UPDATE` (PostgreSQL;
SQLite write transactions are already exclusive), the event is inserted with the hash of
the previous one, and the head moves on. `crawler.db.audit.record` does this through ORM
objects and a flush, about 1 ms of CPU an append; every item view, claim and decision
appends one, so the review app's hot paths use these prebuilt statements instead
(docs/benchmarks.md, "Review app"). `crawler.db.audit.verify_chain` checks both alike.

On PostgreSQL the head row's lock is what every write transaction of every worker queues
on, held from the append until COMMIT; there the append is one statement (the hash
computed by the server's `sha256()` over the same JSON text as `event_hash`), so the
lock is held for two round trips instead of four.

Better still, the review app's write transactions (`review.web.writing`) defer their
appends on PostgreSQL (`defer_to_commit`) and send them with the COMMIT in one pipeline
(`commit`): the server then takes the head lock and releases it at COMMIT without waiting
on this process at all. Under 20 busy clients, waiting for the append's answer and for
the GIL before sending COMMIT held the lock 3-4 ms a write, which capped every write of
every worker at ~300 a second (docs/benchmarks.md, "Review app"). A deferred event is
written in the same transaction as before, only later in it: an ORM append
(`crawler.db.audit.record`) in the same transaction writes the deferred ones first, so the
chain keeps the order in which the events were recorded.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Connection, Insert, bindparam, insert, select, text, update
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.expression import UpdateBase

from crawler.db.audit import (
    DEFERRED,
    GENESIS,
    Event,
    as_stored,
    event_columns,
    event_json,
    event_row,
)
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


# The same statements in psycopg's own placeholders, for the pipeline of `commit`.
_PG_APPEND_SQL = str(_PG_APPEND.compile(dialect=psycopg_dialect()))
_PG_NEW_HEAD_SQL = (
    str(_NEW_HEAD.compile(dialect=psycopg_dialect(), compile_kwargs={"literal_binds": True}))
    + " ON CONFLICT (id) DO NOTHING"
)
_PENDING = "td_audit_pending"


def _json_around(at: datetime, event: Event) -> tuple[str, str, str]:
    """`event_hash`'s JSON text cut where the id and the previous hash go."""
    marker = secrets.token_hex(8)
    blob = event_json(f"@{marker}id", f"@{marker}prev", at, event)
    head, rest = blob.split(f'"@{marker}id"')
    middle, tail = rest.split(f'"@{marker}prev"')
    return head, middle + '"', '"' + tail


def _pg_params(event: Event) -> dict[str, Any]:
    event = as_stored(event)  # the hash is taken over what the row holds
    at = utcnow()
    head, middle, tail = _json_around(at, event)
    return {
        "at": at.astimezone(UTC).replace(tzinfo=None),  # stored as naive UTC (UTCDateTime)
        **event_columns(event),
        "details": json.dumps(event.details),
        "head": head,
        "middle": middle,
        "tail": tail,
    }


def _append_pg(conn: Connection, params: dict[str, Any]) -> int | None:
    """The one-statement append; None when there is no head row yet."""
    event_id: int | None = conn.execute(_PG_APPEND, params).scalar()
    return event_id


_TAIL = "td_commit_tail"  # session.info: writes whose results nobody reads, for `commit`


def defer_to_commit(session: Session) -> None:
    """On PostgreSQL, hold this transaction's appends for `commit` (no-op on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        session.info[_PENDING] = []
        session.info[_TAIL] = []
        session.info[DEFERRED] = _write_deferred


@lru_cache(maxsize=64)
def _driver_statement(stmt: UpdateBase, keys: tuple[str, ...], dialect: Dialect) -> tuple[str, Any]:
    """`stmt` as the driver's SQL text and a function turning values into its parameters."""
    if isinstance(stmt, Insert):
        missing = [c.name for c in stmt.table.c if c.default is not None and c.name not in keys]
        if missing:  # column defaults are applied by execution, which this bypasses
            raise ValueError(f"at_commit: give {missing} explicitly")
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    processors = {
        name: bind.type.dialect_impl(dialect).bind_processor(dialect)
        for name, bind in compiled.binds.items()
    }

    def parameters(values: dict[str, Any]) -> dict[str, Any]:
        out = dict(compiled.construct_params(values))
        for name, process in processors.items():
            if process is not None and name in out:
                out[name] = process(out[name])
        return out

    return str(compiled), parameters


def at_commit(session: Session, stmt: UpdateBase, values: dict[str, Any]) -> None:
    """Execute a write whose result nobody reads: now, or held for `commit`'s pipeline.

    Held only in a transaction that `defer_to_commit` prepared (PostgreSQL); the write
    then runs just before the audit appends and COMMIT, in the same round trip. Every
    column an INSERT sets must be in `values` (column defaults are not applied).
    """
    tail = session.info.get(_TAIL)
    if tail is None:
        session.connection().execute(stmt, values)
        return
    sql, parameters = _driver_statement(stmt, tuple(sorted(values)), session.get_bind().dialect)
    tail.append((sql, parameters(values)))


def _write_deferred(session: Session) -> None:
    """Write the held writes and appends now (before an ORM append); later ones are held."""
    pending: list[dict[str, Any]] = session.info.get(_PENDING) or []
    tail: list[tuple[str, dict[str, Any]]] = session.info.get(_TAIL) or []
    conn = session.connection()
    for sql, params in tail:
        conn.exec_driver_sql(sql, params)
    tail.clear()
    if pending:
        conn.exec_driver_sql(_PG_NEW_HEAD_SQL)
        for params in pending:
            conn.execute(_PG_APPEND, params)
        pending.clear()
        _forget_orm_head(session)


def commit(session: Session) -> None:
    """Send the held writes, the appends and COMMIT together, as the transaction's end.

    After this the session's own commit finds the connection idle and sends nothing.
    Without held work (SQLite, or nothing held) it does nothing: the caller's commit
    commits as usual.
    """
    session.info.pop(DEFERRED, None)
    pending: list[dict[str, Any]] = session.info.pop(_PENDING, None) or []
    tail: list[tuple[str, dict[str, Any]]] = session.info.pop(_TAIL, None) or []
    if not pending and not tail:
        return
    session.flush()  # ORM changes go first, inside the transaction
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    sql = _PG_APPEND_SQL
    try:
        with dbapi.pipeline(), dbapi.cursor() as cur:  # type: ignore[attr-defined]
            for sql, params in tail:  # the head lock is taken after these, not before
                cur.execute(sql, params)
            if pending:
                cur.execute(_PG_NEW_HEAD_SQL)
            for params in pending:
                cur.execute(_PG_APPEND_SQL, params)
            dbapi.commit()
    except psycopg.Error as exc:  # as SQLAlchemy raises it; the caller's exit rolls back
        raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc
    _forget_orm_head(session)


def record(session: Session, event: Event) -> int | None:
    """Append `event` inside the caller's transaction; returns the event's id.

    None when the append is held for `commit` (`defer_to_commit`, PostgreSQL).
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        params = _pg_params(event)
        pending = session.info.get(_PENDING)
        if pending is not None:
            pending.append(params)
            return None
        event_id = _append_pg(conn, params)
        if event_id is not None:
            _forget_orm_head(session)
            return event_id
    head = conn.execute(_LOCK_HEAD).first()
    if head is None:
        conn.execute(_NEW_HEAD)
        last_id, last_hash = 0, GENESIS
    else:
        last_id, last_hash = head
    event_id = last_id + 1
    row = event_row(event_id, last_hash, utcnow(), event)
    conn.execute(_INSERT, row)
    conn.execute(_MOVE_HEAD, {"new_id": event_id, "new_hash": row["hash"]})
    _forget_orm_head(session)
    return event_id


def _forget_orm_head(session: Session) -> None:
    """An `AuditHead` loaded by `crawler.db.audit.record` in this transaction is now stale.

    Expiring it makes a later ORM append in the same transaction re-read the head
    instead of reusing the old number (which would fork the chain).
    """
    head = session.identity_map.get(identity_key(AuditHead, 1))
    if head is not None:
        session.expire(head)
