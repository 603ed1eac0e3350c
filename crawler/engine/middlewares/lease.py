"""Holds each page request until the frontier grants it a lease (S-01).

The last downloader middleware before the download: a page waits here while
`CONCURRENT_REQUESTS` pages are fetched but not yet durably finished in the frontier
table, so a crawl killed at any moment refetches at most that many pages on resume.
Retries and redirects of a page reuse its lease. Media and robots.txt never wait.

Settings read: none (the limit is the frontier's). Stats: `frontier/lease-waits`.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler

from crawler.engine.middlewares.frontier import FrontierMiddleware


class LeaseMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.frontier: FrontierMiddleware | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeaseMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if self.frontier is None:
            self.frontier = self.crawler.get_spider_middleware(FrontierMiddleware)
            if self.frontier is None:
                return None  # no frontier (plain `scrapy crawl`): nothing to wait for
        if self.frontier.leases.tokens == 0 and self.crawler.stats is not None:
            self.crawler.stats.inc_value("frontier/lease-waits")
        await self.frontier.lease(request)
        return None
