"""`takedown demo`: a synthetic site, a synthetic hash list, a crawl and the review app."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Annotated

import typer
from sqlalchemy import func, select

from crawler.cli import plugins
from crawler.cli._common import info, settings
from crawler.config import Settings
from crawler.db.models import ReviewItem
from crawler.db.session import Database
from crawler.demo import run


def _queue_size(cfg: Settings) -> int:
    db = Database(cfg.db_url)
    try:
        with db.read_session() as session:
            query = (
                select(func.count()).select_from(ReviewItem).where(ReviewItem.status == "pending")
            )
            return int(session.execute(query).scalar_one())
    finally:
        db.dispose()


def _serve(cfg: Settings, demo: run.Demo, host: str, port: int) -> None:
    import waitress

    app = plugins.load(plugins.REVIEW).demo_app(cfg, demo.site_host)
    waitress.serve(app, host=host, port=port, threads=8, ident="takedown-demo")


def demo(
    host: Annotated[str, typer.Option(help="address of the review app")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port of the review app")] = 8000,
    site_host: Annotated[
        str, typer.Option(help="loopback address of the synthetic site")
    ] = "127.0.0.2",
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="serve the review app afterwards")
    ] = True,
) -> None:
    """Synthetic site + synthetic hash list, crawl, queue, demo analyst, review app."""
    cfg = settings()
    if not cfg.secret_key:
        cfg = dataclasses.replace(cfg, secret_key=secrets.token_hex(32))
    info(f"demo: home {cfg.home}")
    demo_state = run.prepare(cfg, site_host)
    try:
        info(f"demo: synthetic site at {demo_state.base_url} (generated images only)")
        run.ensure_crawled(cfg, demo_state)
        db = Database(cfg.db_url)
        try:
            analyst = run.one_time_account(db, run.ANALYST, "analyst")
            lead = run.one_time_account(db, run.LEAD, "lead")
        finally:
            db.dispose()
        info(f"demo: {_queue_size(cfg)} pages wait in the review queue")
        info(f"demo: sign in as {run.ANALYST} / {analyst}  (lead: {run.LEAD} / {lead})")
        info("demo: these passwords are shown once; run the demo again for new ones")
        if serve:
            info(f"demo: review app at http://{host}:{port}/login  (Ctrl-C stops everything)")
            _serve(cfg, demo_state, host, port)
    except KeyboardInterrupt:
        info("demo: stopped")
    finally:
        demo_state.site.stop()
