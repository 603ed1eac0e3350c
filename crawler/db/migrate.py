"""Alembic driven from code: `takedown db upgrade` and the schema check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from crawler.errors import SchemaChangedError

if TYPE_CHECKING:
    from crawler.db.session import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def current_revision(db: Database) -> str | None:
    with db.read_engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class SchemaWatch:
    """Tells a long-running writer when the schema moved under it (docs/hazards.md S-11).

    `check()` reads the revision at most every `interval` seconds and raises
    `SchemaChangedError` once it differs from the revision this code was written for,
    so a crawl stops cleanly between batches instead of writing rows a migration did not
    expect."""

    def __init__(self, db: Database, interval: float = 1.0) -> None:
        import time

        self._db = db
        self._clock = time.monotonic
        self._interval = interval
        self._expected = head_revision()
        self._next = 0.0

    def check(self) -> None:
        now = self._clock()
        if now < self._next:
            return
        self._next = now + self._interval
        current = current_revision(self._db)
        if current != self._expected:
            raise SchemaChangedError(
                f"the database schema is at {current}, this crawl was written for "
                f"{self._expected}: stopping before writing more"
            )


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade to `revision`; returns (before, after)."""
    db.check_reachable()
    before = current_revision(db)
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before, current_revision(db) or ""
