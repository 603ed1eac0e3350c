"""One crawl run: seeds checked, the run opened, Scrapy run, the run finished.

The service behind `takedown crawl`. Scrapy runs in this process (`CrawlerProcess`);
the reactor cannot restart, so a process runs one crawl. Everything the crawl needs
reaches Scrapy as settings (`scrapy_settings`), the policy as its canonical TOML text.
The run's row, egress check, outcome and finish are `crawler.engine.lifecycle`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from scrapy import signals
from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings as ScrapySettings

from crawler import logs
from crawler.config import Settings
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.engine import writer_process
from crawler.engine.frontier import done_pages
from crawler.engine.lifecycle import (
    CrawlOutcome,
    close_run,
    open_run,
    refuse_proxies,
    reopen_run,
    software_version,
)
from crawler.engine.seeds import seed_refusals, without_credentials
from crawler.engine.storage import link_missing_observations
from crawler.errors import TakedownError, UsageError
from crawler.matching.candidates import update_candidates
from crawler.policy import CrawlPolicy

logger = logging.getLogger(__name__)

# Scrapy settings an operator (or a test) may pass with `-s KEY=VALUE`; safety settings
# (resolver, handlers, listeners, caches) are deliberately not in this list.
OVERRIDABLE = frozenset(
    {
        "TAKEDOWN_TEST_HOSTS",
        "TAKEDOWN_ROBOTS_RETRY_DELAYS",
        "TAKEDOWN_RETRY_AFTER_MAX",
        "TAKEDOWN_OUTLINK_CAP",
        "TAKEDOWN_DELAY_FLOOR",
        "TAKEDOWN_PROGRESS",
        "TAKEDOWN_PROGRESS_INTERVAL",  # seconds between progress lines (crawler.engine.extensions)
        "TAKEDOWN_RDAP_ENRICH",
        "TAKEDOWN_EGRESS_PROXY_ENFORCED",
        "TAKEDOWN_CHROMIUM_PATH",  # --render: the browser to launch (crawler.engine.render)
        "TAKEDOWN_STORE_THREADS",
        "TAKEDOWN_WRITER_PROCESS",  # false: store/evidence writers on threads, not a process
        "TAKEDOWN_EVIDENCE",  # false: no evidence records (crawler.engine.pipelines.evidence)
        "TAKEDOWN_REDIS_HEARTBEAT_TTL",  # scaled-out crawls (crawler.scaleout.redis_scheduler)
        "TAKEDOWN_REDIS_IDLE_GRACE",
        "CONCURRENT_REQUESTS",
        "CLOSESPIDER_TIMEOUT",
        "LOG_LEVEL",
        "DNS_TIMEOUT",
        "RETRY_TIMES",
    }
)


class CrawlFailed(TakedownError):
    """The crawl ran but did no useful work (or stopped before fetching)."""


@dataclass
class CrawlRequest:
    seeds: list[str]
    policy: CrawlPolicy
    name: str | None = None
    seed_set: str | None = None
    render: bool | None = None
    resume: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    progress: str = "log"


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or key not in OVERRIDABLE:
            raise UsageError(
                f"-s {pair!r}: not KEY=VALUE with KEY one of {', '.join(sorted(OVERRIDABLE))}"
            )
        out[key] = value
    return out


def accepted_seeds(seeds: list[str], policy: CrawlPolicy) -> list[str]:
    """The seeds the policy lets the crawl start from; exit 2 naming each rejected one."""
    if not seeds:
        raise UsageError("no seeds: give URLs, --seeds-file or --set")
    seeds = without_credentials(seeds, "crawl")  # never stored, never in an error
    refused = seed_refusals(seeds, policy)
    rejected = [
        f"{url} (address refused: {reason})" if rule == "address" else f"{url} ({reason})"
        for url, rule, reason in refused
    ]
    gone = {url for url, _rule, _reason in refused}
    accepted = [url for url in dict.fromkeys(seeds) if url not in gone]
    if not accepted:
        raise UsageError("every seed is out of policy: " + "; ".join(rejected))
    for line in rejected:
        logger.warning("seed rejected: %s", line)
    return accepted


def start_run(db: Database, req: CrawlRequest) -> tuple[int, CrawlPolicy, list[str]]:
    """(run id, policy, seeds): a new run with its seeds in the frontier, or a resumed one."""
    if req.resume:
        return reopen_run(db, req.resume)
    policy = req.policy
    if req.render is not None:
        policy = replace(policy, render=replace(policy.render, javascript=req.render))
    if policy.render.javascript:
        from crawler.engine.render import preflight

        preflight(req.overrides.get("TAKEDOWN_CHROMIUM_PATH"))  # no browser: exit 2 (C-09)
    seeds = accepted_seeds(req.seeds, policy)
    run_id = open_run(
        db, policy, seeds, name=req.name, seed_set=req.seed_set, version=software_version()
    )
    return run_id, policy, seeds


def scrapy_settings(
    cfg: Settings,
    req: CrawlRequest,
    run_id: int,
    policy: CrawlPolicy,
    seeds: list[str],
    budget_spent: list[str],
) -> ScrapySettings:
    settings = ScrapySettings()
    settings.setmodule("crawler.engine.settings", priority="project")
    values: dict[str, Any] = {
        "TAKEDOWN_POLICY": policy.to_toml(),
        "TAKEDOWN_SEEDS": seeds,
        "TAKEDOWN_DB": cfg.db_url,
        "TAKEDOWN_RUN_ID": run_id,
        "TAKEDOWN_RESUME": bool(req.resume),
        "TAKEDOWN_BUDGET_SPENT": budget_spent,
        "TAKEDOWN_PROGRESS": req.progress,
        "TAKEDOWN_GEOIP_COUNTRY": str(cfg.geoip_country or ""),
        "TAKEDOWN_GEOIP_ASN": str(cfg.geoip_asn or ""),
        "TAKEDOWN_RDAP_URL": cfg.rdap_url or "",
        "TAKEDOWN_HOME": str(cfg.home),
    }
    if req.progress == "live":
        (cfg.home / "logs").mkdir(parents=True, exist_ok=True)
        values["LOG_FILE"] = str(cfg.home / "logs" / f"crawl-{run_id}.log")
    settings.setdict(values, priority="cmdline")
    settings.setdict(dict(req.overrides), priority="cmdline")
    return settings


def run_scrapy(
    settings: ScrapySettings, item_scraped: Callable[..., None] | None = None
) -> tuple[str, dict[str, Any]]:
    """(finish reason, stats) of one Scrapy crawl in this process; *item_scraped*, when
    given, hears every item after the pipelines (`signals.item_scraped`)."""
    logs.apply_level(settings.get("LOG_LEVEL") or "INFO")  # before Scrapy's start-up lines
    process = CrawlerProcess(settings)
    crawler = process.create_crawler("site")
    if item_scraped is not None:
        crawler.signals.connect(item_scraped, signal=signals.item_scraped)
    process.crawl(crawler)
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    return str(stats.get("finish_reason") or "unknown"), stats


def reconcile_media_refs(db: Database, run_id: int, categories: tuple[str, ...]) -> int:
    """Link every page of the run to the media it lists (`link_missing_observations`)
    and bring their review items up to date; returns how many pages gained a link."""
    with db.session() as session:
        pages = link_missing_observations(session, run_id)
        if pages:
            update_candidates(session, pages, categories)
    if pages:
        logger.info("run %d: %d pages linked to media at the end of the run", run_id, len(pages))
    return len(pages)


def _on(overrides: Mapping[str, str], key: str) -> bool:
    return str(overrides.get(key, "true")).strip().lower() not in ("0", "false", "no", "off")


def warm_writers(overrides: Mapping[str, str]) -> None:
    """Start the store and evidence writer processes while Scrapy starts, so they are
    ready for the first items (`crawler.engine.writer_process.warm`)."""
    if not _on(overrides, "TAKEDOWN_WRITER_PROCESS"):
        return
    count = 1 + _on(overrides, "TAKEDOWN_EVIDENCE")
    writer_process.warm(
        count, ("crawler.engine.pipelines.store", "crawler.engine.pipelines.evidence")
    )


def execute(cfg: Settings, db: Database, req: CrawlRequest, env: Mapping[str, str]) -> CrawlOutcome:
    refuse_proxies(env, req.overrides)
    warm_writers(req.overrides)
    try:
        run_id, policy, seeds = start_run(db, req)
        spent = done_pages(db, run_id) if req.resume else []
        started = utcnow()
        reason, stats = run_scrapy(scrapy_settings(cfg, req, run_id, policy, seeds, spent))
    finally:
        writer_process.discard_warm()
    reconcile_media_refs(db, run_id, cfg.categories)
    return close_run(db, run_id, reason, stats, started)
