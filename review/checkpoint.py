"""WAL checkpoints of the review app's SQLite writes, off the writers' turn.

Write transactions on a SQLite file take their turn in `crawler.db.session.WriterTurn`
(a thread lock, then an `flock` shared by every process: crawls and app workers alike),
and each begins the moment the previous one ends. A commit that also checkpoints the
WAL (copying the log back into the database, with an fsync) holds that turn for the
copy: 1.7 ms a commit on average here instead of 0.2 ms. So the app's write connections
do not checkpoint on commit (`wal_autocheckpoint = 0`) and a background thread per
process runs a PASSIVE checkpoint, which never blocks writers, about once a second while
there are writes. It stops after a quiet minute and starts again with the next write.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

log = logging.getLogger("review.checkpoint")

CHECKPOINT_EVERY_S = 1.0
IDLE_ROUNDS = 60  # checkpoint rounds without a write before the thread ends


class Checkpointer:
    """Checkpoints one SQLite file's WAL in the background; a no-op for other engines."""

    def __init__(self, engine: Engine) -> None:
        url = make_url(str(engine.url))
        path = url.database if url.get_backend_name() == "sqlite" else None
        self.path = path if path and path != ":memory:" else None
        self._state = threading.Lock()
        self._dirty = False
        self._checkpointer: threading.Thread | None = None
        if self.path is not None:
            event.listen(engine, "connect", _no_autocheckpoint)

    def wrote(self) -> None:
        """A write transaction committed: checkpoint within about a second."""
        if self.path is not None:
            self._wrote()

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
