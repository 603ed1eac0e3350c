"""The review app's typed configuration, read once by the factory.

`ReviewConfig.from_settings` is the only reader of `crawler.config.Settings` here; tests
pass overrides as a plain dict (Flask-tutorial style `test_config`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from crawler.config import Settings
from crawler.db.types import utcnow
from crawler.net.addresses import AddressPolicy


@dataclass(frozen=True)
class PreviewConfig:
    """How previews are fetched: the crawl policy's address rules and limits."""

    address_policy: AddressPolicy = field(default_factory=AddressPolicy)
    max_bytes: int = 25_000_000
    max_pixels: int = 89_478_485
    timeout_s: float = 10.0
    user_agent: str = "takedown-crawler review preview"
    max_side: int = 384  # previews are downscaled to fit in this many pixels
    per_minute: int = 120  # previews and reveals per user per minute
    # The network rules of the run that saw the media apply (review.run_policy), unless
    # `review serve --policy` gave rules for every preview.
    use_run_policy: bool = True


@dataclass(frozen=True)
class ReviewConfig:
    db_url: str
    secret_key: str
    categories: tuple[str, ...] = ("A", "B", "C")
    daily_reveal_budget: int = 50
    four_eyes: bool = False
    benign_four_eyes: bool = False  # a second person agrees before media join the benign list
    require_totp: bool = False  # users without one-time codes may only enrol
    lease_seconds: int = 900
    idle_timeout_s: int = 1800
    absolute_timeout_s: int = 12 * 3600
    max_body_bytes: int = 64 * 1024
    benign_list: str = "analyst-benign"  # docs/interface.md: the built-in list
    max_item_seconds: int = 900  # time on one item page counted at most, per view
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    clock: Callable[[], datetime] = utcnow
    debug: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ReviewConfig:
        base = cls(
            db_url=settings.db_url,
            secret_key=settings.secret_key or "",
            categories=settings.categories,
            daily_reveal_budget=settings.daily_reveal_budget,
            four_eyes=settings.four_eyes,
            benign_four_eyes=settings.benign_four_eyes,
        )
        return base.with_overrides(overrides)

    def with_overrides(self, overrides: Mapping[str, Any]) -> ReviewConfig:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown review config keys: {sorted(unknown)}")
        return replace(self, **dict(overrides))
