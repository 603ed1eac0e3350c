"""Group commit in a child process: the crawl's database writers off its GIL.

`crawler.engine.group_commit.GroupCommit` applies batches on a thread of the crawl process. The
crawl is CPU-bound on one core and holds the GIL nearly all the time, so every
millisecond a writer thread spends in SQLAlchemy is a millisecond the reactor does not
download or parse (docs/benchmarks.md, "Crawl"). `ProcessGroupCommit` has the same
`submit(job, done)` / `close()` interface, but the batches are applied by a child
process (spawned, not forked: the crawl process has threads and a reactor):

- The child builds its writer once from `factory` ("module:function", called with
  `config`): an object with `apply(jobs) -> results` (one result or exception per job,
  in order) and `close() -> value`.
- The parent pickles jobs on a sender thread (everything queued meanwhile goes in one
  message) and fires each job's `done` from a receiver thread, as `GroupCommit` does.
  Jobs are applied in submission order; everything the child has received while a
  batch ran goes into the next batch, up to `max_batch`.
- Exceptions come back as themselves when they survive pickling, else as
  `RemoteWriterError` carrying the original type's name and message.
- The child's log records are sent to the parent and logged there under their own
  logger names, so there is one log.
- If the child dies, every job in flight and every later submission fails with
  `WriterDied`; the pipeline stops the crawl (nothing more could be recorded).
- If the parent dies (even `kill -9`), the child sees the pipe close, applies what it
  had received, closes its writer and exits: nothing received is half-written, because
  every batch is one transaction. It ignores SIGINT and SIGTERM, which the parent
  handles (a Ctrl-C in a terminal reaches the whole process group).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Done = Callable[[object], None]
_STOP = object()


class Writer(Protocol):
    def apply(self, jobs: Sequence[Any]) -> Sequence[Any]: ...

    def close(self) -> Any: ...


class WriterDied(RuntimeError):
    """The writer process is gone: nothing more can be recorded in this crawl."""


class RemoteWriterError(RuntimeError):
    """An exception of the writer process that could not cross the pipe as itself."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.type_name, self.message))


class ProcessGroupCommit:
    """`GroupCommit` whose batches run in a child process; see the module docstring."""

    def __init__(self, factory: str, config: Any, name: str, max_batch: int = 200) -> None:
        self.name = name
        self.max_batch = max_batch
        self._pending: dict[int, Done] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self._dead: BaseException | None = None
        self._closed_value: Any = None
        self._outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.process, self._conn = _take_warm() or _spawn(())
        level = logging.getLogger().getEffectiveLevel()
        self._conn.send(("init", (factory, config, max_batch, level)))
        self._sender = threading.Thread(target=self._send_loop, name=f"{name}-send", daemon=True)
        self._receiver = threading.Thread(target=self._recv_loop, name=f"{name}-recv", daemon=True)
        self._sender.start()
        self._receiver.start()

    @property
    def alive(self) -> bool:
        return self._dead is None

    def submit(self, job: Any, done: Done) -> None:
        """Queue *job*; *done* is called from a parent thread with its outcome."""
        with self._lock:
            if self._dead is not None:
                failure: BaseException | None = self._dead
            else:
                failure = None
                self._seq += 1
                self._pending[self._seq] = done
                self._outbox.put((self._seq, job))
        if failure is not None:
            done(failure)

    def close(self, timeout: float | None = None) -> Any:
        """Apply everything queued, stop the child and return its writer's `close()`
        value (blocking: call it off the reactor)."""
        self._outbox.put(_STOP)
        self._sender.join(timeout)
        self._receiver.join(timeout)
        self.process.join(timeout)
        if self.process.is_alive():  # pragma: no cover - only on a stuck child
            self.process.kill()
            self.process.join()
        self._fail_pending(WriterDied(f"{self.name}: closed"))
        return self._closed_value

    def _send_loop(self) -> None:
        while True:
            entry = self._outbox.get()
            batch: list[object] = []
            stop = entry is _STOP
            if not stop:
                batch.append(entry)
                while True:
                    try:
                        entry = self._outbox.get_nowait()
                    except queue.Empty:
                        break
                    if entry is _STOP:
                        stop = True
                        break
                    batch.append(entry)
            try:
                if batch:
                    self._conn.send(("jobs", batch))
                if stop:
                    self._conn.send(("close", None))
                    return
            except (OSError, EOFError, ValueError) as exc:
                self._die(WriterDied(f"{self.name}: pipe closed ({type(exc).__name__})"))
                return
            except Exception as exc:  # noqa: BLE001 - an unpicklable job fails alone
                self._fail_unsendable(batch, exc)

    def _fail_unsendable(self, batch: list[Any], exc: Exception) -> None:
        # Send what can be sent one by one; fail the rest with the reason.
        for seq, job in batch:
            try:
                self._conn.send(("jobs", [(seq, job)]))
            except (OSError, EOFError, ValueError):
                self._die(WriterDied(f"{self.name}: pipe closed"))
                return
            except Exception as one:  # noqa: BLE001
                with self._lock:
                    done = self._pending.pop(seq, None)
                if done is not None:
                    done(RemoteWriterError(type(one).__name__, f"job not sent: {one}"))

    def _recv_loop(self) -> None:
        while True:
            try:
                kind, payload = self._conn.recv()
            except (EOFError, OSError):
                self._die(WriterDied(f"{self.name}: the writer process exited"))
                return
            except Exception as exc:  # noqa: BLE001 - results lost: nothing can be trusted
                logger.exception("%s: unreadable message from the writer", self.name)
                self._die(WriterDied(f"{self.name}: unreadable message ({type(exc).__name__})"))
                return
            if kind == "results":
                for seq, result in payload:
                    with self._lock:
                        done = self._pending.pop(seq, None)
                    if done is None:
                        continue
                    try:
                        done(result)
                    except Exception:  # noqa: BLE001 - a callback must not stop the reader
                        logger.exception("%s: callback failed", self.name)
            elif kind == "log":
                name, level, message = payload
                logging.getLogger(name).log(level, "%s", message)
            elif kind == "fatal":
                logger.error("%s: %s", self.name, payload)
                self._die(WriterDied(f"{self.name}: {payload}"))
                return
            elif kind == "closed":
                self._closed_value = payload
                return

    def _die(self, exc: BaseException) -> None:
        with self._lock:
            if self._dead is None:
                self._dead = exc
        self._fail_pending(exc)

    def _fail_pending(self, exc: BaseException) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for done in pending.values():
            try:
                done(exc)
            except Exception:  # noqa: BLE001
                logger.exception("%s: callback failed", self.name)


class NoStats:
    """The stats collector of a pipeline built inside a writer process: the parent's
    pipeline counts from the results, so the child's counts go nowhere."""

    def inc_value(self, *args: Any, **kwargs: Any) -> None:
        pass


# --- warm children -----------------------------------------------------------------

_warm: list[tuple[Any, Connection]] = []
_warm_lock = threading.Lock()


def _spawn(modules: Sequence[str]) -> tuple[Any, Connection]:
    ctx = multiprocessing.get_context("spawn")
    parent_end, child_end = ctx.Pipe(duplex=True)
    process = ctx.Process(
        target=child_main, args=(child_end, tuple(modules)), name="takedown-writer", daemon=True
    )
    process.start()
    child_end.close()
    return process, parent_end


def warm(count: int, modules: Sequence[str] = ()) -> None:
    """Start *count* writer processes now, importing *modules*, so a crawl's writers are
    ready when its first items arrive (a spawned interpreter takes seconds to import
    SQLAlchemy, numpy and the project). Unused ones exit with the process, or at
    `discard_warm()`."""
    started = [_spawn(modules) for _ in range(count)]
    with _warm_lock:
        _warm.extend(started)


def _take_warm() -> tuple[Any, Connection] | None:
    with _warm_lock:
        while _warm:
            process, conn = _warm.pop(0)
            if process.is_alive():
                return process, conn
            conn.close()
    return None


def discard_warm() -> None:
    """Stop the warm writer processes nobody took."""
    with _warm_lock:
        left, _warm[:] = list(_warm), []
    for process, conn in left:
        conn.close()  # the child sees the pipe close and exits
        process.join(5)
        if process.is_alive():  # pragma: no cover - only on a stuck child
            process.kill()
            process.join()


# --- the child ---------------------------------------------------------------------


class _PipeLogHandler(logging.Handler):
    """Sends the child's log records to the parent as text."""

    def __init__(self, send: Callable[[object], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self._send(("log", (record.name, record.levelno, message)))
        except Exception:  # noqa: BLE001, S110 - logging must never break the writer
            pass


def _portable(result: object) -> object:
    if not isinstance(result, BaseException):
        return result
    try:
        return pickle.loads(pickle.dumps(result))  # noqa: S301 - our own object, round trip
    except Exception:  # noqa: BLE001 - fall back to the words
        return RemoteWriterError(type(result).__name__, str(result))


def child_main(conn: Connection, modules: Sequence[str] = ()) -> None:
    """The writer process: import, wait for the writer to build, then apply batches until
    told to close or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for name in modules:
        importlib.import_module(name)
    try:
        kind, (factory, config, max_batch, level) = conn.recv()
    except (EOFError, OSError):
        os._exit(0)  # a warm writer nobody needed
    send_lock = threading.Lock()

    def send(message: object) -> None:
        with send_lock:
            conn.send(message)

    root = logging.getLogger()
    root.handlers[:] = [_PipeLogHandler(send)]
    root.setLevel(level)
    try:
        module, _, attr = factory.partition(":")
        writer: Writer = getattr(importlib.import_module(module), attr)(config)
    except Exception as exc:  # noqa: BLE001 - told to the parent, which stops the crawl
        send(("fatal", f"writer did not start: {type(exc).__name__}: {exc}"))
        return
    pending: deque[tuple[int, Any]] = deque()
    closing = orphaned = False
    while True:
        try:
            if not pending and not closing:
                closing = _take(conn.recv(), pending)
            while not closing and len(pending) < max_batch and conn.poll(0):
                closing = _take(conn.recv(), pending)
        except (EOFError, OSError):
            closing = orphaned = True  # the parent is gone: finish what was received
        if pending:
            batch = [pending.popleft() for _ in range(min(max_batch, len(pending)))]
            try:
                results: Sequence[object] = writer.apply([job for _, job in batch])
            except Exception as exc:  # noqa: BLE001 - every job learns the failure
                results = [exc] * len(batch)
            if not orphaned:
                try:
                    out = [(seq, _portable(r)) for (seq, _), r in zip(batch, results, strict=True)]
                    send(("results", out))
                except (OSError, EOFError, ValueError):
                    orphaned = closing = True
            continue
        if closing:
            break
    value = None
    try:
        value = writer.close()
    except Exception:  # noqa: BLE001
        logging.getLogger(__name__).exception("writer close failed")
    if not orphaned:
        with contextlib.suppress(OSError, EOFError, ValueError):
            send(("closed", value))
    sys.stdout.flush()
    os._exit(0)  # no atexit hooks of imported libraries in a writer that is done


def _take(message: tuple[str, Any], pending: deque[tuple[int, Any]]) -> bool:
    """Queue a message's jobs; True when it says close."""
    kind, payload = message
    if kind == "jobs":
        pending.extend(payload)
        return False
    return kind == "close"
