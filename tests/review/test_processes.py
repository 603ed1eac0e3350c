"""Several app processes (`takedown review serve --workers N`) act as one app.

Each child process builds its own app and engine on the test's database, as a gunicorn
worker does; nothing is shared but the database (and, on SQLite, its writer lock file).
"""

from __future__ import annotations

import multiprocessing
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from crawler.db.audit import verify_chain
from crawler.db.models import AuditEvent, LoginFailure, ReviewItem
from crawler.db.session import Database
from tests.support.review import PASSWORD, login, make_app, review_serve, seed_item

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
VERSION = re.compile(r'name="version" value="(\d+)"')


def _in_processes(target: Any, jobs: list[tuple[Any, ...]]) -> list[Any]:
    """Run `target(*job)` for each job in its own spawned process; their results in order."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        return pool.starmap(target, jobs, chunksize=1)


# --- login throttle -------------------------------------------------------------------


def _fail_logins(db_url: str, username: str, attempts: int, at: datetime) -> list[int]:
    client = make_app(db_url, clock=lambda: at).test_client()
    data = {"username": username, "password": "wrong password"}
    return [client.post("/login", data=data).status_code for _ in range(attempts)]


def _good_login(db_url: str, username: str, at: datetime) -> tuple[int, str | None]:
    client = make_app(db_url, clock=lambda: at).test_client()
    resp = client.post("/login", data={"username": username, "password": PASSWORD})
    return resp.status_code, resp.headers.get("Retry-After")


def test_login_throttle_holds_across_processes(db: Database, users: dict[str, int]) -> None:
    """Failures counted in one process delay the next attempt in another (A-09)."""
    (codes,) = _in_processes(_fail_logins, [(db.url, "ana", 3, NOW)])
    assert codes == [401] * 3  # the third failure starts a 1 s wait, doubling from there
    ((status, retry_after),) = _in_processes(_good_login, [(db.url, "ANA", NOW)])
    assert (status, retry_after) == (429, "1")
    later = NOW + timedelta(seconds=1)
    assert _in_processes(_good_login, [(db.url, "ana", later)]) == [(302, None)]
    with db.read_session() as s:
        failures = dict(s.execute(select(LoginFailure.kind, LoginFailure.failures)).all())
    assert failures == {"address": 3}  # the good login forgot the account's failures


# --- claims ---------------------------------------------------------------------------


def _claim_until_empty(db_url: str, username: str) -> list[int]:
    """Next item, open it, reject it; until the queue is empty. Returns the claimed ids."""
    client = make_app(db_url).test_client()
    csrf = login(client, username)
    claimed: list[int] = []
    while True:
        resp = client.post("/queue/next", data={"csrf_token": csrf})
        location = resp.headers["Location"]
        if "/items/" not in location:
            assert "msg=empty" in location
            return claimed
        item = int(location.rsplit("/", 1)[1])
        claimed.append(item)
        match = VERSION.search(client.get(f"/items/{item}").get_data(as_text=True))
        assert match
        form = {"csrf_token": csrf, "version": match.group(1), "action": "reject"}
        assert client.post(f"/items/{item}/decision", data=form).status_code == 302


def test_claimers_in_several_processes_never_share_an_item(
    db: Database, users: dict[str, int]
) -> None:
    """S-07 across processes: every item is claimed exactly once; the audit chain holds."""
    items = {seed_item(db, priority=i % 5) for i in range(36)}
    results = _in_processes(_claim_until_empty, [(db.url, n) for n in ("ana", "bob", "lee")])
    claimed = [item for got in results for item in got]
    assert {k: v for k, v in Counter(claimed).items() if v > 1} == {}
    assert set(claimed) == items
    with db.read_session() as s:
        left = s.execute(select(func.count()).where(ReviewItem.status == "pending")).scalar()
        claims = s.execute(
            select(func.count()).where(AuditEvent.action == "item.claim")
        ).scalar_one()
        report = verify_chain(s)
    assert left == 0 and claims == len(items)
    assert report.ok, report


# --- preview rate limit -----------------------------------------------------------------


def _take_tokens(db_url: str, hits: int, at: datetime) -> int:
    from review.ratelimit import RateLimiter

    db, limiter = Database(db_url), RateLimiter(5, 60.0)
    try:
        allowed = 0
        for _ in range(hits):
            with db.session() as s:
                allowed += limiter.allow(s, "preview:1", at)
        return allowed
    finally:
        db.dispose()


def test_preview_limit_is_one_bucket_for_every_process(db: Database) -> None:
    """Five a minute per user: two processes together get five, then one per 12 s."""
    both = _in_processes(_take_tokens, [(db.url, 4, NOW), (db.url, 4, NOW)])
    assert sum(both) == 5
    assert _take_tokens(db.url, 2, NOW + timedelta(seconds=12)) == 1


# --- the real server ------------------------------------------------------------------


def test_serve_runs_two_workers_that_sign_in_and_serve(
    db: Database, users: dict[str, int], tmp_path: Any
) -> None:
    """`takedown review serve --workers 2`: a master and two workers answer on the port."""
    import http.client
    import time
    from pathlib import Path
    from urllib.parse import urlencode

    secret = "serve-test-secret-key-0123"
    with review_serve(db.url, tmp_path, secret, workers=2) as (server, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = urlencode({"username": "ana", "password": PASSWORD})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        conn.request("POST", "/login", body, headers)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 302 and "td_session=" in (resp.getheader("Set-Cookie") or "")
        # gunicorn forks its workers one after the other: the first may answer before the
        # second exists, so wait for both (a single worker never passes).
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
        deadline = time.monotonic() + 30
        while len(children.read_text().split()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(children.read_text().split()) == 2
