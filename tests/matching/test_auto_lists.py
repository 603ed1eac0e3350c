"""Trusted lists (`--action auto`): an exact match confirms the page with no person.

docs/interface.md: exact matches of an auto list confirm (`decided_via` `list:NAME`,
the entry's category, an audit event, ready for `notices build`); near matches still go to
review (as `confirm-match` items); benign lists win over every known list.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from crawler.db.models import AuditEvent, HashList, ReviewItem
from crawler.db.session import Database
from crawler.matching.matcher import Matcher, MatcherConfig
from crawler.reporting.exports import iter_candidates
from tests.support.matching import Cli, add_list, add_media, crawl_step, fake_hashes, flip, page_id

PDQ = "f" * 16 + "0" * 16 + "a5" * 16


def _item(db: Database, url: str) -> ReviewItem:
    with db.read_session() as session:
        item = session.execute(
            select(ReviewItem).where(ReviewItem.page_id == page_id(db, url))
        ).scalar_one()
        session.expunge(item)
        return item


def _records(db: Database) -> dict[str, dict[str, object]]:
    with db.read_session() as session:
        return {str(r["page_url"]): r for r in iter_candidates(session)}


def _set_auto(db: Database, name: str) -> None:
    with db.session() as session:
        found = session.execute(select(HashList).where(HashList.name == name)).scalar_one()
        found.action, found.version = "auto", found.version + 1


def test_exact_match_on_auto_list_confirms_without_a_person(db: Database) -> None:
    known = fake_hashes(PDQ)
    near = fake_hashes(flip(PDQ, 6))
    add_list(db, "trusted", [("sha256", known.sha256, "A"), ("pdq", str(known.pdq), "A")])
    _set_auto(db, "trusted")
    exact_id = add_media(db, known, ["http://127.0.0.1/a"])
    near_id = add_media(db, near, ["http://127.0.0.1/b"])
    with db.read_session() as session:
        matcher = Matcher.load(session, MatcherConfig())
    crawl_step(db, matcher, exact_id, "http://127.0.0.1/a")
    crawl_step(db, matcher, near_id, "http://127.0.0.1/b")

    confirmed = _item(db, "http://127.0.0.1/a")
    assert (confirmed.status, confirmed.decided_via, confirmed.category) == (
        "confirmed",
        "list:trusted",
        "A",
    )
    assert confirmed.decided_by is None
    pending = _item(db, "http://127.0.0.1/b")
    assert (pending.status, pending.review_kind, pending.decided_via) == (
        "pending",
        "confirm-match",
        None,
    )
    records = _records(db)
    a = records["http://127.0.0.1/a"]
    assert (a["decided_by"], a["decided_via"], a["review_kind"]) == (
        "list:trusted",
        "list:trusted",
        "page",
    )
    assert records["http://127.0.0.1/b"]["review_kind"] == "confirm-match"
    with db.read_session() as session:
        events = session.execute(
            select(AuditEvent).where(AuditEvent.action == "review.auto_confirm")
        ).scalars()
        details = [e.details for e in events]
    assert details == [
        {"decided_via": "list:trusted", "items": [confirmed.id], "pages": [confirmed.page_id]}
    ]


def test_review_list_still_waits_and_benign_wins_over_auto(db: Database) -> None:
    plain, both = fake_hashes(None), fake_hashes(None)
    add_list(db, "graded", [("sha256", plain.sha256, "B")])
    add_list(db, "trusted", [("sha256", both.sha256, "A")])
    _set_auto(db, "trusted")
    add_list(db, "ok", [("sha256", both.sha256, None)], kind="benign")
    a, b = add_media(db, plain, ["http://127.0.0.1/a"]), add_media(db, both, ["http://127.0.0.1/b"])
    with db.read_session() as session:
        matcher = Matcher.load(session)
    crawl_step(db, matcher, a, "http://127.0.0.1/a")
    crawl_step(db, matcher, b, "http://127.0.0.1/b")
    assert _item(db, "http://127.0.0.1/a").status == "pending"
    with db.read_session() as session:
        assert (
            session.execute(select(ReviewItem).where(ReviewItem.status == "confirmed")).all() == []
        )


def _action_cell(out: str, name: str) -> str:
    line = next(row for row in out.splitlines() if name in row)
    return [c.strip() for c in line.strip("│ ").split("│")][-1]


def _write_list(tmp_path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = tmp_path / "list.csv"
    lines = [
        "type,hash,category,reference",
        *(f"{t},{h},{c},r{i}" for i, (t, h, c) in enumerate(rows)),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_import_and_set_action_then_rematch_confirms(
    db: Database, cli: Cli, env: dict[str, str], tmp_path: Path
) -> None:
    known = fake_hashes(None)
    add_media(db, known, ["http://127.0.0.1/a", "http://127.0.0.1/b"])
    path = _write_list(tmp_path, [("sha256", known.sha256, "B")])
    code, _, err = cli(
        "hashlist", "import", str(path), "--name", "ok", "--kind", "benign", "--action", "auto"
    )
    assert code == 2 and "--action auto" in err
    code, _, err = cli("hashlist", "import", str(path), "--name", "grade", "--action", "fast")
    assert code == 2
    with db.read_session() as session:
        assert session.execute(select(HashList)).all() == []
    assert cli("hashlist", "import", str(path), "--name", "graded")[0] == 0
    assert cli("rematch")[0] == 0
    assert _item(db, "http://127.0.0.1/a").status == "pending"
    code, out, _ = cli("hashlist", "list")
    assert code == 0 and _action_cell(out, "graded") == "review"
    code, _, err = cli("hashlist", "set", "graded", "--action", "auto")
    assert code == 0, err
    assert "2 confirmed by lists" in err
    for url in ("http://127.0.0.1/a", "http://127.0.0.1/b"):
        item = _item(db, url)
        assert (item.status, item.decided_via, item.category) == ("confirmed", "list:graded", "B")
    code, out, _ = cli("hashlist", "list")
    assert _action_cell(out, "graded") == "auto"
    # rematch over an auto list imported later
    other = fake_hashes(None)
    add_media(db, other, ["http://127.0.0.1/c"])
    path2 = tmp_path / "l2.csv"
    path2.write_text(f"type,hash,category,reference\nsha256,{other.sha256},A,x\n")
    assert cli("hashlist", "import", str(path2), "--name", "fast", "--action", "auto")[0] == 0
    code, _, err = cli("rematch")
    assert code == 0 and "1 confirmed by auto lists" in err
    assert _item(db, "http://127.0.0.1/c").decided_via == "list:fast"
    code, out, _ = cli("export", "candidates", "--format", "jsonl")
    assert code == 0
    recs = {json.loads(line)["page_url"]: json.loads(line) for line in out.splitlines() if line}
    assert recs["http://127.0.0.1/c"]["decided_by"] == "list:fast"
    assert cli("hashlist", "set", "ok-missing", "--action", "auto")[0] == 2


def test_a_page_an_auto_list_confirmed_goes_into_the_next_notices_build(db: Database) -> None:
    from crawler.db.models import NoticeUrl, Page
    from crawler.notices.build import build_notices
    from tests.support import notice_seed as seed
    from tests.support.notice_seed import T0

    known = fake_hashes(None)
    add_list(db, "trusted", [("md5", known.md5, "A")])
    _set_auto(db, "trusted")
    url = "http://127.0.0.1/auto"
    media_id = add_media(db, known, [url])
    with db.session() as s:
        host = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@hoster.example")
        s.execute(Page.__table__.update().values(host_id=host.id))
    with db.read_session() as session:
        matcher = Matcher.load(session)
    crawl_step(db, matcher, media_id, url)
    item = _item(db, url)
    assert (item.status, item.decided_via) == ("confirmed", "list:trusted")
    with db.session() as s:
        build_notices(s, seed.settings(), T0)
    with db.read_session() as s:
        noticed = s.execute(select(NoticeUrl.open_item_id)).scalars().all()
    assert noticed == [item.id]
