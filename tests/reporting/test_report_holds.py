"""report: notices held for law enforcement at the window's end, with their age."""

from __future__ import annotations

from datetime import timedelta

from crawler.db.session import Database
from crawler.notices.build import build_notices, release
from crawler.notices.routing import Route, Routing
from crawler.reporting.report_html import render_html
from crawler.reporting.reports import build_report, make_window
from tests.support import notice_seed as seed
from tests.support.notice_seed import T0


def test_held_notices_and_their_age_at_the_window_end(db: Database) -> None:
    hold = Routing(default=Route("hold"))
    with db.session() as s:
        a = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@a.example", country="GB")
        b = seed.host(s, "b.example.net", "198.51.100.2", contact="abuse@b.example", country="IE")
        seed.item(s, a)
        seed.item(s, b)
        created = build_notices(s, seed.settings(), T0, routing=hold).created
        first, second = sorted(n.serial for n in created)
        release(s, second, T0 + timedelta(hours=10))
    with db.read_session() as s:
        report = build_report(s, make_window("2026-11-01", "2026-11-04T11:00:00"))
        before = build_report(s, make_window("2026-11-01", "2026-11-02T15:00:00"))
    holds = report["holds"]
    assert (holds["count"], holds["oldest_hours"]) == (1, 50.0)
    assert holds["notices"] == [
        {"serial": first, "country": "GB", "held_at": "2026-11-02T09:00:00Z", "hours": 50.0}
    ]
    assert before["holds"]["count"] == 2  # both still held 6 hours in
    html = render_html(report)
    assert "Held for law enforcement" in html and f'<td class="name">{first}</td>' in html
