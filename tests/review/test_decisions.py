"""Four-eyes countersigning, one decision applied to related pages, Reject's benign list,
and a forced failure under production config (A-12), through the test client on both engines.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from crawler.db.models import Decision, HashEntry, HashList, ReviewItem
from crawler.db.session import Database
from tests.support.review import Clock, login, make_app, seed_item

EXACT = ("known-a", "known", "sha256", 0)  # an exact match against a known list


def _version(db: Database, item_id: int) -> int:
    with db.read_session() as s:
        item = s.get(ReviewItem, item_id)
        assert item is not None
        return item.version


def _item(db: Database, item_id: int) -> ReviewItem:
    with db.read_session() as s:
        item = s.get(ReviewItem, item_id)
        assert item is not None
        return item


def _decide(
    client: FlaskClient, csrf: str, db: Database, item_id: int, action: str, **extra: object
) -> int:
    data: dict[str, object] = {
        "csrf_token": csrf,
        "version": _version(db, item_id),
        "action": action,
        **extra,
    }
    return client.post(f"/items/{item_id}/decision", data=data).status_code


def _claim(client: FlaskClient, csrf: str, item_id: int) -> None:
    resp = client.post(f"/items/{item_id}/claim", data={"csrf_token": csrf})
    assert "msg=held" not in resp.headers["Location"]


@pytest.fixture
def four_eyes_app(db_url: str, users: dict[str, int], clock: Clock) -> Iterator[Flask]:
    app = make_app(db_url, clock=clock, four_eyes=True)
    yield app
    app.extensions["review_db"].dispose()


def test_four_eyes_confirmation_waits_for_another_leads_countersign(
    four_eyes_app: Flask, db: Database, users: dict[str, int]
) -> None:
    item_id = seed_item(db, media=[{"url": "http://example.net/a.png"}])
    ana, bob, lee = (four_eyes_app.test_client() for _ in range(3))
    csrf = login(ana, "ana")
    _claim(ana, csrf, item_id)
    assert _decide(ana, csrf, db, item_id, "confirm", category="A") == 302
    waiting = _item(db, item_id)
    assert (waiting.status, waiting.decided_by, waiting.category) == (
        "escalated",
        users["ana"],
        "A",
    )
    assert _decide(bob, login(bob, "bob"), db, item_id, "countersign") == 403  # not a lead
    assert _decide(lee, login(lee, "lee"), db, item_id, "countersign") == 302
    done = _item(db, item_id)
    assert (done.status, done.countersigned_by, done.category) == ("confirmed", users["lee"], "A")
    with db.read_session() as s:
        actions = s.execute(select(Decision.action).order_by(Decision.id)).scalars().all()
    assert actions == ["confirm", "countersign"]


def test_a_lead_cannot_countersign_their_own_confirmation(
    four_eyes_app: Flask, db: Database, users: dict[str, int]
) -> None:
    item_id = seed_item(db, media=[{"url": "http://example.net/b.png"}])
    lee, lou = four_eyes_app.test_client(), four_eyes_app.test_client()
    csrf = login(lee, "lee")
    _claim(lee, csrf, item_id)
    assert _decide(lee, csrf, db, item_id, "confirm", category="B") == 302
    assert _decide(lee, csrf, db, item_id, "countersign") == 403
    assert _item(db, item_id).status == "escalated"
    assert _decide(lou, login(lou, "lou"), db, item_id, "countersign") == 302
    assert _item(db, item_id).countersigned_by == users["lou"]


def test_four_eyes_skips_items_with_an_exact_known_match(
    four_eyes_app: Flask, db: Database
) -> None:
    item_id = seed_item(db, media=[{"url": "http://example.net/c.png", "match": EXACT}])
    ana = four_eyes_app.test_client()
    csrf = login(ana, "ana")
    _claim(ana, csrf, item_id)
    assert _decide(ana, csrf, db, item_id, "confirm", category="A") == 302
    assert _item(db, item_id).status == "confirmed"


def _shared(db: Database, sha: str, n: int) -> list[int]:
    """`n` pages showing one exactly matched media (its match is recorded once)."""
    spec = {"url": "http://example.net/same.png", "sha256": sha}
    first = seed_item(db, media=[{**spec, "match": EXACT}])
    return [first] + [seed_item(db, media=[dict(spec)]) for _ in range(n - 1)]


def test_decision_applies_to_listed_related_pages_and_skips_held_ones(
    app: Flask, db: Database, users: dict[str, int]
) -> None:
    first, second, third, held = _shared(db, "ab" * 32, 4)
    unrelated = seed_item(db)
    ana, bob = app.test_client(), app.test_client()
    csrf, bob_csrf = login(ana, "ana"), login(bob, "bob")
    _claim(bob, bob_csrf, held)
    _claim(ana, csrf, first)
    page = ana.get(f"/items/{first}").get_data(as_text=True)
    for other in (second, third, held):
        assert f'value="{other}"' in page  # listed before it is applied
    refused = _decide(ana, csrf, db, first, "confirm", category="A", apply_to=[second, unrelated])
    assert refused == 400 and _item(db, second).status == "pending"
    resp = ana.post(
        f"/items/{first}/decision",
        data={
            "csrf_token": csrf,
            "version": _version(db, first),
            "action": "confirm",
            "category": "A",
            "apply_to": [str(second), str(third), str(held)],
        },
    )
    assert resp.status_code == 302
    assert [_item(db, i).status for i in (first, second, third)] == ["confirmed"] * 3
    assert (_item(db, held).status, _item(db, held).claimed_by) == ("pending", users["bob"])
    with db.read_session() as s:
        decided = s.execute(select(Decision.item_id).order_by(Decision.item_id)).scalars().all()
    assert decided == sorted([first, second, third])


def _benign_hashes(db: Database) -> list[str]:
    with db.read_session() as s:
        return list(
            s.execute(
                select(HashEntry.hash)
                .join(HashList, HashList.id == HashEntry.list_id)
                .where(HashList.name == "analyst-benign", HashList.kind == "benign")
                .where(HashEntry.hash_type == "sha256")
            ).scalars()
        )


def test_reject_adds_media_hashes_to_the_benign_list_only_when_asked(
    app: Flask, db: Database
) -> None:
    kept = seed_item(db, media=[{"url": "http://example.net/k.png", "sha256": "cd" * 32}])
    added = seed_item(
        db,
        media=[
            {"url": "http://example.net/d.png", "sha256": "ef" * 32},
            {"url": "http://example.net/e.png", "sha256": "12" * 32, "match": EXACT},
        ],
    )
    ana = app.test_client()
    csrf = login(ana, "ana")
    _claim(ana, csrf, kept)
    assert _decide(ana, csrf, db, kept, "reject") == 302
    assert _benign_hashes(db) == []
    _claim(ana, csrf, added)
    assert _decide(ana, csrf, db, added, "reject", add_benign="yes") == 302
    # Only the media that did not match a known list exactly: a known hash never turns benign.
    assert _benign_hashes(db) == ["ef" * 32]
    assert _item(db, added).status == "rejected"


def test_forced_failure_shows_a_generic_page_and_records_no_decision(
    app: Flask, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from review import decisions

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("internal detail: /srv/takedown/secret.toml password=hunter2")

    assert app.debug is False and app.config["PROPAGATE_EXCEPTIONS"] is False
    item_id = seed_item(db)
    ana = app.test_client()
    csrf = login(ana, "ana")
    _claim(ana, csrf, item_id)
    before = _version(db, item_id)
    # Fails after the decision row is written, inside the same transaction.
    monkeypatch.setattr(decisions.exposure, "item_left", explode)
    page = ana.post(
        f"/items/{item_id}/decision",
        data={"csrf_token": csrf, "version": before, "action": "confirm", "category": "A"},
    )
    api = ana.post(
        f"/api/v1/items/{item_id}/decision",
        json={"version": before, "action": "reject"},
        headers={"X-CSRF-Token": csrf},
    )
    for resp in (page, api):
        body = resp.get_data(as_text=True)
        assert resp.status_code == 500
        for leak in ("RuntimeError", "hunter2", "secret.toml", "Traceback", "decisions.py"):
            assert leak not in body
    assert "Something went wrong." in page.get_data(as_text=True)
    with db.read_session() as s:
        assert s.execute(select(func.count()).select_from(Decision)).scalar() == 0
    item = _item(db, item_id)
    assert (item.status, item.version) == ("pending", before)


def test_apply_to_cannot_decide_an_item_the_caller_could_not_decide_directly(
    app: Flask, db: Database, users: dict[str, int]
) -> None:
    """bob escalates B (lead-only now); ana's Reject of A with apply_to=B
    leaves B escalated, reports it skipped and audits the refusal on B."""
    from crawler.db.models import AuditEvent

    a, b, c = _shared(db, "5e" * 32, 3)
    ana, bob = app.test_client(), app.test_client()
    csrf, bob_csrf = login(ana, "ana"), login(bob, "bob")
    _claim(bob, bob_csrf, b)
    assert _decide(bob, bob_csrf, db, b, "escalate") == 302
    assert _item(db, b).status == "escalated"
    _claim(ana, csrf, a)
    form = {
        "csrf_token": csrf,
        "version": _version(db, a),
        "action": "reject",
        "apply_to": [str(b), str(c)],
    }
    assert ana.post(f"/items/{a}/decision", data=form).status_code == 302
    after = _item(db, b)
    assert (after.status, after.decided_by) == ("escalated", users["bob"])
    assert [_item(db, i).status for i in (a, c)] == ["rejected", "rejected"]
    with db.read_session() as s:
        on_b = s.execute(
            select(Decision.action).where(Decision.item_id == b).order_by(Decision.id)
        ).scalars()
        assert list(on_b) == ["escalate"]
        events = s.execute(
            select(AuditEvent).where(AuditEvent.action.in_(["decision.reject", "decision.refused"]))
        ).scalars()
        by_action = {(e.action, e.target_id): e.details for e in events}
    assert by_action[("decision.reject", str(a))]["skipped"] == [b]
    assert by_action[("decision.reject", str(a))]["applied_to"] == [c]
    refused = by_action[("decision.refused", str(b))]
    assert refused["apply_to_of"] == a and "escalated" in refused["reason"]
