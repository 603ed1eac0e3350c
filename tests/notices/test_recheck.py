"""`takedown recheck` against a loopback web: one crawl, pages confirmed, the web changed,
one recheck (in a subprocess: Twisted's reactor runs once per process), both engines.

Each page embeds known media; during the recheck each page shows one case: 404, 410,
503, a timeout, an image swapped for an unrelated one, an image gone, a page still
serving its image (two pages sharing one image too), a page and a media the recheck
policy denies, and a media answering 503.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crawler.db.models import CrawlRun, Observation, Page, ReviewItem
from crawler.db.session import Database
from crawler.demo.images import synthetic_jpeg
from tests.support.sitekit import Web, policy_text, run_crawl

pytestmark = pytest.mark.slow

# page path -> its image path; each image is in the known list
PAGES = {
    "/gone404": "/img/a.jpg",
    "/gone410": "/img/b.jpg",
    "/err503": "/img/c.jpg",
    "/slow": "/img/d.jpg",
    "/swap": "/img/e.jpg",
    "/imggone": "/img/f.jpg",
    "/still": "/img/g.jpg",
    "/shared1": "/img/shared.jpg",
    "/shared2": "/img/shared.jpg",
    "/denied": "/img/h.jpg",
    "/mediadeny": "/img/blocked.jpg",
    "/media503": "/img/i.jpg",
}
EXPECTED = {
    "/gone404": ("removed", "HTTP 404"),
    "/gone410": ("removed", "HTTP 410"),
    "/swap": ("removed", "no media"),
    "/imggone": ("removed", "no media"),
    "/still": ("still up", "serves media"),
    "/shared1": ("still up", "serves media"),
    "/shared2": ("still up", "serves media"),
    "/err503": ("unknown", "HTTP 503"),
    "/slow": ("unknown", "timed out"),
    "/denied": ("unknown", "denied-pattern"),
    "/mediadeny": ("unknown", "media policy: denied-pattern http"),
    "/media503": ("unknown", "media HTTP 503 http"),
}


def _slow(h: BaseHTTPRequestHandler) -> None:
    time.sleep(4)
    try:
        h.send_response(200)
        h.send_header("Content-Length", "0")
        h.end_headers()
    except OSError:
        pass  # the crawler gave up long ago


def build_web() -> Web:
    web = Web(["site-a.test"])
    a = web["site-a.test"]
    images = sorted(set(PAGES.values()))
    for n, path in enumerate(images):
        a.add(path, synthetic_jpeg(500 + n, 160, 120), content_type="image/jpeg")
    links = "".join(f'<a href="{p}">p</a>' for p in PAGES)
    a.page("/", links)
    a.page("/other", "a page only a link leads to")
    for page, image in PAGES.items():
        a.page(page, f'<img src="{image}"><a href="/other">other</a>')
    return web


def change_web(web: Web) -> None:
    a = web["site-a.test"]
    a.add("/gone404", "gone", status=404)
    a.add("/gone410", "gone", status=410)
    a.add("/err503", "busy", status=503)
    a.routes["/slow"] = _slow
    a.add("/img/e.jpg", synthetic_jpeg(999, 160, 120), content_type="image/jpeg")
    a.add("/img/f.jpg", "no", status=404)
    a.add("/img/i.jpg", "busy", status=503)


def known_list(web: Web, tmp: Path) -> Path:
    rows = ["type,hash,category,reference"]
    for path, (_, _, body) in web["site-a.test"].routes.items():  # type: ignore[misc]
        if path.startswith("/img/"):
            rows.append(f"sha256,{hashlib.sha256(body).hexdigest()},A,{path}")
    target = tmp / "known.csv"
    target.write_text("\n".join(rows) + "\n")
    return target


def confirm_all(db: Database) -> None:
    """Every page confirmed. /shared1 and /shared2 show the same image: the crawl fetched
    it once, and both pages still got their sighting and their review item."""
    with db.session() as s:
        pages = {path_of(p.url): p.id for p in s.execute(select(Page)).scalars()}
        shared = [pages["/shared1"], pages["/shared2"]]
        seen = s.execute(select(Observation).where(Observation.page_id.in_(shared))).scalars()
        assert sorted(o.page_id for o in seen) == sorted(shared)
        items = s.execute(select(ReviewItem)).scalars().all()
        assert len(items) == len(PAGES)
        for item in items:
            item.status = "confirmed"


def run_recheck(
    env: dict[str, str], tmp: Path, web: Web, *args: str, policy: str
) -> subprocess.CompletedProcess[str]:
    policy_file = tmp / "recheck-policy.toml"
    policy_file.write_text(policy)
    settings = {
        "TAKEDOWN_TEST_HOSTS": json.dumps(web.host_map()),
        "TAKEDOWN_RDAP_ENRICH": "false",
        "TAKEDOWN_ROBOTS_RETRY_DELAYS": "[]",
        "DNS_TIMEOUT": "3",
        "RETRY_TIMES": "0",
    }
    command = [sys.executable, "-m", "crawler", "recheck", *args, "--policy", str(policy_file)]
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    full_env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run(command, env=full_env | env, capture_output=True, text=True, timeout=120)


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[-1]


def check_outcomes(db: Database, stderr: str) -> None:
    lines = {
        path_of(line.split()[-1]): line for line in stderr.splitlines() if "recheck: item" in line
    }
    with db.read_session() as s:
        rows = s.execute(select(Page.url, Page.first_seen, ReviewItem).join(ReviewItem)).all()
    for url, first_seen, item in rows:
        outcome, reason = EXPECTED[path_of(url)]
        line = lines[path_of(url)]
        assert f" {outcome} (" in line and reason in line, line
        assert item.last_checked_at is not None
        if outcome == "removed":
            assert item.status == "removed" and item.removed_at > first_seen
        else:
            assert item.status == "confirmed" and item.removed_at is None, line


def test_recheck_decides_per_item_and_never_leaves_the_page(
    cli: Any, env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    web = build_web().start()
    try:
        assert cli("hashlist", "import", str(known_list(web, tmp_path)), "--name", "k")[0] == 0
        crawl = run_crawl(env, tmp_path, web, web.url("site-a.test", "/"))
        assert crawl.returncode == 0, crawl.stderr[-3000:]
        confirm_all(db)
        change_web(web)
        hits_before = len(web.hits)
        policy = policy_text(
            web,
            scope={"deny_url_patterns": ["/denied$", "/img/blocked"]},
            politeness={"timeout_s": 1.5, "obey_robots": True, "autothrottle": False},
        )
        result = run_recheck(env, tmp_path, web, "--all", policy=policy)
        (tmp_path / "recheck.out").write_text(result.stdout + result.stderr)
        assert result.returncode == 0, result.stderr[-3000:]
        fetched = [h.path for h in web.hits[hits_before:]]
    finally:
        web.stop()
    check_outcomes(db, result.stderr)
    summary = " ".join(result.stdout.replace("\u2502", " ").split())
    assert "removed 4" in summary and "still up 3" in summary and "unknown 5" in summary
    # depth 0: neither the link every page carries nor the index; nothing denied
    assert "/other" not in fetched and "/" not in fetched
    assert "/denied" not in fetched and "/img/blocked.jpg" not in fetched
    with db.read_session() as s:
        kinds = s.execute(select(CrawlRun.kind).order_by(CrawlRun.id)).scalars().all()
    assert kinds == ["crawl", "recheck"]
    # The crawl and the recheck each ended with a signed checkpoint of the audit head.
    checkpoints = Path(env["TAKEDOWN_HOME"]) / "audit" / "checkpoints.jsonl"
    seqs = [json.loads(line)["seq"] for line in checkpoints.read_text().splitlines()]
    assert len(seqs) == 2 and 0 < seqs[0] < seqs[1]
    code, _, err = cli("audit", "verify")
    assert code == 0 and "matches 2 checkpoint(s)" in err, err
