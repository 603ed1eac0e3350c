"""Signed checkpoints anchor the audit chain outside the database.

Whoever can write the database can cut the chain's tail and move `audit_head` back, or
edit an event and recompute every hash after it: the chain alone still verifies. The
checkpoints in TAKEDOWN_HOME (and any copy exported with `--output`) do not.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import delete, select, update

from crawler.db.audit import Event, event_hash, record, verify_chain
from crawler.db.models import AuditEvent, AuditHead
from crawler.db.session import Database


def _events(db: Database, count: int) -> None:
    with db.session() as s:
        for i in range(count):
            record(s, Event("cli", "test.event", "thing", i, {"n": i}))


def _checkpoint_file(env: dict[str, str]) -> Path:
    return Path(env["TAKEDOWN_HOME"]) / "audit" / "checkpoints.jsonl"


def _truncate(db: Database, keep: int) -> None:
    """Delete every event after `keep` and move the head back onto it."""
    with db.session() as s:
        last = s.get(AuditEvent, keep)
        assert last is not None
        s.execute(delete(AuditEvent).where(AuditEvent.id > keep))
        s.execute(update(AuditHead).values(last_id=keep, last_hash=last.hash))


def _rewrite(db: Database, event_id: int) -> None:
    """Edit one event's details and re-hash it and every event after it, and the head."""
    with db.session() as s:
        rows = list(
            s.execute(select(AuditEvent).where(AuditEvent.id >= event_id).order_by(AuditEvent.id))
            .scalars()
            .all()
        )
        prev = rows[0].prev_hash
        for row in rows:
            if row.id == event_id:
                row.details = {"n": "forged"}
            event = Event(row.actor, row.action, row.target_type, row.target_id, row.details)
            row.prev_hash, row.hash = prev, event_hash(prev, row.at, event, row.id)
            prev = row.hash
        s.flush()
        s.execute(update(AuditHead).values(last_id=rows[-1].id, last_hash=prev))


def _chain_ok(db: Database) -> bool:
    with db.read_session() as s:
        return verify_chain(s).ok


def test_verify_reports_a_truncated_chain(env, cli, db: Database) -> None:
    _events(db, 8)
    code, _o, err = cli("audit", "checkpoint")
    assert code == 0, err
    lines = _checkpoint_file(env).read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["seq"] == 8
    code, _o, err = cli("audit", "verify")
    assert code == 0 and "matches 1 checkpoint" in err, err
    _truncate(db, 5)  # the last three events gone, the head moved back
    assert _chain_ok(db)  # the chain alone cannot tell
    code, _o, err = cli("audit", "verify")
    assert code == 1 and "audit truncated" in err and "event 5, behind" in err, err
    assert "Traceback" not in err
    # A checkpoint taken after the cut (the next cron run) shows the head moving back.
    assert cli("audit", "checkpoint")[0] == 0
    code, _o, err = cli("audit", "verify")
    assert code == 1 and "head moved back" in err, err


def test_verify_reports_a_rewritten_chain(env, cli, db: Database) -> None:
    _events(db, 8)
    assert cli("audit", "checkpoint")[0] == 0
    _rewrite(db, 3)
    assert _chain_ok(db)
    code, _o, err = cli("audit", "verify")
    assert code == 1 and "audit rewritten: event 8 differs" in err, err
    # Events appended after the cut reach the checkpointed seq again: still a rewrite.
    _truncate(db, 5)
    _events(db, 4)
    code, _o, err = cli("audit", "verify")
    assert code == 1 and "audit rewritten: event 8 differs" in err, err


def test_verify_reports_a_forged_checkpoint_line(env, cli, db: Database) -> None:
    _events(db, 3)
    assert cli("audit", "checkpoint")[0] == 0
    path = _checkpoint_file(env)
    line = json.loads(path.read_text())
    forged = {**line, "seq": 2}  # signed for seq 3, claims 2
    with path.open("a") as handle:
        handle.write(json.dumps(forged) + "\n")
        handle.write("not json at all\n")
    code, _o, err = cli("audit", "verify")
    assert code == 1 and "line 2: bad signature" in err and "line 3: not a checkpoint" in err, err


def test_an_exported_copy_checked_with_the_pinned_key_survives_the_local_file(
    env, cli, db: Database, tmp_path: Path
) -> None:
    _events(db, 6)
    copy = tmp_path / "offsite.jsonl"
    assert cli("audit", "checkpoint", "--output", str(copy))[0] == 0
    assert cli("audit", "checkpoint", "--output", str(copy))[0] == 0  # same head: no new line
    assert len(copy.read_text().splitlines()) == 2
    assert len(_checkpoint_file(env).read_text().splitlines()) == 1
    code, out, _e = cli("evidence", "key", "--format", "hex")
    assert code == 0
    pinned = out.strip()
    _truncate(db, 3)
    _checkpoint_file(env).unlink()  # whoever cut the chain also removed the local file
    code, _o, err = cli("audit", "verify")
    assert code == 0  # nothing local to compare with
    code, _o, err = cli("audit", "verify", "--checkpoints", str(copy), "--key", pinned)
    assert code == 1 and "audit truncated" in err, err
    assert cli("audit", "checkpoint", "--output", str(tmp_path / "missing" / "x.jsonl"))[0] == 2


def test_a_crawl_ends_with_a_checkpoint_and_a_failure_to_write_one_is_only_logged(
    env, cli, db: Database, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from crawler.db.audit_checkpoint import after_run

    home = Path(env["TAKEDOWN_HOME"])
    _events(db, 4)
    with db.read_session() as s:
        first = after_run(home, env["TAKEDOWN_DB"], s)
        again = after_run(home, env["TAKEDOWN_DB"], s)  # nothing new: no second line
    assert first is not None and first.seq == 4 and again == first
    assert len(_checkpoint_file(env).read_text().splitlines()) == 1
    assert cli("audit", "verify")[0] == 0
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    with db.read_session() as s:
        assert after_run(blocked, env["TAKEDOWN_DB"], s) is None
    assert "audit checkpoint not written" in capsys.readouterr().err
