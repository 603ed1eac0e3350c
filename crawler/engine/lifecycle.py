"""A crawl run's life, in one place: egress checked, row opened, outcome decided, row
finished, audit anchored.

Every kind of run goes through here: `takedown crawl` (`crawler.engine.runner`), the
scaled-out crawl's coordinator and `--join` (`crawler.engine.workers`) and `takedown
recheck` (`crawler.notices.recheck`). What each of them does between opening and finishing
the run (one Scrapy process, N worker processes, a depth-0 recheck) stays theirs.

- `refuse_proxies`: before anything is written or any crawl process starts on this
  machine, a proxy in the environment refuses the run unless an enforcing egress proxy
  is declared (C-08). The declaration is read as the crawl process reads it
  (`TakedownAddon`, through Scrapy's `getbool`).
- `open_run` / `reopen_run`: the `crawl_runs` row (kind, name, policy as canonical TOML,
  `started_at`) with its seeds queued in the frontier; or a resumed run set running again.
- `outcome_of`, `failure_of`, `finish_run`: the counts, matches and elapsed time of a
  run; whether it failed (C-13: no page fetched is a failure); the row finished with
  status, counts, `finished_at` and the finish reason or the failure.
- `checkpoint`: the signed audit checkpoint taken when a run is over
  (`crawler.db.audit_checkpoint.after_run`; a failure is logged, never fails the run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scrapy.settings import BaseSettings
from sqlalchemy import func, select

from crawler.config import Settings
from crawler.db import audit_checkpoint
from crawler.db.models import CrawlRun, FrontierEntry, Match, Observation
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.engine.addon import ProxyRefused, check_proxies
from crawler.engine.frontier import Entry, counts, record
from crawler.errors import UsageError
from crawler.names import row_id
from crawler.policy import CrawlPolicy, PolicyError, parse_policy

OK_REASONS = ("finished", "closespider_timeout", "shutdown")


@dataclass
class CrawlOutcome:
    run_id: int
    finish_reason: str
    counts: dict[str, int]
    stats: dict[str, Any]
    matches: int
    elapsed_s: float


# --- before the run --------------------------------------------------------------------------


def proxy_enforced(overrides: Mapping[str, str]) -> bool:
    """Whether `-s TAKEDOWN_EGRESS_PROXY_ENFORCED=...` declares an enforcing egress proxy,
    read by Scrapy's own `getbool`, as every crawl process reads it; a value Scrapy would
    refuse exits 2 here, before anything starts."""
    try:
        return BaseSettings(dict(overrides)).getbool("TAKEDOWN_EGRESS_PROXY_ENFORCED")
    except ValueError as exc:
        raise UsageError(f"-s TAKEDOWN_EGRESS_PROXY_ENFORCED: {exc}") from exc


def refuse_proxies(env: Mapping[str, str], overrides: Mapping[str, str]) -> None:
    """Exit 2 (C-08) when *env* names a proxy and no enforcing egress proxy is declared."""
    try:
        check_proxies(env, proxy_enforced(overrides))
    except ProxyRefused as exc:
        raise UsageError(str(exc)) from exc


def software_version() -> str:
    try:
        from importlib.metadata import version

        return version("takedown-crawler")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "dev"


def open_run(
    db: Database,
    policy: CrawlPolicy,
    seeds: list[str],
    *,
    kind: str = "crawl",
    name: str | None = None,
    seed_set: str | None = None,
    version: str | None = None,
) -> int:
    """A new `crawl_runs` row (running, started now) with *seeds* queued; its id."""
    with db.session() as session:
        run = CrawlRun(
            name=name,
            kind=kind,
            policy_text=policy.to_toml(),
            seed_set=seed_set,
            software_version=version,
        )
        session.add(run)
        session.flush()
        record(session, run.id, [Entry(url) for url in seeds])
        return run.id


def load_run(db: Database, ref: str) -> CrawlRun:
    """The crawl run *ref* names (id, or the newest of that name); exit 2 when none."""
    with db.read_session() as session:
        query = select(CrawlRun)
        number = row_id(ref)
        query = (
            query.where(CrawlRun.id == number)
            if number is not None
            else query.where(CrawlRun.name == ref)
        )
        run = session.execute(query.order_by(CrawlRun.id.desc()).limit(1)).scalar()
    if run is None or run.kind != "crawl":
        raise UsageError(f"--resume {ref}: no crawl run with that id or name")
    return run


def run_seeds(db: Database, run_id: int) -> list[str]:
    with db.read_session() as session:
        query = select(FrontierEntry.url).where(
            FrontierEntry.run_id == run_id, FrontierEntry.kind == "page", FrontierEntry.depth == 0
        )
        return list(session.execute(query.order_by(FrontierEntry.id)).scalars())


def run_policy(run: CrawlRun) -> CrawlPolicy:
    """The policy the run was started with (its stored TOML); exit 2 when unreadable."""
    try:
        return parse_policy(run.policy_text, source=f"crawl run {run.id}")
    except PolicyError as exc:
        raise UsageError(str(exc)) from exc


def reopen_run(db: Database, ref: str) -> tuple[int, CrawlPolicy, list[str]]:
    """(run id, policy, seeds) of the run *ref* names, set running again."""
    run = load_run(db, ref)
    policy = run_policy(run)
    with db.session() as session:
        session.get(CrawlRun, run.id).status = "running"  # type: ignore[union-attr]
    return run.id, policy, run_seeds(db, run.id)


# --- after the run ---------------------------------------------------------------------------


def plain_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in stats.items():
        if isinstance(value, datetime):
            value = value.isoformat()
        out[str(key)[:200]] = value if isinstance(value, int | float | str) else str(value)
    return json.loads(json.dumps(out))


def count_matches(db: Database, run_id: int) -> int:
    with db.read_session() as session:
        query = (
            select(func.count(func.distinct(Match.media_id)))
            .join(Observation, Observation.media_id == Match.media_id)
            .where(Observation.run_id == run_id)
        )
        return int(session.execute(query).scalar() or 0)


def outcome_of(
    db: Database, run_id: int, reason: str, stats: Mapping[str, Any], started: datetime
) -> CrawlOutcome:
    """What the run did, from its frontier and matches, with *stats* made plain."""
    return CrawlOutcome(
        run_id,
        reason,
        counts(db, run_id),
        plain_stats(stats),
        count_matches(db, run_id),
        (utcnow() - started).total_seconds(),
    )


def failure_of(outcome: CrawlOutcome) -> str | None:
    """Why the run counts as failed (C-13: zero pages is a failure), or None."""
    if outcome.finish_reason == "startup-self-test-failed":
        return f"startup self-test failed: {outcome.stats.get('startup/self-test')}"
    if outcome.finish_reason not in OK_REASONS:
        return f"crawl stopped: {outcome.finish_reason}"
    fetched = outcome.counts.get("page/done", 0) + outcome.counts.get("page/failed", 0)
    if fetched == 0:
        skipped = {k: v for k, v in outcome.stats.items() if k.startswith("policy/blocked/")}
        return f"no page was fetched (refusals: {skipped or 'none'})"
    return None


def finish_run(db: Database, outcome: CrawlOutcome) -> None:
    c = outcome.counts
    problem = failure_of(outcome)
    with db.session() as session:
        run = session.get(CrawlRun, outcome.run_id)
        assert run is not None
        run.status = "failed" if problem else "finished"
        run.finished_at = utcnow()
        run.finish_reason = problem or outcome.finish_reason
        run.pages = c.get("page/done", 0)
        run.media = c.get("media/done", 0) + int(outcome.stats.get("media/data-uri", 0))
        run.matches = outcome.matches
        run.errors = int(outcome.stats.get("takedown/errors", 0))
        run.stats = outcome.stats


def close_run(
    db: Database, run_id: int, reason: str, stats: Mapping[str, Any], started: datetime
) -> CrawlOutcome:
    """`outcome_of` then `finish_run`: the run row finished; the outcome returned."""
    outcome = outcome_of(db, run_id, reason, stats, started)
    finish_run(db, outcome)
    return outcome


def checkpoint(cfg: Settings, db: Database) -> None:
    """Anchor the audit events the run wrote (docs/operations.md); never fails the run."""
    with db.read_session() as session:
        audit_checkpoint.after_run(cfg.home, cfg.db_url, session)
