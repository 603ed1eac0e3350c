"""Login, queue, item page and decisions through the Flask test client, on both engines."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from crawler.db.audit import verify_chain
from crawler.db.models import AuditEvent, Decision, ReviewItem
from crawler.db.session import Database
from tests.support.review import Clock, login, seed_item


def test_login_page_has_contract_names(app: Flask) -> None:
    html = app.test_client().get("/login").get_data(as_text=True)
    assert '<label for="username">Username</label>' in html
    assert '<label for="password">Password</label>' in html
    assert '<button type="submit">Sign in</button>' in html


def test_login_sets_strict_httponly_session_and_logout_revokes(app: Flask) -> None:
    client = app.test_client()
    resp = client.post("/login", data={"username": "ana", "password": "correct horse battery"})
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # served on loopback (the test client's localhost)
    csrf = login(client, "ana")
    token = client.get_cookie("td_session").value
    out = client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 302 and "cookies" in out.headers["Clear-Site-Data"]
    replay = app.test_client()
    replay.set_cookie("td_session", token)
    assert replay.get("/api/v1/me").status_code == 401


def test_cookie_is_secure_host_prefixed_off_loopback(app: Flask) -> None:
    client = app.test_client()
    resp = client.post(
        "/login",
        data={"username": "ana", "password": "correct horse battery"},
        base_url="https://review.example.org",
    )
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("__Host-td_session=") and "Secure" in cookie


def test_wrong_password_and_unknown_user_look_the_same(app: Flask) -> None:
    client = app.test_client()
    a = client.post("/login", data={"username": "ana", "password": "wrong password!"})
    b = client.post("/login", data={"username": "nobody", "password": "wrong password!"})
    assert a.status_code == b.status_code == 401
    for resp in (a, b):
        assert "Wrong user name or password." in resp.get_data(as_text=True)


def test_next_item_claims_highest_priority_and_item_page_has_contract_names(
    app: Flask, db: Database
) -> None:
    low = seed_item(db, priority=1)
    high = seed_item(db, priority=90)
    client = app.test_client()
    csrf = login(client, "ana")
    queue = client.get("/queue").get_data(as_text=True)
    assert '<button type="submit" class="primary">Next item</button>' in queue
    assert queue.index(f"#{high}<") < queue.index(f"#{low}<")
    resp = client.post("/queue/next", data={"csrf_token": csrf})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/items/{high}")
    html = client.get(f"/items/{high}").get_data(as_text=True)
    for name in ("Confirm", "Reject", "Escalate"):
        assert f'value="{name.lower()}">{name}</button>' in html
    assert '<label for="category">Category</label>' in html
    assert '<label for="notes">Notes</label>' in html


def test_confirm_records_one_decision_and_audits(app: Flask, db: Database) -> None:
    item_id = seed_item(db)
    client = app.test_client()
    csrf = login(client, "ana")
    client.post("/queue/next", data={"csrf_token": csrf})
    with db.read_session() as s:
        version = s.get(ReviewItem, item_id).version
    resp = client.post(
        f"/items/{item_id}/decision",
        data={
            "csrf_token": csrf,
            "version": version,
            "action": "confirm",
            "category": "B",
            "notes": "seen",
        },
    )
    assert resp.status_code == 302
    with db.read_session() as s:
        item = s.get(ReviewItem, item_id)
        assert (item.status, item.category, item.claimed_by) == ("confirmed", "B", None)
        actions = set(s.execute(select(AuditEvent.action)).scalars())
        assert {"auth.login", "item.claim", "decision.confirm"} <= actions
        assert verify_chain(s).ok
    again = client.post(
        f"/items/{item_id}/decision",
        data={"csrf_token": csrf, "version": version, "action": "reject"},
    )
    assert again.status_code == 409


def test_confirm_without_category_is_refused(app: Flask, db: Database) -> None:
    item_id = seed_item(db)
    client = app.test_client()
    csrf = login(client, "ana")
    client.post("/queue/next", data={"csrf_token": csrf})
    resp = client.post(
        f"/items/{item_id}/decision", data={"csrf_token": csrf, "version": 2, "action": "confirm"}
    )
    assert resp.status_code == 400


def test_escalate_hands_item_to_leads_only(app: Flask, db: Database) -> None:
    item_id = seed_item(db)
    ana, lee, bob = app.test_client(), app.test_client(), app.test_client()
    csrf = login(ana, "ana")
    ana.post("/queue/next", data={"csrf_token": csrf})
    ana.post(
        f"/items/{item_id}/decision", data={"csrf_token": csrf, "version": 2, "action": "escalate"}
    )
    bob_csrf = login(bob, "bob")
    assert (
        "/items/" not in bob.post("/queue/next", data={"csrf_token": bob_csrf}).headers["Location"]
    )
    lee_csrf = login(lee, "lee")
    resp = lee.post("/queue/next", data={"csrf_token": lee_csrf})
    assert resp.headers["Location"].endswith(f"/items/{item_id}")


def test_state_change_without_csrf_token_is_refused(app: Flask, db: Database) -> None:
    seed_item(db)
    client = app.test_client()
    login(client, "ana")
    assert client.post("/queue/next").status_code == 403
    assert client.post("/queue/next", data={"csrf_token": "forged"}).status_code == 403
    with db.read_session() as s:
        assert (
            s.execute(select(func.count()).where(ReviewItem.claimed_by.is_not(None))).scalar() == 0
        )


def test_cross_origin_post_is_refused(app: Flask, db: Database) -> None:
    client = app.test_client()
    csrf = login(client, "ana")
    resp = client.post(
        "/queue/next", data={"csrf_token": csrf}, headers={"Origin": "http://evil.example"}
    )
    assert resp.status_code == 403


def test_analyst_refused_on_audit_lead_allowed(app: Flask) -> None:
    ana, lee = app.test_client(), app.test_client()
    login(ana, "ana")
    login(lee, "lee")
    assert ana.get("/audit").status_code == 403
    assert ana.get("/api/v1/audit").status_code == 403
    assert lee.get("/audit").status_code == 200


def test_idle_and_absolute_timeouts(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    login(client, "ana")
    clock.advance(29 * 60)
    assert client.get("/api/v1/me").status_code == 200
    clock.advance(31 * 60)
    assert client.get("/api/v1/me").status_code == 401
    login(client, "ana")
    for _ in range(25):  # active all along, but past the absolute limit
        clock.advance(29 * 60)
        client.get("/api/v1/me")
    assert client.get("/api/v1/me").status_code == 401


def test_role_change_revokes_sessions(app: Flask, users: dict[str, int]) -> None:
    ana, ada = app.test_client(), app.test_client()
    login(ana, "ana")
    csrf = login(ada, "ada")
    assert (
        ada.post(
            f"/admin/users/{users['ana']}/role", data={"csrf_token": csrf, "role": "lead"}
        ).status_code
        == 302
    )
    assert ana.get("/api/v1/me").status_code == 401
    assert ana.get("/queue").status_code == 302  # back to the login page


def test_every_response_has_security_headers(app: Flask, db: Database) -> None:
    item_id = seed_item(db)
    client = app.test_client()
    login(client, "lee")
    for path in (
        "/login",
        "/queue",
        f"/items/{item_id}",
        "/exposure",
        "/notices",
        "/audit",
        "/go?url=javascript:alert(1)",
        "/api/v1/me",
        "/openapi.json",
        "/nope",
        "/static/app.js",
    ):
        resp = client.get(path)
        h = resp.headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"], path
        assert (
            "'nonce-" in h["Content-Security-Policy"]
            or path.startswith("/api")
            or path == "/openapi.json"
        )
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["Cache-Control"] == "no-store"
        assert h["Strict-Transport-Security"].startswith("max-age=")


def test_hostile_text_is_escaped_and_bidi_isolated(app: Flask, db: Database) -> None:
    title = "<script>alert(1)</script>{{ 7*7 }}\u202egnp.exe\u200b"
    item_id = seed_item(db, title=title, url="javascript:alert(1)//", host="xn--pypal-4ve.com")
    client = app.test_client()
    login(client, "ana")
    html = client.get(f"/items/{item_id}").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html  # shown as text, never evaluated
    assert "\u202e" not in html and "&lt;U+202E&gt;" in html and "&lt;U+200B&gt;" in html
    assert 'href="javascript:' not in html
    assert "Unicode: <bdi>pаypal.com" in html or "Unicode: <bdi>p" in html


def test_queue_rows_escape_hostile_text(app: Flask, db: Database) -> None:
    title = "<script>alert(1)</script>\u202egnp"
    seed_item(db, title=title, url="http://ex.net/?a=<b>&c='d'", host='e"vil.example', country="N<")
    client = app.test_client()
    login(client, "ana")
    html = client.get("/queue").get_data(as_text=True)
    assert (
        "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;&lt;U+202E&gt;gnp" in html
    )
    assert "?a=&lt;b&gt;&amp;c=&#39;d&#39;" in html and "e&#34;vil.example" in html
    assert "<td>N&lt;</td>" in html and "\u202e" not in html


def test_queue_filter_with_nul_is_a_400_not_a_500(app: Flask) -> None:
    client = app.test_client()
    csrf = login(client, "ana")
    assert client.get("/queue?host=a%00b").status_code == 400
    assert client.post("/queue/next", data={"csrf_token": csrf, "list": "x\x00"}).status_code == 400


def test_warning_page_links_only_http_urls(app: Flask) -> None:
    client = app.test_client()
    login(client, "ana")
    bad = client.get("/go?url=javascript:alert(1)").get_data(as_text=True)
    assert 'href="javascript' not in bad and "shown as text only" in bad
    good = client.get("/go?url=http://example.net/x").get_data(as_text=True)
    assert 'href="http://example.net/x" rel="noopener noreferrer nofollow"' in good


def test_stale_lease_decision_gets_409_and_current_holder_wins(
    app: Flask, db: Database, clock: Clock
) -> None:
    item_id = seed_item(db)
    ana, bob = app.test_client(), app.test_client()
    a_csrf, b_csrf = login(ana, "ana"), login(bob, "bob")
    ana.post("/queue/next", data={"csrf_token": a_csrf})
    clock.advance(16 * 60)  # ana's lease (15 min) expires; bob takes the item
    assert (
        bob.post("/queue/next", data={"csrf_token": b_csrf})
        .headers["Location"]
        .endswith(f"/items/{item_id}")
    )
    late = ana.post(
        f"/items/{item_id}/decision", data={"csrf_token": a_csrf, "version": 2, "action": "reject"}
    )
    assert late.status_code == 409
    ok = bob.post(
        f"/items/{item_id}/decision", data={"csrf_token": b_csrf, "version": 3, "action": "reject"}
    )
    assert ok.status_code == 302
    with db.read_session() as s:
        assert s.execute(select(func.count()).select_from(Decision)).scalar() == 1
        actions = list(
            s.execute(
                select(AuditEvent.action).where(AuditEvent.action.like("decision.%"))
            ).scalars()
        )
        assert "decision.stale" in actions and "decision.reject" in actions


def test_error_pages_are_generic(app: Flask) -> None:
    client = app.test_client()
    login(client, "ana")
    resp = client.get("/items/999999")
    assert resp.status_code == 404 and "Traceback" not in resp.get_data(as_text=True)


def test_queue_filters_country_host_list(app: Flask, db: Database) -> None:
    nl = seed_item(
        db,
        host="nl.example",
        country="NL",
        media=[{"url": "http://nl.example/a.png", "match": ("list-x", "known", "pdq", 3)}],
    )
    de = seed_item(db, host="de.example", country="DE")
    client = app.test_client()
    login(client, "ana")

    def ids(query: str) -> set[int]:
        return {r["id"] for r in client.get(f"/api/v1/queue?{query}").get_json()["items"]}

    assert ids("country=DE") == {de}
    assert ids("host=nl.example") == {nl}
    assert ids("list=list-x") == {nl}
    assert ids("status=confirmed") == set()


def test_cross_site_fetch_metadata_is_refused(app: Flask) -> None:
    client = app.test_client()
    csrf = login(client, "ana")
    resp = client.post(
        "/queue/next", data={"csrf_token": csrf}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert resp.status_code == 403


def test_login_flood_gets_429_not_lockout(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    codes = [
        client.post("/login", data={"username": "ana", "password": "bad password"}).status_code
        for _ in range(6)
    ]
    assert 429 in codes and codes[0] == 401
    assert "Retry-After" in client.post("/login", data={"username": "ana", "password": "x"}).headers


def test_totp_code_is_single_use(app: Flask, db: Database, clock: Clock) -> None:
    from crawler.db.models import User
    from review import totp

    secret = totp.new_secret()
    with db.session() as s:
        s.execute(User.__table__.update().where(User.username == "bob").values(totp_secret=secret))
    code = totp.code_at(secret, totp.step_of(clock.now))
    first = app.test_client().post(
        "/login", data={"username": "bob", "password": "correct horse battery", "code": code}
    )
    again = app.test_client().post(
        "/login", data={"username": "bob", "password": "correct horse battery", "code": code}
    )
    assert first.status_code == 302 and again.status_code == 401


def test_queue_lists_open_statuses_merged_by_priority_then_newest(db: Database) -> None:
    """One UNION ALL of an index-ordered SELECT per status, merged in Python."""
    from review.queue import QueueFilters, list_queue

    made = [
        (seed_item(db, priority=p, status=st), p, st)
        for p, st in ((5, "pending"), (9, "escalated"), (5, "escalated"), (7, "pending"))
    ]
    made.append((seed_item(db, priority=8, status="rejected"), 8, "rejected"))
    by_id = {item: (p, st) for item, p, st in made}
    with db.read_session() as s:
        rows = list_queue(s, QueueFilters())
        page2 = list_queue(s, QueueFilters(), limit=2, offset=2)
        escalated = list_queue(s, QueueFilters(status="escalated"))
    expected = sorted(
        (i for i, _, st in made if st != "rejected"), key=lambda i: (-by_id[i][0], -i)
    )
    assert [r.id for r in rows] == expected
    assert [(r.priority, r.status) for r in rows] == [by_id[i] for i in expected]
    assert [r.id for r in page2] == expected[2:4]
    assert [r.status for r in escalated] == ["escalated", "escalated"]
