"""Statistics for a half-open UTC window [since, until): volumes, geography, providers.

Figures (every count is of things that *happened* inside the window):

- `pages_crawled`: pages fetched by crawl runs started in the window (`CrawlRun.pages`);
  `pages_new`: pages first seen in the window.
- `candidates`: review items created; `confirmed`: items confirmed (decided, now
  `confirmed` or `removed`); `removed`: items whose removal was recorded; `notices`:
  notices created; `notices_sent`: notices first sent.
- By country and by provider (ASN; the name is the alphabetically first AS
  organisation seen for it): the same counts, attributed to the page's host.
- Time to removal, over items removed in the window: first seen -> removed, and first
  notice sent -> removed, in hours. `median` is the usual median (mean of the two middle
  values for an even count); `p90` is the nearest-rank 90th percentile: the
  ceil(0.9 * n)-th smallest value. The league table ranks providers by median first-seen
  to removal time, fastest first.
- Trend: per UTC day, or per ISO week (Monday) when the span exceeds 92 days.
- Holds: notices held for law enforcement (route `hold`) at the window's end, or now when
  the window is open-ended, with how long each has waited (oldest first, at most 50).

Output is a plain dict (`build_report`) rendered to JSON or to one self-contained HTML
file (`render_html`): inline SVG, inline CSS, no scripts, no remote resources; every
string from crawled or RDAP data is escaped. The same data gives the same bytes.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from crawler.db.models import CrawlRun, Host, Notice, NoticeUrl, Page, ReviewItem
from crawler.errors import UsageError
from crawler.reporting.exports import iso

WEEKLY_AFTER_DAYS = 92


@dataclass(frozen=True)
class Window:
    since: datetime | None = None
    until: datetime | None = None

    def holds(self, when: datetime | None) -> bool:
        if when is None:
            return False
        return (self.since is None or when >= self.since) and (
            self.until is None or when < self.until
        )

    def where(self, column: Any) -> list[Any]:
        conds = [column.is_not(None)]
        if self.since is not None:
            conds.append(column >= self.since)
        if self.until is not None:
            conds.append(column < self.until)
        return conds


def parse_when(option: str, value: str | None) -> datetime | None:
    """`YYYY-MM-DD` (UTC midnight) or an ISO 8601 time (naive means UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{option} {value[:40]!r}: not a date (YYYY-MM-DD) or ISO time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def make_window(since: str | None, until: str | None) -> Window:
    window = Window(parse_when("--since", since), parse_when("--until", until))
    if window.since and window.until and window.since >= window.until:
        raise UsageError("--since must be before --until (the window is [since, until))")
    return window


# --- raw facts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemFacts:
    created_at: datetime
    decided_at: datetime | None
    status: str
    removed_at: datetime | None
    first_seen: datetime
    noticed_at: datetime | None  # first send of any notice listing the item
    country: str | None
    asn: int | None
    as_org: str | None

    @property
    def confirmed(self) -> bool:
        return self.status in ("confirmed", "removed") and self.decided_at is not None


def _first_sends(session: Session) -> dict[int, datetime]:
    rows = session.execute(
        select(NoticeUrl.item_id, func.min(Notice.sent_at))
        .join(Notice, Notice.id == NoticeUrl.notice_id)
        .where(Notice.sent_at.is_not(None))
        .group_by(NoticeUrl.item_id)
    )
    return {item_id: sent for item_id, sent in rows if sent is not None}


def _item_query(window: Window) -> Select[ReviewItem, datetime, str | None, int | None, str | None]:
    columns = (ReviewItem.created_at, ReviewItem.decided_at, ReviewItem.removed_at)
    touched = or_(*(and_(*window.where(col)) for col in columns))
    return (
        select(ReviewItem, Page.first_seen, Host.country, Host.asn, Host.as_org)
        .join(Page, Page.id == ReviewItem.page_id)
        .outerjoin(Host, Host.id == Page.host_id)
        .where(touched)
        .order_by(ReviewItem.id)
    )


def load_items(session: Session, window: Window) -> list[ItemFacts]:
    sends = _first_sends(session)
    out = []
    for item, first_seen, country, asn, as_org in session.execute(_item_query(window)):
        out.append(
            ItemFacts(
                item.created_at,
                item.decided_at,
                item.status,
                item.removed_at,
                first_seen,
                sends.get(item.id),
                country,
                asn,
                as_org,
            )
        )
    return out


def _count(session: Session, column: Any, window: Window) -> int:
    return int(session.execute(select(func.count()).where(*window.where(column))).scalar_one())


def _pages_crawled(session: Session, window: Window) -> int:
    query = select(func.coalesce(func.sum(CrawlRun.pages), 0)).where(
        CrawlRun.kind == "crawl", *window.where(CrawlRun.started_at)
    )
    return int(session.execute(query).scalar_one())


def _notice_times(session: Session, window: Window) -> tuple[list[datetime], list[datetime]]:
    created = session.execute(select(Notice.created_at).where(*window.where(Notice.created_at)))
    sent = session.execute(select(Notice.sent_at).where(*window.where(Notice.sent_at)))
    return [c for (c,) in created], [s for (s,) in sent if s is not None]


# --- figures -----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def p90(values: Sequence[float]) -> float | None:
    """Nearest rank: the ceil(0.9 n)-th smallest value."""
    if not values:
        return None
    return round(sorted(values)[math.ceil(0.9 * len(values)) - 1], 2)


def hours_between(start: datetime | None, end: datetime | None) -> float | None:
    """Hours from `start` to `end`; None when either is missing or `end` comes first."""
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 3600


def summary(values: list[float]) -> dict[str, Any]:
    """Count, median and p90 of a list of durations (both reports use this shape)."""
    return {"count": len(values), "median": median(values), "p90": p90(values)}


@dataclass
class _Tally:
    candidates: int = 0
    confirmed: int = 0
    removed: int = 0
    to_removal: list[float] = field(default_factory=list)
    notice_to_removal: list[float] = field(default_factory=list)
    names: set[str] = field(default_factory=set)

    def add(self, item: ItemFacts, window: Window) -> None:
        self.candidates += window.holds(item.created_at)
        self.confirmed += item.confirmed and window.holds(item.decided_at)
        if window.holds(item.removed_at):
            self.removed += 1
            for bucket, start in (
                (self.to_removal, item.first_seen),
                (self.notice_to_removal, item.noticed_at),
            ):
                hours = hours_between(start, item.removed_at)
                if hours is not None:
                    bucket.append(hours)
        if item.as_org:
            self.names.add(item.as_org)

    def counts(self) -> dict[str, int]:
        return {"candidates": self.candidates, "confirmed": self.confirmed, "removed": self.removed}


def _by_country(items: Iterable[ItemFacts], window: Window) -> list[dict[str, Any]]:
    tallies: dict[str | None, _Tally] = defaultdict(_Tally)
    for item in items:
        tallies[item.country].add(item, window)
    rows = [{"country": country, **t.counts()} for country, t in tallies.items()]
    return sorted(rows, key=lambda r: (-r["confirmed"], -r["candidates"], r["country"] or "~"))


def _by_provider(items: Iterable[ItemFacts], window: Window) -> list[dict[str, Any]]:
    tallies: dict[int | None, _Tally] = defaultdict(_Tally)
    for item in items:
        tallies[item.asn].add(item, window)
    rows = [
        {
            "asn": asn,
            "as_org": min(t.names) if t.names else None,
            **t.counts(),
            "hours_to_removal": summary(t.to_removal),
            "hours_notice_to_removal": summary(t.notice_to_removal),
        }
        for asn, t in tallies.items()
    ]
    return sorted(rows, key=lambda r: (-r["confirmed"], -r["candidates"], r["asn"] or 1 << 40))


def _league(providers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ranked = [p for p in providers if p["hours_to_removal"]["count"]]
    ranked.sort(
        key=lambda p: (
            p["hours_to_removal"]["median"],
            p["hours_to_removal"]["p90"],
            p["asn"] or 1 << 40,
        )
    )
    return [{"rank": i, **p} for i, p in enumerate(ranked, start=1)]


# --- trend -------------------------------------------------------------------------------


def _bucket_start(when: datetime, weekly: bool) -> date:
    day = when.astimezone(UTC).date()
    return day - timedelta(days=day.weekday()) if weekly else day


def _span(window: Window, stamps: list[datetime]) -> tuple[date, date] | None:
    if not stamps and (window.since is None or window.until is None):
        return None
    first = window.since or min(stamps)
    last = (window.until - timedelta(microseconds=1)) if window.until else max(stamps)
    return first.astimezone(UTC).date(), last.astimezone(UTC).date()


def _trend(items: list[ItemFacts], notices: list[datetime], window: Window) -> dict[str, Any]:
    series: dict[str, list[datetime]] = {
        "candidates": [i.created_at for i in items if window.holds(i.created_at)],
        "confirmed": [
            i.decided_at
            for i in items
            if i.confirmed and window.holds(i.decided_at) and i.decided_at
        ],
        "removed": [i.removed_at for i in items if window.holds(i.removed_at) and i.removed_at],
        "notices": notices,
    }
    span = _span(window, [t for values in series.values() for t in values])
    if span is None:
        return {"bucket": "day", "points": []}
    weekly = (span[1] - span[0]).days > WEEKLY_AFTER_DAYS
    starts = _bucket_starts(span, weekly)
    points = {s: dict.fromkeys(series, 0) for s in starts}
    for name, stamps in series.items():
        for stamp in stamps:
            points[_bucket_start(stamp, weekly)][name] += 1
    rows = [{"start": s.isoformat(), **points[s]} for s in starts]
    return {"bucket": "week" if weekly else "day", "points": rows}


def _bucket_starts(span: tuple[date, date], weekly: bool) -> list[date]:
    first = span[0] - timedelta(days=span[0].weekday()) if weekly else span[0]
    step = timedelta(days=7 if weekly else 1)
    out = []
    while first <= span[1]:
        out.append(first)
        first += step
    return out


def _holds(session: Session, window: Window) -> dict[str, Any]:
    """Notices held for law enforcement at the window's end (now when it is open-ended)."""
    at = window.until or datetime.now(UTC)
    rows = session.execute(
        select(Notice.serial, Notice.country, Notice.held_at)
        .where(
            Notice.held_at.is_not(None),
            Notice.held_at < at,
            or_(Notice.released_at.is_(None), Notice.released_at >= at),
            or_(Notice.closed_at.is_(None), Notice.closed_at >= at),
        )
        .order_by(Notice.held_at, Notice.id)
    ).all()
    held = [
        {
            "serial": s,
            "country": c,
            "held_at": iso(h),
            "hours": round(hours_between(h, at) or 0.0, 2),
        }
        for s, c, h in rows
    ]
    return {
        "at": iso(at),
        "count": len(held),
        "oldest_hours": held[0]["hours"] if held else None,
        "notices": held[:50],
    }


def build_report(session: Session, window: Window) -> dict[str, Any]:
    """Every figure of the report as plain JSON-ready data, in a stable order."""
    items = load_items(session, window)
    created, sent = _notice_times(session, window)
    providers = _by_provider(items, window)
    totals = {
        "pages_crawled": _pages_crawled(session, window),
        "pages_new": _count(session, Page.first_seen, window),
        "candidates": sum(window.holds(i.created_at) for i in items),
        "confirmed": sum(i.confirmed and window.holds(i.decided_at) for i in items),
        "removed": sum(window.holds(i.removed_at) for i in items),
        "notices": len(created),
        "notices_sent": len(sent),
    }
    return {
        "window": {"since": iso(window.since), "until": iso(window.until)},
        "totals": totals,
        "by_country": _by_country(items, window),
        "by_provider": providers,
        "league": _league(providers),
        "trend": _trend(items, created, window),
        "holds": _holds(session, window),
    }
