"""Searching for media bytes at rest (docs/hazards.md M-11): a marker's encodings, the whole
database as text, and what gzip and zip layers hold."""

from __future__ import annotations

import base64
import gzip
import io
import zipfile

from sqlalchemy import text

from crawler.db.models import Base
from crawler.db.session import Database


def marker_needles(marker: bytes) -> list[bytes]:
    """The marker raw and base64-encoded at each of the three alignments."""
    out = [marker]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + marker)[4:-4]
        out.append(encoded)
    return out


def db_text(db: Database) -> bytes:
    chunks: list[str] = []
    with db.read_session() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(text(f"SELECT * FROM {table.name}")):  # noqa: S608
                chunks.append(repr(tuple(row)))
    return "\n".join(chunks).encode()


def expanded(data: bytes) -> list[bytes]:
    """The bytes, plus what gzip and zip layers inside them hold (WARCs are gzipped)."""
    out = [data]
    if data[:2] == b"\x1f\x8b":
        out += expanded(gzip.decompress(data))
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                out += expanded(zf.read(name))
    return out
