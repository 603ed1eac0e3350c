"""Writers for the writer-process tests, built in the child (`crawler.engine.writer_process`)."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence
from typing import Any


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.handle = lambda: None  # a lambda does not pickle


class Echo:
    """Doubles numbers; "boom" raises a picklable error, "weird" an unpicklable one,
    "die" ends the process, "log" logs a warning; records batch sizes."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.batches: list[int] = []

    def apply(self, jobs: Sequence[Any]) -> list[Any]:
        self.batches.append(len(jobs))
        out: list[Any] = []
        for job in jobs:
            if job == "boom":
                out.append(ValueError("boom"))
            elif job == "weird":
                out.append(Unpicklable("weird"))
            elif job == "die":
                os._exit(3)
            elif job == "log":
                logging.getLogger("tests.writer").warning("a line from pid %s", os.getpid())
                out.append(os.getpid())
            else:
                out.append(job * 2)
        return out

    def close(self) -> dict[str, Any]:
        return {"batches": self.batches, "pid": os.getpid()}


def echo(config: dict[str, Any]) -> Echo:
    return Echo(config)


class Rows:
    """Inserts each job into a SQLite file, one transaction per batch."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path)
        self.conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
        self.conn.commit()

    def apply(self, jobs: Sequence[int]) -> list[int]:
        import time

        time.sleep(0.05)  # slow enough for the parent to die with jobs queued
        self.conn.executemany("INSERT INTO t VALUES (?)", [(j,) for j in jobs])
        self.conn.commit()
        return list(jobs)

    def close(self) -> None:
        self.conn.close()


def rows(path: str) -> Rows:
    return Rows(path)


def broken(config: object) -> Echo:
    raise RuntimeError("cannot build this writer")
