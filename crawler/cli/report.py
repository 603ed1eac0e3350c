"""`report` and `export hashlist`: thin layers over crawler.reporting.reports and crawler.reporting.hashlist_export."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from crawler.cli._common import database, info, output, settings
from crawler.db.audit import Event, record
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.errors import UsageError
from crawler.reporting.exports import audit_export
from crawler.reporting.hashlist_export import export_hashlist
from crawler.reporting.report_html import render_html, render_transparency_html
from crawler.reporting.reports import build_report, make_window
from crawler.reporting.transparency import build_transparency

ACTOR = "cli"


def report_command(
    fmt: Annotated[str, typer.Option("--format", help="html or json")] = "html",
    output_path: Annotated[str | None, typer.Option("--output", help="file; - for stdout")] = None,
    since: Annotated[str | None, typer.Option(help="UTC start, YYYY-MM-DD or ISO time")] = None,
    until: Annotated[str | None, typer.Option(help="UTC end (excluded), YYYY-MM-DD or ISO")] = None,
    kind: Annotated[
        str, typer.Option("--kind", help="activity, or transparency (the yearly report)")
    ] = "activity",
    year: Annotated[int | None, typer.Option("--year", help="transparency: the year")] = None,
) -> None:
    """Statistics for [since, until): volumes, countries, providers, time to removal."""
    if fmt not in ("html", "json"):
        raise UsageError(f"--format {fmt!r}: must be html or json")
    if kind not in ("activity", "transparency"):
        raise UsageError(f"--kind {kind!r}: must be activity or transparency")
    if kind == "transparency":
        if year is None or since or until:
            raise UsageError("--kind transparency takes --year YYYY (and no --since/--until)")
        _transparency(fmt, output_path, year)
        return
    window = make_window(since, until)
    with database() as db:
        with db.read_session() as session:
            report = build_report(session, window)
        _write(db, report, render_html, fmt, output_path, {"window": report["window"]})
    info(f"report written ({fmt}, {report['totals']['confirmed']} confirmed in the window)")


def _transparency(fmt: str, output_path: str | None, year: int) -> None:
    with database() as db:
        with db.read_session() as session:
            report = build_transparency(session, year, utcnow())
        details = {"kind": "transparency", "year": year}
        _write(db, report, render_transparency_html, fmt, output_path, details)
    totals = report["totals"]
    info(f"transparency report {year} written ({fmt}, {totals['notices']} notices)")


def _write(
    db: Database,
    report: dict[str, Any],
    html: Callable[[dict[str, Any]], str],
    fmt: str,
    output_path: str | None,
    details: dict[str, Any],
) -> None:
    """Render `report` (HTML or JSON), write it whole, and audit the export with its digest."""
    text = (
        html(report)
        if fmt == "html"
        else json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )
    with output(output_path) as handle:
        handle.write(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with db.session() as session:
        event = {**details, "format": fmt, "sha256": digest}
        record(session, Event(ACTOR, "report.export", None, None, event))


def export_hashlist_command(
    output_path: Annotated[str | None, typer.Option("--output", help="file; - for stdout")] = None,
) -> None:
    """Confirmed media as a hash list (type,hash,category,reference), for partners."""
    cfg = settings()
    with database(cfg=cfg) as db:
        with output(output_path) as handle:
            summary = export_hashlist(db, handle, cfg.categories)
        audit_export(db, summary, actor=ACTOR, output=output_path)
    info(f"{summary.rows} hash rows exported")
