"""Urgent referrals: at once to TAKEDOWN_URGENT_CONTACT, first in the outbox, audited."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from crawler.db.models import AuditEvent, Notice
from crawler.db.session import Database
from crawler.reporting.transparency import build_transparency
from tests.support import notice_seed as seed
from tests.support.notice_seed import T0


def _seed(db: Database) -> tuple[int, int]:
    with db.session() as s:
        h = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@hoster.example")
        first = seed.item(s, h, url="http://a.example.net/first")
        pending = seed.item(s, h, status="pending", decided_at=None, url="http://a.example.net/u")
    return first.id, pending.id


def test_urgent_referral_goes_first_and_apart(
    env, cli, db: Database, tmp_path: Path, monkeypatch
) -> None:
    first, urgent_item = _seed(db)
    code, _, err = cli("notices", "urgent", str(urgent_item))
    assert code == 2 and "TAKEDOWN_URGENT_CONTACT" in err  # no contact configured
    monkeypatch.setenv("TAKEDOWN_URGENT_CONTACT", "Urgent@Police.example")
    assert cli("notices", "build")[0] == 0  # the ordinary notice of `first`
    code, _, err = cli("notices", "urgent", str(urgent_item), "--reason", "live stream")
    assert code == 0, err
    code, _, err = cli("notices", "urgent", str(urgent_item))
    assert code == 2 and "already referred" in err
    code, out, _ = cli("notices", "due")
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[3] == "urgent@police.example"
    target = tmp_path / "n.json"
    assert cli("notices", "export", "--format", "json", "--output", str(target))[0] == 0
    records = {r["kind"]: r for r in json.loads(target.read_text())}
    urgent = records["urgent"]
    assert (urgent["recipient"], urgent["abuse_contact"], urgent["status"]) == (
        "urgent@police.example", "abuse@hoster.example", "draft",
    )  # fmt: skip
    assert [u["url"] for u in urgent["urls"]] == ["http://a.example.net/u"]
    out_dir = tmp_path / "outbox"
    assert cli("notices", "export", "--format", "eml", "--output", str(out_dir))[0] == 0
    msg = email.message_from_bytes(
        (out_dir / f"{urgent['serial']}.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["To"] == "urgent@police.example" and msg["Subject"].startswith("URGENT referral")
    body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "URGENT REFERRAL" in body and "a child may be at risk now" in body
    # sent once: no re-notice, no escalation; the URL still gets its takedown notice
    assert cli("notices", "mark-sent", urgent["serial"])[0] == 0
    with db.session() as s:
        s.execute(select(Notice).where(Notice.kind == "urgent")).scalar_one().sent_at = T0
    code, out, _ = cli("notices", "due")
    assert urgent["serial"] not in out
    with db.session() as s:
        from crawler.db.models import ReviewItem

        row = s.get(ReviewItem, urgent_item)
        assert row is not None
        row.status = "confirmed"
    assert cli("notices", "build")[0] == 0
    with db.read_session() as s:
        kinds = s.execute(select(Notice.kind, func.count()).group_by(Notice.kind)).all()
        assert dict(kinds) == {"takedown": 2, "urgent": 1}
        event = s.execute(
            select(AuditEvent).where(AuditEvent.action == "notice.urgent")
        ).scalar_one()
        assert event.details["reason"] == "live stream"  # type: ignore[index]
        report = build_transparency(s, 2026, T0)
    assert report["urgent_referrals"] == 1 and report["totals"]["notices"] == 2


def test_leads_see_urgent_referrals_at_the_top(db: Database, db_url: str) -> None:
    from crawler.accounts.users import add_user
    from crawler.config import Settings
    from crawler.notices.urgent import refer_urgent
    from review.app import create_app
    from tests.support.review import SECRET, login

    _, item_id = _seed(db)
    cfg = Settings(home=Path("/nonexistent"), db_url=db_url, urgent_contact="u@police.example")
    with db.session() as s:
        add_user(s, "lee", "lead", "pw" * 8)
        add_user(s, "ana", "analyst", "pw" * 8)
        refer_urgent(s, item_id, cfg, T0)
    app: Flask = create_app(test_config={"db_url": db_url, "secret_key": SECRET})
    try:
        lead = app.test_client()
        login(lead, "lee", "pw" * 8)
        page = lead.get("/notices").get_data(as_text=True)
        top = page.index("Urgent referrals to law enforcement")
        assert top < page.index('<th scope="col">Route</th>')
        assert "u@police.example" in page and "not sent yet" in page
        analyst = app.test_client()
        login(analyst, "ana", "pw" * 8)
        assert "Urgent referrals" not in analyst.get("/notices").get_data(as_text=True)
    finally:
        app.extensions["review_db"].dispose()
