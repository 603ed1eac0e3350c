"""Commands that live outside `crawler`, found by module name at run time.

`crawler` never imports `review` (docs/architecture.md, "Import rules", checked by
`lint-imports`): the review app depends on the pipeline, not the reverse. So the
`takedown` command line does not import `review.cli`; it looks the module up by name
here, and the module adds its own commands with `register(app)`. Without the module
(a pipeline-only install) its commands are simply absent, and a command that needs it
(`takedown demo`) stops with one clear line.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import typer

from crawler.errors import TakedownError

REVIEW = "review.cli"
# Modules with `register(app: typer.Typer)`, in the order their commands are added.
COMMAND_MODULES: tuple[str, ...] = (REVIEW,)


class MissingCommands(TakedownError):
    """A command module that is not installed (exit 1)."""


def load(name: str) -> ModuleType:
    """The module `name`; `MissingCommands` if it (or its package) is not installed.
    A module that is present but fails to import raises as it is: that is a bug."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (name == missing or name.startswith(missing + ".")):
            raise MissingCommands(
                f"{name} is not installed: this command needs the `{name.split('.')[0]}` "
                "package (install takedown-crawler from a full checkout)"
            ) from exc
        raise


def register_all(app: typer.Typer) -> None:
    """Adds the commands of every installed module in `COMMAND_MODULES` to `app`."""
    for name in COMMAND_MODULES:
        try:
            module = load(name)
        except MissingCommands:
            continue
        module.register(app)
