"""`rematch` and `hashlist enable|disable|set`: thin layers over the matching services."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from crawler.cli._common import database, err_console, info, settings
from crawler.cli.admin import hashlist_app
from crawler.errors import UsageError
from crawler.matching.list_settings import SettingChange, set_action, set_enabled, set_threshold
from crawler.matching.matcher import MatcherConfig
from crawler.matching.media_decisions import revert
from crawler.matching.rematch import Progress as ProgressCallback
from crawler.matching.rematch import rematch

PHASES = {"exact": "exact hashes", "pdq": "PDQ near matches", "candidates": "candidates"}


@contextmanager
def _progress() -> Iterator[ProgressCallback]:
    """A progress bar on a terminal; otherwise one plain line as each phase ends."""
    if not err_console.is_terminal:
        yield _log_lines
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(PHASES.get(phase, phase), total=total or None)
            bar.update(tasks[phase], completed=done, total=total or None)

        yield update


def _log_lines(phase: str, done: int, total: int) -> None:
    if total and done >= total:
        info(f"rematch: {PHASES.get(phase, phase)}: {done}/{total} done")


def rematch_command() -> None:
    """Match every stored hash against the lists as they are now (no network)."""
    cfg = settings()
    with database(cfg=cfg) as db, _progress() as progress:
        summary = rematch(db, MatcherConfig.from_settings(cfg), progress)
    for line in summary.lines():
        info(line)


def _report(change: SettingChange, what: str) -> None:
    if not change.changed:
        info(f"{change.name}: already {what}; nothing changed")
        return
    c = change.candidates
    info(
        f"{change.name}: {what}; candidates: {c.opened} opened, {c.reopened} reopened, "
        f"{c.suppressed} closed, {c.updated} re-ranked, {c.auto_confirmed} confirmed by lists"
    )


@hashlist_app.command("enable")
def hashlist_enable(name: str) -> None:
    """Enable a list: its matches produce (or suppress) candidates again."""
    _switch(name, enabled=True)


@hashlist_app.command("disable")
def hashlist_disable(name: str) -> None:
    """Disable a list: it stops matching; its pending candidates are closed."""
    _switch(name, enabled=False)


def _switch(name: str, *, enabled: bool) -> None:
    cfg = settings()
    with database(cfg=cfg) as db, db.session() as session:
        change = set_enabled(session, name, enabled, cfg.categories)
    _report(change, "enabled" if enabled else "disabled")


@hashlist_app.command("set")
def hashlist_set(
    name: str,
    pdq_threshold: Annotated[int | None, typer.Option(help="PDQ match distance, 0 to 64")] = None,
    action: Annotated[
        str | None,
        typer.Option(help="review, or auto: an exact match confirms the page with no person"),
    ] = None,
) -> None:
    """Change a list's PDQ threshold or action (bumps its version; crawls reload it)."""
    if pdq_threshold is None and action is None:
        raise UsageError("hashlist set: give --pdq-threshold and/or --action")
    cfg = settings()
    with database(cfg=cfg) as db, db.session() as session:
        changes = []
        if action is not None:
            changes.append((set_action(session, name, action, cfg.categories), f"action {action}"))
        if pdq_threshold is not None:
            change = set_threshold(session, name, pdq_threshold, cfg.categories)
            changes.append((change, f"PDQ threshold {pdq_threshold}"))
    for change, what in changes:
        _report(change, what)
    if pdq_threshold is not None and changes[-1][0].changed:
        info("run `takedown rematch` to find matches a wider threshold now admits")


@hashlist_app.command("revert")
def hashlist_revert(
    name: str,
    decision: Annotated[
        int | None,
        typer.Option(help="undo only what the media decision on this review item settled"),
    ] = None,
) -> None:
    """Undo every page a list (or one analyst's media decision) confirmed with no person.

    The list is set back to `review` (a decision's entries are removed from
    analyst-confirmed), then the pages it settled are reopened, one transaction and one
    audit event per batch; an interrupted revert is run again to finish."""
    cfg = settings()
    with database(cfg=cfg) as db:
        if decision is not None:
            if name != "analyst-confirmed":
                raise UsageError("--decision: only analyst-confirmed holds decisions' media")
            summary = revert(db, item_id=decision, categories=cfg.categories)
        else:
            summary = revert(db, list_name=name, categories=cfg.categories)
    info(summary.line())
