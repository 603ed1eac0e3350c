"""`takedown demo` on the embedded default: a fresh home, one command, a full queue."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from crawler.db.models import HashList, Page, ReviewItem, User
from crawler.db.session import Database
from crawler.demo.site import HOSTILE_TITLE, DemoSite


def test_demo_site_lists_cover_some_images_and_the_logo_is_benign() -> None:
    site = DemoSite()
    sha256s = {
        hashlib.sha256(r.body).hexdigest()
        for p, r in site.resources.items()
        if p.startswith("/img/")
    }
    known = [row for row in site.known_rows if row[0] == "sha256"]
    assert known and all(row[1] in sha256s for row in known)
    assert any(row[0] == "pdq" for row in site.known_rows)
    logo = hashlib.sha256(site.resources["/img/0.jpg"].body).hexdigest()
    assert site.benign_rows == [("sha256", logo, "", "site logo")]


def test_demo_without_serving_crawls_and_fills_the_queue(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKEDOWN_")}
    result = subprocess.run(
        [sys.executable, "-m", "crawler", "demo", "--no-serve", "--site-host", "127.0.0.5"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sign in as demo-analyst / " in result.stderr
    # Scrapy's start-up dumps are DEBUG records, takedown's own lines remain
    for dump in ("Overridden settings:", "Enabled downloader middlewares:", "Versions:"):
        assert dump not in result.stderr, dump
    db = Database(f"sqlite:///{tmp_path / '.takedown' / 'takedown.db'}")
    with db.read_session() as s:
        pending = (
            s.execute(select(Page.url).join(ReviewItem).where(ReviewItem.status == "pending"))
            .scalars()
            .all()
        )
        lists = s.execute(select(HashList.name, HashList.kind)).all()
        users = s.execute(select(User.username, User.role)).all()
        titles = s.execute(select(Page.title)).scalars().all()
    db.dispose()
    # images 3, 7, 16 exactly and 11 by PDQ: galleries 1, 3, 6 and 4; the logo is benign
    assert sorted(u.rsplit("/", 1)[-1] for u in pending) == ["1", "3", "4", "6"]
    assert sorted(lists) == [("demo-benign", "benign"), ("demo-known", "known")]
    assert sorted(users) == [("demo-analyst", "analyst"), ("demo-lead", "lead")]
    assert HOSTILE_TITLE in titles  # stored as the text it is, shown escaped by the app
