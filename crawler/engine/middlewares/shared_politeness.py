"""Per-host politeness across every worker sharing one Redis (scaled-out crawls).

Each worker's own `PolitenessMiddleware` limits its slot per host; this adds the global
limit, so N workers together never exceed `politeness.per_host_concurrency` requests in
flight to one host nor start requests to it closer than the policy delay:

- a slot: a member of the sorted set ``td:host:<host>:slots`` scored by its expiry, taken
  by one Lua script only while fewer than the limit are live, released when the
  response or error comes back; a worker killed mid-download frees its slot when it
  expires (`DOWNLOAD_TIMEOUT` + 5 s);
- spacing: ``td:host:<host>:next`` is the earliest start of the next request; the script
  reserves a start time and pushes it on by the delay in force, the larger of
  `DOWNLOAD_DELAY` and the host's floor ``td:host:<host>:floor`` (robots.txt
  ``Crawl-delay`` and ``Retry-After`` arrive through the `host_delay` signal in one worker
  and hold for all).

The keys are per host, not per job: two jobs on the same Redis share the limits too.
It runs last on the request path (after the frontier lease), so a request holds a slot
only while it is about to be, or being, downloaded. robots.txt fetches take slots too.
Each worker still fetches and parses robots.txt itself (RFC 9309 semantics of
`crawler.engine.middlewares.robots`, unchanged): N fetches of that file per host and job.

Settings read: `TAKEDOWN_REDIS_URL` (unset: not configured), `DOWNLOAD_DELAY`,
`CONCURRENT_REQUESTS_PER_DOMAIN`, `DOWNLOAD_TIMEOUT`.
Stats: `politeness/shared/waits` (requests that waited for a slot),
`politeness/shared/spaced` (requests that waited for the delay), `politeness/shared/error`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import task

from crawler.engine.middlewares import host_delay
from crawler.net.urls import InvalidURL, url_host

logger = logging.getLogger(__name__)

PREFIX = "td:host:"
POLL_S = 0.03

# KEYS: slots, next, floor. ARGV: token, limit, hold_ms, delay_ms.
# Returns -1 when every slot is taken, else the milliseconds to wait before starting.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return -1 end
local delay = tonumber(ARGV[4])
local floor = tonumber(redis.call('GET', KEYS[3]) or '0')
if floor > delay then delay = floor end
local start = tonumber(redis.call('GET', KEYS[2]) or '0')
if start < now then start = now end
redis.call('ZADD', KEYS[1], start + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], start - now + tonumber(ARGV[3]))
if delay > 0 then redis.call('SET', KEYS[2], start + delay, 'PX', start - now + delay + 1000) end
return start - now
"""

# KEYS: floor. ARGV: delay_ms, ttl_ms. Raises the floor only.
_RAISE_FLOOR = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
return 0
"""

FOREVER_MS = 24 * 3600 * 1000


class SharedPolitenessMiddleware:
    def __init__(
        self, crawler: Crawler, client: redis.Redis, limit: int, delay_s: float, hold_s: float
    ) -> None:
        self.crawler = crawler
        self.client = client
        self.limit = max(1, limit)
        self.delay_ms = int(delay_s * 1000)
        self.hold_ms = int(hold_s * 1000)
        self.acquire = client.register_script(_ACQUIRE)
        self.raise_script = client.register_script(_RAISE_FLOOR)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedPolitenessMiddleware:
        settings = crawler.settings
        if not settings.get("TAKEDOWN_REDIS_URL"):
            raise NotConfigured("TAKEDOWN_REDIS_URL must be set to share politeness")
        client = redis.Redis.from_url(
            settings["TAKEDOWN_REDIS_URL"], socket_timeout=10, socket_connect_timeout=5
        )
        mw = cls(
            crawler,
            client,
            settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 4),
            settings.getfloat("DOWNLOAD_DELAY"),
            settings.getfloat("DOWNLOAD_TIMEOUT", 20.0) + 5.0,
        )
        crawler.signals.connect(mw.raise_floor, signal=host_delay)
        return mw

    def inc(self, key: str) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"politeness/shared/{key}")

    async def process_request(self, request: Request, spider: Any = None) -> None:
        host = self._host(request)
        if host is None:
            return None
        token = uuid.uuid4().hex
        keys = [f"{PREFIX}{host}:{name}" for name in ("slots", "next", "floor")]
        waited = False
        while True:
            wait_ms = self._try(keys, token)
            if wait_ms >= 0:
                break
            waited = True
            await _sleep(POLL_S)
        if waited:
            self.inc("waits")
        request.meta["td_host_token"] = (keys[0], token)
        if wait_ms > 0:
            self.inc("spaced")
            await _sleep(wait_ms / 1000)
        return None

    def _try(self, keys: list[str], token: str) -> int:
        try:
            return int(
                self.acquire(keys=keys, args=[token, self.limit, self.hold_ms, self.delay_ms])
            )
        except redis.RedisError as exc:
            # Without the shared limit this worker must not fetch at all (S-05); the
            # scheduler stops the crawl on the same outage.
            self.inc("error")
            raise IgnoreRequest(f"shared politeness unavailable: {exc}") from exc

    def _host(self, request: Request) -> str | None:
        slot = request.meta.get("download_slot")
        if slot:
            return str(slot)
        try:
            return url_host(request.url)
        except InvalidURL:
            return None

    def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: Exception, spider: Any = None) -> None:
        self._release(request)
        return None

    def _release(self, request: Request) -> None:
        held = request.meta.pop("td_host_token", None)
        if held is None:
            return
        try:
            self.client.zrem(held[0], held[1])
        except redis.RedisError as exc:
            logger.warning("host slot not released (it expires): %s", exc)

    def raise_floor(
        self, host: str, delay: float, reason: str = "", duration: float | None = None
    ) -> None:
        ttl_ms = FOREVER_MS if duration is None else int(duration * 1000)
        try:
            self.raise_script(keys=[f"{PREFIX}{host}:floor"], args=[int(delay * 1000), ttl_ms])
        except redis.RedisError as exc:
            logger.warning("host delay for %s not shared: %s", host, exc)


async def _sleep(seconds: float) -> None:
    from twisted.internet import reactor

    await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))
