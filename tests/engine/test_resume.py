"""S-01: a crawl killed with SIGKILL and resumed loses no page and refetches at most
what was in flight; on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.sitekit import Web, done_pages, policy_text, run_crawl, start_crawl
from tests.support.sitekit import tree_web as sitekit_tree_web

BRANCHING = 6
CONCURRENCY = 16


def tree_web() -> Web:
    return sitekit_tree_web(BRANCHING, 0.01)


def expected_pages(port: int) -> set[str]:
    paths, level = {"/"}, [""]
    for _ in range(3):  # max_depth 3
        level = [f"{p}{i}" if not p else f"{p}-{i}" for p in level for i in range(BRANCHING)]
        paths |= {f"/n/{p}" for p in level}
    return {f"http://site-a.test:{port}{p}" for p in paths}


def start_killable_crawl(env: dict[str, str], tmp: Path, web: Web) -> subprocess.Popen[str]:
    policy = tmp / "policy.toml"
    policy.write_text(policy_text(web, politeness={"per_host_concurrency": CONCURRENCY}))
    url = web.url("site-a.test")
    return start_crawl(env, web, policy, url, "--name", "killed", CONCURRENT_REQUESTS=CONCURRENCY)


@pytest.mark.slow
def test_s01_kill_9_then_resume_loses_nothing(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    web = tree_web().start()
    try:
        process = start_killable_crawl(env, tmp_path, web)
        deadline = time.monotonic() + 60
        while len(done_pages(db_url)) < 60 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        killed_at = len(done_pages(db_url))
        expected = expected_pages(web.port)
        assert 0 < killed_at < len(expected)
        result = run_crawl(
            env,
            tmp_path,
            web,
            "--resume",
            "killed",
            extra_settings={"CONCURRENT_REQUESTS": CONCURRENCY},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        done = done_pages(db_url)
        assert set(done) == expected and len(done) == len(expected)
        fetched = Counter(h.path for h in web.hits if h.path != "/robots.txt")
        duplicates = sum(n - 1 for n in fetched.values())
        assert set(fetched) == {u.split(str(web.port), 1)[1] for u in expected}
        assert duplicates <= CONCURRENCY
    finally:
        web.stop()
