"""report: figures on seeded data (median/p90 worked out by hand), offline HTML, golden files."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crawler.db.models import CrawlRun
from crawler.db.session import Database
from crawler.notices.build import build_notices, mark_removed, mark_sent
from crawler.reporting.report_html import render_html
from crawler.reporting.reports import build_report, make_window
from tests.support import notice_seed as seed
from tests.support.notice_seed import T0

GOLDEN = Path(__file__).parent / "golden"
HOSTILE = '<script>alert("as")</script> Slow & Co'
CFG = seed.settings()
HALF_HOUR = timedelta(minutes=30)


def _seed(db: Database) -> None:
    with db.session() as s:
        fast, slow = (
            seed.host(s, f"{name}.example.net", ip, contact=f"abuse@{name}.example",
                      asn=asn, as_org=as_org, country=country)
            for name, ip, asn, as_org, country in (
                ("fast", "198.51.100.1", 64500, "Fast Hosting", "NL"),
                ("slow", "198.51.100.2", 64501, HOSTILE, "DE"),
            )
        )  # fmt: skip
        fast_items = [seed.item(s, fast, decided_at=T0 + HALF_HOUR) for _ in range(3)]
        slow_items = [seed.item(s, slow, decided_at=T0 + HALF_HOUR) for _ in range(3)]
        seed.item(s, None, status="pending", decided_at=None)
        old = datetime(2026, 10, 1, tzinfo=UTC)
        outside = seed.item(s, fast, first_seen=old, decided_at=old, created_at=old)
        s.add(CrawlRun(kind="crawl", pages=50, started_at=T0 - timedelta(hours=2)))
        s.add(CrawlRun(kind="crawl", pages=7, started_at=old))
        build_notices(s, CFG, T0 + HALF_HOUR)
        mark_removed(s, outside.id, old + timedelta(days=1))
        ids = [(i.id, h) for i, h in zip(fast_items, (2, 4, 10), strict=True)] + [
            (i.id, h) for i, h in zip(slow_items[:2], (30, 50), strict=True)
        ]
    with db.session() as s:
        mark_sent(s, ["TD-2026-000001", "TD-2026-000002"], CFG, T0 + timedelta(hours=1))
    with db.session() as s:
        for item_id, hours in ids:
            mark_removed(s, item_id, T0 + timedelta(hours=hours))


def _report(db: Database) -> dict:
    with db.read_session() as s:
        return build_report(s, make_window("2026-11-01", "2026-11-08"))


def test_figures_by_hand(db: Database) -> None:
    _seed(db)
    report = _report(db)
    assert report["window"] == {"since": "2026-11-01T00:00:00Z", "until": "2026-11-08T00:00:00Z"}
    assert report["totals"] == {
        "pages_crawled": 50,
        "pages_new": 7,
        "candidates": 7,
        "confirmed": 6,
        "removed": 5,
        "notices": 2,
        "notices_sent": 2,
    }
    fast, slow = (
        next(p for p in report["by_provider"] if p["asn"] == asn) for asn in (64500, 64501)
    )
    # Fast: 2, 4, 10 h -> median 4, p90 = 3rd of 3; from the notice (sent at +1 h): 1, 3, 9.
    assert fast["hours_to_removal"] == {"count": 3, "median": 4.0, "p90": 10.0}
    assert fast["hours_notice_to_removal"] == {"count": 3, "median": 3.0, "p90": 9.0}
    # Slow: 30, 50 h -> median 40, p90 = ceil(1.8) = 2nd of 2; from the notice: 29, 49.
    assert slow["hours_to_removal"] == {"count": 2, "median": 40.0, "p90": 50.0}
    assert slow["hours_notice_to_removal"] == {"count": 2, "median": 39.0, "p90": 49.0}
    assert (slow["confirmed"], slow["removed"], slow["as_org"]) == (3, 2, HOSTILE)
    assert [(r["rank"], r["asn"]) for r in report["league"]] == [(1, 64500), (2, 64501)]
    assert report["by_country"] == [
        {"country": "DE", "candidates": 3, "confirmed": 3, "removed": 2},
        {"country": "NL", "candidates": 3, "confirmed": 3, "removed": 3},
        {"country": None, "candidates": 1, "confirmed": 0, "removed": 0},
    ]
    trend = report["trend"]
    assert trend["bucket"] == "day" and len(trend["points"]) == 7
    assert trend["points"][1] == {
        "start": "2026-11-02",
        "candidates": 7,
        "confirmed": 6,
        "removed": 3,
        "notices": 2,
    }
    assert [p["removed"] for p in trend["points"]] == [0, 3, 1, 1, 0, 0, 0]


def test_html_is_offline_and_escapes_hostile_strings(db: Database) -> None:
    _seed(db)
    html = render_html(_report(db))
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)\s*=|url\(|@import|https?://", html, re.I)
    assert "&lt;script&gt;alert(&#34;as&#34;)&lt;/script&gt; Slow &amp; Co" in html
    assert html.count("<svg") == 3


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TAKEDOWN_TEST_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_output_matches_golden_files_on_every_engine(
    env, cli, db: Database, tmp_path: Path
) -> None:
    _seed(db)
    for fmt in ("json", "html"):
        target = tmp_path / f"report.{fmt}"
        args = (
            "report",
            "--format",
            fmt,
            "--output",
            str(target),
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-08",
        )
        code, _, err = cli(*args)
        assert code == 0, err
        _check_golden(f"report.{fmt}", target.read_text(encoding="utf-8"))
        assert cli(*args)[0] == 0
        assert target.read_text(encoding="utf-8") == (GOLDEN / f"report.{fmt}").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["totals"]["removed"] == 5


def test_bad_dates_exit_2(env, cli) -> None:
    code, _, err = cli("report", "--format", "json", "--since", "yesterday")
    assert code == 2 and "--since" in err and "Traceback" not in err
    code, _, err = cli(
        "report", "--format", "json", "--since", "2026-11-08", "--until", "2026-11-01"
    )
    assert code == 2
