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
    """docs/hazards.md S-06 and S-09: 4 processes x 150 read-then-upserts, one row per SHA-256."""
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


# --- PostgreSQL connection handling (docs/benchmarks.md, "Review app") ---------------


def _backend_pid(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _count_pings(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    real = db.engine.dialect.do_ping

    def counting(dbapi_conn: object) -> bool:
        pings.append(1)
        return real(dbapi_conn)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counting)
    return pings


def test_request_reads_run_outside_a_transaction_on_postgres_only(db: Database) -> None:
    with db.request_reads() as s:
        s.execute(select(func.count()).select_from(Media)).scalar()
        dbapi = s.connection().connection.dbapi_connection
        if db.is_sqlite:
            assert dbapi.in_transaction  # the deferred snapshot of read_session
        else:
            assert dbapi.autocommit is True
            status = dbapi.info.transaction_status.name
            assert status == "IDLE", status  # no BEGIN was sent
    with db.read_session() as s:  # unchanged: a transaction (server-side cursors need one)
        s.execute(select(func.count()).select_from(Media)).scalar()
        dbapi = s.connection().connection.dbapi_connection
        assert dbapi.in_transaction if db.is_sqlite else dbapi.autocommit is False
    with db.session() as s:  # a write after autocommit reads is a transaction again
        s.execute(
            insert_for(s, Media.__table__).values(
                sha256="a" * 64, sha1="0" * 40, md5="0" * 32, bytes=1, media_type="image"
            )
        )
        dbapi = s.connection().connection.dbapi_connection
        assert dbapi.in_transaction if db.is_sqlite else dbapi.autocommit is False


@pytest.mark.pg
def test_busy_postgres_connections_are_not_pinged_idle_ones_are(
    pg_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_db_url)
    pings = _count_pings(db, monkeypatch)
    for _ in range(5):
        _backend_pid(db)
    assert pings == []  # back in use within PING_IDLE_S: no round trip spent on a ping
    monkeypatch.setattr("crawler.db.session.PING_IDLE_S", 0.0)
    _backend_pid(db)
    assert pings == [1]
    db.dispose()


@pytest.mark.pg
def test_a_pooled_connection_killed_while_idle_is_replaced_unnoticed(
    pg_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_db_url)
    first = _backend_pid(db)
    other = Database(pg_db_url)
    with other.engine.connect() as conn:  # a server restart, for that one connection
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
        conn.commit()
    other.dispose()
    monkeypatch.setattr("crawler.db.session.PING_IDLE_S", 0.0)
    with db.request_reads() as s:  # the ping fails, the pool connects afresh
        assert s.execute(select(func.count()).select_from(Media)).scalar() == 0
    assert _backend_pid(db) != first
    db.dispose()


def test_the_review_app_prepares_its_statements_at_first_use(pg_db_url: str) -> None:
    from review.app import create_app

    app = create_app(test_config={"db_url": pg_db_url, "secret_key": "k" * 32})
    review_db, plain = app.extensions["review_db"], Database(pg_db_url)
    for db, threshold in ((review_db, 0), (plain, 5)):  # 5: psycopg's own default
        with db.request_reads() as s:
            dbapi = s.connection().connection.dbapi_connection
            assert dbapi.prepare_threshold == threshold
            for _ in range(2):
                s.execute(select(func.count()).select_from(Media)).scalar()
            prepared = s.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()
            assert (prepared > 0) is (threshold == 0)
        db.dispose()
