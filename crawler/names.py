"""Shared rules for text an operator types or a file supplies: names and stored fields.

One rule for every name a person gives (hash lists, seed sets): 1 to 100 printable
characters, no leading or trailing space. Stored fields from files (hash-list categories
and references, seed URLs) may not hold control characters: a NUL is stored by SQLite but
refused by PostgreSQL, so it is refused at input on both (exit 2).
"""

from __future__ import annotations

import re

from crawler.errors import UsageError

MAX_NAME = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def control_character(text: str) -> str | None:
    """The first control character of `text` as an escape (`\\x00`), or None."""
    found = _CONTROL.search(text)
    return None if found is None else f"\\x{ord(found.group()):02x}"


def name_problem(value: str) -> str | None:
    """Why `value` cannot be a name, or None."""
    if not value.strip():
        return "is empty"
    if len(value) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        return f"holds a control or invisible character (\\u{ord(bad):04x})"
    if value != value.strip():
        return "starts or ends with a space"
    return None


def check_name(value: str, what: str) -> str:
    """`value` if it is a good name, else UsageError (exit 2) naming `what` and why."""
    problem = name_problem(value)
    if problem:
        raise UsageError(f"{what} {value[:40]!r}: {problem} (1 to {MAX_NAME} printable characters)")
    return value


MAX_ROW_ID = 2**63 - 1  # the largest id either engine stores (BIGINT)


def row_id(text: str) -> int | None:
    """`text` as a row id when it is one (ASCII digits, 1 to 2**63-1), else None: a
    40-digit id names no row on either engine instead of overflowing the driver."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if 0 < number <= MAX_ROW_ID else None
