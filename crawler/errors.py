"""One domain error type, mapped to the contract's exit codes at the CLI edge.

Inside the code errors are typed; the CLI turns them into one line on stderr and an
exit code (`2` bad input or usage, `3` a dependency unreachable, `1` anything else).
"""

from __future__ import annotations


class TakedownError(Exception):
    """Base of every error a person is meant to read. `exit_code` is the contract's."""

    exit_code = 1


class UsageError(TakedownError):
    """Bad input or usage: a file, line or value the operator must fix (exit 2)."""

    exit_code = 2


class DependencyError(TakedownError):
    """A database, Redis or RDAP service that cannot be reached (exit 3)."""

    exit_code = 3


class SchemaMissingError(UsageError):
    """The database exists but has no (or an outdated) schema."""

    def __init__(self, detail: str = "") -> None:
        more = f" ({detail})" if detail else ""
        super().__init__(
            f"the database schema is missing or out of date{more}: run `takedown db upgrade`"
        )


class SchemaChangedError(TakedownError):
    """The schema moved while a crawl was writing (docs/hazards.md S-11): stop, then upgrade."""
