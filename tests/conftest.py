"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL.

Tests that take the `db` (or `db_url`) fixture run twice, once per engine. The
PostgreSQL run gets its own throwaway database cloned from a migrated template, on the
local server (`TAKEDOWN_TEST_PG`, default postgresql+psycopg://root@127.0.0.1:5432/test).
Set `TAKEDOWN_TEST_ENGINES=sqlite` to run SQLite only while iterating; CI runs both, and a
PostgreSQL that does not answer fails the PostgreSQL runs instead of skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crawler.db.migrate import upgrade
from crawler.db.session import Database

PG_ADMIN_URL = os.environ.get("TAKEDOWN_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")
ENGINES = [e for e in os.environ.get("TAKEDOWN_TEST_ENGINES", "sqlite,pg").split(",") if e]
_TEMPLATE = f"td_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database that every PostgreSQL test clones."""
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{_TEMPLATE}"'))
    url = make_url(PG_ADMIN_URL).set(database=_TEMPLATE).render_as_string(hide_password=False)
    db = Database(url)
    upgrade(db)
    db.dispose()
    yield _TEMPLATE
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)'))
    admin.dispose()


def _fresh_pg(request: pytest.FixtureRequest, migrated: bool) -> Iterator[str]:
    name = f"td_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    template = request.getfixturevalue("pg_template") if migrated else "template0"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _engine_params() -> list[object]:
    marks = {"pg": [pytest.mark.pg]}
    return [pytest.param(e, marks=marks.get(e, []), id=e) for e in ENGINES]


@pytest.fixture(params=_engine_params())
def engine_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def empty_db_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database URL with no schema at all."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'takedown.db'}"
    else:
        yield from _fresh_pg(request, migrated=False)


@pytest.fixture
def db_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database URL migrated to head, private to this test."""
    if engine_name == "sqlite":
        url = f"sqlite:///{tmp_path / 'takedown.db'}"
        db = Database(url)
        upgrade(db)
        db.dispose()
        yield url
    else:
        yield from _fresh_pg(request, migrated=True)


@pytest.fixture
def pg_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated PostgreSQL database private to this test, for PostgreSQL-only behaviour."""
    if "pg" not in ENGINES:
        pytest.skip("TAKEDOWN_TEST_ENGINES leaves out pg")
    yield from _fresh_pg(request, migrated=True)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process environment pointed at this test's database and home folder."""
    for key in list(os.environ):
        if key.startswith("TAKEDOWN_") and not key.startswith("TAKEDOWN_TEST"):
            monkeypatch.delenv(key)
    values = {"TAKEDOWN_HOME": str(tmp_path / "home"), "TAKEDOWN_DB": db_url}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `takedown ARGS` in-process; returns (exit code, stdout, stderr)."""
    from crawler.cli import main

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        import io
        import sys

        old = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            code = main(list(args))
        finally:
            sys.stdin = old
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A `redis-server` of this test's own on a free loopback port (scale-out tests)."""
    from tests.support.scalekit import redis_server

    folder = tmp_path / "redis"
    folder.mkdir()
    with redis_server(folder) as server:
        yield server.url
