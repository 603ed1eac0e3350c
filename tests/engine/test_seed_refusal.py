"""One rule refuses a seed: `crawler.engine.seeds.seed_refusals`. A crawl (`accepted_seeds`,
also behind `schedule add`) applies it here; a recheck applies it to its targets, and
tests/notices/test_recheck.py checks the verdict it gives a denied page ("denied-pattern",
never fetched)."""

from __future__ import annotations

import pytest

from crawler.engine.runner import accepted_seeds
from crawler.engine.seeds import seed_refusals
from crawler.errors import UsageError
from crawler.policy import parse_policy
from tests.support.sitekit import refusal_of

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
    assert refusal_of(url, POLICY) == reason
    with pytest.raises(UsageError) as crawl:
        accepted_seeds([url], POLICY)
    assert f"{url} ({reason})" in str(crawl.value)


def test_an_address_refusal_is_the_same_for_crawl_and_recheck() -> None:
    [(url, rule, reason)] = seed_refusals([ADDRESS], POLICY)
    assert (url, rule) == (ADDRESS, "address") and reason  # private, without allow_private
    assert refusal_of(ADDRESS, POLICY) == reason
    with pytest.raises(UsageError) as crawl:
        accepted_seeds([ADDRESS], POLICY)
    assert f"{ADDRESS} (address refused: {reason})" in str(crawl.value)


def test_an_allowed_seed_passes_both() -> None:
    url = "http://good.test/a"
    assert refusal_of(url, POLICY) is None
    assert accepted_seeds([url, "http://x.bad.test/"], POLICY) == [url]


def test_a_crawl_names_every_refused_seed_once_in_rule_order() -> None:
    seeds = ["ftp://a.test/", ADDRESS, "http://x.bad.test/a", "ftp://a.test/", "http://ok.test/"]
    refused = seed_refusals(seeds, POLICY)
    assert [(url, rule) for url, rule, _ in refused] == [
        ("ftp://a.test/", "shape"),
        ("http://x.bad.test/a", "scope"),
        (ADDRESS, "address"),
    ]
    assert accepted_seeds(seeds, POLICY) == ["http://ok.test/"]
