"""Archives made in memory; media bodies (archives, videos) stored through the store pipeline
under one page (no reactor, no network)."""

from __future__ import annotations

import io
import zipfile

from crawler.db.session import Database
from crawler.engine.pipelines.store import StoreConfig, StorePipeline
from crawler.items import MediaItem, PageItem

PAGE = "http://127.0.0.2/downloads"


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def store_bodies(db: Database, bodies: dict[str, bytes], page: str = PAGE) -> None:
    """Store `page` and each body as a media item on it, at http://127.0.0.3/<name>."""
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    pipeline = StorePipeline(
        StoreConfig(db.url, rdap_enrich=False), MemoryStatsCollector(get_crawler())
    )
    pipeline.open()
    try:
        pipeline.store(PageItem(url=page, final_url=page, status=200, depth=0, ip="127.0.0.2"))
        for name, body in bodies.items():
            url = f"http://127.0.0.3/{name}"
            pipeline.store(MediaItem(page, url, status=200, ip="127.0.0.3", body=body))
    finally:
        pipeline.close()
