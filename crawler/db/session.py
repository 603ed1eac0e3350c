"""Engines and sessions. Nothing here runs at import time: the caller owns the engine.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy timeout,
and every write transaction starts with `BEGIN IMMEDIATE`: a deferred read-then-write
transaction can fail with "database is locked" however long the busy timeout is, an
immediate one waits its turn instead. Read-only sessions keep deferred transactions so
readers never queue behind writers (WAL gives them a snapshot).

Waiting in SQLite's busy handler means sleeping in growing steps (1, 2, 5, 10 … 100 ms)
while the lock may already be free: with a crawl's three writers (store and evidence
processes, the frontier thread) that sleeping, not the writes, set the pace. So write
transactions on a SQLite file first queue for `WriterTurn`: a thread lock within the
process, then an `fcntl.flock` of `<database>.write-turn` across processes (crawls, their
writer processes and review app workers alike), and each begins the moment the previous
one ends.

On PostgreSQL, `request_reads()` serves a web request's reads in autocommit: under READ
COMMITTED every statement takes its own snapshot inside a transaction as well, so the
BEGIN and ROLLBACK round trips around them bought nothing. And connections are pinged
only when they come out of the pool after sitting idle for `PING_IDLE_S` (a restarted
server has closed them); `pool_pre_ping` pinged on every checkout, a round trip for each
of a request's reads and writes (docs/benchmarks.md, "Review app").
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crawler.errors import DependencyError, SchemaMissingError, UsageError

BUSY_TIMEOUT_MS = 30_000
PING_IDLE_S = 5.0  # a pooled connection idle longer than this is pinged before use


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given, minus nothing
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite would otherwise emit its own deferred BEGIN; we emit ours in on_begin.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use if it sat idle over `PING_IDLE_S`.

    SQLAlchemy's "pessimistic disconnect handling, custom" recipe: raising
    `DisconnectionError` on checkout makes the pool drop the connection and try another.
    """
    dialect = engine.dialect

    def checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["td_idle_since"] = time.monotonic()

    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("td_idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:  # noqa: BLE001 - any failure means: not this connection
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checkout)


def _make_engine(url: str, *, immediate: bool, prepare_threshold: int | None = None) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        args = {} if prepare_threshold is None else {"prepare_threshold": prepare_threshold}
        engine = create_engine(url, pool_size=10, max_overflow=20, connect_args=args)
        _ping_idle_connections(engine)
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(begin))
    return engine


class WriterTurn:
    """Queues the write transactions of every thread and process on one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = f"{path}.write-turn"
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._fd_pid = 0

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._threads:
            self._depth += 1
            try:
                if self._depth == 1:
                    fd = self._lock_file()
                    fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
                    try:
                        yield
                    finally:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                else:
                    yield  # nested in this thread's own turn
            finally:
                self._depth -= 1

    def _lock_file(self) -> int:
        # Opened per process: a descriptor inherited across fork would share its lock.
        if self._fd is None or self._fd_pid != os.getpid():
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._fd, self._fd_pid = os.open(self.path, flags, 0o600), os.getpid()
        return self._fd


@contextmanager
def _no_turn() -> Iterator[None]:
    yield


class Database:
    """One database: a write engine and, on SQLite, a separate engine for reads."""

    def __init__(self, url: str, *, prepare_threshold: int | None = None) -> None:
        """`prepare_threshold`: psycopg's, for PostgreSQL (executions of a statement on
        a connection before it is prepared server-side; psycopg's default is 5). A
        server running a small fixed set of statements, like the review app, gains from 0:
        PostgreSQL then parses each once per connection instead of five times."""
        try:
            self.url = url
            self.engine = _make_engine(url, immediate=True, prepare_threshold=prepare_threshold)
        except Exception as exc:  # noqa: BLE001 - bad URLs come in many exception types
            raise UsageError(f"TAKEDOWN_DB: cannot use {safe_url(url)}: {exc}") from exc
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.read_engine = _make_engine(url, immediate=False) if self.is_sqlite else self.engine
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)
        self._request_reader = (
            self._reader
            if self.is_sqlite
            else sessionmaker(
                self.engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
            )
        )
        database = self.engine.url.database if self.is_sqlite else None
        self.turn = WriterTurn(database) if database and database != ":memory:" else _no_turn

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction: committed on success, rolled back on any error."""
        with self.turn(), self._writer() as session, session.begin():
            yield session

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction on a bare connection (no ORM session), in turn."""
        with self.turn(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only snapshot (deferred transaction on SQLite)."""
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def request_reads(self) -> Iterator[Session]:
        """Short reads for one web request: autocommit on PostgreSQL, a snapshot on SQLite.

        Not for server-side cursors (`yield_per`), which need a transaction: use
        `read_session` for those.
        """
        with self._request_reader() as session, session.begin():
            yield session

    def check_reachable(self) -> None:
        try:
            with self.read_engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise DependencyError(
                f"database unreachable at {safe_url(self.url)}: {reason}"
            ) from exc

    def require_schema(self) -> None:
        """Fail with the `db upgrade` hint unless the schema is at the head revision."""
        from crawler.db.migrate import current_revision, head_revision

        self.check_reachable()
        current = current_revision(self)
        if current is None:
            raise SchemaMissingError("no schema")
        if current != head_revision():
            raise SchemaMissingError(f"at {current}, code expects {head_revision()}")

    def table_names(self) -> list[str]:
        return inspect(self.read_engine).get_table_names()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
