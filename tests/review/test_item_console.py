"""The item page's evidence, without a browser (both engines): video keyframe strips made
in memory under the wellness setting, archive members under their archive."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import delete, select, update

from crawler.db.models import ExposureDay, Match, Media, WellnessSetting
from crawler.db.session import Database
from tests.support.item_data import MIXED_REASONS, archive_item, mixed_item, video_item
from tests.support.review import Clock, MediaServer, login, loopback_preview_config, make_app


@pytest.fixture
def preview_app(db_url: str, users: dict[str, int], clock: Clock) -> Iterator[Flask]:
    application = make_app(db_url, clock=clock, preview=loopback_preview_config())
    yield application
    application.extensions["review_db"].dispose()


def _frames(resp: object) -> list[tuple[float, bool, Image.Image]]:
    data = resp.get_json()  # type: ignore[attr-defined]
    return [
        (f["t"], f["match"], Image.open(io.BytesIO(base64.b64decode(f["png"]))))
        for f in data["frames"]
    ]


def test_keyframes_are_grey_blurred_pngs_with_the_match_marked(
    preview_app: Flask, db: Database, media_server: MediaServer, users: dict[str, int]
) -> None:
    item_id, _ = video_item(db, media_server)
    client = preview_app.test_client()
    csrf = login(client, "ana")
    html = client.get(f"/items/{item_id}").get_data(as_text=True)
    assert "data-keyframes=" in html and "<video" not in html
    obs = re.search(r"/media/(\d+)/keyframes", html)
    assert obs
    url = f"/items/{item_id}/media/{obs.group(1)}/keyframes"
    resp = client.get(url)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    frames = _frames(resp)
    assert [(t, m) for t, m, _ in frames] == [
        (0.0, False), (2.0, False), (3.0, False), (5.0, True), (6.0, False), (7.0, False),
    ]  # fmt: skip
    for _, _, image in frames:
        assert image.mode == "L" and max(image.size) <= 256
        assert not image.info  # fresh PNG: no text chunks or metadata
    # Reveal: the same frames in colour, counted against the day's reveals
    revealed = client.post(f"{url}/reveal", headers={"X-CSRF-Token": csrf})
    assert revealed.status_code == 200
    assert {image.mode for _, _, image in _frames(revealed)} == {"RGB"}
    with db.read_session() as s:
        day = s.execute(select(ExposureDay).where(ExposureDay.user_id == users["ana"])).scalar()
        assert day is not None and day.reveals == 1
    # "keyframe strip only" off: a denser strip (the video is still never played)
    with db.session() as s:
        s.add(WellnessSetting(user_id=users["ana"], keyframes_only=False))
    assert len(_frames(client.get(url))) == 7


def test_keyframes_refuse_what_is_not_shown(
    preview_app: Flask, db: Database, media_server: MediaServer
) -> None:
    item_id, sha = video_item(db, media_server)
    client = preview_app.test_client()
    login(client, "ana")
    html = client.get(f"/items/{item_id}").get_data(as_text=True)
    obs = re.search(r"/media/(\d+)/keyframes", html)
    assert obs
    url = f"/items/{item_id}/media/{obs.group(1)}/keyframes"
    media_server.routes["/clip.mp4"] = (200, "video/mp4", b"<svg onload=alert(1)>" * 50)
    resp = client.get(url)
    assert resp.status_code == 415 and resp.headers["X-Preview-Status"] == "unsupported"
    # an HLS playlist naming another address: refused, and nothing else is fetched
    playlist = (
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{media_server.base}/seg.ts\n"
        "#EXT-X-ENDLIST\n"
    )
    media_server.routes["/clip.mp4"] = (200, "application/vnd.apple.mpegurl", playlist.encode())
    assert client.get(url).status_code == 415
    assert "/seg.ts" not in media_server.hits
    media_server.routes.pop("/clip.mp4")
    assert client.get(url).headers["X-Preview-Status"] == "gone"
    # an image is not a video: no strip for it
    with db.session() as s:
        s.execute(update(Media).where(Media.sha256 == sha).values(media_type="image"))
    assert client.get(url).status_code == 403
    assert client.get(f"/items/{item_id}/media/999999/keyframes").status_code == 404


def test_item_page_lists_reasons_strongest_first_and_archive_members_as_text(
    app: Flask, db: Database
) -> None:
    mixed = mixed_item(db)
    archive = archive_item(db)
    client = app.test_client()
    login(client, "ana")
    html = client.get(f"/items/{mixed}").get_data(as_text=True)
    shown = re.findall(r'data-reason="\d+"><bdi>([^<]*)</bdi>', html)
    assert shown == MIXED_REASONS
    assert "<details" in html and "<details open" not in html
    html = client.get(f"/items/{archive}").get_data(as_text=True)
    shown = re.findall(r'data-reason="\d+"><bdi>([^<]*)</bdi>', html)
    # the member's match, once (not again as the archive's own copy of it)
    assert shown == [
        "Media 1, archive member photos/&lt;b&gt;x&lt;/b&gt;.png: Exact copy (sha256) of "
        "list known-z entry z-7, category A"
    ]
    assert "<b>x</b>" not in html
    assert "Inside the archive (3 files)" in html
    assert "../../etc/passwd" in html and "encrypted member" in html
    assert "/keyframes" not in html and "data-preview=" not in html  # members: no preview
    # an archive with no match is not previewed either (its members are listed instead)
    with db.session() as s:
        s.execute(delete(Match))
    html = client.get(f"/items/{archive}").get_data(as_text=True)
    assert "data-preview=" not in html and "Archive: members are listed below" in html


def test_a_strip_stops_at_its_decoding_budget_with_the_frames_found_so_far(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from review import keyframes
    from tests.support.video import make_video

    video = make_video(8, fps=4, seed=5)
    kw = {"duration_s": 8.0, "match_times": [5.0], "count": 6, "reveal": False,
          "max_side": 128, "max_pixels": 10**7, "timeout_s": 10.0}  # fmt: skip
    assert len(keyframes.strip(video, **kw)) == 6  # type: ignore[arg-type]
    monkeypatch.setattr(keyframes, "MAX_DECODED", 2)
    partial = keyframes.strip(video, **kw)  # type: ignore[arg-type]
    assert [f.timestamp for f in partial] == [0.0, 2.0]
    monkeypatch.setattr(keyframes, "MAX_DECODED", 0)
    with pytest.raises(keyframes.UnsupportedMedia):
        keyframes.strip(video, **kw)  # type: ignore[arg-type]
