"""Import rules (docs/architecture.md, "Import rules"): `crawler` never imports `review`.

`lint-imports` checks every contract of `.importlinter`; `takedown review ...` reaches the
command line through the registry in `crawler/cli/plugins.py`, so the pipeline's commands
still work, and say so clearly, when the `review` package is absent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.cli import plugins

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter in which the `review` package cannot be imported.
_WITHOUT_REVIEW = """
import sys
sys.modules["review"] = None
from crawler.cli import main
code = main(sys.argv[1:])
print("review modules:", sorted(m for m in sys.modules if m.startswith("review.")))
raise SystemExit(code)
"""


def _without_review(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_REVIEW, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_every_import_contract_is_kept() -> None:
    lint = shutil.which("lint-imports")
    assert lint is not None, "import-linter (dev extra) is not installed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [lint], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "crawler never imports review" in done.stdout
    assert "BROKEN" not in done.stdout


def test_review_commands_come_from_the_review_package(cli) -> None:  # type: ignore[no-untyped-def]
    assert plugins.REVIEW in plugins.COMMAND_MODULES
    code, out, _ = cli("review", "--help")
    assert code == 0
    assert "serve" in out
    assert sys.modules["review.cli"].review_app is not None


def test_without_review_the_pipeline_commands_remain() -> None:
    done = _without_review("--help")
    assert done.returncode == 0, done.stderr
    assert "crawl" in done.stdout and "notices" in done.stdout
    assert "The analyst review app" not in done.stdout
    assert "review modules: []" in done.stdout


def test_without_review_its_commands_are_a_usage_error() -> None:
    done = _without_review("review", "serve")
    assert done.returncode == 2
    assert "No such command" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_command_module_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "review.cli", None)
    with pytest.raises(plugins.MissingCommands, match=r"review\.cli is not installed") as err:
        plugins.load(plugins.REVIEW)
    assert err.value.exit_code == 1


def test_a_broken_command_module_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A module that exists but fails to import is a bug: it is raised, not skipped."""
    (tmp_path / "broken_commands.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_here"):
        plugins.load("broken_commands")
    with pytest.raises(plugins.MissingCommands):
        plugins.load("no_such_commands_module")
    monkeypatch.setattr(plugins, "COMMAND_MODULES", ("json",))
    with pytest.raises(AttributeError):  # json has no register(app)
        plugins.register_all(plugins.typer.Typer())


def test_the_demo_serves_the_review_app_from_the_registry(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`takedown demo` builds its app through `review.cli.demo_app`: previews reach only
    the synthetic site."""
    from crawler.config import load_settings

    monkeypatch.setenv("TAKEDOWN_SECRET_KEY", "import-rules-secret-key-0123456789abcdef")
    app = plugins.load(plugins.REVIEW).demo_app(load_settings(), "127.0.0.9")
    try:
        network = app.extensions["review_config"].preview.address_policy
        assert network.check("127.0.0.9") is None
        assert network.check("127.0.0.10") is not None
        assert app.test_client().get("/login").status_code == 200
    finally:
        app.extensions["review_db"].dispose()


def test_importing_review_cli_first_still_registers_its_commands() -> None:
    """review.cli imported before crawler.cli (as a test or a script may do) is no import
    cycle: `takedown review --help` still lists `serve`."""
    code = (
        "import review.cli\n"
        "from crawler.cli import main\n"
        "raise SystemExit(main(['review', '--help']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "serve" in done.stdout
