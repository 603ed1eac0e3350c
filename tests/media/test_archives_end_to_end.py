"""Archives end to end (docs/interface.md): members stored as media (hashes
only), matched, the archive matching what its members match, export records per member,
caps recorded, rematch. Both engines; synthetic archives and images made in memory."""

from __future__ import annotations

import hashlib
import io
import json

from sqlalchemy import delete, select

from crawler.db.models import ArchiveMember, Match, Media, ReviewItem
from crawler.db.session import Database
from crawler.engine.pipelines.store import StoreConfig
from crawler.items import MediaItem
from crawler.matching.rematch import rematch
from crawler.media.hashing import hash_media
from crawler.media.hashlists import HashRow, import_rows
from crawler.reporting.exports import export
from spiders.extract import is_media_link
from tests.support.archives import PAGE, make_zip, store_bodies
from tests.support.media import jpeg
from tests.support.rows import all_rows

A, B, C = jpeg(160, 120, 11), jpeg(160, 120, 12), jpeg(160, 120, 13)


def _matched(db: Database) -> dict[str, set[str]]:
    with db.read_session() as session:
        rows = session.execute(
            select(Media.sha256, Match.match_type).join(Media, Media.id == Match.media_id)
        )
        found: dict[str, set[str]] = {}
        for sha, kind in rows:
            found.setdefault(sha, set()).add(kind)
        return found


def test_archive_links_are_fetched_as_media() -> None:
    assert all(
        is_media_link(f"http://127.0.0.3/x.{ext}") for ext in ("zip", "tar", "tgz", "tar.gz")
    )


def test_members_are_media_of_their_own_and_the_archive_matches_through_them(
    db: Database,
) -> None:
    archive = make_zip(
        {"a.jpg": A, "inner.zip": make_zip({"b.jpg": B}), "readme.txt": b"text", "c.jpg": C}
    )
    bomb = make_zip({"zeros.jpg": b"\xff\xd8\xff" + bytes(5_000_000)})
    with db.session() as session:
        rows = [
            HashRow("sha256", hash_media(A).sha256, "A", "exact-a"),
            HashRow("pdq", str(hash_media(B).pdq), "B", "near-b"),
        ]
        import_rows(session, "known", rows)
    store_bodies(db, {"pack.zip": archive, "bomb.zip": bomb})

    sha = {name: hashlib.sha256(body).hexdigest() for name, body in
           {"pack": archive, "bomb": bomb, "a": A, "b": B, "c": C}.items()}  # fmt: skip
    members = all_rows(
        db,
        select(ArchiveMember.path, ArchiveMember.status, ArchiveMember.depth, Media.sha256)
        .join(Media, Media.id == ArchiveMember.media_id)
        .order_by(ArchiveMember.id),
    )
    (item,) = all_rows(db, select(ReviewItem.status, ReviewItem.priority))
    assert [tuple(m) for m in members] == [
        ("a.jpg", "hashed", 1, sha["a"]),
        ("inner.zip/b.jpg", "hashed", 2, sha["b"]),
        ("c.jpg", "hashed", 1, sha["c"]),
    ]
    found = _matched(db)
    assert found[sha["a"]] == {"sha256"} and found[sha["b"]] == {"pdq"}
    assert found[sha["pack"]] == {"sha256", "pdq"}  # the archive's URL is what a notice names
    assert sha["c"] not in found and sha["bomb"] not in found
    assert item.status == "pending" and item.priority >= 2_000_000  # an exact known member

    out = io.StringIO()
    export(db, "media", "jsonl", out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    pack = [r for r in records if r["media_url"].endswith("pack.zip")]
    assert [r["archive_member"] for r in pack] == [None, "a.jpg", "inner.zip/b.jpg", "c.jpg"]
    assert pack[0]["media_type"] == "archive" and pack[0]["sha256"] == sha["pack"]
    assert {r["archive_sha256"] for r in pack[1:]} == {sha["pack"]}
    assert [r["sha256"] for r in pack[1:]] == [sha["a"], sha["b"], sha["c"]]
    assert [[m["type"] for m in r["matches"]] for r in pack[1:]] == [["sha256"], ["pdq"], []]
    (bomb_record,) = [r for r in records if r["media_url"].endswith("bomb.zip")]
    assert bomb_record["status"] == "skipped" and "archive_max_ratio" in bomb_record["error"]

    with db.session() as session:
        session.execute(delete(Match))
    rematch(db)
    assert _matched(db) == found
    rematch(db)
    with db.read_session() as session:
        assert len(session.execute(select(Match)).all()) == 4


def test_policy_caps_reach_the_store(db: Database) -> None:
    from scrapy.settings import Settings

    settings = Settings({"TAKEDOWN_DB": db.url, "TAKEDOWN_ARCHIVE_MAX_MEMBERS": 1})
    config = StoreConfig.from_settings(settings)
    assert config.archive_limits.max_members == 1
    from crawler.engine.pipelines.store import hash_item

    item = MediaItem(
        PAGE, "http://127.0.0.3/two.zip", status=200, body=make_zip({"a.jpg": A, "b.jpg": B})
    )
    outcome = hash_item(item, config.max_pixels, config.video_max_frames, config.archive_limits)
    assert outcome.status == "skipped" and "archive_max_members" in (outcome.error or "")
    assert item.body is None  # bytes dropped
