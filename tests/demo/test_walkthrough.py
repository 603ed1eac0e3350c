"""The operator's walk in real Chromium: demo -> sign in -> confirm -> notice -> page taken
down -> recheck -> removed -> the report shows the time to removal.

Everything stays on loopback: the demo site on 127.0.0.6 (which also answers the
crawl's RDAP questions with the demo provider's abuse contact, and comes with GeoIP files
naming the provider), the review app on 127.0.0.1. The crawl and the recheck run as child processes (Twisted's
reactor runs once per process); the review app is served in a thread.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crawler.config import Settings, load_settings
from crawler.db.session import Database
from crawler.demo import run
from crawler.demo.site import ABUSE_CONTACT
from crawler.net.addresses import AddressPolicy
from review.app import create_app
from review.config import PreviewConfig
from tests.support.browser import chromium_tab, serve_app, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]
playwright = pytest.importorskip("playwright.sync_api")

SITE_HOST = "127.0.0.6"
CONTACT = ABUSE_CONTACT  # a string only: nothing is ever sent


@pytest.fixture
def cfg(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TAKEDOWN_SECRET_KEY", "walkthrough-secret-key-0123456789abcdef")
    return load_settings()


@pytest.fixture
def demo(cfg: Settings) -> Iterator[run.Demo]:
    state = run.prepare(cfg, SITE_HOST, 0)
    try:
        run.ensure_crawled(cfg, state)
        yield state
    finally:
        state.site.stop()


@pytest.fixture
def app_url(cfg: Settings, demo: run.Demo) -> Iterator[str]:
    preview = PreviewConfig(address_policy=AddressPolicy(False, (f"{SITE_HOST}/32",)))
    with serve_app(create_app(cfg, {"preview": preview})) as base:
        yield base


@pytest.fixture
def tab() -> Iterator[Any]:
    with chromium_tab() as page:
        yield page


def confirm_next_item(tab: Any, base: str, password: str) -> int:
    sign_in(tab, base, run.ANALYST, password)
    tab.get_by_role("button", name="Next item").click()
    tab.wait_for_url(re.compile(r".*/items/\d+$"))
    item_id = int(tab.url.rsplit("/", 1)[-1])
    tab.get_by_label("Category").select_option("A")
    tab.get_by_role("button", name="Confirm", exact=True).click()
    tab.wait_for_url(f"{base}/queue?*")
    assert f"item {item_id} is now confirmed" in tab.content()
    return item_id


def candidate(cli: Any, item_id: int) -> dict[str, Any]:
    code, out, err = cli("export", "candidates", "--format", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return next(r for r in rows if r["id"] == item_id)


def notice_sent(cli: Any) -> str:
    code, _, err = cli("notices", "build")
    assert code == 0, err
    serial = re.search(r"created (TD-\d{4}-\d{6}) to " + re.escape(CONTACT), err)
    assert serial, err
    code, _, err = cli("notices", "mark-sent", serial.group(1))
    assert code == 0 and "marked sent" in err, err
    return serial.group(1)


def recheck(demo: run.Demo) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "crawler", "recheck", "--all"]
    command += ["--policy", str(demo.policy_path)]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_demo_to_removal_in_chromium(
    cli: Any, cfg: Settings, demo: run.Demo, app_url: str, tab: Any, tmp_path: Path
) -> None:
    db = Database(cfg.db_url)
    try:
        password = run.one_time_account(db, run.ANALYST, "analyst")
    finally:
        db.dispose()
    item_id = confirm_next_item(tab, app_url, password)
    item = candidate(cli, item_id)
    assert item["status"] == "confirmed" and item["abuse_contact"] == CONTACT
    serial = notice_sent(cli)

    demo.site.remove("/" + item["page_url"].split("/", 3)[-1])
    result = recheck(demo)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"recheck: item {item_id} removed (HTTP 404)" in result.stderr

    tab.goto(f"{app_url}/items/{item_id}")
    assert "(removed)" in tab.get_by_role("heading", level=1).inner_text()
    item = candidate(cli, item_id)
    assert item["status"] == "removed" and item["removed_at"] is not None
    code, out, err = cli("notices", "export", "--format", "json")
    assert code == 0, err
    notice = next(n for n in json.loads(out) if n["serial"] == serial)
    assert notice["status"] == "removed"

    report = tmp_path / "report.html"
    assert cli("report", "--format", "html", "--output", str(report))[0] == 0
    league = report.read_text().split("Time to removal: league table", 1)[1]
    row = re.search(r"<td class=\"name\">AS64500 Demo Hosting</td><td>1</td><td>([\d.]+)</td>", league)  # fmt: skip
    assert row, league[:3000]
