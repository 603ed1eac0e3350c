"""``Retry-After`` on 429 and 503 honoured as a host delay, with bounded retries (H-06).

Scrapy's RetryMiddleware retries 429/503 at once, up to `RETRY_TIMES`. Sitting above it
(its `process_response` runs first), this raises the host's minimum delay to the
server's ``Retry-After`` (seconds or an HTTP date) so the retry and everything else for
that host wait; a value above `TAKEDOWN_RETRY_AFTER_MAX` is not waited for: the
request is not retried and the host delay is capped there.

Settings read: `TAKEDOWN_RETRY_AFTER_MAX`.
Stats: `politeness/retry-after`, `politeness/retry-after/too-long`.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.engine.middlewares import host_delay
from crawler.net.urls import InvalidURL, url_host


def retry_after_seconds(value: str, now: float | None = None) -> float | None:
    """Seconds to wait for a ``Retry-After`` value, or None when unreadable."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


RETRIES_COVERED = 2  # the host delay lasts long enough for the retries to space out


class RetryAfterMiddleware:
    def __init__(self, crawler: Crawler, max_wait: float) -> None:
        self.crawler = crawler
        self.max_wait = max_wait

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler, crawler.settings.getfloat("TAKEDOWN_RETRY_AFTER_MAX", 120.0))

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        if response.status not in (429, 503) or b"Retry-After" not in response.headers:
            return response
        raw = response.headers.get(b"Retry-After") or b""
        wait = retry_after_seconds(raw.decode("latin-1"))
        if wait is None:
            return response
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value("politeness/retry-after")
        if wait > self.max_wait:
            self.crawler.stats.inc_value("politeness/retry-after/too-long")
            request.meta["dont_retry"] = True
            wait = self.max_wait
        try:
            host = url_host(request.url)
        except InvalidURL:
            return response
        self.crawler.signals.send_catch_log(
            signal=host_delay,
            host=host,
            delay=wait,
            reason="retry-after",
            duration=wait * (RETRIES_COVERED + 1),
        )
        return response
