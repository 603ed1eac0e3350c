"""S-01: a crawl killed with SIGKILL and resumed loses no page and refetches at most
what was in flight; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.sitekit import Web, policy_text, run_crawl
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


def done_pages(db_url: str) -> list[str]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT url FROM frontier WHERE kind='page' AND state='done'"))
        urls = [r[0] for r in rows]
    engine.dispose()
    return urls


def start_crawl(env: dict[str, str], tmp: Path, web: Web) -> subprocess.Popen[str]:
    policy = tmp / "policy.toml"
    policy.write_text(policy_text(web, politeness={"per_host_concurrency": CONCURRENCY}))
    hosts = json.dumps(web.host_map())
    command = [
        sys.executable,
        "-m",
        "crawler",
        "crawl",
        web.url("site-a.test"),
        "--policy",
        str(policy),
        "--name",
        "killed",
        "-s",
        f"TAKEDOWN_TEST_HOSTS={hosts}",
        "-s",
        "TAKEDOWN_RDAP_ENRICH=false",
        "-s",
        f"CONCURRENT_REQUESTS={CONCURRENCY}",
    ]
    full_env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")} | env
    return subprocess.Popen(
        command, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )


@pytest.mark.slow
def test_s01_kill_9_then_resume_loses_nothing(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    web = tree_web().start()
    try:
        process = start_crawl(env, tmp_path, web)
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
