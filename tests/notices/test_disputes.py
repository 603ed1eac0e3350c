"""Disputes: a provider disputes, a second lead re-assesses (four-eyes), upheld / withdrawn."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from crawler.accounts.users import add_user
from crawler.db.models import AuditEvent, Decision, Notice, NoticeDispute, ReviewItem
from crawler.db.session import Database
from tests.support import notice_seed as seed


def _seed(db: Database) -> dict[str, int]:
    """Two URLs of one host; `a` decided by ann (countersigned by lee), `b` by a list."""
    with db.session() as s:
        ids = {name: add_user(s, name, role, "pw-" * 6).id for name, role in (
            ("ann", "analyst"), ("lee", "lead"), ("lou", "lead"), ("leo", "lead"),
        )}  # fmt: skip
        h = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@hoster.example")
        a = seed.item(s, h, url="http://a.example.net/a")
        a.decided_by, a.countersigned_by = ids["ann"], ids["lee"]
        s.add(Decision(item_id=a.id, user_id=ids["lou"], action="confirm", item_version=1))
        b = seed.item(s, h, url="http://a.example.net/b")  # no person: a trusted list
        ids["a"], ids["b"] = a.id, b.id
    return ids


def _serial(db: Database) -> str:
    with db.read_session() as s:
        return s.execute(select(Notice.serial)).scalar_one()


def _disputes(db: Database) -> dict[int, tuple[int, str | None]]:
    with db.read_session() as s:
        rows = s.execute(select(NoticeDispute)).scalars()
        return {d.id: (d.item_id, d.outcome) for d in rows}


def _actions(db: Database, prefix: str) -> list[str]:
    with db.read_session() as s:
        rows = s.execute(
            select(AuditEvent.action).where(AuditEvent.action.like(prefix + "%"))
        ).scalars()
        return list(rows)


def test_dispute_then_four_eyes_then_upheld(env, cli, db: Database) -> None:
    ids = _seed(db)
    assert cli("notices", "build")[0] == 0
    serial = _serial(db)
    code, _, err = cli("notices", "dispute", serial, "--reason", "Not ours \r\n<b>x</b>")
    assert code == 0, err
    disputes = _disputes(db)
    assert sorted(v[0] for v in disputes.values()) == [ids["a"], ids["b"]]
    assert _actions(db, "notice.disputed") == ["notice.disputed"]
    code, out, _ = cli("notices", "disputes")
    assert out.count(serial) == 2 and "\r" not in out
    # disputing again while open adds nothing
    assert cli("notices", "dispute", serial, "--reason", "again")[0] == 0
    assert len(_disputes(db)) == 2
    dispute_a = next(k for k, v in disputes.items() if v[0] == ids["a"])
    # the decider, the countersigner, the confirming lead, an analyst: all refused
    for name in ("lee", "lou", "ann"):
        code, _, err = cli(
            "notices", "resolve-dispute", str(dispute_a), "--outcome", "upheld", "--lead", name
        )
        assert code == 2, (name, err)
    assert (
        "four-eyes"
        in cli(
            "notices", "resolve-dispute", str(dispute_a), "--outcome", "upheld", "--lead", "lee"
        )[2]
    )
    assert _disputes(db)[dispute_a][1] is None and _actions(db, "dispute.") == []
    code, _, err = cli(
        "notices", "resolve-dispute", str(dispute_a), "--outcome", "upheld", "--lead", "leo"
    )
    assert code == 0, err
    assert _disputes(db)[dispute_a] == (ids["a"], "upheld")
    assert _actions(db, "dispute.") == ["dispute.upheld"]
    with db.read_session() as s:
        assert s.execute(select(Notice.status)).scalar_one() == "draft"
        assert s.get(ReviewItem, ids["a"]).status == "confirmed"  # type: ignore[union-attr]
    # resolved once: resolving again is bad input; so is an unknown outcome
    args = ("notices", "resolve-dispute", str(dispute_a), "--lead", "leo")
    assert cli(*args, "--outcome", "withdrawn")[0] == 2
    assert cli("notices", "resolve-dispute", "999", "--outcome", "upheld", "--lead", "leo")[0] == 2


def test_withdrawn_url_leaves_every_open_notice_and_the_url_list(
    env, cli, db: Database, tmp_path: Path
) -> None:
    ids = _seed(db)
    assert cli("notices", "build")[0] == 0
    serial = _serial(db)
    code, _, err = cli(
        "notices", "dispute", serial, "--reason", "legal", "--url", "http://a.example.net/b"
    )
    assert code == 0, err
    assert cli("notices", "dispute", serial, "--reason", "x", "--url", "http://nope/")[0] == 2
    (dispute_b,) = _disputes(db)
    # decided by a list (no person): any lead may re-assess
    code, _, err = cli(
        "notices", "resolve-dispute", str(dispute_b), "--outcome", "withdrawn", "--lead", "lee"
    )
    assert code == 0, err
    target = tmp_path / "n.json"
    assert cli("notices", "export", "--format", "json", "--output", str(target))[0] == 0
    (record,) = json.loads(target.read_text())
    assert [u["url"] for u in record["urls"]] == ["http://a.example.net/a"]
    assert record["status"] == "draft"
    code, out, _ = cli("export", "candidates", "--status", "confirmed")
    assert code == 0
    assert [json.loads(line)["page_url"] for line in out.splitlines()] == ["http://a.example.net/a"]
    with db.read_session() as s:
        item = s.get(ReviewItem, ids["b"])
        assert item is not None and item.status == "rejected"
    # a new build never notices it again
    assert cli("notices", "build")[0] == 0
    with db.read_session() as s:
        assert len(s.execute(select(Notice)).scalars().all()) == 1
    assert _actions(db, "dispute.") == ["dispute.withdrawn"]
    # withdrawing the last URL closes the notice
    assert cli("notices", "dispute", serial, "--reason", "all")[0] == 0
    dispute_a = max(_disputes(db))
    code, _, err = cli(
        "notices", "resolve-dispute", str(dispute_a), "--outcome", "withdrawn", "--lead", "leo"
    )
    assert code == 0, err
    with db.read_session() as s:
        notice = s.execute(select(Notice)).scalar_one()
        assert notice.status == "closed" and notice.closed_at is not None
