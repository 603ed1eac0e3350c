"""/notices: hold age, and disputes re-assessed by a second lead (four-eyes) in the app."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from crawler.db.models import AuditEvent, NoticeDispute, ReviewItem
from crawler.db.session import Database
from crawler.notices.build import build_notices
from crawler.notices.disputes import open_dispute
from crawler.notices.routing import Route, Routing
from tests.support import notice_seed as seed
from tests.support.review import Clock, login


def test_held_notices_show_their_age(app: Flask, db: Database, clock: Clock) -> None:
    with db.session() as s:
        h = seed.host(s, "gb.example.net", "198.51.100.1", contact="abuse@h.example", country="GB")
        seed.item(s, h)
        routing = Routing(countries={"GB": Route("hold")})
        build_notices(s, seed.settings(), clock.now - timedelta(hours=50), routing=routing)
    client = app.test_client()
    login(client, "ana")
    page = client.get("/notices").get_data(as_text=True)
    api = client.get("/api/v1/notices").get_json()
    assert [(n["route"], n["recipient"], n["kind"]) for n in api] == [
        ("hold", "abuse@h.example", "takedown")
    ]
    assert "(held 2d 2h)" in page and "<td>hold</td>" in page, page[-1500:]


def test_a_second_lead_resolves_a_dispute_in_the_app(
    app: Flask, db: Database, users: dict[str, int], clock: Clock
) -> None:
    with db.session() as s:
        h = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@h.example")
        item = seed.item(s, h, url="http://a.example.net/x")
        item.decided_by = users["lee"]
        item_id = item.id
        notice = build_notices(s, seed.settings(), clock.now).created[0]
        (dispute,) = open_dispute(s, notice.serial, "<b>not ours</b>", clock.now)
        dispute_id = dispute.id
    analyst = app.test_client()
    csrf = login(analyst, "ana")
    assert "Disputes waiting" not in analyst.get("/notices").get_data(as_text=True)
    form = {"csrf_token": csrf, "dispute": str(dispute_id), "outcome": "withdrawn"}
    assert analyst.post("/disputes/resolve", data=form).status_code == 403
    decider = app.test_client()
    form["csrf_token"] = login(decider, "lee")
    page = decider.get("/notices").get_data(as_text=True)
    assert "Disputes waiting for a second lead" in page
    assert "&lt;b&gt;not ours&lt;/b&gt;" in page and "<b>not ours" not in page
    refused = decider.post("/disputes/resolve", data=form)
    assert refused.status_code == 409 and "four-eyes" in refused.get_data(as_text=True)
    second = app.test_client()
    form["csrf_token"] = login(second, "lou")
    assert second.post("/disputes/resolve", data=form).status_code == 302
    with db.read_session() as s:
        d = s.get(NoticeDispute, dispute_id)
        assert d is not None and (d.outcome, d.resolved_by) == ("withdrawn", users["lou"])
        assert s.get(ReviewItem, item_id).status == "rejected"  # type: ignore[union-attr]
        actions = s.execute(
            select(AuditEvent.actor).where(AuditEvent.action == "dispute.withdrawn")
        ).scalars()
        assert list(actions) == ["lou"]
