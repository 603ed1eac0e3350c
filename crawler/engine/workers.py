"""Scaled-out crawls: N worker processes on one job through Redis (docs/scale-out.md).

`takedown crawl ... --workers N` with `TAKEDOWN_REDIS_URL` set: this process (the
coordinator) creates or resumes the run in the database, seeds the job's shared queue
(`crawler.scaleout.redis_frontier`), starts N worker processes (`python -m crawler.engine.workers`),
waits for them, and finishes the run row from the database frontier. On another
machine `takedown crawl --join RUN --workers N` starts N more workers on the same job
and only reports; the coordinator finishes the run.

Each worker is one ordinary crawl process (the same add-on, middlewares, policy and
pipelines) whose scheduler is `crawler.scaleout.redis_scheduler.RedisScheduler` and whose last
downloader middleware is the shared per-host limit
(`crawler.engine.middlewares.shared_politeness`). A worker that dies is replaced by nobody:
the others take its work back when its heartbeat expires.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from crawler.config import Settings, load_settings
from crawler.db.models import CrawlRun
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.engine.addon import WORKER_COMPONENTS
from crawler.engine.frontier import Entry, done_pages, fingerprint, fingerprints, requeue
from crawler.engine.lifecycle import (
    OK_REASONS,
    CrawlOutcome,
    finish_run,
    load_run,
    outcome_of,
    plain_stats,
    refuse_proxies,
    run_policy,
    run_seeds,
)
from crawler.engine.middlewares.shared_budget import SharedBudget
from crawler.engine.runner import (
    CrawlRequest,
    reconcile_media_refs,
    run_scrapy,
    scrapy_settings,
    start_run,
)
from crawler.errors import DependencyError, TakedownError, UsageError
from crawler.net.urls import Budget
from crawler.policy import CrawlPolicy
from crawler.scaleout.redis_frontier import JobStore, Wire, connect, job_base, redacted

logger = logging.getLogger(__name__)

SCHEDULER = "crawler.scaleout.redis_scheduler.RedisScheduler"
DEPENDENCY_REASONS = {"redis-unavailable": "Redis", "frontier-write-failed": "the database"}
MEDIA_PRIORITY = 10  # spiders.site.MEDIA_PRIORITY: media ahead of pages


def job_key(run: CrawlRun) -> str:
    """The job's Redis key prefix, derived from the run row every machine can read."""
    started = run.started_at.replace(tzinfo=None)
    return job_base(run.id, int((started - datetime(1970, 1, 1)).total_seconds() * 1000))


def wire_of_entry(entry: Entry) -> Wire:
    media = entry.kind == "media"
    meta: dict[str, Any] = {"td_kind": entry.kind, "depth": entry.depth}
    meta["td_fp"] = entry.fingerprint or fingerprint(entry.url, entry.kind)
    if media:
        meta["page_url"] = entry.parent_url or ""
    return Wire(
        entry.url,
        MEDIA_PRIORITY if media else 0,
        "parse_media" if media else "parse_page",
        "media_failed" if media else "page_failed",
        tuple(sorted(meta.items())),
    )


def seed_job(
    db: Database, store: JobStore, run_id: int, seeds: list[str], policy: CrawlPolicy | None
) -> int:
    """A fresh job in Redis: the seeds, or on resume (*policy* given) everything the run
    has not finished; every fingerprint it knows counts as seen and its done pages count
    against the shared budgets. Returns the entries queued."""
    store.create()
    if policy is not None:
        entries = requeue(db, run_id)
        store.mark_seen(fingerprints(db, run_id))
        shared = SharedBudget(store.r, store.base, Budget.from_policy(policy.scope))
        shared.spend(done_pages(db, run_id))
    else:
        entries = [Entry(url) for url in seeds]
        store.mark_seen(fingerprint(e.url, e.kind) for e in entries)
    store.push_many(wire_of_entry(entry) for entry in entries)
    return len(entries)


# --- the coordinator -----------------------------------------------------------------------


@dataclass
class WorkerResult:
    worker: str
    returncode: int
    finish_reason: str
    stats: dict[str, Any]


def run_job(
    cfg: Settings,
    db: Database,
    req: CrawlRequest,
    workers: int,
    join: str | None,
    env: Mapping[str, str],
) -> CrawlOutcome:
    """Start (or join) a job, run *workers* local workers, return the outcome."""
    if not cfg.redis_url:
        raise UsageError("--workers and --join need TAKEDOWN_REDIS_URL (a shared Redis)")
    if workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1")
    client = connect(cfg.redis_url)
    run_id, base, resumed = _open_job(db, client, req, join, env)
    started = utcnow()
    results = spawn_workers(cfg, run_id, base, req, workers, resumed)
    store = JobStore(client, base, "coordinator")
    outcome = _outcome(db, run_id, results, store, started, cfg.categories)
    if join is None:
        _finish(db, store, outcome)
    _raise_for_dependency(cfg, outcome, run_id)
    return outcome


def _open_job(
    db: Database, client: Any, req: CrawlRequest, join: str | None, env: Mapping[str, str]
) -> tuple[int, str, bool]:
    # Joining starts workers on this machine, with this environment: the same check (C-08).
    refuse_proxies(env, req.overrides)
    if join is not None:
        try:
            run = load_run(db, join)
        except UsageError:
            raise UsageError(f"--join {join}: no crawl run with that id or name") from None
        base = job_key(run)
        if not JobStore(client, base, "coordinator").exists():
            raise UsageError(f"--join {join}: run {run.id} has no job in Redis (finished?)")
        return run.id, base, False
    run_id, policy, seeds = start_run(db, req)
    base = job_key(load_run(db, str(run_id)))
    store = JobStore(client, base, "coordinator")
    queued = seed_job(db, store, run_id, seeds, policy if req.resume else None)
    logger.info("job %s: %d entries queued", base, queued)
    return run_id, base, bool(req.resume)


def spawn_workers(
    cfg: Settings, run_id: int, base: str, req: CrawlRequest, n: int, resumed: bool
) -> list[WorkerResult]:
    """*n* worker processes, waited for; SIGTERM/SIGINT here stop them gracefully."""
    with tempfile.TemporaryDirectory(prefix="takedown-workers-") as tmp:
        procs = [
            _start_worker(run_id, base, req, Path(tmp) / f"w{i}.json", resumed) for i in range(n)
        ]
        previous = _forward_signals(procs)
        try:
            codes = [proc.wait() for proc in procs]
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return [_result(Path(tmp) / f"w{i}.json", code) for i, code in enumerate(codes)]


def _start_worker(
    run_id: int, base: str, req: CrawlRequest, stats: Path, resumed: bool
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "crawler.engine.workers", "--run", str(run_id), "--job", base]
    command += ["--stats", str(stats), "--overrides", json.dumps(req.overrides)]
    if resumed:
        command.append("--resumed")
    return subprocess.Popen(command)


def _forward_signals(procs: list[subprocess.Popen[bytes]]) -> dict[int, Any]:
    def forward(signum: int, frame: FrameType | None) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # Scrapy's graceful shutdown

    return {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}


def _result(path: Path, code: int) -> WorkerResult:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        reason = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
        return WorkerResult("?", code, reason, {})
    return WorkerResult(data["worker"], code, data["finish_reason"], data["stats"])


def merge_stats(results: list[WorkerResult]) -> dict[str, Any]:
    """Numbers summed over the workers; other values from the first worker that has them."""
    merged: dict[str, Any] = {}
    for result in results:
        for key, value in result.stats.items():
            if isinstance(value, int | float) and isinstance(merged.get(key, 0), int | float):
                merged[key] = merged.get(key, 0) + value
            else:
                merged.setdefault(key, value)
    merged["workers/count"] = len(results)
    merged["workers/finish_reasons"] = ", ".join(r.finish_reason for r in results)
    return merged


def job_reason(results: list[WorkerResult]) -> str:
    """The job's finish reason: a dependency failure first, then any other failure;
    workers killed by a signal do not fail a job that the others finished."""
    reasons = [r.finish_reason for r in results]
    for reason in reasons:
        if reason in DEPENDENCY_REASONS:
            return reason
    finished = [r for r in reasons if r in OK_REASONS]
    others = [r for r in reasons if r not in OK_REASONS and not r.startswith("killed by")]
    if others:
        return others[0]
    return finished[0] if finished else (reasons[0] if reasons else "no workers")


def _outcome(
    db: Database,
    run_id: int,
    results: list[WorkerResult],
    store: JobStore,
    started: datetime,
    categories: tuple[str, ...],
) -> CrawlOutcome:
    stats = merge_stats(results)
    try:
        stats["scheduler/redis/bad-entries"] = store.bad()
    except Exception as exc:  # noqa: BLE001 - Redis may be the reason the job stopped
        logger.warning("bad-entry count unavailable: %s", exc)
    try:
        # This coordinator's workers have stopped: links their races missed are made now.
        reconcile_media_refs(db, run_id, categories)
        return outcome_of(db, run_id, job_reason(results), stats, started)
    except SQLAlchemyError as exc:
        raise DependencyError(f"the database is unreachable: {exc}"[:500]) from exc


def _finish(db: Database, store: JobStore, outcome: CrawlOutcome) -> None:
    try:
        finish_run(db, outcome)
    except SQLAlchemyError as exc:
        raise DependencyError(f"the database is unreachable: {exc}"[:500]) from exc
    if outcome.finish_reason in OK_REASONS:
        try:
            store.drop()  # the job is over: its keys would only go stale
        except Exception as exc:  # noqa: BLE001 - the run is recorded; keys can wait
            logger.warning("job keys not removed from Redis: %s", exc)


def _raise_for_dependency(cfg: Settings, outcome: CrawlOutcome, run_id: int) -> None:
    what = DEPENDENCY_REASONS.get(outcome.finish_reason)
    if what is None:
        return
    where = f" at {redacted(cfg.redis_url or '')}" if what == "Redis" else ""
    raise DependencyError(
        f"crawl run {run_id}: {what}{where} became unreachable; fetching stopped "
        f"({outcome.counts.get('page/done', 0)} pages recorded). Continue with "
        f"`takedown crawl --resume {run_id} --workers N` once it is back"
    )


# --- one worker process ------------------------------------------------------------------


def worker_settings(cfg: Settings, base: str, worker: str) -> dict[str, Any]:
    """What makes an ordinary crawl process a worker of the job under *base*."""
    return {
        "SCHEDULER": SCHEDULER,
        "TAKEDOWN_REDIS_URL": cfg.redis_url,
        "TAKEDOWN_REDIS_JOB": base,
        "TAKEDOWN_WORKER_ID": worker,
        **{name: dict(group) for name, group in WORKER_COMPONENTS.items()},
        "TAKEDOWN_PROGRESS": "log",  # N live displays on one terminal would garble it
    }


def run_worker(
    cfg: Settings, run_id: int, base: str, overrides: dict[str, str], resumed: bool
) -> WorkerResult:
    worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    db = Database(cfg.db_url)
    try:
        run = load_run(db, str(run_id))
        policy = run_policy(run)
        seeds = run_seeds(db, run.id)
        spent = done_pages(db, run.id) if resumed else []
    finally:
        db.dispose()
    req = CrawlRequest(seeds, policy, overrides=dict(overrides), progress="log")
    settings = scrapy_settings(cfg, req, run_id, policy, seeds, spent)
    settings.setdict(worker_settings(cfg, base, worker), priority="cmdline")
    settings.setdict(dict(overrides), priority="cmdline")
    reason, stats = run_scrapy(settings)
    return WorkerResult(worker, 0, reason, plain_stats(stats))


def worker_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crawler.engine.workers")
    parser.add_argument("--run", type=int, required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--stats", type=Path, required=True)
    parser.add_argument("--overrides", default="{}")
    parser.add_argument("--resumed", action="store_true")
    args = parser.parse_args(argv)
    try:
        cfg = load_settings()
        from crawler import logs

        logs.setup(cfg.log_format)
        result = run_worker(cfg, args.run, args.job, json.loads(args.overrides), args.resumed)
    except TakedownError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    args.stats.write_text(json.dumps(result.__dict__))
    if result.finish_reason in DEPENDENCY_REASONS:
        return 3
    return 0 if result.finish_reason in OK_REASONS else 1


if __name__ == "__main__":
    raise SystemExit(worker_main())
