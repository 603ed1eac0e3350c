"""Synthetic data for the console's pages: items of every status, decisions over a week,
exposure days, notices in several states. Used by the console tests and by
bench/screenshots.py. No media bytes: previews come from generated PNGs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crawler.db.models import Decision, ExposureDay, Notice, NoticeUrl, ReviewItem
from crawler.db.session import Database
from tests.support.review import seed_item


def seed_console(
    db: Database, users: dict[str, int], now: datetime, media_base: str | None = None
) -> dict[str, Any]:
    """Returns the ids it made: `open` (pending items), `decided`, `notices`."""
    media = (
        [
            {"url": f"{media_base}/a.png", "match": ("known-a", "known", "pdq", 9)},
            {"url": f"{media_base}/b.png"},
            {"url": f"{media_base}/d.png", "match": ("known-b", "known", "sha256", 0)},
        ]
        if media_base
        else None
    )
    hosts = ("files.example.net", "img.example.org", "cdn.example.com", "share.example.net")
    opened = [
        seed_item(
            db,
            priority=(2_643_002 + (i == 0)) if i % 3 == 0 else 1_520_001,
            title=f"Synthetic gallery page {i}",
            host=hosts[i % len(hosts)],
            country=("NL", "DE", "US", "FR")[i % 4],
            media=media if i == 0 else None,
        )
        for i in range(8)
    ]
    decided = [
        seed_item(db, priority=1_000_000, host=hosts[i % 4], status="pending") for i in range(6)
    ]
    ages = [timedelta(minutes=20), timedelta(hours=5), timedelta(days=2), timedelta(days=9)]
    with db.session() as s:
        for i, item_id in enumerate(opened):
            item = s.get(ReviewItem, item_id)
            assert item is not None
            item.created_at = now - ages[i % len(ages)]
            if i == 7:
                item.status = "escalated"
        analysts = [users["ana"], users["bob"], users["lee"]]
        for i, item_id in enumerate(decided):
            item = s.get(ReviewItem, item_id)
            assert item is not None
            when = now - timedelta(days=i % 4, hours=1)
            item.status = (
                "confirmed",
                "rejected",
                "confirmed",
                "removed",
                "confirmed",
                "confirmed",
            )[i]
            item.decided_at = when
            item.created_at = when - timedelta(hours=3)
            # Items 4 and 5 were decided with no analyst: 4 by a trusted list, 5 by the
            # analyst's earlier decision on item 0's media (decided_via, crawler/matching/decided.py).
            item.decided_by = None if i >= 4 else analysts[i % 3]
            item.decided_via = (
                "list:trusted-partner" if i == 4 else f"media:{decided[0]}" if i == 5 else "analyst"
            )
            if i == 3:  # decided before decided_via existed: NULL, counted as an analyst's
                item.decided_via = None
            item.category = "A" if item.status != "rejected" else None
            if i < 4:
                s.add(
                    Decision(
                        item_id=item_id,
                        user_id=analysts[i % 3],
                        action="confirm" if item.status != "rejected" else "reject",
                        category=item.category,
                        item_version=1,
                        created_at=when,
                    )
                )
        for d in range(4):
            day = (now - timedelta(days=d)).strftime("%Y-%m-%d")
            s.add(
                ExposureDay(user_id=users["ana"], day=day, reveals=3 + d, views=10 + d, seconds=600)
            )
            s.add(ExposureDay(user_id=users["bob"], day=day, reveals=1, views=4, seconds=300))
        notices = []
        for i, status in enumerate(("draft", "sent", "sent", "removed", "escalated")):
            sent = now - timedelta(days=3, hours=i) if status != "draft" else None
            n = Notice(
                serial=f"TD-2026-{i + 1:05d}",
                abuse_contact="abuse@example.net",
                status=status,
                sent_at=sent,
                created_at=now - timedelta(days=4),
                country="NL",
                as_org="Example Hosting",
                asn=64500,
            )
            s.add(n)
            s.flush()
            notices.append(n.id)
            target = decided[i % 4]
            s.add(
                NoticeUrl(
                    notice_id=n.id,
                    item_id=target,
                    url=f"http://example.net/page-n{i}",
                    first_seen=now - timedelta(days=5),
                    removed_at=(sent + timedelta(hours=6 * (i + 1))) if sent and i >= 2 else None,
                )
            )
    made: dict[str, Any] = {"open": opened, "decided": decided, "notices": notices}
    if media_base:
        made.update(_evidence_items(db, media_base, now))
    return made


def _evidence_items(db: Database, media_base: str, now: datetime) -> dict[str, int]:
    """A video whose frame at 0:05 matched (served as `/clip.mp4`) and a confirm-match
    item: a near copy of media an analyst confirmed, beside the known one's metadata."""
    from sqlalchemy import select, update

    from crawler.db.models import HashEntry, HashList, Match, Media

    video = seed_item(
        db,
        priority=1_563_001,  # near (PDQ distance 8), category A, one matched media
        title="Synthetic video page",
        host="video.example.org",
        media=[
            {"url": f"{media_base}/clip.mp4", "type": "video",
             "match": ("known-frames", "known", "pdq", 8)},
            {"url": f"{media_base}/e.png"},
        ],
    )  # fmt: skip
    near = seed_item(
        db,
        priority=1_583_001,  # near (PDQ distance 6)
        title="Synthetic repost page",
        host="share.example.net",
        media=[{"url": f"{media_base}/c.png", "match": ("analyst-confirmed", "known", "pdq", 6)}],
    )
    with db.session() as s:
        frames = s.execute(select(HashList.id).where(HashList.name == "known-frames")).scalar_one()
        clip = s.execute(select(Match.media_id).where(Match.list_id == frames)).scalar_one()
        s.execute(
            update(Media)
            .where(Media.id == clip)
            .values(format="MP4", duration_s=8.0, width=320, height=240)
        )
        s.execute(update(Match).where(Match.media_id == clip).values(timestamp=5.0))
        confirmed = s.execute(select(HashList).where(HashList.name == "analyst-confirmed"))
        listed = confirmed.scalar_one()
        listed.action = "auto"
        entry = s.execute(select(HashEntry).where(HashEntry.list_id == listed.id)).scalar_one()
        entry.reference = f"item:{video - 1}"
        s.add(
            Media(sha256="e" * 64, sha1="e" * 40, md5="e" * 32, pdq=entry.hash, pdq_quality=95,
                  bytes=48_213, width=640, height=480, media_type="image", format="JPEG")
        )  # fmt: skip
        item = s.get(ReviewItem, near)
        assert item is not None
        item.review_kind = "confirm-match"
        for made in (video, near):
            created = s.get(ReviewItem, made)
            assert created is not None
            created.created_at = now - timedelta(hours=2)
    return {"video": video, "confirm_match": near}
