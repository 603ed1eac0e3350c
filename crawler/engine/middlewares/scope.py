"""The scope gate: the one downloader middleware every request passes (C-01..C-08).

Pages, media, redirects (they come back through the scheduler), robots.txt fetches,
retries and rechecks all reach `process_request`; `dont_filter` is ignored on purpose,
because Scrapy's offsite filter honours it and an off-site seed redirect was fetched
(C-07). Deny domains and patterns win over seeds and media. Depth is enforced here on
pages only (media one hop deeper), so the deepest pages keep their images. Budgets are
taken once per logical page (a redirect or retry spends nothing more). Hosts that are
addresses in any spelling are judged by `AddressPolicy` before any connection, since
Twisted never asks a resolver about dotted-quad literals. Requests that name a proxy
are refused unless an enforcing egress proxy is configured (C-08). A page request the
frontier already found in scope carries `td_scope_checked` = (URL, depth): only that
repeat of the pure scope check is skipped (same policy, same seeds); a redirect or any
other URL is checked again, and the address, proxy and budget checks always run.

Settings read: `TAKEDOWN_POLICY`, `TAKEDOWN_SEEDS`, `TAKEDOWN_BUDGET_SPENT` (page URLs a
resumed run already fetched), `TAKEDOWN_EGRESS_PROXY_ENFORCED`.
Stats: `policy/blocked` (total), `policy/blocked/<reason>` (reasons of
`crawler.net.urls` plus ``private-address``, ``proxy``), `policy/address/<class>`,
`scope/budget-exhausted/<host>`.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler

from crawler.engine.middlewares import SCOPE_CHECKED, PolicyBlocked, request_kind, request_skipped
from crawler.net.addresses import AddressPolicy, parse_host_literal
from crawler.net.resolver import address_policy, policy_from_settings
from crawler.net.urls import Budget, InvalidURL, Scope, url_host
from crawler.policy import CrawlPolicy

logger = logging.getLogger(__name__)

HOST_MEMO = 65_536  # hosts whose address verdict is remembered (then forgotten at once)


def block(crawler: Crawler, request: Request, reason: str) -> PolicyBlocked:
    """Count, announce and build the refusal for *request* (callers raise it)."""
    assert crawler.stats is not None
    crawler.stats.inc_value("policy/blocked")
    crawler.stats.inc_value(f"policy/blocked/{reason}")
    logger.debug("blocked (%s): %s", reason, request.url[:300])
    crawler.signals.send_catch_log(signal=request_skipped, request=request, reason=reason)
    return PolicyBlocked(reason, request.url)


class ScopeGateMiddleware:
    def __init__(
        self, crawler: Crawler, policy: CrawlPolicy, seeds: list[str], proxy_ok: bool
    ) -> None:
        self.crawler = crawler
        self.scope = Scope.from_policy(policy, seeds)
        self.budget = Budget.from_policy(policy.scope)
        self.addresses: AddressPolicy = address_policy(policy)
        self._refusals: dict[str, str | None] = {}
        self.media_max_bytes = policy.media.max_bytes
        self.proxy_ok = proxy_ok

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ScopeGateMiddleware:
        settings = crawler.settings
        gate = cls(
            crawler,
            policy_from_settings(settings),
            settings.getlist("TAKEDOWN_SEEDS"),
            settings.getbool("TAKEDOWN_EGRESS_PROXY_ENFORCED"),
        )
        for url in settings.getlist("TAKEDOWN_BUDGET_SPENT"):
            gate.budget.try_take(url)
        return gate

    def process_request(self, request: Request, spider: Any = None) -> None:
        kind = request_kind(request)
        reason = self.verdict(request, kind)
        if reason is not None:
            raise block(self.crawler, request, reason)
        if kind == "media":
            cap = request.meta.get("download_maxsize") or self.media_max_bytes
            request.meta["download_maxsize"] = min(cap, self.media_max_bytes)

    def verdict(self, request: Request, kind: str) -> str | None:
        """None when *request* may go on, else the reason key. Overridable policy."""
        if request.meta.get("proxy") and not self.proxy_ok:
            return "proxy"
        depth = int(request.meta.get("depth", 0))
        is_page = kind == "page"
        reason = None
        if not (is_page and request.meta.get(SCOPE_CHECKED) == (request.url, depth)):
            reason = self.scope.check(
                request.url, depth=0 if kind == "robots" else depth, is_media=not is_page
            )
        if reason is None:
            reason = self.address_verdict(request.url)
        if reason is None and is_page and not request.meta.get("td_budget"):
            reason = self.take_budget(request)
        return reason

    def address_verdict(self, url: str) -> str | None:
        try:
            host = url_host(url)
        except InvalidURL:
            return "bad-host"
        refusal = self._host_refusal(host)
        if refusal is None:
            return None
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"policy/address/{refusal}")
        return "private-address"

    def _host_refusal(self, host: str) -> str | None:
        """The address class refused for *host* when it is an address literal, else None
        (a name: the filtering resolver judges every answer). A pure function of the
        canonical host and the fixed policy, so remembered per host (bounded)."""
        try:
            return self._refusals[host]
        except KeyError:
            pass
        literal = parse_host_literal(host)
        refusal = None if literal is None else self.addresses.check(literal)
        if len(self._refusals) >= HOST_MEMO:
            self._refusals.clear()
        self._refusals[host] = refusal
        return refusal

    def take_budget(self, request: Request) -> str | None:
        reason = self.budget.try_take(request.url)
        if reason is None:
            request.meta["td_budget"] = True
            return None
        if reason in ("budget/host", "budget/prefix"):
            assert self.crawler.stats is not None
            host = url_host(request.url)
            self.crawler.stats.set_value(f"scope/budget-exhausted/{host}", reason)
        return reason
