"""The leads' overview: figures read straight from the database, charts drawn as SVG.

Every figure is a count or a duration the tests recompute from the tables themselves.
Aggregates that group by day are done here over a bounded window (the last `DAYS` days)
so SQLite and PostgreSQL give the same answer without engine-specific date functions.
Charts are plain SVG markup built from numbers only (no crawled text), with a text
table beside each for screen readers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.db.models import (
    ITEM_STATUSES,
    NOTICE_STATUSES,
    Decision,
    ExposureDay,
    Notice,
    NoticeUrl,
    ReviewItem,
    User,
)
from crawler.matching.decided import ANALYST, BY_DECISION, BY_LIST, how_decided_sql

DAYS = 7
AGE_BUCKETS = (
    ("under 1 hour", timedelta(hours=1)),
    ("1–24 hours", timedelta(days=1)),
    ("1–7 days", timedelta(days=7)),
    ("over 7 days", None),
)
OPEN = ("pending", "escalated")
DECIDED = ("confirmed", "rejected", "removed")


@dataclass
class Figures:
    days: list[str]
    by_status: dict[str, int]
    open_by_age: dict[str, dict[str, int]]  # status -> bucket -> count
    decisions: dict[str, dict[str, int]]  # analyst -> day -> decisions
    auto_decided: int  # without a person: auto_by_list + auto_by_decision
    analyst_decided: int
    reveals: dict[str, int]  # day -> reveals (all analysts)
    views: dict[str, int]  # day -> item views
    notices_by_state: dict[str, int]
    removal_hours: list[float] = field(default_factory=list)
    auto_by_list: int = 0  # decided_via list:NAME (a trusted list)
    auto_by_decision: int = 0  # decided_via media:ITEM_ID (an earlier decision)

    @property
    def reveals_avoided(self) -> int:
        """Item views that ended without a reveal, in the window."""
        return max(0, sum(self.views.values()) - sum(self.reveals.values()))

    def removal_summary(self) -> dict[str, float | int | None]:
        hours = sorted(self.removal_hours)
        if not hours:
            return {"count": 0, "median": None, "p90": None}
        mid = len(hours) // 2
        median = hours[mid] if len(hours) % 2 else (hours[mid - 1] + hours[mid]) / 2
        p90 = hours[min(len(hours) - 1, int(round(0.9 * (len(hours) - 1))))]
        return {"count": len(hours), "median": round(median, 1), "p90": round(p90, 1)}


def _bucket(age: timedelta) -> str:
    for label, limit in AGE_BUCKETS:
        if limit is None or age < limit:
            return label
    return AGE_BUCKETS[-1][0]


def _as_naive(value: datetime, ref: datetime) -> datetime:
    # UTCDateTime returns aware values; a test clock may be naive or aware.
    if (value.tzinfo is None) != (ref.tzinfo is None):
        return value.replace(tzinfo=ref.tzinfo)
    return value


def collect(session: Session, now: datetime) -> Figures:
    days = [(now - timedelta(days=n)).strftime("%Y-%m-%d") for n in range(DAYS - 1, -1, -1)]
    since = now - timedelta(days=DAYS - 1)
    since = since.replace(hour=0, minute=0, second=0, microsecond=0)

    by_status = dict.fromkeys(ITEM_STATUSES, 0)
    for status, count in session.execute(
        select(ReviewItem.status, func.count()).group_by(ReviewItem.status)
    ):
        by_status[status] = count

    open_by_age = {s: {label: 0 for label, _ in AGE_BUCKETS} for s in OPEN}
    for status, created in session.execute(
        select(ReviewItem.status, ReviewItem.created_at).where(ReviewItem.status.in_(OPEN))
    ):
        open_by_age[status][_bucket(now - _as_naive(created, now))] += 1

    names = dict(session.execute(select(User.id, User.username)).all())
    decisions: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(days, 0))
    for user_id, created in session.execute(
        select(Decision.user_id, Decision.created_at).where(Decision.created_at >= since)
    ):
        day = _as_naive(created, now).strftime("%Y-%m-%d")
        if day in days:
            decisions[names.get(user_id, f"user {user_id}")][day] += 1

    # How each decided item was settled, from decided_via (crawler/matching/decided.py).
    how = how_decided_sql()
    decided: Counter[str] = Counter()
    for kind, count in session.execute(
        select(how, func.count())
        .where(ReviewItem.status.in_(DECIDED), ReviewItem.decided_at.is_not(None))
        .group_by(how)
    ):
        decided[kind] += int(count)

    reveals = dict.fromkeys(days, 0)
    views = dict.fromkeys(days, 0)
    for day, r, v in session.execute(
        select(ExposureDay.day, func.sum(ExposureDay.reveals), func.sum(ExposureDay.views))
        .where(ExposureDay.day.in_(days))
        .group_by(ExposureDay.day)
    ):
        reveals[day], views[day] = int(r or 0), int(v or 0)

    notices = dict.fromkeys(NOTICE_STATUSES, 0)
    for status, count in session.execute(
        select(Notice.status, func.count()).group_by(Notice.status)
    ):
        notices[status] = count

    hours = []
    for removed, sent in session.execute(
        select(NoticeUrl.removed_at, Notice.sent_at)
        .join(Notice, Notice.id == NoticeUrl.notice_id)
        .where(NoticeUrl.removed_at.is_not(None), Notice.sent_at.is_not(None))
    ):
        if removed is not None and sent is not None and removed >= sent:
            hours.append((_as_naive(removed, now) - _as_naive(sent, now)).total_seconds() / 3600)

    return Figures(
        days=days,
        by_status=by_status,
        open_by_age=open_by_age,
        decisions=dict(sorted(decisions.items())),
        auto_decided=decided[BY_LIST] + decided[BY_DECISION],
        analyst_decided=decided[ANALYST],
        reveals=reveals,
        views=views,
        notices_by_state=notices,
        removal_hours=hours,
        auto_by_list=decided[BY_LIST],
        auto_by_decision=decided[BY_DECISION],
    )


# --- SVG ------------------------------------------------------------------------------


def _esc(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    )


def bar_chart(title: str, bars: list[tuple[str, int]], width: int = 420) -> Markup:
    """Horizontal bars with their labels and values; `role="img"` with a title."""
    row_h, label_w, value_w = 22, 130, 44
    height = row_h * max(1, len(bars)) + 8
    peak = max([v for _, v in bars] + [1])
    span = width - label_w - value_w
    parts = [
        f'<svg class="chart" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_esc(title)}</title>",
    ]
    for i, (label, value) in enumerate(bars):
        y = 4 + i * row_h
        w = round(span * value / peak) if value else 0
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="chart-label">'
            f"{_esc(label)}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 8}" rx="2"'
            f' class="chart-bar"/>'
            f'<text x="{label_w + w + 6}" y="{y + 15}" class="chart-value">{int(value)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label escaped, values are ints


def charts(d: Figures) -> dict[str, Markup]:
    open_total = {label: sum(d.open_by_age[s][label] for s in OPEN) for label, _ in AGE_BUCKETS}
    per_day = {day: sum(v[day] for v in d.decisions.values()) for day in d.days}
    return {
        "status": bar_chart("Items by status", list(d.by_status.items())),
        "age": bar_chart("Open items by age", list(open_total.items())),
        "decisions": bar_chart("Decisions per day", [(k[5:], v) for k, v in per_day.items()]),
        "auto": bar_chart(
            "Automatic versus analyst decisions",
            [
                ("trusted list", d.auto_by_list),
                ("earlier decision", d.auto_by_decision),
                ("analyst", d.analyst_decided),
            ],
        ),
        "reveals": bar_chart("Reveals per day", [(k[5:], v) for k, v in d.reveals.items()]),
        "notices": bar_chart("Notices by state", list(d.notices_by_state.items())),
    }
