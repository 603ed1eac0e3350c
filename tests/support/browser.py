"""The browser fixture: the review app served on 127.0.0.1 and a Chromium tab on it.

Debian's /usr/bin/chromium driven by Playwright. Any JavaScript dialog fails the test:
hostile titles, alt texts and URLs must never execute. tests/review/conftest.py re-exports
`served` and `page`; tests sign in with `sign_in`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.support.review import PASSWORD, Clock, loopback_preview_config, make_app

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
def served(db_url: str, users: dict[str, int], clock: Clock) -> Iterator[str]:
    app = make_app(db_url, preview=loopback_preview_config())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    app.extensions["review_db"].dispose()


@pytest.fixture
def page(served: str) -> Iterator[Any]:
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context()
        tab = context.new_page()
        dialogs: list[str] = []
        tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        tab.set_default_timeout(15_000)
        yield tab
        browser.close()
        assert dialogs == [], f"a dialog opened: {dialogs}"


def sign_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/queue")
