"""A-04/A-13: previews fetched under the address policy, blurred and greyscale until Reveal."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from flask import Flask
from PIL import Image
from sqlalchemy import select

from crawler.db.models import AuditEvent, ExposureDay
from crawler.db.session import Database
from review.preview import UnsupportedMedia, render
from tests.support.media import blocks_png
from tests.support.review import (
    Clock,
    MediaServer,
    login,
    loopback_preview_config,
    make_app,
    seed_item,
)


@pytest.fixture
def papp(db_url: str, users: dict[str, int], clock: Clock) -> Iterator[Flask]:
    application = make_app(db_url, clock=clock, preview=loopback_preview_config())
    yield application
    application.extensions["review_db"].dispose()


def _item(db: Database, server: MediaServer, path: str, **match: object) -> tuple[int, int]:
    url = server.base + path
    item_id = seed_item(db, media=[{"url": url, "match": ("known-a", "known", "pdq", 12)}])
    with db.read_session() as s:
        from crawler.db.models import Observation, ReviewItem

        page_id = s.get(ReviewItem, item_id).page_id
        obs = s.execute(select(Observation.id).where(Observation.page_id == page_id)).scalar_one()
    return item_id, obs


def _pixels(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"), dtype=np.float64)


def test_default_preview_is_blurred_greyscale_and_reveal_is_not(
    papp: Flask, db: Database, media_server: MediaServer
) -> None:
    original = blocks_png()
    media_server.routes["/a.png"] = (200, "image/png", original)
    item_id, obs = _item(db, media_server, "/a.png")
    client = papp.test_client()
    csrf = login(client, "ana")
    blurred = client.get(f"/items/{item_id}/media/{obs}/preview")
    assert blurred.status_code == 200 and blurred.mimetype == "image/png"
    assert blurred.headers["Content-Security-Policy"].startswith("sandbox")
    assert blurred.headers["X-Content-Type-Options"] == "nosniff"
    assert blurred.headers["Cache-Control"] == "no-store"
    b = _pixels(blurred.data)
    assert np.abs(b[..., 0] - b[..., 1]).max() <= 1  # greyscale
    src = _pixels(original)
    assert b.std() < src.std() / 3  # detail gone
    assert max(Image.open(io.BytesIO(blurred.data)).size) <= 384  # downscaled
    revealed = client.post(f"/items/{item_id}/media/{obs}/reveal", headers={"X-CSRF-Token": csrf})
    assert revealed.status_code == 200
    r = _pixels(revealed.data)
    assert np.abs(r[..., 0] - r[..., 1]).max() > 50 and r.std() > b.std() * 3
    with db.read_session() as s:
        assert "media.reveal" in set(s.execute(select(AuditEvent.action)).scalars())
        assert s.execute(select(ExposureDay.reveals)).scalar_one() == 1


def test_reveal_needs_csrf(papp: Flask, db: Database, media_server: MediaServer) -> None:
    media_server.routes["/a.png"] = (200, "image/png", blocks_png())
    item_id, obs = _item(db, media_server, "/a.png")
    client = papp.test_client()
    login(client, "ana")
    assert client.post(f"/items/{item_id}/media/{obs}/reveal").status_code == 403


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        (
            "image/svg+xml",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        ),
        ("text/html", b"<html><script>alert(1)</script></html>"),
        ("image/png", b"<svg onload=alert(1)>"),  # lies about its type
    ],
)
def test_svg_and_html_are_415(
    papp: Flask, db: Database, media_server: MediaServer, ctype: str, body: bytes
) -> None:
    media_server.routes["/x"] = (200, ctype, body)
    item_id, obs = _item(db, media_server, "/x")
    client = papp.test_client()
    login(client, "ana")
    assert client.get(f"/items/{item_id}/media/{obs}/preview").status_code == 415


def test_gone_media_says_gone(papp: Flask, db: Database, media_server: MediaServer) -> None:
    item_id, obs = _item(db, media_server, "/removed.png")
    client = papp.test_client()
    login(client, "ana")
    resp = client.get(f"/items/{item_id}/media/{obs}/preview")
    assert resp.status_code == 410 and resp.headers["X-Preview-Status"] == "gone"


def test_address_outside_policy_is_never_fetched(
    db_url: str, users: dict[str, int], db: Database, media_server: MediaServer
) -> None:
    app = make_app(db_url)  # default policy: loopback refused
    media_server.routes["/a.png"] = (200, "image/png", blocks_png())
    item_id, obs = _item(db, media_server, "/a.png")
    client = app.test_client()
    login(client, "ana")
    resp = client.get(f"/items/{item_id}/media/{obs}/preview")
    assert resp.status_code == 403 and resp.headers["X-Preview-Status"] == "refused"
    assert media_server.hits == []
    app.extensions["review_db"].dispose()


def test_media_of_another_item_is_404(papp: Flask, db: Database, media_server: MediaServer) -> None:
    media_server.routes["/a.png"] = (200, "image/png", blocks_png())
    item_a, obs_a = _item(db, media_server, "/a.png")
    item_b = seed_item(db)
    client = papp.test_client()
    login(client, "ana")
    assert client.get(f"/items/{item_b}/media/{obs_a}/preview").status_code == 404


def test_render_strips_metadata() -> None:
    image = Image.fromarray(np.full((40, 40, 3), 120, dtype=np.uint8))
    exif = Image.Exif()
    exif[0x010E] = "secret description"
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    body = render(out.getvalue(), "image/jpeg", reveal=True, max_side=64, max_pixels=10**6)
    assert b"secret description" not in body
    assert not Image.open(io.BytesIO(body)).info.get("exif")
    with pytest.raises(UnsupportedMedia):
        render(b"GIF89a-broken", "image/gif", reveal=False, max_side=64, max_pixels=10**6)
