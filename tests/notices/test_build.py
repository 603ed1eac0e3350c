"""notices build: grouping, guessed contacts, waiting items, idempotence, serials, atomicity."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crawler.db.models import AuditEvent, Notice, NoticeUrl
from crawler.db.session import Database
from crawler.notices.build import build_notices, next_serial
from tests.support import notice_seed as seed
from tests.support.notice_seed import T0
from tests.support.threads import run_in_threads

CFG = seed.settings()


def _notices(db: Database) -> list[tuple[str, str, bool, list[int]]]:
    with db.read_session() as s:
        out = []
        for n in s.execute(select(Notice).order_by(Notice.id)).scalars():
            items = s.execute(
                select(NoticeUrl.item_id)
                .where(NoticeUrl.notice_id == n.id)
                .order_by(NoticeUrl.item_id)
            ).scalars()
            out.append((n.serial, n.abuse_contact, n.contact_is_guess, list(items)))
        return out


def test_groups_by_contact_with_guess_fallback_and_keeps_contactless_items_waiting(
    db: Database,
) -> None:
    with db.session() as s:
        rdap = seed.host(s, "a.example.net", "198.51.100.1", contact="Abuse@Hoster.example")
        rdap2 = seed.host(s, "b.example.net", "198.51.100.2", contact="abuse@hoster.example")
        guess = seed.host(s, "shop.example.org", "198.51.100.3", domain="example.org")
        bare = seed.host(s, "10.0.0.1", "198.51.100.4", domain=None)
        a, b = seed.item(s, rdap), seed.item(s, rdap2)
        c = seed.item(s, guess, category="B")
        lost = seed.item(s, bare)
        nohost = seed.item(s, None)
        seed.item(s, rdap, status="pending")  # not confirmed: never noticed
        result = build_notices(s, CFG, T0)
    assert [w.item_id for w in result.waiting] == [lost.id, nohost.id]
    rows = _notices(db)
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("abuse@example.org", True, [c.id]),
        ("abuse@hoster.example", False, [a.id, b.id]),
    ]
    assert all(re.fullmatch(r"TD-2026-\d{6}", r[0]) for r in rows)
    with db.read_session() as s:
        n = s.execute(
            select(Notice).where(Notice.abuse_contact == "abuse@hoster.example")
        ).scalar_one()
        assert (n.asn, n.as_org, n.country, n.status) == (64500, "Example Hosting", "NL", "draft")
        assert n.legal_basis == CFG.notice_legal_basis and n.appeal == CFG.notice_appeal
        assert n.operator_contact == "notices@hotline.example"
        url = s.execute(select(NoticeUrl).where(NoticeUrl.item_id == a.id)).scalar_one()
        assert (url.ip, url.category, url.first_seen) == ("198.51.100.1", "A", T0)


def test_hostile_rdap_contact_falls_back_to_the_guess(db: Database) -> None:
    with db.session() as s:
        injected = "abuse@x\r\nBcc: victim@example.com"
        evil = seed.host(s, "x.example.com", "198.51.100.9", contact=injected, domain="example.com")
        seed.item(s, evil)
        build_notices(s, CFG, T0)
    assert [(r[1], r[2]) for r in _notices(db)] == [("abuse@example.com", True)]


def test_cdn_hosts_are_flagged(db: Database) -> None:
    with db.session() as s:
        cdn = seed.host(
            s,
            "cdn.example.net",
            "198.51.100.5",
            contact="abuse@cloudflare.example",
            asn=13335,
            as_org="CLOUDFLARENET",
        )
        plain = seed.host(s, "p.example.net", "198.51.100.6", contact="abuse@plain.example")
        seed.item(s, cdn), seed.item(s, plain)
        build_notices(s, CFG, T0)
    with db.read_session() as s:
        flags = dict(s.execute(select(Notice.abuse_contact, Notice.cdn_fronted)).all())
    assert flags == {"abuse@cloudflare.example": True, "abuse@plain.example": False}


def test_building_twice_creates_nothing_new_and_new_items_get_a_new_notice(db: Database) -> None:
    with db.session() as s:
        h = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@hoster.example")
        seed.item(s, h), seed.item(s, h)
        assert len(build_notices(s, CFG, T0).created) == 1
    first = _notices(db)
    with db.session() as s:
        assert build_notices(s, CFG, T0 + timedelta(hours=1)).created == []
    assert _notices(db) == first
    with db.session() as s:
        later = seed.item(s, s.get(type(h), h.id))
        build_notices(s, CFG, T0 + timedelta(hours=2))
    rows = _notices(db)
    assert len(rows) == 2 and rows[1][3] == [later.id] and rows[0] == first[0]
    with db.read_session() as s:
        created = s.execute(
            select(func.count()).where(AuditEvent.action == "notice.created")
        ).scalar_one()
    assert created == 2


def test_a_crash_mid_build_leaves_nothing(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import crawler.notices.build as notices

    with db.session() as s:
        for i in range(3):
            h = seed.host(
                s, f"h{i}.example.net", f"198.51.100.{i + 1}", contact=f"abuse@h{i}.example"
            )
            seed.item(s, h)
    real = notices._add_urls
    calls = []

    def failing(*args: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(notices, "_add_urls", failing)
    with pytest.raises(RuntimeError), db.session() as s:
        build_notices(s, CFG, T0)
    monkeypatch.setattr(notices, "_add_urls", real)
    assert _notices(db) == []
    with db.session() as s:
        assert len(build_notices(s, CFG, T0).created) == 3


def test_serials_never_repeat_under_concurrent_builders(db: Database) -> None:
    with db.session() as s:
        hosts = [
            seed.host(s, f"h{i}.example.net", f"198.51.100.{i + 1}", contact=f"abuse@h{i}.example")
            for i in range(4)
        ]
        host_ids = [h.id for h in hosts]
    barrier = threading.Barrier(4)

    def builder(k: int) -> None:
        barrier.wait()
        for _ in range(8):
            with db.session() as s:
                seed.item(s, s.get(type(hosts[0]), host_ids[k]))
                build_notices(s, CFG, T0)

    errors = run_in_threads(builder, 4)
    assert errors == []
    rows = _notices(db)
    serials = [r[0] for r in rows]
    items = [i for r in rows for i in r[3]]
    assert len(set(serials)) == len(serials) and len(items) == len(set(items)) == 32
    with db.read_session() as s:
        assert sorted(serials) == [f"TD-2026-{n:06d}" for n in range(1, len(serials) + 1)]


def test_serial_counter_is_per_year(db: Database) -> None:
    with db.session() as s:
        assert next_serial(s, 2026) == "TD-2026-000001"
        assert next_serial(s, 2026) == "TD-2026-000002"
        assert next_serial(s, 2027) == "TD-2027-000001"
