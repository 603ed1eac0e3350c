"""What every command shares: settings, the database, output, one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from crawler.config import Settings, load_settings
from crawler.db.session import Database
from crawler.errors import UsageError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


def print_table(table: Table) -> None:
    """Print a listing whole. On a terminal it fits the window; piped or redirected (no
    window to fit, rich would assume 80 columns) it is as wide as its cells, so no name
    or count is cut to an ellipsis in a file or a pipe."""
    if out_console.is_terminal:
        out_console.print(table)
        return
    wide = out_console.options.update(width=10_000)
    width = Measurement.get(out_console, wide, table).maximum
    Console(highlight=False, width=max(width, 1), file=out_console.file).print(table)


def settings() -> Settings:
    return load_settings()


@contextmanager
def database(require_schema: bool = True, cfg: Settings | None = None) -> Iterator[Database]:
    """The configured database, checked reachable (exit 3) and migrated (exit 2)."""
    db = Database((cfg or settings()).db_url)
    try:
        if require_schema:
            db.require_schema()
        else:
            db.check_reachable()
        yield db
    finally:
        db.dispose()


@contextmanager
def output(path: str | None, binary: bool = False) -> Iterator[IO[str]]:
    """`--output -` or none is standard output; a file is written whole or not at all."""
    if path in (None, "-"):
        yield sys.stdout
        sys.stdout.flush()
        return
    target, tmp = _checked_target(path)
    try:
        with tmp.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str, data: bytes) -> None:
    """`-` is standard output; a file is written whole or not at all (as `output`)."""
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    target, tmp = _checked_target(path)
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def check_output(path: str | None) -> None:
    """Exit 2 unless `path` can be an output file: standard output, or a file (not a
    folder) in a folder that exists. Commands that do work before writing call it first."""
    if path in (None, "-"):
        return
    target = Path(str(path))
    if not str(path).strip():
        raise UsageError("--output '': give a file name, or - for standard output")
    if target.is_dir():
        raise UsageError(f"--output {path!r}: is a folder; give a file name")
    if not target.parent.is_dir():
        raise UsageError(f"--output {path}: folder {str(target.parent)!r} does not exist")


def _checked_target(path: str) -> tuple[Path, Path]:
    """(file, its temporary sibling), or exit 2 before anything is written. The temporary
    file never outlives the command."""
    check_output(path)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.partial")
    try:
        tmp.open("w").close()
    except OSError as exc:
        raise UsageError(f"--output {path}: cannot write ({exc.strerror or exc})") from None
    return target, tmp


def info(message: str) -> None:
    err_console.print(message, markup=False)
