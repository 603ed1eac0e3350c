"""Log lines a person and a log pipeline can trust (docs/hazards.md E-10).

Crawled URLs, titles and headers end up in log messages; they may hold CR/LF (forged
lines), ANSI escapes (a rewritten terminal) or megabytes of text. Both formats here
encode every control character, cap each message, and stamp times in UTC:

- `json`: one JSON object per line (`ts`, `level`, `logger`, `msg`), for log shippers;
- `text`: `2026-11-22T10:00:00Z INFO logger: message`, with controls shown as `\\x1b`.

`TAKEDOWN_LOG_FORMAT` chooses; by default text on a terminal and JSON otherwise. Media
bytes are never logged by the code; this layer only makes sure what is logged is safe.

Scrapy runs with `LOG_INSTALL_ROOT_HANDLER = False` (this module's handler is the root
handler), so Scrapy never applies `LOG_LEVEL` itself: `apply_level` does, on the loggers.

Scrapy's start-up dumps (its version and the versions of its dependencies, the reactor,
every overridden setting, every enabled add-on, extension, middleware and pipeline) are
logged at INFO; `DemoteStartup` (installed by `setup` and by the add-on) turns them into
DEBUG records, so an operator's INFO log carries what they act on and `LOG_LEVEL=DEBUG`
still shows them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

MAX_MESSAGE = 4000
_CONTROLS = {c: f"\\x{c:02x}" for c in range(32) if c not in (9,)} | {127: "\\x7f"}


def clean(text: str, limit: int = MAX_MESSAGE) -> str:
    """Control characters shown escaped, the whole cut to `limit` characters."""
    if len(text) > limit:
        text = text[:limit] + f"… [{len(text) - limit} more characters]"
    return text.translate(_CONTROLS)


def _utc(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        doc = {"ts": _utc(record), "level": record.levelname, "logger": record.name}
        doc["msg"] = clean(message)
        return json.dumps(doc, ensure_ascii=True)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += " | " + self.formatException(record.exc_info)
        return f"{_utc(record)} {record.levelname} {record.name}: {clean(message)}"


def formatter_for(name: str | None, stream: TextIO) -> logging.Formatter:
    if name is None:
        name = "text" if stream.isatty() else "json"
    if name not in ("json", "text"):
        from crawler.errors import UsageError

        raise UsageError(f"TAKEDOWN_LOG_FORMAT: {name!r} is not json or text")
    return JsonFormatter() if name == "json" else TextFormatter()


# Scrapy's start-up messages (format strings, as logged) and the loggers that log them.
STARTUP_LOGGERS = (
    "scrapy.utils.log",  # "Scrapy 2.x started", "Versions:", "Using reactor", event loop
    "scrapy.crawler",  # "Overridden settings:"
    "scrapy.addons",  # "Enabled addons:"
    "scrapy.middleware",  # "Enabled extensions / downloader middlewares / ... :"
    "scrapy.extensions.telnet",  # "Telnet console listening" (when it is enabled)
)
STARTUP_MESSAGES = (
    "Scrapy %(version)s started",
    "Versions:",
    "Using reactor",
    "Using asyncio event loop",
    "Overridden settings:",
    "Enabled addons:",
    "Enabled %(componentname)ss:",
    "Telnet console listening",
)


class DemoteStartup(logging.Filter):
    """On Scrapy's start-up loggers: an INFO start-up dump becomes a DEBUG record.

    DEBUG records of these loggers pass only when the root logger (our `LOG_LEVEL`)
    allows DEBUG: Scrapy's `configure_logging` sets its own loggers to DEBUG when the
    process is created, before the add-on applies `LOG_LEVEL` to them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith(STARTUP_MESSAGES):
            record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        if record.levelno <= logging.DEBUG:
            return logging.getLogger().isEnabledFor(record.levelno)
        return True


def demote_startup() -> None:
    """Install `DemoteStartup` on Scrapy's start-up loggers (once)."""
    for name in STARTUP_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, DemoteStartup) for f in target.filters):
            target.addFilter(DemoteStartup())


def apply_level(level: int | str) -> None:
    """Scrapy's `LOG_LEVEL` for the whole process, as its own root handler would apply it.

    Scrapy sets its loggers to DEBUG and leaves the filtering to that handler; without
    it every page cost two DEBUG records ("Crawled", "Scraped from" with the item's repr),
    built, formatted and written whatever `LOG_LEVEL` said. On the loggers, a record below
    the level is never built: one cached comparison per call.
    """
    number = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(number, int):
        from crawler.errors import UsageError

        raise UsageError(f"LOG_LEVEL: {level!r} is not a logging level")
    logging.getLogger().setLevel(number)
    logging.getLogger("scrapy").setLevel(number)


def redirect(path: str) -> None:
    """Scrapy's `LOG_FILE` with our root handler: the lines go to *path* (appended), in
    the format already chosen, instead of stderr (the live progress display owns the
    terminal). Scrapy would only have done this with its own root handler."""
    root = logging.getLogger()
    formatter = next((h.formatter for h in root.handlers if h.formatter), None)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(formatter or JsonFormatter())
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)


def setup(name: str | None, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Route the root logger (and so Scrapy's) through one safe handler on stderr."""
    target = stream or sys.stderr
    handler = logging.StreamHandler(target)
    handler.setFormatter(formatter_for(name, target))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # "Context impl …" is noise
    demote_startup()
