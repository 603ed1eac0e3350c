"""notices export (json, eml) and mark-sent through the CLI; e-mail header safety (E-05)."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.db.models import AuditEvent, Notice, NoticeUrl
from crawler.db.session import Database
from crawler.errors import UsageError
from crawler.notices.build import build_notices
from crawler.notices.notice_mail import render_message
from tests.support import notice_seed as seed
from tests.support.notice_seed import T0

CFG = seed.settings()
URL_FIELDS = {"url", "category", "legal_basis", "first_seen", "ip", "removed_at"}
URL_FIELDS |= {"archive_members_matched", "archives"}  # archives on the page
NOTICE_FIELDS = {
    "id",
    "serial",
    "abuse_contact",
    "asn",
    "as_org",
    "country",
    "status",
    "created_at",
    "sent_at",
    "urls",
    # second round (routing and what a notice states)
    "kind",
    "route",
    "recipient",
    "hotline",
    "held_at",
    "released_at",
    "legal_basis",
    "good_faith",
    "sender",
    "dispute",
}


def _seed(db: Database) -> None:
    with db.session() as s:
        h = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@hoster.example",
                      as_org='<script>alert("as")</script>')  # fmt: skip
        seed.item(s, h, url='http://a.example.net/<b>"x"</b>?q=1&r=2')
        g = seed.host(
            s,
            "b.example.org",
            "198.51.100.2",
            domain="example.org",
            asn=None,
            as_org=None,
            country=None,
        )
        seed.item(s, g, category=None)
        build_notices(s, CFG, T0)


def _parse(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def test_json_export_has_exactly_the_contract_fields(
    env, cli, db: Database, tmp_path: Path
) -> None:
    _seed(db)
    target = tmp_path / "notices.json"
    code, _, err = cli("notices", "export", "--format", "json", "--output", str(target))
    assert code == 0, err
    data = json.loads(target.read_text())
    assert [set(n) for n in data] == [NOTICE_FIELDS, NOTICE_FIELDS]
    assert all(set(u) == URL_FIELDS for n in data for u in n["urls"])
    guess, first = data
    assert first["serial"] == "TD-2026-000002" and first["status"] == "draft"
    assert first["created_at"] == "2026-11-02T09:00:00Z" and first["sent_at"] is None
    assert first["urls"][0]["first_seen"] == "2026-11-02T09:00:00Z"
    assert guess["abuse_contact"] == "abuse@example.org" and guess["asn"] is None
    code, out, _ = cli("notices", "export", "--format", "json")
    assert json.loads(out) == data
    with db.read_session() as s:
        audit = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "notices.export"))
            .scalars()
            .all()
        )
    assert len(audit) == 2 and len(audit[0].details["sha256"]) == 64


def test_eml_export_one_file_per_notice_stable_message_id_escaped_html(
    env, cli, db: Database, tmp_path: Path
) -> None:
    _seed(db)
    out = tmp_path / "outbox"
    assert cli("notices", "export", "--format", "eml", "--output", str(out))[0] == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["TD-2026-000001.eml", "TD-2026-000002.eml"]
    msg = _parse(out / files[1])
    assert msg["Message-ID"] == "<TD-2026-000002.1@hotline.example>"  # frozen at build
    assert msg["To"] == "abuse@hoster.example" and "TD-2026-000002" in msg["Subject"]
    assert b"\r\n" in (out / files[1]).read_bytes()
    html = msg.get_body(("html",)).get_content()
    plain = msg.get_body(("plain",)).get_content()
    assert "<b>" not in html and "&lt;b&gt;&#34;x&#34;&lt;/b&gt;" in html
    assert '<b>"x"</b>' in plain and "198.51.100.1" in plain
    assert "RFC 2142" in _parse(out / files[0]).get_body(("plain",)).get_content()
    again = tmp_path / "again"
    assert cli("notices", "export", "--format", "eml", "--output", str(again))[0] == 0
    assert _parse(again / files[1])["Message-ID"] == msg["Message-ID"]


def test_eml_to_stdout_is_an_mbox(env, cli, db: Database) -> None:
    _seed(db)
    code, out, _ = cli("notices", "export", "--format", "eml", "--output", "-")
    assert code == 0 and out.startswith("From takedown-crawler ")
    assert out.count("\nFrom takedown-crawler ") == 1 and out.count("Message-ID: <TD-2026-") == 2


def test_mark_sent_cli_idempotent_and_outbox_empties(
    env, cli, db: Database, tmp_path: Path
) -> None:
    _seed(db)
    code, _, err = cli("notices", "mark-sent", "TD-2026-000001", "2")
    assert code == 0 and "marked sent (first)" in err
    code, _, err = cli("notices", "mark-sent", "TD-2026-000001")
    assert code == 0 and "not due" in err
    with db.read_session() as s:
        counts = s.execute(select(Notice.send_count).order_by(Notice.id)).scalars().all()
    assert counts == [1, 1]
    out = tmp_path / "outbox"
    assert cli("notices", "export", "--format", "eml", "--output", str(out))[0] == 0
    assert list(out.iterdir()) == []
    code, _, err = cli("notices", "mark-sent", "TD-2026-999999")
    assert code == 2 and "no such notice" in err and "Traceback" not in err


def _notice(db: Database) -> tuple[Notice, list[NoticeUrl]]:
    with db.read_session() as s:
        n = s.execute(select(Notice).where(Notice.asn.is_not(None))).scalar_one()
        assert n is not None
        return n, list(s.execute(select(NoticeUrl).where(NoticeUrl.notice_id == n.id)).scalars())


@pytest.mark.parametrize(
    "field,value",
    [
        ("abuse_contact", "abuse@x\r\nBcc: y@example.com"),
        ("abuse_contact", "abuse@x.example\nBcc: y@example.com"),
        ("abuse_contact", "Someone <abuse@x.example>"),
        ("operator_contact", "notices@hotline.example\r\nBcc: y@example.com"),
        ("operator_name", "Hotline\r\nBcc: y@example.com"),
    ],
)
def test_header_injection_is_refused(db: Database, field: str, value: str) -> None:
    _seed(db)
    notice, urls = _notice(db)
    setattr(notice, field, value)
    if field == "abuse_contact":  # the host route's recipient is the abuse contact
        notice.recipient = value
    with pytest.raises(UsageError) as caught:
        render_message(notice, urls, CFG, T0)
    assert notice.serial in str(caught.value)


def test_renotice_refers_to_the_first_message(db: Database) -> None:
    _seed(db)
    notice, urls = _notice(db)
    notice.status, notice.sent_at, notice.last_sent_at, notice.send_count = "sent", T0, T0, 1
    from datetime import timedelta

    msg = render_message(notice, urls, CFG, T0 + timedelta(days=1))
    assert msg["Message-ID"] == "<TD-2026-000002.2@hotline.example>"
    assert msg["In-Reply-To"] == "<TD-2026-000002.1@hotline.example>"
    assert msg["Subject"].startswith("Reminder: ")


def test_build_and_due_cli_show_waiting_items_and_the_outbox(env, cli, db: Database) -> None:
    with db.session() as s:
        seed.item(s, seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@h.example"))
        lost = seed.item(s, None, url="http://lost.example/\x1b[31mred")
    code, _, err = cli("notices", "build")
    assert code == 0 and "created TD-2026-000001 to abuse@h.example" in err
    assert f"waiting: item {lost.id}" in err and "\x1b" not in err
    assert "1 confirmed items waiting for a contact, 1 notices due to send" in err
    code, out, _ = cli("notices", "due")
    assert code == 0 and out.startswith("TD-2026-000001\tfirst\tdraft\tabuse@h.example")
    assert "0 notices created" in cli("notices", "build")[2]
