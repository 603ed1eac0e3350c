"""Evidence pipeline: one evidence record and WARC per fetched page (crawler.evidence).

Runs after the store pipeline (priority 400; the store is 300), so the page row and the
media observations it reads already exist. Settings read once (`EvidenceConfig`):

- `TAKEDOWN_DB` (required): SQLAlchemy URL of the project database.
- `TAKEDOWN_HOME` (required): WARCs go under `TAKEDOWN_HOME/evidence/warc/`.
- `TAKEDOWN_RUN_ID`: the crawl run, for the policy digest and software version.
- `TAKEDOWN_EVIDENCE` (default true): false turns the pipeline off.
- `TAKEDOWN_WRITER_PROCESS` (default true): the recorder runs in a child process
  (`crawler.engine.writer_process`), off the crawl's GIL; false keeps it on a thread.

Stats emitted: `evidence/pages`, `evidence/media`, `evidence/failed`,
`evidence/media/unmatched` (media of pages that produced no evidence, at close).

All work runs on one group-commit writer (a child process or a thread, as the store's), so
appends to a page's WARC never interleave, the reactor never waits on disk or database,
and a busy crawl writes the pages queued meanwhile in one transaction (one WARC each)
and reads the facts of the media queued meanwhile in one session. A failed batch is
recorded again item by item, so a bad page costs only itself. The page text (`PageItem.html`) is taken
off the item before anything else, so no later log line or retry can carry the `data:`
bytes inside it (docs/hazards.md M-11).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from crawler.db.session import Database
from crawler.engine.group_commit import GroupCommit, submit_on_reactor
from crawler.engine.writer_process import NoStats, ProcessGroupCommit
from crawler.evidence.records import EvidenceRecorder
from crawler.items import MediaItem, PageItem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvidenceConfig:
    db_url: str
    home: Path
    run_id: int | None = None
    writer_process: bool = True

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
        return cls(
            str(db_url),
            Path(home),
            int(run_id) if run_id not in (None, "") else None,
            settings.getbool("TAKEDOWN_WRITER_PROCESS", True),
        )


class EvidencePipeline:
    """Scrapy item pipeline over `crawler.evidence.records.EvidenceRecorder`."""

    def __init__(self, config: EvidenceConfig, stats: StatsCollector) -> None:
        self.config = config
        self._stats = stats
        self._db: Database | None = None
        self._recorder: EvidenceRecorder | None = None
        self._writer: (
            GroupCommit[PageItem | MediaItem, str | None | Exception] | ProcessGroupCommit | None
        ) = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        assert crawler.stats is not None
        return cls(EvidenceConfig.from_settings(crawler.settings), crawler.stats)

    def open(self) -> None:
        """Connect; also used by tests without a reactor."""
        self._db = Database(self.config.db_url)
        self._recorder = EvidenceRecorder(self._db, self.config.home, self.config.run_id)

    def open_spider(self) -> None:
        if self.config.writer_process:
            self._writer = ProcessGroupCommit(
                "crawler.engine.pipelines.evidence:process_writer", self.config, "takedown-evidence"
            )
            return
        self.open()
        self._writer = GroupCommit(self.record_many, "takedown-evidence")

    def record(self, item: PageItem | MediaItem) -> str | None:
        """Record one item synchronously; returns the stat key to bump, if any."""
        assert self._recorder is not None, "open() was not called"
        if isinstance(item, PageItem):
            return "evidence/pages" if self._recorder.record_page(item) is not None else None
        return "evidence/media" if self._recorder.record_media(item) else None

    def record_many(self, items: Sequence[PageItem | MediaItem]) -> list[str | None | Exception]:
        """`record` for a batch, in order: pages first in one transaction, then media
        (which may belong to those pages); a failed part is recorded again item by item."""
        pages = [i for i in items if isinstance(i, PageItem)]
        media = [i for i in items if isinstance(i, MediaItem)]
        keys = {id(i): k for i, k in zip(pages, self._batch(pages, self._pages), strict=True)}
        keys |= {id(i): k for i, k in zip(media, self._batch(media, self._media), strict=True)}
        return [keys[id(i)] for i in items]

    def _batch(self, items: Sequence[Any], apply: Any) -> list[str | None | Exception]:
        try:
            return list(apply(items))
        except Exception as exc:  # noqa: BLE001 - isolated below, reported per item
            if len(items) <= 1:
                return [exc] * len(items)
        results: list[str | None | Exception] = []
        for item in items:
            try:
                results.append(self.record(item))
            except Exception as exc:  # noqa: BLE001 - the caller reports it per item
                results.append(exc)
        return results

    def _pages(self, items: Sequence[PageItem]) -> list[str | None]:
        assert self._recorder is not None
        ids = self._recorder.record_pages(items)
        return ["evidence/pages" if i is not None else None for i in ids]

    def _media(self, items: Sequence[MediaItem]) -> list[str | None]:
        assert self._recorder is not None
        return ["evidence/media" if ok else None for ok in self._recorder.record_media_many(items)]

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem | MediaItem):
            return item
        assert self._writer is not None, "open_spider() was not called"
        try:
            key = await maybe_deferred_to_future(self._submit(item))
        except Exception as exc:  # noqa: BLE001 - evidence is best effort: keep crawling
            self._stats.inc_value("evidence/failed")
            logger.error("evidence failed for %s: %s", _url_of(item), type(exc).__name__)
            return _without_html(item)
        if key:
            self._stats.inc_value(key)
        return _without_html(item)

    def _submit(self, item: PageItem | MediaItem) -> Deferred[str | None]:
        """The item queued for the writer thread; fires on the reactor."""
        assert self._writer is not None
        return submit_on_reactor(self._writer, item)

    def close(self) -> int:
        """Record what is queued, release the database; returns the media that matched no
        recorded page (also counted in the stats)."""
        unmatched = 0
        if isinstance(self._writer, ProcessGroupCommit):
            unmatched = int(self._writer.close() or 0)  # the child's own close() below
        elif self._writer is not None:
            self._writer.close()  # everything queued is recorded first
        if self._recorder is not None:
            unmatched += self._recorder.unmatched_media()
        if unmatched:
            self._stats.inc_value("evidence/media/unmatched", unmatched)
        if self._db is not None:
            self._db.dispose()
        return unmatched

    async def close_spider(self) -> None:
        from twisted.internet.threads import deferToThread

        await maybe_deferred_to_future(deferToThread(self.close))


class _ProcessWriter:
    """The evidence recorder inside the writer process (`crawler.engine.writer_process`)."""

    def __init__(self, config: EvidenceConfig) -> None:
        self.pipeline = EvidencePipeline(config, NoStats())  # type: ignore[arg-type]
        self.pipeline.open()
        self.apply = self.pipeline.record_many

    def close(self) -> int:
        return self.pipeline.close()


def process_writer(config: EvidenceConfig) -> _ProcessWriter:
    return _ProcessWriter(config)


def _without_html(item: PageItem | MediaItem) -> PageItem | MediaItem:
    # The recorder takes the text off first thing; this covers a failure before it ran.
    if isinstance(item, PageItem):
        item.html = None
    return item


def _url_of(item: PageItem | MediaItem) -> str:
    return item.media_url if isinstance(item, MediaItem) else item.url
