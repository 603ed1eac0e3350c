"""The filtering resolver (C-04, C-05) and the pinned settings (O-01)."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings
from twisted.internet.error import DNSLookupError

from crawler.engine.addon import TakedownAddon
from crawler.net.addresses import AddressPolicy
from crawler.net.resolver import BlockedAddressError, FilteringResolver

SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "0x7f.1",
    "[::1]",
    "::ffff:127.0.0.1",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "0.0.0.0",
    "0",
    "169.254.169.254",
    "10.0.0.1",
    "100.64.0.1",
    "[fe80::1%eth0]",
]


def resolver(lookup=None, **hosts: str) -> FilteringResolver:  # type: ignore[no-untyped-def]
    policy = AddressPolicy(False, ("127.0.0.2/32",))
    return FilteringResolver(None, policy, hosts, lookup=lookup or (lambda name: ["127.0.0.1"]))


@pytest.mark.parametrize("name", SPELLINGS)
def test_c04_every_internal_spelling_refused(name: str) -> None:
    with pytest.raises(BlockedAddressError):
        resolver().static_answer(name)


def test_test_names_only_through_the_map() -> None:
    r = resolver(**{"site-a.test": "127.0.0.2", "canary.test": "127.0.0.1"})
    assert r.static_answer("site-a.test") == "127.0.0.2"
    with pytest.raises(BlockedAddressError):
        r.static_answer("canary.test")
    with pytest.raises(DNSLookupError):
        r.static_answer("unknown.test")
    assert r.static_answer("example.org") is None  # a real name: DNS, then the filter


def test_c05_mixed_and_rebinding_answers_filtered() -> None:
    answers = iter([["10.0.0.1", "127.0.0.2"], ["127.0.0.1"]] * 100)
    r = resolver(lookup=lambda name: next(answers))
    for _ in range(100):
        assert r._judged("rebind.example", next(answers)) == "127.0.0.2"
        with pytest.raises(BlockedAddressError):
            r._judged("rebind.example", next(answers))


def test_o02_self_test_probe_refuses_localhost() -> None:
    assert resolver().refuses("localhost")
    permissive = FilteringResolver(None, AddressPolicy(True, ()), {})
    assert not permissive.refuses("localhost")


def test_o01_unsafe_defaults_pinned() -> None:
    settings = Settings()
    settings.setmodule("crawler.engine.settings", priority="project")
    TakedownAddon().update_settings(settings)
    assert settings.getbool("TELNETCONSOLE_ENABLED") is False
    assert settings.getbool("REMOTE_CONTROL_ENABLED") is False
    assert settings.getbool("COOKIES_ENABLED") is False
    assert settings.getbool("HTTPCACHE_ENABLED") is False
    assert settings.getbool("HTTPPROXY_ENABLED") is False
    assert settings.getint("DOWNLOAD_MAXSIZE") == 10 * 1024 * 1024
    assert settings.getint("REDIRECT_MAX_TIMES") <= 10
    assert settings.getfloat("DNS_TIMEOUT") < 60
    assert settings["TWISTED_DNS_RESOLVER"] == "crawler.net.resolver.FilteringResolver"
    handlers = settings.getdict("DOWNLOAD_HANDLERS")
    assert all(handlers[s] is None for s in ("file", "data", "ftp", "s3"))
    assert settings.getint("CONCURRENT_ITEMS") == 8
    pipelines = " ".join(str(k) for k in settings.getdict("ITEM_PIPELINES"))
    assert "FilesPipeline" not in pipelines and "ImagesPipeline" not in pipelines
    assert settings.getfloat("DOWNLOAD_TIMEOUT") == 20.0  # the policy's, not Scrapy's 180
