"""docs/hazards.md M-11: a marker planted in served media bytes is found nowhere after storing."""

from __future__ import annotations

import io
import logging
import os
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from crawler.db.session import Database
from crawler.engine.pipelines.store import StorePipeline
from crawler.items import MediaItem, PageItem
from crawler.reporting.exports import export
from tests.support.at_rest import db_text, marker_needles
from tests.support.media import synthetic_jpeg, synthetic_png

MakePipeline = Callable[..., StorePipeline]


def _files(root: Path, since: float) -> Iterator[Path]:
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue
            if st.st_mtime >= since and st.st_size < 200_000_000 and path.is_file():
                yield path


def test_marker_in_media_bytes_is_nowhere_at_rest(
    make_pipeline: MakePipeline,
    db: Database,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.time() - 1
    marker = f"TDMARK-{uuid.uuid4().hex}".encode()
    home = tmp_path / "home"
    home.mkdir()
    log_file = logging.FileHandler(home / "crawl.log")
    logging.getLogger().addHandler(log_file)
    caplog.set_level(logging.DEBUG)
    try:
        pipeline = make_pipeline()
        page = "http://site.test/"
        pipeline.store(PageItem(url=page, final_url=page, status=200, depth=0, ip="127.0.0.2"))
        bodies = [
            synthetic_png(7, text=marker.decode()),
            synthetic_jpeg(8, comment=marker),
            marker * 50,  # not an image at all
            _stored_zip({"../in/x.png": synthetic_png(9, text=marker.decode())}),
        ]
        items = [MediaItem(page, f"{page}m{n}", status=200, body=b) for n, b in enumerate(bodies)]
        items.append(MediaItem(page, f"{page}short", status=200, body=bodies[0][:120],
                               error="short body: 120 of 300 bytes"))  # fmt: skip
        for item in items:
            assert marker in (item.body or b"")
            pipeline.store(item)
            assert item.body is None and marker not in repr(item).encode()

        # A failing store: the error path must not carry the bytes either.
        import crawler.engine.storage as storage

        def fail(*a: object, **k: object) -> int:
            raise RuntimeError("database went away")

        monkeypatch.setattr(storage, "_upsert_media", fail)
        doomed = MediaItem(page, f"{page}doomed", status=200, body=bodies[1])
        with pytest.raises(RuntimeError):
            pipeline.store(doomed)
        logging.getLogger("test").error("store failed for %r", doomed)
        for fmt in ("jsonl", "csv"):
            with (home / f"media.{fmt}").open("w", encoding="utf-8") as handle:
                export(db, "media", fmt, handle)  # type: ignore[arg-type]
    finally:
        logging.getLogger().removeHandler(log_file)
        log_file.close()

    needles = marker_needles(marker)
    haystacks: dict[str, bytes] = {"caplog": caplog.text.encode(), "database": db_text(db)}
    for root in (tmp_path, Path(tempfile.gettempdir())):
        for path in _files(root, started):
            try:
                haystacks[str(path)] = path.read_bytes()
            except OSError:
                continue
    assert any(p.endswith(".db") for p in haystacks) or not db.is_sqlite
    leaks = [where for where, data in haystacks.items() for n in needles if n in data]
    assert leaks == []
    assert len(haystacks) > 3
    with db.read_session() as s:  # the ZIP's member was hashed (so its bytes were read)
        assert s.execute(text("SELECT path, status FROM archive_members")).all() == [
            ("../in/x.png", "hashed")
        ]


def _stored_zip(members: dict[str, bytes]) -> bytes:
    """A ZIP with its members stored raw: the marker is in the archive's own bytes too."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
