"""Records the crawl frontier in the database as the crawl goes (S-01, S-02).

A spider middleware, because the order matters: a page's links pass through
`process_spider_output` and are written ``queued`` *before* the page may become
``done`` (after its output is exhausted *and* its `PageItem` was scraped), and the
writer applies writes in order. It also de-duplicates page and media requests by
canonical URL (session ids stripped, C-02) and drops links the scope refuses before they
fill the queue (C-01; the downloader-side scope gate still checks every request).

With `TAKEDOWN_RESUME`, `process_start` replaces the spider's seeds with everything the
run has not finished, and every fingerprint the run knows counts as seen.

Settings read: `TAKEDOWN_DB`, `TAKEDOWN_RUN_ID` (unset: not configured, so
`scrapy crawl site` works without a database), `TAKEDOWN_RESUME`, `TAKEDOWN_POLICY`,
`TAKEDOWN_SEEDS`.
Stats: `frontier/queued`, `frontier/duplicate`, `frontier/bad-url`,
`frontier/resumed`, `policy/blocked/<reason>` (links refused early).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import threads
from twisted.internet.defer import DeferredSemaphore

from crawler.db.session import Database
from crawler.engine.frontier import Entry, FrontierWriter, fingerprint, fingerprints, requeue
from crawler.engine.middlewares import SCOPE_CHECKED, request_kind, request_skipped
from crawler.items import MediaItem, PageItem
from crawler.net.resolver import policy_from_settings
from crawler.net.urls import InvalidURL, Scope

logger = logging.getLogger(__name__)


class FrontierMiddleware:
    def __init__(self, crawler: Crawler, db: Database, run_id: int, resume: bool) -> None:
        self.crawler = crawler
        self.db = db
        self.run_id = run_id
        self.resume = resume
        settings = crawler.settings
        self.scope = Scope.from_policy(
            policy_from_settings(settings), settings.getlist("TAKEDOWN_SEEDS")
        )
        self.seen: set[str] = fingerprints(db, run_id) if resume else set()
        self.halves: dict[str, int] = {}
        self.closing = False
        self.writer = FrontierWriter(db, run_id, on_commit=self._committed_from_thread)
        # Pages fetched but not yet durably finished: at most CONCURRENT_REQUESTS, so a
        # crash refetches no more than that (S-01). Leases are taken by LeaseMiddleware.
        self.leases = DeferredSemaphore(max(1, settings.getint("CONCURRENT_REQUESTS", 16)))
        self.holding: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierMiddleware:
        settings = crawler.settings
        if not settings.get("TAKEDOWN_RUN_ID"):
            raise NotConfigured("TAKEDOWN_RUN_ID must be set to record the frontier")
        db = Database(settings["TAKEDOWN_DB"])
        mw = cls(
            crawler, db, settings.getint("TAKEDOWN_RUN_ID"), settings.getbool("TAKEDOWN_RESUME")
        )
        connect = crawler.signals.connect
        connect(mw.leased, signal=signals.request_reached_downloader)
        connect(mw.skipped, signal=request_skipped)
        connect(mw.dropped, signal=signals.request_dropped)
        connect(mw.spider_error, signal=signals.spider_error)
        connect(mw.item_scraped, signal=signals.item_scraped)
        connect(mw.item_failed, signal=signals.item_dropped)
        connect(mw.item_failed, signal=signals.item_error)
        connect(mw.spider_closed, signal=signals.spider_closed)
        return mw

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    # --- start --------------------------------------------------------------------------

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        if self.resume:
            for request in self._resumed_requests():
                yield request
            return
        async for item_or_request in start:
            if isinstance(item_or_request, Request):
                admitted = self.admit(item_or_request)
                if admitted is not None:
                    yield admitted
            else:
                yield item_or_request

    def _resumed_requests(self) -> list[Request]:
        # Resumable spiders offer page_request(url, depth) and media_request(url, page, depth).
        spider: Any = self.crawler.spider
        requests = []
        for entry in requeue(self.db, self.run_id):
            if entry.kind == "media":
                request = spider.media_request(entry.url, entry.parent_url or "", entry.depth)
            else:
                request = spider.page_request(entry.url, entry.depth)
            request.meta["td_fp"] = entry.fingerprint
            request.dont_filter = True  # known to the seen-set; Scrapy's must not drop it
            requests.append(request)
        self.stats.set_value("frontier/resumed", len(requests))
        return requests

    # --- output -------------------------------------------------------------------------

    async def process_spider_output(
        self, response: Response, result: AsyncIterator[Any], spider: Spider | None = None
    ) -> AsyncIterator[Any]:
        self._stop_if_broken()
        async for obj in result:
            if isinstance(obj, Request):
                obj = self.admit(obj)
                if obj is None:
                    continue
            yield obj
        fp = response.meta.get("td_fp")
        if fp and request_kind(response.request) == "page":  # type: ignore[arg-type]
            self._half_done(fp)

    def admit(self, request: Request) -> Request | None:
        """*request* recorded as queued, or None when it is a duplicate or out of scope."""
        kind = request_kind(request)
        if kind == "robots":
            return request
        depth = int(request.meta.get("depth", 0))
        try:
            fp = request.meta.get("td_fp") or fingerprint(request.url, kind)
        except InvalidURL:
            self.stats.inc_value("frontier/bad-url")
            return None
        if fp in self.seen:
            self.stats.inc_value("frontier/duplicate")
            return None
        if kind == "page":
            if not self._in_scope(request.url, depth):
                return None
            # The gate's Scope is built from the same policy and seeds: it trusts this
            # verdict for exactly this URL and depth (a redirect or new URL is rechecked).
            request.meta[SCOPE_CHECKED] = (request.url, depth)
        self.seen.add(fp)
        request.meta["td_fp"] = fp
        parent = request.meta.get("page_url")
        self.writer.queued(Entry(request.url, kind, depth, parent, fp))
        self.stats.inc_value("frontier/queued")
        return request

    def _in_scope(self, url: str, depth: int) -> bool:
        reason = self.scope.check(url, depth=depth)
        if reason is not None:
            self.stats.inc_value("policy/blocked")
            self.stats.inc_value(f"policy/blocked/{reason}")
        return reason is None

    # --- state changes -------------------------------------------------------------------

    def _half_done(self, fp: str) -> None:
        count = self.halves.pop(fp, 0) + 1
        if count >= 2:
            self.writer.mark(fp, "done")
        else:
            self.halves[fp] = count

    def leased(self, request: Request, spider: Any = None) -> None:
        fp = request.meta.get("td_fp")
        if fp and request_kind(request) != "robots":
            self.writer.mark(fp, "leased")

    def skipped(self, request: Request, reason: str) -> None:
        fp = request.meta.get("td_fp")
        if fp:
            self.halves.pop(fp, None)
            self.writer.mark(fp, "skipped", reason)

    # --- leases -------------------------------------------------------------------------

    async def lease(self, request: Request) -> None:
        """Wait for a lease before *request* (a page) is downloaded; once per page."""
        fp = request.meta.get("td_fp")
        if not fp or request_kind(request) != "page" or fp in self.holding:
            return
        await maybe_deferred_to_future(self.leases.acquire())
        self.holding.add(fp)

    def _committed_from_thread(self, fps: list[str]) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(self._committed, fps)

    def _committed(self, fps: list[str]) -> None:
        for fp in fps:
            if fp in self.holding:
                self.holding.discard(fp)
                self.leases.release()

    def spider_error(self, failure: Any, response: Any = None, spider: Any = None) -> None:
        fp = getattr(response, "meta", {}).get("td_fp") if response is not None else None
        if fp:
            self.halves.pop(fp, None)
            self.writer.mark(fp, "failed", f"spider error: {failure.getErrorMessage()}"[:500])

    def dropped(self, request: Request, spider: Any = None) -> None:
        """The scheduler's duplicate filter dropped it: a redirect to a URL already seen
        (a loop). The page ends here; leaving it leased would refetch it on resume."""
        self.skipped(request, "duplicate-redirect")

    def item_scraped(self, item: Any, response: Any = None, spider: Any = None) -> None:
        fp = _response_fingerprint(item, response) or _item_fingerprint(item)
        if fp is None:
            return
        if isinstance(item, PageItem) and item.error is None:
            self._half_done(fp)
        elif isinstance(item, PageItem):
            self.halves.pop(fp, None)
            self.writer.mark(fp, "failed", item.error)
        else:
            self.writer.mark(fp, "done")

    def item_failed(self, item: Any, response: Any = None, spider: Any = None, **kw: Any) -> None:
        fp = _item_fingerprint(item)
        if fp is not None:
            self.halves.pop(fp, None)
            reason = str(kw.get("exception") or kw.get("failure") or "pipeline refused it")
            self.writer.mark(fp, "failed", reason[:500])

    def _stop_if_broken(self) -> None:
        if self.writer.error is not None and self.crawler.engine is not None and not self.closing:
            self.closing = True
            reason = "frontier-write-failed"
            deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))

    async def spider_closed(self, spider: Any = None, reason: str = "") -> None:
        def close() -> None:
            self.writer.close()
            self.db.dispose()

        await maybe_deferred_to_future(threads.deferToThread(close))


def _response_fingerprint(item: Any, response: Any) -> str | None:
    """The fingerprint the item's own request carried (redirects keep the first one's),
    so a scraped item costs no second canonicalisation; None when it may not be its own:
    a `data:` media item comes with its page's response, a failed page with no response."""
    if not isinstance(response, Response) or response.request is None:
        return None
    kind = request_kind(response.request)
    if isinstance(item, PageItem) and kind == "page":
        return response.meta.get("td_fp")
    if isinstance(item, MediaItem) and kind == "media" and not item.media_url.startswith("data:"):
        return response.meta.get("td_fp")
    return None


def _item_fingerprint(item: Any) -> str | None:
    try:
        if isinstance(item, PageItem):
            return fingerprint(item.url, "page")
        if isinstance(item, MediaItem) and not item.media_url.startswith("data:"):
            return fingerprint(item.media_url, "media")
    except InvalidURL:
        return None
    return None
