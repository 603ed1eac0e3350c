"""`db`, `users`, `hashlist`, `seeds` and `audit` commands: thin layers over services."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.table import Table

from crawler.accounts.users import add_user
from crawler.cli._common import database, info, print_table, settings
from crawler.db.audit import Event, record, verify_chain
from crawler.db.audit_checkpoint import append, check, checkpoint_path, database_name, take
from crawler.db.migrate import upgrade
from crawler.db.session import Database, safe_url
from crawler.engine.seeds import import_seeds, read_seed_file
from crawler.errors import TakedownError, UsageError
from crawler.evidence.keys import key_path, load_or_create_key, parse_public_key
from crawler.media import hashlists

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
    vpdq_percent: Annotated[
        int | None, typer.Option(help="share of a video's frames that must match (default 80)")
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
            session,
            name,
            rows,
            kind=kind,
            pdq_threshold=pdq_threshold,
            vpdq_percent=vpdq_percent,
            action=action,
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
        "vpdq",
        "total",
        "action",
    )
    with database() as db, db.read_session() as session:
        for hash_list, counts in hashlists.list_summaries(session):
            cells = [str(counts.get(t, 0)) for t in ("md5", "sha1", "sha256", "pdq", "vpdq")]
            table.add_row(
                hash_list.name,
                hash_list.kind,
                "yes" if hash_list.enabled else "no",
                str(hash_list.pdq_threshold),
                *cells,
                str(sum(counts.values())),
                hash_list.action,
            )
    print_table(table)


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
def audit_verify(
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="checkpoint file [default: TAKEDOWN_HOME/audit/checkpoints.jsonl]",
            show_default=False,
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="public key the checkpoints are signed with: PEM file or hex"),
    ] = None,
) -> None:
    """Check the audit chain and its signed checkpoints; exit 1 on any break."""
    cfg = settings()
    path = checkpoints or checkpoint_path(cfg.home)
    public = _checkpoint_key(cfg.home, key)
    with database(cfg=cfg) as db, db.read_session() as session:
        report = verify_chain(session)
        anchored = check(session, path, database_name(cfg.db_url), public)
    for finding in anchored.findings[:20]:
        info(f"audit {finding.kind}: {finding.message}")
    if len(anchored.findings) > 20:
        info(f"... and {len(anchored.findings) - 20} more findings")
    if not report.ok:
        raise TakedownError(
            f"audit chain broken at event {report.first_bad_id}: {report.reason} "
            f"({report.checked} events verified before it)"
        )
    if not anchored.ok:
        kinds = sorted({f.kind for f in anchored.findings})
        raise TakedownError(
            f"audit chain does not match its checkpoints ({', '.join(kinds)}): "
            f"{len(anchored.findings)} finding(s) against {path}"
        )
    newest = anchored.newest
    against = (
        f"; matches {anchored.checked} checkpoint(s), newest at event {newest.seq} ({newest.at})"
        if newest is not None
        else f"; no checkpoints in {path} (run `takedown audit checkpoint`)"
    )
    if anchored.other_databases:
        against += f" ({anchored.other_databases} checkpoint(s) of other databases not compared)"
    info(f"audit chain intact: {report.checked} events{against}")


@audit_app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[
        Path | None,
        typer.Option("--output", help="also append the checkpoint line to this file"),
    ] = None,
) -> None:
    """Sign the chain's head and append it to TAKEDOWN_HOME/audit/checkpoints.jsonl."""
    cfg = settings()
    if output is not None and output.is_dir():
        raise UsageError(f"--output {output}: is a folder")
    if output is not None and not output.parent.is_dir():
        raise UsageError(f"--output {output}: folder {output.parent} does not exist")
    key = load_or_create_key(cfg.home)
    path = checkpoint_path(cfg.home)
    with database(cfg=cfg) as db, db.read_session() as session:
        checkpoint, new = take(session, key, path, database_name(cfg.db_url))
    if output is not None:
        append(output, checkpoint)
    state = "written to" if new else "unchanged since the last one in"
    info(f"checkpoint of event {checkpoint.seq} ({checkpoint.hash[:16]}...) {state} {path}")


def _checkpoint_key(home: Path, value: str | None) -> Ed25519PublicKey | None:
    """The pinned `--key`, else this machine's evidence key if it exists (never created)."""
    if value is not None:
        path = Path(value)
        if len(value) < 4096 and path.is_file():
            try:
                value = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"--key: cannot read {path} ({exc})") from None
        return parse_public_key(value)
    if not key_path(home).exists():
        return None
    return load_or_create_key(home).public_key()
