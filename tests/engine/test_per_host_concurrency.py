"""Per-host concurrency in a single-process crawl (no Redis): pages and media on one host
never have more than `politeness.per_host_concurrency` requests in flight at once, with
AutoThrottle on or off, and the policy delay still spaces requests to the host.

Before `crawler.engine.downloader.BoundedDownloader`, Scrapy 2.19's downloader let a host with
`per_host_concurrency = 2` reach 9-11 requests in flight (its doc says why)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.scalekit import HOST, TreeSite, crawl_command
from tests.support.sitekit import clean_env, policy_text

PER_HOST = 2


def crawl_tree(env: dict[str, str], tmp: Path, depth: int, **politeness: object) -> TreeSite:
    site = TreeSite(branching=4, depth=depth, latency_s=0.05).start()
    try:
        policy = tmp / "policy.toml"
        polite = {"per_host_concurrency": PER_HOST, **politeness}
        policy.write_text(policy_text(site.web, politeness=polite, scope={"max_depth": depth}))
        command = crawl_command(site, policy, site.web.url(HOST, "/"))
        result = subprocess.run(
            command, env=clean_env(env), capture_output=True, text=True, timeout=120
        )
    finally:
        site.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    assert site.fetched().keys() >= site.paths()  # pages and media all fetched
    return site


@pytest.mark.parametrize("autothrottle", [False, True])
def test_in_flight_per_host_never_exceeds_policy(
    env: dict[str, str], tmp_path: Path, autothrottle: bool
) -> None:
    site = crawl_tree(env, tmp_path, depth=2, autothrottle=autothrottle)
    assert site.max_inflight <= PER_HOST


def test_policy_delay_still_spaces_requests_to_a_host(env: dict[str, str], tmp_path: Path) -> None:
    site = crawl_tree(env, tmp_path, depth=1, delay_s=0.4)
    starts = sorted(h.at for h in site.web.hits)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= 0.4 * 0.5 - 0.02  # DOWNLOAD_DELAY_JITTER is +-50%
    assert site.max_inflight == 1  # spaced wider than the latency: never overlapping
