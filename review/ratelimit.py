"""A rate limit per key, shared by every app process (previews and reveals per user).

A token bucket in the `rate_buckets` table: `limit` tokens, refilled at `limit` per
`window_s`; each allowed hit takes one. A burst of `limit` passes and the next is
refused, and over time no more than `limit` per window pass, whichever worker process
serves the request. The bucket row is locked for the read-modify-write (`FOR UPDATE` on
PostgreSQL; SQLite write transactions are exclusive), so concurrent hits never both
take the last token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crawler.db.models import RateBucket

_READ = (
    select(RateBucket.tokens, RateBucket.updated_at)
    .where(RateBucket.key == bindparam("k"))
    .with_for_update()
)
_WRITE = (
    update(RateBucket)
    .where(RateBucket.key == bindparam("k"))
    .values(tokens=bindparam("n_tokens"), updated_at=bindparam("now"))
)
_NEW = {
    name: insert(RateBucket)
    .values(key=bindparam("k"), tokens=bindparam("n_tokens"), updated_at=bindparam("now"))
    .on_conflict_do_nothing()
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


class RateLimiter:
    def __init__(self, limit: int, window_s: float) -> None:
        self._limit, self._rate = float(limit), limit / window_s

    def allow(self, session: Session, key: str, now: datetime) -> bool:
        """Take a token for `key` if one is left (inside the caller's write transaction)."""
        conn = session.connection()
        params = {"k": key[:128], "now": now, "n_tokens": self._limit}
        conn.execute(_NEW[conn.dialect.name], params)  # a full bucket on first use
        tokens, updated_at = conn.execute(_READ, params).one()
        elapsed = max((now - updated_at).total_seconds(), 0.0)
        tokens = min(self._limit, tokens + elapsed * self._rate)
        allowed = tokens >= 1.0
        conn.execute(_WRITE, {**params, "n_tokens": tokens - 1.0 if allowed else tokens})
        return allowed
