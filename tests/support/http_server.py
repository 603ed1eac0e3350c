"""A quiet HTTP server on a loopback address, for fake services and media in tests and benches.

`QuietHandler.reply` answers with one body and logs nothing; `start` serves a handler on a
free port in a daemon thread; `serve_routes` serves fixed bodies by path."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = tuple[int, str, bytes]  # status, Content-Type, body
NOT_FOUND: Route = (404, "text/plain", b"gone")


class QuietHandler(BaseHTTPRequestHandler):
    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def start(handler: type[BaseHTTPRequestHandler], host: str) -> tuple[ThreadingHTTPServer, str]:
    """Serve `handler` on a free port of `host` (a loopback address); returns the base URL."""
    server = ThreadingHTTPServer((host, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def serve_routes(
    routes: dict[str, Route], host: str, hits: list[str] | None = None
) -> tuple[ThreadingHTTPServer, str]:
    """GET answers `routes[path]` (read at request time), else 404; each path asked goes to
    `hits` when given."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if hits is not None:
                hits.append(self.path)
            self.reply(*routes.get(self.path, NOT_FOUND))

    return start(Handler, host)
