"""Matching, candidates, flood guard and rematch, on SQLite and PostgreSQL.

Every image is synthetic, generated here (gradients, shapes, noise); its bytes live only
in memory while hashed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from PIL import Image, ImageEnhance
from sqlalchemy import func, select

from crawler.candidates import MediaEvidence, PageAssessment
from crawler.db.models import (
    AuditEvent,
    HashEntry,
    HashList,
    Match,
    Observation,
    Page,
    ReviewItem,
)
from crawler.db.session import Database
from crawler.exports import export
from crawler.matching import Matcher, MatcherConfig, MediaHashes
from review.items import load_item
from tests.support.matching import (
    Cli,
    add_list,
    add_media,
    crawl_step,
    encode,
    fake_hashes,
    flip,
    hashes_of,
    page_id,
    synthetic,
)

# -- synthetic media -----------------------------------------------------------------------


def crop(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    dx, dy = int(w * share / 2), int(h * share / 2)
    return image.crop((dx, dy, w - dx, h - dy))


TRANSFORMS: dict[str, Callable[[Image.Image], bytes]] = {
    "resize": lambda im: encode(im.resize((300, 300))),
    "recompress-q40": lambda im: encode(im, "JPEG", 40),
    "crop-1pct": lambda im: encode(crop(im, 0.01)),
    "brighter": lambda im: encode(ImageEnhance.Brightness(im).enhance(1.25)),
    "darker": lambda im: encode(ImageEnhance.Brightness(im).enhance(0.8)),
}


# -- database helpers ----------------------------------------------------------------------


def items(db: Database) -> dict[str, tuple[str, int, bool]]:
    """page URL -> (status, priority, no_viewing_needed)."""
    with db.read_session() as session:
        rows = session.execute(
            select(
                Page.canonical_url,
                ReviewItem.status,
                ReviewItem.priority,
                ReviewItem.no_viewing_needed,
            ).join(ReviewItem, ReviewItem.page_id == Page.id)
        )
        return {url: (status, prio, nvn) for url, status, prio, nvn in rows}


def load(db: Database, **config: int) -> Matcher:
    with db.read_session() as session:
        return Matcher.load(session, MatcherConfig(**config))  # type: ignore[arg-type]


# -- matching ------------------------------------------------------------------------------


def test_exact_and_pdq_match_transforms_but_not_unrelated_images(db: Database) -> None:
    original = synthetic(1)
    known = hashes_of(encode(original))
    add_list(db, "known-a", [("sha256", known.sha256, "A"), ("pdq", known.pdq, "B")])
    matcher = load(db)

    exact = matcher.match(known)
    assert [(r.match_type, r.distance, r.category) for r in exact] == [
        ("sha256", 0, "A"),
        ("pdq", 0, "B"),
    ]
    assert exact[0].list_name == "known-a" and exact[0].reference == "ref-known-a-0"
    for name, transform in TRANSFORMS.items():
        variant = hashes_of(transform(original))
        found = matcher.match(variant)
        assert [r.match_type for r in found] == ["pdq"], name
        assert found[0].distance <= 31, (name, found[0].distance)
    for seed in range(2, 8):
        assert matcher.match(hashes_of(encode(synthetic(seed)))) == []


def test_per_list_thresholds(db: Database) -> None:
    base = hashes_of(encode(synthetic(11)))
    add_list(db, "strict", [("pdq", base.pdq, None)], threshold=10)
    add_list(db, "loose", [("pdq", base.pdq, None)], threshold=31)
    matcher = load(db)
    at_20 = fake_hashes(flip(str(base.pdq), 20))
    assert [(r.list_name, r.distance) for r in matcher.match(at_20)] == [("loose", 20)]
    at_8 = fake_hashes(flip(str(base.pdq), 8))
    assert sorted(r.list_name for r in matcher.match(at_8)) == ["loose", "strict"]
    assert matcher.match(fake_hashes(flip(str(base.pdq), 32))) == []


def test_match_batch_is_match_of_each(db: Database) -> None:
    """The store writer matches a batch with one PDQ query: the same results, in order."""
    base = hashes_of(encode(synthetic(11)))
    other = hashes_of(encode(synthetic(12)))
    add_list(db, "strict", [("pdq", base.pdq, "A"), ("md5", other.md5, "B")], threshold=10)
    add_list(db, "loose", [("pdq", base.pdq, None), ("pdq", other.pdq, "C")], threshold=31)
    add_list(db, "fp", [("sha256", other.sha256, None)], kind="benign")
    matcher = load(db)
    media = [
        base,
        other,
        fake_hashes(flip(str(base.pdq), 8)),
        fake_hashes(flip(str(base.pdq), 20)),
        fake_hashes(flip(str(base.pdq), 8), quality=10),  # below the quality gate
        fake_hashes(None, None),
        fake_hashes(flip(str(other.pdq), 5, offset=3)),
        hashes_of(encode(synthetic(13))),
        base,
    ]
    expected = [matcher.match(m) for m in media]
    assert sum(map(len, expected)) >= 8
    assert matcher.match_batch(media) == expected
    assert matcher.match_batch([]) == []


def test_quality_gate_blocks_pdq_but_not_exact(db: Database) -> None:
    flat = hashes_of(encode(Image.new("RGB", (512, 512), (128, 128, 128))))
    assert flat.pdq_quality is not None and flat.pdq_quality < 50
    add_list(db, "known-flat", [("pdq", flat.pdq, None)])
    add_list(db, "known-exact", [("md5", flat.md5.upper().lower(), None)])
    matcher = load(db)
    assert [(r.list_name, r.match_type) for r in matcher.match(flat)] == [("known-exact", "md5")]
    same_pdq_good_quality = fake_hashes(flat.pdq, quality=80)
    assert [r.list_name for r in matcher.match(same_pdq_good_quality)] == ["known-flat"]


def test_matches_are_recorded_idempotently(db: Database) -> None:
    base = hashes_of(encode(synthetic(21)))
    add_list(db, "known-a", [("sha1", base.sha1, "A"), ("pdq", base.pdq, "A")])
    media_id = add_media(db, base, ["http://127.0.0.1/p1"])
    matcher = load(db)
    for _ in range(2):
        crawl_step(db, matcher, media_id, "http://127.0.0.1/p1")
    with db.read_session() as session:
        rows = session.execute(select(Match.match_type, Match.distance)).all()
    assert sorted(rows) == [("pdq", 0), ("sha1", 0)]
    assert items(db) == {"http://127.0.0.1/p1": ("pending", 2_643_001, True)}


# -- candidates ----------------------------------------------------------------------------


def test_benign_suppresses_and_the_suppression_is_recorded(db: Database) -> None:
    logo = hashes_of(encode(synthetic(31)))
    other = hashes_of(encode(synthetic(32)))
    add_list(db, "known-a", [("pdq", logo.pdq, "A"), ("sha256", other.sha256, "C")])
    add_list(db, "benign-logos", [("pdq", flip(str(logo.pdq), 5), None)], kind="benign")
    matcher = load(db)
    logo_id = add_media(db, logo, ["http://127.0.0.1/logo-only"])
    other_id = add_media(db, other, ["http://127.0.0.1/mixed"])
    with db.session() as session:
        session.add(
            Observation(
                page_id=page_id(db, "http://127.0.0.1/mixed"),
                media_id=logo_id,
                media_url="http://127.0.0.1/logo.png",
                status="hashed",
            )
        )
    crawl_step(db, matcher, logo_id, "http://127.0.0.1/logo-only")
    crawl_step(db, matcher, other_id, "http://127.0.0.1/mixed")

    # The logo page is no candidate; the mixed page counts only the unsuppressed media.
    assert items(db) == {"http://127.0.0.1/mixed": ("pending", 2_641_001, True)}
    with db.read_session() as session:
        kinds = session.execute(
            select(HashList.kind, Match.distance)
            .join(Match, Match.list_id == HashList.id)
            .where(Match.media_id == logo_id)
        ).all()
    assert sorted(kinds) == [("benign", 5), ("known", 0)]
    # The export itself (what `takedown export` writes): the suppressed known match is no
    # match, in JSON Lines and CSV alike, for media and candidates.
    by_url = {r["media_url"]: r for r in exported(db, "media", "jsonl")}
    logo_rec = by_url[f"http://127.0.0.1/logo-only/{logo_id}.png"]
    assert logo_rec["matches"] == []
    assert [
        (r["list"], r["distance"], r["suppressed_by"]) for r in logo_rec["suppressed_matches"]
    ] == [("known-a", 0, ["benign-logos"])]
    assert [(r["list"], r["kind"]) for r in logo_rec["benign_matches"]] == [
        ("benign-logos", "benign")
    ]
    other_rec = by_url[f"http://127.0.0.1/mixed/{other_id}.png"]
    assert [r["list"] for r in other_rec["matches"]] == ["known-a"]
    assert other_rec["suppressed_matches"] == []
    on_mixed = by_url["http://127.0.0.1/logo.png"]
    assert on_mixed["matches"] == [] and len(on_mixed["suppressed_matches"]) == 1
    csv_rows = {r["media_url"]: r for r in exported(db, "media", "csv")}
    csv_logo = csv_rows[f"http://127.0.0.1/logo-only/{logo_id}.png"]
    assert json.loads(csv_logo["matches"]) == []
    assert json.loads(csv_logo["suppressed_matches"]) == logo_rec["suppressed_matches"]

    (cand,) = exported(db, "candidates", "jsonl")
    assert cand["page_url"] == "http://127.0.0.1/mixed"
    assert cand["page_id"] == page_id(db, "http://127.0.0.1/mixed")
    assert [m["sha256"] for m in cand["matches"]] == [other.sha256]
    assert cand["matched_media"] == 1
    assert [m["sha256"] for m in cand["suppressed_matches"]] == [logo.sha256]
    (csv_cand,) = exported(db, "candidates", "csv")
    assert json.loads(csv_cand["suppressed_matches"]) == cand["suppressed_matches"]

    # The review app's item page reads the same rule.
    with db.read_session() as session:
        view = load_item(session, cand["id"])
    assert view is not None
    states = {(m.media_id, x.list_name): x.state for m in view.media for x in m.matches}
    assert states == {
        (other_id, "known-a"): "active",
        (logo_id, "known-a"): "suppressed",
        (logo_id, "benign-logos"): "benign",
    }


def exported(db: Database, kind: str, fmt: str) -> list[dict[str, Any]]:
    """The records `takedown export KIND --format FMT` writes (CSV rows as dicts)."""
    out = io.StringIO()
    export(db, kind, fmt, out)  # type: ignore[arg-type]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(out.getvalue())))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_priority_orders_exact_then_distance_then_category_then_count() -> None:
    def page(*media: MediaEvidence) -> int:
        return PageAssessment(dict(enumerate(media))).priority

    exact_c = page(MediaEvidence(exact=True, severity=1))
    near_a_2 = page(MediaEvidence(distance=2, severity=3))
    near_b_2 = page(MediaEvidence(distance=2, severity=2))
    near_b_2_twice = page(MediaEvidence(distance=2, severity=2), MediaEvidence(distance=9))
    near_a_20 = page(MediaEvidence(distance=20, severity=3))
    suppressed = page(MediaEvidence(exact=True, benign=True))
    assert exact_c > near_a_2 > near_b_2_twice > near_b_2 > near_a_20 > suppressed == 0


def test_priority_and_no_viewing_needed_in_the_queue(db: Database) -> None:
    a, b, c = (hashes_of(encode(synthetic(s))) for s in (41, 42, 43))
    add_list(db, "known", [("md5", a.md5, "C"), ("pdq", b.pdq, "A"), ("pdq", c.pdq, "C")])
    matcher = load(db)
    near_b = fake_hashes(flip(str(b.pdq), 4))
    near_c = fake_hashes(flip(str(c.pdq), 4))
    for url, hashes in (("exact", a), ("near-a", near_b), ("near-c", near_c)):
        media_id = add_media(db, hashes, [f"http://127.0.0.1/{url}"])
        crawl_step(db, matcher, media_id, f"http://127.0.0.1/{url}")
    queue = items(db)
    order = sorted(queue, key=lambda u: -queue[u][1])
    assert order == ["http://127.0.0.1/exact", "http://127.0.0.1/near-a", "http://127.0.0.1/near-c"]
    assert [queue[u][2] for u in order] == [True, False, False]


def test_an_unmatched_media_beside_an_exact_match_needs_viewing(db: Database) -> None:
    """'No viewing needed' only when every media on the page is identified by its hash."""
    known, other, logo = (hashes_of(encode(synthetic(s))) for s in (44, 45, 46))
    add_list(db, "known", [("sha256", known.sha256, "A")])
    add_list(db, "benign", [("sha256", logo.sha256, None)], kind="benign")
    matcher = load(db)
    only = "http://127.0.0.1/only-known"
    mixed = "http://127.0.0.1/known-and-other"
    known_id = add_media(db, known, [only, mixed])
    logo_id = add_media(db, logo, [only])  # benign media need no viewing either
    other_id = add_media(db, other, [mixed])  # unmatched: the analyst has to look at this one
    for media_id, url in ((known_id, only), (logo_id, only), (known_id, mixed), (other_id, mixed)):
        crawl_step(db, matcher, media_id, url)
    queue = items(db)
    assert queue[only][2] is True
    assert queue[mixed][2] is False


def test_decided_items_are_never_changed(db: Database) -> None:
    base = hashes_of(encode(synthetic(51)))
    add_list(db, "known", [("sha256", base.sha256, "A")])
    media_id = add_media(db, base, ["http://127.0.0.1/decided"])
    matcher = load(db)
    crawl_step(db, matcher, media_id, "http://127.0.0.1/decided")
    with db.session() as session:
        session.execute(select(ReviewItem)).scalar_one().status = "rejected"
    add_list(db, "benign", [("sha256", base.sha256, None)], kind="benign")
    crawl_step(db, matcher, media_id, "http://127.0.0.1/decided")
    assert items(db)["http://127.0.0.1/decided"][0] == "rejected"


# -- flood guard ---------------------------------------------------------------------------


def test_flood_guard_quarantines_an_entry_and_reports_it(db: Database) -> None:
    base = hashes_of(encode(synthetic(61)))
    add_list(db, "known", [("pdq", base.pdq, "A")])
    matcher = load(db, flood_limit=3)
    urls = [f"http://127.0.0.1/flood-{i}" for i in range(5)]
    for i, url in enumerate(urls):
        media_id = add_media(db, fake_hashes(flip(str(base.pdq), 1, offset=i)), [url])
        crawl_step(db, matcher, media_id, url)

    assert [q.media for q in matcher.quarantines] == [4]
    assert "quarantined" in matcher.quarantines[0].line()
    # Pages opened before the flood was seen are closed; later ones never open.
    assert {u: s for u, (s, _, _) in items(db).items()} == {u: "suppressed" for u in urls[:3]}
    with db.read_session() as session:
        entry = session.execute(select(HashEntry)).scalar_one()
        assert entry.quarantined_at is not None
        actions = session.execute(select(AuditEvent.action)).scalars().all()
        assert "hashlist.entry_quarantined" in actions
        assert session.execute(select(func.count()).select_from(Match)).scalar_one() == 4
    assert load(db).match(fake_hashes(base.pdq)) == []


# -- reload mid-crawl (M-12) ---------------------------------------------------------------


def test_refresh_if_changed_picks_up_a_new_version(db: Database) -> None:
    first = hashes_of(encode(synthetic(71)))
    second = hashes_of(encode(synthetic(72)))
    add_list(db, "known", [("sha256", first.sha256, "A")])
    matcher = load(db)
    with db.read_session() as session:
        assert matcher.refresh_if_changed(session) is False
    old = matcher.snapshot
    add_list(db, "known", [("sha256", second.sha256, "B")])  # re-import: version bumped
    assert matcher.match(second) == []
    with db.read_session() as session:
        assert matcher.refresh_if_changed(session) is True
    assert old.entries.keys() < matcher.snapshot.entries.keys()  # old snapshot untouched
    assert [r.category for r in matcher.match(second)] == ["B"]
    assert [r.category for r in matcher.match(first)] == ["A"]


# -- rematch and list settings on the command line -----------------------------------------


def _seed_crawl_without_lists(db: Database) -> dict[str, MediaHashes]:
    images = {
        name: hashes_of(encode(synthetic(seed)))
        for name, seed in (("a", 81), ("b", 82), ("c", 83), ("d", 84))
    }
    add_media(db, images["a"], ["http://127.0.0.1/pa"])
    add_media(db, fake_hashes(flip(str(images["b"].pdq), 12)), ["http://127.0.0.1/pb"])
    add_media(db, images["c"], ["http://127.0.0.1/pc"])
    add_media(db, images["d"], ["http://127.0.0.1/pd"])
    return images


def test_rematch_after_a_late_import_is_idempotent(
    db: Database, env: dict[str, str], cli: Cli
) -> None:
    images = _seed_crawl_without_lists(db)
    code, _, err = cli("rematch")
    assert code == 0 and "0 opened" in err and items(db) == {}

    add_list(
        db,
        "late",
        [
            ("sha256", images["a"].sha256, "A"),
            ("pdq", images["b"].pdq, "B"),
            ("pdq", images["c"].pdq, "C"),
        ],
    )
    add_list(db, "benign", [("md5", images["c"].md5, None)], kind="benign")
    code, _, err = cli("rematch")
    assert code == 0, err
    assert "2 exact, 2 PDQ, 4 new" in err and "2 opened" in err
    first = items(db)
    assert first == {
        "http://127.0.0.1/pa": ("pending", 2_643_001, True),
        "http://127.0.0.1/pb": ("pending", 1_522_001, False),
    }
    code, _, err = cli("rematch")
    assert code == 0 and "0 new" in err
    assert "0 opened, 0 reopened, 0 closed (suppressed), 0 re-ranked" in err
    assert items(db) == first


def test_disabling_a_list_closes_its_pending_candidates(
    db: Database, env: dict[str, str], cli: Cli
) -> None:
    images = _seed_crawl_without_lists(db)
    add_list(db, "known-a", [("sha256", images["a"].sha256, "A")])
    add_list(db, "known-d", [("pdq", images["d"].pdq, "A")])
    assert cli("rematch")[0] == 0
    assert set(items(db)) == {"http://127.0.0.1/pa", "http://127.0.0.1/pd"}

    code, _, err = cli("hashlist", "disable", "known-a")
    assert code == 0 and "1 closed" in err, err
    assert items(db)["http://127.0.0.1/pa"][0] == "suppressed"
    assert items(db)["http://127.0.0.1/pd"][0] == "pending"
    assert cli("rematch")[2].count("0 opened, 0 reopened, 0 closed") == 1
    assert items(db)["http://127.0.0.1/pa"][0] == "suppressed"

    code, _, err = cli("hashlist", "enable", "known-a")
    assert code == 0 and "1 reopened" in err
    code, _, err = cli("hashlist", "set", "known-d", "--pdq-threshold", "0")
    assert code == 0 and "0 closed" in err  # distance 0 is still within 0
    with db.read_session() as session:
        hash_list = session.execute(select(HashList).where(HashList.name == "known-d")).scalar_one()
        assert (hash_list.pdq_threshold, hash_list.version) == (0, 2)
    assert cli("hashlist", "disable", "nope")[0] == 2
    assert cli("hashlist", "set", "known-d", "--pdq-threshold", "99")[0] == 2
