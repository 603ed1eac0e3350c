"""Crawl progress: a rich live display on a terminal, plain log lines otherwise.

Shows pages, media, matches, errors, the page rate and the busiest host queues, read
from the stats and the downloader's slots every `TAKEDOWN_PROGRESS_INTERVAL` seconds.

Settings read: `TAKEDOWN_PROGRESS` (``live``, ``log`` or ``off``),
`TAKEDOWN_PROGRESS_INTERVAL` (default 0.5 s live, 10 s for log lines).
Stats: `takedown/pages`, `takedown/media`, `takedown/errors` (counted here from scraped
items; `matches` is read from the storage pipeline's `store/matches`: distinct media the
store writer matched, wherever it runs). In log mode a last line is logged when the
spider closes, so the log always ends with the crawl's final figures.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawler.items import MediaItem, PageItem

logger = logging.getLogger(__name__)


class ProgressExtension:
    def __init__(self, crawler: Crawler, mode: str, interval: float) -> None:
        self.crawler = crawler
        self.mode = mode
        self.interval = interval
        self.started = time.monotonic()
        self.live: Live | None = None
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressExtension:
        mode = crawler.settings.get("TAKEDOWN_PROGRESS", "log")
        if mode not in ("live", "log"):
            raise NotConfigured("TAKEDOWN_PROGRESS is off")
        default = 0.5 if mode == "live" else 10.0
        ext = cls(crawler, mode, crawler.settings.getfloat("TAKEDOWN_PROGRESS_INTERVAL", default))
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        return ext

    def stat(self, key: str) -> int:
        assert self.crawler.stats is not None
        return int(self.crawler.stats.get_value(key, 0) or 0)

    def item_scraped(self, item: Any, response: Any = None, spider: Any = None) -> None:
        assert self.crawler.stats is not None
        if isinstance(item, PageItem):
            self.crawler.stats.inc_value("takedown/pages")
        elif isinstance(item, MediaItem):
            self.crawler.stats.inc_value("takedown/media")
        if getattr(item, "error", None):
            self.crawler.stats.inc_value("takedown/errors")

    def opened(self, spider: Any = None) -> None:
        self.started = time.monotonic()
        if self.mode == "live":
            self.live = Live(self.table(), console=Console(stderr=True), auto_refresh=False)
            self.live.start()
        self.loop = task.LoopingCall(self.tick)
        self.loop.start(self.interval, now=False)

    def closed(self, spider: Any = None, reason: str = "") -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.live is not None:
            self.live.update(self.table(), refresh=True)
            self.live.stop()
        elif self.mode == "log":
            logger.info("progress: %s", self.line())

    def tick(self) -> None:
        if self.live is not None:
            self.live.update(self.table(), refresh=True)
        else:
            logger.info("progress: %s", self.line())

    def figures(self) -> dict[str, str]:
        pages = self.stat("takedown/pages")
        rate = pages / max(time.monotonic() - self.started, 1e-6)
        return {
            "pages": str(pages),
            "media": str(self.stat("takedown/media")),
            "matches": str(self.stat("store/matches")),
            "errors": str(self.stat("takedown/errors")),
            "blocked": str(self.stat("policy/blocked")),
            "pages/s": f"{rate:.1f}",
        }

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.figures().items())

    def host_queues(self) -> list[tuple[str, int]]:
        engine = self.crawler.engine
        if engine is None:
            return []
        slots = engine.downloader.slots.items()
        sizes = [(key, len(slot.queue) + len(slot.active)) for key, slot in slots]
        return sorted(sizes, key=lambda pair: -pair[1])[:5]

    def table(self) -> Table:
        table = Table(title="takedown crawl", show_header=False)
        for key, value in self.figures().items():
            table.add_row(key, value)
        for host, size in self.host_queues():
            table.add_row(f"queue {host}", str(size))
        return table
