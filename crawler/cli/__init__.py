"""The `takedown` command line.

Commands are thin: they parse arguments, call a service and print. Domain errors
(`crawler.errors`) become one line on stderr and the contract's exit code here, at the
edge: 2 bad input, 3 a dependency unreachable, 1 anything else; no traceback unless
`--debug`.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click
import typer

from crawler.cli import admin, plugins
from crawler.cli import crawl as crawl_cli
from crawler.cli import demo as demo_cli
from crawler.cli import export as export_cli
from crawler.cli import matching as matching_cli
from crawler.cli import notices as notices_cli
from crawler.cli import recheck as recheck_cli
from crawler.cli import report as report_cli
from crawler.cli import schedule as schedule_cli
from crawler.cli.evidence import evidence_app
from crawler.cli.exchange import exchange_app
from crawler.errors import TakedownError

app = typer.Typer(
    name="takedown",
    help="Crawl, hash, match, review and notice: the open pipeline for hotlines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(admin.db_app, name="db")
app.add_typer(admin.users_app, name="users")
app.add_typer(admin.hashlist_app, name="hashlist")
app.add_typer(admin.seeds_app, name="seeds")
app.add_typer(admin.audit_app, name="audit")
plugins.register_all(app)  # `takedown review ...` from review.cli (crawler never imports review)
app.add_typer(notices_cli.notices_app, name="notices")
app.command("report")(report_cli.report_command)
export_cli.export_app.command("hashlist")(report_cli.export_hashlist_command)
app.add_typer(schedule_cli.schedule_app, name="schedule")
app.add_typer(schedule_cli.scheduler_app, name="scheduler")
app.add_typer(export_cli.export_app, name="export")
app.add_typer(export_cli.hosts_app, name="hosts")
app.add_typer(evidence_app, name="evidence")
app.add_typer(exchange_app, name="exchange")
app.command("rematch")(matching_cli.rematch_command)
app.command("crawl")(crawl_cli.crawl)
app.command("recheck")(recheck_cli.recheck_command)
app.command("demo")(demo_cli.demo)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="show tracebacks for every error"),
) -> None:
    """takedown-crawler."""


def _fail(message: str, code: int) -> int:
    print(f"takedown: error: {message}", file=sys.stderr)
    return code


def _setup_logging() -> None:
    """JSON or text log lines with hostile values encoded (E-10); bad settings are
    reported by the command itself, which reads them again."""
    from crawler import logs
    from crawler.config import load_settings

    try:
        logs.setup(load_settings().log_format)
    except TakedownError:
        logs.setup("text")


_Errors = tuple[type[Exception], ...]


def _click_errors() -> tuple[_Errors, _Errors, _Errors, _Errors]:
    """(usage errors, other click errors, exits, aborts) of click *and* of the copy of
    click that newer typer releases bundle (`typer._click`): typer raises its own
    classes, which `except click.UsageError` never catches."""
    modules: list[Any] = [click.exceptions]
    try:
        from typer._click import exceptions as bundled  # type: ignore[import-not-found,unused-ignore]

        modules.append(bundled)
    except ImportError:  # typer built on the click package itself
        pass
    usage: _Errors = tuple(m.UsageError for m in modules)
    other: _Errors = tuple(m.ClickException for m in modules)
    exits: _Errors = tuple({click.exceptions.Exit, typer.Exit})
    aborts: _Errors = tuple({click.exceptions.Abort, typer.Abort})
    return usage, other, exits, aborts


_USAGE, _CLICK, _EXIT, _ABORT = _click_errors()


def _one_line(exc: Any) -> str:
    return " ".join(str(exc.format_message()).split())


def _usage_line(exc: Any) -> str:
    """A usage error as one line: the message and where help is."""
    message = _one_line(exc)
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "takedown"
    return f"{message} (see `{where} --help`)"


def _usage_exit(exc: Any) -> int:
    """Usage errors exit 2 with one line. A group run without a command (bare `takedown`,
    `takedown hashlist`) prints its help on standard output and exits 2 too."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        text = str(exc.format_message())
        if text.strip():  # plain click returns the help; rich typer has printed it already
            print(text)
        return 2
    return _fail(_usage_line(exc), 2)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    _setup_logging()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="takedown", standalone_mode=False)
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0))
    except _USAGE as exc:
        return _usage_exit(exc)
    except _CLICK as exc:
        return _fail(_one_line(exc), int(getattr(exc, "exit_code", 1)))
    except _ABORT:
        return _fail("interrupted", 130)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except TakedownError as exc:
        if debug:
            traceback.print_exc()
        return _fail(str(exc), exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the edge: anything else is exit 1
        if debug:
            traceback.print_exc()
        return _fail(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)", 1)
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
