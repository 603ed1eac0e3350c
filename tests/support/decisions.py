"""The "one decision settles every copy" scenario (docs/review.md): a page with one known
image and four unlisted ones, each also on five other pages over two hosts, plus a 70% copy.
Every image is synthetic."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from crawler.db.models import Page, ReviewItem
from crawler.db.session import Database
from crawler.matching.rematch import rematch
from tests.support.matching import add_list, add_media, encode, hashes_of, synthetic

MAIN = "http://127.0.0.1/main"


def copies(n: int) -> list[str]:
    # two hosts
    return [f"http://127.0.0.{1 + k % 2}/repost-{n}-{k}" for k in range(5)]


def build_site(db: Database) -> dict[str, Any]:
    """The known image, four unlisted ones on 1 + 5 pages each, a 70% copy of the first."""
    known = hashes_of(encode(synthetic(100)))
    add_list(db, "graded", [("sha256", known.sha256, "B")])
    images = [synthetic(101 + n) for n in range(4)]
    unlisted = [hashes_of(encode(im)) for im in images]
    known_id = add_media(db, known, [MAIN])
    ids = [add_media(db, h, [MAIN, *copies(n)]) for n, h in enumerate(unlisted)]
    near = hashes_of(encode(images[0].resize((358, 358))))
    near_id = add_media(db, near, ["http://127.0.0.2/resized"])
    rematch(db)
    with db.read_session() as s:
        item = s.execute(
            select(ReviewItem.id).join(Page).where(Page.canonical_url == MAIN)
        ).scalar_one()
    return {"item": item, "known": known_id, "unlisted": ids, "near": near_id}


def api_decide(client: FlaskClient, csrf: str, db: Database, item_id: int, **body: Any) -> Any:
    client.post(f"/items/{item_id}/claim", data={"csrf_token": csrf})
    with db.read_session() as s:
        version = s.get(ReviewItem, item_id).version  # type: ignore[union-attr]
    return client.post(
        f"/api/v1/items/{item_id}/decision",
        json={"version": version, **body},
        headers={"X-CSRF-Token": csrf},
    )
