"""A cap on response header count and bytes (docs/hazards.md H-03).

Twisted's HTTP/1.1 client parser (used by Scrapy's HTTP11 handler) caps one line at
16 KiB but keeps any number of header lines: 20,000 headers of 1 KB each were accepted
into memory. Scrapy has no limit either, and its `headers_received` signal comes only
after the whole block is parsed. So the client parser's `headerReceived` is wrapped,
once per process, to count headers and bytes as they arrive; past either cap it raises,
Twisted gives the response up (`ResponseFailed`) and the request fails with its own
error while the crawl goes on. A NUL or a bare CR inside a header (H-04) fails the same
way; lines without a colon are skipped by Scrapy's lenient parser, as browsers do.

Settings read (by the add-on, which installs it): `TAKEDOWN_MAX_RESPONSE_HEADERS`,
`TAKEDOWN_MAX_HEADER_BYTES`. Emits no stats: the failure is the page's or media's error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.web._newclient import HTTPClientParser

DEFAULT_MAX_HEADERS = 256
DEFAULT_MAX_HEADER_BYTES = 256 * 1024

_limits = {"count": DEFAULT_MAX_HEADERS, "bytes": DEFAULT_MAX_HEADER_BYTES}


class HeaderFloodError(ValueError):
    """A response sent more header lines or bytes than the cap, or a NUL/CR in one (H-04)."""


def install(max_count: int, max_bytes: int) -> None:
    """Wrap Twisted's client `headerReceived` (idempotent; the latest limits win)."""
    _limits.update(count=max_count, bytes=max_bytes)
    original = HTTPClientParser.headerReceived
    if getattr(original, "_takedown_capped", False):
        return
    HTTPClientParser.headerReceived = _capped(original)  # type: ignore[method-assign]


def _capped(original: Callable[[Any, bytes, bytes], None]) -> Callable[..., None]:
    def header_received(parser: Any, name: bytes, value: bytes) -> None:
        count = getattr(parser, "_td_header_count", 0) + 1
        size = getattr(parser, "_td_header_bytes", 0) + len(name) + len(value) + 4
        parser._td_header_count, parser._td_header_bytes = count, size
        if count > _limits["count"] or size > _limits["bytes"]:
            raise HeaderFloodError(
                f"response headers over the cap ({count} headers, {size} bytes; "
                f"limits {_limits['count']} and {_limits['bytes']})"
            )
        if b"\0" in name or b"\0" in value or b"\r" in value:
            raise HeaderFloodError("malformed response header: NUL or CR inside a header")
        original(parser, name, value)

    header_received._takedown_capped = True  # type: ignore[attr-defined]
    return header_received
