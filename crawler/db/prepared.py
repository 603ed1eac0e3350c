"""Core statements built once per dialect, executed with parameter dicts.

The crawl's writers run the same few statements for every page and media item. Built
per item (`insert(...).values(...)`, `stmt.excluded`, ORM bulk inserts) they cost more
GIL time than the database work itself: each build makes new clause objects, an
`excluded` alias with fresh Column copies, and a cache key walking every value. Built
once here on `Model.__table__` with bound parameters, a statement is compiled once per
engine (SQLAlchemy's compiled cache) and run as `connection.execute(stmt, params)` or,
with a list of dicts, as an executemany (multi-row VALUES batches on both engines).

`prepared(conn, build)` returns the statement `build(insert)` made for the connection's
dialect, `insert` being the dialect's ON CONFLICT-capable `insert()` (`insert_for`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

Insert = Callable[[Any], Any]
_INSERTS: dict[str, Insert] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_BUILT: dict[tuple[str, Callable[[Insert], Any]], Any] = {}


def dialect_insert(dialect: str) -> Insert:
    try:
        return _INSERTS[dialect]
    except KeyError:
        raise NotImplementedError(f"no upsert support for the {dialect} dialect") from None


def prepared(conn: Connection, build: Callable[[Insert], Any]) -> Any:
    """The statement *build* makes for *conn*'s dialect, built on first use only.
    Statements are immutable, so one may be shared by every thread (a race builds
    it twice, harmlessly)."""
    name = conn.dialect.name
    stmt = _BUILT.get((name, build))
    if stmt is None:
        stmt = _BUILT[(name, build)] = build(dialect_insert(name))
    return stmt
