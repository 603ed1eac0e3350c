"""Per-host politeness: one download slot per canonical host, and minimum host delays.

Every request gets `meta["download_slot"]` = its canonical host, so per-host concurrency
(`CONCURRENT_REQUESTS_PER_DOMAIN` = `politeness.per_host_concurrency`) and delays apply
to the host actually contacted, whatever the spelling (C-11). Minimum delays arrive
through the `host_delay` signal (robots.txt ``Crawl-delay`` for good, ``Retry-After`` for
a while) and are
re-applied after AutoThrottle adjusts a slot, which would otherwise lower them again.

Settings read: none beyond Scrapy's own slot settings.
Stats: `politeness/host-delay/<host>` (the minimum delay in force).
"""

from __future__ import annotations

import time
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.engine.middlewares import host_delay
from crawler.net.urls import InvalidURL, url_host


class PolitenessMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.floors: dict[str, tuple[float, float | None]] = {}  # host -> (delay, until)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PolitenessMiddleware:
        mw = cls(crawler)
        crawler.signals.connect(mw.raise_floor, signal=host_delay)
        crawler.signals.connect(mw.response_downloaded, signal=signals.response_downloaded)
        return mw

    def process_request(self, request: Request, spider: Any = None) -> None:
        if "download_slot" not in request.meta:
            try:
                request.meta["download_slot"] = url_host(request.url)
            except InvalidURL:
                return None
        self._apply(request.meta["download_slot"])
        return None

    def raise_floor(
        self, host: str, delay: float, reason: str = "", duration: float | None = None
    ) -> None:
        """Raise *host*'s minimum delay, for *duration* seconds or for good (None)."""
        until = None if duration is None else time.monotonic() + duration
        current = self._floor(host)
        if delay > current:
            self.floors[host] = (delay, until)
            assert self.crawler.stats is not None
            self.crawler.stats.set_value(f"politeness/host-delay/{host}", delay)
        self._apply(host)

    def _floor(self, host: str) -> float:
        delay, until = self.floors.get(host, (0.0, None))
        if until is not None and time.monotonic() > until:
            del self.floors[host]
            self._restore(host)
            return 0.0
        return delay

    def _restore(self, key: str) -> None:
        if self.crawler.engine is None:
            return
        downloader = self.crawler.engine.downloader
        downloader.per_slot_settings.pop(key, None)
        slot = downloader.slots.get(key)
        if slot is not None:
            slot.delay = self.crawler.settings.getfloat("DOWNLOAD_DELAY")

    def response_downloaded(self, response: Response, request: Request, spider: Any = None) -> None:
        slot = request.meta.get("download_slot")
        if slot:
            self._apply(slot)

    def _apply(self, key: str) -> None:
        floor = self._floor(key)
        if not floor or self.crawler.engine is None:
            return
        downloader = self.crawler.engine.downloader
        downloader.per_slot_settings.setdefault(key, {})["delay"] = floor
        slot = downloader.slots.get(key)
        if slot is not None and slot.delay < floor:
            slot.delay = floor
