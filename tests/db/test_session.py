"""Engine behaviour: SQLite pragmas, write serialisation, errors at the edges."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from crawler.db.migrate import upgrade
from crawler.db.models import Media
from crawler.db.session import Database
from crawler.db.upsert import insert_for
from crawler.errors import DependencyError, SchemaMissingError


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    db.dispose()


def test_unreachable_postgres_is_a_dependency_error() -> None:
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    with pytest.raises(DependencyError, match="database unreachable"):
        db.require_schema()


def test_missing_schema_names_the_fix(empty_db_url: str) -> None:
    db = Database(empty_db_url)
    with pytest.raises(SchemaMissingError, match="takedown db upgrade"):
        db.require_schema()
    db.dispose()


def _upsert_worker(url: str, worker: int, count: int) -> int:
    """Read-then-write in one transaction: the pattern that locks up deferred SQLite."""
    db = Database(url)
    errors = 0
    for i in range(count):
        try:
            with db.session() as s:
                s.execute(select(func.count()).select_from(Media)).scalar()
                stmt = insert_for(s, Media.__table__).values(
                    sha256=f"{i:064x}", sha1="0" * 40, md5="0" * 32, bytes=1, media_type="image"
                )
                s.execute(stmt.on_conflict_do_nothing(index_elements=["sha256"]))
        except Exception:  # noqa: BLE001 - counted, that is the assertion
            errors += 1
    db.dispose()
    return errors


def test_concurrent_writers_never_hit_database_locked(db_url: str) -> None:
    """HAZARDS S-06 and S-09: 4 processes x 150 read-then-upserts, one row per SHA-256."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        errors = pool.starmap(_upsert_worker, [(db_url, w, 150) for w in range(4)])
    assert errors == [0, 0, 0, 0]
    db = Database(db_url)
    with db.read_session() as s:
        assert s.execute(select(func.count()).select_from(Media)).scalar() == 150
    db.dispose()


def test_read_session_sees_committed_rows(db: Database) -> None:
    with db.session() as s:
        s.execute(text("INSERT INTO seed_sets (name, created_at) VALUES ('x', CURRENT_TIMESTAMP)"))
    with db.read_session() as s:
        assert s.execute(text("SELECT count(*) FROM seed_sets")).scalar() == 1


def test_upgrade_creates_sqlite_parent_folder(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'deep' / 'er' / 'td.db'}")
    upgrade(db)
    assert (tmp_path / "deep" / "er" / "td.db").exists()
    db.dispose()
