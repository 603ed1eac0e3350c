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
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

FORMAT = "takedown-evidence/1"


class WarcInvalid(Exception):
    """A WARC whose records do not match their digests, or that cannot be read."""


def warc_digest(data: bytes) -> str:
    return "sha256:" + base64.b32encode(hashlib.sha256(data).digest()).decode("ascii")


def warc_date(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


def _write(
    out: BinaryIO, uri: str | None, kind: str, body: bytes, ctype: str, extra: Mapping[str, str]
) -> str:
    """Write one record; returns its WARC-Record-ID."""
    writer = WARCWriter(out, gzip=True)
    digest = warc_digest(body)
    headers = {"WARC-Block-Digest": digest, "WARC-Payload-Digest": digest, **extra}
    record = writer.create_warc_record(
        uri or "",
        kind,
        payload=io.BytesIO(body),
        length=len(body),
        warc_content_type=ctype,
        warc_headers_dict=headers,
    )
    writer.write_record(record)
    return str(record.rec_headers.get_header("WARC-Record-ID"))


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
    with path.open("xb") as out:
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
        return _write(out, page.final_url, "metadata", _json(page.facts), "application/json", meta)


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
