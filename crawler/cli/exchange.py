"""`exchange add | list | fetch | remove | feedback`: thin layers over crawler.matching.exchanges."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from crawler.cli._common import database, err_console, info, out_console, print_table, settings
from crawler.errors import TakedownError
from crawler.matching import exchanges
from crawler.reporting.exports import iso

exchange_app = typer.Typer(
    help="Hash lists fed by exchanges (NCMEC, StopNCII, ThreatExchange, TAT, a local file).",
    no_args_is_help=True,
)
LOG_EVERY = 50


@exchange_app.command("add")
def exchange_add(
    name: str,
    api: Annotated[str, typer.Option("--api", help=" | ".join(exchanges.APIS))],
    list_name: Annotated[str, typer.Option("--list", help="the hash list it feeds")],
    credentials_file: Annotated[
        Path | None,
        typer.Option("--credentials-file", help="file readable only by its owner"),
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="local_file: the signal file")] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="KEY=VALUE of the exchange (e.g. environment=Industry)"),
    ] = None,
    kind: Annotated[str | None, typer.Option(help="known (default) or benign")] = None,
    pdq_threshold: Annotated[int | None, typer.Option(help="PDQ match distance")] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            help="review (default) or auto: an exact match confirms with no person (known lists)",
        ),
    ] = None,
) -> None:
    """Add an exchange feeding list LIST (created if missing; it must hold no entries)."""
    options = exchanges.parse_options(option or [])
    if file is not None:
        options["filename"] = str(file)
    spec = exchanges.ExchangeSpec(
        name, api, list_name, credentials_file, options, kind, pdq_threshold, action
    )
    with database() as db, db.session() as session:
        exchanges.add_exchange(session, spec)
    info(
        f"exchange {name!r} ({api}) added, feeding list {list_name!r}; run `takedown exchange fetch {name}`"
    )


@exchange_app.command("list")
def exchange_list() -> None:
    """Every exchange, its list, entry count and last fetch."""
    table = Table("name", "api", "list", "entries", "last fetch", "status")
    with database() as db, db.read_session() as session:
        for row, list_name, entries in exchanges.list_exchanges(session):
            status = row.last_status or ""
            if row.full_fetch:
                status = f"{status} (full fetch to resume)".strip()
            cells = (row.name, row.api, list_name, str(entries), iso(row.last_fetch_at), status)
            table.add_row(*(Text(c or "never" if i == 4 else c or "") for i, c in enumerate(cells)))
    print_table(table)


@contextmanager
def _progress(name: str) -> Iterator[exchanges.Progress]:
    """A live counter on a terminal; otherwise a plain line every few batches."""
    if not err_console.is_terminal:

        def log_line(stats: exchanges.FetchStats) -> None:
            if stats.batches % LOG_EVERY == 1:
                info(
                    f"{name}: {stats.batches} batches, {stats.records} records, "
                    f"{stats.added} added, {stats.removed} removed"
                )

        yield log_line
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"{name}: connecting")

        def update(stats: exchanges.FetchStats) -> None:
            bar.update(
                task,
                description=(
                    f"{name}: {stats.batches} batches, {stats.records} records, "
                    f"{stats.added} added, {stats.removed} removed"
                ),
            )

        yield update


@exchange_app.command("fetch")
def exchange_fetch(
    name: Annotated[str | None, typer.Argument(help="one exchange (default: all)")] = None,
) -> None:
    """Fetch from each exchange's checkpoint into its list; safe to interrupt and rerun."""
    cfg = settings()
    with database(cfg=cfg) as db:
        if name is None:
            with db.read_session() as s:
                names = [row.name for row, _, _ in exchanges.list_exchanges(s)]
        else:
            names = [name]
        failures: list[TakedownError] = []
        for one in names:
            try:
                with _progress(one) as progress:
                    stats = exchanges.fetch(db, one, progress, cfg.categories)
            except TakedownError as exc:
                if len(names) == 1:
                    raise
                info(f"takedown: error: {exc}")
                failures.append(exc)
                continue
            for line in stats.lines():
                info(line)
        if failures:
            worst = max(failures, key=lambda e: e.exit_code)
            raise type(worst)(f"{len(failures)} of {len(names)} exchanges failed; first: {worst}")


@exchange_app.command("remove")
def exchange_remove(name: str) -> None:
    """Forget an exchange and its checkpoint (its list and entries stay)."""
    with database() as db, db.session() as session:
        exchanges.remove_exchange(session, name)
    info(f"exchange {name!r} removed; its list stays (`takedown hashlist list`)")


@exchange_app.command("feedback")
def exchange_feedback(
    name: Annotated[str | None, typer.Argument(help="one exchange (default: all)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would be sent; send nothing")
    ] = False,
) -> None:
    """False positives found in review: show them, or report them to their exchange."""
    with database() as db:
        with db.read_session() as s:
            pending = exchanges.pending_opinions(s, name)
        for line in pending:
            item = f"review item {line.item_id}" if line.item_id else "item gone"
            out_console.print(
                f"{line.exchange}\t{line.hash_type}\t{line.hash}\tfalse positive\t{item}"
                f"\t{line.status}",
                markup=False,
            )
        if dry_run:
            info(f"{len(pending)} opinions pending; nothing sent (--dry-run)")
            return
        counts = exchanges.send_opinions(db, name)
    info(
        f"{counts['sent']} opinions sent, {counts['unsupported']} not accepted by their "
        f"exchange (kept), {counts['failed']} failed (retried next time)"
    )
    if counts["failed"]:
        raise TakedownError(f"{counts['failed']} opinions could not be sent")
