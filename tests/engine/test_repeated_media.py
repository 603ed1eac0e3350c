"""A real crawl: one known image embedded on three pages is fetched once, yet gives three
observations and three review items (the spider fetches each media URL once per run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from crawler.db.models import Observation, ReviewItem
from crawler.db.session import Database
from tests.support.matching import known_sha256
from tests.support.media import synthetic_png
from tests.support.sitekit import Web, policy_text, run_crawl


def test_known_image_on_three_pages_gives_three_candidates(
    web: Web, env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    image = synthetic_png(91)
    with db.session() as s:
        known_sha256(s, "known-crawl", image)
    site = web["site-a.test"]
    links = "".join(f'<a href="/p{n}">p{n}</a>' for n in range(3))
    site.page("/", links)
    for n in range(3):
        site.page(f"/p{n}", '<img src="/known.png"><p>gallery</p>')
    site.add("/known.png", image, content_type="image/png")
    site.add("/robots.txt", "", status=404, content_type="text/plain")
    policy = policy_text(web, scope={"follow": "host"})
    result = run_crawl(env, tmp_path, web, web.url("site-a.test"), policy=policy)
    assert result.returncode == 0, result.stderr[-3000:]
    assert web.paths("site-a.test").count("/known.png") == 1  # fetched once
    assert _count(db, Observation, Observation.media_id.isnot(None)) == 3
    assert _count(db, ReviewItem) == 3


def _count(db: Database, model: type, *where: Any) -> int:
    with db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)
