"""Scrapy settings for takedown (the `scrapy.cfg` default): safe values pinned in one place.

Hazard O-01: Scrapy's defaults start a telnet console and a remote-control server, accept
1 GiB bodies, keep cookies, follow 20 redirects, read `file:`, `data:`, `ftp:` and `s3:`
URLs and use proxies from the environment. Each is turned off or capped here. The
policy-dependent values (user agent, concurrency, delays, timeouts, media cap) and every
component's priority are set by `crawler.engine.addon.TakedownAddon` from `TAKEDOWN_POLICY`.

The suffix list for tldextract is never fetched: `crawler.net.urls` builds its extractor
with no suffix-list URLs, and the environment variable below covers any other import.
"""

from __future__ import annotations

import os

# Before anything imports tldextract through Scrapy: never download the suffix list.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

BOT_NAME = "takedown"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"
ADDONS = {"crawler.engine.addon.TakedownAddon": 0}

# --- listeners and state on disk: none -------------------------------------------------
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
HTTPCACHE_ENABLED = False
COOKIES_ENABLED = False
JOBDIR = None  # the database frontier is the truth (crawler.engine.frontier); never media on disk
FEEDS: dict[str, object] = {}
ITEM_PIPELINES: dict[str, int] = {}  # never Scrapy's file or image pipelines: bytes stay in memory

# --- the network ---------------------------------------------------------------------
TWISTED_DNS_RESOLVER = "crawler.net.resolver.FilteringResolver"
DNSCACHE_ENABLED = False  # every lookup filtered again: a rebinding name gains nothing
DNS_TIMEOUT = 10
DOWNLOAD_HANDLERS = {
    "http": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
    "https": "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler",
    "file": None,
    "data": None,
    "ftp": None,
    "s3": None,
}
HTTPPROXY_ENABLED = False  # proxies resolve names themselves (C-08); see crawler.engine.addon
TAKEDOWN_EGRESS_PROXY_ENFORCED = False
REDIRECT_MAX_TIMES = 5
METAREFRESH_MAXDELAY = 0  # only immediate meta refreshes: they are redirects too
RETRY_TIMES = 2
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
DOWNLOAD_FAIL_ON_DATALOSS = True  # a short body is an error, never hashed as whole

# --- sizes -----------------------------------------------------------------------------
PAGE_MAX_BYTES = 10 * 1024 * 1024
DOWNLOAD_MAXSIZE = PAGE_MAX_BYTES  # pages; media requests carry the policy cap in meta
DOWNLOAD_WARNSIZE = 0
MEMUSAGE_ENABLED = True
MEMUSAGE_LIMIT_MB = 2048
MEMUSAGE_WARNING_MB = 1536

# --- scheduling ------------------------------------------------------------------------
DOWNLOADER = "crawler.engine.downloader.BoundedDownloader"  # per-host concurrency bound (its doc)
CONCURRENT_REQUESTS = 16
CONCURRENT_ITEMS = 8  # the default 100 starts 100 tasks per response: CPU-bound here
DEPTH_LIMIT = 0  # depth is enforced by the scope gate on pages only (media one hop more)
ROBOTSTXT_OBEY = False  # replaced by crawler.engine.middlewares.robots (RFC 9309)
HTTPERROR_ALLOW_ALL = True  # 404 and 410 pages are recorded too
REACTOR_THREADPOOL_MAXSIZE = 10
LOG_LEVEL = "INFO"
LOG_INSTALL_ROOT_HANDLER = False  # crawler.logs formats every line (E-10: encoded, UTC)
STATS_DUMP = False

# Policy-derived settings (USER_AGENT, DOWNLOAD_TIMEOUT, DOWNLOAD_DELAY, per-host
# concurrency, AutoThrottle) are set by the add-on at "addon" priority, which any value
# here would override: keep them out of this module.

# --- takedown's own settings (documented where they are read) --------------------------
TAKEDOWN_POLICY = ""  # policy TOML text; empty means the contract defaults
TAKEDOWN_SEEDS: list[str] = []
TAKEDOWN_TEST_HOSTS: dict[str, str] = {}
TAKEDOWN_OUTLINK_CAP = 1000
TAKEDOWN_MEDIA_PER_PAGE_CAP = 1000
TAKEDOWN_ROBOTS_MAX_BYTES = 512 * 1024
TAKEDOWN_MAX_RESPONSE_HEADERS = 256  # H-03 (crawler.net.header_cap)
TAKEDOWN_MAX_HEADER_BYTES = 256 * 1024
TAKEDOWN_ROBOTS_RETRY_DELAYS = [300.0, 300.0, 300.0]
TAKEDOWN_ROBOTS_MAX_CRAWL_DELAY = 30.0
TAKEDOWN_RETRY_AFTER_MAX = 120.0
TAKEDOWN_DELAY_FLOOR = 0.25  # with AutoThrottle: it alone ramps to ~27 requests/s locally
TAKEDOWN_CHROMIUM_PATH = "/usr/bin/chromium"  # --render (crawler.engine.render)
TAKEDOWN_PROGRESS = "log"  # "live" (rich, on a terminal), "log" or "off"
