"""The live progress figure `matches` follows what the store writer matched.

Matching runs in the writer process; the progress line read a stat nothing counted, so a
crawl whose summary found matched media showed `matches=0` throughout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.db.models import CrawlRun
from crawler.db.session import Database
from tests.support.matching import known_sha256
from tests.support.media import synthetic_png
from tests.support.sitekit import Web, policy_text, run_crawl


@pytest.mark.parametrize("writer_process", ["true", "false"])
def test_progress_matches_follow_the_writer(
    web: Web, env: dict[str, str], db: Database, tmp_path: Path, writer_process: str
) -> None:
    known = [synthetic_png(31), synthetic_png(32)]
    with db.session() as s:
        known_sha256(s, "known-progress", *known)
    site = web["site-a.test"]
    site.page("/", '<a href="/p1">1</a><a href="/p2">2</a><img src="/k0.png">')
    site.page("/p1", '<img src="/k0.png"><img src="/k1.png"><img src="/other.png">')
    site.page("/p2", '<img src="/k1.png"><img src="/k1-copy.png">')  # same bytes, new URL
    site.add("/k0.png", known[0], content_type="image/png")
    site.add("/k1.png", known[1], content_type="image/png")
    site.add("/k1-copy.png", known[1], content_type="image/png")
    site.add("/other.png", synthetic_png(33), content_type="image/png")
    site.add("/robots.txt", "", status=404, content_type="text/plain")
    result = run_crawl(
        env,
        tmp_path,
        web,
        web.url("site-a.test"),
        policy=policy_text(web, scope={"follow": "host"}),
        # ticks during the crawl as well; the last line is logged when the spider closes
        extra_settings={
            "TAKEDOWN_WRITER_PROCESS": writer_process,
            "TAKEDOWN_PROGRESS_INTERVAL": "0.05",
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line)["msg"] for line in result.stderr.splitlines() if line.startswith("{")]
    progress = [line for line in lines if line.startswith("progress: ")]
    assert progress, result.stderr[-3000:]
    figures = dict(re.findall(r"(\S+)=(\S+)", progress[-1]))
    with db.read_session() as s:
        run = s.execute(select(CrawlRun)).scalar_one()
    assert run.matches == 2  # the summary's "matched media": two distinct media
    assert figures["matches"] == "2", progress[-1]
    assert figures["media"] == "4"  # media URLs, each fetched once per run
    assert run.stats["store/matches"] == 2
