"""The old home of `takedown review ...`: the commands now live in review/cli.py.

Kept so older imports (`from crawler.cli.review import _preview_config`) still work.
Names are looked up in `review.cli` at run time, never imported here: `crawler` does not
import `review` (docs/architecture.md, "Import rules"). New code imports `review.cli`.
"""

from __future__ import annotations

from typing import Any

from crawler.cli import plugins


def __getattr__(name: str) -> Any:
    return getattr(plugins.load(plugins.REVIEW), name)
