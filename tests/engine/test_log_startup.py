"""On a non-terminal, a crawl's log carries takedown's lines, not Scrapy's
start-up dumps (versions, overridden settings, enabled components) at INFO."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.sitekit import Web, run_crawl

STARTUP = ("Scrapy ", "Versions:", "Overridden settings:", "Enabled ")


def test_crawl_log_has_no_scrapy_startup_dumps_at_info(
    web: Web, env: dict[str, str], tmp_path: Path
) -> None:
    web["site-a.test"].page("/", "<p>hello</p>")
    web["site-a.test"].add("/robots.txt", "", status=404, content_type="text/plain")
    result = run_crawl(env, tmp_path, web, web.url("site-a.test"))
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert records, result.stderr[-3000:]
    dumps = [
        r for r in records if r["logger"].startswith("scrapy") and r["msg"].startswith(STARTUP)
    ]
    assert dumps == [], [r["msg"][:80] for r in dumps]
    assert not any("'USER_AGENT'" in r["msg"] or "Middleware" in r["msg"] for r in records)
    # takedown's own lines are still there: its progress line and the run's own messages
    ours = [r for r in records if r["logger"].startswith(("crawler", "spiders"))]
    assert any(r["msg"].startswith("progress: pages=1 ") for r in ours), ours
    assert "crawl run " in result.stdout + result.stderr  # the summary
