"""Evidence pipeline: one evidence record and WARC per fetched page (crawler.evidence).

Runs after the store pipeline (priority 400; the store is 300), so the page row and the
media observations it reads already exist. Settings read once (`EvidenceConfig`):

- `TAKEDOWN_DB` (required): SQLAlchemy URL of the project database.
- `TAKEDOWN_HOME` (required): WARCs go under `TAKEDOWN_HOME/evidence/warc/`.
- `TAKEDOWN_RUN_ID`: the crawl run, for the policy digest and software version.
- `TAKEDOWN_EVIDENCE` (default true): false turns the pipeline off.

Stats emitted: `evidence/pages`, `evidence/media`, `evidence/failed`,
`evidence/media/unmatched` (media of pages that produced no evidence, at close).

All work runs on one private thread, so appends to a page's WARC never interleave and
the reactor never waits on disk or database. The page text (`PageItem.html`) is taken
off the item before anything else, so no later log line or retry can carry the `data:`
bytes inside it (HAZARDS M-11).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from crawler.db.session import Database
from crawler.evidence import EvidenceRecorder
from crawler.items import MediaItem, PageItem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvidenceConfig:
    db_url: str
    home: Path
    run_id: int | None = None

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> EvidenceConfig:
        if not settings.getbool("TAKEDOWN_EVIDENCE", True):
            raise NotConfigured("TAKEDOWN_EVIDENCE is false: no evidence records")
        db_url, home = settings.get("TAKEDOWN_DB"), settings.get("TAKEDOWN_HOME")
        if not db_url or not home:
            raise NotConfigured(
                "TAKEDOWN_DB and TAKEDOWN_HOME must be set to enable EvidencePipeline"
            )
        run_id = settings.get("TAKEDOWN_RUN_ID")
        return cls(str(db_url), Path(home), int(run_id) if run_id not in (None, "") else None)


class EvidencePipeline:
    """Scrapy item pipeline over `crawler.evidence.EvidenceRecorder`."""

    def __init__(self, config: EvidenceConfig, stats: StatsCollector) -> None:
        self.config = config
        self._stats = stats
        self._db: Database | None = None
        self._recorder: EvidenceRecorder | None = None
        self._pool: ThreadPool | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        assert crawler.stats is not None
        return cls(EvidenceConfig.from_settings(crawler.settings), crawler.stats)

    def open(self) -> None:
        """Connect; also used by tests without a reactor."""
        self._db = Database(self.config.db_url)
        self._recorder = EvidenceRecorder(self._db, self.config.home, self.config.run_id)

    def open_spider(self) -> None:
        self.open()
        self._pool = ThreadPool(1, 1, "takedown-evidence")
        self._pool.start()

    def record(self, item: PageItem | MediaItem) -> str | None:
        """Record one item synchronously; returns the stat key to bump, if any."""
        assert self._recorder is not None, "open() was not called"
        if isinstance(item, PageItem):
            return "evidence/pages" if self._recorder.record_page(item) is not None else None
        return "evidence/media" if self._recorder.record_media(item) else None

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem | MediaItem):
            return item
        from twisted.internet import reactor

        assert self._pool is not None, "open_spider() was not called"
        try:
            key = await maybe_deferred_to_future(
                deferToThreadPool(reactor, self._pool, self.record, item)
            )
        except Exception as exc:  # noqa: BLE001 - evidence is best effort: keep crawling
            self._stats.inc_value("evidence/failed")
            logger.error("evidence failed for %s: %s", _url_of(item), type(exc).__name__)
            return _without_html(item)
        if key:
            self._stats.inc_value(key)
        return _without_html(item)

    def close(self) -> None:
        if self._recorder is not None and self._recorder.unmatched_media():
            self._stats.inc_value("evidence/media/unmatched", self._recorder.unmatched_media())
        if self._pool is not None:
            self._pool.stop()
        if self._db is not None:
            self._db.dispose()

    async def close_spider(self) -> None:
        from twisted.internet.threads import deferToThread

        await maybe_deferred_to_future(deferToThread(self.close))


def _without_html(item: PageItem | MediaItem) -> PageItem | MediaItem:
    # The recorder takes the text off first thing; this covers a failure before it ran.
    if isinstance(item, PageItem):
        item.html = None
    return item


def _url_of(item: PageItem | MediaItem) -> str:
    return item.media_url if isinstance(item, MediaItem) else item.url
