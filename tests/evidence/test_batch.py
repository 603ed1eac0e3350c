"""`EvidenceRecorder.record_pages` with many pages in one transaction (both engines)."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.db.models import EvidenceRecord
from crawler.db.session import Database
from crawler.engine.storage import Storage
from crawler.evidence.records import EvidenceRecorder, evidence_root
from crawler.evidence.warc import check_warc, iter_records
from crawler.items import PageItem
from tests.support.evidence_seed import new_run, page_item

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"x" * 40).decode()


class _Nowhere:
    def locate(self, host: str, ip: str | None):  # type: ignore[no-untyped-def]
        from crawler.hosting.attribution import HostFacts

        return HostFacts(host=host, ip=ip or "", registered_domain=None, country=None)


def _pages(db: Database, run_id: int, n: int) -> list[PageItem]:
    items = []
    for i in range(n):
        html = f"<html><body><p>page {i}</p><img src='data:image/png;base64,{PNG}'></body></html>"
        items.append(page_item(f"http://127.0.0.2/p{i}/", html, run_id))
    Storage(db, _Nowhere()).store_many([(item, None) for item in items])  # type: ignore[arg-type]
    return items


def _rows(db: Database) -> list[EvidenceRecord]:
    with db.read_session() as s:
        return list(s.execute(select(EvidenceRecord).order_by(EvidenceRecord.id)).scalars())


def test_a_batch_gets_one_row_and_one_warc_per_fetched_page(db: Database, tmp_path: Path) -> None:
    run_id = new_run(db)
    items = _pages(db, run_id, 5)
    unfetched = PageItem(
        url="http://127.0.0.2/never/", final_url=None, status=None, depth=0, run_id=run_id
    )
    batch = [*items[:2], unfetched, *items[2:]]
    recorder = EvidenceRecorder(db, tmp_path, run_id)

    ids = recorder.record_pages(batch)

    assert ids[2] is None and all(i is not None for i in ids[:2] + ids[3:])
    rows = {r.id: r for r in _rows(db)}
    assert sorted(rows) == sorted(i for i in ids if i is not None)
    for item, record_id in zip(batch, ids, strict=True):
        if record_id is None:
            continue
        row = rows[record_id]
        assert row.requested_url == item.url and row.warc_path is not None
        assert f"-{record_id}-" in row.warc_path and f"page-{row.page_id}-" in row.warc_path
        assert len(row.data_media) == 1 and row.data_media[0]["sha256"]
        data = (evidence_root(tmp_path) / row.warc_path).read_bytes()
        assert check_warc(data) == 3
        records = list(iter_records(data))
        text = records[1][1].decode()
        number = item.url.rstrip("/").rsplit("/p", 1)[1]
        assert f"<p>page {number}</p>" in text and "data:image" not in text
        facts = json.loads(records[2][1])
        assert facts["requested_url"] == item.url and facts["data_media"] == row.data_media
        assert gzip.decompress(data)  # one gzip member per record, readable as a whole


def test_a_failed_batch_leaves_no_row_no_file_and_gives_the_text_back(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crawler.evidence.records as records

    run_id = new_run(db)
    items = _pages(db, run_id, 3)
    texts = [item.html for item in items]
    written: list[Path] = []
    real = records.write_page_warc

    def third_fails(path: Path, page: object) -> str:
        if len(written) == 2:
            raise OSError("disk full")
        written.append(path)
        return real(path, page)  # type: ignore[arg-type]

    monkeypatch.setattr(records, "write_page_warc", third_fails)
    recorder = EvidenceRecorder(db, tmp_path, run_id)
    with pytest.raises(OSError):
        recorder.record_pages(items)
    assert len(written) == 2 and not any(p.exists() for p in written)
    assert _rows(db) == [] and [item.html for item in items] == texts

    monkeypatch.setattr(records, "write_page_warc", real)
    assert all(i is not None for i in recorder.record_pages(items))
    assert len(_rows(db)) == 3


def test_a_page_not_stored_fails_the_batch(db: Database, tmp_path: Path) -> None:
    run_id = new_run(db)
    items = _pages(db, run_id, 2)
    missing = page_item("http://127.0.0.2/not-stored/", "<p>x</p>", run_id)
    recorder = EvidenceRecorder(db, tmp_path, run_id)
    with pytest.raises(LookupError, match="not-stored"):
        recorder.record_pages([items[0], missing, items[1]])
    assert _rows(db) == []
