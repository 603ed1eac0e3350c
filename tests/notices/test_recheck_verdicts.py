"""The recheck's decisions without a network: the verdict table, due items, the CLI edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crawler.db.models import Page, ReviewItem
from crawler.db.session import Database
from crawler.notices.recheck import (
    MediaSeen,
    PageSeen,
    Target,
    page_verdict,
    recheck_policy,
    select_targets,
)
from crawler.policy import parse_policy
from tests.support.sitekit import refusal_of

T = Target(1, "http://site.test/p")
IMG = "http://site.test/i.jpg"
OK = MediaSeen(200, None, None)


def page(status: int | None, error: str | None = None, partial: bool = False) -> PageSeen:
    return PageSeen(status, error, partial, (IMG,), None)


@pytest.mark.parametrize(
    ("seen", "media", "media_id", "matched", "outcome", "reason"),
    [
        (page(404), None, None, set(), "removed", "HTTP 404"),
        (page(410), None, None, set(), "removed", "HTTP 410"),
        (page(503), OK, 7, {7}, "unknown", "HTTP 503"),
        (page(500), None, None, set(), "unknown", "HTTP 500"),
        (page(403), None, None, set(), "unknown", "HTTP 403"),
        (page(None, "timed out"), None, None, set(), "unknown", "timed out"),
        (page(None, "name not resolved: x"), None, None, set(), "unknown", "name not resolved"),
        (page(200, partial=True), OK, 8, set(), "unknown", "parsed only in part"),
        (page(200), OK, 7, {7}, "still up", "serves media"),
        (page(200), OK, 8, {7}, "removed", "no media matching"),
        (page(200), MediaSeen(404, None, "HTTP 404"), None, set(), "removed", "no media"),
        (page(200), MediaSeen(503, None, "HTTP 503"), 7, set(), "unknown", "media HTTP 503"),
        (page(200), MediaSeen(None, None, "timed out"), 7, set(), "unknown", "media timed out"),
        (page(200), MediaSeen(None, "policy: denied", None), 7, set(), "unknown", "policy"),
        (page(200), None, None, set(), "unknown", "media not fetched"),
        (page(200), OK, None, set(), "unknown", "not hashed whole"),
    ],
)
def test_verdict_table(
    seen: PageSeen,
    media: MediaSeen | None,
    media_id: int | None,
    matched: set[int],
    outcome: str,
    reason: str,
) -> None:
    media_map = {IMG: media} if media is not None else {}
    ids = {IMG: media_id} if seen.status == 200 else {}
    verdict = page_verdict(T, seen, media_map, ids, matched)
    assert (verdict.outcome, reason in verdict.reason) == (outcome, True), verdict


def test_recheck_policy_is_depth_zero_and_keeps_deny_lists() -> None:
    policy = recheck_policy(parse_policy('[scope]\nmax_depth = 5\ndeny_domains = ["bad.test"]\n'))
    assert policy.scope.max_depth == 0
    assert refusal_of("http://x.bad.test/a", policy) == "denied-domain"
    assert refusal_of("http://127.0.0.1/a", policy) is not None  # private address, not allowed
    assert refusal_of("http://good.test/a", policy) is None


def _item(db: Database, n: int, status: str, checked: datetime | None, removed: bool) -> int:
    with db.session() as s:
        p = Page(url=f"http://site.test/{n}", canonical_url=f"http://site.test/{n}")
        s.add(p)
        s.flush()
        removed_at = datetime(2026, 1, 1, tzinfo=UTC) if removed else None
        item = ReviewItem(page_id=p.id, status=status, last_checked_at=checked, removed_at=removed_at)  # fmt: skip
        s.add(item)
        s.flush()
        return item.id


def test_due_means_never_checked_or_checked_renotice_hours_ago(db: Database) -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    never = _item(db, 1, "confirmed", None, False)
    old = _item(db, 2, "confirmed", now - timedelta(hours=25), False)
    recent = _item(db, 3, "confirmed", now - timedelta(hours=2), False)
    _item(db, 4, "pending", None, False)
    _item(db, 5, "removed", None, True)
    _item(db, 6, "rejected", None, False)
    with db.read_session() as s:
        due = [t.item_id for t in select_targets(s, "due", now, 24)]
        every = [t.item_id for t in select_targets(s, "all", now, 24)]
    assert due == [never, old]
    assert every == [never, old, recent]


def test_cli_all_and_due_together_is_usage(cli: Any, env: dict[str, str]) -> None:
    code, _, err = cli("recheck", "--all", "--due")
    assert code == 2 and "--all or --due" in err


def test_cli_nothing_to_recheck(cli: Any, env: dict[str, str], db: Database) -> None:
    code, out, _ = cli("recheck", "--all")
    assert code == 0 and "0 items" in out and "no fetch" in out


def test_cli_bad_policy_is_usage(cli: Any, env: dict[str, str], db: Database, tmp_path: Any) -> None:  # fmt: skip
    bad = tmp_path / "p.toml"
    bad.write_text("[scope]\nnope = 1\n")
    code, _, err = cli("recheck", "--policy", str(bad))
    assert code == 2 and "nope" in err
