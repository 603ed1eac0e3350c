"""The crawl frontier in the database: what a killed crawl resumes from (S-01, S-02).

Scrapy's JOBDIR is not crash recovery (after SIGKILL its seen-set was empty), so the
`frontier` table is the truth. Each page or media request is recorded ``queued`` before
it is scheduled, ``leased`` when it reaches the downloader, and ``done``, ``failed`` or
``skipped`` when finished. A page becomes ``done`` only once its item is stored *and*
its links are recorded, and writes are applied strictly in order, so whatever prefix of
the write stream survives a crash never marks a page done before its children exist.

Writes are batched by one writer thread (a group commit: everything queued while the
previous transaction ran goes into the next one), off Scrapy's reactor, through a
bounded queue. Reads and the seeding done by the CLI are synchronous.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from crawler.db.models import FrontierEntry
from crawler.db.prepared import Insert, prepared
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.net.urls import canonical_url

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
BATCH = 1000
QUEUE_SIZE = 50_000
RESUMABLE = ("queued", "leased", "failed")
TERMINAL = ("done", "failed", "skipped")


def fingerprint(url: str, kind: str = "page") -> str:
    """Stable identity of a request: kind plus canonical URL (session ids stripped)."""
    return hashlib.sha256(f"{kind} {canonical_url(url)}".encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    url: str
    kind: str = "page"
    depth: int = 0
    parent_url: str | None = None
    fingerprint: str = ""

    def row(self, run_id: int) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "fingerprint": self.fingerprint or fingerprint(self.url, self.kind),
            "url": self.url,
            "kind": self.kind,
            "depth": self.depth,
            "parent_url": self.parent_url,
            "state": "queued",
        }


# --- synchronous helpers (CLI, resume) ---------------------------------------------------


_TABLE: Table = FrontierEntry.__table__  # type: ignore[assignment]


def _insert(insert: Insert) -> Any:
    return insert(_TABLE).on_conflict_do_nothing(index_elements=["run_id", "fingerprint"])


def record(session: Session, run_id: int, entries: Iterable[Entry]) -> None:
    """Insert *entries* as queued (one executemany; entries already there are kept)."""
    _record(session.connection(), run_id, entries)


def _record(conn: Connection, run_id: int, entries: Iterable[Entry]) -> None:
    rows = [entry.row(run_id) for entry in entries]
    if rows:
        conn.execute(prepared(conn, _insert), rows)


def requeue(db: Database, run_id: int) -> list[Entry]:
    """Everything of *run_id* not finished (queued, leased, failed), set back to queued."""
    with db.session() as session:
        where = (FrontierEntry.run_id == run_id) & FrontierEntry.state.in_(RESUMABLE)
        rows = session.execute(
            select(FrontierEntry).where(where).order_by(FrontierEntry.id)
        ).scalars()
        entries = [Entry(r.url, r.kind, r.depth, r.parent_url, r.fingerprint) for r in rows]
        session.execute(update(FrontierEntry).where(where).values(state="queued", worker=None))
    return entries


def fingerprints(db: Database, run_id: int) -> set[str]:
    with db.read_session() as session:
        query = select(FrontierEntry.fingerprint).where(FrontierEntry.run_id == run_id)
        return set(session.execute(query).scalars())


def done_pages(db: Database, run_id: int) -> list[str]:
    with db.read_session() as session:
        query = select(FrontierEntry.url).where(
            FrontierEntry.run_id == run_id,
            FrontierEntry.kind == "page",
            FrontierEntry.state == "done",
        )
        return list(session.execute(query).scalars())


def counts(db: Database, run_id: int) -> dict[str, int]:
    """``{"page/done": n, "media/failed": m, ...}`` for the run summary."""
    with db.read_session() as session:
        query = (
            select(FrontierEntry.kind, FrontierEntry.state, func.count())
            .where(FrontierEntry.run_id == run_id)
            .group_by(FrontierEntry.kind, FrontierEntry.state)
        )
        return {f"{kind}/{state}": int(n) for kind, state, n in session.execute(query)}


# --- the writer ---------------------------------------------------------------------------

_STOP = ("stop",)


class FrontierWriter:
    """Applies frontier writes in order from one thread, in batches; `error` on failure."""

    def __init__(
        self,
        db: Database,
        run_id: int,
        worker: str = "local",
        on_commit: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.db = db
        self.on_commit = on_commit  # called from the writer thread with finished fps
        self.run_id = run_id
        self.worker = worker
        self.queue: queue.Queue[tuple[Any, ...]] = queue.Queue(QUEUE_SIZE)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="frontier-writer", daemon=True)
        self.thread.start()

    def queued(self, entry: Entry) -> None:
        self.queue.put(("insert", entry))

    def mark(self, fp: str, state: str, reason: str | None = None) -> None:
        self.queue.put(("state", fp, state, reason))

    def close(self) -> None:
        """Flush everything and stop the thread (blocking: call it off the reactor)."""
        self.queue.put(_STOP)
        self.thread.join()

    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            ops = [op for op in batch if op is not _STOP]
            if ops and self.error is None:
                self._write(ops)
            if len(ops) != len(batch):
                return

    def _write(self, ops: list[tuple[Any, ...]]) -> None:
        try:
            # A bare connection: no ORM objects here, and the session's own bookkeeping
            # was a third of what remained of this thread's time.
            with self.db.begin() as conn:
                _record(conn, self.run_id, [op[1] for op in ops if op[0] == "insert"])
                for group in _state_groups(op for op in ops if op[0] == "state"):
                    self._apply_states(conn, group)
        except Exception as exc:  # noqa: BLE001 - kept and reported: the crawl must stop
            logger.error("frontier write failed: %s", exc)
            self.error = exc
            return
        finished = [op[1] for op in ops if op[0] == "state" and op[2] in TERMINAL]
        if finished and self.on_commit is not None:
            self.on_commit(finished)

    def _apply_states(self, conn: Connection, group: list[tuple[Any, ...]]) -> None:
        _, _, state, reason = group[0]
        params: dict[str, Any] = {"run": self.run_id, "fps": [op[1] for op in group]}
        params |= {"new_state": state, "new_reason": reason}
        if state == "leased":
            params |= {"new_worker": self.worker, "new_lease": utcnow() + LEASE}
            conn.execute(_LEASE, params)
        else:
            conn.execute(_SET_STATE, params)


# Built once: an ORM update per group (with its session synchronisation) was most of the
# writer's time.
_SET_STATE = (
    update(_TABLE)
    .where(
        _TABLE.c.run_id == bindparam("run"),
        _TABLE.c.fingerprint.in_(bindparam("fps", expanding=True)),
        _TABLE.c.state != "done",
    )
    .values(state=bindparam("new_state"), reason=bindparam("new_reason"))
)
_LEASE = _SET_STATE.values(
    worker=bindparam("new_worker"),
    lease_until=bindparam("new_lease"),
    attempts=_TABLE.c.attempts + 1,
)


def _state_groups(ops: Iterable[tuple[Any, ...]]) -> Iterable[list[tuple[Any, ...]]]:
    """Consecutive updates with the same state and reason, order kept."""
    group: list[tuple[Any, ...]] = []
    for op in ops:
        if group and (op[2], op[3]) != (group[0][2], group[0][3]):
            yield group
            group = []
        group.append(op)
    if group:
        yield group
