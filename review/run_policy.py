"""Preview fetches follow the network rules of the crawl run that saw the media.

A crawl run stores the policy it ran under (`crawl_runs.policy_text`, canonical TOML; its
hash is in the evidence). A preview of an observation uses that run's `[network]` rules
by default, so media a run was allowed to fetch (say from `allowed_networks`) can be
previewed without repeating `--policy` to `review serve`; `review serve --policy` sets
`PreviewConfig.use_run_policy = False` and its own rules apply to every preview.
Observations without a run, or a run whose stored policy no longer parses, keep the
app's configured rules. Parsed rules are cached by policy text (runs never change it).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import lru_cache

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from crawler.db.models import CrawlRun, Observation
from crawler.net.addresses import AddressPolicy
from crawler.policy import PolicyError, parse_policy
from review.config import PreviewConfig

logger = logging.getLogger(__name__)

_RUN_POLICY = (
    select(CrawlRun.id, CrawlRun.policy_text)
    .join(Observation, Observation.run_id == CrawlRun.id)
    .where(Observation.id == bindparam("observation_id"))
)


@lru_cache(maxsize=64)
def _rules(policy_text: str, run_id: int) -> AddressPolicy | None:
    try:
        policy = parse_policy(policy_text, source=f"crawl run {run_id}")
    except (PolicyError, ValueError) as exc:
        logger.warning("previews of crawl run %s use the app's rules: %s", run_id, exc)
        return None
    return AddressPolicy(policy.network.allow_private, policy.network.allowed_networks)


def preview_config_for(
    session: Session, observation_id: int, preview: PreviewConfig
) -> PreviewConfig:
    """`preview` with the network rules of the run that recorded `observation_id`."""
    if not preview.use_run_policy:
        return preview
    row = session.connection().execute(_RUN_POLICY, {"observation_id": observation_id}).first()
    if row is None or not row[1]:
        return preview
    rules = _rules(row[1], row[0])
    return preview if rules is None else replace(preview, address_policy=rules)
