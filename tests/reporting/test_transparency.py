"""report --kind transparency: sums equal the year's notices and URLs; no personal data."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from crawler.accounts.users import add_user
from crawler.db.models import Notice, NoticeUrl, ReviewItem
from crawler.db.session import Database
from crawler.notices.build import build_notices, mark_removed, mark_sent, release
from crawler.notices.disputes import open_dispute, resolve_dispute
from crawler.notices.routing import Route, Routing
from crawler.reporting.report_html import render_transparency_html
from crawler.reporting.transparency import build_transparency
from tests.support import notice_seed as seed
from tests.support.notice_seed import T0

CFG = seed.settings()
ROUTING = Routing(
    countries={
        "GB": Route("hold"),
        "DE": Route("hotline", "Hotline DE", "reports@hotline-de.example"),
    }
)
PEOPLE = ("alice.analyst", "larry.lead", "lena.lead")
H = timedelta(hours=1)


def _seed(db: Database) -> dict[str, int]:
    with db.session() as s:
        users = {n: add_user(s, n, "analyst" if "analyst" in n else "lead", "pw" * 8).id
                 for n in PEOPLE}  # fmt: skip
        nl = seed.host(s, "nl.example.net", "198.51.100.1", contact="abuse@nl-host.example",
                       asn=64500, as_org="Fast Hosting", country="NL")  # fmt: skip
        de = seed.host(s, "de.example.net", "198.51.100.2", contact="abuse@de-host.example",
                       asn=64501, as_org="Evil <script> write to noc@evil.example",
                       country="DE")  # fmt: skip
        gb = seed.host(s, "gb.example.net", "198.51.100.3", contact="abuse@gb-host.example",
                       asn=64502, as_org="GB Host", country="GB")  # fmt: skip
        # Last year's notice: outside the report.
        old = datetime(2025, 12, 31, 12, tzinfo=UTC)
        seed.item(s, nl, first_seen=old, decided_at=old, created_at=old).decided_by = users[
            "alice.analyst"
        ]
        build_notices(s, CFG, old, routing=ROUTING)
        items = {}
        # de1 confirmed by a trusted list, de2 by alice's earlier decision on nl1's media
        # (both without a person); gb1 decided before decided_via existed (NULL: a person).
        for name, host, cat, person, via in (
            ("nl1", nl, "A", "alice.analyst", "analyst"),
            ("nl2", nl, "A", "alice.analyst", "analyst"),
            ("nl3", nl, "B", "alice.analyst", "analyst"),
            ("de1", de, "A", None, "list:trusted-partner"),
            ("de2", de, "C", None, "media:{nl1}"),
            ("gb1", gb, "B", "alice.analyst", None),
        ):
            row = seed.item(s, host, category=cat, url=f"http://{host.host}/{name}")
            row.decided_by = users[person] if person else None
            row.decided_via = via.format(**items) if via else None
            items[name] = row.id
        build_notices(s, CFG, T0, routing=ROUTING)
    serials = {}
    with db.read_session() as s:
        for n in s.execute(select(Notice).where(Notice.created_at >= T0)).scalars():
            serials[n.country] = n.serial
    with db.session() as s:
        mark_sent(s, [serials["NL"], serials["DE"]], CFG, T0 + H)
        mark_removed(s, items["nl1"], T0 + 3 * H)
        mark_removed(s, items["nl2"], T0 + 5 * H)
        release(s, serials["GB"], T0 + 30 * H)
        upheld = open_dispute(s, serials["NL"], "not CSAM", T0 + 6 * H, url=None)
        de = open_dispute(s, serials["DE"], "lawful", T0 + 6 * H, url="http://de.example.net/de1")
    return {**items, "upheld": upheld[0].id, "de": de[0].id, **users}


def _report_after(db: Database, dispute: str, outcome: str, lead: str) -> dict[str, Any]:
    """The 2026 report of the seeded year, once `lead` has resolved one dispute as `outcome`."""
    ids = _seed(db)
    now = T0 + 40 * H
    with db.session() as s:
        resolve_dispute(s, ids[dispute], outcome, lead, now)
    with db.read_session() as s:
        return build_transparency(s, 2026, now)


def test_sums_equal_the_notices_and_urls_of_the_year(db: Database) -> None:
    report = _report_after(db, "upheld", "upheld", "larry.lead")
    with db.read_session() as s:
        since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        in_year = (Notice.created_at >= since) & (Notice.created_at < until)
        notices = s.execute(select(func.count()).select_from(Notice).where(in_year)).scalar_one()
        urls = s.execute(
            select(func.count()).select_from(NoticeUrl).join(Notice).where(in_year)
        ).scalar_one()

        def urls_via(pattern: str) -> int:
            return s.execute(
                select(func.count())
                .select_from(NoticeUrl)
                .join(Notice)
                .join(ReviewItem, ReviewItem.id == NoticeUrl.item_id)
                .where(in_year, ReviewItem.decided_via.like(pattern))
            ).scalar_one()

        by_list, by_decision = urls_via("list:%"), urls_via("media:%")
    assert report["totals"] == {"notices": notices, "urls": urls} == {"notices": 3, "urls": 6}
    for key in ("by_provider", "by_country", "by_route"):
        assert sum(r["notices"] for r in report[key]) == notices, key
        assert sum(r["urls"] for r in report[key]) == urls, key
    assert sum(r["urls"] for r in report["by_category"]) == urls
    assert sum(report["decided"].values()) == urls
    out = report["outcome"]
    assert out["removed"] + out["withdrawn"] + out["still_up"] == urls
    assert {r["route"]: (r["notices"], r["urls"]) for r in report["by_route"]} == {
        "host": (1, 3), "hotline": (1, 2), "hold": (1, 1),
    }  # fmt: skip
    assert {r["category"]: r["urls"] for r in report["by_category"]} == {"A": 3, "B": 2, "C": 1}
    assert report["decided"] == {"auto": by_list + by_decision, "analyst": urls - 2}
    assert report["auto_by"] == {"trusted_list": by_list, "earlier_decision": by_decision}
    assert (by_list, by_decision) == (1, 1)
    assert (out["removed"], out["withdrawn"], out["still_up"]) == (2, 0, 4)
    # sent at +1 h, removed at +3 h and +5 h: 2 h and 4 h
    assert out["hours_to_removal"] == {"count": 2, "median": 3.0, "p90": 4.0}
    assert report["disputes"] == {"total": 4, "upheld": 1, "withdrawn": 0, "pending": 3}
    assert report["holds"]["notices"] == 1 and report["holds"]["released"] == 1
    assert report["holds"]["hours_held"]["median"] == 30.0
    providers = {r["asn"]: (r["as_org"], r["notices"], r["urls"]) for r in report["by_provider"]}
    assert providers[64500] == ("Fast Hosting", 1, 3)
    assert providers[64501][0] == "Evil <script> write to [address removed]"


def test_withdrawn_disputes_are_counted(db: Database) -> None:
    report = _report_after(db, "de", "withdrawn", "lena.lead")
    assert report["disputes"] == {"total": 4, "upheld": 0, "withdrawn": 1, "pending": 3}
    out = report["outcome"]
    assert (out["removed"], out["withdrawn"], out["still_up"]) == (2, 1, 3)
    assert out["removed"] + out["withdrawn"] + out["still_up"] == report["totals"]["urls"]


def test_cli_json_and_html_without_personal_data(env, cli, db: Database, tmp_path: Path) -> None:
    _seed(db)
    outputs = {}
    for fmt in ("json", "html"):
        target = tmp_path / f"t.{fmt}"
        code, _, err = cli(
            "report", "--kind", "transparency", "--year", "2026", "--format", fmt,
            "--output", str(target),
        )  # fmt: skip
        assert code == 0, err
        outputs[fmt] = target.read_text()
    data = json.loads(outputs["json"])
    assert data["totals"] == {"notices": 3, "urls": 6}
    assert data["auto_by"] == {"trusted_list": 1, "earlier_decision": 1}
    for text in outputs.values():
        assert "@" not in text  # no e-mail address of anyone
        for name in PEOPLE:
            assert name not in text
    html = outputs["html"]
    assert "<svg" in html and "<script" not in html
    assert not re.search(r"(src|href)\s*=|url\(|@import|https?://", html, re.I)
    assert "Evil &lt;script&gt;" in html
    assert render_transparency_html(data).count("<svg") == html.count("<svg") == 5
    assert cli("report", "--kind", "transparency", "--format", "json")[0] == 2
    assert cli("report", "--kind", "yearly", "--year", "2026")[0] == 2


def test_a_page_an_auto_list_confirmed_is_noticed_and_reported_as_auto(
    env, cli, db: Database, tmp_path: Path, monkeypatch
) -> None:
    """End to end through the CLI: an auto list, a stored page with an exact match, notices
    build, then the transparency report counts its URL as decided by a trusted list."""
    from crawler.db.models import Page
    from crawler.matching.matcher import Matcher
    from tests.support.matching import add_media, crawl_step, fake_hashes

    monkeypatch.setenv("TAKEDOWN_OPERATOR_NAME", "Example Hotline")
    monkeypatch.setenv("TAKEDOWN_OPERATOR_CONTACT", "notices@hotline.example")
    known = fake_hashes(None)
    listed = tmp_path / "trusted.csv"
    listed.write_text(f"type,hash,category,reference\nmd5,{known.md5},A,partner-1\n")
    code, _, err = cli("hashlist", "import", str(listed), "--name", "trusted", "--action", "auto")
    assert code == 0, err
    url = "http://127.0.0.1/auto-page"
    media_id = add_media(db, known, [url])
    with db.session() as s:
        host = seed.host(s, "auto.example.net", "198.51.100.9", contact="abuse@auto.example",
                         asn=64509, as_org="Auto Hosting", country="NL")  # fmt: skip
        s.execute(Page.__table__.update().values(host_id=host.id))
    with db.read_session() as s:
        matcher = Matcher.load(s)
    crawl_step(db, matcher, media_id, url)  # what the store pipeline does
    with db.read_session() as s:
        item = s.execute(select(ReviewItem)).scalar_one()
        assert (item.status, item.decided_via, item.decided_by) == (
            "confirmed", "list:trusted", None,
        )  # fmt: skip
    code, _, err = cli("notices", "build")
    assert code == 0, err
    with db.read_session() as s:
        notice_url = s.execute(select(NoticeUrl)).scalar_one()
        assert notice_url.item_id == item.id and notice_url.url == url
        year = s.execute(select(Notice.created_at)).scalar_one().year
    target = tmp_path / "report.json"
    code, _, err = cli(
        "report", "--kind", "transparency", "--year", str(year), "--format", "json",
        "--output", str(target),
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(target.read_text())
    assert data["totals"] == {"notices": 1, "urls": 1}
    assert data["decided"] == {"auto": 1, "analyst": 0}
    assert data["auto_by"] == {"trusted_list": 1, "earlier_decision": 0}
    assert data["by_category"] == [{"category": "A", "urls": 1}]
