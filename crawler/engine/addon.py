"""The takedown add-on: wires every middleware, extension and pipeline at fixed priorities.

Reads the policy from `TAKEDOWN_POLICY` (TOML text) and turns it into Scrapy settings
(user agent, per-host concurrency, delay with a floor under AutoThrottle, timeout,
rendering). Priorities are fixed here so the order is reviewable in one place:

downloader (request path, low first): scope gate 60 -> robots 100 -> politeness 110 ->
Scrapy's retry 550 -> Retry-After 560 (response path runs before retry) -> redirect 600
-> address check 800 (response path runs before redirect) -> frontier lease 950 (last:
a page waits here for a lease). Scrapy's offsite, robots,
cookies, proxy and cache middlewares are off. With rendering: the page marker 850 (after
the address check, before the lease). In a scale-out worker: the shared budget 61 (right
after the scope gate) and the shared politeness 960 (after the lease: last before download).
spider: self-test 10 (outermost on the start requests), frontier 850 (the first to see
a page's output: duplicates and out-of-scope links end there, before Scrapy's referer
700 and URL length 800 work on them). Scrapy's depth middleware is off: the spider gives
every request its depth and the scope gate enforces it (DEPTH_LIMIT stays 0); so is the
meta-copy detection, a developer warning the spider (fresh meta per request) never
needs. Each cost an async layer per yielded object, duplicates included.
extensions: progress 500; with rendering, the egress proxy's stats 510.
items: store 300, then evidence 400 (it reads the rows the store wrote).

The tables below are the only place these numbers are written: `crawler.engine.render`
and `crawler.engine.workers` install their groups from here.

Installs the response header cap (`crawler.net.header_cap`, H-03) for the process, and
applies `LOG_LEVEL` to the loggers when Scrapy installs no root handler of its own
(`crawler.logs.apply_level`), Scrapy's start-up dumps demoted to DEBUG
(`crawler.logs.demote_startup`). Scrapy's default stats collector becomes `StatsCollector`
(the same without a per-attribute hook).

Raises `ProxyRefused` (C-08) when the environment names a proxy and no enforcing
egress proxy is declared with `TAKEDOWN_EGRESS_PROXY_ENFORCED`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from scrapy.settings import BaseSettings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.misc import load_object

from crawler import logs
from crawler.net import header_cap
from crawler.net.resolver import policy_from_settings
from crawler.policy import CrawlPolicy

STORE_PIPELINE = "crawler.engine.pipelines.store.StorePipeline"
EVIDENCE_PIPELINE = "crawler.engine.pipelines.evidence.EvidencePipeline"
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")

DOWNLOADER_MIDDLEWARES: dict[str, int | None] = {
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
    "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "crawler.engine.middlewares.scope.ScopeGateMiddleware": 60,
    "crawler.engine.middlewares.robots.RobotsTxtMiddleware": 100,
    "crawler.engine.middlewares.politeness.PolitenessMiddleware": 110,
    "crawler.engine.middlewares.retryafter.RetryAfterMiddleware": 560,
    "crawler.engine.middlewares.address.AddressCheckMiddleware": 800,
    "crawler.engine.middlewares.lease.LeaseMiddleware": 950,
}
SPIDER_MIDDLEWARES: dict[str, int | None] = {
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
    "crawler.engine.middlewares.selftest.StartupSelfTestMiddleware": 10,
    "crawler.engine.middlewares.frontier.FrontierMiddleware": 850,
}
EXTENSIONS: dict[str, int | None] = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "scrapy.extensions.remote_control.RemoteControl": None,
    "scrapy.extensions.feedexport.FeedExporter": None,
    "scrapy.extensions.spiderstate.SpiderState": None,
    "crawler.engine.extensions.progress.ProgressExtension": 500,
}
ITEM_PIPELINES: dict[str, int | None] = {
    STORE_PIPELINE: 300,
    EVIDENCE_PIPELINE: 400,  # after the store (lower runs first): it reads the rows it wrote
}
# Installed by crawler.engine.render.apply when the policy renders pages.
RENDER_COMPONENTS: dict[str, dict[str, int | None]] = {
    "DOWNLOADER_MIDDLEWARES": {"crawler.engine.render.RenderPagesMiddleware": 850},
    "EXTENSIONS": {"crawler.engine.render.RenderProxyStats": 510},
}
# Set by crawler.engine.workers.worker_settings in a scale-out worker.
WORKER_COMPONENTS: dict[str, dict[str, int | None]] = {
    "DOWNLOADER_MIDDLEWARES": {
        "crawler.engine.middlewares.shared_budget.SharedBudgetMiddleware": 61,
        "crawler.engine.middlewares.shared_politeness.SharedPolitenessMiddleware": 960,
    },
}


class StatsCollector(MemoryStatsCollector):
    """Scrapy's in-memory stats without its per-access hook (`STATS_CLASS`).

    Scrapy 2.19's collector runs a `__getattribute__` on every attribute read (its own
    `self._stats` included) to wrap methods in a deprecation check for a `spider`
    argument: ~3 us per `inc_value` instead of ~0.3, and a crawl counts a few dozen
    stats per page. Same methods, same values, no deprecation warning.
    """

    __getattribute__ = object.__getattribute__


class ProxyRefused(RuntimeError):
    """A proxy is configured in the environment and nothing says it enforces the policy."""


def proxy_variables(env: Mapping[str, str]) -> list[str]:
    return [name for name in env if name.lower() in PROXY_VARIABLES and env[name].strip()]


def check_proxies(env: Mapping[str, str], enforced: bool) -> None:
    found = proxy_variables(env)
    if found and not enforced:
        raise ProxyRefused(
            f"{', '.join(sorted(found))} set: a proxy resolves names itself and would bypass "
            "the address policy; unset it, or declare an enforcing egress proxy with "
            "TAKEDOWN_EGRESS_PROXY_ENFORCED"
        )


def policy_settings(policy: CrawlPolicy, settings: BaseSettings) -> dict[str, Any]:
    """Scrapy settings that follow from the policy."""
    polite = policy.politeness
    delay = polite.delay_s
    if polite.autothrottle:
        delay = max(delay, settings.getfloat("TAKEDOWN_DELAY_FLOOR", 0.25))
    return {
        "USER_AGENT": polite.user_agent,
        "CONCURRENT_REQUESTS_PER_DOMAIN": polite.per_host_concurrency,
        "DOWNLOAD_DELAY": delay,
        "DOWNLOAD_DELAY_JITTER": 0.5 if delay > 0 else 0.0,
        "AUTOTHROTTLE_ENABLED": polite.autothrottle,
        # Start at the floor: starting at 1 s made every small crawl pay a ramp (the
        # demo's 35 requests took ~3 s longer); AutoThrottle still raises it for slow hosts.
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(polite.per_host_concurrency),
        "DOWNLOAD_TIMEOUT": polite.timeout_s,
        "TAKEDOWN_MEDIA_MAX_BYTES": policy.media.max_bytes,
        "TAKEDOWN_MAX_PIXELS": policy.media.max_pixels,
        "TAKEDOWN_VIDEO_MAX_FRAMES": policy.media.video_max_frames,
        "TAKEDOWN_ARCHIVE_MAX_MEMBERS": policy.media.archive_max_members,
        "TAKEDOWN_ARCHIVE_MAX_UNPACKED_BYTES": policy.media.archive_max_unpacked_bytes,
        "TAKEDOWN_ARCHIVE_MAX_RATIO": policy.media.archive_max_ratio,
        "TAKEDOWN_MEDIA_TYPES": list(policy.media.types),
    }


class TakedownAddon:
    """Scrapy add-on (`ADDONS`); see the module doc for what it sets."""

    def update_settings(self, settings: BaseSettings) -> None:
        enforced = settings.getbool("TAKEDOWN_EGRESS_PROXY_ENFORCED")
        check_proxies(os.environ, enforced)  # the edge for `scrapy crawl` as well
        policy = policy_from_settings(settings)
        header_cap.install(  # H-03: Twisted keeps any number of header lines
            settings.getint("TAKEDOWN_MAX_RESPONSE_HEADERS", header_cap.DEFAULT_MAX_HEADERS),
            settings.getint("TAKEDOWN_MAX_HEADER_BYTES", header_cap.DEFAULT_MAX_HEADER_BYTES),
        )
        if not settings.getbool("LOG_INSTALL_ROOT_HANDLER"):
            logs.demote_startup()  # `scrapy crawl` too: start-up dumps at DEBUG
            logs.apply_level(settings.get("LOG_LEVEL", "DEBUG"))
            if settings.get("LOG_FILE"):
                logs.redirect(str(settings.get("LOG_FILE")))
        for name, value in policy_settings(policy, settings).items():
            settings.set(name, value, "addon")
        if settings["STATS_CLASS"] == "scrapy.statscollectors.MemoryStatsCollector":
            settings.set("STATS_CLASS", StatsCollector, "addon")
        self._wire(settings, enforced)
        if policy.render.javascript:
            from crawler.engine.render import apply

            apply(settings)  # starts the egress proxy or refuses (C-09)

    @staticmethod
    def _wire(settings: BaseSettings, enforced: bool) -> None:
        groups = {
            "DOWNLOADER_MIDDLEWARES": dict(DOWNLOADER_MIDDLEWARES),
            "SPIDER_MIDDLEWARES": SPIDER_MIDDLEWARES,
            "EXTENSIONS": EXTENSIONS,
        }
        if enforced:
            settings.set("HTTPPROXY_ENABLED", True, "addon")
        else:
            groups["DOWNLOADER_MIDDLEWARES"][
                "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware"
            ] = None
        if importlib.util.find_spec("crawler.engine.pipelines.store") is not None:
            groups["ITEM_PIPELINES"] = ITEM_PIPELINES
        install(settings, groups)


def install(settings: BaseSettings, groups: Mapping[str, Mapping[str, int | None]]) -> None:
    """Add each component of *groups* to its Scrapy setting at the table's priority."""
    for name, components in groups.items():
        for path, priority in components.items():
            settings.set_in_component_priority_dict(name, load_object(path), priority)
