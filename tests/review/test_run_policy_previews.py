"""Previews follow the network rules of the crawl run that saw the media (docs/review.md).

A real `takedown crawl` under a policy that allows 127.0.0.2 records an item whose
preview `review serve` (no `--policy`) now serves; `--policy` still overrides. The media
is a synthetic image served from 127.0.0.2 only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from crawler.db.models import CrawlRun, Observation, ReviewItem
from crawler.db.session import Database
from crawler.media.hashing import hash_media
from review.cli import _preview_config
from tests.support.media import blocks_png
from tests.support.review import login, make_app
from tests.support.sitekit import Web, policy_text, run_crawl


def _crawl(
    db: Database, env: dict[str, str], cli: Any, tmp_path: Path, web: Web
) -> tuple[int, int]:
    """`takedown crawl` of one page with one matching image; (item id, observation id)."""
    png = blocks_png(seed=7)
    hashed = hash_media(png)
    assert hashed.status == "hashed" and (hashed.pdq_quality or 0) >= 50
    hashlist = tmp_path / "known.csv"
    hashlist.write_text(f"type,hash,category,reference\npdq,{hashed.pdq},A,r-1\n")
    assert cli("hashlist", "import", str(hashlist), "--name", "known-a")[0] == 0
    site = web["site-a.test"]
    site.page("/", '<html><body><img src="/a.png"></body></html>')
    site.add("/a.png", png, content_type="image/png")
    site.add("/robots.txt", "", status=404, content_type="text/plain")
    seed = f"http://127.0.0.2:{web.port}/"
    result = run_crawl(env, tmp_path, web, seed, policy=policy_text(web))
    assert result.returncode == 0, result.stderr[-3000:]
    with db.read_session() as s:
        (run,) = s.execute(select(CrawlRun)).scalars()
        assert "127.0.0.2/32" in run.policy_text  # the run recorded its rules
        item_id, obs_id = s.execute(
            select(ReviewItem.id, Observation.id)
            .join(Observation, Observation.page_id == ReviewItem.page_id)
            .where(Observation.run_id == run.id)
        ).one()
    return int(item_id), int(obs_id)


def _preview_status(db_url: str, preview: Any, item_id: int, obs_id: int) -> tuple[int, str]:
    app = make_app(db_url, preview=preview)
    try:
        client = app.test_client()
        login(client, "ana")
        answer = client.get(f"/items/{item_id}/media/{obs_id}/preview")
        return answer.status_code, answer.headers.get("X-Preview-Status") or answer.mimetype
    finally:
        app.extensions["review_db"].dispose()


def test_preview_of_a_runs_media_uses_the_runs_network_rules(
    db: Database, db_url: str, env: dict[str, str], cli: Any, tmp_path: Path,
    users: dict[str, int],
) -> None:  # fmt: skip
    web = Web(["site-a.test"]).start()
    try:
        item_id, obs_id = _crawl(db, env, cli, tmp_path, web)
        # As `review serve` without --policy builds it: the run's rules allow 127.0.0.2.
        assert _preview_status(db_url, _preview_config(None), item_id, obs_id) == (
            200,
            "image/png",
        )
        # `--policy` overrides: a policy with the default network rules refuses it.
        strict = tmp_path / "strict.toml"
        strict.write_text("[network]\nallow_private = false\n")
        assert _preview_status(db_url, _preview_config(strict), item_id, obs_id) == (
            403,
            "refused",
        )
    finally:
        web.stop()


def test_a_run_under_the_default_policy_still_refuses_private_addresses(
    db: Database, db_url: str, users: dict[str, int]
) -> None:
    from tests.support.review import seed_item

    item_id = seed_item(db, media=[{"url": "http://127.0.0.2:9/a.png",
                                    "match": ("known-a", "known", "pdq", 12)}])  # fmt: skip
    with db.session() as s:
        run = CrawlRun(name="default", policy_text="[network]\nallow_private = false\n")
        s.add(run)
        s.flush()
        page_id = s.get(ReviewItem, item_id).page_id  # type: ignore[union-attr]
        obs = s.execute(select(Observation).where(Observation.page_id == page_id)).scalar_one()
        obs.run_id, obs_id = run.id, obs.id
    app = make_app(db_url, preview=_preview_config(None))
    try:
        client = app.test_client()
        login(client, "ana")
        answer = client.get(f"/items/{item_id}/media/{obs_id}/preview")
        assert answer.status_code == 403 and answer.headers["X-Preview-Status"] == "refused"
    finally:
        app.extensions["review_db"].dispose()
