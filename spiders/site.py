"""The `site` spider: extraction only.

Pages in, `PageItem`s, media requests, `MediaItem`s and follow-up page requests out. It
knows nothing of policy, the database or hashing: the scope gate judges every request
it makes, the frontier records them, the store pipeline hashes and stores the items.
Order per page: the `PageItem`, then `data:` media, media requests (a higher priority
than pages, so rendered or slow pages never starve their images), then links.

Settings read: `TAKEDOWN_SEEDS`, `TAKEDOWN_RUN_ID`, `TAKEDOWN_OUTLINK_CAP`,
`TAKEDOWN_MEDIA_PER_PAGE_CAP`, `TAKEDOWN_MEDIA_MAX_BYTES` (for ``data:`` URIs),
`TAKEDOWN_MEDIA_TYPES` (the policy's `media.types`).
Stats: `outlinks/truncated`, `outlinks/bad-href`, `media/truncated`, `media/bad-ref`,
`media/data-uri`, `media/data-uri/<too-large|malformed|not-media>`,
`pages/parse-incomplete`, `media/type-skipped`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.exceptions import DownloadCancelledError, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import CancelledError
from twisted.internet.error import DNSLookupError, TimeoutError
from twisted.python.failure import Failure

from crawler.evidence.tls import tls_facts, tls_verified
from crawler.items import MediaItem, PageItem
from spiders import extract

PAGE_PRIORITY = 0
MEDIA_PRIORITY = 10
# Kept on the page item for evidence (crawler.evidence): what a court may ask about.
KEPT_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Date",
    "Server",
    "Last-Modified",
    "ETag",
    "Location",
)


def _host(response: Response) -> str | None:
    """The name the certificate must match: the URL's host (punycode), no trailing dot."""
    return (urlparse_cached(response).hostname or "").rstrip(".") or None


def describe(failure: Failure) -> str:
    """A download failure in words, for `PageItem.error` / `MediaItem.error`."""
    exc = failure.value
    if isinstance(exc, TimeoutError) or type(exc).__name__.endswith("TimeoutError"):
        return "timed out"
    if isinstance(exc, DNSLookupError):
        return f"name not resolved: {exc}"[:300]
    if type(exc).__name__ == "ResponseDataLossError":
        return "short body: the connection closed before Content-Length bytes arrived"
    if isinstance(exc, IgnoreRequest) and "redirections" in str(exc):
        return "too many redirects"
    if isinstance(exc, IgnoreRequest) and "decompression" in str(exc):
        return f"decompressed body too large: {exc}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def is_policy_refusal(failure: Failure) -> bool:
    """A deliberate refusal (scope, robots, address): an `IgnoreRequest` with a reason.
    Other `IgnoreRequest`s (a decompression bomb, too many redirects) are failures."""
    return bool(failure.check(IgnoreRequest)) and hasattr(failure.value, "reason")


def size_skip(failure: Failure, limit: int) -> str | None:
    """The skip reason for a download cancelled at the size cap, else None."""
    if not failure.check(DownloadCancelledError, CancelledError):
        return None
    match = re.search(r"receive (\d+) bytes", str(failure.value))
    declared = f" (declared {match.group(1)} bytes)" if match else ""
    return f"larger than the {limit}-byte limit{declared}"


class SiteSpider(scrapy.Spider):
    name = "site"

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SiteSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.seeds = settings.getlist("TAKEDOWN_SEEDS")
        run_id = settings.get("TAKEDOWN_RUN_ID")
        spider.run_id = int(run_id) if run_id else None
        spider.outlink_cap = settings.getint("TAKEDOWN_OUTLINK_CAP", 1000)
        spider.media_cap = settings.getint("TAKEDOWN_MEDIA_PER_PAGE_CAP", 1000)
        spider.page_max_bytes = settings.getint("DOWNLOAD_MAXSIZE")
        spider.read_policy_settings(settings)
        return spider

    def read_policy_settings(self, settings: Any) -> None:
        """The add-on's policy-derived values. Scrapy builds the spider *before* add-ons
        update the settings, so `start()` reads them again."""
        self.media_max_bytes = settings.getint("TAKEDOWN_MEDIA_MAX_BYTES", 25_000_000)
        self.media_types = frozenset(settings.getlist("TAKEDOWN_MEDIA_TYPES", ["image", "video"]))

    seeds: list[str]
    run_id: int | None
    outlink_cap: int
    media_cap: int
    media_max_bytes: int
    page_max_bytes: int
    media_types: frozenset[str]

    async def start(self) -> AsyncIterator[Any]:
        self.read_policy_settings(self.settings)
        for url in self.seeds:
            yield self.page_request(url, 0)

    def page_request(self, url: str, depth: int) -> scrapy.Request:
        meta = {"td_kind": "page", "depth": depth}
        return scrapy.Request(
            url, self.parse_page, errback=self.page_failed, meta=meta, priority=PAGE_PRIORITY
        )

    def media_request(self, url: str, page_url: str, depth: int) -> scrapy.Request:
        meta = {"td_kind": "media", "page_url": page_url, "depth": depth}
        return scrapy.Request(
            url, self.parse_media, errback=self.media_failed, meta=meta, priority=MEDIA_PRIORITY
        )

    def count(self, key: str, by: int = 1) -> None:
        if by and self.crawler.stats is not None:
            self.crawler.stats.inc_value(key, by)

    # --- pages --------------------------------------------------------------------------

    def parse_page(self, response: Response) -> Iterator[Any]:
        depth = int(response.meta.get("depth", 0))
        page = self.page_item(response, depth)
        if not isinstance(response, TextResponse) or not 200 <= response.status < 300:
            yield page
            return
        page.html = response.text  # for the evidence WARC; data: media become hashes there
        media, data_uris, links = self.extract(response, page)
        yield page
        yield from self.data_media(page.url, data_uris)
        for url in media:
            yield self.media_request(url, page.url, depth + 1)
        for url in links:
            yield self.page_request(url, depth + 1)

    def page_item(self, response: Response, depth: int) -> PageItem:
        chain = list(response.meta.get("redirect_urls", []))
        headers = {
            name: (response.headers.get(name) or b"").decode("latin-1")[:500]
            for name in KEPT_HEADERS
            if name in response.headers
        }
        fp, issuer = tls_facts(getattr(response, "certificate", None))
        return PageItem(
            url=chain[0] if chain else response.url,
            final_url=response.url,
            status=response.status,
            depth=depth,
            run_id=self.run_id,
            content_sha256=hashlib.sha256(response.body).hexdigest(),
            ip=str(response.ip_address) if response.ip_address else None,
            redirect_chain=chain,
            headers=headers,
            tls_fingerprint=fp,
            tls_issuer=issuer,
            tls_verified=tls_verified(getattr(response, "certificate", None), _host(response)),
            fetched_at=datetime.now(UTC),
        )

    def extract(
        self, response: TextResponse, page: PageItem
    ) -> tuple[list[str], list[str], list[str]]:
        selector = response.selector
        base = extract.base_url(selector, response.url)
        titles = extract.strings(selector, "//title/text()")
        page.title = (titles[0] if titles else "").strip()[:1000] or None
        links, media_links = extract.links(selector, base, self.outlink_cap)
        lower = response.body.lower()  # once per page: the raw-marker and tag-count checks
        media = extract.resolve(
            [
                *extract.raw_media_refs(
                    selector, response.body, lower=lower, encoding=response.encoding
                ),
                *media_links,
            ],
            base,
            self.media_cap,
        )
        self.count("outlinks/bad-href", links.bad)
        self.count("media/bad-ref", media.bad)
        self.count("outlinks/truncated", int(links.truncated))
        self.count("media/truncated", int(media.truncated))
        page.parse_incomplete = (
            links.truncated
            or media.truncated
            or "render-cut" in response.flags  # rendering stopped at its budget
            or extract.looks_truncated(response.body, selector, lower=lower)
        )
        self.count("pages/parse-incomplete", int(page.parse_incomplete))
        media.urls = self.wanted_types(media.urls, selector, base)
        page.media_urls = media.urls
        page.outlinks = len(links.urls)
        return media.urls, media.data_uris, links.urls

    def wanted_types(self, urls: list[str], selector: Any, base: str) -> list[str]:
        """Media of the policy's `media.types` only; the rest is never requested."""
        if {"image", "video"} <= self.media_types or not urls:
            return urls
        kinds = extract.media_kinds(urls, selector, base)
        kept = [url for url in urls if kinds[url] in self.media_types]
        self.count("media/type-skipped", len(urls) - len(kept))
        return kept

    def data_media(self, page_url: str, uris: list[str]) -> Iterator[MediaItem]:
        for uri in uris[: self.media_cap]:
            result = extract.decode_data_uri(uri, self.media_max_bytes)
            if isinstance(result, str):
                self.count(f"media/data-uri/{result}")
                continue
            self.count("media/data-uri")
            digest = hashlib.sha256(result.body).hexdigest()
            yield MediaItem(
                page_url=page_url,
                media_url=f"data:{result.mime};sha256={digest}",
                run_id=self.run_id,
                declared_type=result.mime,
                body=result.body,
            )

    def page_failed(self, failure: Failure) -> Iterator[PageItem]:
        if is_policy_refusal(failure):
            return  # counted by the middleware that refused it, recorded as skipped
        request = failure.request  # type: ignore[attr-defined]
        chain = list(request.meta.get("redirect_urls", []))
        too_big = size_skip(failure, self.page_max_bytes)
        yield PageItem(
            url=chain[0] if chain else request.url,
            final_url=request.url,
            status=None,
            depth=int(request.meta.get("depth", 0)),
            run_id=self.run_id,
            redirect_chain=chain,
            error=f"page {too_big}" if too_big else describe(failure),
        )

    # --- media --------------------------------------------------------------------------

    def parse_media(self, response: Response) -> Iterator[MediaItem]:
        item = self.media_item(response.request, response.url)  # type: ignore[arg-type]
        item.status = response.status
        item.ip = str(response.ip_address) if response.ip_address else None
        item.declared_type = (response.headers.get("Content-Type") or b"").decode("latin-1")[
            :128
        ] or None
        if response.status != 200:
            item.error = f"HTTP {response.status}"
        elif "partial" in response.flags or "dataloss" in response.flags:
            item.error = "incomplete body: never hashed as whole"
        else:
            item.body = response.body
        yield item

    def media_item(self, request: scrapy.Request, final_url: str | None) -> MediaItem:
        chain = list(request.meta.get("redirect_urls", []))
        return MediaItem(
            page_url=request.meta.get("page_url", ""),
            media_url=chain[0] if chain else request.url,
            run_id=self.run_id,
            final_url=final_url,
        )

    def media_failed(self, failure: Failure) -> Iterator[MediaItem]:
        request = failure.request  # type: ignore[attr-defined]
        item = self.media_item(request, None)
        limit = int(request.meta.get("download_maxsize") or self.media_max_bytes)
        if is_policy_refusal(failure):
            item.skipped = f"policy: {getattr(failure.value, 'reason', 'refused')}"
        elif (too_big := size_skip(failure, limit)) is not None:
            item.skipped = too_big
        else:
            item.error = describe(failure)
        yield item
