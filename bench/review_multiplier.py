"""How many pages one human decision settles, and how fast a decision spreads.

Builds a "repost" site in the database (media that exist only as hashes, no images):
`--media` illegal media, each on `--copies` pages; a `--near-share` of those pages show a
near copy (PDQ a few bits away) instead. Every page also shows a known image of its own
(an exact match on a `review` list), so every page is a candidate in the queue. Then an
analyst works the queue through the review app's JSON API (in-process Flask client) twice,
on two fresh databases built alike:

* page by page: each page is confirmed on its own, nothing ticked (`illegal_media: []`);
* by media: the default ticks plus every unlisted media, so each decision spreads.

It prints pages settled per human decision and reveals per confirmed page (a reveal is
counted for each media on a human-decided page that no list identified exactly: the look
an analyst must take), for both. Then, separately, the time for one decision to spread to
`--spread` stored pages showing its media, on each engine.

    python bench/review_multiplier.py [--media 20] [--copies 20] [--near-share 0.05]
                                      [--spread 10000] [--engines sqlite,pg]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.db.migrate import upgrade  # noqa: E402
from crawler.db.models import Media, Observation, Page, ReviewItem  # noqa: E402
from crawler.db.session import Database  # noqa: E402
from crawler.matching.media_decisions import confirm_media  # noqa: E402
from crawler.matching.rematch import rematch  # noqa: E402
from crawler.media.hashlists import HashRow, import_rows  # noqa: E402

PG_ADMIN = "postgresql+psycopg://root@127.0.0.1:5432/test"
PASSWORD = "bench password 0123"


def _digest(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def _pdq(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def _flip(pdq: str, bits: int) -> str:
    value = int(pdq, 16)
    for k in range(bits):
        value ^= 1 << (k * 37 % 256)
    return f"{value:064x}"


def _media_row(label: str, pdq: str | None) -> dict[str, Any]:
    d = _digest(label)
    return {
        "sha256": d, "sha1": d[:40], "md5": d[:32], "pdq": pdq, "pdq_quality": 100 if pdq else None,
        "bytes": 1000, "media_type": "image", "format": "PNG", "width": 64, "height": 64,
    }  # fmt: skip


def build_site(db: Database, media: int, copies: int, near_share: float, seed: int = 7) -> None:
    rng = random.Random(seed)
    near_per = round(copies * near_share)
    with db.session() as s:
        conn = s.connection()
        known_rows: list[HashRow] = []
        for i in range(media):
            pdq = _pdq(rng)
            conn.execute(insert(Media), [_media_row(f"m{i}", pdq)])
            for k in range(near_per):
                conn.execute(insert(Media), [_media_row(f"near{i}-{k}", _flip(pdq, 8 + k))])
            for k in range(copies):
                conn.execute(insert(Media), [_media_row(f"known{i}-{k}", None)])
                known_rows.append(HashRow("sha256", _digest(f"known{i}-{k}"), "B", f"k{i}-{k}"))
        ids = {str(h): int(i) for h, i in s.execute(select(Media.sha256, Media.id))}
        for i in range(media):
            for k in range(copies):
                url = f"http://127.0.0.{1 + k % 2}/g{i}/p{k}"
                page_id = conn.execute(
                    insert(Page).values(url=url, canonical_url=url).returning(Page.id)
                ).scalar_one()
                shown = f"near{i}-{k}" if k < near_per else f"m{i}"
                obs = [
                    (ids[_digest(f"known{i}-{k}")], f"{url}/known.png"),
                    (ids[_digest(shown)], f"{url}/shown.png"),
                ]
                conn.execute(
                    insert(Observation),
                    [
                        {"page_id": page_id, "media_id": m, "media_url": u, "status": "hashed"}
                        for m, u in obs
                    ],
                )
        import_rows(s, "graded", known_rows, kind="known")
    rematch(db)


def _client(url: str) -> Any:
    from crawler.accounts.users import add_user
    from review.app import create_app

    db = Database(url)
    with db.session() as s:
        add_user(s, "ana", "analyst", PASSWORD)
    db.dispose()
    app = create_app(test_config={"db_url": url, "secret_key": "bench-secret-0123456789abcdef"})
    client = app.test_client()
    client.post("/login", data={"username": "ana", "password": PASSWORD})
    page = client.get("/queue").get_data(as_text=True)
    csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
    return app, client, {"X-CSRF-Token": csrf}


def work_queue(url: str, by_media: bool) -> dict[str, float]:
    app, client, headers = _client(url)
    decisions = reveals = 0
    while True:
        resp = client.post("/api/v1/queue/next", json={}, headers=headers)
        if resp.status_code == 204:
            break
        item_id = resp.json["item_id"]
        item = client.get(f"/api/v1/items/{item_id}").json
        unlisted = [
            m["media_id"]
            for m in item["media"]
            if m["media_id"] is not None
            and not any(
                x["list_kind"] == "known" and x["match_type"] != "pdq" for x in m["matches"]
            )
        ]
        reveals += len(unlisted)
        body: dict[str, Any] = {"action": "confirm", "version": item["version"], "category": "A"}
        if by_media:
            exact = [m["media_id"] for m in item["media"] if m["media_id"] is not None]
            body["illegal_media"] = sorted(set(exact) | set(unlisted))
        else:
            body["illegal_media"] = []
        done = client.post(f"/api/v1/items/{item_id}/decision", json=body, headers=headers)
        assert done.status_code == 200, done.data
        decisions += 1
    db = app.extensions["review_db"]
    with db.read_session() as s:
        confirmed = s.execute(
            select(func.count()).where(ReviewItem.status == "confirmed")
        ).scalar_one()
    db.dispose()
    return {
        "decisions": decisions,
        "confirmed": confirmed,
        "reveals": reveals,
        "pages_per_decision": confirmed / max(decisions, 1),
        "reveals_per_page": reveals / max(confirmed, 1),
    }


def time_spread(url: str, pages: int) -> tuple[float, int]:
    """One media on `pages` stored pages (plus 100 unrelated media): time to confirm it."""
    db = Database(url)
    with db.session() as s:
        conn = s.connection()
        rng = random.Random(3)
        conn.execute(insert(Media), [_media_row(f"o{n}", _pdq(rng)) for n in range(100)])
        media_id = conn.execute(
            insert(Media).values(**_media_row("spread", _pdq(rng))).returning(Media.id)
        ).scalar_one()
        page_rows = [{"url": f"http://127.0.0.1/s{n}", "canonical_url": f"http://127.0.0.1/s{n}"}
                     for n in range(pages)]  # fmt: skip
        conn.execute(insert(Page), page_rows)
        page_ids = s.execute(select(Page.id).order_by(Page.id)).scalars().all()
        conn.execute(
            insert(Observation),
            [{"page_id": p, "media_id": media_id, "media_url": "http://127.0.0.1/x.png",
              "status": "hashed"} for p in page_ids],
        )  # fmt: skip
        item_id = conn.execute(
            insert(ReviewItem)
            .values(page_id=page_ids[0], status="confirmed")
            .returning(ReviewItem.id)
        ).scalar_one()
    started = time.perf_counter()
    with db.session() as s:
        spread = confirm_media(s, [media_id], "A", item_id, ("A", "B", "C"), "bench")
    seconds = time.perf_counter() - started
    db.dispose()
    return seconds, spread.changes.auto_confirmed


@contextmanager
def fresh(engine: str) -> Iterator[str]:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            db = Database(url)
            upgrade(db)
            db.dispose()
            yield url
        return
    name = f"bench_mult_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        db = Database(url)
        upgrade(db)
        db.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=int, default=20)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--near-share", type=float, default=0.05)
    parser.add_argument("--spread", type=int, default=10_000)
    parser.add_argument("--engines", default="sqlite,pg")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    print(
        f"site: {args.media} media x {args.copies} copies, near share {args.near_share} "
        f"({args.media * args.copies} pages)"
    )
    for mode, by_media in (("page by page", False), ("by media", True)):
        with fresh(engines[0]) as url:
            build_site(Database(url), args.media, args.copies, args.near_share)
            r = work_queue(url, by_media)
        print(
            f"{mode:>12}: {r['decisions']:.0f} decisions, {r['confirmed']:.0f} pages confirmed, "
            f"{r['pages_per_decision']:.1f} pages settled per human decision, "
            f"{r['reveals_per_page']:.2f} reveals per confirmed page"
        )
    for engine in engines:
        with fresh(engine) as url:
            seconds, settled = time_spread(url, args.spread)
        print(
            f"spread on {engine}: one decision confirmed {settled} stored pages in {seconds:.2f} s"
        )


if __name__ == "__main__":
    main()
