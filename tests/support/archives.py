"""Archives made in memory and stored through the store pipeline (no reactor, no network)."""

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


def store_bodies(db: Database, bodies: dict[str, bytes]) -> None:
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    pipeline = StorePipeline(
        StoreConfig(db.url, rdap_enrich=False), MemoryStatsCollector(get_crawler())
    )
    pipeline.open()
    try:
        pipeline.store(PageItem(url=PAGE, final_url=PAGE, status=200, depth=0, ip="127.0.0.2"))
        for name, body in bodies.items():
            url = f"http://127.0.0.3/{name}"
            pipeline.store(MediaItem(PAGE, url, status=200, ip="127.0.0.3", body=body))
    finally:
        pipeline.close()
