"""What every command shares: settings, the database, output, one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rich.console import Console

from crawler.config import Settings, load_settings
from crawler.db.session import Database

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True)


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
    target = Path(path)
    tmp = target.with_name(f".{target.name}.partial")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        yield handle
    tmp.replace(target)


def info(message: str) -> None:
    err_console.print(message, markup=False)
