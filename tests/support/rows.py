"""Putting ORM rows in a test database the one way the test helpers do it: add, then flush so
the row's id is set before the next row refers to it."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.orm import Session

R = TypeVar("R")


def added(session: Session, row: R) -> R:
    """`row`, added to `session` and flushed (its generated id is set)."""
    session.add(row)
    session.flush()
    return row
