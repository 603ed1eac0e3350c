"""Rechecks: revisit confirmed pages through the crawl policy and record their removal.

The service behind `takedown recheck`. One recheck is one crawl run with
``kind = "recheck"``: the confirmed items' page URLs are its seeds, the operator's policy
is applied unchanged except ``scope.max_depth = 0`` (a recheck fetches each page and the
media it embeds, never a link), and the same scope gate, address checks, robots rules
and store pipeline as any crawl judge and record every request (docs/hazards.md C-07). Scrapy
runs in this process, so a process runs one recheck (the CLI and the scheduler start
`python -m crawler recheck` as its own process).

Per item (docs/hazards.md O-06: a 5xx, a timeout, a DNS failure or a block never removes):

- **removed** when the page answers 404 or 410; or when it answers 2xx, was parsed
  whole, every media fetch on it completed, and none of the media it serves now has an
  active match in a known list (exact or PDQ, as the matcher records them while the
  recheck stores the media; a media also in a benign list does not count, as in
  `crawler.matching.candidates`). A media answering 404 or 410 counts as gone.
- **unknown** when the page was refused by the policy, failed (timeout, DNS, refused
  connection), answered anything else (5xx, 403, 429...), was parsed only in part, or a
  media on it was refused, failed, or could not be hashed whole.
- **still up** otherwise: the page serves media matching a known list.

Every rechecked item gets `last_checked_at`; removed ones go through
`crawler.notices.build.mark_removed` with the time of the recheck, so time to removal is
``removed_at - page.first_seen``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from crawler.config import Settings
from crawler.db.models import (
    FrontierEntry,
    HashEntry,
    HashList,
    Match,
    Observation,
    Page,
    ReviewItem,
)
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.engine.frontier import fingerprint
from crawler.engine.lifecycle import close_run, failure_of, open_run, refuse_proxies
from crawler.engine.runner import CrawlRequest, run_scrapy, scrapy_settings
from crawler.engine.seeds import seed_refusals
from crawler.engine.storage import page_key
from crawler.errors import UsageError
from crawler.items import MediaItem, PageItem
from crawler.matching.match_state import ACTIVE, active_clause, match_states
from crawler.notices.build import mark_removed
from crawler.policy import CrawlPolicy

logger = logging.getLogger(__name__)

MODES = ("all", "due")
GONE = (404, 410)
REMOVED, STILL_UP, UNKNOWN = "removed", "still up", "unknown"


@dataclass(frozen=True)
class Target:
    item_id: int
    url: str


@dataclass(frozen=True)
class Verdict:
    item_id: int
    url: str
    outcome: str  # removed | still up | unknown
    reason: str  # short and shared, so the summary can count by it
    detail: str = ""  # e.g. the media URL the reason is about


@dataclass
class RecheckResult:
    run_id: int | None
    verdicts: list[Verdict]
    checked_at: datetime
    crawl_problem: str | None = None
    closed_notices: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for v in self.verdicts if v.outcome == outcome)


# --- which items ---------------------------------------------------------------------------


def select_targets(session: Session, mode: str, now: datetime, renotice_hours: int) -> list[Target]:
    """Confirmed, not yet removed items; with ``due`` only those never checked or last
    checked `renotice_hours` ago or more (the re-notice rhythm: check before re-sending)."""
    if mode not in MODES:
        raise UsageError(f"recheck mode {mode!r}: give --all or --due")
    query = (
        select(ReviewItem.id, Page.url)
        .join(Page, Page.id == ReviewItem.page_id)
        .where(ReviewItem.status == "confirmed", ReviewItem.removed_at.is_(None))
    )
    if mode == "due":
        cutoff = now - timedelta(hours=renotice_hours)
        query = query.where(
            or_(ReviewItem.last_checked_at.is_(None), ReviewItem.last_checked_at <= cutoff)
        )
    return [Target(i, u) for i, u in session.execute(query.order_by(ReviewItem.id))]


def recheck_policy(policy: CrawlPolicy) -> CrawlPolicy:
    """The operator's policy with depth 0: the page and its media, never a link."""
    return replace(policy, scope=replace(policy.scope, max_depth=0))


# --- what the crawl saw --------------------------------------------------------------------


@dataclass(frozen=True)
class PageSeen:
    status: int | None
    error: str | None
    parse_incomplete: bool
    media_urls: tuple[str, ...]
    fetched_at: datetime | None


@dataclass(frozen=True)
class MediaSeen:
    status: int | None
    skipped: str | None
    error: str | None


@dataclass
class Collector:
    """Listens to `item_scraped` (after the store pipeline): the pages and media this run
    saw. Needed because the frontier fetches a media URL once per run, so a page sharing
    an image with another page has no sighting of its own; and because a page's media
    list is not stored."""

    pages: dict[str, PageSeen] = field(default_factory=dict)
    media: dict[str, MediaSeen] = field(default_factory=dict)
    data_media: dict[str, list[str]] = field(default_factory=dict)

    def item_scraped(self, item: Any, response: Any = None, spider: Any = None) -> None:
        if isinstance(item, PageItem):
            self.pages[page_key(item.url)] = PageSeen(
                item.status,
                item.error,
                item.parse_incomplete,
                tuple(item.media_urls),
                item.fetched_at,
            )
        elif isinstance(item, MediaItem):
            self.media[item.media_url] = MediaSeen(item.status, item.skipped, item.error)
            if item.media_url.startswith("data:"):
                self.data_media.setdefault(page_key(item.page_url), []).append(item.media_url)


# --- the verdicts --------------------------------------------------------------------------


def known_matched(session: Session, media_ids: set[int]) -> set[int]:
    """The media among *media_ids* with an active, unsuppressed known match."""
    if not media_ids:
        return set()
    query = (
        select(Match.media_id, HashList.kind, active_clause(Match, HashEntry, HashList))
        .join(HashEntry, HashEntry.id == Match.entry_id)
        .join(HashList, HashList.id == Match.list_id)
        .where(Match.media_id.in_(media_ids))
    )
    by_media: dict[int, list[tuple[str, Any]]] = {}
    for media_id, kind, active in session.execute(query):
        by_media.setdefault(media_id, []).append((kind, active))
    return {m for m, rows in by_media.items() if ACTIVE in match_states(rows)}


def media_ids_of(session: Session, run_id: int, urls: list[str]) -> dict[str, int | None]:
    """Media URL -> the media this run hashed there (None: nothing hashed whole)."""
    query = select(Observation.media_url, Observation.media_id, Observation.status).where(
        Observation.run_id == run_id, Observation.media_url.in_(urls)
    )
    found: dict[str, int | None] = dict.fromkeys(urls)
    for url, media_id, status in session.execute(query):
        # A failed fetch keeps the last known media_id (storage): only fresh hashes count.
        if status != "error" and media_id is not None:
            found[url] = media_id
    return found


def media_problem(seen: MediaSeen | None, media_id: int | None) -> str | None:
    """Why a media leaves the page's state unknown, or None when its content is known
    (or it is gone)."""
    if seen is None:
        return "media not fetched"
    if seen.status in GONE:
        return None
    if seen.skipped or seen.error:
        return f"media {seen.skipped or seen.error}"[:200]
    if media_id is None:
        return "media not hashed whole"
    return None


def page_verdict(
    target: Target,
    page: PageSeen,
    media: Mapping[str, MediaSeen],
    ids: Mapping[str, int | None],
    matched: set[int],
) -> Verdict:
    def verdict(outcome: str, reason: str, detail: str = "") -> Verdict:
        return Verdict(target.item_id, target.url, outcome, reason, detail)

    if page.status in GONE:
        return verdict(REMOVED, f"HTTP {page.status}")
    if page.status is None:
        return verdict(UNKNOWN, page.error or "no response")
    if not 200 <= page.status < 300:
        return verdict(UNKNOWN, f"HTTP {page.status}")
    if page.parse_incomplete:
        return verdict(UNKNOWN, "page parsed only in part")
    for url in ids:
        problem = media_problem(media.get(url), ids[url])
        if problem:
            return verdict(UNKNOWN, problem, url)
    if any(media_id in matched for media_id in ids.values()):
        return verdict(STILL_UP, "serves media matching a known list")
    return verdict(REMOVED, "no media matching a known list served any more")


def frontier_reasons(session: Session, run_id: int) -> dict[str, str]:
    query = select(FrontierEntry.fingerprint, FrontierEntry.state, FrontierEntry.reason).where(
        FrontierEntry.run_id == run_id, FrontierEntry.kind == "page"
    )
    rows = session.execute(query)
    return {fp: f"{state}: {reason or 'no reason recorded'}" for fp, state, reason in rows}


def judge(
    session: Session, run_id: int, targets: list[Target], collector: Collector
) -> list[Verdict]:
    reasons = frontier_reasons(session, run_id)
    verdicts = []
    for target in targets:
        page = collector.pages.get(page_key(target.url))
        if page is None:
            why = reasons.get(fingerprint(target.url), "not fetched")
            verdicts.append(Verdict(target.item_id, target.url, UNKNOWN, f"page {why}"))
            continue
        urls = list(page.media_urls) + collector.data_media.get(page_key(target.url), [])
        ids = media_ids_of(session, run_id, urls) if urls else {}
        matched = known_matched(session, {i for i in ids.values() if i is not None})
        verdicts.append(page_verdict(target, page, collector.media, ids, matched))
    return verdicts


# --- the whole recheck -------------------------------------------------------------------


def record_verdicts(db: Database, result: RecheckResult) -> None:
    """`last_checked_at` on every rechecked item; `mark_removed` on the removed ones."""
    when = result.checked_at
    ids = [v.item_id for v in result.verdicts]
    with db.session() as session:
        if ids:
            session.execute(
                update(ReviewItem).where(ReviewItem.id.in_(ids)).values(last_checked_at=when)
            )
        for v in result.verdicts:
            if v.outcome == REMOVED:
                result.closed_notices += mark_removed(session, v.item_id, when).closed


def crawl(
    cfg: Settings, db: Database, policy: CrawlPolicy, seeds: list[str], req: CrawlRequest
) -> tuple[int, Collector, str | None]:
    # A recheck run records no software version (as it always has; crawl runs do).
    run_id = open_run(db, policy, seeds, kind="recheck", name="recheck")
    collector = Collector()
    started = utcnow()
    settings = scrapy_settings(cfg, req, run_id, policy, seeds, [])
    reason, stats = run_scrapy(settings, collector.item_scraped)
    outcome = close_run(db, run_id, reason, stats, started)
    return run_id, collector, failure_of(outcome)


def recheck(
    cfg: Settings,
    db: Database,
    mode: str,
    policy: CrawlPolicy,
    env: Mapping[str, str],
    overrides: dict[str, str] | None = None,
    progress: str = "log",
) -> RecheckResult:
    """Recheck the items of *mode* (``all`` or ``due``) and record what was found."""
    overrides = overrides or {}
    refuse_proxies(env, overrides)
    policy = recheck_policy(policy)
    with db.read_session() as session:
        targets = select_targets(session, mode, utcnow(), cfg.renotice_hours)
    verdicts, fetch = [], []
    refused = {url: why for url, _rule, why in seed_refusals([t.url for t in targets], policy)}
    for t in targets:
        reason = refused.get(t.url)
        if reason is None:
            fetch.append(t)
        else:
            verdicts.append(Verdict(t.item_id, t.url, UNKNOWN, f"refused by policy: {reason}"))
    run_id, problem = None, None
    if fetch:
        seeds = list(dict.fromkeys(t.url for t in fetch))
        req = CrawlRequest(seeds, policy, "recheck", overrides=overrides, progress=progress)
        run_id, collector, problem = crawl(cfg, db, policy, seeds, req)
        with db.read_session() as session:
            verdicts += judge(session, run_id, fetch, collector)
    result = RecheckResult(run_id, sorted(verdicts, key=lambda v: v.item_id), utcnow(), problem)
    record_verdicts(db, result)
    return result


def reason_counts(result: RecheckResult, outcome: str) -> list[tuple[str, int]]:
    return Counter(v.reason for v in result.verdicts if v.outcome == outcome).most_common()
