"""TAKEDOWN_BENIGN_FOUR_EYES: a Reject's benign-listing waits for a second person (another
analyst rejecting a page with the same media, or a lead on /benign-proposals); both
engines."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select

from crawler.config import load_settings
from crawler.db.models import (
    AuditEvent,
    BenignProposal,
    HashEntry,
    HashList,
    Match,
    Media,
    Page,
    ReviewItem,
)
from crawler.db.session import Database
from crawler.matching.candidates import ANALYST_BENIGN
from review.config import ReviewConfig
from tests.support.decisions import MAIN, api_decide, build_site, copies
from tests.support.review import Clock, login, make_app


@pytest.fixture
def app4(db_url: str, users: dict[str, int], clock: Clock) -> Iterator[Flask]:
    application = make_app(db_url, clock=clock, benign_four_eyes=True)
    yield application
    application.extensions["review_db"].dispose()


def _benign(db: Database) -> list[tuple[str, str | None]]:
    with db.read_session() as s:
        rows = s.execute(
            select(HashEntry.hash_type, HashEntry.reference)
            .join(HashList, HashList.id == HashEntry.list_id)
            .where(HashList.name == ANALYST_BENIGN)
        )
        return [(t, r) for t, r in rows]


def _benign_media(db: Database) -> set[int]:
    """Media whose sha256 is on analyst-benign."""
    with db.read_session() as s:
        rows = s.execute(
            select(Media.id)
            .join(HashEntry, HashEntry.hash == Media.sha256)
            .join(HashList, HashList.id == HashEntry.list_id)
            .where(HashList.name == ANALYST_BENIGN, HashEntry.hash_type == "sha256")
        )
        return {int(m) for m in rows.scalars()}


def _open_item(db: Database, url: str) -> int:
    """A pending review item on a stored page (one showing the same media as MAIN)."""
    with db.session() as s:
        page = s.execute(select(Page.id).where(Page.canonical_url == url)).scalar_one()
        item = ReviewItem(page_id=page, status="pending")
        s.add(item)
        s.flush()
        return item.id


def _pending(db: Database) -> dict[int, int]:
    """media id -> proposer of each pending proposal."""
    with db.read_session() as s:
        rows = s.execute(
            select(BenignProposal.media_id, BenignProposal.proposed_by).where(
                BenignProposal.agreed_at.is_(None)
            )
        )
        return {int(m): int(u) for m, u in rows}


def _events(db: Database, action: str) -> list[tuple[str, dict]]:
    with db.read_session() as s:
        rows = s.execute(
            select(AuditEvent.actor, AuditEvent.details)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
        return [(a, d or {}) for a, d in rows]


def test_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAKEDOWN_BENIGN_FOUR_EYES", "true")
    settings = load_settings()
    assert settings.benign_four_eyes is True
    assert ReviewConfig.from_settings(settings).benign_four_eyes is True


def test_benign_listing_waits_for_a_second_person(
    app4: Flask, db: Database, users: dict[str, int]
) -> None:
    site = build_site(db)
    unlisted = site["unlisted"]
    ana, bob, lee = app4.test_client(), app4.test_client(), app4.test_client()
    csrf_a, csrf_b, csrf_l = login(ana, "ana"), login(bob, "bob"), login(lee, "lee")

    # ana rejects the page and asks for its media to be benign-listed: only proposals.
    resp = api_decide(ana, csrf_a, db, site["item"], action="reject", add_benign=True)
    assert resp.status_code == 200, resp.json
    assert (resp.json["benign_proposed"], resp.json["benign_joined"]) == (4, 0)
    assert _benign(db) == []
    assert _pending(db) == {m: users["ana"] for m in unlisted}  # the known media is not
    proposed = _events(db, "benign.proposed")
    assert proposed == [("ana", {"list": ANALYST_BENIGN, "media": sorted(unlisted)})]

    # ana herself rejecting another page with the same media does not agree.
    own = _open_item(db, copies(0)[0])
    assert api_decide(ana, csrf_a, db, own, action="reject").status_code == 200
    assert _benign(db) == [] and len(_pending(db)) == 4

    # bob rejects a page showing media unlisted[1]: he agrees, its hashes join the list.
    other = _open_item(db, copies(1)[0])
    resp = api_decide(bob, csrf_b, db, other, action="reject")
    assert resp.status_code == 200 and resp.json["benign_joined"] == 1
    assert _benign_media(db) == {unlisted[1]}
    references = {r for _, r in _benign(db)}
    assert references == {f"item:{site['item']}"}  # the proposal's page
    assert set(_pending(db)) == set(unlisted) - {unlisted[1]}
    agreed = _events(db, "benign.agreed")
    assert [(a, d["media"], d["on_item"]) for a, d in agreed] == [("bob", [unlisted[1]], other)]
    # The decision spread at once: the stored media matches the benign list now.
    with db.read_session() as s:
        benign_hits = s.scalar(
            select(func.count())
            .select_from(Match)
            .join(HashList, HashList.id == Match.list_id)
            .where(Match.media_id == unlisted[1], HashList.name == ANALYST_BENIGN)
        )
    assert benign_hits

    # A lead agrees on the proposals page; an analyst may not open it.
    assert ana.get("/benign-proposals").status_code == 403
    page = lee.get("/benign-proposals").get_data(as_text=True)
    with db.read_session() as s:
        proposal = s.execute(
            select(BenignProposal.id).where(BenignProposal.media_id == unlisted[2])
        ).scalar_one()
    assert f"Agree with proposal {proposal}" in page
    resp = lee.post(
        "/benign-proposals/agree", data={"proposal": str(proposal), "csrf_token": csrf_l}
    )
    assert resp.status_code == 302
    assert _benign_media(db) == {unlisted[1], unlisted[2]}
    assert _events(db, "benign.agreed")[-1][0] == "lee"
    # Agreeing twice: no longer pending.
    again = lee.post(
        "/benign-proposals/agree", data={"proposal": str(proposal), "csrf_token": csrf_l}
    )
    assert again.status_code == 409


def test_nobody_agrees_with_their_own_proposal(
    app4: Flask, db: Database, users: dict[str, int]
) -> None:
    site = build_site(db)
    lee = app4.test_client()
    csrf = login(lee, "lee")
    # The lead proposes (rejecting the page with benign-listing) ...
    resp = api_decide(lee, csrf, db, site["item"], action="reject", add_benign=True)
    assert resp.status_code == 200, resp.json
    assert set(_pending(db).values()) == {users["lee"]}
    page = lee.get("/benign-proposals").get_data(as_text=True)
    assert "Agree with proposal" not in page and "your proposal" in page
    with db.read_session() as s:
        proposal = s.execute(select(BenignProposal.id).limit(1)).scalar_one()
    # ... and cannot agree with it, on the page or by rejecting a copy.
    refused = lee.post(
        "/benign-proposals/agree", data={"proposal": str(proposal), "csrf_token": csrf}
    )
    assert refused.status_code == 403
    copy = _open_item(db, copies(0)[0])
    assert api_decide(lee, csrf, db, copy, action="reject").status_code == 200
    assert _benign(db) == [] and len(_pending(db)) == 4
    assert _events(db, "benign.agreed") == []


def test_without_the_setting_reject_benign_lists_at_once(app: Flask, db: Database) -> None:
    site = build_site(db)
    ana = app.test_client()
    csrf = login(ana, "ana")
    resp = api_decide(ana, csrf, db, site["item"], action="reject", add_benign=True)
    assert resp.status_code == 200
    assert _benign_media(db) == set(site["unlisted"])
    assert _pending(db) == {}
    assert MAIN
