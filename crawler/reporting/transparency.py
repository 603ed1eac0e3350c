"""The yearly transparency report of a trusted flagger (DSA Article 22): notices of one year.

Scope: every notice *created* in the UTC calendar year, and every URL listed in those
notices (one URL row per notice). Each breakdown sums to those totals:

- by hosting provider (ASN and AS organisation, as frozen in the notice) and by hosting
  country: notices and URLs;
- by category and by decision, read from `decided_via` (crawler/matching/decided.py): `auto`
  (confirmed with no person), split in `auto_by` into `trusted_list` (`list:NAME`, an
  exact match on a trusted list) and `earlier_decision` (`media:ITEM_ID`, an analyst's
  earlier decision on the same media); `analyst`: a person decided): URLs;
- by route (host, hotline, hold): notices and URLs;
- outcome per URL, as of the report's generation: `removed` (with hours from the first
  send of its notice, or its creation when never sent, to removal: median and nearest-rank
  p90), `withdrawn` (after a dispute) or `still_up`;
- disputes of those URLs and their outcomes (upheld, withdrawn, pending);
- holds: notices held for law enforcement, released, still held, and hours held;
- urgent referrals to law enforcement: a count only (they are not notices to providers
  and are in none of the figures above).

No personal data: no user names, no reporter data, no e-mail addresses (an e-mail
address inside an AS name from RDAP is replaced).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.db.models import Notice, NoticeDispute, NoticeUrl, ReviewItem
from crawler.errors import UsageError
from crawler.matching.decided import BY_DECISION, BY_LIST, how_decided
from crawler.reporting.exports import iso
from crawler.reporting.reports import hours_between, summary

_EMAIL = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+")


def scrub(text: str | None) -> str | None:
    """RDAP text with any e-mail address in it replaced."""
    return _EMAIL.sub("[address removed]", text) if text else text


def year_window(year: int) -> tuple[datetime, datetime]:
    if not 2000 <= year <= 9998:
        raise UsageError(f"--year {year}: not a plausible year")
    return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Url:
    notice: Notice
    url: NoticeUrl
    how: str  # crawler.matching.decided: analyst, list or media


def _rows(counts: dict[Any, list[int]], key: str) -> list[dict[str, Any]]:
    rows = [{key: k, "notices": v[0], "urls": v[1]} for k, v in counts.items()]
    return sorted(rows, key=lambda r: (-r["urls"], -r["notices"], str(r[key])))


def build_transparency(session: Session, year: int, now: datetime) -> dict[str, Any]:
    since, until = year_window(year)
    notices = list(
        session.execute(
            select(Notice)
            .where(Notice.created_at >= since, Notice.created_at < until)
            .order_by(Notice.id)
        ).scalars()
    )
    urgent = [n for n in notices if n.kind == "urgent"]
    notices = [n for n in notices if n.kind != "urgent"]
    by_id = {n.id: n for n in notices}
    urls: list[_Url] = []
    if by_id:
        rows = session.execute(
            select(NoticeUrl, ReviewItem)
            .join(ReviewItem, ReviewItem.id == NoticeUrl.item_id)
            .join(Notice, Notice.id == NoticeUrl.notice_id)
            .where(Notice.created_at >= since, Notice.created_at < until)
            .order_by(NoticeUrl.id)
        )
        urls = [
            _Url(by_id[u.notice_id], u, how_decided(item.decided_via))
            for u, item in rows
            if u.notice_id in by_id
        ]
    per_notice = Counter(u.notice.id for u in urls)

    providers: dict[tuple[int | None, str | None], list[int]] = defaultdict(lambda: [0, 0])
    countries: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    routes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for n in notices:
        for table, key in (
            (providers, (n.asn, scrub(n.as_org))),
            (countries, n.country),
            (routes, n.route),
        ):
            table[key][0] += 1  # type: ignore[index]
            table[key][1] += per_notice[n.id]  # type: ignore[index]

    categories = Counter(u.url.category for u in urls)
    how = Counter(u.how for u in urls)
    auto = how[BY_LIST] + how[BY_DECISION]
    removed_hours: list[float] = []
    outcome: Counter[str] = Counter()
    for u in urls:
        if u.url.withdrawn_at is not None:
            outcome["withdrawn"] += 1
        elif u.url.removed_at is not None:
            outcome["removed"] += 1
            start = u.notice.sent_at or u.notice.created_at
            hours = hours_between(start, u.url.removed_at)
            if hours is not None:
                removed_hours.append(hours)
        else:
            outcome["still_up"] += 1

    disputes: Counter[str] = Counter()
    if by_id:
        rows2 = session.execute(
            select(NoticeDispute.outcome)
            .join(Notice, Notice.id == NoticeDispute.notice_id)
            .where(Notice.created_at >= since, Notice.created_at < until, Notice.kind != "urgent")
        )
        for (result,) in rows2:
            disputes[result or "pending"] += 1

    held = [n for n in notices if n.held_at is not None]
    held_hours = [
        h for n in held if (h := hours_between(n.held_at, n.released_at or now)) is not None
    ]
    return {
        "kind": "transparency",
        "year": year,
        "period": {"since": iso(since), "until": iso(until)},
        "generated_at": iso(now),
        "totals": {"notices": len(notices), "urls": len(urls)},
        "by_provider": sorted(
            (
                {"asn": asn, "as_org": org, "notices": v[0], "urls": v[1]}
                for (asn, org), v in providers.items()
            ),
            key=lambda r: (-r["urls"], -r["notices"], r["asn"] or 1 << 40, r["as_org"] or ""),
        ),
        "by_country": _rows(countries, "country"),
        "by_route": _rows(routes, "route"),
        "by_category": sorted(
            ({"category": c, "urls": n} for c, n in categories.items()),
            key=lambda r: (-r["urls"], r["category"] or "~"),
        ),
        "decided": {"auto": auto, "analyst": len(urls) - auto},
        "auto_by": {"trusted_list": how[BY_LIST], "earlier_decision": how[BY_DECISION]},
        "outcome": {
            "removed": outcome["removed"],
            "withdrawn": outcome["withdrawn"],
            "still_up": outcome["still_up"],
            "hours_to_removal": summary(removed_hours),
        },
        "disputes": {
            "total": sum(disputes.values()),
            "upheld": disputes["upheld"],
            "withdrawn": disputes["withdrawn"],
            "pending": disputes["pending"],
        },
        "urgent_referrals": len(urgent),
        "holds": {
            "notices": len(held),
            "released": sum(n.released_at is not None for n in held),
            "still_held": sum(n.status == "held" for n in held),
            "hours_held": summary(held_hours),
        },
    }
