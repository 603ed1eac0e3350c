"""Store pipeline: hash media in memory, drop the bytes, persist pages, hosts and sightings.

Settings read once (`StoreConfig.from_settings`); the crawl engine sets them:

- `TAKEDOWN_DB` (required): SQLAlchemy URL of the project database.
- `TAKEDOWN_RUN_ID`: the crawl run the items belong to when an item carries none.
- `TAKEDOWN_MAX_PIXELS`: the policy's `media.max_pixels` (default 89478485).
- `TAKEDOWN_VIDEO_MAX_FRAMES`: the policy's `media.video_max_frames` (default 3600): frames
  a video's vPDQ hashes at most (one a second).
- `TAKEDOWN_ARCHIVE_MAX_MEMBERS`, `TAKEDOWN_ARCHIVE_MAX_UNPACKED_BYTES`,
  `TAKEDOWN_ARCHIVE_MAX_RATIO`: the policy's archive caps (`crawler.media.archive`).
- `TAKEDOWN_GEOIP_COUNTRY`, `TAKEDOWN_GEOIP_ASN`: `.mmdb` paths (unset: no GeoIP).
- `TAKEDOWN_RDAP_URL`: RDAP base URL (unset: IANA bootstrap).
- `TAKEDOWN_RDAP_ENRICH` (default true): look up abuse contacts of new hosts during the
  crawl, in a background thread; false leaves them for `takedown hosts refresh`.
- `TAKEDOWN_STORE_THREADS` (default 2): worker threads for hashing when the writer runs
  on a thread (the writer process hashes by itself).
- `TAKEDOWN_WRITER_PROCESS` (default true): the database writes (and matching) run in a
  child process (`crawler.engine.writer_process`), off the crawl's GIL; false keeps them on a
  thread of the crawl process (what tests that patch `crawler.engine.storage` use).
- `TAKEDOWN_FLOOD_LIMIT`, `TAKEDOWN_CATEGORIES`: passed to the matcher (defaults as in
  `crawler.config`). Every hashed media is matched inside the store transaction that
  writes it (`crawler.matching.matcher.Matcher.after_batch_stored`, once per batch: each media
  matched once, each touched page's review item updated once), so matches and review
  items commit together with the sightings that caused them.

Stats emitted: `store/pages`, `store/media/hashed`, `store/media/skipped`,
`store/media/error`, `store/matches` (distinct media with a match, the live progress
figure), `store/failed` (an item whose transaction failed; nothing of it was
written), `store/hosts/new`, `attribution/rdap/ok|none|error`.

Hashing (CPU) runs in the writer process, or with the writer on a thread, on a private
thread pool; never on the reactor and never in Twisted's shared pool, where it would
starve DNS resolution. Database writes go to one
group-commit writer: a child process (`crawler.engine.writer_process`, the default) or a
thread (`crawler.engine.group_commit`). Everything queued while a transaction ran is written
in the next one, so a busy crawl pays one commit per batch, not per item; a failed
batch is written again item by item (`Storage.store_many`). If the writer process dies
the crawl stops with the finish reason `store-writer-failed`: nothing more could be
recorded (the items in flight are marked failed in the frontier). Between batches the
writer checks the schema revision (docs/hazards.md S-11): a migration run under a live crawl
stops it with `schema-changed`. Twenty items failing in a row (a full disk, a read-only
or broken database: docs/hazards.md S-12) stop it with `store-failed` before it fetches more;
one hostile item failing alone does not.
The media bytes are taken out of the item (`item.body = None`) before anything else
happens to it, so no later error, log line or retry can carry them (docs/hazards.md M-11).
Log lines hold URLs, lengths and hashes only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.settings import BaseSettings
from scrapy.statscollectors import StatsCollector
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from crawler.db.migrate import SchemaWatch
from crawler.db.session import Database
from crawler.engine.group_commit import GroupCommit, submit_on_reactor
from crawler.engine.storage import (
    AfterMediaStored,
    MediaOutcome,
    Storage,
    Stored,
    StoredMedia,
    StoredPage,
    Write,
    exact_hashes,
)
from crawler.engine.writer_process import NoStats, ProcessGroupCommit, WriterDied
from crawler.errors import SchemaChangedError
from crawler.hosting.attribution import Attributor
from crawler.items import MediaItem, PageItem
from crawler.matching.matcher import Matcher, MatcherConfig
from crawler.media.archive import ArchiveLimits
from crawler.media.hashing import DEFAULT_MAX_PIXELS, hash_media
from crawler.media.video import DEFAULT_MAX_FRAMES

logger = logging.getLogger(__name__)

# Items failing one after another before the crawl stops (docs/hazards.md S-12): one hostile
# item fails alone, a full disk or a read-only database fails them all.
FAILURES_TO_STOP = 20


@dataclass(frozen=True)
class StoreConfig:
    """Everything the store pipeline reads from the Scrapy settings."""

    db_url: str
    run_id: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    video_max_frames: int = DEFAULT_MAX_FRAMES
    archive_limits: ArchiveLimits = ArchiveLimits()
    geoip_country: Path | None = None
    geoip_asn: Path | None = None
    rdap_url: str | None = None
    rdap_enrich: bool = True
    threads: int = 2
    writer_process: bool = True
    flood_limit: int = MatcherConfig.flood_limit
    categories: tuple[str, ...] = MatcherConfig.categories

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> StoreConfig:
        db_url = settings.get("TAKEDOWN_DB")
        if not db_url:
            raise NotConfigured("TAKEDOWN_DB must be set to enable StorePipeline")
        run_id = settings.get("TAKEDOWN_RUN_ID")
        return cls(
            db_url=str(db_url),
            run_id=int(run_id) if run_id not in (None, "") else None,
            max_pixels=settings.getint("TAKEDOWN_MAX_PIXELS", DEFAULT_MAX_PIXELS),
            video_max_frames=settings.getint("TAKEDOWN_VIDEO_MAX_FRAMES", DEFAULT_MAX_FRAMES),
            archive_limits=_archive_limits(settings),
            geoip_country=_path(settings.get("TAKEDOWN_GEOIP_COUNTRY")),
            geoip_asn=_path(settings.get("TAKEDOWN_GEOIP_ASN")),
            rdap_url=settings.get("TAKEDOWN_RDAP_URL") or None,
            rdap_enrich=settings.getbool("TAKEDOWN_RDAP_ENRICH", True),
            threads=max(1, settings.getint("TAKEDOWN_STORE_THREADS", 2)),
            writer_process=settings.getbool("TAKEDOWN_WRITER_PROCESS", True),
            flood_limit=settings.getint("TAKEDOWN_FLOOD_LIMIT", MatcherConfig.flood_limit),
            categories=_categories(settings.get("TAKEDOWN_CATEGORIES")),
        )


def _archive_limits(settings: BaseSettings) -> ArchiveLimits:
    d = ArchiveLimits()
    return ArchiveLimits(
        max_members=settings.getint("TAKEDOWN_ARCHIVE_MAX_MEMBERS", d.max_members),
        max_unpacked_bytes=settings.getint(
            "TAKEDOWN_ARCHIVE_MAX_UNPACKED_BYTES", d.max_unpacked_bytes
        ),
        max_ratio=settings.getint("TAKEDOWN_ARCHIVE_MAX_RATIO", d.max_ratio),
        max_member_bytes=settings.getint("TAKEDOWN_MEDIA_MAX_BYTES", d.max_member_bytes),
    )


def _path(value: Any) -> Path | None:
    return Path(value) if value else None


def _categories(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    found = tuple(str(c).strip() for c in value or () if str(c).strip())
    return found or MatcherConfig.categories


def _unhashable(item: MediaItem, body: bytes | None) -> str | None:
    """Why a body must not be hashed as the whole media, or None if it may be."""
    if item.error:
        return item.error  # a timeout or short body: hashing a part would be a lie
    if item.status == 206:
        return "partial content (HTTP 206): never hashed as the whole media"
    if item.status is not None and not 200 <= item.status < 300:
        return f"HTTP status {item.status}"
    if body is None and not item.skipped:
        return "no body received"
    return None


def hash_item(
    item: MediaItem,
    max_pixels: int,
    max_frames: int = DEFAULT_MAX_FRAMES,
    archive_limits: ArchiveLimits | None = None,
) -> MediaOutcome:
    """Hash the item's (decoded) body in memory and drop it from the item.

    The body is whatever the downloader decoded (gzip/deflate/br content-encoding already
    undone), so one image served plain or compressed gets one SHA-256 (docs/hazards.md M-06).
    """
    body, item.body = item.body, None
    reason = _unhashable(item, body)
    if reason is not None:
        return MediaOutcome("error", reason)
    if item.skipped:
        # A policy skip that still arrived whole keeps its exact hashes: exact lists
        # can match what the policy chose not to decode.
        return MediaOutcome("skipped", item.skipped, exact_hashes(body) if body else None)
    assert body is not None
    hashes = hash_media(
        body,
        max_pixels=max_pixels,
        declared_type=item.declared_type,
        max_frames=max_frames,
        archive_limits=archive_limits,
    )
    return MediaOutcome(hashes.status, hashes.error, hashes)


class StorePipeline:
    """Scrapy item pipeline over `crawler.engine.storage.Storage`; see the module docstring."""

    def __init__(
        self,
        config: StoreConfig,
        stats: StatsCollector,
        *,
        after_media_stored: AfterMediaStored | None = None,
        crawler: Crawler | None = None,
    ) -> None:
        self.config = config
        self._stats = stats
        self._crawler = crawler
        self._after_media_stored = after_media_stored
        self._db: Database | None = None
        self._storage: Storage | None = None
        self._attributor: Attributor | None = None
        self._pool: ThreadPool | None = None
        self._enricher: ThreadPoolExecutor | None = None
        self._writer: GroupCommit[Write, Stored | Exception] | ProcessGroupCommit | None = None
        self._stopping = False
        self._failed_in_a_row = 0
        self._matched: set[int | None] = set()  # media ids counted in `store/matches`

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        assert crawler.stats is not None
        return cls(StoreConfig.from_settings(crawler.settings), crawler.stats, crawler=crawler)

    def open_spider(self) -> None:
        if self.config.writer_process and self._after_media_stored is None:
            # Only what the parent needs: the enricher's database and attribution data.
            self._db = Database(self.config.db_url)
            self._attributor = Attributor(self.config)
            self._start_enricher()
            self._writer = ProcessGroupCommit(
                "crawler.engine.pipelines.store:process_writer",
                self.config,
                "takedown-store-writer",
            )
            return
        self._pool = ThreadPool(1, self.config.threads, "takedown-store")  # hashing
        self._pool.start()
        self.open()
        assert self._storage is not None and self._db is not None
        schema, store_many = SchemaWatch(self._db), self._storage.store_many

        def checked(writes: Sequence[Write]) -> list[Stored | Exception]:
            schema.check()
            return store_many(writes)

        self._writer = GroupCommit(checked, "takedown-store-writer")

    def open(self) -> None:
        """Connect and load attribution data; also used by tests without a reactor."""
        self._db = Database(self.config.db_url)
        self._attributor = Attributor(self.config)
        self._storage = self._make_storage(self._db, self._attributor)
        self._start_enricher()

    def _start_enricher(self) -> None:
        if self.config.rdap_enrich:
            self._enricher = ThreadPoolExecutor(1, thread_name_prefix="takedown-rdap")

    def _make_storage(self, db: Database, attributor: Attributor) -> Storage:
        if self._after_media_stored is not None:
            return Storage(db, attributor, after_media_stored=self._after_media_stored)
        batch_hook = self._load_matcher(db).after_batch_stored
        return Storage(db, attributor, after_batch_stored=batch_hook)

    def _load_matcher(self, db: Database) -> Matcher:
        config = MatcherConfig(self.config.flood_limit, self.config.categories)
        with db.read_session() as session:
            return Matcher.load(session, config)

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, PageItem | MediaItem):
            return item
        assert self._writer is not None, "open_spider() was not called"
        try:
            if isinstance(self._writer, ProcessGroupCommit):
                write, stored = await self._remote(item)
            else:
                write = await self._prepare_off_reactor(item)
                stored = await maybe_deferred_to_future(self._submit(write))
        except Exception as exc:  # noqa: BLE001 - any failure: count it, keep crawling
            self._stats.inc_value("store/failed")
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            logger.error("store failed for %s: %s", _url_of(item), reason)
            self._failed_in_a_row += 1
            if isinstance(exc, WriterDied):
                self._stop("store-writer-failed")
            elif isinstance(exc, SchemaChangedError):
                self._stop("schema-changed")
            elif self._failed_in_a_row >= FAILURES_TO_STOP:
                self._stop("store-failed")
            raise DropItem(f"not stored: {reason}") from exc
        self._failed_in_a_row = 0
        for key in self._keys(write, stored):
            self._stats.inc_value(key)
        return item

    async def _prepare_off_reactor(self, item: PageItem | MediaItem) -> Write:
        if isinstance(item, PageItem):
            return item, None  # nothing to compute: straight to the writer
        from twisted.internet import reactor

        assert self._pool is not None
        deferred = deferToThreadPool(reactor, self._pool, self.prepare, item)
        return await maybe_deferred_to_future(deferred)

    async def _remote(self, item: PageItem | MediaItem) -> tuple[Write, Stored]:
        """Hash and store in the writer process: the body travels with the job (in
        memory, through the pipe) and is gone from the item before it is queued."""
        body = None
        if isinstance(item, MediaItem):
            if item.run_id is None:
                item.run_id = self.config.run_id
            body, item.body = item.body, None
        outcome, stored = await maybe_deferred_to_future(self._submit((item, body)))  # type: ignore[arg-type, misc]
        return (item, outcome), stored

    def _stop(self, reason: str) -> None:
        """Close the spider once: nothing more can be stored in this crawl."""
        if self._stopping or self._crawler is None or self._crawler.engine is None:
            return
        self._stopping = True
        logger.error("the store writer is gone: stopping the crawl (%s)", reason)
        deferred_from_coro(self._crawler.engine.close_spider_async(reason=reason))

    def _submit(self, write: Write) -> Deferred[Stored]:
        """The write queued for the group-commit thread; fires on the reactor."""
        assert self._writer is not None
        return submit_on_reactor(self._writer, write)

    def prepare(self, item: PageItem | MediaItem) -> Write:
        """A media item hashed in memory, its bytes dropped (CPU: call it off the reactor)."""
        if isinstance(item, PageItem):
            return item, None
        if item.run_id is None:
            item.run_id = self.config.run_id
        config = self.config
        return item, hash_item(
            item, config.max_pixels, config.video_max_frames, config.archive_limits
        )

    def store(self, item: PageItem | MediaItem) -> list[str]:
        """Hash (media) and write one item in its own transaction, synchronously; returns
        the stat keys to bump. The crawl batches writes instead (`process_item`)."""
        assert self._storage is not None, "open() was not called"
        write = self.prepare(item)
        return self._keys(write, self._storage.store_many([write])[0])

    def _keys(self, write: Write, stored: object) -> list[str]:
        if isinstance(stored, Exception):
            raise stored
        item, outcome = write
        if isinstance(stored, StoredPage):
            return self._after_store(["store/pages"], stored.host_id, stored.new_host)
        assert isinstance(stored, StoredMedia) and outcome is not None
        _log_media(item, outcome)
        keys = [f"store/media/{outcome.status}"]
        if stored.matched and stored.media_id not in self._matched:
            # Distinct matched media, as the run's summary counts them (the writer,
            # in its process or thread, matched it: `StoredMedia.matched`).
            self._matched.add(stored.media_id)
            keys.append("store/matches")
        return self._after_store(keys, stored.host_id, stored.new_host)

    def _after_store(self, keys: list[str], host_id: int, new_host: bool) -> list[str]:
        if not new_host:
            return keys
        if self._enricher is not None:
            self._enricher.submit(self._enrich, host_id)
        return [*keys, "store/hosts/new"]

    def _enrich(self, host_id: int) -> None:
        # Runs on the enrichment thread: an RDAP stall delays contacts, never stores.
        assert self._attributor is not None and self._db is not None
        try:
            contact = self._attributor.enrich(self._db, host_id)
        except Exception:  # noqa: BLE001 - a lookup must never end the crawl
            logger.exception("abuse-contact lookup failed for host %s", host_id)
            return
        if contact is not None:
            from twisted.internet import reactor

            key = f"attribution/rdap/{contact.rdap_status}"
            reactor.callFromThread(self._stats.inc_value, key)

    async def close_spider(self) -> None:
        from twisted.internet.threads import deferToThread

        # Waiting for lookups in flight happens in a thread: shutdown() blocks.
        await maybe_deferred_to_future(deferToThread(self.close))

    def close(self) -> None:
        """Write what is queued, finish pending lookups, stop the workers, release the DB."""
        if self._writer is not None:
            self._writer.close()
        if self._enricher is not None:
            self._enricher.shutdown(wait=True)
        if self._pool is not None:
            self._pool.stop()
        if self._db is not None:
            self._db.dispose()


class _ProcessWriter:
    """The store writer inside the writer process (`crawler.engine.writer_process`): hashes the
    media of a batch, stores the batch in one transaction, and answers each job with
    `(outcome, stored)` or its exception."""

    def __init__(self, config: StoreConfig) -> None:
        self.pipeline = StorePipeline(replace(config, rdap_enrich=False), NoStats())  # type: ignore[arg-type]
        self.pipeline.open()
        assert self.pipeline._storage is not None and self.pipeline._db is not None
        self.storage = self.pipeline._storage
        self.schema = SchemaWatch(self.pipeline._db)

    def apply(self, jobs: Sequence[tuple[PageItem | MediaItem, bytes | None]]) -> list[object]:
        self.schema.check()  # raises: every job of the batch learns it
        results: list[object] = [None] * len(jobs)
        writes: list[tuple[int, Write]] = []
        for index, (item, body) in enumerate(jobs):
            if isinstance(item, MediaItem):
                item.body = body
                try:
                    writes.append((index, self.pipeline.prepare(item)))
                except Exception as exc:  # noqa: BLE001 - this media fails alone
                    item.body = None
                    results[index] = exc
            else:
                writes.append((index, (item, None)))
        stored = self.storage.store_many([write for _, write in writes])
        for (index, write), done in zip(writes, stored, strict=True):
            results[index] = done if isinstance(done, BaseException) else (write[1], done)
        return results

    def close(self) -> None:
        self.pipeline.close()


def process_writer(config: StoreConfig) -> _ProcessWriter:
    return _ProcessWriter(config)


def _log_media(item: PageItem | MediaItem, outcome: MediaOutcome) -> None:
    assert isinstance(item, MediaItem)
    hashes = outcome.hashes
    logger.debug(
        "media %s on %s: %s bytes=%s sha256=%s %s",
        item.media_url,
        item.page_url,
        outcome.status,
        hashes.bytes if hashes else None,
        hashes.sha256 if hashes else None,
        outcome.error or "",
    )


def _url_of(item: PageItem | MediaItem) -> str:
    return item.media_url if isinstance(item, MediaItem) else item.url
