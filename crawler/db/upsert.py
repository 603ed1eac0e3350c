"""`INSERT … ON CONFLICT` for whichever engine the session is bound to.

Select-then-insert loses rows under concurrency; both SQLite and PostgreSQL support the
same ON CONFLICT clause, so every upsert in the project goes through `insert_for`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_for(session: Session, table: Any) -> Any:
    """A dialect-specific `insert()` that offers `on_conflict_do_*`."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert support for the {name} dialect")
