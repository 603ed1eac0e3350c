"""Fixtures for crawl tests: the local multi-host web with its canary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sitekit import Web


@pytest.fixture
def web() -> Iterator[Web]:
    site = Web().start()
    yield site
    site.stop()
