"""Fixtures for the store pipeline: a pipeline on the test database (images: tests/support/media.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scrapy.utils.test import get_crawler

from crawler.engine.pipelines.store import StorePipeline


@pytest.fixture
def make_pipeline(db_url: str) -> Iterator[object]:
    opened: list[StorePipeline] = []

    def make(**settings: object) -> StorePipeline:
        values = {"TAKEDOWN_DB": db_url, "TAKEDOWN_RDAP_ENRICH": False, **settings}
        crawler = get_crawler(settings_dict=values)
        pipeline = StorePipeline.from_crawler(crawler)
        pipeline.open()
        opened.append(pipeline)
        return pipeline

    yield make
    for pipeline in opened:
        pipeline.close()
