"""A media URL is fetched once per run, yet every page listing it gets its observation
and its review item: when the page is stored after the media, before it, or when a race
left the link out (the end-of-run reconciliation)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, func, select

from crawler.db.models import CrawlRun, Observation, ReviewItem
from crawler.db.session import Database
from crawler.engine.pipelines.store import StorePipeline
from crawler.engine.runner import reconcile_media_refs
from crawler.items import MediaItem, PageItem
from tests.support.matching import known_sha256
from tests.support.media import synthetic_png
from tests.support.rows import added

MakePipeline = Callable[..., StorePipeline]
IMAGE_URL = "http://img.site.test/known.png"


def _known_run(
    make_pipeline: MakePipeline, db: Database, shade: int
) -> tuple[bytes, int, StorePipeline]:
    """A synthetic image on a `known` list, a crawl run, and a store pipeline for that run."""
    image = synthetic_png(shade)
    with db.session() as s:
        known_sha256(s, "known-r", image)
        run_id = added(s, CrawlRun(name="repeat")).id
    return image, run_id, make_pipeline(TAKEDOWN_RUN_ID=run_id)


def _page(n: int, run_id: int) -> PageItem:
    url = f"http://site.test/p{n}"
    return PageItem(
        url=url, final_url=url, status=200, depth=0, ip="127.0.0.2", run_id=run_id,
        media_urls=[IMAGE_URL],
    )  # fmt: skip


def _media_on_p0(image: bytes, run_id: int) -> MediaItem:
    return MediaItem(page_url="http://site.test/p0", media_url=IMAGE_URL, status=200,
                     ip="127.0.0.5", body=image, run_id=run_id)  # fmt: skip


def _counts(db: Database) -> tuple[int, int]:
    with db.read_session() as s:
        obs = s.scalar(
            select(func.count()).select_from(Observation).where(Observation.media_id.isnot(None))
        )
        items = s.scalar(select(func.count()).select_from(ReviewItem))
    return int(obs or 0), int(items or 0)


def test_known_image_on_three_pages_gives_three_candidates(
    make_pipeline: MakePipeline, db: Database
) -> None:
    image, run_id, pipeline = _known_run(make_pipeline, db, 77)
    pipeline.store(_page(2, run_id))  # listed before the media arrives
    pipeline.store(_page(0, run_id))
    pipeline.store(_media_on_p0(image, run_id))
    pipeline.store(_page(1, run_id))  # listed after the media was stored
    assert _counts(db) == (3, 3)


def test_reconciliation_links_what_a_race_left_out(
    make_pipeline: MakePipeline, db: Database
) -> None:
    image, run_id, pipeline = _known_run(make_pipeline, db, 78)
    for n in range(3):
        pipeline.store(_page(n, run_id))
    pipeline.store(_media_on_p0(image, run_id))
    with db.session() as s:  # as if p1's and p2's transactions raced the media's
        s.execute(delete(ReviewItem))
        s.execute(delete(Observation).where(Observation.page_id != _page_id(s, 0)))
    assert _counts(db) == (1, 0)
    assert reconcile_media_refs(db, run_id, ("A", "B", "C")) == 2
    assert _counts(db) == (3, 2)  # p0's item was deleted above; p1 and p2 were linked
    assert reconcile_media_refs(db, run_id, ("A", "B", "C")) == 0  # idempotent


def _page_id(s: object, n: int) -> int:
    from crawler.db.models import Page

    return int(s.scalar(select(Page.id).where(Page.url == f"http://site.test/p{n}")))  # type: ignore[attr-defined]
