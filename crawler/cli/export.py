"""`export media` and `export candidates` (and `hosts refresh`): thin layers over services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import typer

from crawler.cli._common import database, info, output, settings
from crawler.db.models import ITEM_STATUSES
from crawler.errors import UsageError
from crawler.hosting.attribution import Attributor
from crawler.reporting.exports import CandidateFilter, ExportSummary, audit_export, export

export_app = typer.Typer(help="Exports of media and candidates.", no_args_is_help=True)
hosts_app = typer.Typer(help="Hosting attribution.", no_args_is_help=True)

FormatOpt = Annotated[str, typer.Option("--format", help="jsonl or csv")]
OutputOpt = Annotated[
    str | None, typer.Option("--output", help="file to write; '-' or none: standard output")
]


def _format(value: str) -> Literal["jsonl", "csv"]:
    if value == "jsonl":
        return "jsonl"
    if value == "csv":
        return "csv"
    raise UsageError(f"--format: {value!r} is not one of jsonl, csv")


def parse_time(option: str, value: str | None) -> datetime | None:
    """An ISO-8601 date or time; without an offset it is taken as UTC."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not an ISO-8601 date or time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_statuses(values: list[str] | None) -> tuple[str, ...]:
    wanted = [s.strip().lower() for v in values or [] for s in v.split(",") if s.strip()]
    bad = [s for s in wanted if s not in ITEM_STATUSES]
    if bad:
        raise UsageError(f"--status: {bad[0]!r} is not one of {', '.join(ITEM_STATUSES)}")
    return tuple(dict.fromkeys(wanted))


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    if not (len(value) == 2 and value.isascii() and value.isalpha()):
        raise UsageError(f"--country: {value!r} is not a two-letter country code")
    return value.upper()


def _done(summary: ExportSummary, path: str | None) -> None:
    where = path if path not in (None, "-") else "standard output"
    info(f"{summary.rows} {summary.kind} records written to {where} (sha256 {summary.sha256})")


@export_app.command("media")
def export_media(fmt: FormatOpt = "jsonl", out: OutputOpt = None) -> None:
    """One record per media item seen on a page: hashes, host, matches."""
    chosen = _format(fmt)
    with database() as db:
        with output(out) as handle:
            summary = export(db, "media", chosen, handle)
        audit_export(db, summary, output=out)
    _done(summary, out)


@export_app.command("candidates")
def export_candidates(
    fmt: FormatOpt = "jsonl",
    out: OutputOpt = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="only these statuses (repeat or a,b)")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="page first seen at or after (UTC)")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="page first seen before (UTC)")
    ] = None,
    country: Annotated[str | None, typer.Option("--country", help="hosting country")] = None,
) -> None:
    """One record per page waiting for, or past, review."""
    chosen = _format(fmt)
    flt = CandidateFilter(
        parse_statuses(status), parse_time("--since", since), parse_time("--until", until),
        _country(country),
    )  # fmt: skip
    with database() as db:
        with output(out) as handle:
            summary = export(db, "candidates", chosen, handle, flt)
        audit_export(db, summary, output=out, filters=flt.describe())
    _done(summary, out)


@hosts_app.command("refresh")
def hosts_refresh(
    limit: Annotated[int, typer.Option(help="hosts to look up in this run")] = 1000,
) -> None:
    """Look up abuse contacts (RDAP) of hosts still pending or whose last error expired."""
    cfg = settings()
    attributor = Attributor(cfg)
    with database(cfg=cfg) as db:
        counts = attributor.enrich_pending(db, limit=limit)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none pending"
    info(f"hosts refreshed: {summary}")
