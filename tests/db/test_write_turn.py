"""SQLite write transactions queue on one turn across threads and processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from sqlalchemy import text

from crawler.db.session import Database

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def test_a_writer_in_another_process_holds_the_turn(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'turn.db'}")
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "turn.db.write-turn"), "0.8"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with db.session() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
    waited = time.monotonic() - started
    holder.wait()
    db.dispose()
    assert waited >= 0.5, f"wrote after {waited:.2f} s while another process held the turn"


def test_nested_turns_in_one_thread_do_not_deadlock_and_threads_queue(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'turn.db'}")
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    order: list[str] = []
    with db.turn():
        with db.session() as session:  # the same thread's turn: nested, not a wait
            session.execute(text("INSERT INTO t VALUES (1)"))
        waiter = threading.Thread(target=_write, args=(db, order))
        waiter.start()
        time.sleep(0.3)
        order.append("first done")
    waiter.join(10)
    with db.read_session() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 2
    db.dispose()
    assert order == ["first done", "second"]


def _write(db: Database, order: list[str]) -> None:
    with db.session() as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
    order.append("second")
