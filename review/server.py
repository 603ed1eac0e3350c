"""Serving the review app: gunicorn, several worker processes with threads each.

One Python process runs one request at a time (the GIL), and a queue page costs a few
milliseconds of Python; 20 analysts clicking at once need several processes
(docs/benchmarks.md, "Review app"). Everything the workers share lives in the database:
sessions, login throttling (`review.throttle`), preview rate limits (`review.ratelimit`);
on SQLite the workers' write transactions take turns on a lock file beside the database
(`crawler.db.session.WriterTurn`) and WAL checkpoints run in the background
(`review.checkpoint`).

Each worker builds its own app (and database engine) after the fork: an engine's
connections must never cross a fork. Gunicorn's own log lines go through the root
logger, so they share the format of every other `takedown` log line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

MAX_DEFAULT_WORKERS = 8  # each worker may run 4 argon2id hashes at 64 MiB (crawler/passwords)
# Threads per worker. Fewer threads in more processes: every statement gives up the GIL,
# and with 8 threads a process's runnable threads queued for it behind each other (two
# workers x 8 threads served 340 requests/s on PostgreSQL where four x 4 served 380 and
# SQLite 500 against 660; docs/benchmarks.md, "Review app"). Two workers per CPU at 4
# threads keep the 16 threads of two at 8 on 2 CPUs, for previews waiting on slow hosts.
DEFAULT_THREADS = 4


def default_workers() -> int:
    """Two workers per CPU, at most `MAX_DEFAULT_WORKERS`."""
    return max(1, min(2 * (os.cpu_count() or 1), MAX_DEFAULT_WORKERS))


class _RootLogger(Logger):
    """Gunicorn's messages through the root logger's handlers (`crawler.logs` format)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            log.handlers.clear()
            log.propagate = True


class _Server(BaseApplication):
    def __init__(self, factory: Callable[[], Any], options: dict[str, Any]) -> None:
        self._factory, self._options = factory, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._factory()


def options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "bind": [bind],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        # Idle keep-alive connections wait in the worker's poller, not in a thread.
        "keepalive": 75,
        "timeout": 60,  # a worker silent this long is restarted (previews time out at 10 s)
        "graceful_timeout": 30,
        # Like waitress before: no proxy header is trusted, so `request.is_secure` and the
        # client address come from the socket; cookie flags follow the Host (docs/review.md).
        "forwarded_allow_ips": "",
        "proxy_allow_ips": "",
        "limit_request_line": 8190,  # /go?url= carries crawled URLs up to 4 KiB
        "proc_name": "takedown-review",
        "logger_class": _RootLogger,
        "loglevel": "warning",
        "accesslog": None,
        "control_socket_disable": True,
        "preload_app": False,
    }


def serve(factory: Callable[[], Any], host: str, port: int, workers: int, threads: int) -> None:
    """Run until interrupted: `workers` processes, each calling `factory` for its app."""
    logging.getLogger("gunicorn.error").setLevel(logging.WARNING)
    _Server(factory, options(host, port, workers, threads)).run()
