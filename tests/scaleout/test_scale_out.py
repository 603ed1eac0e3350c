"""Scale-out crawls (docs/scale-out.md; S-03, S-04, S-05): several worker processes on one job
through a private Redis, on SQLite and PostgreSQL, against the generated tree site."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, text

from crawler.scaleout.redis_frontier import Wire, decode, encode
from tests.support.scalekit import RedisServer, TreeSite, crawl_command
from tests.support.sitekit import clean_env

PER_HOST = 2
CONCURRENCY = 8


# --- the codec (S-04) ----------------------------------------------------------------------


class Gadget:
    """Unpickling this creates a file: the side effect that must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_pickle_gadget_is_rejected_without_side_effect(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    assert decode(pickle.dumps(Gadget(marker))) is None
    assert not marker.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"v": 1, "url": "http://a.test/", "method": "GET", "priority": 0, "meta": {},'
        b' "callback": "__init__", "errback": "page_failed"}',
        b'{"v": 1, "url": "file:///etc/passwd", "method": "GET", "priority": 0, "meta": {},'
        b' "callback": "parse_page", "errback": "page_failed"}',
        b'{"v": 1, "url": "http://a.test/", "method": "GET", "priority": 0,'
        b' "meta": {"proxy": "http://evil"}, "callback": "parse_page", "errback": "page_failed"}',
        b'{"v": 1, "url": "http://a.test/", "method": "GET", "priority": "0", "meta": {},'
        b' "callback": "parse_page", "errback": "page_failed"}',
    ],
)
def test_malformed_entries_are_rejected(body: bytes) -> None:
    assert decode(body) is None


def test_wire_round_trip() -> None:
    wire = Wire(
        "http://a.test/x",
        10,
        "parse_media",
        "media_failed",
        (("depth", 2), ("page_url", "http://a.test/"), ("td_kind", "media")),
    )
    assert decode(encode(wire)) == wire


# --- worker processes ----------------------------------------------------------------------


def frontier(db_url: str, run_id: int) -> dict[str, set[str]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT kind, state, url FROM frontier WHERE run_id = :r"), {"r": run_id}
        )
        out: dict[str, set[str]] = {}
        for kind, state, url in rows:
            out.setdefault(f"{kind}/{state}", set()).add(url)
    engine.dispose()
    return out


def run_row(db_url: str, run_id: int) -> dict[str, Any]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, finish_reason, stats FROM crawl_runs WHERE id = :r"), {"r": run_id}
        ).one()
    engine.dispose()
    stats = row[2] if isinstance(row[2], dict) else json.loads(row[2] or "{}")
    return {"status": row[0], "reason": row[1], "stats": stats}


def crawl(
    site: TreeSite,
    tmp: Path,
    env: dict[str, str],
    *args: str,
    timeout: float = 150,
    **settings: Any,
) -> subprocess.CompletedProcess[str]:
    policy = tmp / "policy.toml"
    policy.write_text(site.policy(per_host=PER_HOST))
    command = crawl_command(site, policy, *args, CONCURRENT_REQUESTS=CONCURRENCY, **settings)
    return subprocess.run(
        command, env=clean_env(env), capture_output=True, text=True, timeout=timeout
    )


def push_gadget_when_running(url: str, marker: Path, deadline_s: float = 60) -> bool:
    """Put a pickle gadget at the head of the job's page queue once the job exists."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        jobs = list(client.scan_iter(match="td:*:job"))
        if jobs:
            base = jobs[0].decode().removesuffix("job")
            client.rpush(base + "q:lo", pickle.dumps(Gadget(marker)))
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_two_and_three_workers_equal_a_single_process_crawl(
    env: dict[str, str], db_url: str, redis_url: str, tmp_path: Path
) -> None:
    site = TreeSite(branching=4, latency_s=0.02).start()
    marker = tmp_path / "pwned"
    try:
        single = crawl(site, tmp_path, env, site.web.url("site-a.test"))
        assert single.returncode == 0, single.stderr[-3000:]
        expected = frontier(db_url, 1)
        assert expected["page/done"] == site.page_urls()
        for run_id, workers in ((2, 2), (3, 3)):
            site.web.hits.clear()
            site.max_inflight = 0
            with_redis = env | {"TAKEDOWN_REDIS_URL": redis_url}
            if workers == 3:
                import threading

                threading.Thread(
                    target=push_gadget_when_running, args=(redis_url, marker), daemon=True
                ).start()
            result = crawl(
                site, tmp_path, with_redis, site.web.url("site-a.test"), "--workers", str(workers)
            )
            assert result.returncode == 0, result.stderr[-3000:]
            got = frontier(db_url, run_id)
            assert got == expected, {k: len(v) for k, v in got.items()}
            fetched = site.fetched()
            assert sum(n - 1 for n in fetched.values()) == 0, fetched.most_common(3)
            assert set(fetched) == site.paths()
            assert site.max_inflight <= PER_HOST
            row = run_row(db_url, run_id)
            assert row["status"] == "finished", row
            assert row["stats"]["workers/count"] == workers
        assert row["stats"].get("scheduler/redis/bad-entries") == 1, row["stats"]
        assert not marker.exists()
        assert not list(redis.Redis.from_url(redis_url).scan_iter(match="td:[0-9]*"))
    finally:
        site.stop()


def worker_children(pid: int) -> list[int]:
    """The worker processes (`python -m crawler.engine.workers`) started by process *pid*."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = []
    for child in path.read_text().split() if path.exists() else []:
        try:
            if b"crawler.engine.workers" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
        except OSError:
            continue  # a short-lived helper process that has gone already
    return found


def held_by(url: str, pid: int) -> int:
    client = redis.Redis.from_url(url)
    return sum(int(client.llen(key)) for key in client.scan_iter(match=f"td:*:proc:*-{pid}-*"))


def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.mark.slow
def test_worker_killed_mid_run_loses_nothing(
    env: dict[str, str], db_url: str, redis_url: str, tmp_path: Path
) -> None:
    """S-03: two workers on this 'machine', one joined from 'another' that dies (SIGKILL
    of its whole process group) while holding work: the two finish the job."""
    # Slow enough (about 12 s of downloads) that the joiner starts while work remains.
    site = TreeSite(branching=5, latency_s=0.15).start()
    full_env = clean_env(env | {"TAKEDOWN_REDIS_URL": redis_url})
    policy = tmp_path / "policy.toml"
    policy.write_text(site.policy(per_host=PER_HOST * 2))
    settings = {"CONCURRENT_REQUESTS": CONCURRENCY, "TAKEDOWN_REDIS_HEARTBEAT_TTL": 2}
    main = subprocess.Popen(
        crawl_command(
            site, policy, site.web.url("site-a.test"), "--workers", "2", "--name", "job", **settings
        ),
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    joiner = None
    try:
        assert wait_until(lambda: list(redis.Redis.from_url(redis_url).scan_iter("td:*:job")), 60)
        joiner = subprocess.Popen(
            crawl_command(site, policy, "--join", "job", "--workers", "1", **settings),
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "joiner.log").open("w"),
            start_new_session=True,
        )
        worker = []
        assert wait_until(lambda: bool(worker.extend(worker_children(joiner.pid)) or worker), 60)
        assert wait_until(lambda: held_by(redis_url, worker[0]) > 0, 90), "joiner never took work"
        os.killpg(joiner.pid, signal.SIGKILL)
        joiner.wait(timeout=10)
        out, err = main.communicate(timeout=150)
        assert main.returncode == 0, err[-3000:]
        got = frontier(db_url, 1)
        assert got.get("page/done") == site.page_urls(), {k: len(v) for k, v in got.items()}
        assert set(got) == {"page/done", "media/done"}
        fetched = site.fetched()
        assert set(fetched) == site.paths()
        duplicates = sum(n - 1 for n in fetched.values())
        assert duplicates <= CONCURRENCY, fetched.most_common(5)
        assert run_row(db_url, 1)["stats"].get("scheduler/redis/reaped", 0) >= 1
    finally:
        for proc in (main, joiner):
            if proc is not None and proc.poll() is None:
                proc.kill()
        site.stop()


@pytest.mark.slow
def test_redis_lost_mid_crawl_exits_3_and_resume_finishes(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    """S-05: Redis stops mid-crawl: the crawl stops with exit 3 naming Redis, nothing
    fetched is unrecorded; with Redis back, --resume finishes the job."""
    site = TreeSite(branching=4, latency_s=0.05).start()
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder).start()
    try:
        full_env = env | {"TAKEDOWN_REDIS_URL": server.url}
        policy = tmp_path / "policy.toml"
        policy.write_text(site.policy(per_host=PER_HOST))
        command = crawl_command(
            site,
            policy,
            site.web.url("site-a.test"),
            "--workers",
            "2",
            "--name",
            "job",
            CONCURRENT_REQUESTS=CONCURRENCY,
        )
        proc = subprocess.Popen(
            command,
            env=clean_env(full_env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert wait_until(lambda: len(frontier(db_url, 1).get("page/done", ())) >= 10, 90, 0.1)
        server.stop()
        _, err = proc.communicate(timeout=90)
        assert proc.returncode == 3, err[-3000:]
        assert "Redis" in err.splitlines()[-1]
        fetched_before = set(site.fetched())
        recorded = frontier(db_url, 1)
        assert recorded.get("page/done") and recorded["page/done"] < site.page_urls()
        server.start()
        result = crawl(site, tmp_path, full_env, "--resume", "job", "--workers", "2")
        assert result.returncode == 0, result.stderr[-3000:]
        got = frontier(db_url, 1)
        assert got.get("page/done") == site.page_urls(), {k: len(v) for k, v in got.items()}
        assert fetched_before <= set(site.fetched())
    finally:
        server.stop()
        site.stop()


def test_shared_budget_counts_every_worker(redis_url: str) -> None:
    """C-01 across workers: two workers' takes count against one budget."""
    from crawler.engine.middlewares.shared_budget import SharedBudget
    from crawler.net.urls import Budget

    client = redis.Redis.from_url(redis_url)
    workers = [SharedBudget(client, "td:test:1:", Budget(5, 4)) for _ in range(2)]
    urls = ["http://a.test/x/y/1", "http://a.test/x/y/2"]
    urls += [f"http://a.test/p{i}" for i in range(4)]
    results = [workers[i % 2].try_take(url) for i, url in enumerate(urls)]
    # per prefix (two path segments) 4 // 4 = 1 page; per host 4; per crawl 5
    assert results == [None, "budget/prefix", None, None, None, "budget/host"]
    assert [workers[1].try_take(f"http://b.test/{i}") for i in range(2)] == [None, "budget/pages"]
