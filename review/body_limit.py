"""The request body limit, however the body is framed.

Werkzeug refuses a `Content-Length` above `MAX_CONTENT_LENGTH` with 413, but a chunked
body (`Transfer-Encoding: chunked`, no length) is only cut: its form is parsed from the
first `MAX_CONTENT_LENGTH` bytes and the request goes on, so a 1 MiB field or 200,000
fields reached `/login`. `BodyLimit` wraps the WSGI app: a body of unknown length is read
here, at most `limit + 1` bytes; within the limit it is handed on with its length, as if
it had been sent with `Content-Length`; above it the app sees an empty body and
`refuse_oversized` (the first request hook that may render a page) answers 413 before
any view runs, so nothing is decided or stored. The same on the development server,
waitress (which dechunks and sets the length itself) and gunicorn (which does not).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from flask import abort, request

TOO_LARGE = "takedown.body_too_large"
_CHUNK = 64 * 1024


def _declared_length(environ: dict[str, Any]) -> int | None:
    value = str(environ.get("CONTENT_LENGTH") or "").strip()
    return int(value) if value.isdigit() else None


def _unknown_length(environ: dict[str, Any]) -> bool:
    """A body whose end only the server knows: chunked, or a terminated stream with no
    length (never a raw socket without one: reading it would wait for the next request)."""
    if "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
        return True
    return _declared_length(environ) is None and bool(environ.get("wsgi.input_terminated"))


class BodyLimit:
    """WSGI middleware: no request body above `limit` bytes reaches the app."""

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: int) -> None:
        self.app, self.limit = app, limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if _unknown_length(environ):
            body = self._read(environ["wsgi.input"])
            if len(body) > self.limit:
                environ[TOO_LARGE] = True
                body = b""
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

    def _read(self, stream: Any) -> bytes:
        out = bytearray()
        while len(out) <= self.limit:
            data = stream.read(min(_CHUNK, self.limit + 1 - len(out)))
            if not data:
                break
            out += data
        return bytes(out)


def refuse_oversized() -> None:
    """413 for a body `BodyLimit` found too large (a Flask `before_request` hook)."""
    if request.environ.get(TOO_LARGE):
        abort(413, "the request body is too large")
