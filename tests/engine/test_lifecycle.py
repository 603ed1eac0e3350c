"""The run lifecycle's egress check (C-08) holds on every path that starts crawl
processes: `takedown crawl`, `takedown recheck`, a scaled-out coordinator and `--join`
(both engines; a private Redis; worker processes replaced by a stand-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scrapy.settings import BaseSettings
from sqlalchemy import create_engine, text

from crawler.db.models import CrawlRun
from crawler.db.session import Database
from crawler.engine import workers
from crawler.engine.lifecycle import load_run, proxy_enforced, refuse_proxies
from crawler.errors import UsageError
from crawler.policy import CrawlPolicy
from crawler.scaleout.redis_frontier import JobStore, connect

PROXY = {"HTTPS_PROXY": "http://127.0.0.1:9/"}


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Worker processes replaced: each start is recorded, and each 'finishes' at once."""
    calls: list[int] = []

    def spawn(cfg: Any, run_id: int, *args: Any) -> list[workers.WorkerResult]:
        calls.append(run_id)
        return [workers.WorkerResult("stand-in", 0, "finished", {})]

    monkeypatch.setattr(workers, "spawn_workers", spawn)
    return calls


def _runs(db_url: str) -> list[tuple[str, str]]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, finish_reason FROM crawl_runs ORDER BY id"))
        out = [(str(s), str(r)) for s, r in rows]
    engine.dispose()
    return out


def _policy(tmp: Path) -> str:
    path = tmp / "policy.toml"
    path.write_text("")
    return str(path)


@pytest.mark.parametrize("value", ["1", "true", "True", "0", "false", "False"])
def test_the_declaration_is_read_as_the_crawl_process_reads_it(value: str) -> None:
    # The crawl processes (TakedownAddon, the scope gate) read it with Scrapy's getbool.
    assert proxy_enforced({"TAKEDOWN_EGRESS_PROXY_ENFORCED": value}) is BaseSettings(
        {"TAKEDOWN_EGRESS_PROXY_ENFORCED": value}
    ).getbool("TAKEDOWN_EGRESS_PROXY_ENFORCED")


@pytest.mark.parametrize("value", ["TRUE", "no", "off", ""])
def test_a_declaration_scrapy_cannot_read_exits_2_before_anything_starts(value: str) -> None:
    """Every crawl process would fail on it at start-up; refuse it first, naming it."""
    overrides = {"TAKEDOWN_EGRESS_PROXY_ENFORCED": value}
    with pytest.raises(UsageError, match="TAKEDOWN_EGRESS_PROXY_ENFORCED"):
        refuse_proxies(PROXY, overrides)
    with pytest.raises(UsageError, match="TAKEDOWN_EGRESS_PROXY_ENFORCED"):
        refuse_proxies({}, overrides)


@pytest.mark.parametrize("value", [None, "0", "false", "False"])
def test_a_proxy_without_a_declaration_is_refused(value: str | None) -> None:
    overrides = {} if value is None else {"TAKEDOWN_EGRESS_PROXY_ENFORCED": value}
    with pytest.raises(UsageError, match="HTTPS_PROXY"):
        refuse_proxies(PROXY, overrides)
    refuse_proxies({"HTTPS_PROXY": " "}, overrides)  # empty: no proxy


def test_join_refuses_a_proxy_before_any_worker_starts(
    env: dict[str, str],
    db: Database,
    db_url: str,
    redis_url: str,
    started: list[int],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with db.session() as session:  # a running scaled-out job another machine started
        run = CrawlRun(name="job", policy_text=CrawlPolicy().to_toml())
        session.add(run)
        session.flush()
        run_id = run.id
    store = JobStore(connect(redis_url), workers.job_key(load_run(db, str(run_id))), "c")
    store.create()
    monkeypatch.setenv("TAKEDOWN_REDIS_URL", redis_url)
    monkeypatch.setenv("HTTPS_PROXY", PROXY["HTTPS_PROXY"])
    code, _, err = cli("crawl", "--join", str(run_id), "--workers", "1")
    assert code == 2 and "HTTPS_PROXY" in err, err
    assert started == []  # no worker inherited the proxy
    assert store.exists() and _runs(db_url) == [("running", "None")]
    monkeypatch.delenv("HTTPS_PROXY")  # the same join without the proxy starts its workers
    code, _, err = cli("crawl", "--join", str(run_id), "--workers", "1")
    assert started == [run_id]
    assert _runs(db_url) == [("running", "None")]  # a joiner only reports; the coordinator finishes


def test_coordinator_honours_a_declaration_the_workers_honour(
    env: dict[str, str],
    db_url: str,
    redis_url: str,
    started: list[int],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("TAKEDOWN_REDIS_URL", redis_url)
    monkeypatch.setenv("HTTPS_PROXY", PROXY["HTTPS_PROXY"])
    args = ("crawl", "http://site-a.test/", "--workers", "1", "--policy", _policy(tmp_path))
    code, _, err = cli(*args)
    assert code == 2 and "HTTPS_PROXY" in err and started == [] and _runs(db_url) == []
    code, _, err = cli(*args, "-s", "TAKEDOWN_EGRESS_PROXY_ENFORCED=True")
    assert "HTTPS_PROXY" not in err and len(started) == 1
    # The stand-in fetched nothing: the run is opened, finished and failed like any (C-13).
    assert code == 1 and "no page was fetched" in err
    assert _runs(db_url) == [("failed", "no page was fetched (refusals: none)")]
