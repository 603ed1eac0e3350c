"""robots.txt per RFC 9309, replacing Scrapy's RobotsTxtMiddleware (R-01..R-06).

Scrapy 2.19's middleware fails open (a 503 parses as "no rules", a network error leaves
no parser) and checks only the first of several requests waiting for a host's file, so
disallowed seeds were fetched. Here every request for a (scheme, host, port) waits for
that origin's rules and is then checked itself. Outcomes:

- 2xx: parsed off the reactor, at most `TAKEDOWN_ROBOTS_MAX_BYTES` (the rest of a bigger
  file is cut at a line end, so its early rules hold); UTF-16 or otherwise undecodable
  text counts as unreachable: disallow all. An HTML page or binary served with 200 has
  no rules: allow all (documented, deterministic).
- 4xx other than 429, a redirect chain past `REDIRECT_MAX_TIMES`, or a redirect the
  scope gate refuses: "unavailable", allow all (RFC 9309 2.3.1.3).
- 5xx, 429, timeout, reset, DNS failure: disallow all while retrying after each of
  `TAKEDOWN_ROBOTS_RETRY_DELAYS` seconds; still failing, the origin stays disallowed.
- ``Crawl-delay`` becomes the host's minimum delay (`host_delay` signal); above
  `TAKEDOWN_ROBOTS_MAX_CRAWL_DELAY` seconds the host is skipped with a reason.
- Rules are cached per origin for 24 hours.

Settings read: `TAKEDOWN_POLICY` (`obey_robots`, `user_agent`), the three above.
Stats: `robots/fetched`, `robots/status/<code>`, `robots/retry`, `robots/truncated`,
`robots/undecodable`, `robots/unreachable`, `robots/unavailable`,
`policy/blocked/robots`, `policy/blocked/robots-unreachable`,
`policy/blocked/crawl-delay`.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from protego import Protego
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured, StopDownload
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import defer, task, threads

from crawler.engine.middlewares import PolicyBlocked, host_delay, request_kind
from crawler.engine.middlewares.scope import block
from crawler.net.resolver import policy_from_settings
from crawler.net.urls import InvalidURL, downloader_split, url_host

logger = logging.getLogger(__name__)

RULES_TTL_S = 24 * 3600
ROBOTS_PRIORITY = 1000


@dataclass(frozen=True)
class Rules:
    """One origin's robots.txt outcome."""

    parser: Protego | None  # None: no rules (allow all) unless `unreachable`
    unreachable: bool = False
    fetched_at: float = 0.0

    def refusal(self, url: str, user_agent: str, max_delay: float) -> str | None:
        if self.unreachable:
            return "robots-unreachable"
        if self.parser is None:
            return None
        if not self.parser.can_fetch(url, user_agent):
            return "robots"
        delay = self.parser.crawl_delay(user_agent)
        return "crawl-delay" if delay is not None and delay > max_delay else None


def _reactor() -> Any:
    from twisted.internet import reactor  # imported late: Scrapy installs the reactor

    return reactor


def float_list(value: Any) -> list[float]:
    """A list setting given as a list, a JSON list or comma-separated text."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("[") else value.split(",")
    return [float(v) for v in value or [] if str(v).strip()]


def origin_of(url: str) -> str:
    parts = downloader_split(url)
    host = url_host(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}:{port}"


def decode_robots(body: bytes, truncated: bool) -> str | None:
    """The text of a robots.txt body, or None when it cannot be read as UTF-8."""
    if truncated:
        body = body[: body.rfind(b"\n") + 1]
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in body[:4096]:
        return None
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


class RobotsTxtMiddleware:
    def __init__(self, crawler: Crawler, user_agent: str, settings: Any) -> None:
        self.crawler = crawler
        self.user_agent = user_agent
        self.max_bytes = settings.getint("TAKEDOWN_ROBOTS_MAX_BYTES", 512 * 1024)
        self.retry_delays = float_list(settings.get("TAKEDOWN_ROBOTS_RETRY_DELAYS"))
        self.max_delay = settings.getfloat("TAKEDOWN_ROBOTS_MAX_CRAWL_DELAY", 30.0)
        self.rules: dict[str, Rules] = {}
        self.waiters: dict[str, list[defer.Deferred[Rules]]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RobotsTxtMiddleware:
        policy = policy_from_settings(crawler.settings)
        if not policy.politeness.obey_robots:
            raise NotConfigured("politeness.obey_robots is false")
        mw = cls(crawler, policy.politeness.user_agent, crawler.settings)
        crawler.signals.connect(mw.bytes_received, signal=signals.bytes_received)
        return mw

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    async def process_request(self, request: Request, spider: Any = None) -> None:
        if request_kind(request) == "robots":
            return None
        try:
            origin = origin_of(request.url)
        except InvalidURL:
            return None  # the scope gate has already refused it
        rules = await self.rules_for(origin)
        reason = rules.refusal(request.url, self.user_agent, self.max_delay)
        if reason is not None:
            raise block(self.crawler, request, reason)
        self._announce_delay(request.url, rules)
        return None

    async def rules_for(self, origin: str) -> Rules:
        cached = self.rules.get(origin)
        if cached is not None and time.time() - cached.fetched_at < RULES_TTL_S:
            return cached
        waiter: defer.Deferred[Rules] = defer.Deferred()
        first = origin not in self.waiters
        self.waiters.setdefault(origin, []).append(waiter)
        if first:
            deferred_from_coro(self._load(origin))
        return await maybe_deferred_to_future(waiter)

    async def _load(self, origin: str) -> None:
        rules = None
        for attempt, pause in enumerate([0.0, *self.retry_delays]):
            if attempt:
                self.stats.inc_value("robots/retry")
                await maybe_deferred_to_future(task.deferLater(_reactor(), pause, lambda: None))
            rules = await self._fetch(origin)
            if rules is not None:
                break
        if rules is None:
            self.stats.inc_value("robots/unreachable")
            rules = Rules(None, unreachable=True, fetched_at=time.time())
        self.rules[origin] = rules
        for waiter in self.waiters.pop(origin, []):
            waiter.callback(rules)  # each waiter its own Deferred: each is checked

    async def _fetch(self, origin: str) -> Rules | None:
        """Rules, or None when the origin is unreachable for now (retry)."""
        request = Request(
            f"{origin}/robots.txt",
            priority=ROBOTS_PRIORITY,
            meta={"td_kind": "robots", "dont_retry": True, "td_robots_bytes": 0},
            dont_filter=True,
        )
        assert self.crawler.engine is not None
        try:
            response = await self.crawler.engine.download_async(request)
        except PolicyBlocked:
            self.stats.inc_value("robots/unavailable")
            return Rules(None, fetched_at=time.time())  # refused hop: unavailable
        except IgnoreRequest as exc:  # past REDIRECT_MAX_TIMES: unavailable too
            logger.info("robots.txt of %s unavailable: %s", origin, exc)
            self.stats.inc_value("robots/unavailable")
            return Rules(None, fetched_at=time.time())
        except Exception as exc:  # noqa: BLE001 - any network failure means unreachable
            logger.info("robots.txt of %s unreachable: %s", origin, exc)
            return None
        return await self._rules_from(response)

    async def _rules_from(self, response: Response) -> Rules | None:
        status = response.status
        self.stats.inc_value("robots/fetched")
        self.stats.inc_value(f"robots/status/{status}")
        if status == 429 or status >= 500:
            return None
        if not 200 <= status < 300:
            return Rules(None, fetched_at=time.time())  # 3xx past the cap, 4xx: allow
        truncated = "download_stopped" in response.flags
        if truncated:
            self.stats.inc_value("robots/truncated")
        text = decode_robots(response.body, truncated)
        if text is None:
            self.stats.inc_value("robots/undecodable")
            return Rules(None, unreachable=True, fetched_at=time.time())
        parser = await maybe_deferred_to_future(threads.deferToThread(Protego.parse, text))
        return Rules(parser, fetched_at=time.time())

    def bytes_received(self, data: bytes, request: Request, spider: Any = None) -> None:
        if request_kind(request) != "robots":
            return
        request.meta["td_robots_bytes"] = request.meta.get("td_robots_bytes", 0) + len(data)
        if request.meta["td_robots_bytes"] > self.max_bytes:
            raise StopDownload(fail=False)

    def _announce_delay(self, url: str, rules: Rules) -> None:
        if rules.parser is None:
            return
        delay = rules.parser.crawl_delay(self.user_agent)
        if delay:
            self.crawler.signals.send_catch_log(
                signal=host_delay, host=url_host(url), delay=float(delay), reason="crawl-delay"
            )
