"""The review app in real Chromium (Debian's /usr/bin/chromium driven by Playwright).

The app is served on 127.0.0.1 by werkzeug in a thread; previews come from a loopback
media server on 127.0.0.2 allowed by `allowed_networks`. Any JavaScript dialog fails the
test: hostile titles, alt texts and URLs must never execute.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from crawler.db.session import Database
from tests.support.browser import sign_in
from tests.support.media import blocks_png
from tests.support.review import (
    MediaServer,
    seed_item,
)

pytestmark = pytest.mark.browser

XSS = '<img src=x onerror=alert(1)><script>alert(2)</script>"><svg onload=alert(3)>\u202e'


def test_review_flow_blur_until_reveal_then_confirm(
    page: Any, served: str, db: Database, media_server: MediaServer
) -> None:
    media_server.routes["/a.png"] = (200, "image/png", blocks_png())
    item_id = seed_item(
        db,
        priority=5,
        title=XSS,
        url='http://example.net/"><script>alert(4)</script>',
        media=[{"url": media_server.base + "/a.png", "match": ("known-a", "known", "pdq", 9)}],
    )
    sign_in(page, served, "ana")
    page.get_by_role("button", name="Next item").click()
    page.wait_for_url(f"{served}/items/{item_id}")
    figure = page.locator("figure.preview")
    figure.and_(page.locator('[data-outcome="blurred"]')).wait_for()
    stats = _image_stats(page)
    assert stats["grey"] and stats["std"] < 25
    page.get_by_role("button", name="Reveal").click()
    figure.and_(page.locator('[data-outcome="revealed"]')).wait_for()
    revealed = _image_stats(page)
    assert not revealed["grey"] and revealed["std"] > stats["std"] * 3
    assert XSS[:10] in page.get_by_text("onerror", exact=False).first.inner_text()
    page.get_by_label("Category").select_option("A")
    page.get_by_label("Notes").fill("checked <b>bold</b>")
    page.get_by_role("button", name="Confirm", exact=True).click()
    page.wait_for_url(f"{served}/queue?*")
    assert f"item {item_id} is now confirmed" in page.content()


def _image_stats(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
        const img = document.querySelector('figure.preview img');
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0, sum = 0, sq = 0, grey = true;
        for (let i = 0; i < d.length; i += 4) {
          if (Math.abs(d[i] - d[i + 1]) > 2 || Math.abs(d[i + 1] - d[i + 2]) > 2) grey = false;
          sum += d[i]; sq += d[i] * d[i]; n++;
        }
        const mean = sum / n;
        return {grey, std: Math.sqrt(sq / n - mean * mean)};
    }"""
    )


def test_escalate(page: Any, served: str, db: Database) -> None:
    item_id = seed_item(db, title="escalate me")
    sign_in(page, served, "ana")
    page.get_by_role("button", name="Next item").click()
    page.wait_for_url(f"{served}/items/{item_id}")
    page.get_by_role("button", name="Escalate").click()
    page.wait_for_url(f"{served}/queue?*")
    assert "is now escalated" in page.content()


def test_csrf_refusal_in_browser(page: Any, served: str, db: Database) -> None:
    seed_item(db)
    sign_in(page, served, "ana")
    status = page.evaluate(
        """async () => (await fetch('/queue/next', {method: 'POST', redirect: 'manual'})).status"""
    )
    assert status == 403


def test_analyst_refused_on_audit(page: Any, served: str) -> None:
    sign_in(page, served, "ana")
    response = page.goto(served + "/audit")
    assert response.status == 403


def test_hostile_link_needs_warning_page(page: Any, served: str, db: Database) -> None:
    item_id = seed_item(db, url="javascript:alert(5)//http://x")
    sign_in(page, served, "ana")
    page.goto(f"{served}/items/{item_id}")
    page.get_by_role("link", name="(open with warning)").click()
    assert "shown as text only" in page.content()
    assert page.locator('a[href^="javascript"]').count() == 0


def test_totp_enrolment_in_browser(page: Any, served: str, db: Database) -> None:
    from review import totp

    sign_in(page, served, "bob")
    page.goto(served + "/account")
    page.get_by_role("button", name="Set up one-time codes").click()
    secret = page.locator("#totp-secret").inner_text()
    assert page.locator("#totp-uri").inner_text().startswith("otpauth://totp/")
    page.get_by_label("Code").fill(totp.code_at(secret, totp.step_of(datetime.now(UTC))))
    page.get_by_role("button", name="Confirm code").click()
    page.wait_for_url(served + "/account?*")
    assert "One-time codes are set up" in page.content()


def test_ticking_illegal_media_and_confirming_settles_every_copy(
    page: Any, served: str, db: Database
) -> None:
    from sqlalchemy import select

    from crawler.db.models import ReviewItem
    from tests.support.decisions import build_site

    site = build_site(db)
    sign_in(page, served, "ana")
    page.goto(f"{served}/items/{site['item']}")
    page.get_by_role("button", name="Claim this item").click()
    known = page.get_by_role("checkbox", name="Illegal: media 1")
    assert known.is_checked()  # the exact known match is ticked by default
    for n in range(2, 6):
        box = page.get_by_role("checkbox", name=f"Illegal: media {n}")
        assert not box.is_checked()
        box.check()
    page.get_by_label("Category").select_option("A")
    page.get_by_role("button", name="Confirm", exact=True).click()
    page.wait_for_url(f"{served}/queue*")
    assert "confirmed 20 other pages" in page.content()
    with db.read_session() as s:
        statuses = s.execute(select(ReviewItem.status, ReviewItem.review_kind)).all()
    assert sum(st == "confirmed" for st, _ in statuses) == 21
    assert ("pending", "confirm-match") in statuses
    # the near copy: the known media's metadata beside it, one keystroke accepts the match
    with db.read_session() as s:
        near = s.execute(
            select(ReviewItem.id).where(ReviewItem.review_kind == "confirm-match")
        ).scalar_one()
    page.goto(f"{served}/items/{near}")
    page.get_by_role("button", name="Claim this item").click()
    assert page.get_by_role("table", name="Confirm match").count() == 1
    assert page.get_by_role("checkbox", name="Illegal: media 1").is_checked()
    page.locator("h1").click()  # focus outside any field
    page.keyboard.press("a")
    page.wait_for_url(f"{served}/queue*")
    with db.read_session() as s:
        item = s.get(ReviewItem, near)
        assert item is not None
        assert (item.status, item.category, item.decided_via) == ("confirmed", "A", "analyst")
