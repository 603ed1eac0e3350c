"""Scope gate and address check: remembered address verdicts still refuse and count
every request (C-04, C-05), whatever spelling or order."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.engine.middlewares import PolicyBlocked
from crawler.engine.middlewares.address import AddressCheckMiddleware
from crawler.engine.middlewares.scope import ScopeGateMiddleware
from crawler.net.addresses import AddressPolicy
from crawler.policy import CrawlPolicy

SEEDS = ["http://127.1/", "http://[::1]/", "http://site.test/"]


def _gate() -> ScopeGateMiddleware:
    crawler = get_crawler()
    return ScopeGateMiddleware(crawler, CrawlPolicy(), SEEDS, proxy_ok=False)


@pytest.mark.parametrize("url", ["http://127.1/x", "http://0x7f000001/x", "http://[::1]/x"])
def test_literal_refused_every_time_and_counted(url: str) -> None:
    gate = _gate()
    for _ in range(3):
        with pytest.raises(PolicyBlocked, match="private-address"):
            gate.process_request(Request(url))
    stats = gate.crawler.stats
    assert stats is not None
    assert stats.get_value("policy/blocked/private-address") == 3
    assert sum(v for k, v in stats.get_stats().items() if k.startswith("policy/address/")) == 3


def test_names_pass_to_the_resolver_and_stay_names() -> None:
    gate = _gate()
    for _ in range(2):
        assert gate.address_verdict("http://site.test/a") is None


def test_after_connect_check_refuses_every_response() -> None:
    crawler = get_crawler()
    mw = AddressCheckMiddleware(crawler, AddressPolicy(allowed_networks=["127.0.0.2/32"]))
    allowed = HtmlResponse("http://a.test/", body=b"", ip_address=_ip("127.0.0.2"))
    for _ in range(2):
        assert mw.process_response(Request("http://a.test/"), allowed) is allowed
    refused = HtmlResponse("http://a.test/", body=b"", ip_address=_ip("127.0.0.3"))
    for _ in range(2):
        with pytest.raises(PolicyBlocked):
            mw.process_response(Request("http://a.test/"), refused)
    assert crawler.stats is not None
    assert crawler.stats.get_value("policy/address/after-connect") == 2


def _ip(text: str) -> object:
    import ipaddress

    return ipaddress.ip_address(text)
