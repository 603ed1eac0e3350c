"""Scrapy downloader and spider middlewares: one component per module.

Shared vocabulary: every request carries `meta["td_kind"]` (``page``, ``media`` or
``robots``; missing means ``page``), a refusal raises `PolicyBlocked` (an
`IgnoreRequest` with a reason key) after sending the `request_skipped` signal so the
frontier can record it, and host delays travel through the `host_delay` signal.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.exceptions import IgnoreRequest

#: Sent with ``request`` and ``reason`` when policy refuses a request (frontier: skipped).
request_skipped = object()
#: Sent with ``host``, ``delay`` and ``reason`` to raise a host's minimum delay.
host_delay = object()

KINDS = ("page", "media", "robots")
#: Meta key: ``(url, depth)`` of a page request the frontier already found in scope.
SCOPE_CHECKED = "td_scope_checked"


class PolicyBlocked(IgnoreRequest):
    """A request refused by policy; `reason` is the stat key suffix."""

    def __init__(self, reason: str, url: str = "") -> None:
        super().__init__(f"blocked by policy ({reason}): {url[:200]}")
        self.reason = reason


def request_kind(request: Request) -> str:
    kind = request.meta.get("td_kind", "page")
    return kind if kind in KINDS else "page"
