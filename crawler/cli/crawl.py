"""`takedown crawl`: seeds in, a policy-bounded crawl run, a one-screen summary out."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crawler.cli._common import database, out_console, settings
from crawler.engine.lifecycle import CrawlOutcome, checkpoint, failure_of
from crawler.engine.runner import CrawlFailed, CrawlRequest, execute, parse_overrides
from crawler.engine.seeds import read_seed_file, seeds_of_set
from crawler.engine.workers import run_job
from crawler.errors import UsageError
from crawler.policy import PolicyError, load_policy


def gather_seeds(
    urls: list[str], seeds_file: Path | None, set_name: str | None, db: object
) -> list[str]:
    seeds = list(urls)
    if seeds_file is not None:
        seeds += read_seed_file(seeds_file)
    if set_name is not None:
        with db.read_session() as session:  # type: ignore[attr-defined]
            seeds += seeds_of_set(session, set_name)
    return list(dict.fromkeys(seeds))


def summary(outcome: CrawlOutcome) -> Table:
    c, s = outcome.counts, outcome.stats
    table = Table(title=f"crawl run {outcome.run_id}: {outcome.finish_reason}", show_header=False)
    rows = [
        (
            "pages done / failed / skipped",
            f"{c.get('page/done', 0)} / {c.get('page/failed', 0)} / {c.get('page/skipped', 0)}",
        ),
        (
            "media done / failed / skipped",
            f"{c.get('media/done', 0)} / {c.get('media/failed', 0)} / {c.get('media/skipped', 0)}",
        ),
        ("matched media", str(outcome.matches)),
        ("errors", str(s.get("takedown/errors", 0))),
        ("blocked by policy", str(s.get("policy/blocked", 0))),
        (
            "requests / responses",
            f"{s.get('downloader/request_count', 0)} / {s.get('downloader/response_count', 0)}",
        ),
        ("elapsed", f"{outcome.elapsed_s:.1f} s"),
    ]
    blocked = sorted((k, v) for k, v in s.items() if k.startswith("policy/blocked/"))
    rows += [(f"  {k.removeprefix('policy/blocked/')}", str(v)) for k, v in blocked[:8]]
    for key, value in rows:
        table.add_row(key, value)
    return table


def crawl(
    urls: Annotated[list[str] | None, typer.Argument(help="seed URLs")] = None,
    seeds_file: Annotated[Path | None, typer.Option("--seeds-file", help="one URL a line")] = None,
    set_name: Annotated[
        str | None, typer.Option("--set", help="a seed set in the database")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="crawl policy TOML")] = None,
    render: Annotated[
        bool | None, typer.Option("--render/--no-render", help="render pages in Chromium")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="a name for the run")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="continue run RUN (id or name)")
    ] = None,
    setting: Annotated[list[str] | None, typer.Option("-s", "--setting", hidden=True)] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="N local worker processes on one job (TAKEDOWN_REDIS_URL)"),
    ] = None,
    join: Annotated[
        str | None,
        typer.Option(
            "--join", help="add workers to running job RUN (id or name), e.g. from another machine"
        ),
    ] = None,
) -> None:
    """Crawl seed sites strictly inside the crawl policy."""
    try:
        crawl_policy = load_policy(policy)
    except PolicyError as exc:
        raise UsageError(str(exc)) from exc
    cfg = settings()
    progress = "live" if sys.stderr.isatty() else "log"
    with database(cfg=cfg) as db:
        seeds = [] if resume or join else gather_seeds(urls or [], seeds_file, set_name, db)
        req = CrawlRequest(
            seeds,
            crawl_policy,
            name,
            set_name,
            render,
            resume,
            parse_overrides(setting or []),
            progress,
        )
        req.progress = req.overrides.get("TAKEDOWN_PROGRESS", progress)
        if cfg.redis_url or workers or join:  # scaled out: crawler.engine.workers
            outcome = run_job(cfg, db, req, workers or 1, join, os.environ)
        else:
            outcome = execute(cfg, db, req, os.environ)
        checkpoint(cfg, db)  # anchor the run's audit events (docs/operations.md)
    out_console.print(summary(outcome))
    problem = failure_of(outcome)
    if problem:
        raise CrawlFailed(f"crawl run {outcome.run_id}: {problem}")
