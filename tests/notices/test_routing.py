"""Routing by hosting country (TAKEDOWN_ROUTING): host, hotline, hold; release; bad files."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crawler.db.models import AuditEvent, Notice
from crawler.db.session import Database
from tests.support import notice_seed as seed

ROUTING = """\
default = "host"

[countries]
GB = "hold"
DE = { route = "hotline", name = "Example Hotline DE", email = "Reports@Hotline-DE.example" }
FR = "host"
"""


def _seed(db: Database) -> dict[str, int]:
    ids = {}
    with db.session() as s:
        for country, n in (("GB", 1), ("DE", 2), ("FR", 3), ("NL", 4)):
            h = seed.host(
                s,
                f"{country.lower()}.example.net",
                f"198.51.100.{n}",
                contact=f"abuse@{country.lower()}-host.example",
                country=country,
            )
            ids[country] = seed.item(s, h).id
    return ids


def _routing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("TAKEDOWN_ROUTING", str(path))
    return path


def _export(cli, tmp_path: Path) -> list[dict]:  # type: ignore[no-untyped-def]
    target = tmp_path / "notices.json"
    code, _, err = cli("notices", "export", "--format", "json", "--output", str(target))
    assert code == 0, err
    return json.loads(target.read_text())


def test_every_route_and_the_default(env, cli, db: Database, tmp_path, monkeypatch) -> None:
    _routing(tmp_path, monkeypatch, ROUTING)
    _seed(db)
    code, _, err = cli("notices", "build")
    assert code == 0, err
    by_country = {r["country"]: r for r in _export(cli, tmp_path)}
    got = {c: (r["route"], r["recipient"], r["status"]) for c, r in by_country.items()}
    assert got == {
        "GB": ("hold", "abuse@gb-host.example", "held"),
        "DE": ("hotline", "reports@hotline-de.example", "draft"),
        "FR": ("host", "abuse@fr-host.example", "draft"),
        "NL": ("host", "abuse@nl-host.example", "draft"),  # no rule: the default
    }
    de = by_country["DE"]
    assert de["abuse_contact"] == "abuse@de-host.example"  # the hosting facts stay
    assert de["hotline"] == "Example Hotline DE"
    assert by_country["GB"]["held_at"] is not None
    # The hotline's message goes to the hotline and carries the hosting facts.
    out = tmp_path / "outbox"
    code, _, err = cli("notices", "export", "--format", "eml", "--output", str(out))
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 3 and by_country["GB"]["serial"] + ".eml" not in names  # held: not due
    msg = email.message_from_bytes(
        (out / f"{de['serial']}.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["To"] == "reports@hotline-de.example"
    body = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Dear colleagues at Example Hotline DE" in body
    assert "AS64500 Example Hosting" in body and "abuse@de-host.example" in body


def test_hotline_notices_never_escalate_upstream(
    env, cli, db: Database, tmp_path, monkeypatch
) -> None:
    from datetime import timedelta

    from crawler.notices.build import advance, mark_sent
    from tests.support.notice_seed import T0

    _routing(tmp_path, monkeypatch, ROUTING)
    _seed(db)
    assert cli("notices", "build")[0] == 0
    cfg = seed.settings()
    with db.session() as s:
        serials = {n.country: n.serial for n in s.execute(select(Notice)).scalars()}
        mark_sent(s, [serials["DE"], serials["FR"]], cfg, T0)
    with db.session() as s:
        escalated = advance(s, cfg, T0 + timedelta(days=cfg.escalate_days + 1))
        assert [n.serial for n in escalated] == [serials["FR"]]


def test_default_route_can_be_hold(env, cli, db: Database, tmp_path, monkeypatch) -> None:
    _routing(tmp_path, monkeypatch, 'default = "hold"\n[countries]\nFR = "host"\n')
    _seed(db)
    assert cli("notices", "build")[0] == 0
    got = {r["country"]: r["status"] for r in _export(cli, tmp_path)}
    assert got == {"GB": "held", "DE": "held", "FR": "draft", "NL": "held"}


def test_hold_and_release_cycle(env, cli, db: Database, tmp_path, monkeypatch) -> None:
    _routing(tmp_path, monkeypatch, ROUTING)
    _seed(db)
    assert cli("notices", "build")[0] == 0
    held = next(r for r in _export(cli, tmp_path) if r["status"] == "held")
    code, out, _ = cli("notices", "due")
    assert held["serial"] not in out
    # mark-sent of a held notice counts nothing
    code, _, err = cli("notices", "mark-sent", held["serial"])
    assert code == 0 and "not due" in err
    code, _, err = cli("notices", "release", held["serial"])
    assert code == 0, err
    code, out, _ = cli("notices", "due")
    assert f"{held['serial']}\tfirst\tdraft" in out
    with db.read_session() as s:
        n = s.execute(select(Notice).where(Notice.serial == held["serial"])).scalar_one()
        assert (n.status, n.route, n.released_at is not None) == ("draft", "hold", True)
        events = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "notice.released"))
            .scalars()
            .all()
        )
        assert [e.details["serial"] for e in events] == [held["serial"]]  # type: ignore[index]
    # releasing again (now a draft) is bad input
    code, _, err = cli("notices", "release", held["serial"])
    assert code == 2 and "not held" in err


def test_release_of_a_notice_that_is_not_held_is_exit_2(env, cli, db: Database) -> None:
    _seed(db)
    assert cli("notices", "build")[0] == 0
    code, _, err = cli("notices", "release", "1")
    assert code == 2 and "draft, not held" in err
    assert cli("notices", "release", "TD-2026-999999")[0] == 2


def test_a_notice_keeps_its_route_when_the_file_changes(
    env, cli, db: Database, tmp_path, monkeypatch
) -> None:
    path = _routing(tmp_path, monkeypatch, ROUTING)
    _seed(db)
    assert cli("notices", "build")[0] == 0
    before = {
        r["serial"]: (r["route"], r["recipient"], r["status"]) for r in _export(cli, tmp_path)
    }
    de = next(s for s, v in before.items() if v[0] == "hotline")
    assert cli("notices", "mark-sent", de)[0] == 0
    path.write_text('default = "hold"\n', encoding="utf-8")
    with db.session() as s:
        h = seed.host(
            s, "de2.example.net", "198.51.100.20", contact="abuse@de-host.example", country="DE"
        )
        seed.item(s, h)
    assert cli("notices", "build")[0] == 0
    after = {r["serial"]: (r["route"], r["recipient"], r["status"]) for r in _export(cli, tmp_path)}
    assert after[de] == ("hotline", "reports@hotline-de.example", "sent")
    assert {k: after[k] for k in before if k != de} == {k: v for k, v in before.items() if k != de}
    new = [v for k, v in after.items() if k not in before]
    assert new == [("hold", "abuse@de-host.example", "held")]  # new notices: the new route


@pytest.mark.parametrize(
    "text,line,words",
    [
        ('default = "host"\n[countries]\nGB = "hold"\nXK = "host"\n', 4, "unknown country code"),
        (
            '[countries]\nDE = { route = "hotline", name = "H", email = "not an address" }\n',
            2,
            "invalid address",
        ),
        (
            '[countries]\n\nDE = { route = "hotline", name = "H", email = "a@b.example\\r\\nBcc: c@d.example" }\n',
            3,
            "invalid address",
        ),
        ('[countries]\nGB = "police"\n', 2, "unknown route"),
        ('default = "sideways"\n', 1, "unknown route"),
        ('default = "host"\nfallback = "hold"\n', 2, "unknown key"),
        ('[countries]\nFR = { route = "host", email = "a@b.example" }\n', 2, "only a hotline"),
        (
            '[countries]\nDE = { route = "hotline", name = "H", mail = "a@b.example" }\n',
            2,
            "unknown key",
        ),
        ('[legal_basis]\nZ = "text"\n', 2, "unknown category"),
        ("[countries\n", 1, "not valid TOML"),
    ],
)
def test_a_malformed_routing_file_is_exit_2_naming_the_line_and_changes_nothing(
    env, cli, db: Database, tmp_path, monkeypatch, text: str, line: int, words: str
) -> None:
    path = _routing(tmp_path, monkeypatch, text)
    _seed(db)
    code, _, err = cli("notices", "build")
    assert code == 2
    assert f"{path}:{line}" in err or f"line {line}" in err, err
    assert words in err and "Traceback" not in err
    with db.read_session() as s:
        assert s.execute(select(func.count()).select_from(Notice)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0
