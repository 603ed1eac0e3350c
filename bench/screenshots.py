"""Screenshots of the review console over synthetic data, for docs/screenshots/.

Builds a throwaway SQLite database (migrated), five users and the console's synthetic
data (tests/support/console_data.py: generated PNGs and a PyAV-made video from a loopback
media server on 127.0.0.2, no photographs), serves the app on 127.0.0.1 and has Debian's chromium
(through Playwright) take each page at 1280x800, in the light theme and the item page
also in the dark one.

    python bench/screenshots.py [--out docs/screenshots] [--size 1280x800]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = (
    ("login", "/login", None),
    ("queue", "/queue", "lee"),
    ("item", "ITEM", "lee"),
    ("exposure", "/exposure", "lee"),
    ("notices", "/notices", "lee"),
    ("dashboard", "/dashboard", "lee"),
    ("settings", "/settings", "ada"),
    ("shortcuts", "ITEM?", "lee"),
    ("item-dark", "ITEM", "lee"),
    ("item-video", "VIDEO", "lee"),
    ("item-confirm-match", "CONFIRM", "lee"),
)


def _media_server() -> tuple[ThreadingHTTPServer, str]:
    from tests.support.http_server import serve_routes
    from tests.support.media import blocks_png
    from tests.support.video import make_video

    bodies = {
        "/a.png": blocks_png(seed=1),
        "/b.png": blocks_png(seed=7),
        "/c.png": blocks_png(seed=4),
        "/e.png": blocks_png(seed=9),
        "/clip.mp4": make_video(8, fps=4, size=(320, 240), seed=5),
    }

    routes = {
        path: (200, "video/mp4" if path.endswith(".mp4") else "image/png", body)
        for path, body in bodies.items()
    }
    return serve_routes(routes, "127.0.0.2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--size", default="1280x800")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from argon2 import PasswordHasher
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    import crawler.accounts.passwords as pw
    from crawler.db.migrate import upgrade
    from crawler.db.session import Database
    from review.app import create_app
    from tests.support.console_data import seed_console
    from tests.support.review import PASSWORD, add_review_users, loopback_preview_config

    pw._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # type: ignore[attr-defined]
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/console.db"
        db = Database(url)
        upgrade(db)
        users = add_review_users(db)
        media, media_base = _media_server()
        made = seed_console(db, users, now, media_base=media_base)
        db.dispose()
        app = create_app(
            test_config={
                "db_url": url,
                "secret_key": "screenshots-only-0123456789abcdef",
                "preview": loopback_preview_config(),
            }
        )
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        item = made["open"][0]
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
                )
                for name, path, who in PAGES:
                    scheme = "dark" if name.endswith("dark") else "light"
                    context = browser.new_context(
                        viewport={"width": width, "height": height}, color_scheme=scheme
                    )
                    page = context.new_page()
                    if who:
                        page.goto(base + "/login")
                        page.get_by_label("Username").fill(who)
                        page.get_by_label("Password").fill(PASSWORD)
                        page.get_by_role("button", name="Sign in").click()
                        page.wait_for_url(base + "/queue")
                    target_item = {"ITEM": item, "VIDEO": made["video"]}.get(
                        path.rstrip("?"), made["confirm_match"]
                    )
                    if not path.startswith("/"):
                        page.goto(f"{base}/items/{target_item}")
                        claim = page.get_by_role("button", name="Claim this item")
                        if claim.count():
                            claim.click()
                            page.wait_for_url(f"{base}/items/{target_item}*")
                        shown = "keyframes" if path == "VIDEO" else "preview"
                        page.locator(f'figure.{shown}[data-outcome="blurred"]').first.wait_for()
                        if path.endswith("?"):
                            page.keyboard.press("?")
                    else:
                        page.goto(base + path)
                    target = out / f"{name}.png"
                    # The console over synthetic data only (previews are blurred generated
                    # images): docs/screenshots/ is where the project keeps these.
                    page.screenshot(path=str(target))
                    print(f"{target} ({name}, {width}x{height}, {scheme})")
                    context.close()
                browser.close()
        finally:
            server.shutdown()
            media.shutdown()
            app.extensions["review_db"].dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
