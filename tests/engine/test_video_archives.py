"""A real crawl (subprocess, writer process): a page linking a ZIP (`<a href>`) and
embedding a video. The archive is fetched as media and opened in memory; its known member
makes the page a candidate; the video is stored with its frame hashes and matches a vpdq
entry. Synthetic media made in memory."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from sqlalchemy import select

from crawler.db.models import ArchiveMember, Match, Media, Observation, ReviewItem
from crawler.db.session import Database
from crawler.media.hashlists import HashRow, import_rows
from crawler.media.video import hash_video
from tests.support.media import jpeg
from tests.support.sitekit import Web, policy_text, run_crawl
from tests.support.video import make_video


def test_a_linked_zip_and_an_embedded_video_are_hashed_and_matched(
    web: Web, env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    known, other = jpeg(160, 120, 41), jpeg(160, 120, 42)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photos/known.jpg", known)
        archive.writestr("../../etc/other.jpg", other)
    pack, clip = buffer.getvalue(), make_video(3, seed=43)
    listed = hash_video(make_video(3, seed=43, fmt="matroska", grey=True)).vpdq
    with db.session() as session:
        rows = [
            HashRow("sha256", hashlib.sha256(known).hexdigest(), "A", "known-image"),
            HashRow("vpdq", hashlib.sha256(str(listed).encode()).hexdigest(), "B", "clip", listed),
        ]
        import_rows(session, "known", rows)
    site = web["site-a.test"]
    site.page("/", '<a href="/pack.zip">download</a><video src="/clip.mp4"></video>')
    site.add("/pack.zip", pack, content_type="application/zip")
    site.add("/clip.mp4", clip, content_type="video/mp4")
    site.add("/robots.txt", "", status=404, content_type="text/plain")
    result = run_crawl(env, tmp_path, web, web.url("site-a.test"), policy=policy_text(web))
    assert result.returncode == 0, result.stderr[-3000:]

    with db.read_session() as s:
        media = {
            url.rsplit("/", 1)[1]: (kind, status, vpdq)
            for url, kind, status, vpdq in s.execute(
                select(
                    Observation.media_url, Media.media_type, Observation.status, Media.vpdq
                ).join(Media, Media.id == Observation.media_id)
            )
        }
        members = sorted(s.scalars(select(ArchiveMember.path)))
        matched = {
            (t, kind)
            for t, kind in s.execute(
                select(Media.media_type, Match.match_type).join(Media, Media.id == Match.media_id)
            )
        }
        item = s.scalars(select(ReviewItem)).one()
    assert media["pack.zip"][:2] == ("archive", "hashed")
    assert media["clip.mp4"][:2] == ("video", "hashed") and media["clip.mp4"][2]
    assert members == ["../../etc/other.jpg", "photos/known.jpg"]
    assert matched == {("image", "sha256"), ("archive", "sha256"), ("video", "vpdq")}
    assert item.status == "pending"
    assert not (tmp_path / "etc").exists()
