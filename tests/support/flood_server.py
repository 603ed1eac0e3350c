"""A review app at production argon2id cost, for the login-flood test's child process.

    python -m tests.support.flood_server DB_URL PORT_FILE

Serves on 127.0.0.1 with 32 waitress threads (more than enough to run every flood request
at once), writes its port to PORT_FILE and its peak RSS (VmHWM) on each GET /peak.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import waitress.server

from review.app import create_app

THREADS = 32


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def with_peak(app: Any) -> Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/peak":
            start("200 OK", [("Content-Type", "text/plain")])
            return [str(peak_rss_kib()).encode()]
        result: Iterable[bytes] = app(environ, start)
        return result

    return wsgi


def main(db_url: str, port_file: str) -> None:
    app = create_app(test_config={"db_url": db_url, "secret_key": "flood-secret-key-0123456789"})
    server = waitress.server.create_server(
        with_peak(app), host="127.0.0.1", port=0, threads=THREADS
    )
    Path(port_file).write_text(str(server.effective_port))  # type: ignore[union-attr]
    server.run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
