"""`export media` and `export candidates`: contract fields, CSV safety, snapshot, audit."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.db.models import AuditEvent, HashEntry, HashList, Match, Media, ReviewItem
from crawler.db.session import Database
from crawler.engine.pipelines.store import StoreConfig, StorePipeline
from crawler.items import MediaItem, PageItem
from crawler.reporting.exports import CANDIDATE_FIELDS, MEDIA_FIELDS, csv_cell, export
from tests.support.media import synthetic_png

# Where a page is hosted and who holds the address: in both exports.
HOST_CONTRACT = {"host", "registered_domain", "ip", "country", "asn", "as_org"}
CONTRACT_MEDIA = {
    *HOST_CONTRACT,
    "page_url",
    "media_url",
    "media_type",
    "status",
    "error",
    "sha256",
    "sha1",
    "md5",
    "pdq",
    "pdq_quality",
    "bytes",
    "width",
    "height",
    "first_seen",
    "last_seen",
    "matches",
}
CONTRACT_CANDIDATES = {
    *HOST_CONTRACT,
    "id",
    "page_url",
    "abuse_contact",
    "priority",
    "status",
    "media",
    "matched_media",
    "matches",
    "first_seen",
    "last_seen",
    "decided_by",
    "decided_at",
    "category",
    "removed_at",
    "decided_via",
    "review_kind",
}
PAYLOADS = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR", '=HYPERLINK("x","y")']


def _pipeline(db_url: str) -> StorePipeline:
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    pipeline = StorePipeline(
        StoreConfig(db_url, rdap_enrich=False), MemoryStatsCollector(get_crawler())
    )
    pipeline.open()
    return pipeline


def _seed(db: Database, pages: int = 3) -> None:
    pipeline = _pipeline(db.url)
    try:
        for n in range(pages):
            url = f"http://site.test/p{n}"
            pipeline.store(PageItem(url=url, final_url=url, status=200, depth=0, ip="127.0.0.2"))
            for k in range(2):
                item = MediaItem(url, f"http://img.test/{n}-{k}.png", status=200,
                                 ip="127.0.0.3", body=synthetic_png(n * 10 + k))  # fmt: skip
                pipeline.store(item)
        bad = MediaItem("http://site.test/p0", "http://img.test/=evil()", error=PAYLOADS[0])
        pipeline.store(bad)
    finally:
        pipeline.close()
    with db.session() as s:
        hl = HashList(name="+known-a", kind="known")
        s.add(hl)
        s.flush()
        media = s.scalars(select(Media).order_by(Media.id)).first()
        assert media is not None
        entry = HashEntry(list_id=hl.id, hash_type="sha256", hash=media.sha256,
                          category="-A", reference="@r-1")  # fmt: skip
        s.add(entry)
        s.flush()
        s.add(Match(media_id=media.id, list_id=hl.id, entry_id=entry.id, match_type="sha256"))
        s.add(ReviewItem(page_id=1, status="pending", priority=100, notes="\tnote"))


def _run(db: Database, kind: str, fmt: str, **kw: object) -> str:
    out = io.StringIO()
    export(db, kind, fmt, out, **kw)  # type: ignore[arg-type]
    return out.getvalue()


def test_media_jsonl_fields_and_values(db: Database) -> None:
    _seed(db)
    records = [json.loads(line) for line in _run(db, "media", "jsonl").splitlines()]
    assert len(records) == 7
    for rec in records:
        second_round = {"vpdq_frames", "duration_s", "archive_member", "archive_sha256"}
        assert set(rec) == CONTRACT_MEDIA | {"suppressed_matches", "benign_matches"} | second_round
        assert rec["first_seen"].endswith("Z") and len(rec["first_seen"]) == 20
    hashed = records[0]
    assert hashed["status"] == "hashed" and hashed["media_type"] == "image"
    assert hashed["host"] == "img.test" and hashed["ip"] == "127.0.0.3"
    assert hashed["registered_domain"] == "img.test"
    assert hashed["matches"] == [{"list": "+known-a", "type": "sha256", "distance": 0,
                                  "category": "-A", "reference": "@r-1", "kind": "known",
                                  "timestamp": None, "match_percent": None}]  # fmt: skip
    assert (hashed["vpdq_frames"], hashed["duration_s"]) == (None, None)  # images
    errored = records[-1]
    assert errored["status"] == "error" and errored["sha256"] is None and errored["matches"] == []


def test_candidates_jsonl_fields(db: Database) -> None:
    _seed(db)
    (rec,) = [json.loads(line) for line in _run(db, "candidates", "jsonl").splitlines()]
    assert set(rec) >= CONTRACT_CANDIDATES
    assert set(rec) - CONTRACT_CANDIDATES == {
        "abuse_contact_source",
        "created_at",
        "tls_verified",
        "page_id",
        "suppressed_matches",
        "benign_matches",
    }
    assert rec["page_id"] == 1 and rec["suppressed_matches"] == []
    assert (rec["media"], rec["matched_media"], rec["status"]) == (3, 1, "pending")
    assert (rec["decided_via"], rec["review_kind"]) == (None, "page")
    assert rec["page_url"] == "http://site.test/p0" and rec["host"] == "site.test"
    assert rec["matches"][0]["list"] == "+known-a"


@pytest.mark.parametrize("kind", ["media", "candidates"])
def test_csv_neutralises_formulas_and_round_trips(db: Database, kind: str) -> None:
    _seed(db)
    text = _run(db, kind, "csv")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    assert tuple(header) == (MEDIA_FIELDS if kind == "media" else CANDIDATE_FIELDS)
    for row in body:
        assert len(row) == len(header)
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    matches = [json.loads(r[header.index("matches")].lstrip("'")) for r in body]
    assert any(m and m[0]["category"] == "-A" for m in matches)
    if kind == "media":
        errors = [r[header.index("error")] for r in body]
        assert "'" + PAYLOADS[0] in errors


@pytest.mark.parametrize("payload", PAYLOADS)
def test_csv_cell_payloads_round_trip(payload: str) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([csv_cell(payload), csv_cell([payload])])
    cell, as_json = next(csv.reader(io.StringIO(buf.getvalue(), newline="")))
    assert cell == "'" + payload
    assert json.loads(as_json) == [payload]  # JSON text starts with '[': left alone


def test_candidate_filters(db: Database) -> None:
    from datetime import timedelta

    from crawler.db.types import utcnow
    from crawler.reporting.exports import CandidateFilter

    _seed(db)
    now = utcnow()

    def ids(flt: CandidateFilter) -> int:
        return len(_run(db, "candidates", "jsonl", flt=flt).splitlines())

    assert ids(CandidateFilter(statuses=("pending",))) == 1
    assert ids(CandidateFilter(statuses=("confirmed", "removed"))) == 0
    assert ids(CandidateFilter(since=now - timedelta(hours=1), until=now + timedelta(1))) == 1
    assert ids(CandidateFilter(until=now - timedelta(hours=1))) == 0
    assert ids(CandidateFilter(country="NL")) == 0


def test_cli_export_writes_file_and_audits(
    env: dict[str, str], cli, db: Database, tmp_path: Path
) -> None:
    _seed(db)
    target = tmp_path / "media.csv"
    code, _out, err = cli("export", "media", "--format", "csv", "--output", str(target))
    assert code == 0, err
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    with db.read_session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "export.media")).one()
    assert event.details == {"format": "csv", "rows": 7, "sha256": digest,
                             "output": str(target), "filters": {}}  # fmt: skip
    code, out, _ = cli("export", "candidates", "--status", "pending", "--since", "2000-01-01")
    assert code == 0 and len(out.splitlines()) == 1
    assert cli("export", "candidates", "--status", "bogus")[0] == 2
    assert cli("export", "candidates", "--since", "yesterday")[0] == 2
    assert cli("export", "media", "--format", "xml")[0] == 2


def test_export_streams_one_snapshot_while_inserts_run(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/hazards.md E-02: rows inserted mid-export are not in it; no row twice, order stable."""
    import crawler.reporting.exports as exports

    _seed(db, pages=6)
    monkeypatch.setattr(exports, "BATCH", 2)
    pipeline = _pipeline(db.url)
    out = io.StringIO()
    session_cm = exports.snapshot(db)
    session = session_cm.__enter__()
    try:
        records = exports.iter_media(session)
        first = [next(records) for _ in range(3)]

        def insert() -> None:
            for n in range(20):
                url = f"http://late.test/{n}"
                pipeline.store(
                    MediaItem(url, url + ".png", status=200, body=synthetic_png(900 + n))
                )

        writer = threading.Thread(target=insert)
        writer.start()
        writer.join()
        rest = list(records)
    finally:
        session_cm.__exit__(None, None, None)
        pipeline.close()
    urls = [r["media_url"] for r in first + rest]
    assert len(urls) == 13 and len(set(urls)) == 13
    assert not any("late.test" in u for u in urls)
    assert len(_run(db, "media", "jsonl").splitlines()) == 33
    del out
