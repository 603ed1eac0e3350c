"""Page budgets across every worker of a scaled-out job (C-01 with N workers).

The scope gate's `Budget` counts the pages of one process; with N workers the policy's
`max_pages`, `max_pages_per_host` and the per-prefix budget would each allow N times as
many. This middleware, right after the scope gate, takes the same three budgets from
counters in Redis (``<job>budget:pages``, ``budget:host:<host>``,
``budget:prefix:<host>/<first two path segments>``) in one Lua script: all or none, once
per logical page (redirects and retries reuse it). A refusal is a policy block with the
gate's reason keys (``budget/pages``, ``budget/host``, ``budget/prefix``), recorded
``skipped`` by the frontier. A local refusal by the gate implies a global one, since a
worker's own count never exceeds the job's.

Settings read: `TAKEDOWN_REDIS_URL`, `TAKEDOWN_REDIS_JOB` (unset: not configured),
`TAKEDOWN_POLICY`. Stats: `policy/blocked/budget/<kind>` (through `block`),
`scope/shared-budget/error`.
"""

from __future__ import annotations

from typing import Any

import redis
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured

from crawler.engine.middlewares import request_kind
from crawler.engine.middlewares.scope import block
from crawler.net.resolver import policy_from_settings
from crawler.net.urls import Budget, InvalidURL, downloader_split, url_host

# KEYS: pages, host, prefix. ARGV: their limits. Returns "" or the refusal reason.
_TAKE = """
local names = {'budget/pages', 'budget/host', 'budget/prefix'}
for i = 1, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') >= tonumber(ARGV[i]) then return names[i] end
end
for i = 1, 3 do redis.call('INCR', KEYS[i]) end
return ''
"""


class SharedBudget:
    """The job's page budgets in Redis; `try_take` has `Budget.try_take`'s contract."""

    def __init__(self, client: redis.Redis, base: str, budget: Budget) -> None:
        self.base = base
        self.limits = [budget.max_pages, budget.max_pages_per_host, budget.max_pages_per_prefix]
        self.segments = budget.prefix_segments
        self.script = client.register_script(_TAKE)

    def keys(self, url: str) -> list[str]:
        host = url_host(url)
        path = downloader_split(url).path
        prefix = "/".join(path.strip("/").split("/")[: self.segments])
        return [
            f"{self.base}budget:{k}" for k in ("pages", f"host:{host}", f"prefix:{host}/{prefix}")
        ]

    def spend(self, urls: list[str]) -> None:
        """Count pages a resumed job fetched before (the counters start again at 0)."""
        for url in urls:
            try:
                keys = self.keys(url)
            except InvalidURL:
                continue
            self.script(keys=keys, args=[2**62] * 3)

    def try_take(self, url: str) -> str | None:
        try:
            keys = self.keys(url)
        except InvalidURL:
            return "bad-url"
        reason = self.script(keys=keys, args=self.limits)
        reason = reason.decode() if isinstance(reason, bytes) else str(reason)
        return reason or None


class SharedBudgetMiddleware:
    def __init__(self, crawler: Crawler, budget: SharedBudget) -> None:
        self.crawler = crawler
        self.budget = budget

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedBudgetMiddleware:
        settings = crawler.settings
        if not settings.get("TAKEDOWN_REDIS_URL") or not settings.get("TAKEDOWN_REDIS_JOB"):
            raise NotConfigured("TAKEDOWN_REDIS_URL and TAKEDOWN_REDIS_JOB must be set")
        client = redis.Redis.from_url(
            settings["TAKEDOWN_REDIS_URL"], socket_timeout=10, socket_connect_timeout=5
        )
        local = Budget.from_policy(policy_from_settings(settings).scope)
        return cls(crawler, SharedBudget(client, settings["TAKEDOWN_REDIS_JOB"], local))

    def process_request(self, request: Request, spider: Any = None) -> None:
        if request_kind(request) != "page" or request.meta.get("td_shared_budget"):
            return None
        try:
            reason = self.budget.try_take(request.url)
        except redis.RedisError as exc:
            if self.crawler.stats is not None:
                self.crawler.stats.inc_value("scope/shared-budget/error")
            raise IgnoreRequest(f"shared budget unavailable: {exc}") from exc
        if reason is not None:
            raise block(self.crawler, request, reason)
        request.meta["td_shared_budget"] = True
        return None
