"""The store pipeline, called directly with synthetic items (no reactor, no network)."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import pytest
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.http import Request, Response
from scrapy.utils.test import get_crawler
from sqlalchemy import func, select

from crawler.db.models import Host, Media, Observation, Page
from crawler.db.session import Database
from crawler.engine.pipelines.store import StorePipeline
from crawler.items import MediaItem, PageItem
from tests.support.matching import known_sha256
from tests.support.media import synthetic_jpeg, synthetic_png
from tests.support.threads import run_in_threads

MakePipeline = Callable[..., StorePipeline]


def _count(db: Database, model: type) -> int:
    with db.read_session() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _media(page: str, url: str, body: bytes | None, **kw: object) -> MediaItem:
    values: dict = {"status": 200, "ip": "127.0.0.5", **kw}
    return MediaItem(page_url=page, media_url=url, body=body, **values)


def test_same_image_on_three_pages_is_one_media_three_observations(
    make_pipeline: MakePipeline, db: Database
) -> None:
    pipeline = make_pipeline()
    image = synthetic_png(1)
    for n in range(3):
        page = f"http://site.test/p{n}"
        pipeline.store(PageItem(url=page, final_url=page, status=200, depth=0, ip="127.0.0.2"))
        item = _media(page, f"http://img.site.test/{n}.png", image, declared_type="image/png")
        assert pipeline.store(item) == ["store/media/hashed", *(["store/hosts/new"] * (n == 0))]
        assert item.body is None
    assert (_count(db, Media), _count(db, Observation), _count(db, Page)) == (1, 3, 3)
    assert _count(db, Host) == 2  # site.test and img.site.test
    with db.read_session() as s:
        media = s.scalars(select(Media)).one()
        obs = s.scalars(select(Observation)).all()
    assert media.media_type == "image" and media.pdq and (media.width, media.height) == (96, 64)
    assert {o.status for o in obs} == {"hashed"} and {o.media_id for o in obs} == {media.id}


def test_media_before_its_page_fills_one_page_row(
    make_pipeline: MakePipeline, db: Database
) -> None:
    pipeline = make_pipeline()
    pipeline.store(_media("http://site.test/a?b=1&a=2", "http://site.test/i.png", synthetic_png(2)))
    page = PageItem(
        url="http://SITE.test/a?a=2&b=1",
        final_url="http://site.test/a",
        status=200,
        depth=1,
        title="=cmd|' /C calc'!A0",
        ip="127.0.0.2",
    )
    pipeline.store(page)
    with db.read_session() as s:
        row = s.scalars(select(Page)).one()
    assert row.status_code == 200 and row.title == page.title and row.host_id is not None


@pytest.mark.parametrize(
    ("changes", "status", "reason", "hashed"),
    [
        ({"error": "short body: 100 of 5000 bytes"}, "error", "short body", False),
        ({"status": 206}, "error", "partial content", False),
        ({"status": 404}, "error", "HTTP status 404", False),
        ({"body": None}, "error", "no body", False),
        ({"skipped": "type text/html not in policy"}, "skipped", "not in policy", True),
        ({"skipped": "larger than media.max_bytes", "body": None}, "skipped", "max_bytes", False),
        ({"body": b"\x89PNG\r\n\x1a\n truncated"}, "error", "", True),
    ],
)
def test_unhashed_media_still_get_an_observation(
    make_pipeline: MakePipeline,
    db: Database,
    changes: dict,
    status: str,
    reason: str,
    hashed: bool,
) -> None:
    pipeline = make_pipeline()
    item = _media("http://site.test/", "http://site.test/x.png", synthetic_png(3))
    for key, value in changes.items():
        setattr(item, key, value)
    assert pipeline.store(item)[0] == f"store/media/{status}"
    with db.read_session() as s:
        obs = s.scalars(select(Observation)).one()
    assert obs.status == status and reason in (obs.error or "") and obs.error
    assert (obs.media_id is not None) == hashed
    assert _count(db, Media) == int(hashed)


def test_policy_pixel_limit_skips_but_keeps_exact_hashes(
    make_pipeline: MakePipeline, db: Database
) -> None:
    pipeline = make_pipeline(TAKEDOWN_MAX_PIXELS=1000)
    assert (
        pipeline.store(_media("http://site.test/", "http://site.test/big.png", synthetic_png(4)))[0]
        == "store/media/skipped"
    )
    with db.read_session() as s:
        media = s.scalars(select(Media)).one()
    assert media.pdq is None and len(media.sha256) == 64


def _decoded(body: bytes, encoding: str | None) -> bytes:
    """The body as Scrapy's own decompression middleware hands it to the spider."""
    headers = {"Content-Type": "image/jpeg"}
    if encoding:
        headers["Content-Encoding"] = encoding
    crawler = get_crawler(settings_dict={})
    mw = HttpCompressionMiddleware.from_crawler(crawler)
    response = Response("http://site.test/i.jpg", body=body, headers=headers)
    return mw.process_response(Request(response.url), response).body


def test_gzip_and_plain_bodies_give_one_sha256(make_pipeline: MakePipeline, db: Database) -> None:
    pipeline = make_pipeline()
    image = synthetic_jpeg(5)
    plain = _decoded(image, None)
    zipped = _decoded(gzip.compress(image), "gzip")
    pipeline.store(_media("http://site.test/a", "http://site.test/i.jpg", plain))
    pipeline.store(_media("http://site.test/b", "http://site.test/i.jpg", zipped))
    assert _count(db, Media) == 1 and _count(db, Observation) == 2


def test_four_writers_two_hundred_items_exact_totals(
    make_pipeline: MakePipeline, db: Database
) -> None:
    """docs/hazards.md S-09: concurrent upserts neither lose nor duplicate rows."""
    pipeline = make_pipeline()
    images = [synthetic_png(100 + n, size=(32, 32)) for n in range(10)]

    def writer(w: int) -> None:
        for i in range(200):
            page = f"http://site{i % 7}.test/w{w}/p{i}"
            pipeline.store(
                _media(
                    page,
                    f"http://img{i % 5}.test/{i % 10}.png",
                    images[i % 10],
                    ip=f"127.0.0.{1 + i % 3}",
                )
            )

    errors = run_in_threads(writer, 4)
    assert not errors
    assert _count(db, Media) == 10
    assert _count(db, Observation) == 800
    assert _count(db, Page) == 800
    # every (img host, ip) pair that occurred: i%5 and i%3 cycle together over 15 values
    assert _count(db, Host) == 15


def test_failure_between_rows_leaves_nothing_half_written(
    make_pipeline: MakePipeline, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/hazards.md S-10: page stub, host and media roll back with the observation."""
    import crawler.engine.storage as storage

    pipeline = make_pipeline()

    def boom(*args: object, **kwargs: object) -> int:
        raise RuntimeError("injected failure after the media row")

    monkeypatch.setattr(storage, "_upsert_observations", boom)
    item = _media("http://site.test/", "http://site.test/x.png", synthetic_png(6))
    with pytest.raises(RuntimeError):
        pipeline.store(item)
    assert item.body is None
    for model in (Page, Host, Media, Observation):
        assert _count(db, model) == 0, model.__name__


def test_stored_media_is_matched_and_opens_a_candidate(
    make_pipeline: MakePipeline, db: Database
) -> None:
    import io as _io

    from crawler.db.models import Match, ReviewItem
    from crawler.reporting.exports import export

    image = synthetic_png(42)
    with db.session() as s:
        known_sha256(s, "known-a", image)
    pipeline = make_pipeline()  # loads the lists as they are now
    page = "http://bad.test/gallery"
    pipeline.store(PageItem(url=page, final_url=page, status=200, depth=0, ip="127.0.0.2"))
    pipeline.store(_media(page, "http://img.bad.test/1.png", image))
    pipeline.store(_media(page, "http://img.bad.test/2.png", synthetic_png(43)))
    assert _count(db, Match) == 1 and _count(db, ReviewItem) == 1
    out = _io.StringIO()
    export(db, "candidates", "jsonl", out)
    assert '"matched_media":1' in out.getvalue() and '"media":2' in out.getvalue()
