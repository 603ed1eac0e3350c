"""Scrapy component orders: one table (crawler.engine.addon), the same order in every run kind."""

from __future__ import annotations

import re
from pathlib import Path

from scrapy.settings import Settings
from scrapy.utils.conf import build_component_list

from crawler.config import load_settings
from crawler.engine.addon import RENDER_COMPONENTS, TakedownAddon, install
from crawler.engine.workers import worker_settings

ROOT = Path(__file__).resolve().parents[2]


def ours(settings: Settings, group: str) -> list[str]:
    """The enabled components of *group* that are takedown's, by class name, in order."""
    built = build_component_list(settings.getwithbase(group))
    paths = [c if isinstance(c, str) else f"{c.__module__}.{c.__qualname__}" for c in built]
    return [p.rsplit(".", 1)[-1] for p in paths if p.startswith("crawler.")]


def crawl_settings(extra: dict[str, object] | None = None) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.engine.settings", priority="project")
    for key, value in (extra or {}).items():
        settings.set(key, value, "cmdline")
    TakedownAddon().update_settings(settings)
    return settings


def test_a_plain_crawl_wires_the_table_in_order() -> None:
    settings = crawl_settings()
    downloader = ours(settings, "DOWNLOADER_MIDDLEWARES")
    assert downloader[0] == "ScopeGateMiddleware"
    assert downloader.index("RobotsTxtMiddleware") < downloader.index("PolitenessMiddleware")
    assert downloader.index("AddressCheckMiddleware") < downloader.index("LeaseMiddleware")
    assert downloader[-1] == "LeaseMiddleware"
    assert "SharedBudgetMiddleware" not in downloader
    pipelines = ours(settings, "ITEM_PIPELINES")
    assert pipelines == ["StorePipeline", "EvidencePipeline"]


def test_a_worker_adds_its_middlewares_around_the_crawls(tmp_path: Path) -> None:
    cfg = load_settings({"TAKEDOWN_HOME": str(tmp_path)})
    settings = crawl_settings(worker_settings(cfg, "td:job:1", "w1"))
    downloader = ours(settings, "DOWNLOADER_MIDDLEWARES")
    assert downloader[:2] == ["ScopeGateMiddleware", "SharedBudgetMiddleware"]
    assert downloader[-2:] == ["LeaseMiddleware", "SharedPolitenessMiddleware"]


def test_rendering_puts_the_page_marker_between_address_check_and_lease() -> None:
    settings = crawl_settings()
    install(settings, RENDER_COMPONENTS)
    downloader = ours(settings, "DOWNLOADER_MIDDLEWARES")
    marker = downloader.index("RenderPagesMiddleware")
    assert downloader.index("AddressCheckMiddleware") < marker < downloader.index("LeaseMiddleware")
    assert "RenderProxyStats" in ours(settings, "EXTENSIONS")


def test_no_other_module_writes_a_component_priority() -> None:
    writers = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "crawler").rglob("*.py")
        if re.search(r"set_in_component_priority_dict|_MIDDLEWARES\"\s*:\s*\{", path.read_text())
    ]
    assert writers == ["crawler/engine/addon.py"]
