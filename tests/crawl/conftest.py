"""Fixtures for crawl tests: the local multi-host web with its canary; a private Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.scalekit import redis_server
from tests.support.sitekit import Web


@pytest.fixture
def web() -> Iterator[Web]:
    site = Web().start()
    yield site
    site.stop()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A `redis-server` of this test's own on a free loopback port."""
    folder = tmp_path / "redis"
    folder.mkdir()
    with redis_server(folder) as server:
        yield server.url
