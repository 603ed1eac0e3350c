"""The browser fixture: the review app served on 127.0.0.1 and a Chromium tab on it.

Debian's /usr/bin/chromium driven by Playwright, with the crawler's own Chromium flags
(`crawler.engine.render`). Any JavaScript dialog fails the test: hostile titles, alt texts
and URLs must never execute. tests/review/conftest.py re-exports `served` and `page`;
tests sign in with `sign_in`. `serve_app` and `chromium_tab` serve the demo's walkthrough too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from crawler.engine.render import CHROMIUM, CHROMIUM_ARGS
from tests.support.review import PASSWORD, Clock, loopback_preview_config, make_app


@contextmanager
def serve_app(app: Flask) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        app.extensions["review_db"].dispose()


@contextmanager
def chromium_tab() -> Iterator[Any]:
    """A tab in a fresh Chromium; fails if any JavaScript dialog opened in it."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        tab = browser.new_context().new_page()
        dialogs: list[str] = []
        tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        tab.set_default_timeout(15_000)
        yield tab
        browser.close()
        assert dialogs == [], f"a dialog opened: {dialogs}"


@pytest.fixture
def served(db_url: str, users: dict[str, int], clock: Clock) -> Iterator[str]:
    with serve_app(make_app(db_url, preview=loopback_preview_config())) as base:
        yield base


@pytest.fixture
def page(served: str) -> Iterator[Any]:
    with chromium_tab() as tab:
        yield tab


def sign_in(page: Any, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(base + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/queue")


def open_item(page: Any, base: str, item_id: int, username: str = "ana") -> None:
    """Signs `username` in and opens review item `item_id`'s page."""
    sign_in(page, base, username)
    page.goto(f"{base}/items/{item_id}")
