"""ORM rows in and out of a test database: added the one way the test helpers add them (add,
then flush so the row's id is set before the next row refers to it), read in a snapshot."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Row, Select
from sqlalchemy.orm import Session

from crawler.db.session import Database

R = TypeVar("R")


def added(session: Session, row: R) -> R:
    """`row`, added to `session` and flushed (its generated id is set)."""
    session.add(row)
    session.flush()
    return row


def all_rows(db: Database, statement: Select[Any]) -> list[Row[Any]]:
    """The rows `statement` selects, read in a read-only snapshot of `db`."""
    with db.read_session() as session:
        return list(session.execute(statement).all())
