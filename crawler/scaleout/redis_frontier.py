"""The shared frontier of a scaled-out crawl in Redis: JSON requests, leases, a reaper.

Several crawl processes (on one machine or several) work on one job through these keys,
all under ``td:<run id>:<run start in ms>:`` (the run row names the job, so every
machine sharing the database finds the same keys and two databases never collide):

- ``q:reaped``, ``q:hi``, ``q:lo``: lists of requests waiting (media above pages, and
  work taken back from dead workers first). Entries are JSON (`encode_request`), never
  pickle: anyone able to write to Redis can inject a URL, which still passes every
  policy check, but never code (S-04). An entry that does not decode is counted
  (``bad``) and dropped.
- ``proc:<worker>``: what a worker has taken (`LMOVE`, atomic) and not yet finished;
  ``hb:<worker>``: its heartbeat, a key that expires. An entry leaves ``proc`` only
  once the database frontier row is terminal (`JobStore.ack`), so a worker killed at
  any moment loses nothing: `JobStore.reap` moves a dead worker's list back (S-03).
- ``seen``: fingerprints (`crawler.engine.frontier.fingerprint`) marked at enqueue: the shared
  duplicate filter. ``redirected``: redirect targets fetched without their own row.
- ``workers`` (set), ``job`` (hash: state), ``bad`` (counter).

The database frontier stays the truth for `--resume` and the summary; Redis is the
work queue. This module knows Redis and JSON; the Scrapy side is
`crawler.scaleout.redis_scheduler`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from crawler.errors import DependencyError

logger = logging.getLogger(__name__)

FORMAT = 1
MAX_ENTRY_BYTES = 16 * 1024
MAX_URL = 8192
CALLBACKS = frozenset({"parse_page", "parse_media"})
ERRBACKS = frozenset({"page_failed", "media_failed"})
# The only meta that travels between workers, with its type: nothing else is read back.
META_FIELDS: dict[str, type] = {"td_kind": str, "depth": int, "page_url": str, "td_fp": str}
BUCKETS = ("reaped", "hi", "lo")


# --- the JSON codec ---------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """A request as it travels between workers (plain data, no callables)."""

    url: str
    priority: int = 0
    callback: str | None = None
    errback: str | None = None
    meta: tuple[tuple[str, Any], ...] = ()
    dont_filter: bool = False

    @property
    def bucket(self) -> str:
        return "hi" if self.priority > 0 else "lo"

    def meta_dict(self) -> dict[str, Any]:
        return dict(self.meta)


def encode(wire: Wire) -> bytes:
    body = {
        "v": FORMAT,
        "url": wire.url,
        "method": "GET",
        "priority": wire.priority,
        "callback": wire.callback,
        "errback": wire.errback,
        "meta": wire.meta_dict(),
        "dont_filter": wire.dont_filter,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def decode(raw: bytes) -> Wire | None:
    """The request in *raw*, or None when it is anything but a well-formed entry."""
    if len(raw) > MAX_ENTRY_BYTES:
        return None
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None  # pickle, garbage: never interpreted any further
    if not isinstance(body, dict) or body.get("v") != FORMAT or body.get("method") != "GET":
        return None
    return _wire_of(body)


def _wire_of(body: dict[str, Any]) -> Wire | None:
    url, priority, meta = body.get("url"), body.get("priority"), body.get("meta")
    if (
        not isinstance(url, str)
        or len(url) > MAX_URL
        or not url.startswith(("http://", "https://"))
    ):
        return None
    if type(priority) is not int or not isinstance(meta, dict):
        return None
    callback, errback = body.get("callback"), body.get("errback")
    if callback not in CALLBACKS or errback not in ERRBACKS:
        return None
    if any(k not in META_FIELDS or type(v) is not META_FIELDS[k] for k, v in meta.items()):
        return None
    return Wire(
        url, priority, callback, errback, tuple(sorted(meta.items())), bool(body.get("dont_filter"))
    )


# --- the keys and the client ------------------------------------------------------------


def job_base(run_id: int, started_ms: int) -> str:
    return f"td:{run_id}:{started_ms}:"


def connect(url: str) -> redis.Redis:
    """A client for *url*, checked reachable (exit 3 naming Redis otherwise)."""
    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise DependencyError(f"Redis at {redacted(url)} is unreachable: {exc}") from exc
    return client


def redacted(url: str) -> str:
    """*url* without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user + ':***@' if user else '***@'}{host}"


# The first entry of the first non-empty bucket, moved onto the processing list (last key).
_POP_BUCKETS = """
for i = 1, #KEYS - 1 do
  local raw = redis.call('LMOVE', KEYS[i], KEYS[#KEYS], 'RIGHT', 'LEFT')
  if raw then return raw end
end
return false
"""


class JobStore:
    """One job's keys in Redis, as seen by one worker (`worker`)."""

    def __init__(self, client: redis.Redis, base: str, worker: str) -> None:
        self.r = client
        self.base = base
        self.worker = worker
        self._pop = client.register_script(_POP_BUCKETS)

    def key(self, name: str) -> str:
        return self.base + name

    def proc(self, worker: str | None = None) -> str:
        return self.key(f"proc:{worker or self.worker}")

    def hb(self, worker: str | None = None) -> str:
        return self.key(f"hb:{worker or self.worker}")

    # --- the job ---------------------------------------------------------------------

    def create(self) -> None:
        """A fresh job: whatever an earlier job under these keys left is removed."""
        self.drop()
        self.r.hset(self.key("job"), mapping={"state": "running"})

    def exists(self) -> bool:
        return bool(self.r.exists(self.key("job")))

    def drop(self) -> None:
        keys = list(self.r.scan_iter(match=self.base + "*", count=1000))
        for start in range(0, len(keys), 500):
            self.r.delete(*keys[start : start + 500])

    def mark_seen(self, fps: Iterable[str]) -> None:
        batch = list(fps)
        for start in range(0, len(batch), 5000):
            self.r.sadd(self.key("seen"), *batch[start : start + 5000])

    # --- the queue -------------------------------------------------------------------

    def push(self, wire: Wire) -> None:
        self.r.lpush(self.key(f"q:{wire.bucket}"), encode(wire))

    def push_many(self, wires: Iterable[Wire]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for wire in wires:
            pipe.lpush(self.key(f"q:{wire.bucket}"), encode(wire))
        pipe.execute()

    def add_new(self, fp: str) -> str:
        """``new``, ``seen`` (queued or fetched already) or ``redirected`` (fetched as
        another page's redirect target, with no row of its own)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.sadd(self.key("seen"), fp)
        pipe.sismember(self.key("redirected"), fp)
        added, redirected = pipe.execute()
        if not added:
            return "seen"
        return "redirected" if redirected else "new"

    def redirect_target_new(self, fp: str) -> bool:
        """Whether a redirect may go on to *fp*: neither queued nor fetched before."""
        if self.r.sismember(self.key("seen"), fp):
            return False
        return bool(self.r.sadd(self.key("redirected"), fp))

    def pending(self) -> int:
        pipe = self.r.pipeline(transaction=False)
        for bucket in BUCKETS:
            pipe.llen(self.key(f"q:{bucket}"))
        return int(sum(pipe.execute()))

    def take(self) -> bytes | None:
        """The next entry, moved atomically onto this worker's processing list."""
        keys = [self.key(f"q:{b}") for b in BUCKETS] + [self.proc()]
        raw = self._pop(keys=keys)
        return bytes(raw) if raw is not None else None

    def ack(self, raws: Iterable[bytes]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for raw in raws:
            pipe.lrem(self.proc(), 1, raw)  # type: ignore[arg-type]
        pipe.execute()

    def count_bad(self) -> None:
        self.r.incr(self.key("bad"))

    def bad(self) -> int:
        return int(self.r.get(self.key("bad")) or 0)

    # --- workers ---------------------------------------------------------------------

    def beat(self, ttl_s: float) -> None:
        pipe = self.r.pipeline(transaction=False)
        pipe.set(self.hb(), b"1", px=int(ttl_s * 1000))
        pipe.sadd(self.key("workers"), self.worker)
        pipe.execute()

    def leave(self, give_back: bool) -> int:
        """This worker stops: its unfinished entries back to the queue when *give_back*."""
        moved = self._move_back(self.worker) if give_back else 0
        self.r.delete(self.hb())
        self.r.srem(self.key("workers"), self.worker)
        return moved

    def workers(self) -> list[str]:
        return sorted(_text(w) for w in self.r.smembers(self.key("workers")))

    def reap(self) -> int:
        """Return the processing lists of workers whose heartbeat expired; entries moved."""
        moved = 0
        for worker in self.workers():
            if worker == self.worker or self.r.exists(self.hb(worker)):
                continue
            moved += self._move_back(worker)
            self.r.srem(self.key("workers"), worker)
            logger.warning("worker %s stopped beating: %d entries returned", worker, moved)
        return moved

    def _move_back(self, worker: str) -> int:
        moved = 0
        while self.r.lmove(self.proc(worker), self.key("q:reaped"), "RIGHT", "LEFT") is not None:
            moved += 1
        return moved

    def busy(self) -> int:
        """Entries waiting or held by any worker (dead ones too, until reaped)."""
        names = self.workers()
        pipe = self.r.pipeline(transaction=False)
        for bucket in BUCKETS:
            pipe.llen(self.key(f"q:{bucket}"))
        for worker in names:
            pipe.llen(self.proc(worker))
        return int(sum(pipe.execute()))

    def held_by_me(self) -> list[bytes]:
        return [_bytes(x) for x in self.r.lrange(self.proc(), 0, -1)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
