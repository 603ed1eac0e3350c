"""WARC files of evidence: page text (data: media replaced), facts, media hashes.

One gzipped WARC per evidence record, records in this order:

1. `warcinfo`: software, format, the run's policy digest;
2. `resource` (`text/html; charset=utf-8`) for the page text with every `data:` URI
   replaced (`crawler.evidence.datauri`): a `resource`, not a `response`, because it is
   not the body as received; `WARC-Takedown-Body-SHA256` carries that body's digest;
3. `metadata` (`application/json`): the fetch facts (URLs, redirect chain, status,
   headers, IP, TLS, time, policy digest, software version, replaced data: media);
4. one `metadata` record per media response, appended as media items arrive: URL,
   served IP and hashes, never bytes.

Every record carries `WARC-Block-Digest` and `WARC-Payload-Digest` as `sha256:` base32,
set here rather than left to warcio (which defaults to SHA-1), and `check_warc` recomputes
both.

Records are serialised here, byte for byte as warcio's `WARCWriter` (WARC/1.0, gzip level
9, one gzip member per record) writes them for the same headers and record id: warcio's
header bookkeeping was most of the evidence thread's WARC time. Reading stays warcio's.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator

FORMAT = "takedown-evidence/1"


class WarcInvalid(Exception):
    """A WARC whose records do not match their digests, or that cannot be read."""


def warc_digest(data: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode("ascii")


def warc_date(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


def _record(
    uri: str | None,
    kind: str,
    body: bytes,
    ctype: str,
    extra: Mapping[str, str],
    record_id: str | None = None,
) -> tuple[bytes, str]:
    """One gzipped record and its WARC-Record-ID. The headers in warcio's order: the
    digests, *extra*, type, id, target URI, the date unless *extra* has one, content type
    and length."""
    record_id = record_id or f"<urn:uuid:{uuid.uuid4()}>"
    digest = warc_digest(body)
    headers = {"WARC-Block-Digest": digest, "WARC-Payload-Digest": digest, **extra}
    headers |= {"WARC-Type": kind, "WARC-Record-ID": record_id}
    if uri:
        headers["WARC-Target-URI"] = uri
    headers.setdefault("WARC-Date", warc_date(datetime.now(UTC)))
    headers |= {"Content-Type": ctype, "Content-Length": str(len(body))}
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    gz = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS + 16)
    data = gz.compress(head.encode("utf-8")) + gz.compress(body) + gz.compress(b"\r\n\r\n")
    return data + gz.flush(), record_id


def _write(
    out: BinaryIO, uri: str | None, kind: str, body: bytes, ctype: str, extra: Mapping[str, str]
) -> str:
    """Write one record; returns its WARC-Record-ID."""
    data, record_id = _record(uri, kind, body, ctype, extra)
    out.write(data)
    return record_id


@dataclass(frozen=True)
class PageWarc:
    """What `write_page_warc` needs: the sanitized text and the fetch facts."""

    final_url: str
    fetched_at: datetime
    ip: str | None
    html: str | None  # already sanitized; None when the page had no text body
    content_sha256: str | None
    facts: dict[str, Any]


def write_page_warc(path: Path, page: PageWarc) -> str:
    """Create the page's WARC; returns the record id media records refer to."""
    path.parent.mkdir(parents=True, exist_ok=True)
    date = {"WARC-Date": warc_date(page.fetched_at)}
    out = io.BytesIO()  # the records, then the file in one write
    info = {"format": FORMAT, **{k: page.facts.get(k) for k in ("software", "policy_sha256")}}
    _write(out, None, "warcinfo", _json(info), "application/json", date)
    refers: dict[str, str] = {}
    if page.html is not None:
        extra = {**date, "WARC-Takedown-Transform": "data-uri-media-replaced-by-hashes"}
        if page.ip:
            extra["WARC-IP-Address"] = page.ip
        if page.content_sha256:
            extra["WARC-Takedown-Body-SHA256"] = page.content_sha256
        body = page.html.encode("utf-8", "surrogatepass")
        rid = _write(out, page.final_url, "resource", body, "text/html; charset=utf-8", extra)
        refers = {"WARC-Refers-To": rid}
    meta = {**date, **refers}
    rid = _write(out, page.final_url, "metadata", _json(page.facts), "application/json", meta)
    with path.open("xb") as file:
        file.write(out.getbuffer())
    return rid


def append_media_record(
    path: Path, media_url: str, facts: dict[str, Any], refers_to: str, at: datetime
) -> None:
    """Append one media's hashes (never its bytes) to the page's WARC."""
    extra = {"WARC-Date": warc_date(at), "WARC-Refers-To": refers_to}
    with path.open("ab") as out:
        _write(out, media_url, "metadata", _json(facts), "application/json", extra)


def _check_record(index: int, headers: Any, block: bytes) -> None:
    name = f"record {index} ({headers.get_header('WARC-Type')})"
    for field in ("WARC-Block-Digest", "WARC-Payload-Digest"):
        declared = headers.get_header(field)
        if not declared:
            raise WarcInvalid(f"{name} has no {field}")
        algorithm = declared.split(":", 1)[0].lower()
        if algorithm != "sha256":
            raise WarcInvalid(f"{name}: {field} uses {algorithm}, expected sha256")
        if declared != warc_digest(block):
            raise WarcInvalid(f"{name}: {field} does not match its content")


def iter_records(data: bytes) -> Iterator[tuple[Any, bytes]]:
    """(WARC headers, block) per record; raw blocks, no HTTP parsing."""
    for record in ArchiveIterator(io.BytesIO(data), no_record_parse=True):
        yield record.rec_headers, record.raw_stream.read()


def check_warc(data: bytes) -> int:
    """Recompute every record's digests; returns the number of records checked."""
    count = 0
    try:
        for count, (headers, block) in enumerate(iter_records(data), start=1):
            _check_record(count, headers, block)
    except WarcInvalid:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile input fails in many ways
        raise WarcInvalid(f"unreadable after record {count}: {type(exc).__name__}") from exc
    if count == 0:
        raise WarcInvalid("no WARC records")
    return count
