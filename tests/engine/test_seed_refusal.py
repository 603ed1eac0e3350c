"""One rule refuses a seed: `crawler.engine.seeds.seed_refusal`. A crawl (`accepted_seeds`,
also behind `schedule add`) and a recheck (`recheck.refusal`) refuse the same URLs for the
same reasons."""

from __future__ import annotations

import pytest

from crawler.engine.runner import accepted_seeds
from crawler.engine.seeds import seed_address_refusal, seed_refusal, seed_rule_refusal
from crawler.errors import UsageError
from crawler.notices.recheck import refusal
from crawler.policy import parse_policy

POLICY = parse_policy('[scope]\ndeny_domains = ["bad.test"]\ndeny_url_patterns = ["/forbidden/"]\n')

REFUSED = {
    "ftp://site.test/a": "only http and https URLs can be seeds",
    "http://x.bad.test/a": "denied-domain",
    "http://site.test/forbidden/a": "denied-pattern",
    "http://" + "a" * 2100 + ".test/": "longer than 2083 characters",
}
ADDRESS = "http://127.0.0.1/a"


@pytest.mark.parametrize(("url", "reason"), sorted(REFUSED.items()))
def test_a_refused_seed_has_one_reason_for_crawl_and_recheck(url: str, reason: str) -> None:
    assert seed_rule_refusal(url, POLICY) == reason
    assert seed_refusal(url, POLICY) == reason
    assert refusal(url, POLICY) == reason
    with pytest.raises(UsageError) as crawl:
        accepted_seeds([url], POLICY)
    assert f"{url} ({reason})" in str(crawl.value)


def test_an_address_refusal_is_the_same_for_crawl_and_recheck() -> None:
    reason = seed_address_refusal(ADDRESS, POLICY)
    assert reason  # a private literal without allow_private
    assert seed_rule_refusal(ADDRESS, POLICY) is None
    assert seed_refusal(ADDRESS, POLICY) == refusal(ADDRESS, POLICY) == reason
    with pytest.raises(UsageError) as crawl:
        accepted_seeds([ADDRESS], POLICY)
    assert f"{ADDRESS} (address refused: {reason})" in str(crawl.value)


def test_an_allowed_seed_passes_both() -> None:
    url = "http://good.test/a"
    assert seed_refusal(url, POLICY) is None
    assert refusal(url, POLICY) is None
    assert accepted_seeds([url, "http://x.bad.test/"], POLICY) == [url]
