"""`takedown exchange` with the library's local-file exchange: fetch, update, deletion,
resume after kill -9, credentials files, schedules."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from crawler.db.models import Exchange, ExchangeRecord, HashEntry, HashList, Schedule
from crawler.db.session import Database
from crawler.engine.scheduling import commands_for


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _signals(count: int, seed: int = 1) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    kinds = [("pdq", "pdq", 64), ("video_md5", "md5", 32), ("video_sha256", "sha256", 64)]
    return [(kinds[i % 3][0], _hex(rng, kinds[i % 3][2])) for i in range(count)]


def _write(path: Path, signals: list[tuple[str, str]], extra: str = "") -> None:
    path.write_text("".join(f"{t} {v}\n" for t, v in signals) + extra)


OURS = {"pdq": "pdq", "video_md5": "md5", "video_sha256": "sha256"}


def _expected(signals: list[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(OURS[t], v.lower()) for t, v in signals}


def _entries(db: Database, list_name: str) -> set[tuple[str, str]]:
    with db.read_session() as s:
        rows = s.execute(
            select(HashEntry.hash_type, HashEntry.hash)
            .join(HashList, HashList.id == HashEntry.list_id)
            .where(HashList.name == list_name)
        )
        return {(t, h) for t, h in rows}


def _exchange(db: Database, name: str) -> Exchange:
    with db.read_session() as s:
        row = s.execute(select(Exchange).where(Exchange.name == name)).scalar_one()
        s.expunge(row)
        return row


def test_local_file_fetch_update_and_deletion(env, cli, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "signals.txt"
    first = _signals(300)
    _write(
        path,
        first,
        "url https://example.test/a\nraw_text hello\npdq not-a-hash\nvideo_md5 " + "AB" * 16 + "\n",
    )
    code, _, err = cli(
        "exchange",
        "add",
        "hotline-file",
        "--api",
        "local_file",
        "--list",
        "fx",
        "--file",
        str(path),
        "--pdq-threshold",
        "20",
    )
    assert code == 0, err
    code, _, err = cli("exchange", "fetch", "hotline-file")
    assert code == 0, err
    assert "301 entries added, 0 removed" in err
    assert "1 malformed, 1 raw_text, 1 url" in err  # counted and skipped
    assert _entries(db, "fx") == _expected(first) | {("md5", "ab" * 16)}
    with db.read_session() as s:
        hash_list = s.execute(select(HashList).where(HashList.name == "fx")).scalar_one()
        assert hash_list.pdq_threshold == 20 and hash_list.kind == "known"
    version = hash_list.version

    # Upstream change: 50 gone, 20 new; a re-fetch applies exactly that.
    second = first[50:] + _signals(20, seed=2)
    _write(path, second)
    code, _, err = cli("exchange", "fetch")
    assert code == 0, err
    assert "20 entries added, 51 removed" in err
    assert _entries(db, "fx") == _expected(second)
    with db.read_session() as s:
        hash_list = s.execute(select(HashList).where(HashList.name == "fx")).scalar_one()
        assert hash_list.version > version
    assert not _exchange(db, "hotline-file").full_fetch

    # Unchanged: nothing added or removed.
    code, _, err = cli("exchange", "fetch", "hotline-file")
    assert code == 0 and "0 entries added, 0 removed" in err

    code, out, _ = cli("exchange", "list")
    assert "hotline-file" in out and "local_file" in out and "270" in out


def test_add_refuses_bad_input_with_exit_2(env, cli, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    _write(path, _signals(3))
    cases = [
        ("x", "--api", "nope", "--list", "l1", "--file", str(path)),
        ("x", "--api", "local_file", "--list", "l1"),
        ("bad\x00name", "--api", "local_file", "--list", "l1", "--file", str(path)),
        ("x", "--api", "local_file", "--list", "l1", "--file", str(path), "--option", "zzz=1"),
    ]
    for args in cases:
        code, _, err = cli("exchange", "add", *args)
        assert code == 2, (args, err)
        assert "Traceback" not in err
    with db.read_session() as s:
        assert s.execute(select(Exchange)).first() is None
        assert s.execute(select(HashList)).first() is None
    assert (
        cli("exchange", "add", "a", "--api", "local_file", "--list", "l1", "--file", str(path))[0]
        == 0
    )
    # One list, one exchange.
    code, _, err = cli(
        "exchange", "add", "b", "--api", "local_file", "--list", "l1", "--file", str(path)
    )
    assert code == 2 and "already fed" in err
    assert cli("exchange", "fetch", "nope")[0] == 2
    assert cli("exchange", "remove", "a")[0] == 0
    assert _entries(db, "l1") == set()  # the list stays
    assert cli("exchange", "remove", "a")[0] == 2


_KILLER = """
import os, signal, sys
from crawler.matching import exchanges
from crawler.cli import main

point = sys.argv[1]
if point == "mid-batch":
    real = exchanges._replace_records
    calls = []
    def die_in_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    exchanges._replace_records = die_in_second_chunk
else:
    def die_before_sweep(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    exchanges._sweep = die_before_sweep
sys.exit(main(["exchange", "fetch", "kx"]))
"""


def _killed_fetch(env: dict[str, str], point: str) -> int:
    child_env = {**os.environ, **env, "PYTHONPATH": str(Path.cwd())}
    result = subprocess.run(
        [sys.executable, "-c", _KILLER, point], env=child_env, capture_output=True, timeout=300
    )
    return result.returncode


def test_fetch_resumes_after_kill_9(env, cli, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "signals.txt"
    first = _signals(5_000)  # more than one write chunk
    _write(path, first)
    assert (
        cli("exchange", "add", "kx", "--api", "local_file", "--list", "kl", "--file", str(path))[0]
        == 0
    )

    # Killed half-way through the batch: nothing of it is in the list.
    assert _killed_fetch(env, "mid-batch") == -9
    assert _entries(db, "kl") == set()
    with db.read_session() as s:
        assert s.execute(select(ExchangeRecord)).first() is None
    code, _, err = cli("exchange", "fetch", "kx")
    assert code == 0, err
    assert _entries(db, "kl") == _expected(first)

    # Killed after the batch, before the deletions of the full fetch were swept: the
    # next fetch finishes the same full fetch.
    second = first[1000:]
    _write(path, second)
    assert _killed_fetch(env, "before-sweep") == -9
    assert _exchange(db, "kx").full_fetch
    assert _entries(db, "kl") == _expected(first)  # the batch, no deletions yet
    code, _, err = cli("exchange", "fetch", "kx")
    assert code == 0, err
    assert "1000 removed" in err
    assert _entries(db, "kl") == _expected(second)
    assert not _exchange(db, "kx").full_fetch


def test_missing_file_fails_with_exit_1_and_keeps_the_list(
    env, cli, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "s.txt"
    signals = _signals(10)
    _write(path, signals)
    cli("exchange", "add", "m", "--api", "local_file", "--list", "ml", "--file", str(path))
    assert cli("exchange", "fetch", "m")[0] == 0
    path.unlink()
    code, _, err = cli("exchange", "fetch", "m")
    assert code == 1 and "Traceback" not in err
    assert _entries(db, "ml") == _expected(signals)
    assert _exchange(db, "m").last_status == "failed"


def test_credentials_file_must_be_private(env, cli, db: Database, tmp_path: Path) -> None:
    secret = "user-7f3a:pw-9c1e5d2b"
    creds = tmp_path / "ncmec.creds"
    creds.write_text(secret + "\n")
    add_ncmec = (
        "exchange",
        "add",
        "n",
        "--api",
        "ncmec",
        "--list",
        "nl",
        "--credentials-file",
        str(creds),
        "--option",
        "environment=Industry",
    )
    for mode in (0o644, 0o640, 0o604):
        creds.chmod(mode)
        code, _, err = cli(*add_ncmec)
        assert code == 2, err
        assert "chmod 600" in err and secret not in err
    with db.read_session() as s:
        assert s.execute(select(Exchange)).first() is None
    creds.chmod(0o600)
    code, _, err = cli(*add_ncmec)
    assert code == 0, err
    # Loosened later: the fetch refuses before any network use.
    creds.chmod(0o644)
    code, _, err = cli("exchange", "fetch", "n")
    assert code == 2 and "readable by group or others" in err
    # The secret is nowhere in the database.
    from sqlalchemy import text

    with db.read_session() as s:
        for table in ("exchanges", "audit_events"):
            for row in s.execute(text(f"SELECT * FROM {table}")):
                assert "pw-9c1e5d2b" not in str(tuple(row))
    # No file and no environment variable: exit 2 naming the variable.
    cli("exchange", "add", "n2", "--api", "tat", "--list", "tl")
    code, _, err = cli("exchange", "fetch", "n2")
    assert code == 2 and "TAKEDOWN_EXCHANGE_N2_CREDENTIALS" in err


def test_schedule_runs_exchange_fetch_first(env, cli, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    _write(path, _signals(3))
    cli("exchange", "add", "sx", "--api", "local_file", "--list", "sl", "--file", str(path))
    assert cli("schedule", "add", "nightly", "--cron", "0 3 * * *", "--exchange", "nope")[0] == 2
    code, _, err = cli(
        "schedule", "add", "nightly", "--cron", "0 3 * * *", "--exchange", "sx", "--recheck"
    )
    assert code == 0, err
    with db.read_session() as s:
        schedule = s.execute(select(Schedule)).scalar_one()
        steps = commands_for(schedule, "py")
    assert steps[0] == ["py", "-m", "crawler", "exchange", "fetch", "sx"]
    assert steps[1][3:5] == ["recheck", "--due"]


def test_list_shows_hostile_list_names_as_text(env, cli, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    _write(path, _signals(3))
    hostile = "[bold red]x[/bold red]"
    assert (
        cli("exchange", "add", "hx", "--api", "local_file", "--list", hostile, "--file", str(path))[
            0
        ]
        == 0
    )
    code, out, _ = cli("exchange", "list")
    assert code == 0 and hostile in out


def test_one_fetch_at_a_time(env, cli, db: Database, tmp_path: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from crawler.db.types import utcnow

    path = tmp_path / "s.txt"
    _write(path, _signals(3))
    cli("exchange", "add", "lx", "--api", "local_file", "--list", "ll", "--file", str(path))
    later = utcnow() + timedelta(minutes=5)
    with db.session() as s:
        s.execute(update(Exchange).values(lock_owner="elsewhere:4242", lock_until=later))
    code, _, err = cli("exchange", "fetch", "lx")
    assert code == 1 and "already running (elsewhere:4242)" in err
    assert _entries(db, "ll") == set()
    # A holder on this machine whose process is gone: taken over.
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    import socket

    dead = f"{socket.gethostname()[:80]}:{finished.stdout.strip()}"
    with db.session() as s:
        s.execute(update(Exchange).values(lock_owner=dead, lock_until=later))
    assert cli("exchange", "fetch", "lx")[0] == 0
    assert _entries(db, "ll") == _expected(_signals(3))
    assert _exchange(db, "lx").lock_owner is None
