"""A small blocking HTTP GET with hard limits, for RDAP and its bootstrap files.

Standard library only, safe to call from a worker thread. Behaviour on hostile servers:

- one deadline for the whole exchange (connect, headers, body, redirects): a watchdog
  shuts the socket down when it passes, so a server trickling bytes cannot stall us;
- the body is read in chunks and abandoned as soon as it passes `max_bytes`;
- redirects are followed at most `max_redirects` times and only to http(s) URLs;
- no proxies, no cookies, no decompression (`Accept-Encoding: identity`).

Failures raise a `FetchError` subclass whose `kind` names the failure for callers.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

_REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 65536
MAX_RETRY_AFTER_S = 86400.0


class FetchError(Exception):
    """The server could not be reached or gave no usable answer."""

    kind = "unreachable"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FetchTimeout(FetchError):
    kind = "timeout"


class ResponseTooLarge(FetchError):
    kind = "too_large"


class RefusedUrl(FetchError):
    kind = "refused_url"


class HttpStatusError(FetchError):
    """A final status other than 200; `retry_after` is in seconds when the server said."""

    kind = "http"

    def __init__(self, message: str, *, status: int, retry_after: float | None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        if status == 429:
            self.kind = "rate_limited"
        elif status >= 500:
            self.kind = "server_error"


@dataclass(frozen=True)
class _Redirect:
    location: str


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta or HTTP date), capped at a day."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(when - now, 0.0), MAX_RETRY_AFTER_S)


def fetch(
    url: str, *, timeout_s: float, max_bytes: int, max_redirects: int = 3, accept: str = "*/*"
) -> bytes:
    """GET `url` and return the body of a 200 answer, within the limits above."""
    deadline = time.monotonic() + timeout_s
    for _ in range(max_redirects + 1):
        answer = _fetch_once(url, deadline, max_bytes, accept, timeout_s)
        if isinstance(answer, bytes):
            return answer
        url = urljoin(url, answer.location)
    raise FetchError(f"more than {max_redirects} redirects")


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedUrl(f"refused to fetch a non-http(s) URL: {url[:200]!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise RefusedUrl(f"bad port in URL: {url[:200]!r}") from exc
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        context = ssl.create_default_context()
        return http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=context
        ), path
    return http.client.HTTPConnection(parts.hostname, port, timeout=timeout), path


def _abort(conn: http.client.HTTPConnection) -> None:
    # shutdown() wakes a thread blocked in recv(); close() alone would not.
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing to wake
            sock.shutdown(socket.SHUT_RDWR)


def _fetch_once(
    url: str, deadline: float, max_bytes: int, accept: str, timeout_s: float
) -> bytes | _Redirect:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchTimeout(f"no complete answer within {timeout_s:g} s")
    conn, path = _connection(url, remaining)
    watchdog = threading.Timer(remaining, _abort, (conn,))
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("GET", path, headers={"Accept": accept, "Accept-Encoding": "identity"})
        return _answer(conn.getresponse(), deadline, max_bytes)
    except (OSError, http.client.HTTPException) as exc:
        if time.monotonic() >= deadline - 0.01 or isinstance(exc, TimeoutError):
            raise FetchTimeout(f"no complete answer within {timeout_s:g} s") from exc
        raise FetchError(f"unreachable: {exc.__class__.__name__}: {exc}") from exc
    finally:
        watchdog.cancel()
        conn.close()


def _answer(resp: http.client.HTTPResponse, deadline: float, max_bytes: int) -> bytes | _Redirect:
    if resp.status in _REDIRECTS:
        location = resp.getheader("Location")
        if not location:
            raise FetchError(f"redirect {resp.status} without a Location", status=resp.status)
        return _Redirect(location)
    if resp.status != 200:
        retry_after = parse_retry_after(resp.getheader("Retry-After"), time.time())
        raise HttpStatusError(f"HTTP {resp.status}", status=resp.status, retry_after=retry_after)
    return _read_capped(resp, deadline, max_bytes)


def _read_capped(resp: http.client.HTTPResponse, deadline: float, max_bytes: int) -> bytes:
    declared = resp.getheader("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"response too large ({declared} bytes, cap {max_bytes})")
    chunks: list[bytes] = []
    total = 0
    while chunk := resp.read(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise ResponseTooLarge(f"response too large (over {max_bytes} bytes)")
        if time.monotonic() >= deadline:
            raise FetchTimeout("body not complete before the deadline")
        chunks.append(chunk)
    # The watchdog's shutdown looks like an early end of body: report it as the timeout.
    if time.monotonic() >= deadline - 0.01:
        raise FetchTimeout("body not complete before the deadline")
    if declared.isdigit() and total < int(declared):
        raise FetchError(f"body ended after {total} of {declared} bytes")
    return b"".join(chunks)
