"""Hostile input refused at the door, the same on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from crawler.db.session import Database
from crawler.media.hashlists import parse_rows
from crawler.names import row_id

HEADER = "type,hash,category,reference\n"
A, B, C = "a" * 32, "b" * 32, "c" * 32


def _counts(db: Database) -> dict[str, int]:
    names = ["hash_lists", "hash_entries", "seed_sets", "seeds", "audit_events"]
    with db.read_session() as s:
        return {n: int(s.execute(text(f"SELECT count(*) FROM {n}")).scalar_one()) for n in names}


def _import(cli, tmp_path: Path, body: str, name: str = "known") -> tuple[int, str, str]:
    path = tmp_path / "list.csv"
    path.write_text(body, encoding="utf-8", newline="")
    return cli("hashlist", "import", str(path), "--name", name)


# --- item 11: a malformed CSV is rejected whole, with the line number ---------------------


def test_unterminated_quote_rejects_the_file_naming_its_line(
    cli, env, db: Database, tmp_path: Path
) -> None:
    body = HEADER + f'md5,{A},"A,ref\nmd5,{B},B,ref\nmd5,{C},C,ref\n'
    before = _counts(db)
    code, _, err = _import(cli, tmp_path, body)
    assert code == 2, err
    assert "list.csv:2:" in err and "unterminated quote" in err
    assert _counts(db) == before


def test_quoted_field_over_a_line_break_is_malformed() -> None:
    with pytest.raises(Exception) as raised:
        parse_rows(HEADER + f'md5,{A},"A\nB",ref\nmd5,{B},B,ref\n', "f.csv")
    assert raised.value.problems == [
        (2, "a quoted field runs over a line break (unterminated quote?)")
    ]  # type: ignore[attr-defined]


def test_a_200_kb_field_is_exit_2_with_its_line(cli, env, db: Database, tmp_path: Path) -> None:
    body = HEADER + f"md5,{A},A,r\nmd5,{B},B,{'x' * 200_000}\nmd5,{C},C,r\n"
    before = _counts(db)
    code, _, err = _import(cli, tmp_path, body)
    assert code == 2, err
    assert "list.csv:3:" in err and "Traceback" not in err
    assert _counts(db) == before


def test_bad_lines_after_a_csv_error_are_still_named() -> None:
    body = HEADER + f'md5,{A},"A"x,r\nmd5,zz,B,r\nmd5,{C},C,r\n'
    with pytest.raises(Exception) as raised:
        parse_rows(body, "f.csv")
    assert [n for n, _ in raised.value.problems] == [2, 3]  # type: ignore[attr-defined]


def test_good_csv_still_parses_with_bom_crlf_quotes_and_blank_lines() -> None:
    body = "\ufeff" + HEADER.replace("\n", "\r\n") + f'MD5,{A.upper()},"A, b","r ""1"""\r\n\r\n'
    rows = parse_rows(body, "f.csv")
    assert [(r.hash, r.category, r.reference) for r in rows] == [(A, "A, b", 'r "1"')]


# --- item 12: NUL (and other control characters) refused on both engines -----------------


@pytest.mark.parametrize(
    "row",
    [f"md5,{A},A\x00B,r", f"md5,{A},A,ref\x00x", f"md5,{A},A\x07,r"],
    ids=["cat", "ref", "bel"],
)
def test_control_character_in_hash_list_field_is_exit_2(
    cli, env, db: Database, tmp_path: Path, row: str
) -> None:
    before = _counts(db)
    code, _, err = _import(cli, tmp_path, HEADER + row + "\n")
    assert code == 2, err
    assert "list.csv:2:" in err and "control character" in err
    assert "DataError" not in err and "Traceback" not in err
    assert _counts(db) == before


def _seeds(cli, tmp_path: Path, body: str, name: str = "s1") -> tuple[int, str, str]:
    path = tmp_path / "seeds.txt"
    path.write_text(body, encoding="utf-8", newline="")
    return cli("seeds", "import", str(path), "--set", name)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("http://127.0.0.2/a\x00b", "control character"),
        ("http://exa mple.test/", "host"),
        ("http://site.test/\x1b[31m", "control character"),
    ],
    ids=["nul", "space-in-host", "escape"],
)
def test_bad_seed_is_exit_2_naming_the_line(
    cli, env, db: Database, tmp_path: Path, line: str, why: str
) -> None:
    before = _counts(db)
    code, _, err = _seeds(cli, tmp_path, f"http://ok.test/\n{line}\n")
    assert code == 2, err
    assert "line 2" in err and why in err and "DataError" not in err
    assert _counts(db) == before


def test_crawl_refuses_a_nul_seed_before_storing(cli, env, db: Database, tmp_path: Path) -> None:
    code, _, err = cli("crawl", "http://127.0.0.2/a\x00b")
    assert code == 2 and "control character" in err and "DataError" not in err
    with db.read_session() as s:
        assert s.execute(text("SELECT count(*) FROM crawl_runs")).scalar_one() == 0


def test_seed_file_starting_with_a_bom_is_accepted(cli, env, db: Database, tmp_path: Path) -> None:
    code, _, err = _seeds(cli, tmp_path, "\ufeffhttp://site-a.test/\n# note\nhttp://site-b.test/\n")
    assert code == 0, err
    with db.read_session() as s:
        urls = sorted(s.execute(text("SELECT url FROM seeds")).scalars())
    assert urls == ["http://site-a.test/", "http://site-b.test/"]


def test_seed_credentials_are_stripped_on_import(cli, env, db: Database, tmp_path: Path) -> None:
    code, _, err = _seeds(cli, tmp_path, "http://ann:hunter2@site-a.test:8080/x\n")
    assert code == 0, err
    with db.read_session() as s:
        urls = list(s.execute(text("SELECT url FROM seeds")).scalars())
    assert urls == ["http://site-a.test:8080/x"]
    assert "hunter2" not in err and "user name and password removed" in err


# --- item 16: one name rule; ids that cannot exist ---------------------------------------

BAD_NAMES = ["", "   ", "x" * 5000, "bad\x00name", "bad\nname", "tab\tname", " padded"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n[:12]))
def test_bad_list_and_seed_set_names_are_exit_2(
    cli, env, db: Database, tmp_path: Path, name: str
) -> None:
    before = _counts(db)
    code, _, err = _import(cli, tmp_path, HEADER + f"md5,{A},A,r\n", name=name)
    assert code == 2 and "list name" in err, err
    code, _, err = _seeds(cli, tmp_path, "http://site-a.test/\n", name=name)
    assert code == 2 and "seed set name" in err, err
    assert _counts(db) == before


def test_good_names_still_work(cli, env, db: Database, tmp_path: Path) -> None:
    name = "Liste (partner) é-1 " + "x" * 79
    assert _import(cli, tmp_path, HEADER + f"md5,{A},A,r\n", name=name)[0] == 0
    assert _seeds(cli, tmp_path, "http://site-a.test/\n", name=name)[0] == 0


def test_a_40_digit_notice_id_is_exit_2(cli, env, db: Database) -> None:
    code, _, err = cli("notices", "mark-sent", "1" * 40)
    assert code == 2, err
    assert "no such notice" in err and "Overflow" not in err and "DataError" not in err


def test_a_40_digit_run_id_to_resume_is_exit_2(cli, env, db: Database) -> None:
    code, _, err = cli("crawl", "--resume", "9" * 40)
    assert code == 2, err
    assert "no crawl run" in err and "Overflow" not in err


def test_row_id_rule() -> None:
    assert row_id("42") == 42 and row_id(" 7 ") == 7
    assert row_id(str(2**63 - 1)) == 2**63 - 1
    assert row_id(str(2**63)) is None and row_id("0") is None
    assert row_id("²") is None and row_id("TD-2026-000001") is None
