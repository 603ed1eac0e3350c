"""What the spider hands to the pipelines: plain dataclasses, no HTML, no database.

The spider knows nothing of hashing, matching or storage; the pipelines know nothing of
HTML. A `MediaItem` carries the media bytes only in memory, from the download to the
hashing step, which drops them (`body` is set to None) before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class PageItem:
    """One fetched page (or a page that failed to fetch)."""

    url: str  # as requested (after canonicalisation for de-duplication, the original kept)
    final_url: str  # after redirects
    status: int | None  # HTTP status, None when the fetch failed
    depth: int
    run_id: int | None = None
    title: str | None = None  # hostile text: stored as text, shown escaped
    content_sha256: str | None = None  # SHA-256 of the body as received
    ip: str | None = None  # the address actually connected to
    redirect_chain: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    parse_incomplete: bool = False  # the parser hit a limit: never read as "no media"
    media_urls: list[str] = field(default_factory=list)  # absolute, in page order
    outlinks: int = 0
    error: str | None = None  # why the fetch or parse failed, in words
    # Evidence (crawler.evidence): the decoded page text, `data:` media still inside. The
    # evidence pipeline replaces those by their hashes, writes the WARC and sets this to
    # None; repr=False keeps it (and any data: bytes) out of Scrapy's item log lines.
    html: str | None = field(default=None, repr=False)
    tls_fingerprint: str | None = None  # SHA-256 (hex) of the server certificate, DER
    tls_issuer: str | None = None  # the certificate issuer, RFC 4514
    tls_verified: bool | None = None  # H-07: None for http, else trust store + host name
    fetched_at: datetime | None = None  # when the response arrived (UTC)


@dataclass
class MediaItem:
    """One media URL seen on a page, with the outcome of fetching it."""

    page_url: str
    media_url: str
    run_id: int | None = None
    final_url: str | None = None
    status: int | None = None
    ip: str | None = None
    declared_type: str | None = None  # Content-Type as served: recorded, never trusted
    body: bytes | None = None  # in memory only; the hashing pipeline sets it to None
    skipped: str | None = None  # a deliberate skip (policy, size, type), in words
    error: str | None = None  # a failure (timeout, short body, ...), in words
