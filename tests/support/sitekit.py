"""A local multi-host test web: small threaded HTTP servers on 127.0.0.x, and a canary.

Each fake host name (``site-a.test``...) maps to its own loopback address through the
crawler's `TAKEDOWN_TEST_HOSTS`; all hosts share one port. The canary listens on
127.0.0.1 (and ::1 when available) on the same port, outside `allowed_networks`: any
connection to it is a policy escape and is counted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crawler.policy import CrawlPolicy

Handler = Callable[[BaseHTTPRequestHandler], None]
Route = tuple[int, dict[str, str], bytes] | Handler

ADDRESSES = {
    "site-a.test": "127.0.0.2",
    "site-b.test": "127.0.0.3",
    "cdn-c.test": "127.0.0.4",
    "robots-503.test": "127.0.0.5",
    "robots-timeout.test": "127.0.0.6",
    "robots-404.test": "127.0.0.7",
    "robots-huge.test": "127.0.0.8",
    "robots-utf16.test": "127.0.0.9",
    "robots-delay.test": "127.0.0.10",
    "robots-longdelay.test": "127.0.0.11",
    "robots-multi.test": "127.0.0.12",
}


@dataclass
class Hit:
    host: str
    path: str
    headers: dict[str, str]
    at: float


@dataclass
class Host:
    name: str
    ip: str
    routes: dict[str, Route] = field(default_factory=dict)
    fallback: Callable[[str], Route | None] | None = None

    def add(
        self,
        path: str,
        body: bytes | str = b"",
        status: int = 200,
        content_type: str = "text/html; charset=utf-8",
        **headers: str,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, {"Content-Type": content_type, **headers}, data)

    def page(self, path: str, html: str, **headers: str) -> None:
        self.add(
            path, f"<html><head><title>{path}</title></head><body>{html}</body></html>", **headers
        )


class Web:
    """The hosts, their hits, and the canary's connection count."""

    def __init__(self, names: list[str] | None = None) -> None:
        names = names or list(ADDRESSES)
        self.hosts: dict[str, Host] = {n: Host(n, ADDRESSES[n]) for n in names}
        self.hits: list[Hit] = []
        self.canary_hits = 0
        self.lock = threading.Lock()
        self.servers: list[Any] = []
        self.port = free_port()

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def host_map(self) -> dict[str, str]:
        return {name: host.ip for name, host in self.hosts.items()}

    def paths(self, host: str) -> list[str]:
        return [h.path for h in self.hits if h.host == host]

    def start(self) -> Web:
        # The port is free when chosen, but another test process (pytest-xdist) may take it
        # before every address is bound: then start again on another free port.
        for attempt in range(5):
            try:
                return self._start_once()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 4:
                    raise
                self.stop()
                self.servers, self.port = [], free_port()
        raise AssertionError("unreachable")

    def _start_once(self) -> Web:
        for host in self.hosts.values():
            server = ThreadingHTTPServer((host.ip, self.port), make_handler(self, host))
            server.daemon_threads = True
            self.servers.append(server)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self._start_canary(socket.AF_INET, "127.0.0.1")
        if socket.has_ipv6:
            with contextlib.suppress(OSError):
                self._start_canary(socket.AF_INET6, "::1")
        return self

    def _start_canary(self, family: int, address: str) -> None:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(64)
        self.servers.append(sock)

        def accept() -> None:
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                with self.lock:
                    self.canary_hits += 1
                conn.close()

        threading.Thread(target=accept, daemon=True).start()

    def stop(self) -> None:
        for server in self.servers:
            if isinstance(server, socket.socket):
                server.close()
            else:
                server.shutdown()
                server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        return int(sock.getsockname()[1])


def make_handler(web: Web, host: Host) -> type[BaseHTTPRequestHandler]:
    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            with web.lock:
                web.hits.append(Hit(host.name, self.path, dict(self.headers), time.monotonic()))
            route = host.routes.get(self.path) or (
                host.fallback(self.path) if host.fallback else None
            )
            if route is None:
                route = (404, {"Content-Type": "text/plain"}, b"not found")
            if callable(route):
                route(self)
                return
            status, headers, body = route
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return RequestHandler


def policy_text(web: Web, **sections: dict[str, Any]) -> str:
    """A test policy: fast politeness, only the fixture hosts' addresses allowed."""
    base: dict[str, dict[str, Any]] = {
        "scope": {"follow": "registered-domain"},
        "politeness": {
            "autothrottle": False,
            "delay_s": 0.0,
            "timeout_s": 5,
            "obey_robots": True,
            "per_host_concurrency": 8,
        },
        "network": {"allowed_networks": [f"{h.ip}/32" for h in web.hosts.values()]},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without proxy variables (a crawl refuses them), and `extra`."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")} | extra


def crawl_argv(policy_file: Path, *args: str, **settings: Any) -> list[str]:
    """`python -m crawler crawl ARGS --policy FILE`, each setting as `-s KEY=VALUE`."""
    command = [sys.executable, "-m", "crawler", "crawl", *args, "--policy", str(policy_file)]
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    return command


def start_crawl(
    env: dict[str, str], web: Web, policy_file: Path, *args: str, **settings: Any
) -> subprocess.Popen[str]:
    """`takedown crawl` on `web`, started and left running (to be killed or interrupted);
    its output is discarded."""
    command = crawl_argv(
        policy_file,
        *args,
        TAKEDOWN_TEST_HOSTS=json.dumps(web.host_map()),
        TAKEDOWN_RDAP_ENRICH="false",
        **settings,
    )
    return subprocess.Popen(
        command, env=clean_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )


def migrated_sqlite(folder: Path) -> str:
    """The URL of a new, migrated SQLite database in `folder` (for module-scoped crawls)."""
    from crawler.db.migrate import upgrade
    from crawler.db.session import Database

    url = f"sqlite:///{folder / 'takedown.db'}"
    db = Database(url)
    upgrade(db)
    db.dispose()
    return url


def migrated_env(folder: Path) -> tuple[str, dict[str, str]]:
    """A new, migrated SQLite database in `folder` and the environment of a crawl that
    writes to it, its home in `folder` too (for module-scoped crawls): (database URL, env)."""
    url = migrated_sqlite(folder)
    return url, {"TAKEDOWN_DB": url, "TAKEDOWN_HOME": str(folder / "home")}


def query(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one SQL query, on a connection of its own."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(sql))]
    engine.dispose()
    return rows


def done_pages(db_url: str) -> list[str]:
    """The URLs of the pages the frontier has done."""
    return [
        r[0] for r in query(db_url, "SELECT url FROM frontier WHERE kind='page' AND state='done'")
    ]


def run_crawl(
    env: dict[str, str],
    tmp: Path,
    web: Web,
    *args: str,
    policy: str | None = None,
    timeout: float = 60,
    extra_settings: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`takedown crawl` in a subprocess (Twisted's reactor cannot restart in one process)."""
    policy_file = tmp / f"policy-{time.monotonic_ns()}.toml"
    policy_file.write_text(policy or policy_text(web))
    settings = {
        "TAKEDOWN_TEST_HOSTS": json.dumps(web.host_map() | {"canary.test": "127.0.0.1"}),
        "TAKEDOWN_RDAP_ENRICH": "false",
        "TAKEDOWN_ROBOTS_RETRY_DELAYS": "[]",
        "DNS_TIMEOUT": "3",
    } | {k: str(v) for k, v in (extra_settings or {}).items()}
    command = crawl_argv(policy_file, *args, **settings)
    full_env = clean_env(env | (extra_env or {}))
    result = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=timeout)
    (tmp / "crawl.log").write_text(result.stderr)
    return result


def one_site_web() -> Web:
    """A web of one host, site-a.test, whose robots.txt allows everything."""
    web = Web(["site-a.test"])
    web["site-a.test"].add("/robots.txt", "User-agent: *\n", content_type="text/plain")
    return web


def one_page_web(html: str) -> tuple[Web, Host]:
    """`one_site_web`, its home page serving `html`: the web and its one host."""
    web = one_site_web()
    site = web["site-a.test"]
    site.page("/", html)
    return web, site


def tree_web(branching: int, delay_s: float) -> Web:
    """One host whose pages each link `branching` children (/n/0, /n/0-1, ...), slowly."""
    web = one_site_web()
    site = web["site-a.test"]

    def page(path: str) -> tuple[int, dict[str, str], bytes] | None:
        if path != "/" and not path.startswith("/n/"):
            return None
        time.sleep(delay_s)
        base = "" if path == "/" else path.removeprefix("/n/") + "-"
        links = "".join(f'<a href="/n/{base}{i}">{i}</a>' for i in range(branching))
        return (200, {"Content-Type": "text/html"}, f"<html><body>{links}</body></html>".encode())

    site.fallback = page
    return web


def refusal_of(url: str, policy: CrawlPolicy) -> str | None:
    """The reason `crawler.engine.seeds.seed_refusals` gives `url` alone, or None."""
    from crawler.engine.seeds import seed_refusals

    return next((why for _url, _rule, why in seed_refusals([url], policy)), None)
