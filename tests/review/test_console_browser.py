"""The analyst's console in real Chromium: a review by keyboard alone, wellness settings
changing what the browser shows, the dashboard's figures against the database, and an
axe-core accessibility check of every page (axe.js ships in axe-playwright-python: no
network)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update

from crawler.db.models import Decision, Notice, ReviewItem
from crawler.db.session import Database
from tests.support.browser import open_item, sign_in
from tests.support.console_data import seed_console
from tests.support.media import blocks_png
from tests.support.review import MediaServer, seed_item

pytestmark = pytest.mark.browser


def _item_with_media(db: Database, media_server: MediaServer, **kw: Any) -> int:
    media_server.routes["/a.png"] = (200, "image/png", blocks_png())
    media_server.routes["/b.png"] = (200, "image/png", blocks_png(seed=3))
    return seed_item(
        db,
        priority=kw.pop("priority", 5),
        media=[
            {"url": media_server.base + "/a.png", "match": ("known-a", "known", "pdq", 9)},
            {"url": media_server.base + "/b.png"},
        ],
        **kw,
    )


def test_full_review_by_keyboard_alone(
    page: Any, served: str, db: Database, media_server: MediaServer
) -> None:
    item_id = _item_with_media(db, media_server)
    sign_in(page, served, "ana")  # login excepted
    keys = page.keyboard
    keys.press("?")
    assert page.locator("#shortcuts").is_visible()
    keys.press("?")
    assert not page.locator("#shortcuts").is_visible()
    keys.press("n")  # Next item
    page.wait_for_url(f"{served}/items/{item_id}")
    page.locator('figure.preview[data-outcome="blurred"]').first.wait_for()
    keys.press("h")  # keep holding: the renew form, then back on the item
    page.wait_for_url(f"{served}/items/{item_id}*")
    page.locator('figure.preview[data-outcome="blurred"]').first.wait_for()
    # The per-media boxes ("Illegal: media N") sit in the media grid, tied to the decision
    # form by form="decision-form": a number key ticks the real box.
    box = page.get_by_role("checkbox", name="Illegal: media 2")
    assert not box.is_checked()
    keys.press("2")  # focus media 2 and tick its box
    assert box.is_checked()
    assert page.evaluate("document.activeElement.getAttribute('data-media')") == "2"
    keys.press("k")  # back to media 1
    assert page.evaluate("document.activeElement.getAttribute('data-media')") == "1"
    keys.press("v")  # reveal the focused media
    page.locator('article[data-media="1"] figure[data-outcome="revealed"]').wait_for()
    assert page.locator('article[data-media="2"] figure[data-outcome="blurred"]').count() == 1
    keys.press("g")  # category select
    assert page.evaluate("document.activeElement.id") == "category"
    keys.press("ArrowDown")
    assert page.evaluate("document.activeElement.value") == "A"
    keys.press("Escape")
    keys.press("o")
    keys.type("c c reviewed by keyboard")  # typed text, not shortcuts
    assert page.url.startswith(f"{served}/items/{item_id}")
    keys.press("Escape")
    keys.press("c")  # arms Confirm
    assert page.locator('button[value="confirm"][data-armed]').count() == 1
    keys.press("c")
    page.wait_for_url(f"{served}/queue?*")
    assert f"item {item_id} is now confirmed" in page.content()
    with db.session() as s:
        item = s.get(ReviewItem, item_id)
        assert item is not None
        assert (item.status, item.category, item.notes) == (
            "confirmed",
            "A",
            "c c reviewed by keyboard",
        )


def test_keyboard_decision_on_a_stale_item_is_refused(page: Any, served: str, db: Database) -> None:
    item_id = seed_item(db, priority=5)
    sign_in(page, served, "ana")
    page.keyboard.press("n")
    page.wait_for_url(f"{served}/items/{item_id}")
    with db.session() as s:  # someone else's change: the page's version is now stale
        s.execute(update(ReviewItem).where(ReviewItem.id == item_id).values(version=99))
    page.keyboard.press("e")
    page.keyboard.press("e")
    page.wait_for_load_state()
    with db.session() as s:
        item = s.get(ReviewItem, item_id)
        assert item is not None and item.status == "pending"
        assert s.scalar(select(func.count()).select_from(Decision)) == 0


def _filter(tab: Any) -> str:
    tab.locator('figure.preview[data-outcome="blurred"]').first.wait_for()
    return str(
        tab.evaluate("getComputedStyle(document.querySelector('figure.preview img')).filter")
    )


def test_settings_change_the_computed_blur_and_greyscale(
    page: Any, served: str, db: Database, media_server: MediaServer
) -> None:
    item_id = _item_with_media(db, media_server)
    open_item(page, served, item_id)
    assert _filter(page) == "blur(12px) grayscale(1)"
    page.goto(f"{served}/settings")
    page.get_by_label("Blur strength").fill("10000")  # the browser refuses it too
    assert page.get_by_label("Blur strength").evaluate("e => e.validity.rangeOverflow")
    page.get_by_label("Blur strength").fill("25")
    page.get_by_label("Greyscale previews").uncheck()
    page.get_by_label("Reveal asks a second time").check()
    page.get_by_label("Break reminder after reveals").fill("1")
    page.get_by_label("Theme").select_option("dark")
    page.get_by_role("button", name="Save my settings").click()
    page.wait_for_url(f"{served}/settings?done=saved")
    page.goto(f"{served}/items/{item_id}")
    assert _filter(page) == "blur(25px) grayscale(0)"
    # reveal needs a second press now
    reveal = page.get_by_role("button", name="Reveal").first
    reveal.click()
    assert page.locator('figure[data-outcome="revealed"]').count() == 0
    reveal.click()
    page.locator('figure[data-outcome="revealed"]').first.wait_for()
    # one reveal reaches the break reminder of 1 reveal; the chosen dark theme applies
    assert "Time for a break: 1 reveal since" in page.locator("#break-reminder").inner_text()
    page.get_by_role("button", name="I took a break").click()
    assert page.locator("#break-reminder").is_hidden()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)"


def test_dashboard_figures_in_the_browser_equal_the_database(
    page: Any, served: str, db: Database, users: dict[str, int]
) -> None:
    seed_console(db, users, datetime.now(UTC))
    sign_in(page, served, "lee")
    page.keyboard.press("Tab")  # the skip link, then the navigation
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"{served}/dashboard")
    assert page.locator("svg.chart").count() == 6
    with db.session() as s:
        for status in ("pending", "escalated", "confirmed", "rejected", "removed"):
            n = s.scalar(select(func.count()).where(ReviewItem.status == status))
            assert page.locator(f'[data-status="{status}"]').inner_text() == str(n)
        for state in ("draft", "sent", "removed", "escalated"):
            n = s.scalar(select(func.count()).where(Notice.status == state))
            assert page.locator(f'[data-notices="{state}"]').inner_text() == str(n)
        decisions = s.scalar(select(func.count()).select_from(Decision))
    shown = page.evaluate(
        "[...document.querySelectorAll('[data-decisions]')].reduce((a, e) => a + +e.textContent, 0)"
    )
    assert shown == decisions == 4


PAGES = ("/login", "/queue", "ITEM", "/exposure", "/notices", "/dashboard", "/settings")


def test_no_serious_or_critical_accessibility_violations(
    page: Any, served: str, db: Database, users: dict[str, int], media_server: MediaServer
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    seed_console(db, users, datetime.now(UTC))
    item_id = _item_with_media(db, media_server, priority=9_000_000)
    found: dict[str, list[str]] = {}
    checked: list[str] = []
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for path in PAGES:
            if path == "/login":
                page.goto(served + "/login")
            else:
                if "/login" in page.url or page.url == "about:blank":
                    sign_in(page, served, "lee")
                if path == "ITEM":
                    page.goto(f"{served}/items/{item_id}")
                    claim = page.get_by_role("button", name="Claim this item")
                    if claim.count():
                        claim.click()
                        page.wait_for_url(f"{served}/items/{item_id}*")
                    page.locator('figure.preview[data-outcome="blurred"]').first.wait_for()
                else:
                    page.goto(served + path)
            results = axe.run(page)
            checked.append(f"{scheme} {path}")
            bad = [
                f"{v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. {v['nodes'][0]['target']})"
                for v in results.response["violations"]
                if v.get("impact") in ("serious", "critical")
            ]
            if bad:
                found[f"{scheme} {path}"] = bad
    assert found == {}
    assert len(checked) == 2 * len(PAGES)
    # The check can fail: a button with no name is a critical violation it reports.
    page.evaluate("document.querySelector('main').appendChild(document.createElement('button'))")
    impacts = {v["id"]: v["impact"] for v in axe.run(page).response["violations"]}
    assert impacts.get("button-name") == "critical"
