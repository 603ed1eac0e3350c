"""A Scrapy scheduler on the shared Redis frontier (`SCHEDULER` in a scaled-out crawl).

New requests (seeds, links, media) go to the job's shared queue as JSON, once per
fingerprint across all workers; a worker takes one with `LMOVE` onto its processing
list and acknowledges it only after the database frontier row of that request is
terminal (the frontier writer's commit hook), so a worker killed at any moment loses
nothing: the reaper in every other worker returns its list once its heartbeat expires
(S-03). Continuations of a request this worker holds (redirects, retries) stay in a
local queue: if the worker dies, the original entry is fetched again from the start.

The job ends when every queue and every processing list is empty for
`TAKEDOWN_REDIS_IDLE_GRACE` seconds; until then an idle worker keeps polling
(`spider_idle` raises `DontCloseSpider`). A Redis error stops the crawl with the
finish reason ``redis-unavailable`` (S-05): what was fetched is recorded by the
database frontier, what was not stays there for `--resume`.

Redis calls are short and synchronous on the reactor thread (sub-millisecond on a
private network); acknowledgements run on the frontier writer's thread.

Settings read: `TAKEDOWN_REDIS_URL`, `TAKEDOWN_REDIS_JOB` (the key prefix),
`TAKEDOWN_WORKER_ID`, `TAKEDOWN_REDIS_HEARTBEAT_TTL` (seconds, default 15),
`TAKEDOWN_REDIS_IDLE_GRACE` (seconds, default 2).
Stats: `scheduler/redis/pushed`, `.../duplicate`, `.../popped`, `.../acked`,
`.../local`, `.../bad-entry`, `.../reaped`, `.../orphans`, `.../error`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.task import LoopingCall

from crawler.engine.frontier import Entry, FrontierWriter, fingerprint
from crawler.engine.middlewares import request_kind
from crawler.engine.middlewares.frontier import FrontierMiddleware
from crawler.net.urls import InvalidURL
from crawler.scaleout.redis_frontier import CALLBACKS, ERRBACKS, META_FIELDS, JobStore, Wire, decode

logger = logging.getLogger(__name__)

POKE_S = 0.2  # how often an idle worker looks at the shared queue again
ORPHAN_S = 10.0  # held entries of an idle worker are given up after this long


def wire_of(request: Request) -> Wire | None:
    """*request* as shareable data, or None when it cannot travel (kept local)."""
    callback = _name(request.callback)
    errback = _name(request.errback)
    if callback not in CALLBACKS or errback not in ERRBACKS or request.method != "GET":
        return None
    meta = tuple(
        sorted(
            (key, request.meta[key])
            for key, kind in META_FIELDS.items()
            if type(request.meta.get(key)) is kind
        )
    )
    return Wire(request.url, request.priority, callback, errback, meta, request.dont_filter)


def request_of(wire: Wire, spider: Spider) -> Request:
    """A request again; callbacks only by whitelisted name (`CALLBACKS`, `ERRBACKS`)."""
    return Request(
        wire.url,
        callback=getattr(spider, wire.callback or "parse_page"),
        errback=getattr(spider, wire.errback or "page_failed"),
        meta=wire.meta_dict(),
        priority=wire.priority,
        dont_filter=wire.dont_filter,
    )


def _name(func: Callable[..., Any] | None) -> str | None:
    return getattr(func, "__name__", None) if func is not None else None


class RedisScheduler:
    def __init__(self, crawler: Crawler, store: JobStore, ttl_s: float, grace_s: float) -> None:
        self.crawler = crawler
        self.store = store
        self.ttl_s = ttl_s
        self.grace_s = grace_s
        self.spider: Spider | None = None
        self.local: list[tuple[int, int, Request]] = []
        self.order = itertools.count()
        self.held: dict[str, bytes] = {}  # fingerprint -> the entry on our processing list
        self.lock = threading.Lock()
        self.writer: FrontierWriter | None = None
        self.failed: str | None = None
        self.idle_since: float | None = None
        self.orphan_since: float | None = None
        self.loops: list[LoopingCall] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedisScheduler:
        settings = crawler.settings
        client = redis.Redis.from_url(
            settings["TAKEDOWN_REDIS_URL"], socket_timeout=10, socket_connect_timeout=5
        )
        store = JobStore(client, settings["TAKEDOWN_REDIS_JOB"], settings["TAKEDOWN_WORKER_ID"])
        scheduler = cls(
            crawler,
            store,
            settings.getfloat("TAKEDOWN_REDIS_HEARTBEAT_TTL", 15.0),
            settings.getfloat("TAKEDOWN_REDIS_IDLE_GRACE", 2.0),
        )
        crawler.signals.connect(scheduler.on_idle, signal=signals.spider_idle)
        return scheduler

    def inc(self, key: str, by: int = 1) -> None:
        if by and self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"scheduler/redis/{key}", by)

    # --- lifecycle ----------------------------------------------------------------------

    def open(self, spider: Spider) -> None:
        self.spider = spider
        self._hook_frontier()
        self._redis(self.store.beat, self.ttl_s)
        for func, every in ((self._heartbeat, self.ttl_s / 4), (self._poke, POKE_S)):
            loop = LoopingCall(func)
            loop.start(every, now=False)
            self.loops.append(loop)

    def _hook_frontier(self) -> None:
        """Acknowledge entries when the frontier writer commits their terminal state."""
        frontier = self.crawler.get_spider_middleware(FrontierMiddleware)
        if frontier is None:
            return
        self.writer = frontier.writer
        previous = frontier.writer.on_commit

        def on_commit(fps: list[str]) -> None:
            if previous is not None:
                previous(fps)
            self._acked(fps)

        frontier.writer.on_commit = on_commit

    def close(self, reason: str) -> None:
        for loop in self.loops:
            if loop.running:
                loop.stop()
        if reason == "finished" and not self.failed:
            # Whatever is still held had no terminal state: left for the reaper.
            self._redis(self.store.leave, False)

    # --- the engine's interface ---------------------------------------------------------

    def has_pending_requests(self) -> bool:
        if self.local:
            return True
        return bool(not self.failed and self._redis(self.store.pending))

    def __len__(self) -> int:
        return len(self.local) + int(self._redis(self.store.pending) or 0)

    def enqueue_request(self, request: Request) -> bool:
        fp = request.meta.get("td_fp")
        kind = request_kind(request)
        if kind == "robots" or not fp:
            return self._keep_local(request)
        if fp in self.held:
            return self._continuation(request, fp, kind)
        wire = wire_of(request)
        if wire is None:
            return self._keep_local(request)
        return self._share(wire, fp)

    def _share(self, wire: Wire, fp: str) -> bool:
        if self.failed:
            return True  # recorded queued in the database: `--resume` fetches it
        verdict = "new" if wire.dont_filter else self._redis(self.store.add_new, fp)
        if verdict == "seen":
            self.inc("duplicate")
            return True  # another worker queued it: its row is the same row
        if verdict == "redirected":
            return False  # fetched as a redirect target: dropped, as a single process does
        if verdict is not None:
            self._redis(self.store.push, wire)
            self.inc("pushed")
        return True

    def _continuation(self, request: Request, fp: str, kind: str) -> bool:
        """A redirect or retry of an entry this worker holds: kept local."""
        if request.dont_filter:
            return self._keep_local(request)
        try:
            target = fingerprint(request.url, kind)
        except InvalidURL:
            return False
        if target != fp and not self._redis(self.store.redirect_target_new, target):
            return False  # a redirect to something queued or fetched already
        return self._keep_local(request)

    def _keep_local(self, request: Request) -> bool:
        heapq.heappush(self.local, (-request.priority, next(self.order), request))
        self.inc("local")
        return True

    def next_request(self) -> Request | None:
        if self.local:
            return heapq.heappop(self.local)[2]
        while not self.failed:
            raw = self._redis(self.store.take)
            if raw is None:
                return None
            request = self._admit(raw)
            if request is not None:
                return request
        return None

    def _admit(self, raw: bytes) -> Request | None:
        """The request in *raw*, now held by this worker; None for a bad entry."""
        wire = decode(raw)
        request = None
        if wire is not None and self.spider is not None:
            try:
                request = request_of(wire, self.spider)
                fp = request.meta.get("td_fp") or fingerprint(wire.url, request_kind(request))
            except (ValueError, InvalidURL):
                request = None
        if request is None:
            self._bad(raw)
            return None
        if fp in self.held:
            self._redis(self.store.ack, [raw])  # the same entry twice: once is enough
            return None
        self._hold(request, fp, raw)
        return request

    def _hold(self, request: Request, fp: str, raw: bytes) -> None:
        request.meta["td_fp"] = fp
        with self.lock:
            self.held[fp] = raw
        if self.writer is not None:
            # The row may not be committed yet by the worker that found the link: insert
            # it (a no-op when it exists) ahead of our own state changes.
            kind, depth = request_kind(request), int(request.meta.get("depth", 0))
            self.writer.queued(Entry(request.url, kind, depth, request.meta.get("page_url"), fp))
        self.inc("popped")

    def _bad(self, raw: bytes) -> None:
        """S-04: an entry that is not our JSON (a pickle, garbage) is counted and dropped."""
        logger.warning("bad entry in the shared queue dropped: %r", raw[:80])
        self.inc("bad-entry")
        self._redis(self.store.ack, [raw])
        self._redis(self.store.count_bad)

    # --- acknowledgements (frontier writer thread) ---------------------------------------

    def _acked(self, fps: list[str]) -> None:
        with self.lock:
            raws = [raw for fp in fps if (raw := self.held.pop(fp, None)) is not None]
        if not raws:
            return
        try:
            self.store.ack(raws)
        except redis.RedisError as exc:
            from twisted.internet import reactor

            reactor.callFromThread(self._fail, exc)
            return
        self.inc("acked", len(raws))

    # --- idle, heartbeat, failure -------------------------------------------------------

    def on_idle(self, spider: Spider | None = None) -> None:
        """Keep an idle worker open while the job is not finished (the engine polls)."""
        if self.failed:
            return
        now = time.monotonic()
        if self._holding_orphans(now) or self._redis(self.store.busy):
            self.idle_since = None
            raise DontCloseSpider
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since < self.grace_s and not self.failed:
            raise DontCloseSpider

    def _holding_orphans(self, now: float) -> bool:
        """Whether we hold entries while idle; after `ORPHAN_S` they are given up (their
        database rows stay unfinished, so `--resume` still fetches them)."""
        with self.lock:
            holding = list(self.held.values())
        if not holding:
            self.orphan_since = None
            return False
        if self.orphan_since is None:
            self.orphan_since = now
        elif now - self.orphan_since > ORPHAN_S:
            logger.warning("%d entries never finished; given up", len(holding))
            with self.lock:
                self.held.clear()
            self._redis(self.store.ack, holding)
            self.inc("orphans", len(holding))
        return True

    def _heartbeat(self) -> None:
        self._redis(self.store.beat, self.ttl_s)
        self.inc("reaped", int(self._redis(self.store.reap) or 0))

    def _poke(self) -> None:
        """The engine asks the scheduler again only every 5 s when it returned nothing;
        new shared work should start sooner."""
        slot = getattr(self.crawler.engine, "_slot", None)
        nextcall = getattr(slot, "nextcall", None)
        if nextcall is not None and not self.failed:
            nextcall.schedule()

    def _redis(self, func: Callable[..., Any], *args: Any) -> Any:
        try:
            return func(*args)
        except redis.RedisError as exc:
            self._fail(exc)
            return None

    def _fail(self, exc: Exception) -> None:
        if self.failed:
            return
        self.failed = f"Redis unreachable: {exc}"
        logger.error("shared frontier lost (%s): the crawl stops", exc)
        self.inc("error")
        if self.crawler.stats is not None:
            self.crawler.stats.set_value("scheduler/redis/failure", str(exc)[:300])
        engine = self.crawler.engine
        if engine is not None:
            deferred_from_coro(engine.close_spider_async(reason="redis-unavailable"))
