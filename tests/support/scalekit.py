"""A generated tree site for scale-out tests and `bench/scale.py`, and a throwaway Redis.

The site: every page links to `branching` children and embeds one synthetic PNG of its
own; the server counts requests per path and the most requests it ever served to one
host at the same time (to check the global per-host limit).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from PIL import Image

from tests.support.sitekit import Web, crawl_argv, policy_text

HOST = "site-a.test"


class TreeSite:
    """site-a.test as a tree of pages `/n/<path>`, each with one image `/img/<path>.png`."""

    def __init__(self, branching: int = 4, depth: int = 3, latency_s: float = 0.01) -> None:
        self.branching = branching
        self.depth = depth
        self.latency_s = latency_s
        self.web = Web([HOST])
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        site = self.web[HOST]
        site.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
        site.fallback = self.route

    def start(self) -> TreeSite:
        self.web.start()
        return self

    def stop(self) -> None:
        self.web.stop()

    def route(self, path: str) -> Any:
        if path == "/" or path.startswith("/n/"):
            return self._served(self._page(path), "text/html")
        if path.startswith("/img/") and path.endswith(".png"):
            return self._served(png(path), "image/png")
        return None

    def _page(self, path: str) -> bytes:
        node = "" if path == "/" else path.removeprefix("/n/")
        links = "".join(
            f'<a href="/n/{node + "-" if node else ""}{i}">{i}</a>' for i in range(self.branching)
        )
        image = f'<img src="/img/{node or "root"}.png">'
        return f"<html><body>{links}{image}</body></html>".encode()

    def _served(self, body: bytes, content_type: str) -> Any:
        def handler(h: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
            try:
                time.sleep(self.latency_s)
                h.send_response(200)
                h.send_header("Content-Type", content_type)
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
            finally:
                with self.lock:
                    self.inflight -= 1

        return handler

    # --- what a complete crawl fetches ----------------------------------------------

    def nodes(self) -> list[str]:
        out, level = [""], [""]
        for _ in range(self.depth):
            level = [f"{p}-{i}" if p else str(i) for p in level for i in range(self.branching)]
            out += level
        return out

    def page_urls(self) -> set[str]:
        return {self.web.url(HOST, f"/n/{n}" if n else "/") for n in self.nodes()}

    def image_paths(self) -> set[str]:
        return {f"/img/{n or 'root'}.png" for n in self.nodes()}

    def paths(self) -> set[str]:
        """Every path a complete crawl fetches once (robots.txt aside)."""
        pages = {f"/n/{n}" if n else "/" for n in self.nodes()}
        return pages | self.image_paths()

    def fetched(self) -> Counter[str]:
        return Counter(h.path for h in self.web.hits if h.path != "/robots.txt")

    def policy(self, per_host: int = 8) -> str:
        return policy_text(
            self.web,
            politeness={"per_host_concurrency": per_host},
            scope={"max_depth": self.depth},
        )


def png(path: str) -> bytes:
    """A small synthetic image whose pixels depend on *path*."""
    seed = hashlib.sha256(path.encode()).digest()
    image = Image.new("RGB", (48, 48), tuple(seed[:3]))
    for x in range(0, 48, 6):
        for y in range(0, 48, 6):
            image.putpixel((x, y), tuple(seed[(x + y) % 29 : (x + y) % 29 + 3]))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def crawl_command(site: TreeSite, policy: Path, *args: str, **settings: Any) -> list[str]:
    hosts = json.dumps(site.web.host_map() | {"canary.test": "127.0.0.1"})
    base = {"TAKEDOWN_TEST_HOSTS": hosts, "TAKEDOWN_RDAP_ENRICH": "false", "DNS_TIMEOUT": "3"}
    return crawl_argv(policy, *args, **(base | {k: str(v) for k, v in settings.items()}))


# --- a private Redis ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """`redis-server` on a free loopback port, no persistence; stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        # Another test process (pytest-xdist) may take the free port first: redis-server
        # then exits at once, and it starts again on another free port.
        for _ in range(3):
            if self._start_once():
                return self
            self.port = free_port()
        raise RuntimeError("redis-server did not start")

    def _start_once(self) -> bool:
        binary = shutil.which("redis-server") or "redis-server"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.folder)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self.proc.poll() is None
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(folder).start()
    try:
        yield server
    finally:
        server.stop()
