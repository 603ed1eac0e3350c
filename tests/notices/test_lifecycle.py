"""draft -> sent -> re-notice -> escalated -> removed, on a fake clock, every step audited."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from crawler.db.models import AuditEvent, Notice, NoticeUrl, ReviewItem
from crawler.db.session import Database
from crawler.notices.build import (
    advance,
    build_notices,
    mark_removed,
    mark_sent,
    outbox,
    set_escalation_contact,
)
from tests.support import notice_seed as seed
from tests.support.notice_seed import T0

CFG = seed.settings(renotice_hours=24, escalate_days=7)


def _audit(db: Database) -> list[tuple[str, str | None]]:
    with db.read_session() as s:
        rows = s.execute(select(AuditEvent.action, AuditEvent.target_id).order_by(AuditEvent.id))
        return [(a, t) for a, t in rows]


def _setup(db: Database) -> tuple[str, int, int]:
    with db.session() as s:
        h = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@hoster.example")
        a, b = seed.item(s, h), seed.item(s, h)
        (notice,) = build_notices(s, CFG, T0).created
        return notice.serial, a.id, b.id


def _notice(db: Database, serial: str) -> Notice:
    with db.read_session() as s:
        return s.execute(select(Notice).where(Notice.serial == serial)).scalar_one()


def test_mark_sent_is_idempotent_until_a_renotice_is_due(db: Database) -> None:
    serial, _, _ = _setup(db)
    with db.session() as s:
        assert [o.counted for o in mark_sent(s, [serial], CFG, T0)] == [True]
    with db.session() as s:
        (again,) = mark_sent(s, [serial], CFG, T0 + timedelta(hours=1))
    assert not again.counted and "not due" in again.reason
    n = _notice(db, serial)
    assert (n.status, n.sent_at, n.last_sent_at, n.send_count) == ("sent", T0, T0, 1)
    later = T0 + timedelta(hours=24)
    with db.read_session() as s:
        assert [(x.serial, r) for x, r in outbox(s, CFG, later)] == [(serial, "re-notice")]
    with db.session() as s:
        assert mark_sent(s, [serial], CFG, later)[0].reason == "re-notice"
        assert not mark_sent(s, [str(n.id)], CFG, later)[0].counted  # by id, same notice
    n = _notice(db, serial)
    assert (n.sent_at, n.last_sent_at, n.send_count) == (T0, later, 2)
    assert [a for a, _ in _audit(db)].count("notice.sent") == 2


def test_escalation_after_escalate_days_then_removal_closes_the_notice(db: Database) -> None:
    serial, a, b = _setup(db)
    with db.session() as s:
        mark_sent(s, [serial], CFG, T0)
    with db.session() as s:
        assert advance(s, CFG, T0 + timedelta(days=6)) == []
        escalated = advance(s, CFG, T0 + timedelta(days=7))
    assert [n.serial for n in escalated] == [serial]
    n = _notice(db, serial)
    assert (n.status, n.escalated_at, n.escalation_contact) == (
        "escalated",
        T0 + timedelta(days=7),
        None,
    )
    with db.read_session() as s:
        assert [r for _, r in outbox(s, CFG, T0 + timedelta(days=7))] == ["escalation"]
    with db.session() as s:
        set_escalation_contact(s, serial, "abuse@upstream.example")
        mark_sent(s, [serial], CFG, T0 + timedelta(days=7, hours=1))
    gone_a, gone_b = T0 + timedelta(days=8), T0 + timedelta(days=9)
    with db.session() as s:
        first = mark_removed(s, a, gone_a)
    assert first.first_time and first.closed == []
    assert _notice(db, serial).status == "escalated"
    with db.session() as s:
        second = mark_removed(s, b, gone_b)
        again = mark_removed(s, b, gone_b + timedelta(days=1))
    assert second.closed == [serial] and not again.first_time and again.closed == []
    n = _notice(db, serial)
    assert (n.status, n.closed_at) == ("removed", gone_b)
    with db.read_session() as s:
        item = s.get(ReviewItem, b)
        assert item is not None and (item.status, item.removed_at) == ("removed", gone_b)
        urls = s.execute(select(NoticeUrl).order_by(NoticeUrl.item_id)).scalars().all()
        assert [(u.removed_at, u.open_item_id) for u in urls] == [(gone_a, None), (gone_b, None)]
        assert outbox(s, CFG, gone_b + timedelta(days=5)) == []
    actions = [a for a, _ in _audit(db)]
    assert actions == [
        "notice.created",
        "notice.sent",
        "notice.escalated",
        "notice.escalation_contact",
        "notice.sent",
        "item.removed",
        "notice.removed",
        "item.removed",
    ]


def test_removed_urls_are_not_re_noticed_and_a_removed_notice_frees_nothing_twice(
    db: Database,
) -> None:
    serial, a, b = _setup(db)
    with db.session() as s:
        mark_removed(s, a, T0 + timedelta(hours=1))
        mark_removed(s, b, T0 + timedelta(hours=2))
    assert _notice(db, serial).status == "removed"
    with db.session() as s:
        assert build_notices(s, CFG, T0 + timedelta(days=1)).created == []


def test_escalation_skips_notices_whose_urls_are_gone(db: Database) -> None:
    serial, a, b = _setup(db)
    with db.session() as s:
        mark_sent(s, [serial], CFG, T0)
        for item_id in (a, b):
            url = s.execute(select(NoticeUrl).where(NoticeUrl.item_id == item_id)).scalar_one()
            url.removed_at = T0  # recorded without closing (e.g. by an older tool)
    with db.session() as s:
        assert advance(s, CFG, T0 + timedelta(days=30)) == []
