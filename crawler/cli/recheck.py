"""`takedown recheck`: revisit confirmed pages, record removals, print a one-screen summary."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crawler.cli._common import database, info, out_console, settings
from crawler.engine.lifecycle import checkpoint
from crawler.engine.runner import parse_overrides
from crawler.errors import TakedownError, UsageError
from crawler.notices.recheck import (
    REMOVED,
    STILL_UP,
    UNKNOWN,
    RecheckResult,
    reason_counts,
    recheck,
)
from crawler.policy import PolicyError, load_policy

SHOWN_REASONS = 6
SHOWN_REMOVED = 8


class RecheckFailed(TakedownError):
    """The recheck crawl itself failed (not an item whose state is unknown)."""


def summary(result: RecheckResult) -> Table:
    run = f"run {result.run_id}" if result.run_id is not None else "no fetch"
    table = Table(title=f"recheck ({run}): {len(result.verdicts)} items", show_header=False)
    for outcome in (REMOVED, STILL_UP, UNKNOWN):
        table.add_row(outcome, str(result.count(outcome)))
        for reason, n in reason_counts(result, outcome)[:SHOWN_REASONS]:
            table.add_row(f"  {reason[:90]}", str(n))
    removed = [v for v in result.verdicts if v.outcome == REMOVED]
    for v in removed[:SHOWN_REMOVED]:
        table.add_row(f"  removed: item {v.item_id}", v.url[:90])
    if len(removed) > SHOWN_REMOVED:
        table.add_row("  ...", f"{len(removed) - SHOWN_REMOVED} more")
    if result.closed_notices:
        table.add_row("notices closed", ", ".join(result.closed_notices[:10]))
    return table


def recheck_command(
    all_items: Annotated[
        bool, typer.Option("--all", help="every confirmed item not yet removed")
    ] = False,
    due: Annotated[
        bool,
        typer.Option("--due", help="items never checked or not checked for renotice_hours"),
    ] = False,
    policy: Annotated[Path | None, typer.Option("--policy", help="crawl policy TOML")] = None,
    setting: Annotated[list[str] | None, typer.Option("-s", "--setting", hidden=True)] = None,
) -> None:
    """Revisit confirmed pages through the crawl policy; record the removed ones.

    Removed: the page answers 404/410, or its media no longer match a known list.
    A 5xx, timeout, DNS failure or policy refusal is "unknown", never removed.
    Without --all, only due items are rechecked (--due).
    """
    if all_items and due:
        raise UsageError("give --all or --due, not both")
    try:
        crawl_policy = load_policy(policy)
    except PolicyError as exc:
        raise UsageError(str(exc)) from exc
    overrides = parse_overrides(setting or [])
    progress = overrides.get("TAKEDOWN_PROGRESS", "live" if sys.stderr.isatty() else "log")
    cfg = settings()
    with database(cfg=cfg) as db:
        mode = "all" if all_items else "due"
        result = recheck(cfg, db, mode, crawl_policy, os.environ, overrides, progress)
        checkpoint(cfg, db)  # anchor the removals' audit events
    for v in result.verdicts:  # the log: one line per item, whatever the outcome
        detail = f" {v.detail}" if v.detail else ""
        info(f"recheck: item {v.item_id} {v.outcome} ({v.reason}{detail}): {v.url}")
    out_console.print(summary(result))
    if result.crawl_problem:
        raise RecheckFailed(f"recheck run {result.run_id}: {result.crawl_problem}")
