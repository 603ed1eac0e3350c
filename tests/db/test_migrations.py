"""The schema comes only from migrations, and the migrations match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from crawler.db.migrate import current_revision, head_revision, upgrade
from crawler.db.models import Base
from crawler.db.session import Database


def test_upgrade_empty_database_to_head_then_autogenerate_finds_nothing(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    try:
        assert current_revision(db) is None
        before, after = upgrade(db)
        assert (before, after) == (None, head_revision())
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
        assert upgrade(db) == (head_revision(), head_revision())  # idempotent
    finally:
        db.dispose()


def test_every_model_table_exists_after_upgrade(db: Database) -> None:
    assert set(Base.metadata.tables) <= set(db.table_names())
