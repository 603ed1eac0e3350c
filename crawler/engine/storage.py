"""Writes of pages, hosts, media and observations: one transaction per batch of items.

Used by the store pipeline (`crawler.engine.pipelines.store`) from worker threads; plain calls,
no Scrapy. Media bytes never reach this module: it receives hashes and metadata only.

Every write is an `INSERT … ON CONFLICT` (docs/hazards.md S-09): one `Media` row per SHA-256,
one `Host` per (host, ip), one `Page` per canonical URL, one `Observation` per (page,
media URL), whatever the number of concurrent writers. `store_many` writes a batch in
one transaction (the crawl's group commit): its pages, page stubs, media rows and
observations each in one upsert executemany (statements built once per dialect,
`crawler.db.prepared`); when that fails it writes each item in its own, so, as
with `store_page`/`store_media`, a failing item leaves none of its rows behind (S-10)
and costs no other item.

Repeated media: the spider fetches a media URL once per run, so only the first page
that lists it gets a media item. Each page's listed URLs are kept (`PageMediaRef`), and
`link_batch` gives every listing page its own copy of the run's observation of the URL,
whichever of page and media was stored first; `link_missing_observations`, at the end
of the run, links what concurrent transactions could not see of each other.

Locks are taken in the order hosts -> pages -> media -> observations -> matches, rows of
one kind in key order. A batch may still touch rows in another order than a concurrent
worker's batch; on PostgreSQL a deadlock then fails one batch, which is retried item by
item. A media item inserts its page as a stub when the page item has not been stored
yet (threads finish in any order); the page item fills the stub in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from crawler.db.models import ArchiveMember, Host, Media, Observation, Page, PageMediaRef
from crawler.db.prepared import Insert, prepared
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.db.upsert import insert_for
from crawler.hosting.attribution import PENDING, Attributor, HostFacts
from crawler.items import MediaItem, PageItem
from crawler.matching.matcher import HasHashes
from crawler.media.hashing import exact_digests
from crawler.net.urls import InvalidURL, canonical_url, url_host

_TEXT_MAX = 2000  # titles and error texts are hostile and unbounded; keep them readable

# Called inside the media transaction once a hashed media row exists, so matches and
# review items commit (or roll back) together with the observation that caused them.
AfterMediaStored = Callable[[Session, int, int], None]
# The batch form: (media ids stored, page ids that gained observations), once per
# transaction, so matching and review items are brought up to date once per batch.
# It may return the ids of the media that matched: `StoredMedia.matched` says so.
AfterBatchStored = Callable[[Session, Collection[int], Collection[int]], Collection[int] | None]


class Hashes(HasHashes, Protocol):
    """The fields of `crawler.media.hashing.MediaHashes` this module stores."""

    @property
    def media_type(self) -> str | None: ...
    @property
    def format(self) -> str | None: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    @property
    def bytes(self) -> int: ...


@dataclass(frozen=True)
class ExactHashes:
    """Exact hashes only: for bodies the policy skipped but that arrived whole."""

    sha256: str
    sha1: str
    md5: str
    bytes: int
    pdq: str | None = None
    pdq_quality: int | None = None
    media_type: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None


def exact_hashes(data: bytes) -> ExactHashes:
    sha256, sha1, md5 = exact_digests(data)
    return ExactHashes(sha256=sha256, sha1=sha1, md5=md5, bytes=len(data))


@dataclass(frozen=True)
class MediaOutcome:
    """What became of one media item: status, reason, and hashes when there are any."""

    status: str  # hashed | skipped | error
    error: str | None = None
    hashes: Hashes | None = None


@dataclass(frozen=True)
class StoredPage:
    page_id: int
    host_id: int
    new_host: bool


@dataclass(frozen=True)
class StoredMedia:
    page_id: int
    media_id: int | None
    observation_id: int
    host_id: int
    new_host: bool
    matched: bool = False  # the media has a match (set by the batch hook's answer)


def page_key(url: str) -> str:
    """The canonical URL pages are unique by; a URL that cannot be parsed is its own key."""
    try:
        return canonical_url(url)
    except (InvalidURL, ValueError):
        return url


def _host_of(url: str) -> str:
    try:
        return url_host(url)
    except (InvalidURL, ValueError):
        return ""


def _cut(text: str | None, limit: int) -> str | None:
    return text[:limit] if text else None


def _clip(text: str | None) -> str | None:
    return _cut(text, _TEXT_MAX)


# One write: a page item, or a media item with the outcome of hashing it.
Write = tuple[PageItem | MediaItem, MediaOutcome | None]
Stored = StoredPage | StoredMedia
HostKey = tuple[str, str | None]


@dataclass
class Touched:
    """What one transaction changed that matching must look at."""

    media: set[int] = field(default_factory=set)
    pages: set[int] = field(default_factory=set)
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (media, page)
    listed: list[tuple[int, int, list[str]]] = field(default_factory=list)  # run, page, URLs
    fetched: list[dict[str, Any]] = field(default_factory=list)  # observations of a run

    def add(self, media_id: int | None, page_ids: Collection[int]) -> None:
        if media_id is not None:
            self.media.add(media_id)
            self.pairs += [(media_id, p) for p in page_ids]
        self.pages.update(page_ids)


class Storage:
    """Stores page and media items; see the module docstring for the guarantees."""

    def __init__(
        self,
        db: Database,
        attributor: Attributor,
        *,
        after_media_stored: AfterMediaStored | None = None,
        after_batch_stored: AfterBatchStored | None = None,
    ) -> None:
        self._db = db
        self._attributor = attributor
        self._after_media_stored = after_media_stored or _no_matching
        self._after_batch_stored = after_batch_stored
        # Host ids known committed: a host row is never deleted while a crawl runs, and
        # most items come from a few hosts, so the insert-or-select is skipped for them.
        self._hosts: dict[HostKey, int] = {}

    def store_page(self, item: PageItem) -> StoredPage:
        result = self._transaction([(item, None)])[0]
        assert isinstance(result, StoredPage)
        return result

    def store_media(self, item: MediaItem, outcome: MediaOutcome) -> StoredMedia:
        """Record one media item; `item.body` must already be None."""
        result = self._transaction([(item, outcome)])[0]
        assert isinstance(result, StoredMedia)
        return result

    def store_many(self, writes: Sequence[Write]) -> list[Stored | Exception]:
        """All *writes* in one transaction; if it fails, each again in its own (S-10),
        so a bad item costs only itself. One result or exception per write, in order."""
        try:
            return list(self._transaction(writes))
        except Exception as exc:  # noqa: BLE001 - isolated below, reported per item
            if len(writes) == 1:
                return [exc]
        results: list[Stored | Exception] = []
        for write in writes:
            try:
                results.extend(self._transaction([write]))
            except Exception as exc:  # noqa: BLE001 - the caller reports it per item
                results.append(exc)
        return results

    def _transaction(self, writes: Sequence[Write]) -> list[Stored]:
        # GeoIP is read before the transaction: nothing slow runs while rows are locked.
        facts = [self._locate(item) for item, _ in writes]
        hosts: dict[HostKey, int] = {}
        touched = Touched()
        with self._db.session() as session:
            conn = session.connection()
            owners = [self._host(conn, f, hosts) for f in facts]
            out = self._write_all(conn, writes, owners, touched)
            link_batch(session, touched)
            matched = self._match(session, touched)
        self._hosts.update(hosts)  # only once committed
        if matched:
            out = [_mark_matched(stored, matched) for stored in out]
        return out

    def _match(self, session: Session, touched: Touched) -> Collection[int] | None:
        # Inside the transaction: matches and review items commit with their sightings.
        if self._after_batch_stored is not None:
            if touched.media or touched.pages:
                return self._after_batch_stored(session, touched.media, touched.pages)
            return None
        for media_id, page_id in touched.pairs:
            self._after_media_stored(session, media_id, page_id)
        return None

    def _locate(self, item: PageItem | MediaItem) -> HostFacts:
        if isinstance(item, PageItem):
            return self._attributor.locate(_host_of(item.final_url or item.url), item.ip)
        assert item.body is None, "media bytes must be dropped before storing"
        return self._attributor.locate(_host_of(item.final_url or item.media_url), item.ip)

    def _write_all(
        self,
        conn: Connection,
        writes: Sequence[Write],
        owners: list[tuple[int, bool]],
        touched: Touched,
    ) -> list[Stored]:
        """The batch's pages in one upsert (executemany), then its media items in a few;
        results in the order of *writes*."""
        out: dict[int, Stored] = {}
        pages: list[tuple[int, PageItem]] = []
        media: list[tuple[int, MediaItem, MediaOutcome]] = []
        for n, (item, outcome) in enumerate(writes):
            if isinstance(item, PageItem):
                pages.append((n, item))
            else:
                assert outcome is not None
                media.append((n, item, outcome))
        if pages:
            page_ids = _upsert_pages(conn, [(item, owners[n][0]) for n, item in pages])
            for (n, item), page_id in zip(pages, page_ids, strict=True):
                if item.run_id is not None and (urls := _listed_urls(item)):
                    touched.listed.append((item.run_id, page_id, urls))
                out[n] = StoredPage(page_id, *owners[n])
        if media:
            out |= _write_media(conn, media, owners, touched)
        return [out[n] for n in range(len(writes))]

    def _host(
        self, conn: Connection, facts: HostFacts, hosts: dict[HostKey, int]
    ) -> tuple[int, bool]:
        key = (facts.host[:255], facts.ip)
        known = self._hosts.get(key) or hosts.get(key)
        if known is not None:
            return known, False
        host_id, new_host = _host_id(conn, facts)
        hosts[key] = host_id
        return host_id, new_host


def _write_media(
    conn: Connection,
    media: list[tuple[int, MediaItem, MediaOutcome]],
    owners: list[tuple[int, bool]],
    touched: Touched,
) -> dict[int, Stored]:
    """Page stubs, media rows and observations of a batch: one statement each per chunk
    instead of three or four per item (the store writer's GIL time went there)."""
    pages = _page_stubs(conn, [(item.page_url, item.run_id) for _, item, _ in media])
    hashes = [o.hashes for _, _, o in media if _storable(o) and o.hashes is not None]
    media_ids = _upsert_media(conn, hashes)
    touched.media.update(_write_members(conn, hashes, media_ids))
    rows: list[dict[str, Any]] = []
    for n, item, outcome in media:
        media_id = media_ids[outcome.hashes.sha256] if _storable(outcome) else None  # type: ignore[union-attr]
        row = _observation(item, outcome, media_id, owners[n][0])
        rows.append({**row, "page_id": pages[page_key(item.page_url)]})
        if item.run_id is not None:
            touched.fetched.append(rows[-1])
        touched.add(media_id, [rows[-1]["page_id"]])
    obs_ids = _upsert_observation_rows(conn, rows)
    return {
        n: StoredMedia(row["page_id"], row["media_id"], obs_id, *owners[n])
        for (n, _, _), row, obs_id in zip(media, rows, obs_ids, strict=True)
    }


def _mark_matched(stored: Stored, matched: Collection[int]) -> Stored:
    if isinstance(stored, StoredMedia) and stored.media_id in matched:
        return replace(stored, matched=True)
    return stored


def _members_insert(insert: Insert) -> Any:
    stmt = insert(ArchiveMember.__table__)
    return stmt.on_conflict_do_nothing(index_elements=["archive_id", "path"])


def _write_members(conn: Connection, hashes: list[Hashes], media_ids: dict[str, int]) -> set[int]:
    """An archive's members (`crawler.media.archive`): their media rows (hashes only)
    and one `archive_members` row each; returns the member media ids, to be matched."""
    found = [(h.sha256, m) for h in hashes for m in getattr(h, "members", ())]
    if not found:
        return set()
    inner = [m.hashes for _, m in found if m.hashes is not None and m.hashes.bytes > 0]
    member_ids = _upsert_media(conn, inner)
    rows = []
    for archive_sha, m in found:
        inner_hashes = m.hashes
        rows.append(
            {
                "archive_id": media_ids[archive_sha],
                "path": m.path,
                "media_id": member_ids.get(inner_hashes.sha256) if inner_hashes else None,
                "status": inner_hashes.status if inner_hashes else m.status,
                "error": _clip(m.error or (inner_hashes.error if inner_hashes else None)),
                "depth": m.depth,
            }
        )
    conn.execute(prepared(conn, _members_insert), rows)
    return set(member_ids.values())


def _upsert_observation_rows(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Ids of *rows* in order; a (page, URL) twice in a batch is written once (the last:
    PostgreSQL refuses to update one row twice in a statement)."""
    unique = {(r["page_id"], r["media_url"]): r for r in rows}
    ordered = [unique[k] for k in sorted(unique)]  # one lock order for every writer
    found = _upsert_observations(conn, ordered)
    ids = {(r["page_id"], r["media_url"]): i for r, i in zip(ordered, found, strict=True)}
    return [ids[(r["page_id"], r["media_url"])] for r in rows]


_PAGES = Page.__table__
_PAGE_IDS = select(_PAGES.c.canonical_url, _PAGES.c.id).where(
    _PAGES.c.canonical_url.in_(bindparam("keys", expanding=True))
)


def _page_ids(conn: Connection, keys: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(keys), _ROWS):
        found = conn.execute(_PAGE_IDS, {"keys": keys[start : start + _ROWS]})
        ids |= {str(k): int(i) for k, i in found}
    return ids


def _stub_insert(insert: Insert) -> Any:
    return insert(_PAGES).on_conflict_do_nothing(index_elements=["canonical_url"])


def _page_stubs(conn: Connection, pages: list[tuple[str, int | None]]) -> dict[str, int]:
    """Page ids by canonical URL, inserting stubs for pages whose item is not stored yet
    (the ids are read first: usually every page is there already and nothing is written)."""
    first = {page_key(url): (url, run_id) for url, run_id in reversed(pages)}
    ids = _page_ids(conn, sorted(first))
    missing = sorted(k for k in first if k not in ids)
    if missing:
        now = utcnow()
        stubs = [
            {
                "url": first[key][0],
                "canonical_url": key,
                "first_seen": now,
                "last_seen": now,
                "last_run_id": first[key][1],
            }
            for key in missing
        ]
        conn.execute(prepared(conn, _stub_insert), stubs)
        ids |= _page_ids(conn, missing)
    return ids


def _upsert_media(conn: Connection, hashes: list[Hashes]) -> dict[str, int]:
    """Media ids by SHA-256: one row per SHA-256 (S-09), in one executemany."""
    unique = {h.sha256: h for h in reversed(hashes)}  # the first sighting of each
    if not unique:
        return {}
    now = utcnow()
    rows = [_media_values(unique[k], now) for k in sorted(unique)]
    return {str(sha): int(i) for sha, i in conn.execute(prepared(conn, _media_upsert), rows)}


def _no_matching(session: Session, media_id: int, page_id: int) -> None:
    """Placeholder until the matching service is wired in by the caller."""


def _storable(outcome: MediaOutcome) -> bool:
    # An empty body hashes to one well-known value that would tie unrelated pages
    # together; it says nothing about content.
    return outcome.hashes is not None and outcome.hashes.bytes > 0


_HOSTS = Host.__table__
_HOST_ID = select(_HOSTS.c.id).where(
    _HOSTS.c.host == bindparam("host"), _HOSTS.c.ip == bindparam("ip")
)


def _host_insert(insert: Insert) -> Any:
    stmt = insert(_HOSTS).on_conflict_do_nothing(index_elements=["host", "ip"])
    return stmt.returning(_HOSTS.c.id)


def _host_id(conn: Connection, facts: HostFacts) -> tuple[int, bool]:
    """(id, inserted now). DO NOTHING takes no lock on an existing row."""
    values = {
        "host": facts.host[:255],
        "ip": facts.ip,
        "registered_domain": facts.registered_domain,
        "country": facts.country,
        "asn": facts.asn,
        "as_org": facts.as_org,
        "rdap_status": PENDING,
    }
    new_id = conn.execute(prepared(conn, _host_insert), values).scalar()
    if new_id is not None:
        return int(new_id), True
    found = conn.execute(_HOST_ID, {"host": values["host"], "ip": facts.ip})
    return int(found.scalar_one()), False


_PAGE_CHANGING = (
    "final_url",
    "host_id",
    "status_code",
    "title",
    "content_sha256",
    "error",
    "parse_incomplete",
    "tls_verified",
    "last_seen",
    "last_run_id",
)


def _page_upsert(insert: Insert) -> Any:
    stmt = insert(_PAGES)
    ex = stmt.excluded  # a new alias on every access: read it once
    stmt = stmt.on_conflict_do_update(
        index_elements=["canonical_url"], set_={k: ex[k] for k in _PAGE_CHANGING}
    )
    return stmt.returning(_PAGES.c.canonical_url, _PAGES.c.id)


def _page_row(item: PageItem, host_id: int, now: Any) -> dict[str, Any]:
    return {
        "url": item.url,
        "canonical_url": page_key(item.url),
        "first_seen": now,
        "final_url": item.final_url,
        "host_id": host_id,
        "status_code": item.status,
        "title": _clip(item.title),
        "content_sha256": item.content_sha256,
        "error": _clip(item.error),
        "parse_incomplete": item.parse_incomplete,
        "tls_verified": item.tls_verified,
        "last_seen": now,
        "last_run_id": item.run_id,
    }


def _upsert_pages(conn: Connection, pages: list[tuple[PageItem, int]]) -> list[int]:
    """Page ids of (item, host id) in order: one upsert executemany, keys sorted. A page
    twice in the batch is written in a second round, as two upserts in a row would."""
    now = utcnow()
    rows = [_page_row(item, host_id, now) for item, host_id in pages]
    rounds: list[dict[str, dict[str, Any]]] = []
    for row in rows:
        key = row["canonical_url"]
        free = next((r for r in rounds if key not in r), None)
        if free is None:
            rounds.append(free := {})
        free[key] = row
    ids: dict[str, int] = {}
    for batch in rounds:
        params = [batch[k] for k in sorted(batch)]
        found = conn.execute(prepared(conn, _page_upsert), params)
        ids |= {str(k): int(i) for k, i in found}
    return [ids[row["canonical_url"]] for row in rows]


def _media_values(hashes: Hashes, now: Any) -> dict[str, Any]:
    return {
        "sha256": hashes.sha256,
        "sha1": hashes.sha1,
        "md5": hashes.md5,
        "pdq": hashes.pdq,
        "pdq_quality": hashes.pdq_quality,
        "bytes": hashes.bytes,
        "width": hashes.width,
        "height": hashes.height,
        "media_type": _cut(hashes.media_type, 16) or "unknown",
        "format": _cut(hashes.format, 16),
        "first_seen": now,
        "last_seen": now,
        # Videos (crawler.media.video): frame hashes only, never frames.
        "vpdq": getattr(hashes, "vpdq", None),
        "duration_s": getattr(hashes, "duration_s", None),
    }


def _media_upsert(insert: Insert) -> Any:
    table = Media.__table__
    stmt = insert(table)
    ex = stmt.excluded
    # Fill in what an earlier sighting could not compute (a skipped body has no PDQ).
    fill = {
        k: func.coalesce(table.c[k], ex[k])
        for k in ("pdq", "pdq_quality", "width", "height", "format", "vpdq", "duration_s")
    }
    stmt = stmt.on_conflict_do_update(
        index_elements=["sha256"], set_={"last_seen": ex.last_seen, **fill}
    )
    return stmt.returning(table.c.sha256, table.c.id)


def _observation(
    item: MediaItem, outcome: MediaOutcome, media_id: int | None, host_id: int | None
) -> dict[str, Any]:
    """The observation row of *item*, without its page."""
    now = utcnow()
    return {
        "media_url": item.media_url,
        "media_id": media_id,
        "host_id": host_id,
        "run_id": item.run_id,
        "declared_type": _cut(item.declared_type, 128),
        "status": outcome.status,
        "error": _clip(outcome.error),
        "first_seen": now,
        "last_seen": now,
        "gone_at": None,
    }


_OBS_CHANGING = ("host_id", "run_id", "declared_type", "status", "error", "last_seen", "gone_at")


_OBSERVATIONS = Observation.__table__


def _observation_upsert(insert: Insert) -> Any:
    stmt = insert(_OBSERVATIONS)
    ex = stmt.excluded
    # A later failed fetch keeps the content seen before: the failure is recorded in
    # status/error, the last known hashes stay linked.
    set_ = {k: ex[k] for k in _OBS_CHANGING}
    set_["media_id"] = func.coalesce(ex.media_id, _OBSERVATIONS.c.media_id)
    return stmt.on_conflict_do_update(index_elements=["page_id", "media_url"], set_=set_)


def _observation_upsert_ids(insert: Insert) -> Any:
    c = _OBSERVATIONS.c
    return _observation_upsert(insert).returning(c.id, c.page_id, c.media_url)


def _upsert_observations(
    conn: Connection, rows: list[dict[str, Any]], *, ids: bool = True
) -> list[int]:
    """One upsert executemany (rows are distinct (page, URL), all with the same keys);
    with *ids*, the id of each row in order."""
    if not rows:
        return []
    if not ids:
        conn.execute(prepared(conn, _observation_upsert), rows)
        return []
    returned = conn.execute(prepared(conn, _observation_upsert_ids), rows)
    by_key = {(p, u): int(i) for i, p, u in returned}
    return [by_key[(r["page_id"], r["media_url"])] for r in rows]


def _listed_urls(item: PageItem) -> list[str]:
    # data: media are stored per page already (one MediaItem each); only fetched URLs
    # are shared between pages.
    return list(dict.fromkeys(u for u in item.media_urls if not u.startswith("data:")))


def link_batch(session: Session, touched: Touched) -> None:
    """Give each page of a batch its own observation of the media it lists that its run
    stored for another page: pages stored after the media copy the run's observation of
    the URL, media stored after the pages are copied onto every page listing them. One
    insert of references, one read each way and one upsert per batch."""
    if not touched.listed and not touched.fetched:
        return
    conn = session.connection()
    _insert_refs(conn, touched.listed)
    copies = _copies_for_pages(conn, touched.listed)
    copies.update(_copies_for_media(conn, touched.fetched))
    rows = [copies[k] for k in sorted(copies)]  # one lock order for every writer
    _upsert_observations(conn, rows, ids=False)
    for row in rows:
        touched.add(row["media_id"], [row["page_id"]])


_ROWS = 500  # keys per IN (...) read: under SQLite's and PostgreSQL's bind limits
_CopyKey = tuple[int, str]  # (page, media URL)


def _ref_insert(insert: Insert) -> Any:
    return insert(PageMediaRef.__table__).on_conflict_do_nothing()


def _insert_refs(conn: Connection, listed: list[tuple[int, int, list[str]]]) -> None:
    refs = [{"run_id": r, "media_url": u, "page_id": p} for r, p, urls in listed for u in urls]
    if refs:
        conn.execute(prepared(conn, _ref_insert), refs)


def _copies_for_pages(
    conn: Connection, listed: list[tuple[int, int, list[str]]]
) -> dict[_CopyKey, dict[str, Any]]:
    copies: dict[_CopyKey, dict[str, Any]] = {}
    for run_id in {r for r, _, _ in listed}:
        mine = [(p, urls) for r, p, urls in listed if r == run_id]
        wanted = sorted({u for _, urls in mine for u in urls})
        seen, template = _run_observations(conn, run_id, wanted)
        for page_id, urls in mine:
            for url in urls:
                if url in template and (page_id, url) not in seen:
                    copies[(page_id, url)] = {**template[url], "page_id": page_id}
    return copies


def _run_observations(
    conn: Connection, run_id: int, urls: list[str]
) -> tuple[set[_CopyKey], dict[str, dict[str, Any]]]:
    """Which (page, URL) this run observed, and one observation per URL to copy."""
    seen: set[_CopyKey] = set()
    template: dict[str, dict[str, Any]] = {}
    now = utcnow()
    stamps = {"run_id": run_id, "first_seen": now, "last_seen": now, "gone_at": None}
    for start in range(0, len(urls), _ROWS):
        params = {"urls": urls[start : start + _ROWS], "run_id": run_id}
        for row in conn.execute(_RUN_OBSERVATIONS, params).mappings():
            seen.add((row["page_id"], row["media_url"]))
            template.setdefault(row["media_url"], {**row, **stamps})
    return seen, template


def _copies_for_media(
    conn: Connection, fetched: list[dict[str, Any]]
) -> dict[_CopyKey, dict[str, Any]]:
    copies: dict[_CopyKey, dict[str, Any]] = {}
    for run_id in {o["run_id"] for o in fetched}:
        by_url = {o["media_url"]: o for o in fetched if o["run_id"] == run_id}
        urls = sorted(by_url)
        for start in range(0, len(urls), _ROWS):
            params = {"urls": urls[start : start + _ROWS], "run_id": run_id}
            for page_id, url in conn.execute(_REFS_OF_URLS, params):
                if page_id != by_url[url]["page_id"]:
                    copies[(page_id, url)] = {**by_url[url], "page_id": page_id}
    return copies


_TEMPLATE = (
    _OBSERVATIONS.c.page_id,
    _OBSERVATIONS.c.media_url,
    _OBSERVATIONS.c.media_id,
    _OBSERVATIONS.c.host_id,
    _OBSERVATIONS.c.declared_type,
    _OBSERVATIONS.c.status,
    _OBSERVATIONS.c.error,
)
_RUN_OBSERVATIONS = select(*_TEMPLATE).where(
    _OBSERVATIONS.c.media_url.in_(bindparam("urls", expanding=True)),
    _OBSERVATIONS.c.run_id == bindparam("run_id"),
)
_REFS = PageMediaRef.__table__
_REFS_OF_URLS = select(_REFS.c.page_id, _REFS.c.media_url).where(
    _REFS.c.run_id == bindparam("run_id"),
    _REFS.c.media_url.in_(bindparam("urls", expanding=True)),
)


_COPIED = ("media_url", "media_id", "host_id", "declared_type", "status", "error")


def link_missing_observations(session: Session, run_id: int) -> set[int]:
    """The end-of-run pass, one statement: every page of *run_id* listing a media URL the
    run stored gets its observation, even when the page and the media transactions ran
    concurrently and neither saw the other's row (PostgreSQL, several workers). Returns
    the pages that gained one (their review items need updating)."""
    src, mine = aliased(Observation), aliased(Observation)
    first = (
        select(func.min(src.id))
        .where(src.run_id == run_id, src.media_url == PageMediaRef.media_url)
        .correlate(PageMediaRef)
        .scalar_subquery()
    )
    now = literal(utcnow(), Observation.__table__.c.last_seen.type)
    query = (
        select(PageMediaRef.page_id, *(getattr(src, c) for c in _COPIED))
        .add_columns(literal(run_id), now, now)
        .join(src, src.id == first)
        .where(PageMediaRef.run_id == run_id)
        .where(~exists().where(*_same_observation(mine, run_id)))
    )
    cols = ["page_id", *_COPIED, "run_id", "first_seen", "last_seen"]
    stmt = insert_for(session, _OBSERVATIONS).from_select(cols, query)
    ex = stmt.excluded
    set_ = {k: ex[k] for k in _OBS_CHANGING if k != "gone_at"}
    set_ |= {"gone_at": None, "media_id": func.coalesce(ex.media_id, _OBSERVATIONS.c.media_id)}
    stmt = stmt.on_conflict_do_update(index_elements=["page_id", "media_url"], set_=set_)
    returned = session.execute(stmt.returning(_OBSERVATIONS.c.page_id))
    return {int(p) for p in returned.scalars()}


def _same_observation(mine: Any, run_id: int) -> tuple[Any, ...]:
    return (
        mine.page_id == PageMediaRef.page_id,
        mine.media_url == PageMediaRef.media_url,
        mine.run_id == run_id,
    )
