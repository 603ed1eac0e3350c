"""`db`, `users`, `hashlist`, `seeds` and `audit` commands: thin layers over services."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crawler.audit import Event, record, verify_chain
from crawler.cli._common import database, info, out_console, settings
from crawler.db.migrate import upgrade
from crawler.db.session import Database, safe_url
from crawler.errors import TakedownError, UsageError
from crawler.media import hashlists
from crawler.seeds import import_seeds, read_seed_file
from crawler.users import add_user

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Review-app accounts.", no_args_is_help=True)
hashlist_app = typer.Typer(help="Known-hash and benign lists.", no_args_is_help=True)
seeds_app = typer.Typer(help="Seed sets.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision."""
    cfg = settings()
    db = Database(cfg.db_url)
    try:
        before, after = upgrade(db)
    finally:
        db.dispose()
    where = safe_url(cfg.db_url)
    if before == after:
        info(f"schema already at {after} ({where})")
    else:
        info(f"schema upgraded {before or 'empty'} -> {after} ({where})")


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option(help="analyst, lead or admin")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Add a review-app account."""
    if not password_stdin:
        raise UsageError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    with database() as db, db.session() as session:
        user = add_user(session, name, role, password)
    info(f"user {user.username!r} added as {user.role}")


@hashlist_app.command("import")
def hashlist_import(
    file: Path,
    name: Annotated[str, typer.Option("--name", help="the list to import into")],
    kind: Annotated[
        str | None, typer.Option(help="known (default for a new list) or benign")
    ] = None,
    pdq_threshold: Annotated[
        int | None, typer.Option(help="PDQ match distance (default 31)")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(help="review (default) or auto: exact matches confirm with no person"),
    ] = None,
) -> None:
    """Import a hash list file; a malformed row rejects the whole file."""
    if kind is not None and kind not in ("known", "benign"):
        raise UsageError(f"--kind {kind!r}: must be known or benign")
    hashlists.check_action(action, kind or "known")
    try:
        rows, digest = hashlists.read_file(file)
    except hashlists.HashListError as exc:
        for line in exc.details():
            info(line)
        raise
    with database() as db, db.session() as session:
        result = hashlists.import_rows(
            session, name, rows, kind=kind, pdq_threshold=pdq_threshold, action=action
        )
        details: dict[str, object] = {
            "file": file.name,
            "sha256": digest,
            "rows": result.rows,
            "added": result.added,
            "updated": result.updated,
        }
        if action is not None:
            details["action"] = action
        record(session, Event("cli", "hashlist.import", "hash_list", result.list_id, details))
    info(
        f"{name}: {result.rows} rows read, {result.added} added, {result.updated} updated, "
        f"{result.rows - result.added - result.updated} unchanged"
    )


@hashlist_app.command("list")
def hashlist_list() -> None:
    """Every list with its kind, settings and entry counts by type."""
    table = Table(
        "name",
        "kind",
        "enabled",
        "pdq threshold",
        "md5",
        "sha1",
        "sha256",
        "pdq",
        "total",
        "action",
        pad_edge=False,  # so the added action column still fits 80 columns
    )
    with database() as db, db.read_session() as session:
        for hash_list, counts in hashlists.list_summaries(session):
            cells = [str(counts.get(t, 0)) for t in ("md5", "sha1", "sha256", "pdq")]
            table.add_row(
                hash_list.name,
                hash_list.kind,
                "yes" if hash_list.enabled else "no",
                str(hash_list.pdq_threshold),
                *cells,
                str(sum(counts.values())),
                hash_list.action,
            )
    out_console.print(table)


@seeds_app.command("import")
def seeds_import(
    file: Path,
    set_name: Annotated[str, typer.Option("--set", help="the seed set to add to")],
) -> None:
    """Import seeds: one URL a line, '#' comments."""
    urls = read_seed_file(file)
    if not urls:
        raise UsageError(f"{file}: no seed URLs in the file")
    with database() as db, db.session() as session:
        added = import_seeds(session, set_name, urls)
    info(f"seed set {set_name!r}: {len(urls)} read, {added} new")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit chain; exit 1 naming the first event that does not fit."""
    with database() as db, db.read_session() as session:
        report = verify_chain(session)
    if not report.ok:
        raise TakedownError(
            f"audit chain broken at event {report.first_bad_id}: {report.reason} "
            f"({report.checked} events verified before it)"
        )
    info(f"audit chain intact: {report.checked} events")
