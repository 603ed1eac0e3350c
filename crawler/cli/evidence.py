"""`takedown evidence export|verify|key|purge`: thin layers over `crawler.evidence`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crawler.cli._common import (
    check_output,
    database,
    info,
    out_console,
    settings,
    write_bytes,
)
from crawler.errors import UsageError
from crawler.evidence.bundle import PageRef, export_bundle
from crawler.evidence.keys import (
    key_id,
    load_or_create_key,
    parse_public_key,
    public_pem,
    public_raw,
)
from crawler.evidence.records import DEFAULT_RETENTION_DAYS, purge
from crawler.evidence.verify import verify_bundle

ACTOR = "cli"

evidence_app = typer.Typer(
    help="Evidence records: signed, verifiable bundles of what the crawler saw (no media).",
    no_args_is_help=True,
)


def _write(path: str, data: bytes) -> None:
    """'-' is standard output; a file is written whole or not at all."""
    write_bytes(path, data)


def _page_ref(reference: str | None, page: int | None, item: int | None) -> PageRef:
    """Exactly one of REFERENCE (page id or URL), --page, --item (exit 2 otherwise)."""
    given = sum(v is not None for v in (reference, page, item))
    if given != 1:
        raise UsageError(
            "evidence export: name one page: PAGE_ID or URL, --page ID, or --item ID"
            + (" (not several)" if given else "")
        )
    if reference is None:
        return PageRef(page_id=page, item_id=item)
    if reference.isascii() and reference.isdigit():
        return PageRef(page_id=int(reference))
    if "://" in reference:
        return PageRef(url=reference)
    raise UsageError(f"evidence export: {reference!r} is neither a page id nor a URL")


@evidence_app.command("export")
def export_command(
    output: Annotated[str, typer.Option("--output", help="bundle file (zip); '-' for stdout")],
    reference: Annotated[
        str | None,
        typer.Argument(
            metavar="[PAGE_ID|URL]",
            help="the page: its page id (`page_id` in `export candidates`, not `id`) or its URL",
            show_default=False,
        ),
    ] = None,
    page: Annotated[
        int | None, typer.Option("--page", help="page id (`page_id` in `export candidates`)")
    ] = None,
    item: Annotated[
        int | None, typer.Option("--item", help="review item id (`id` in `export candidates`)")
    ] = None,
) -> None:
    """Write a signed bundle: manifest, WARCs, media hashes, decisions, audit excerpt.

    Name the page by exactly one of: --item ID (the review item, `id` in `export
    candidates`), --page ID or a bare PAGE_ID (`page_id` there), or the page's URL. A
    reference that names no page exits 2 and writes nothing.
    """
    ref = _page_ref(reference, page, item)
    check_output(output)
    cfg = settings()
    with database(cfg=cfg) as db:
        result = export_bundle(db, cfg.home, ref, actor=ACTOR)
    _write(output, result.data)
    info(
        f"page {result.page_id}: {result.records} record(s), {result.media} media, "
        f"{result.audit_events} audit event(s); bundle sha256 {result.sha256}"
    )


def _pinned_key(value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value)
    if len(value) < 4096 and path.is_file():
        try:
            return path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--key: cannot read {path} ({exc})") from None
    return value


@evidence_app.command("verify")
def verify_command(
    file: Annotated[Path, typer.Argument(help="the bundle to check")],
    key: Annotated[
        str | None,
        typer.Option("--key", help="expected public key: PEM file, or 64 hex digits"),
    ] = None,
) -> None:
    """Check signature, member digests, WARC digests and the audit chain (exit 1 if any fails)."""
    pinned_text = _pinned_key(key)
    pinned = parse_public_key(pinned_text) if pinned_text is not None else None
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{file}: cannot read ({exc.strerror})") from None
    report = verify_bundle(data, pinned)
    trust = "pinned key" if report.pinned else "embedded key (pass --key to pin it)"
    out_console.print(
        f"OK {file}: page {report.page_id} {report.url}; {report.records} record(s), "
        f"{report.warc_records} WARC record(s) digest-checked, {report.media} media, "
        f"{report.audit_events} audit event(s) ({report.audit_links} link(s) checked); "
        f"signed by {report.key_id}, {trust}",
        markup=False,
    )


@evidence_app.command("key")
def key_command(
    fmt: Annotated[
        str, typer.Option("--format", help="pem (default) or hex (raw 32 bytes)")
    ] = "pem",
) -> None:
    """Print the public key that signs bundles (created on first use)."""
    if fmt not in ("pem", "hex"):
        raise UsageError(f"--format: {fmt!r} is not one of pem, hex")
    public = load_or_create_key(settings().home).public_key()
    text = public_pem(public).rstrip("\n") if fmt == "pem" else public_raw(public).hex()
    print(text)
    info(f"key id {key_id(public)}")


@evidence_app.command("purge")
def purge_command(
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            min=0,
            help=f"retention in days: records created earlier are removed (default {DEFAULT_RETENTION_DAYS})",
        ),
    ] = DEFAULT_RETENTION_DAYS,
) -> None:
    """Remove evidence records (rows and WARC files) past retention; safe to re-run."""
    cfg = settings()
    with database(cfg=cfg) as db:
        result = purge(db, cfg.home, older_than, actor=ACTOR)
    info(
        f"purged {result.rows} record(s) and {result.files} WARC file(s) "
        f"created before {result.cutoff.isoformat()}"
    )
