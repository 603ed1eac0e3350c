"""Startup self-test (O-02): the run stops before its first fetch if the resolver is wrong.

A resolver set in a spider's `custom_settings` is silently ignored (Scrapy installs it
per process), so before the first start request leaves, this checks that the
installed Twisted resolver is `FilteringResolver` and that it answers ``localhost``
exactly as the policy says (refused under the production policy). On failure the
spider closes with reason ``startup-self-test-failed`` and nothing is fetched.

Settings read: `TAKEDOWN_POLICY` (`[network]`).
Stats: `startup/self-test` (``passed`` or the problem).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.error import DNSLookupError

from crawler.net.addresses import LOOPBACK_NAME_ADDRESS, AddressPolicy
from crawler.net.resolver import FilteringResolver, address_policy, policy_from_settings

logger = logging.getLogger(__name__)

FAILED = "startup-self-test-failed"


class StartupSelfTestMiddleware:
    def __init__(self, crawler: Crawler, addresses: AddressPolicy) -> None:
        self.crawler = crawler
        self.addresses = addresses

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StartupSelfTestMiddleware:
        return cls(crawler, address_policy(policy_from_settings(crawler.settings)))

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        problem = await self.problem()
        assert self.crawler.stats is not None
        self.crawler.stats.set_value("startup/self-test", problem or "passed")
        if problem is not None:
            logger.error("startup self-test failed, nothing fetched: %s", problem)
            assert self.crawler.engine is not None
            await self.crawler.engine.close_spider_async(reason=FAILED)
            return
        async for item_or_request in start:
            yield item_or_request

    async def problem(self) -> str | None:
        """None when the installed resolver is ours and behaves, else what is wrong."""
        from twisted.internet import reactor as installed

        reactor: Any = installed
        resolver = getattr(reactor, "resolver", None)
        if not isinstance(resolver, FilteringResolver):
            return (
                f"the installed resolver is {type(resolver).__name__}, not FilteringResolver "
                "(TWISTED_DNS_RESOLVER must be set in the process settings)"
            )
        expected = self.addresses.check(LOOPBACK_NAME_ADDRESS) is not None
        try:
            await maybe_deferred_to_future(reactor.resolve("localhost"))
            refused = False
        except DNSLookupError:
            refused = True
        if refused != expected:
            return f"the resolver {'refused' if refused else 'allowed'} localhost; the policy says otherwise"
        return None
