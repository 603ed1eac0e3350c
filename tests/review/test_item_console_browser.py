"""The item page as the analyst's console, in real Chromium: why the page is here (the
matches in words, strongest first), hashes folded away, and a video shown as a strip of
blurred greyscale keyframes from the app's own origin, never a playing video."""

from __future__ import annotations

from typing import Any

import pytest

from crawler.db.session import Database
from tests.support.browser import open_item
from tests.support.item_data import MIXED_REASONS, archive_item, mixed_item, video_item
from tests.support.review import MediaServer

pytestmark = pytest.mark.browser


def test_matches_come_first_strongest_first_in_words_and_hashes_are_folded(
    page: Any, served: str, db: Database
) -> None:
    item_id = mixed_item(db)
    open_item(page, served, item_id)
    page.get_by_role("button", name="Claim this item").click()
    page.wait_for_url(f"{served}/items/{item_id}*")
    reasons = page.get_by_role("list", name="Matches, strongest first")
    assert reasons.locator("li").all_inner_texts() == MIXED_REASONS
    # the reasons come before the media grid, which comes before the hosting facts
    order = page.evaluate(
        """() => ['#why-h', '#media-h', '#page-h'].map(
             s => document.querySelector(s).getBoundingClientRect().top)"""
    )
    assert order == sorted(order)
    # every hash and fetch detail is folded (closed) until asked for
    folded = page.locator("details.hashes-more")
    assert folded.count() == 7  # one per media, and the hosting facts
    assert page.evaluate("[...document.querySelectorAll('details')].every(d => !d.open)")
    sha = page.locator("details.hashes-more dl.hashes code").first
    assert not sha.is_visible()
    page.locator("details.hashes-more > summary").first.click()
    assert sha.is_visible()
    # each media keeps its Illegal box; exact known matches are ticked and metadata only
    for n in range(1, 7):
        box = page.get_by_role("checkbox", name=f"Illegal: media {n}")
        assert box.is_checked() == (n in (2, 4))
    assert page.locator('article[data-media="2"] figure').count() == 0
    assert _serious(page) == []
    # the decision panel stays in view while the page scrolls
    page.set_viewport_size({"width": 1280, "height": 800})
    page.mouse.wheel(0, 3000)
    confirm = page.get_by_role("button", name="Confirm", exact=True)
    assert confirm.is_visible()
    box = confirm.bounding_box()
    assert box is not None and 0 <= box["y"] < 800


def test_a_video_is_a_strip_of_blurred_keyframes_from_the_apps_origin(
    page: Any, served: str, db: Database, media_server: MediaServer
) -> None:
    item_id, _ = video_item(db, media_server)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    open_item(page, served, item_id)
    figure = page.locator('figure.keyframes[data-outcome="blurred"]')
    figure.wait_for()
    images = figure.locator("img")
    assert images.count() == 6
    for n in range(6):
        img = images.nth(n)
        assert img.get_attribute("src").startswith(f"blob:{served}/")  # type: ignore[union-attr]
        assert img.evaluate("e => getComputedStyle(e).filter") == "blur(12px) grayscale(1)"
        assert img.evaluate("e => e.complete && e.naturalWidth > 0")
    # the matching frame's time is marked
    marked = figure.locator("li.match")
    assert marked.count() == 1 and marked.inner_text() == "0:05 · match"
    assert "at 0:05" in page.get_by_role("list", name="Matches, strongest first").inner_text()
    # the server made them grey and blurred too (not only the browser's filter)
    assert _strip_stats(page)["grey"]
    # never a player: no video or audio element, nothing playing or set to autoplay
    assert page.locator("video, audio").count() == 0
    assert page.evaluate(
        "[...document.querySelectorAll('video, audio')].every(v => v.paused && !v.autoplay)"
    )
    # the browser only ever asked the app; the app fetched the video itself
    assert requests and all(u.startswith((served, f"blob:{served}/")) for u in requests)
    assert "/clip.mp4" in media_server.hits
    assert _serious(page) == []  # the strip passes the same accessibility check
    # Reveal shows the same frames unblurred, in colour
    page.get_by_role("button", name="Reveal").click()
    page.locator('figure.keyframes[data-outcome="revealed"]').wait_for()
    assert figure.count() == 0
    assert not _strip_stats(page)["grey"]


def test_archive_members_show_under_their_archive_as_text(
    page: Any, served: str, db: Database
) -> None:
    item_id = archive_item(db)
    open_item(page, served, item_id)
    reasons = page.get_by_role("list", name="Matches, strongest first").locator("li")
    assert reasons.all_inner_texts() == [
        "Media 1, archive member photos/<b>x</b>.png: Exact copy (sha256) of list known-z "
        "entry z-7, category A"
    ]
    files = page.get_by_role("list", name="Files inside the archive of media 1")
    assert files.locator(":scope > li").count() == 3
    assert "../../etc/passwd" in files.inner_text()
    assert page.locator("article.media b").count() == 0  # the member's name is text
    assert page.locator("figure").count() == 0  # members are never previewed
    assert _serious(page) == []


def _strip_stats(tab: Any) -> dict[str, Any]:
    return tab.evaluate(  # type: ignore[no-any-return]
        """() => {
        let grey = true;
        for (const img of document.querySelectorAll('figure.keyframes img')) {
          const c = document.createElement('canvas');
          c.width = img.naturalWidth; c.height = img.naturalHeight;
          const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
          const d = ctx.getImageData(0, 0, c.width, c.height).data;
          for (let i = 0; i < d.length; i += 4) {
            if (Math.abs(d[i] - d[i + 1]) > 2 || Math.abs(d[i + 1] - d[i + 2]) > 2) grey = false;
          }
        }
        return {grey};
    }"""
    )


def _serious(tab: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(tab).response["violations"]
    return [v["id"] for v in found if v.get("impact") in ("serious", "critical")]
