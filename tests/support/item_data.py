"""Synthetic items for the item page's layout: matches of every kind, a video, an archive.

Hashes are made up; the one video is made by PyAV at test time (tests/support/video.py).
"""

from __future__ import annotations

from sqlalchemy import select, update

from crawler.db.models import ArchiveMember, HashEntry, HashList, Match, Media, Observation
from crawler.db.session import Database
from tests.support.review import MediaServer, seed_item

# The "why this page is here" lines of `mixed_item`, strongest first.
MIXED_REASONS = [
    "Media 4: Exact copy (sha256) of list known-b entry r-1, category A",
    "Media 2: Exact copy (sha256) of list known-a entry r-1, category C",
    "Media 3: Near copy, PDQ distance 5, of list known-a entry r-1, category B",
    "Media 1: Near copy, PDQ distance 12, of list known-a entry r-1, category A",
    "Media 5: Video matches list known-v entry r-1: 92% of frames within PDQ distance 20, "
    "category A",
    "Media 6: Near copy, PDQ distance 30, of list known-a entry r-1, category A, at 0:42",
]


def _sha(n: int) -> str:
    return f"{0xABC000 + n:064x}"


def _set_entry(db: Database, sha: str, **values: object) -> None:
    with db.session() as s:
        s.execute(update(HashEntry).where(HashEntry.hash == sha).values(**values))


def _set_match(db: Database, sha: str, **values: object) -> None:
    with db.session() as s:
        media_id = s.execute(select(Media.id).where(Media.sha256 == sha)).scalar_one()
        s.execute(update(Match).where(Match.media_id == media_id).values(**values))


def mixed_item(db: Database, base: str = "http://127.0.0.2:9") -> int:
    """Six media in an order unrelated to their strength (images 404 on preview)."""
    specs = [
        (1, "known-a", "pdq", 12, "image"),
        (2, "known-a", "sha256", 0, "image"),
        (3, "known-a", "pdq", 5, "image"),
        (4, "known-b", "sha256", 0, "image"),
        (5, "known-v", "vpdq", 20, "video"),
        (6, "known-a", "pdq", 30, "video"),
    ]
    item = seed_item(
        db,
        priority=2_643_004,
        media=[
            {"url": f"{base}/m{n}", "sha256": _sha(n), "type": kind, "match": (lst, "known", t, d)}
            for n, lst, t, d, kind in specs
        ],
    )
    _set_entry(db, _sha(2), category="C")
    _set_entry(db, _sha(3), category="B")
    _set_match(db, _sha(5), match_percent=92.0)
    _set_match(db, _sha(6), timestamp=42.4)
    return item


def video_item(db: Database, media_server: MediaServer, *, seconds: int = 8) -> tuple[int, str]:
    """A pending item showing one synthetic video whose frame at 0:05 matched a PDQ entry."""
    from tests.support.video import make_video

    media_server.routes["/clip.mp4"] = (200, "video/mp4", make_video(seconds, fps=4, seed=5))
    sha = _sha(50 + seconds)
    item = seed_item(
        db,
        priority=1_540_001,
        title="Synthetic video page",
        media=[
            {
                "url": media_server.base + "/clip.mp4",
                "sha256": sha,
                "type": "video",
                "match": ("known-frames", "known", "pdq", 8),
            }
        ],
    )
    with db.session() as s:
        s.execute(update(Media).where(Media.sha256 == sha).values(format="MP4", duration_s=seconds))
    _set_match(db, sha, timestamp=5.0)
    return item, sha


def archive_item(db: Database) -> int:
    """A page linking one ZIP: a member matched exactly, one with a hostile name, one
    skipped (encrypted)."""
    archive_sha, member_sha = _sha(90), _sha(91)
    item = seed_item(
        db,
        priority=2_643_001,
        media=[{"url": "http://127.0.0.2:9/pack.zip", "sha256": archive_sha, "type": "archive"}],
    )
    with db.session() as s:
        archive = s.execute(select(Media).where(Media.sha256 == archive_sha)).scalar_one()
        archive.format = "ZIP"
        member = Media(
            sha256=member_sha,
            sha1="1" * 40,
            md5="2" * 32,
            pdq="f" * 64,
            pdq_quality=90,
            bytes=500,
            media_type="image",
            format="PNG",
        )
        s.add(member)
        s.flush()
        listed = s.execute(select(HashList).where(HashList.name == "known-z")).scalar()
        if listed is None:
            listed = HashList(name="known-z", kind="known")
            s.add(listed)
            s.flush()
        entry = HashEntry(
            list_id=listed.id, hash_type="sha256", hash=member_sha, category="A", reference="z-7"
        )
        s.add(entry)
        s.flush()
        for media_id in (member.id, archive.id):  # an archive matches what its members match
            s.add(Match(media_id=media_id, list_id=listed.id, entry_id=entry.id,
                        match_type="sha256", distance=0))  # fmt: skip
        s.add_all(
            [
                ArchiveMember(archive_id=archive.id, path="photos/<b>x</b>.png",
                              media_id=member.id, status="hashed", depth=1),
                ArchiveMember(archive_id=archive.id, path="../../etc/passwd",
                              status="skipped", error="not an image or video", depth=1),
                ArchiveMember(archive_id=archive.id, path="secret.png", status="skipped",
                              error="encrypted member", depth=1),
            ]
        )  # fmt: skip
        assert s.execute(select(Observation.id).where(Observation.media_id == archive.id)).first()
    return item
