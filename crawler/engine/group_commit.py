"""Group commit: one thread applies queued jobs in batches, each batch one call.

Used by the store pipeline so pages and media are written many per transaction (the
frontier writer does the same for its own rows): under the GIL, a transaction per item
cost the reactor as much as parsing. Jobs are applied in submission order; everything
queued while one batch ran goes into the next one, up to `max_batch`, so a quiet crawl
writes each item at once and a busy one amortises the commit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")
Done = Callable[[object], None]  # receives the job's result or its exception

_STOP = object()


class GroupCommit(Generic[J, R]):
    """`apply(jobs)` returns one result or exception per job, in order."""

    def __init__(
        self,
        apply: Callable[[Sequence[J]], Sequence[R | BaseException]],
        name: str,
        max_batch: int = 200,
    ) -> None:
        self.apply = apply
        self.max_batch = max_batch
        self.queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, job: J, done: Done) -> None:
        """Queue *job*; *done* is called from the writer thread with its outcome."""
        self.queue.put((job, done))

    def close(self) -> None:
        """Apply everything queued, then stop (blocking: call it off the reactor)."""
        self.queue.put(_STOP)
        self.thread.join()

    def _run(self) -> None:
        while True:
            batch: list[tuple[J, Done]] = []
            entry = self.queue.get()
            while entry is not _STOP:
                batch.append(entry)  # type: ignore[arg-type]
                if len(batch) >= self.max_batch:
                    break
                try:
                    entry = self.queue.get_nowait()
                except queue.Empty:
                    break
            self._apply(batch)
            if entry is _STOP:
                return

    def _apply(self, batch: list[tuple[J, Done]]) -> None:
        if not batch:
            return
        try:
            results: Sequence[object] = self.apply([job for job, _ in batch])
        except BaseException as exc:  # noqa: BLE001 - every job learns the failure
            results = [exc] * len(batch)
        for (_, done), result in zip(batch, results, strict=True):
            try:
                done(result)
            except Exception:  # noqa: BLE001 - a callback must not stop the writer
                logger.exception("group commit callback failed")


def submit_on_reactor(writer: Any, job: object) -> Deferred[Any]:
    """*job* queued on *writer* (a `GroupCommit` or a `ProcessGroupCommit`): a Deferred
    fired on the reactor with its result, or errback'd with its exception."""
    from twisted.internet import reactor

    deferred: Deferred[Any] = Deferred()

    def done(result: object) -> None:
        if isinstance(result, BaseException):
            reactor.callFromThread(deferred.errback, Failure(result))
        else:
            reactor.callFromThread(deferred.callback, result)

    writer.submit(job, done)
    return deferred
