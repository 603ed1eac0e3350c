"""Seeding evidence through the real store and evidence pipelines (no reactor, no network)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scrapy.utils.test import get_crawler
from sqlalchemy import select

from crawler.db.audit import Event, record
from crawler.db.models import CrawlRun, Decision, Page, ReviewItem, User
from crawler.db.session import Database
from crawler.engine.pipelines.evidence import EvidencePipeline
from crawler.engine.pipelines.store import StorePipeline
from crawler.items import MediaItem, PageItem
from tests.support.media import synthetic_png

POLICY = "[scope]\nmax_depth = 3\n"
PAGE = "http://127.0.0.2/gallery/"


@dataclass
class Crawled:
    page_id: int
    run_id: int
    store: StorePipeline
    evidence: EvidencePipeline


def new_run(db: Database) -> int:
    with db.session() as s:
        run = CrawlRun(name="evidence-test", policy_text=POLICY, software_version="0.1.0")
        s.add(run)
        s.flush()
        return run.id


def pipelines(db_url: str, home: Path, run_id: int) -> tuple[StorePipeline, EvidencePipeline]:
    settings = {"TAKEDOWN_DB": db_url, "TAKEDOWN_RDAP_ENRICH": False, "TAKEDOWN_RUN_ID": run_id}
    crawler = get_crawler(settings_dict={**settings, "TAKEDOWN_HOME": str(home)})
    store = StorePipeline.from_crawler(crawler)
    store.open()
    evidence = EvidencePipeline.from_crawler(crawler)
    evidence.open()
    return store, evidence


def page_item(url: str, html: str, run_id: int) -> PageItem:
    return PageItem(
        url=url,
        final_url=url + "index.html",
        status=200,
        depth=0,
        run_id=run_id,
        content_sha256=hashlib.sha256(html.encode()).hexdigest(),
        ip="127.0.0.2",
        redirect_chain=[url, url + "index.html"],
        headers={"Content-Type": "text/html; charset=utf-8", "Server": "test"},
        html=html,
        tls_fingerprint="ab" * 32,
        tls_issuer="CN=Synthetic Test CA",
        fetched_at=datetime(2026, 11, 24, 9, 30, tzinfo=UTC),
    )


def crawl(
    db: Database,
    db_url: str,
    home: Path,
    html: str,
    media: list[tuple[str, bytes]],
    url: str = PAGE,
) -> Crawled:
    """Store and record one page and its media; the first media arrives before the page."""
    run_id = new_run(db)
    store, evidence = pipelines(db_url, home, run_id)
    items = [MediaItem(url, m_url, run_id=run_id, status=200, ip="127.0.0.3",
                       declared_type="image/png", body=body) for m_url, body in media]  # fmt: skip
    page = page_item(url, html, run_id)
    order: list[PageItem | MediaItem] = [*items[:1], page, *items[1:]]
    for item in order:
        store.store(item)
        evidence.record(item)
    with db.read_session() as s:
        page_id = s.execute(select(Page.id).where(Page.url == url)).scalar_one()
    return Crawled(int(page_id), run_id, store, evidence)


def decide(db: Database, page_id: int) -> int:
    """A confirmed review item with its decision and audit events (an unrelated one between)."""
    with db.session() as s:
        user = User(username="alice", password_hash="x", role="analyst")
        item = ReviewItem(page_id=page_id, status="confirmed", category="A")
        s.add_all([user, item])
        s.flush()
        record(s, Event("alice", "item.claimed", "review_item", item.id))
        record(s, Event("bob", "notice.created", "notice", 99, {"unrelated": True}))
        s.add(Decision(item_id=item.id, user_id=user.id, action="confirm", category="A",
                       notes="matches known list", item_version=1))  # fmt: skip
        record(s, Event("alice", "decision.confirm", "review_item", item.id, {"category": "A"}))
        record(s, Event("alice", "item.viewed", "review_item", item.id))
        return item.id


GALLERY_HTML = "<html><head><title>Gallery</title></head><body><img src='a.png'><img src='b.png'></body></html>"


def crawled_page(db: Database, db_url: str, env: dict[str, str]) -> int:
    """A crawled gallery page with two synthetic PNGs, decided; returns the page id."""
    home = Path(env["TAKEDOWN_HOME"])
    media = [
        ("http://127.0.0.3/a.png", synthetic_png(1)),
        ("http://127.0.0.3/b.png", synthetic_png(2)),
    ]
    done = crawl(db, db_url, home, GALLERY_HTML, media)
    decide(db, done.page_id)
    done.store.close()
    done.evidence.close()
    return done.page_id
