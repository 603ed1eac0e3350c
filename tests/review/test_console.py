"""The analyst's console through the Flask test client, on both engines: wellness
settings (validation, team default, what the page carries), the queue's reason and age
in words, and the leads' dashboard whose figures equal the database's."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime

from flask import Flask
from sqlalchemy import func, select

from crawler.db import models
from crawler.db.session import Database
from tests.support.console_data import seed_console
from tests.support.review import Clock, login, seed_item

GOOD = {
    "blur_px": "20",
    "greyscale": "on",
    "keyframes_only": "on",
    "break_minutes": "90",
    "break_reveals": "40",
    "theme": "dark",
}


def _rows(db: Database) -> list[tuple[int | None, int]]:
    with db.session() as s:
        return [(r.user_id, r.blur_px) for r in s.execute(select(models.WellnessSetting)).scalars()]


def test_settings_save_and_show_on_every_page(
    app: Flask, db: Database, users: dict[str, int]
) -> None:
    client = app.test_client()
    csrf = login(client, "ana")
    before = client.get("/queue").get_data(as_text=True)
    assert "--preview-blur:12px;--preview-grey:1;" in before  # built-in default
    resp = client.post("/settings", data={**GOOD, "csrf_token": csrf})
    assert resp.status_code == 302
    assert _rows(db) == [(users["ana"], 20)]
    page = client.get("/queue").get_data(as_text=True)
    assert "--preview-blur:20px;--preview-grey:1;" in page
    assert 'data-theme="dark"' in page and 'data-break-minutes="90"' in page
    # greyscale off: the checkbox absent from the form
    off = {k: v for k, v in GOOD.items() if k != "greyscale"}
    client.post("/settings", data={**off, "csrf_token": csrf})
    assert "--preview-grey:0;" in client.get("/queue").get_data(as_text=True)


def test_bad_settings_are_refused_with_a_clear_error_and_nothing_stored(
    app: Flask, db: Database
) -> None:
    client = app.test_client()
    csrf = login(client, "ana")
    for field, value, words in (
        ("blur_px", "10000", "Blur strength must be from 0 to 40 (got 10000)."),
        ("break_minutes", "-5", "Break reminder (minutes) must be from 0 to 480 (got -5)."),
        ("break_reveals", "-1", "Break reminder (reveals) must be from 0 to 1000 (got -1)."),
        ("blur_px", "12px", "Blur strength must be a whole number from 0 to 40."),
        ("theme", "<script>", "Theme must be one of auto, light, dark."),
    ):
        resp = client.post("/settings", data={**GOOD, field: value, "csrf_token": csrf})
        assert resp.status_code == 400, field
        html = resp.get_data(as_text=True)
        assert words.replace("<", "&lt;") in html or words in html
        assert "Nothing was saved." in html
        assert "<script>" not in html.split("<main", 1)[1].split("</main>")[0]
    assert _rows(db) == []


def test_team_default_is_admins_only_and_applies_until_a_user_saves_their_own(
    app: Flask, db: Database, users: dict[str, int]
) -> None:
    analyst = app.test_client()
    csrf_a = login(analyst, "ana")
    refused = analyst.post("/settings/team", data={**GOOD, "csrf_token": csrf_a})
    assert refused.status_code == 403 and _rows(db) == []
    admin = app.test_client()
    csrf = login(admin, "ada")
    assert (
        admin.post("/settings/team", data={**GOOD, "blur_px": "30", "csrf_token": csrf}).status_code
        == 302
    )
    assert _rows(db) == [(None, 30)]
    assert "--preview-blur:30px" in analyst.get("/queue").get_data(as_text=True)
    analyst.post("/settings", data={**GOOD, "blur_px": "8", "csrf_token": csrf_a})
    assert "--preview-blur:8px" in analyst.get("/queue").get_data(as_text=True)
    analyst.post("/settings/reset", data={"csrf_token": csrf_a})
    assert "--preview-blur:30px" in analyst.get("/queue").get_data(as_text=True)
    assert sorted(_rows(db), key=str) == [(None, 30)]


def test_queue_shows_reason_and_age_in_words_not_the_priority_number(
    app: Flask, db: Database, clock: Clock
) -> None:
    item = seed_item(db, priority=2_643_002)
    with db.session() as s:
        row = s.get(models.ReviewItem, item)
        assert row is not None
        row.created_at = datetime(2026, 11, 23, 6, 0, tzinfo=clock.now.tzinfo)
    client = app.test_client()
    login(client, "ana")
    html = client.get("/queue").get_data(as_text=True)
    assert "2643002" not in html
    assert "Exact copy of a listed entry, severity 3, 2 matched media" in html
    assert '<td class="age">3 h</td>' in html
    assert 'data-urgency="high"' in html


def _figure(html: str, attr: str, key: str) -> int:
    found = re.search(rf'data-{attr}="{re.escape(key)}">(\d+)<', html)
    assert found, (attr, key)
    return int(found.group(1))


def test_dashboard_figures_equal_the_database(
    app: Flask, db: Database, users: dict[str, int], clock: Clock
) -> None:
    seed_console(db, users, clock.now)
    analyst = app.test_client()
    login(analyst, "ana")
    assert analyst.get("/dashboard").status_code == 403
    lead = app.test_client()
    login(lead, "lee")
    resp = lead.get("/dashboard")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "<svg" in html and "<script" not in html.split("<main", 1)[1].split("</main>")[0]
    with db.session() as s:
        for status in ("pending", "escalated", "confirmed", "rejected", "removed", "suppressed"):
            n = s.scalar(select(func.count()).where(models.ReviewItem.status == status))
            assert _figure(html, "status", status) == n, status
        for state in ("draft", "sent", "removed", "escalated", "closed"):
            n = s.scalar(select(func.count()).where(models.Notice.status == state))
            assert _figure(html, "notices", state) == n, state
        names = dict(s.execute(select(models.User.id, models.User.username)).all())
        per: dict[tuple[str, str], int] = defaultdict(int)
        for d in s.execute(select(models.Decision)).scalars():
            per[(names[d.user_id], d.created_at.strftime("%Y-%m-%d"))] += 1
        decided = (
            models.ReviewItem.status.in_(("confirmed", "rejected", "removed")),
            models.ReviewItem.decided_at.is_not(None),
        )
        by_list = s.scalar(
            select(func.count()).where(*decided, models.ReviewItem.decided_via.like("list:%"))
        )
        by_decision = s.scalar(
            select(func.count()).where(*decided, models.ReviewItem.decided_via.like("media:%"))
        )
        manual = s.scalar(
            select(func.count()).where(
                *decided,
                models.ReviewItem.decided_via.is_(None)
                | (models.ReviewItem.decided_via == "analyst"),
            )
        )
        reveals = s.scalar(select(func.sum(models.ExposureDay.reveals)))
        removed = s.scalar(select(func.count()).where(models.NoticeUrl.removed_at.is_not(None)))
    assert per and all(_figure(html, "decisions", f"{n}/{d}") == c for (n, d), c in per.items())
    assert sum(per.values()) == 4
    assert (by_list, by_decision, manual) == (1, 1, 4)
    auto = by_list + by_decision
    assert f'data-figure="auto">{auto}<' in html and f'data-figure="analyst">{manual}<' in html
    assert f'data-figure="auto-list">{by_list}<' in html
    assert f'data-figure="auto-decision">{by_decision}<' in html
    assert f'data-figure="reveals">{reveals}<' in html
    assert f"({removed} URLs" in html
    # removal after 18, 24 and 30 hours (seeded): median 24 h
    assert 'data-figure="removal-median">24.0 h<' in html
    assert _figure(html, "age", "pending/over 7 days") == 1
    assert _figure(html, "age", "escalated/over 7 days") == 1
