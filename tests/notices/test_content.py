"""What a notice states (text, e-mail, JSON), operator templates, hostile crawled text."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crawler.db.models import AuditEvent, Notice, Page
from crawler.db.session import Database
from tests.support import notice_seed as seed

ROUTING = """\
[legal_basis]
A = "Basis A: section 1 of the example act."
B = "Basis B: section 2 of the example act."
"""


@pytest.fixture
def content_env(env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING, encoding="utf-8")
    values = {
        "TAKEDOWN_ROUTING": str(routing),
        "TAKEDOWN_OPERATOR_NAME": "Example Hotline",
        "TAKEDOWN_OPERATOR_CONTACT": "notices@hotline.example",
        "TAKEDOWN_TRUSTED_FLAGGER": "Trusted flagger under Article 22 DSA",
        "TAKEDOWN_TRUSTED_FLAGGER_AUTHORITY": "Example Digital Services Coordinator",
        "TAKEDOWN_NOTICE_APPEAL": "To dispute, reply to this message.",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**env, **values}


def _seed(db: Database, url_a: str = "http://a.example.net/a?x=1&y=2") -> None:
    with db.session() as s:
        h = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@hoster.example")
        seed.item(s, h, url=url_a, category="A")
        seed.item(s, h, url="http://a.example.net/b", category="B")


def _eml(cli, tmp_path: Path) -> email.message.EmailMessage:  # type: ignore[no-untyped-def]
    out = tmp_path / "outbox"
    code, _, err = cli("notices", "export", "--format", "eml", "--output", str(out))
    assert code == 0, err
    (path,) = list(out.iterdir())
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def _bodies(msg: email.message.EmailMessage) -> tuple[str, str]:
    plain = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return plain, html


def test_text_email_and_json_state_everything(content_env, cli, db: Database, tmp_path) -> None:
    _seed(db)
    assert cli("notices", "build")[0] == 0
    msg = _eml(cli, tmp_path)
    target = tmp_path / "n.json"
    assert cli("notices", "export", "--format", "json", "--output", str(target))[0] == 0
    (record,) = json.loads(target.read_text())
    serial = record["serial"]
    assert [(u["url"], u["category"], u["legal_basis"]) for u in record["urls"]] == [
        ("http://a.example.net/a?x=1&y=2", "A", "Basis A: section 1 of the example act."),
        ("http://a.example.net/b", "B", "Basis B: section 2 of the example act."),
    ]
    assert "good faith" in record["good_faith"] and "accurate" in record["good_faith"]
    assert record["sender"] == {
        "name": "Example Hotline",
        "contact": "notices@hotline.example",
        "trusted_flagger": "Trusted flagger under Article 22 DSA",
        "trusted_flagger_authority": "Example Digital Services Coordinator",
    }
    assert serial in record["dispute"] and "reply to this message" in record["dispute"]
    plain, html = _bodies(msg)
    for body in (plain, html):
        assert "Basis A: section 1 of the example act." in body
        assert "Basis B: section 2 of the example act." in body
        assert "good faith" in body
        assert "Example Hotline" in body and "notices@hotline.example" in body
        assert "Trusted flagger under Article 22 DSA" in body
        assert "Example Digital Services Coordinator" in body
        assert f"Reference: {serial}" in body and "To dispute, reply" in body
    assert "http://a.example.net/a?x=1&y=2" in plain
    assert "http://a.example.net/a?x=1&amp;y=2" in html


def test_no_trusted_flagger_line_when_unset(env, cli, db: Database, tmp_path) -> None:
    _seed(db)
    assert cli("notices", "build")[0] == 0
    plain, html = _bodies(_eml(cli, tmp_path))
    assert "Trusted flagger" not in plain and "Trusted flagger" not in html
    assert "good faith" in plain


def test_operator_templates_override_the_built_in_ones(
    content_env, cli, db: Database, tmp_path, monkeypatch
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "notice.txt.j2").write_text(
        "OPERATOR TEMPLATE {{ notice.serial }}\n{% for u in urls %}{{ u.url }} "
        "{{ u.legal_basis }}\n{% endfor %}{{ good_faith }}\n{{ dispute }}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("TAKEDOWN_NOTICE_TEMPLATES", str(folder))
    _seed(db)
    assert cli("notices", "build")[0] == 0
    plain, html = _bodies(_eml(cli, tmp_path))
    assert plain.startswith("OPERATOR TEMPLATE TD-")
    assert "http://a.example.net/b Basis B" in plain
    assert "<table>" in html  # the HTML part still comes from the built-in template


@pytest.mark.parametrize(
    "name,text",
    [
        ("notice.txt.j2", "{% for u in urls %}{{ u.url }\n"),  # syntax error
        ("notice.txt.j2", "{{ no_such_value }}\n"),  # undefined
        ("notice.html.j2", "{{ urls[0].url | safe }}\n"),  # markup from crawled data
        ("notice.txt.j2", "{{ notice.__class__.__mro__ }}\n"),  # sandbox
    ],
)
def test_a_template_that_fails_stops_the_build_before_anything_is_written(
    content_env, cli, db: Database, tmp_path, monkeypatch, name: str, text: str
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / name).write_text(text, encoding="utf-8")
    monkeypatch.setenv("TAKEDOWN_NOTICE_TEMPLATES", str(folder))
    _seed(db)
    code, _, err = cli("notices", "build")
    assert code == 2, err
    assert f"notice template {name}" in err and "Traceback" not in err
    with db.read_session() as s:
        assert s.execute(select(func.count()).select_from(Notice)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0


HOSTILE_URL = (
    "http://a.example.net/x\r\nBcc: victim@example.com\r\n\r\n<script>alert(1)</script>"
    "/\u202egnp.exe/\u2066<b>bold</b>"
)


def test_hostile_crawled_text_stays_inert_in_every_format(
    content_env, cli, db: Database, tmp_path
) -> None:
    with db.session() as s:
        h = seed.host(
            s,
            "a.example.net",
            "198.51.100.1",
            contact="abuse@hoster.example",
            as_org="Evil\r\nBcc: x@example.com <img src=x onerror=alert(1)> \u202eKO",
            country="DE",
        )
        row = seed.item(s, h, url=HOSTILE_URL, category="A")
        page = s.get(Page, row.page_id)
        assert page is not None
        page.title = "T" * 1_000_000 + "\r\nBcc: y@example.com"
    routing = Path(content_env["TAKEDOWN_ROUTING"])
    routing.write_text(
        ROUTING + '\n[countries]\nDE = { route = "hotline", name = "H DE", '
        'email = "h@hotline.example" }\n',
        encoding="utf-8",
    )
    assert cli("notices", "build")[0] == 0
    out = tmp_path / "outbox"
    assert cli("notices", "export", "--format", "eml", "--output", str(out))[0] == 0
    (path,) = list(out.iterdir())
    raw = path.read_bytes()
    assert len(raw) < 50_000  # the 1 MB title is not in the notice
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Bcc"] is None and msg["To"] == "h@hotline.example"
    assert [k for k in msg if k.lower() == "bcc"] == []
    plain, html = _bodies(msg)  # type: ignore[arg-type]
    for body in (plain, html):
        assert "\u202e" not in body and "\u2066" not in body
        assert "\r\nBcc:" not in body and "\nBcc: victim" not in body
        assert "TTTTTTTTTT" not in body
    # The exact URL, its controls percent-encoded (the same address for any client).
    assert "http://a.example.net/x%0D%0ABcc:%20victim@example.com" in plain
    assert "%E2%80%AEgnp.exe" in plain
    assert "<script>" not in html and "<img" not in html and "<b>bold" not in html
    assert "&lt;script&gt;" in html
    assert "<U+202E>KO" in plain  # the AS name, its bidi override made visible
    target = tmp_path / "n.json"
    assert cli("notices", "export", "--format", "json", "--output", str(target))[0] == 0
    text = target.read_text()
    (record,) = json.loads(text)
    assert record["urls"][0]["url"] == HOSTILE_URL  # JSON keeps the exact string, escaped
    assert "\r" not in text and "T" * 1000 not in text
