"""docs/hazards.md S-11 (schema moves under a running crawl) and S-12 (failing writes): the crawl
stops with a reason before fetching much more, keeps what it recorded, and says why; with
the writers in their own process (the default) and on a thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support.sitekit import policy_text, run_crawl, tree_web

TOTAL_PAGES = 1 + 6 + 36 + 216  # the tree site, branching 6, depth 3
ROWS_BEFORE_FULL = 10

SQLITE_FULL = f"""
CREATE TRIGGER s12_full BEFORE INSERT ON pages
WHEN (SELECT count(*) FROM pages) >= {ROWS_BEFORE_FULL}
BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END
"""
PG_FULL = [
    f"""
    CREATE FUNCTION s12_full() RETURNS trigger AS $$
    BEGIN
      IF (SELECT count(*) FROM pages) >= {ROWS_BEFORE_FULL} THEN
        RAISE EXCEPTION 'could not extend file: No space left on device'
          USING ERRCODE = 'disk_full';
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER s12_full BEFORE INSERT ON pages FOR EACH ROW EXECUTE FUNCTION s12_full()",
]


def _execute(db_url: str, *statements: str) -> None:
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _scalar(db_url: str, query: str) -> Any:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        value = conn.execute(text(query)).scalar()
    engine.dispose()
    return value


def _page_hits(web: Any) -> int:
    return sum(1 for path in web.paths("site-a.test") if path == "/" or path.startswith("/n/"))


@pytest.mark.parametrize("writer_process", ["true", "false"])
def test_s12_failing_writes_stop_the_crawl_and_keep_what_was_recorded(
    env: dict[str, str], db_url: str, tmp_path: Path, writer_process: str
) -> None:
    if db_url.startswith("sqlite"):
        _execute(db_url, SQLITE_FULL)
    else:
        _execute(db_url, *PG_FULL)
    web = tree_web(6, 0.02).start()
    try:
        result = run_crawl(
            env,
            tmp_path,
            web,
            web.url("site-a.test"),
            policy=policy_text(web, scope={"max_depth": 3}),
            extra_settings={"TAKEDOWN_WRITER_PROCESS": writer_process},
            timeout=120,
        )
    finally:
        web.stop()
    assert result.returncode != 0, result.stderr[-2000:]
    assert "store-failed" in result.stderr
    reason = _scalar(db_url, "SELECT finish_reason FROM crawl_runs")
    assert "store-failed" in reason
    assert _scalar(db_url, "SELECT count(*) FROM pages") == ROWS_BEFORE_FULL  # nothing lost
    fetched = _page_hits(web)
    assert fetched < TOTAL_PAGES / 2, f"{fetched} pages fetched after the writes failed"


@pytest.mark.parametrize("writer_process", ["true", "false"])
def test_s11_schema_bumped_mid_run_stops_the_crawl_cleanly(
    env: dict[str, str], db_url: str, tmp_path: Path, writer_process: str
) -> None:
    web = tree_web(6, 0.05).start()
    outcome: dict[str, Any] = {}

    def crawl() -> None:
        outcome["result"] = run_crawl(
            env,
            tmp_path,
            web,
            web.url("site-a.test"),
            policy=policy_text(web, scope={"max_depth": 3}, politeness={"per_host_concurrency": 2}),
            extra_settings={"TAKEDOWN_WRITER_PROCESS": writer_process},
            timeout=120,
        )

    runner = threading.Thread(target=crawl)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _scalar_or_zero(db_url):
            time.sleep(0.1)
        assert _scalar_or_zero(db_url), "the crawl stored nothing"
        _execute(db_url, "UPDATE alembic_version SET version_num = 'f00dfeed0000'")
        runner.join(120)
    finally:
        web.stop()
    result = outcome["result"]
    assert result.returncode != 0, result.stderr[-2000:]
    assert "schema" in result.stderr
    reason = _scalar(db_url, "SELECT finish_reason FROM crawl_runs")
    assert "schema-changed" in reason
    assert _page_hits(web) < TOTAL_PAGES / 2  # stopped, not finished
    stored = _scalar(db_url, "SELECT count(*) FROM pages")
    done = _scalar(db_url, "SELECT count(*) FROM frontier WHERE kind='page' AND state='done'")
    assert stored >= done > 0  # every page the frontier calls done is in the database


def _scalar_or_zero(db_url: str) -> int:
    try:
        return int(_scalar(db_url, "SELECT count(*) FROM pages") or 0)
    except Exception:  # noqa: BLE001 - the table may be locked for a moment
        return 0
