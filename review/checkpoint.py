"""SQLite's one writer, shared fairly by the threads and processes of the review app.

Every write transaction is `BEGIN IMMEDIATE`. A connection that finds the writer busy
sleeps in SQLite's busy handler, which backs off in steps up to 100 ms: with 20 clients
that was a 1-2 s tail on claims (docs/benchmarks.md). So writers queue instead: on a
thread lock within a process, then on an `fcntl.flock` of a lock file beside the
database across processes (`takedown review serve --workers N`), and each transaction
begins the moment the previous one has committed.

WAL checkpoints (copying the log back into the database, with an fsync) are taken off
that queue too: the app's write connections do not checkpoint on commit
(`wal_autocheckpoint = 0`), and a background thread per process runs a PASSIVE
checkpoint, which never blocks writers, about once a second while there are writes. It
stops after a quiet minute and starts again with the next write.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

log = logging.getLogger("review.writer")

CHECKPOINT_EVERY_S = 1.0
IDLE_ROUNDS = 60  # checkpoint rounds without a write before the thread ends


class SQLiteWriter:
    """Orders write transactions on one SQLite file; a no-op gate for other engines."""

    def __init__(self, engine: Engine) -> None:
        url = make_url(str(engine.url))
        path = url.database if url.get_backend_name() == "sqlite" else None
        self.path = path if path and path != ":memory:" else None
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._fd_pid = 0
        self._state = threading.Lock()
        self._dirty = False
        self._checkpointer: threading.Thread | None = None
        if self.path is not None:
            event.listen(engine, "connect", _no_autocheckpoint)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold the writer's turn: this thread, then this process, may write now."""
        if self.path is None:
            yield
            return
        with self._threads:
            fd = self._lock_file()
            fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        self._wrote()

    def _lock_file(self) -> int:
        # Opened per process: a descriptor inherited across fork would share its lock.
        if self._fd is None or self._fd_pid != os.getpid():
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
            self._fd, self._fd_pid = os.open(f"{self.path}.writer-lock", flags, 0o600), os.getpid()
        return self._fd

    def _wrote(self) -> None:
        with self._state:
            self._dirty = True
            self._start_checkpointer()

    def _start_checkpointer(self) -> None:
        """With `_state` held; a thread per process (threads do not survive a fork)."""
        if self._checkpointer is not None and self._checkpointer.is_alive():
            return
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        assert self.path is not None
        if not os.path.exists(self.path):
            return  # never create a database file that is gone
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        idle = 0
        try:
            while idle < IDLE_ROUNDS and os.path.exists(self.path):
                time.sleep(CHECKPOINT_EVERY_S)
                with self._state:
                    dirty, self._dirty = self._dirty, False
                if dirty:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                idle = 0 if dirty else idle + 1
        except sqlite3.Error as exc:  # the database went away or is unreadable: stop
            log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()
            with self._state:
                if self._checkpointer is threading.current_thread():
                    self._checkpointer = None  # the next write starts a new one
                if self._dirty and os.path.exists(self.path):  # a write slipped in
                    self._start_checkpointer()


def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA wal_autocheckpoint = 0")
    cur.close()
