"""A fake RDAP server on 127.0.0.1 for tests (see docs/hazards.md).

    with FakeRdap() as rdap:
        rdap.routes["203.0.113.7"] = json_answer(ip_network(entities=[abuse("a@hoster.net")]))
        RdapClient(rdap.base_url).abuse_contact("203.0.113.7")

`routes` maps the IP in `/ip/{ip}` to a handler; `default` answers the rest; `requests`
lists the paths asked. Handlers are plain functions of the request handler, so a test
can stream, stall or misbehave as it likes. Nothing here leaves the loopback interface.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[BaseHTTPRequestHandler], None]


def send(
    req: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    req.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
        req.send_header(name, value)
    req.end_headers()
    req.wfile.write(body)


def json_answer(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    body = json.dumps(doc).encode()
    return lambda req: send(
        req, status, body, {"Content-Type": "application/rdap+json", **(headers or {})}
    )


def raw_answer(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    return lambda req: send(req, status, body, headers)


def stream_answer(total_bytes: int, declare_length: bool = False) -> Handler:
    """A body of `total_bytes` written in 64 KiB chunks until the client hangs up."""

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        if declare_length:
            req.send_header("Content-Length", str(total_bytes))
        req.send_header("Connection", "close")
        req.end_headers()
        chunk = b'{"a":"' + b"x" * 65526 + b'",'
        try:
            for _ in range(total_bytes // len(chunk)):
                req.wfile.write(chunk)
        except OSError:
            return  # the client stopped reading, as it should

    return handler


def stall_answer(release: threading.Event, trickle: bool = False) -> Handler:
    """Headers, then nothing (or one byte every 0.1 s) until `release` is set."""

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", "1000000")
        req.end_headers()
        req.wfile.flush()
        try:
            while not release.wait(0.1):
                if trickle:
                    req.wfile.write(b" ")
                    req.wfile.flush()
        except OSError:
            return

    return handler


def entity(
    roles: list[str],
    email: str | None = None,
    fn: str | None = None,
    entities: list[dict[str, Any]] | None = None,
    handle: str = "H-1",
) -> dict[str, Any]:
    """An RFC 9083 entity with a jCard holding `fn` and `email` when given."""
    props: list[list[Any]] = [["version", {}, "text", "4.0"]]
    if fn is not None:
        props.append(["fn", {}, "text", fn])
    if email is not None:
        props.append(["email", {"type": "work"}, "text", email])
    doc: dict[str, Any] = {"objectClassName": "entity", "handle": handle, "roles": roles}
    doc["vcardArray"] = ["vcard", props]
    if entities:
        doc["entities"] = entities
    return doc


def ip_network(
    start: str = "203.0.113.0",
    end: str = "203.0.113.255",
    entities: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An RFC 9083 "ip network" object covering start..end."""
    doc: dict[str, Any] = {
        "objectClassName": "ip network",
        "rdapConformance": ["rdap_level_0"],
        "handle": "NET-203-0-113-0-1",
        "startAddress": start,
        "endAddress": end,
        "ipVersion": "v6" if ":" in start else "v4",
        "name": "EXAMPLE-HOSTING-NET",
        "entities": entities or [],
    }
    return {**doc, **extra}


class FakeRdap:
    """Threaded RDAP fake on an ephemeral loopback port; use as a context manager."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.default: Handler = json_answer({"errorCode": 404}, status=404)
        self.requests: list[str] = []
        self.release = threading.Event()  # ends stalled handlers at shutdown
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                fake.requests.append(self.path)
                ip = self.path.rsplit("/", 1)[-1]
                fake.routes.get(ip, fake.default)(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/rdap"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeRdap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        time.sleep(0)  # let handler threads see the release
