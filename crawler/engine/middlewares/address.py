"""The address actually connected to, checked after DNS and after every hop (C-05, C-06).

The filtering resolver refuses names whose answers are all blocked; that refusal
arrives here as a `BlockedAddressError` and becomes a counted `PolicyBlocked`, so the
retry middleware never retries it. Every response is then checked against
`response.ip_address`, the address Twisted connected to: a response from a refused
address is dropped before redirects or the spider see it (this middleware sits above
RedirectMiddleware, so `process_response` runs first).

Settings read: `TAKEDOWN_POLICY` (`[network]`).
Stats: `policy/blocked/private-address`, `policy/address/after-connect`.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.engine.middlewares.scope import block
from crawler.net.addresses import AddressPolicy
from crawler.net.resolver import BlockedAddressError, address_policy, policy_from_settings

ADDRESS_MEMO = 65_536  # connected addresses whose verdict is remembered


class AddressCheckMiddleware:
    def __init__(self, crawler: Crawler, addresses: AddressPolicy) -> None:
        self.crawler = crawler
        self.addresses = addresses
        self._checked: dict[str, str | None] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressCheckMiddleware:
        return cls(crawler, address_policy(policy_from_settings(crawler.settings)))

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        ip = response.ip_address
        if ip is None:
            return response  # no socket of ours (rendered pages are checked in the browser)
        if self._refusal(str(ip)) is not None:
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("policy/address/after-connect")
            raise block(self.crawler, request, "private-address")
        return response

    def _refusal(self, ip: str) -> str | None:
        """`AddressPolicy.check`, remembered per address: pure for a fixed policy."""
        try:
            return self._checked[ip]
        except KeyError:
            pass
        refusal = self.addresses.check(ip)
        if len(self._checked) >= ADDRESS_MEMO:
            self._checked.clear()
        self._checked[ip] = refusal
        return refusal

    def process_exception(self, request: Request, exception: Exception, spider: Any = None) -> None:
        if isinstance(exception, BlockedAddressError):
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value(f"policy/address/{exception.reason}")
            raise block(self.crawler, request, "private-address")
        return None
