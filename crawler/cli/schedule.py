"""`schedule add | list | remove` and `scheduler run [--once]`: thin layers over crawler.engine.scheduling."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.table import Table

from crawler.cli._common import database, info, print_table
from crawler.db.types import utcnow
from crawler.engine.scheduling import (
    Scheduler,
    ScheduleSpec,
    add_schedule,
    describe_commands,
    list_schedules,
    remove_schedule,
)
from crawler.errors import TakedownError
from crawler.reporting.exports import iso

schedule_app = typer.Typer(
    help="Cron schedules for crawls and rechecks (UTC).", no_args_is_help=True
)
scheduler_app = typer.Typer(help="The process that runs due schedules.", no_args_is_help=True)
ACTOR = "cli"


@schedule_app.command("add")
def schedule_add(
    name: str,
    cron: Annotated[str, typer.Option("--cron", help="five-field cron expression, in UTC")],
    seed_set: Annotated[str | None, typer.Option("--set", help="seed set to crawl")] = None,
    seeds_file: Annotated[
        Path | None, typer.Option("--seeds-file", help="seed file to crawl")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="crawl policy file")] = None,
    recheck: Annotated[bool, typer.Option("--recheck", help="also run `recheck --due`")] = False,
    exchange: Annotated[
        str | None, typer.Option("--exchange", help="also run `exchange fetch NAME` (first)")
    ] = None,
) -> None:
    """Add a schedule; its first run is the next cron time from now."""
    spec = ScheduleSpec(name, cron, seed_set, seeds_file, policy, recheck, exchange)
    with database() as db, db.session() as session:
        row = add_schedule(session, spec, utcnow(), actor=ACTOR)
        info(
            f"schedule {row.name!r} added: next run {iso(row.next_run_at)}: {describe_commands(row)}"
        )


@schedule_app.command("list")
def schedule_list() -> None:
    """Every schedule with its next and last run and any lock."""
    table = Table("name", "cron (UTC)", "runs", "next run", "last run", "locked by")
    with database() as db, db.read_session() as session:
        for row in list_schedules(session):
            lock = f"{row.lock_owner} until {iso(row.lock_until)}" if row.lock_owner else ""
            table.add_row(
                row.name,
                row.cron,
                describe_commands(row),
                iso(row.next_run_at) or "",
                iso(row.last_run_at) or "never",
                lock,
            )
    print_table(table)


@schedule_app.command("remove")
def schedule_remove(name: str) -> None:
    """Remove a schedule (a run in progress finishes)."""
    with database() as db, db.session() as session:
        remove_schedule(session, name, actor=ACTOR)
    info(f"schedule {name!r} removed")


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@scheduler_app.command("run")
def scheduler_run(
    once: Annotated[bool, typer.Option("--once", help="run what is due now, then exit")] = False,
    tick: Annotated[float, typer.Option(help="seconds between checks")] = 30.0,
) -> None:
    """Run due schedules as separate processes; never two runs of one schedule at once."""
    with database() as db:
        scheduler = Scheduler(db)
        if once:
            outcomes = scheduler.run_once()
            for o in outcomes:
                info(f"{o.schedule}: run {o.run_id} exited {o.exit_code}")
            info(f"{len(outcomes)} schedules run")
            failed = [o.schedule for o in outcomes if o.exit_code != 0]
            if failed:
                raise TakedownError(f"runs failed: {', '.join(failed)}")
            return
        stop = threading.Event()
        _stop_on_signals(stop)
        info(f"scheduler {scheduler.owner} running; checks every {tick:g} s")
        scheduler.run_forever(stop, tick)
