"""Usage errors and unwritable outputs exit 2 with one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crawler.db.models import AuditEvent
from crawler.db.session import Database

USAGE_ERRORS = [
    (["crawl", "--bogus"], "--bogus"),
    (["seeds", "import"], "file"),
    (["schedule", "add", "nightly"], "--cron"),
    (["nope"], "nope"),
    (["crawl", "--workers", "abc"], "--workers"),
    (["evidence", "purge", "--older-than", "-1"], "--older-than"),
]


@pytest.mark.parametrize(("args", "named"), USAGE_ERRORS, ids=lambda v: str(v))
def test_usage_errors_exit_2_with_one_line(cli, args: list[str], named: str) -> None:
    code, out, err = cli(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("takedown: error: ") and named in lines[0]
    assert "Traceback" not in err and "NoSuchOption:" not in err and out == ""


def test_bare_takedown_prints_help_on_stdout_and_exits_2(cli) -> None:
    code, out, err = cli()
    assert code == 2
    assert "Usage: takedown" in out and "crawl" in out
    assert "Error" not in err and "NoArgsIsHelpError" not in err


def test_bare_group_prints_its_help(cli) -> None:
    code, out, err = cli("hashlist")
    assert code == 2
    assert "Usage: takedown hashlist" in out and "NoArgsIsHelpError" not in err


def test_help_still_exits_0(cli) -> None:
    code, out, _ = cli("crawl", "--help")
    assert code == 0 and "Usage: takedown crawl" in out


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


def _audit_count(db: Database) -> int:
    from sqlalchemy import func, select

    with db.read_session() as s:
        return int(s.execute(select(func.count()).select_from(AuditEvent)).scalar_one())


OUTPUT_COMMANDS = [
    ["export", "media", "--format", "jsonl"],
    ["export", "candidates", "--format", "csv"],
    ["export", "hashlist"],
    ["report", "--format", "json"],
    ["notices", "export", "--format", "json"],
]


@pytest.mark.parametrize("args", OUTPUT_COMMANDS, ids=lambda v: " ".join(v[:2]))
@pytest.mark.parametrize("where", ["missing-folder", "onto-folder"])
def test_output_into_missing_folder_or_onto_folder_is_exit_2_leaving_nothing(
    cli, env: dict[str, str], db: Database, tmp_path: Path, args: list[str], where: str
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "nowhere" / "x.out" if where == "missing-folder" else out_dir
    before = _audit_count(db)
    code, _, err = cli(*args, "--output", str(target))
    assert code == 2, err
    assert err.strip().count("\n") == 0 and "--output" in err
    assert _files(out_dir) == []  # no .partial left behind
    assert _audit_count(db) == before  # nothing recorded as exported


def test_evidence_export_onto_folder_is_exit_2_leaving_nothing(
    cli, db: Database, db_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    from tests.support.evidence_seed import crawled_page

    page_id = crawled_page(db, db_url, env)
    out_dir = tmp_path / "bundles"
    out_dir.mkdir()
    before = _audit_count(db)
    for target in (out_dir, out_dir / "missing" / "b.zip"):
        code, _, err = cli("evidence", "export", str(page_id), "--output", str(target))
        assert code == 2, err
        assert "--output" in err
    assert _files(out_dir) == []
    assert _audit_count(db) == before


def test_output_failing_mid_write_leaves_no_partial(tmp_path: Path) -> None:
    from crawler.cli._common import output

    target = tmp_path / "x.jsonl"
    with pytest.raises(RuntimeError), output(str(target)) as handle:
        handle.write("half")
        raise RuntimeError("disk full")
    assert os.listdir(tmp_path) == []


# --- item 16: settings that cannot work are exit 2 naming the setting ---------------------


@pytest.mark.parametrize(
    ("name", "value", "args"),
    [
        ("TAKEDOWN_REDIS_URL", "notaurl", ["crawl"]),
        ("TAKEDOWN_REDIS_URL", "redis://", ["crawl"]),
        ("TAKEDOWN_LOG_FORMAT", "xml", ["hashlist", "list"]),
        ("TAKEDOWN_LOG_FORMAT", "xml", ["crawl"]),
    ],
)
def test_bad_settings_are_exit_2_naming_the_setting(
    cli,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    args: list[str],
) -> None:
    monkeypatch.setenv(name, value)
    code, _, err = cli(*args)
    assert code == 2, err
    assert err.strip().count("\n") == 0 and name in err and "ValueError" not in err


def test_good_settings_still_load() -> None:
    from crawler.config import load_settings

    for url in ("redis://127.0.0.1:6379/0", "rediss://u:p@cache.test:6380", "unix:///run/r.sock"):
        assert load_settings({"TAKEDOWN_REDIS_URL": url}).redis_url == url
    assert load_settings({"TAKEDOWN_LOG_FORMAT": "json"}).log_format == "json"


def test_a_redis_url_with_a_password_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    from crawler.config import load_settings
    from crawler.errors import UsageError

    with pytest.raises(UsageError) as raised:
        load_settings({"TAKEDOWN_REDIS_URL": "http://user:s3cret@cache.test/"})
    assert "s3cret" not in str(raised.value) and "TAKEDOWN_REDIS_URL" in str(raised.value)
