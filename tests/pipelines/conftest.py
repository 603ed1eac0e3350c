"""Fixtures for the store pipeline: synthetic images and a pipeline on the test database."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from scrapy.utils.test import get_crawler

from crawler.pipelines.store import StorePipeline


def synthetic_png(seed: int, size: tuple[int, int] = (96, 64), text: str | None = None) -> bytes:
    """A gradient plus noise, different for every seed; `text` goes into a tEXt chunk."""
    rng = np.random.default_rng(seed)
    w, h = size
    grad = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    noise = rng.integers(0, 60, (h, w, 3)).astype(np.float32)
    pixels = np.clip(grad + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    info = None
    if text is not None:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("comment", text)
    Image.fromarray(pixels, "RGB").save(out, "PNG", pnginfo=info)
    return out.getvalue()


def synthetic_jpeg(seed: int, size: tuple[int, int] = (160, 120), comment: bytes = b"") -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    pixels = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], axis=-1).astype(np.uint8)
    pixels[rng.integers(0, h), :, :] = 255
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=90, comment=comment)
    return out.getvalue()


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
