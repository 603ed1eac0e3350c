"""`crawler.engine.writer_process`: group commit in a child process."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from crawler.engine.writer_process import (
    ProcessGroupCommit,
    RemoteWriterError,
    WriterDied,
    discard_warm,
    warm,
)

ECHO = "tests.support.writer_fixture:echo"


class Outcomes:
    def __init__(self, count: int) -> None:
        self.values: dict[int, object] = {}
        self.done = threading.Event()
        self.count = count
        self.lock = threading.Lock()

    def callback(self, key: int) -> Any:
        def done(result: object) -> None:
            with self.lock:
                self.values[key] = result
                if len(self.values) >= self.count:
                    self.done.set()

        return done

    def wait(self) -> dict[int, object]:
        assert self.done.wait(60), f"only {len(self.values)} of {self.count} came back"
        return self.values


def test_results_in_order_batched_and_the_close_value() -> None:
    writer = ProcessGroupCommit(ECHO, {}, "test-writer", max_batch=50)
    outcomes = Outcomes(500)
    for n in range(500):
        writer.submit(n, outcomes.callback(n))
    values = outcomes.wait()
    closed = writer.close()
    assert values == {n: n * 2 for n in range(500)}
    assert closed["pid"] != os.getpid() and closed["pid"] == writer.process.pid
    assert sum(closed["batches"]) == 500
    assert max(closed["batches"]) <= 50
    assert len(closed["batches"]) < 500  # queued jobs were grouped
    assert writer.process.exitcode == 0


def test_exceptions_come_back_per_job_and_the_writer_goes_on() -> None:
    writer = ProcessGroupCommit(ECHO, {}, "test-writer")
    outcomes = Outcomes(4)
    for key, job in enumerate([1, "boom", "weird", 2]):
        writer.submit(job, outcomes.callback(key))
    values = outcomes.wait()
    writer.close()
    assert values[0] == 2 and values[3] == 4
    assert isinstance(values[1], ValueError) and str(values[1]) == "boom"
    assert isinstance(values[2], RemoteWriterError)
    assert values[2].type_name == "Unpicklable" and "weird" in str(values[2])


def test_child_log_lines_reach_the_parent_log(caplog: pytest.LogCaptureFixture) -> None:
    writer = ProcessGroupCommit(ECHO, {}, "test-writer")
    outcomes = Outcomes(1)
    with caplog.at_level(logging.INFO):
        writer.submit("log", outcomes.callback(0))
        child_pid = outcomes.wait()[0]
        writer.close()
    lines = [r for r in caplog.records if r.name == "tests.writer"]
    assert [r.getMessage() for r in lines] == [f"a line from pid {child_pid}"]
    assert lines[0].levelno == logging.WARNING and child_pid != os.getpid()


def test_a_dead_writer_fails_what_is_in_flight_and_everything_after() -> None:
    writer = ProcessGroupCommit(ECHO, {}, "test-writer")
    first = Outcomes(1)
    writer.submit(1, first.callback(0))
    assert first.wait()[0] == 2
    outcomes = Outcomes(2)
    writer.submit("die", outcomes.callback(0))
    writer.submit(2, outcomes.callback(1))
    values = outcomes.wait()
    assert all(isinstance(v, WriterDied) for v in values.values())
    writer.process.join(10)
    assert writer.process.exitcode == 3
    later = Outcomes(1)
    writer.submit(5, later.callback(0))
    assert isinstance(later.wait()[0], WriterDied)  # at once, not after a timeout
    assert not writer.alive
    writer.close()


def test_a_writer_that_cannot_start_is_reported() -> None:
    writer = ProcessGroupCommit("tests.support.writer_fixture:broken", {}, "test-writer")
    outcomes = Outcomes(1)
    writer.submit(1, outcomes.callback(0))
    failure = outcomes.wait()[0]
    assert isinstance(failure, WriterDied) and "cannot build this writer" in str(failure)
    writer.close()


def test_warm_writers_are_used_first_and_unused_ones_exit() -> None:
    warm(2, ("tests.support.writer_fixture",))
    writer = ProcessGroupCommit(ECHO, {}, "test-writer")
    outcomes = Outcomes(1)
    writer.submit(21, outcomes.callback(0))
    assert outcomes.wait()[0] == 42
    from crawler.engine import writer_process

    spare = [process for process, _ in writer_process._warm]
    assert len(spare) == 1 and spare[0].pid != writer.process.pid
    discard_warm()
    spare[0].join(10)
    assert spare[0].exitcode == 0
    writer.close()


PARENT = textwrap.dedent(
    """
    import sys, time, threading
    sys.path.insert(0, sys.argv[2])
    from crawler.engine.writer_process import ProcessGroupCommit
    writer = ProcessGroupCommit("tests.support.writer_fixture:rows", sys.argv[1], "rows")
    for n in range(300):
        writer.submit(n, lambda result: None)
    print(writer.process.pid, flush=True)
    time.sleep(60)
    """
)


def test_kill_9_of_the_parent_leaves_whole_batches_and_no_orphan(tmp_path: Path) -> None:
    """The parent dies with jobs sent: the child applies what it received, then exits."""
    path = tmp_path / "rows.db"
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(path), str(root)], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    time.sleep(0.3)  # some batches applied, more received
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.1)
    assert not _alive(child_pid), "the writer outlived its parent"
    with sqlite3.connect(path) as conn:
        got = [n for (n,) in conn.execute("SELECT n FROM t ORDER BY rowid")]
    assert got == list(range(len(got)))  # in order, none twice, no gap
    assert len(got) == 300  # everything sent before the kill was applied


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
