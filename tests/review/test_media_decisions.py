"""One decision settles every copy (docs/review.md), on both engines.

The scenario: a page shows one known image and four unlisted ones; each of the four is
also on five other pages (two hosts). One Confirm with the four ticked confirms all 21
pages; a 70% resized copy of one becomes a confirm-match item; a sixth copy stored later
is confirmed without a person; a lead's revert undoes it. Every image is synthetic.
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select

from crawler.db.models import AuditEvent, HashEntry, HashList, Observation, Page, ReviewItem
from crawler.db.session import Database
from crawler.matching.candidates import ANALYST_CONFIRMED
from crawler.matching.matcher import Matcher
from crawler.matching.rematch import rematch
from crawler.reporting.exports import iter_candidates
from tests.support.decisions import MAIN, api_decide, build_site, copies
from tests.support.matching import (
    Cli,
    add_list,
    add_media,
    crawl_step,
    encode,
    hashes_of,
    review_items,
    synthetic,
)
from tests.support.review import login


def _statuses(db: Database) -> dict[str, tuple[str, str | None, str]]:
    cols = (ReviewItem.status, ReviewItem.decided_via, ReviewItem.review_kind)
    return review_items(db, *cols)


def _pages_of(n: int) -> list[str]:
    return copies(n)


def test_one_confirm_settles_every_copy_then_a_lead_reverts(
    app: Flask, db: Database, cli: Cli, env: dict[str, str]
) -> None:
    site = build_site(db)
    before = _statuses(db)
    assert set(before) == {MAIN}  # only the known image's page waits for a person
    ana = app.test_client()
    csrf = login(ana, "ana")
    ana.post(f"/items/{site['item']}/claim", data={"csrf_token": csrf})
    page = ana.get(f"/items/{site['item']}")
    html = page.get_data(as_text=True)
    assert "Illegal: media 1" in html and "Illegal: media 5" in html
    resp = api_decide(
        ana, csrf, db, site["item"], action="confirm", category="A",
        illegal_media=site["unlisted"],
    )  # fmt: skip
    assert resp.status_code == 200, resp.data
    assert resp.json["settled"] == 20 and resp.json["confirm_match"] == 1
    after = _statuses(db)
    settled = {u: v for u, v in after.items() if v[0] == "confirmed"}
    assert len(settled) == 21
    assert settled[MAIN][1] == "analyst"
    via = f"media:{site['item']}"
    assert {v[1] for u, v in settled.items() if u != MAIN} == {via}
    assert after["http://127.0.0.2/resized"] == ("pending", None, "confirm-match")
    exposure = ana.get("/exposure").get_data(as_text=True)
    assert "Pages your media decisions settled (to date)</dt><dd>20</dd>" in exposure
    assert "Media settled without a view (to date)</dt><dd>20</dd>" in exposure
    # the media's hashes joined analyst-confirmed: 4 media x (md5, sha1, sha256, pdq)
    with db.read_session() as s:
        entries = s.execute(
            select(HashEntry.hash_type, HashEntry.category, HashEntry.reference, HashList.action)
            .join(HashList)
            .where(HashList.name == ANALYST_CONFIRMED)
        ).all()
        assert len(entries) == 16
        assert {(c, r, a) for _, c, r, a in entries} == {("A", f"item:{site['item']}", "auto")}
        audit = s.execute(
            select(AuditEvent.details).where(AuditEvent.action == "review.auto_confirm")
        ).scalars()
        audited = [d for d in audit if d["decided_via"] == via]
        assert sum(len(d["pages"]) for d in audited) == 20
    records = {}
    with db.read_session() as s:
        records = {r["page_url"]: r for r in iter_candidates(s)}
    assert records[copies(0)[0]]["decided_via"] == via
    assert records[copies(0)[0]]["decided_by"] == "list:analyst-confirmed"
    assert records[MAIN]["decided_via"] == "analyst"
    assert records["http://127.0.0.2/resized"]["review_kind"] == "confirm-match"

    # the confirm-match page shows the known media's metadata, with no preview of it
    near_item = _item_id(db, "http://127.0.0.2/resized")
    bob = app.test_client()
    bob_csrf = login(bob, "bob")
    bob.post(f"/items/{near_item}/claim", data={"csrf_token": bob_csrf})
    shown = bob.get(f"/items/{near_item}").get_data(as_text=True)
    assert "Known media" in shown and "Accept match" in shown and "Refuse match" in shown
    assert f"item:{site['item']}" in shown

    # a later crawl stores a sixth copy of the second image: confirmed with no person
    sixth = "http://127.0.0.1/sixth"
    with db.session() as s:
        p = Page(url=sixth, canonical_url=sixth)
        s.add(p)
        s.flush()
        s.add(
            Observation(
                page_id=p.id, media_id=site["unlisted"][1], media_url="http://127.0.0.1/x.png",
                status="hashed",
            )
        )  # fmt: skip
    with db.read_session() as s:
        matcher = Matcher.load(s)
    crawl_step(db, matcher, site["unlisted"][1], sixth)
    assert _statuses(db)[sixth][:2] == ("confirmed", via)

    # a lead reverts the decision: every page it settled goes back, the lists forget it
    code, _, err = cli("hashlist", "revert", ANALYST_CONFIRMED, "--decision", str(site["item"]))
    assert code == 0, err
    final = _statuses(db)
    assert final[MAIN][0] == "confirmed"  # the analyst's own decision stands
    assert [u for u, v in final.items() if v[0] == "confirmed"] == [MAIN]
    assert final["http://127.0.0.2/resized"][0] == "suppressed"
    with db.read_session() as s:
        left = s.execute(
            select(func.count()).select_from(HashEntry).join(HashList)
            .where(HashList.name == ANALYST_CONFIRMED)
        ).scalar_one()  # fmt: skip
        assert left == 0
        reverted = (
            s.execute(select(AuditEvent.details).where(AuditEvent.action == "review.revert"))
            .scalars()
            .all()
        )
        assert sum(len(d["items"]) for d in reverted) == 21
    assert cli("audit", "verify")[0] == 0


def _item_id(db: Database, url: str) -> int:
    with db.read_session() as s:
        return int(
            s.execute(
                select(ReviewItem.id).join(Page).where(Page.canonical_url == url)
            ).scalar_one()
        )


def test_unticked_media_do_not_spread_and_benign_listed_media_are_refused(
    app: Flask, db: Database
) -> None:
    site = build_site(db)
    add_list(db, "ok", [("sha256", hashes_of(encode(synthetic(102))).sha256, None)], kind="benign")
    rematch(db)
    ana = app.test_client()
    csrf = login(ana, "ana")
    refused = api_decide(
        ana, csrf, db, site["item"], action="confirm", category="A",
        illegal_media=site["unlisted"][:2],
    )  # fmt: skip
    assert refused.status_code == 409
    assert "media 3 is on the benign list 'ok'" in refused.json["detail"]
    with db.read_session() as s:
        assert s.execute(select(HashList).where(HashList.name == ANALYST_CONFIRMED)).first() is None
        assert s.get(ReviewItem, site["item"]).status == "pending"  # type: ignore[union-attr]
    wrong = api_decide(
        ana, csrf, db, site["item"], action="confirm", category="A", illegal_media=[site["near"]]
    )
    assert wrong.status_code == 400
    # nothing ticked: the page is confirmed, no media spread
    resp = api_decide(ana, csrf, db, site["item"], action="confirm", category="A", illegal_media=[])
    assert resp.status_code == 200 and resp.json["settled"] == 0
    assert [u for u, v in _statuses(db).items() if v[0] == "confirmed"] == [MAIN]


def test_two_analysts_confirming_the_same_media_write_one_set_of_rows(
    app: Flask, db: Database
) -> None:
    site = build_site(db)
    media = site["unlisted"][0]
    other_page = copies(0)[0]
    with db.session() as s:
        pid = s.execute(select(Page.id).where(Page.canonical_url == other_page)).scalar_one()
        s.add(ReviewItem(page_id=pid, status="pending"))
    other = _item_id(db, other_page)
    ana, bob = app.test_client(), app.test_client()
    csrf, bob_csrf = login(ana, "ana"), login(bob, "bob")
    bob.post(f"/items/{other}/claim", data={"csrf_token": bob_csrf})
    first = api_decide(ana, csrf, db, site["item"], action="confirm", category="A",
                        illegal_media=[media])  # fmt: skip
    assert first.status_code == 200
    # bob holds the other page: it was left to him, and his decision adds no duplicate row
    second = api_decide(bob, bob_csrf, db, other, action="confirm", category="B",
                         illegal_media=[media])  # fmt: skip
    assert second.status_code == 200
    with db.read_session() as s:
        rows = s.execute(
            select(HashEntry.hash_type, func.count(), func.min(HashEntry.reference))
            .join(HashList)
            .where(HashList.name == ANALYST_CONFIRMED)
            .group_by(HashEntry.hash_type)
        ).all()
        assert {t: (n, r) for t, n, r in rows} == {
            t: (1, f"item:{site['item']}") for t in ("md5", "sha1", "sha256", "pdq")
        }
        confirms = s.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "media.confirm")
        ).scalar_one()
        assert confirms == 2


def test_lead_sees_what_an_auto_list_settled_and_reverts_it_in_batches(
    app: Flask, db: Database, cli: Cli, env: dict[str, str]
) -> None:
    site = build_site(db)
    assert cli("hashlist", "set", "graded", "--action", "auto")[0] == 0
    assert _statuses(db)[MAIN][:2] == ("confirmed", "list:graded")
    ana, lee = app.test_client(), app.test_client()
    login(ana, "ana")
    lee_csrf = login(lee, "lee")
    assert ana.get("/settled").status_code == 403
    page = lee.get("/settled").get_data(as_text=True)
    assert "list:graded" in page and "127.0.0.1/main" in page
    exposure = lee.get("/exposure").get_data(as_text=True)
    assert "(lists alone)" in exposure and "Media settled without a view" in exposure
    resp = lee.post("/settled/revert", data={"csrf_token": lee_csrf, "via": "list:graded"})
    assert resp.status_code == 302 and "reverted=1" in resp.headers["Location"]
    assert _statuses(db)[MAIN][:2] == ("pending", None)
    with db.read_session() as s:
        graded = s.execute(select(HashList).where(HashList.name == "graded")).scalar_one()
        assert graded.action == "review"  # it no longer acts alone
    assert lee.post("/settled/revert", data={"csrf_token": lee_csrf, "via": "x"}).status_code == 400
    assert site["item"] == _item_id(db, MAIN)


def test_revert_of_many_pages_runs_one_transaction_per_batch_and_resumes(db: Database) -> None:
    from crawler.matching.media_decisions import revert

    known = hashes_of(encode(synthetic(300)))
    add_list(db, "fast", [("sha256", known.sha256, "A")])
    with db.session() as s:
        s.execute(HashList.__table__.update().values(action="auto"))
    add_media(db, known, [f"http://127.0.0.1/p{n}" for n in range(25)])
    rematch(db)
    assert sum(v[0] == "confirmed" for v in _statuses(db).values()) == 25
    calls: list[int] = []

    def stop_after_two(done: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        revert(db, list_name="fast", batch=10, progress=stop_after_two)
    assert sum(v[0] == "confirmed" for v in _statuses(db).values()) == 5  # two batches done
    summary = revert(db, list_name="fast", batch=10)
    assert (summary.reverted, summary.batches) == (5, 1)
    assert {v[0] for v in _statuses(db).values()} == {"pending"}


def test_concurrent_confirmations_of_one_media_leave_one_row_per_hash(db: Database) -> None:
    import threading

    from crawler.matching.media_decisions import confirm_media

    site = build_site(db)
    media = site["unlisted"][2]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def decide(item: int, category: str) -> None:
        try:
            barrier.wait(timeout=10)
            with db.session() as s:
                confirm_media(s, [media], category, item, ("A", "B", "C"), f"analyst-{item}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=decide, args=(n, c)) for n, c in ((9001, "A"), (9002, "B"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with db.read_session() as s:
        rows = s.execute(
            select(HashEntry.hash_type, HashEntry.reference)
            .join(HashList)
            .where(HashList.name == ANALYST_CONFIRMED)
        ).all()
        assert sorted(t for t, _ in rows) == ["md5", "pdq", "sha1", "sha256"]
        assert len({r for _, r in rows}) == 1  # one decision's reference: one result
        audited = s.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "media.confirm")
        ).scalar_one()
        assert audited == 2
    statuses = _statuses(db)
    assert all(statuses[u][0] == "confirmed" for u in copies(2))
