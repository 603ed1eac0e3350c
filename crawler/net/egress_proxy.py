"""A local forward proxy that holds a browser to the address policy (docs/hazards.md C-09).

Chromium resolves names and connects by itself, past the process's filtering resolver.
Under `--render` it is started with ``--proxy-server`` pointing here (and loopback *not*
bypassed), so every browser request — page, script, XHR, fetch, iframe, WebSocket —
arrives as a plain HTTP request with an absolute URL or as a ``CONNECT host:port``.
Each target host is resolved with the same rules as the crawl (`FilteringResolver`:
address literals in any spelling, the ``.test`` map, then DNS with every answer filtered)
and the connection goes only to the permitted address that was judged. Everything else
gets ``403`` and is counted by reason.

Runs in daemon threads on 127.0.0.1 with an ephemeral port; `start()` returns the port.
No bytes are kept: requests and responses are relayed through small buffers.
"""

from __future__ import annotations

import select
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.error import DNSLookupError

from crawler.net.resolver import BlockedAddressError, FilteringResolver

RELAY_CHUNK = 65536
IDLE_TIMEOUT_S = 30.0
HOP_HEADERS = frozenset(
    {"proxy-connection", "proxy-authorization", "connection", "keep-alive", "te", "upgrade"}
)


class Refused(Exception):
    """A target the policy refuses; `reason` is the counted key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EgressProxy:
    """The proxy server plus its counters (`connected`, `refused` by reason)."""

    def __init__(self, resolver: FilteringResolver, timeout: float = IDLE_TIMEOUT_S) -> None:
        self.resolver = resolver
        self.timeout = timeout
        self.connected = 0
        self.refused: Counter[str] = Counter()
        self.addresses: dict[str, str] = {}  # host -> the address last connected to
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> int:
        """Listen on 127.0.0.1 with an ephemeral port and serve in a daemon thread."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self.server = server
        threading.Thread(target=server.serve_forever, name="egress-proxy", daemon=True).start()
        return int(server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def refuse(self, reason: str) -> None:
        with self.lock:
            self.refused[reason] += 1

    def open(self, host: str, port: int) -> socket.socket:
        """A connection to the permitted address of *host*; raises `Refused`."""
        if not host or not 0 < port < 65536:
            raise Refused("bad-target")
        try:
            address = self.resolver.resolve_blocking(host)
        except BlockedAddressError as exc:
            raise Refused(f"private-address/{exc.reason}") from exc
        except DNSLookupError as exc:
            raise Refused("dns") from exc
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect((address, port))
        except OSError as exc:
            sock.close()
            raise Refused("connect-failed") from exc
        with self.lock:
            self.connected += 1
            self.addresses[host.lower().rstrip(".")] = address
        return sock


def relay(a: socket.socket, b: socket.socket, timeout: float) -> None:
    """Copy bytes both ways until either side closes or nothing moves for *timeout*."""
    sockets = [a, b]
    while True:
        readable, _, _ = select.select(sockets, [], [], timeout)
        if not readable:
            return
        for sock in readable:
            try:
                data = sock.recv(RELAY_CHUNK)
            except OSError:
                return
            if not data:
                return
            (b if sock is a else a).sendall(data)


def split_target(authority: str, default_port: int) -> tuple[str, int]:
    """(host, port) of ``host:port`` or ``[v6]:port``; ValueError when malformed."""
    parts = urlsplit(f"//{authority}")
    return parts.hostname or "", parts.port or default_port


def _handler_for(proxy: EgressProxy) -> type[BaseHTTPRequestHandler]:
    class ProxyHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass  # no URLs from the browser in the logs by default

        def do_CONNECT(self) -> None:  # noqa: N802 - http.server's naming
            try:
                host, port = split_target(self.path, 443)
                upstream = proxy.open(host, port)
            except (Refused, ValueError) as exc:
                self._refuse(getattr(exc, "reason", "bad-target"))
                return
            self.send_response(200, "Connection Established")
            self.end_headers()
            with upstream:
                relay(self.connection, upstream, proxy.timeout)
            self.close_connection = True

        def _forward(self) -> None:
            parts = urlsplit(self.path)
            if parts.scheme != "http":
                self._refuse("scheme")  # https and ws(s) come through CONNECT
                return
            try:
                upstream = proxy.open(parts.hostname or "", parts.port or 80)
            except (Refused, ValueError) as exc:
                self._refuse(getattr(exc, "reason", "bad-target"))
                return
            with upstream:
                upstream.sendall(self._request_head(parts.path or "/", parts.query))
                self._copy_body(upstream)
                relay(self.connection, upstream, proxy.timeout)
            self.close_connection = True

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = _forward

        def _request_head(self, path: str, query: str) -> bytes:
            target = f"{path}?{query}" if query else path
            lines = [f"{self.command} {target} HTTP/1.1"]
            for name, value in self.headers.items():
                if name.lower() not in HOP_HEADERS:
                    lines.append(f"{name}: {value}")
            lines.append("Connection: close")  # one request per upstream connection
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

        def _copy_body(self, upstream: socket.socket) -> None:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                data = self.rfile.read(min(remaining, RELAY_CHUNK))
                if not data:
                    return
                upstream.sendall(data)
                remaining -= len(data)

        def _refuse(self, reason: str) -> None:
            proxy.refuse(reason)
            self.send_response(403, "Forbidden by crawl policy")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

    return ProxyHandler
