"""`db`, `users`, `hashlist`, `seeds` and `audit` through the real CLI entry point."""

from __future__ import annotations

import json
import random
from pathlib import Path

from sqlalchemy import func, select, text

from crawler.db.models import AuditEvent, HashEntry, HashList, Seed, User
from crawler.db.session import Database

HEADER = "type,hash,category,reference\n"


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _good_rows(count: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    kinds = [("md5", 32), ("sha1", 40), ("sha256", 64), ("pdq", 64)]
    rows = []
    for i in range(count):
        kind, length = kinds[i % 4]
        rows.append(f"{kind},{_hex(rng, length)},{'ABC'[i % 3]},ref-{i}\n")
    return rows


def _table_counts(db_url: str) -> dict[str, int]:
    db = Database(db_url)
    names = ["hash_lists", "hash_entries", "audit_events"]
    with db.read_session() as s:
        counts = {n: int(s.execute(text(f"SELECT count(*) FROM {n}")).scalar_one()) for n in names}
    db.dispose()
    return counts


def test_hashlist_import_rejects_whole_file_naming_every_bad_line(
    env, cli, db_url, tmp_path: Path
) -> None:
    rows = _good_rows(10_000)
    rows[41] = "md5,xyz,,\n"  # line 43 (header is line 1)
    rows[4999] = "sha3,abcd,,\n"  # line 5001
    rows[9998] = "pdq," + "a" * 63 + ",,\n"  # line 10000
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "".join(rows))
    before = _table_counts(db_url)
    code, _out, err = cli("hashlist", "import", str(path), "--name", "known-a")
    assert code == 2
    assert "3 malformed rows" in err and "43, 5001, 10000" in err
    for line in (43, 5001, 10000):
        assert f"bad.csv:{line}:" in err
    assert "Traceback" not in err
    assert _table_counts(db_url) == before


def test_hashlist_reimport_changes_nothing(env, cli, db_url, tmp_path: Path) -> None:
    path = tmp_path / "good.csv"
    path.write_text("\ufeff" + HEADER + "".join(_good_rows(400)))
    assert cli("hashlist", "import", str(path), "--name", "known-a")[0] == 0
    first = _table_counts(db_url)
    code, _out, err = cli("hashlist", "import", str(path), "--name", "known-a")
    assert code == 0 and "0 added, 0 updated, 400 unchanged" in err
    second = _table_counts(db_url)
    assert second["hash_entries"] == first["hash_entries"] == 400
    assert second["hash_lists"] == 1


def test_hashlist_normalises_case_and_dedupes(env, cli, db, tmp_path: Path) -> None:
    upper = "A" * 32
    path = tmp_path / "mixed.csv"
    path.write_text(HEADER + f"MD5,{upper},A,\nmd5,{upper.lower()},A,\n")
    assert (
        cli(
            "hashlist",
            "import",
            str(path),
            "--name",
            "x",
            "--kind",
            "benign",
            "--pdq-threshold",
            "20",
        )[0]
        == 0
    )
    with db.read_session() as s:
        entries = s.execute(select(HashEntry.hash_type, HashEntry.hash)).all()
        hl = s.execute(select(HashList)).scalar_one()
    assert entries == [("md5", "a" * 32)]
    assert (hl.kind, hl.pdq_threshold) == ("benign", 20)


def test_hashlist_category_change_updates_and_bumps_version(env, cli, db, tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(HEADER + "md5," + "b" * 32 + ",A,\n")
    cli("hashlist", "import", str(path), "--name", "x")
    path.write_text(HEADER + "md5," + "b" * 32 + ",B,\n")
    code, _o, err = cli("hashlist", "import", str(path), "--name", "x")
    assert code == 0 and "1 updated" in err
    with db.read_session() as s:
        assert s.execute(select(HashEntry.category)).scalar_one() == "B"
        assert s.execute(select(HashList.version)).scalar_one() == 2


def test_hashlist_kind_conflict_and_bad_header_exit_2(env, cli, tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(HEADER + "md5," + "b" * 32 + ",,\n")
    cli("hashlist", "import", str(path), "--name", "x")
    code, _o, err = cli("hashlist", "import", str(path), "--name", "x", "--kind", "benign")
    assert code == 2 and "known list" in err
    path.write_text("kind,value\nmd5," + "b" * 32 + "\n")
    code, _o, err = cli("hashlist", "import", str(path), "--name", "y")
    assert code == 2 and "header" in err


def test_hashlist_list_shows_counts_by_type(env, cli, tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(HEADER + "".join(_good_rows(8)))
    cli("hashlist", "import", str(path), "--name", "known-a", "--pdq-threshold", "25")
    code, out, _err = cli("hashlist", "list")
    assert code == 0
    line = next(row for row in out.splitlines() if "known-a" in row)
    cells = [c.strip() for c in line.strip("│ ").split("│")]
    assert cells == ["known-a", "known", "yes", "25", "2", "2", "2", "2", "0", "8", "review"]


def test_hashlist_list_counts_video_entries_and_cuts_no_cell_when_piped(
    env, cli, tmp_path: Path
) -> None:
    """Piped or redirected (as under the test runner), the table is as wide as its cells:
    an 80-column table would cut a long list name to an ellipsis."""
    vpdq = json.dumps([f"{'c' * 64},100,0.000", f"{'d' * 64},100,1.000"])
    cell = '"' + vpdq.replace('"', '""') + '"'
    name = "exchange-ncmec-industry-video-hashes"
    path = tmp_path / "v.csv"
    path.write_text(f"{HEADER}vpdq,{cell},A,clip-1\nmd5,{'e' * 32},A,\n")
    assert cli("hashlist", "import", str(path), "--name", name)[0] == 0
    code, out, _err = cli("hashlist", "list")
    assert code == 0 and "…" not in out
    line = next(row for row in out.splitlines() if name in row)
    cells = [c.strip() for c in line.strip("│ ").split("│")]
    assert cells == [name, "known", "yes", "31", "1", "0", "0", "0", "1", "2", "review"]


def test_commands_need_schema_and_say_so(cli, empty_db_url, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAKEDOWN_DB", empty_db_url)
    code, _o, err = cli("hashlist", "list")
    assert code == 2 and "run `takedown db upgrade`" in err
    assert cli("db", "upgrade")[0] == 0
    assert cli("hashlist", "list")[0] == 0


def test_unreachable_database_exits_3_without_traceback(cli, monkeypatch) -> None:
    monkeypatch.setenv("TAKEDOWN_DB", "postgresql+psycopg://x@127.0.0.1:1/none?connect_timeout=2")
    code, _o, err = cli("hashlist", "list")
    assert code == 3 and "database unreachable" in err and "Traceback" not in err


def test_users_add_hashes_with_argon2id_and_audits(env, cli, db) -> None:
    code, _o, err = cli(
        "users", "add", "ana", "--role", "analyst", "--password-stdin", stdin="correct horse\n"
    )
    assert code == 0, err
    with db.read_session() as s:
        user = s.execute(select(User)).scalar_one()
        actions = s.execute(select(AuditEvent.action)).scalars().all()
    assert user.password_hash.startswith("$argon2id$") and "correct horse" not in user.password_hash
    assert actions == ["user.add"]
    assert (
        cli("users", "add", "ana", "--role", "analyst", "--password-stdin", stdin="another pw\n")[0]
        == 2
    )
    assert (
        cli("users", "add", "bo", "--role", "king", "--password-stdin", stdin="another pw\n")[0]
        == 2
    )
    assert cli("users", "add", "bo", "--role", "lead", "--password-stdin", stdin="short\n")[0] == 2


def test_seeds_import_validates_every_line(env, cli, db, tmp_path: Path) -> None:
    path = tmp_path / "seeds.txt"
    path.write_text("# seeds\nhttp://a.example/\n\nftp://b.example/\nhttp://[::1\n")
    code, _o, err = cli("seeds", "import", str(path), "--set", "s1")
    assert code == 2 and "line 4" in err and "line 5" in err
    path.write_text("# seeds\nhttp://a.example/\nhttps://b.example/x  \n")
    assert cli("seeds", "import", str(path), "--set", "s1")[0] == 0
    assert cli("seeds", "import", str(path), "--set", "s1")[0] == 0
    with db.read_session() as s:
        assert s.execute(select(func.count()).select_from(Seed)).scalar() == 2


def test_audit_verify_detects_tampering(env, cli, db) -> None:
    for name in ("a1", "a2", "a3"):
        cli(
            "users",
            "add",
            name,
            "--role",
            "analyst",
            "--password-stdin",
            stdin="not in any list 7\n",
        )
    assert cli("audit", "verify")[0] == 0
    with db.session() as s:
        s.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE id = 2"))
    code, _o, err = cli("audit", "verify")
    assert code == 1 and "event 2" in err


def test_two_imports_in_one_transaction(db) -> None:
    from crawler.media import hashlists

    rows = hashlists.parse_rows(HEADER + "md5," + "c" * 32 + ",A,\n", "a.csv")
    with db.session() as session:
        first = hashlists.import_rows(session, "one", rows)
        second = hashlists.import_rows(session, "two", rows, kind="benign")
    assert (first.added, second.added) == (1, 1)
