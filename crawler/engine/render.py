"""JavaScript rendering (`--render` or `render.javascript`) through scrapy-playwright.

docs/hazards.md C-09: Chromium resolves names and connects by itself, past the filtering
resolver and the scope gate. So every browser request goes through a local
policy-enforcing forward proxy (`crawler.net.egress_proxy`), started for the crawl and
passed to Chromium with ``--proxy-server`` and ``--proxy-bypass-list=<-loopback>``
(Chromium otherwise bypasses proxies for loopback, exactly where the canary lives). If
the proxy cannot start or the browser is missing, rendering refuses to start (exit 2).

In the browser, images, media and fonts are aborted (media reach the pipeline only
through Scrapy and its gate) and so is any URL that is not http(s) — scrapy-playwright's
route handler calls `abort_request` on every request of every page. Contexts are
scrapy-playwright's default: non-persistent, no user data dir, no screenshots. Only page
requests are rendered (`RenderPagesMiddleware`); media and robots.txt stay plain Scrapy.

A page's HTML is taken once the page has settled, within the policy's per-page budget
(`[render] settle_ms`, `max_render_s`; see `crawler.engine.render_settle`); a page cut at the
budget is flagged `render-cut` and recorded with `parse_incomplete`.

Settings read: `TAKEDOWN_POLICY` (`[network]`, `[render]`), `TAKEDOWN_TEST_HOSTS`,
`DNS_TIMEOUT`, `TAKEDOWN_CHROMIUM_PATH`. Stats (`RenderProxyStats`):
`render/proxy/connected`, `render/proxy/refused`, `render/proxy/refused/<reason>`; (the
middleware) `render/settle/settled`, `render/settle/cut`.
"""

from __future__ import annotations

import logging
import os
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.settings import BaseSettings

from crawler.engine import render_settle
from crawler.engine.middlewares import request_kind
from crawler.errors import UsageError
from crawler.net.egress_proxy import EgressProxy
from crawler.net.resolver import FilteringResolver, address_policy, policy_from_settings

logger = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--renderer-process-limit=2",
    # WebRTC may send UDP around any HTTP proxy: only proxied traffic is allowed.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"
ABORTED_RESOURCES = frozenset({"image", "media", "font"})

# The crawl's proxies by port: the add-on starts one before Scrapy builds its components,
# and the stats extension (built later, from frozen settings) finds it here.
_PROXIES: dict[int, EgressProxy] = {}


def check_browser(path: str | None) -> str:
    """The Chromium executable to launch, or `UsageError` naming why rendering refuses."""
    executable = path or CHROMIUM
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        raise UsageError(
            f"rendering (--render / render.javascript) refuses to start: no executable "
            f"Chromium at {executable} (install Debian's chromium; playwright install "
            "cannot download browsers here)"
        )
    return executable


def start_proxy(settings: BaseSettings) -> EgressProxy:
    """The crawl's egress proxy, listening; `UsageError` when it cannot start."""
    resolver = FilteringResolver(
        None,
        address_policy(policy_from_settings(settings)),
        settings.getdict("TAKEDOWN_TEST_HOSTS"),
        settings.getfloat("DNS_TIMEOUT", 10.0),
    )
    proxy = EgressProxy(resolver)
    try:
        port = proxy.start()
    except OSError as exc:
        raise UsageError(
            f"rendering refuses to start: the policy-enforcing egress proxy could not "
            f"listen on 127.0.0.1 ({exc}), and the browser may not go out without it"
        ) from exc
    _PROXIES[port] = proxy
    return proxy


def launch_options(executable: str, proxy_port: int) -> dict[str, Any]:
    args = [
        *CHROMIUM_ARGS,
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        "--proxy-bypass-list=<-loopback>",
    ]
    return {"executable_path": executable, "args": args, "headless": True}


def render_settings(settings: BaseSettings) -> dict[str, Any]:
    """Scrapy settings for a rendered crawl; starts the egress proxy (see module doc)."""
    executable = check_browser(settings.get("TAKEDOWN_CHROMIUM_PATH"))
    render = policy_from_settings(settings).render
    proxy = start_proxy(settings)
    port = int(proxy.server.server_address[1]) if proxy.server else 0
    return {
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        # The page's budget bounds the navigation too (Playwright's default is 30 s).
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": render.max_render_s * 1000,
        "TAKEDOWN_RENDER_SETTLE_MS": render.settle_ms,
        "TAKEDOWN_RENDER_MAX_S": render.max_render_s,
        "PLAYWRIGHT_LAUNCH_OPTIONS": launch_options(executable, port),
        "PLAYWRIGHT_ABORT_REQUEST": "crawler.engine.render.abort_request",
        "PLAYWRIGHT_MAX_CONTEXTS": 1,
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": 2,
        "TAKEDOWN_RENDER_PROXY_PORT": port,
    }


def apply(settings: BaseSettings) -> None:
    """Set `render_settings`, route http(s) through scrapy-playwright's handler and wire
    the page marker and the stats extension (called by the add-on)."""
    for name, value in render_settings(settings).items():
        settings.set(name, value, "addon")
    # DOWNLOAD_HANDLERS is pinned in crawler.engine.settings at a higher priority than the add-on.
    handlers = dict(settings.getdict("DOWNLOAD_HANDLERS"))
    handlers.update({"http": HANDLER, "https": HANDLER})
    settings.set("DOWNLOAD_HANDLERS", handlers, settings.getpriority("DOWNLOAD_HANDLERS") or 0)
    from crawler.engine.addon import RENDER_COMPONENTS, install

    install(settings, RENDER_COMPONENTS)


def preflight(chromium_path: str | None) -> None:
    """Refuse early (before a run row is written) when rendering cannot start."""
    check_browser(chromium_path)


def abort_request(request: Any) -> bool:
    """scrapy-playwright's `PLAYWRIGHT_ABORT_REQUEST`: True aborts the browser request."""
    if request.resource_type in ABORTED_RESOURCES:
        return True
    return not str(request.url).lower().startswith(("http://", "https://"))


class RenderPagesMiddleware:
    """Marks page requests for rendering; media and robots.txt stay plain Scrapy.

    Each rendered page waits to settle (`crawler.engine.render_settle`); a page cut at the
    budget leaves with the response flag `render-cut`, a stat and a warning.

    A rendered response carries the address of the socket Playwright saw, which is the
    egress proxy on loopback; it is replaced by the address the proxy connected to for
    that host (already judged there), so the address check and the evidence see the
    server's address. It sits above the address check so its `process_response` runs
    first."""

    def __init__(
        self,
        proxy: EgressProxy | None,
        crawler: Crawler | None = None,
        settle_ms: int = 500,
        max_render_s: float = 15.0,
    ) -> None:
        self.proxy = proxy
        self.crawler = crawler
        self.settle_ms, self.max_render_s = settle_ms, max_render_s

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RenderPagesMiddleware:
        settings = crawler.settings
        return cls(
            _PROXIES.get(settings.getint("TAKEDOWN_RENDER_PROXY_PORT")),
            crawler,
            settings.getint("TAKEDOWN_RENDER_SETTLE_MS", 500),
            settings.getfloat("TAKEDOWN_RENDER_MAX_S", 15.0),
        )

    def process_request(self, request: Request, spider: Any = None) -> None:
        if request_kind(request) == "page":
            request.meta.setdefault("playwright", True)
            if request.meta["playwright"]:  # fresh on every attempt (retries copy meta)
                render_settle.attach(request.meta, self.settle_ms, self.max_render_s)

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        if not request.meta.get("playwright"):
            return response
        host = (urlsplit(response.url).hostname or "").rstrip(".")
        address = self.proxy.addresses.get(host) if self.proxy else None
        flags = list(response.flags)
        settle = render_settle.result(request.meta)
        if settle is not None and (settle.cut or settle.settled):
            self._count("render/settle/cut" if settle.cut else "render/settle/settled")
        if settle is not None and settle.cut:
            flags.append("render-cut")
            logger.warning(
                "rendered page %s had not settled at the %g s render budget "
                "([render] max_render_s): its HTML was taken as it stood, the page is "
                "recorded with parse_incomplete",
                response.url,
                self.max_render_s,
            )
        return response.replace(ip_address=ip_address(address) if address else None, flags=flags)

    def _count(self, key: str) -> None:
        stats = self.crawler.stats if self.crawler is not None else None
        if stats is not None:
            stats.inc_value(key)


class RenderProxyStats:
    """Copies the egress proxy's counters into the crawl stats when the spider closes.

    The proxy itself lives until the process ends (daemon threads): the browser may
    still be closing pages after `spider_closed`."""

    def __init__(self, crawler: Crawler, proxy: EgressProxy | None) -> None:
        self.crawler = crawler
        self.proxy = proxy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RenderProxyStats:
        port = crawler.settings.getint("TAKEDOWN_RENDER_PROXY_PORT")
        ext = cls(crawler, _PROXIES.get(port))
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider: Any = None) -> None:
        stats, proxy = self.crawler.stats, self.proxy
        if proxy is None or stats is None:
            return
        stats.set_value("render/proxy/connected", proxy.connected)
        stats.set_value("render/proxy/refused", sum(proxy.refused.values()))
        for reason, count in proxy.refused.items():
            stats.set_value(f"render/proxy/refused/{reason}", count)
