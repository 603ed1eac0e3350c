"""The crawl policy file: contract defaults, strict validation, canonical text."""

import re
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.policy import (
    CrawlPolicy,
    PolicyError,
    ScopePolicy,
    load_policy,
    parse_policy,
    policy_from_dict,
)

# The example block of CONTRACT.md, "Crawl policy file (TOML)" (one comment shortened).
CONTRACT_EXAMPLE = """\
[scope]
follow = "registered-domain"   # "host" | "registered-domain" | "seed-prefix"
extra_domains = []             # registered domains also in scope
deny_domains = []              # never fetched, not even media, not even if seeded
deny_url_patterns = []         # regular expressions on the whole URL
max_depth = 3                  # link hops from a seed
max_pages = 10000              # pages per crawl
max_pages_per_host = 2000

[media]
fetch_offsite = true           # embedded media on other hosts are fetched (never followed as pages)
max_bytes = 25000000
max_pixels = 89478485
types = ["image", "video"]

[politeness]
obey_robots = true
user_agent = "takedown-crawler (+contact URL of the operator)"
per_host_concurrency = 4
delay_s = 0.0
autothrottle = true
timeout_s = 20

[network]
allow_private = false          # loopback, private, link-local, CGNAT, multicast, reserved addresses
allowed_networks = []          # CIDRs fetched although allow_private is false

[render]
javascript = false             # render pages in Chromium before extracting links and media
"""


def _contract_block():
    """The block from the shared contract when it is beside the checkout, else the copy."""
    contract = Path(__file__).resolve().parents[3] / "shared" / "CONTRACT.md"
    if not contract.exists():
        return CONTRACT_EXAMPLE
    text = contract.read_text(encoding="utf-8")
    section = text.split("## Crawl policy file (TOML)", 1)[1]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


def test_defaults_equal_the_contract():
    assert parse_policy(_contract_block()) == CrawlPolicy()
    assert parse_policy(CONTRACT_EXAMPLE) == CrawlPolicy()
    assert load_policy(None) == CrawlPolicy()
    assert parse_policy("") == CrawlPolicy()


def test_every_contract_key_is_a_field_and_nothing_more():
    keys = {
        (section, key)
        for section, values in parse_policy_dict(_contract_block()).items()
        for key in values
    }
    ours = {(s, f.name) for s, v in CrawlPolicy().to_dict().items() for f in _fields(s)}
    # The contract's keys, and the extensions documented in docs/policy.md.
    assert ours - keys == EXTENSIONS
    assert keys <= ours


EXTENSIONS = {
    ("render", "settle_ms"),
    ("render", "max_render_s"),
    ("media", "video_max_frames"),
    ("media", "archive_max_members"),
    ("media", "archive_max_unpacked_bytes"),
    ("media", "archive_max_ratio"),
}


def test_render_budget_keys():
    assert CrawlPolicy().render.settle_ms == 500 and CrawlPolicy().render.max_render_s == 15.0
    policy = parse_policy("[render]\njavascript = true\nsettle_ms = 0\nmax_render_s = 2\n")
    assert (policy.render.settle_ms, policy.render.max_render_s) == (0, 2.0)
    assert parse_policy(policy.to_toml()) == policy


def parse_policy_dict(text):
    import tomllib

    return tomllib.loads(text)


def _fields(section):
    return fields(type(getattr(CrawlPolicy(), section)))


def test_canonical_text_round_trips():
    policy = parse_policy(
        '[scope]\nfollow = "host"\ndeny_url_patterns = ["\\\\.php\\\\?", "a\\"b"]\n'
        'deny_domains = ["Bad.Example."]\n[politeness]\nuser_agent = "ua \\u00e9"\n'
        "delay_s = 1\n[network]\nallowed_networks = ['127.0.0.2', '203.0.113.0/24']\n"
    )
    text = policy.to_toml()
    assert parse_policy(text) == policy
    assert parse_policy(text).to_toml() == text
    assert CrawlPolicy().to_toml() == parse_policy(CrawlPolicy().to_toml()).to_toml()


@given(
    st.lists(st.text(max_size=8).filter(lambda s: _compiles(s)), max_size=3),
    st.integers(0, 10**6),
    st.floats(0, 1e6, allow_nan=False),
)
def test_round_trip_property(patterns, depth, delay):
    data = {
        "scope": {"deny_url_patterns": patterns, "max_depth": depth},
        "politeness": {"delay_s": delay},
    }
    policy = policy_from_dict(data)
    assert parse_policy(policy.to_toml()) == policy


def _compiles(pattern):
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def test_normalisation():
    policy = parse_policy(
        "[scope]\n"
        'deny_domains = ["*.Bad.Example.", "bad.example", "straße.de"]\n'
        'extra_domains = ["CDN.Example."]\n'
        "[network]\n"
        'allowed_networks = ["127.0.0.2", "::1"]\n'
    )
    assert policy.scope.deny_domains == ("bad.example", "strasse.de", "xn--strae-oqa.de")
    assert policy.scope.extra_domains == ("cdn.example",)
    assert policy.network.allowed_networks == ("127.0.0.2/32", "::1/128")
    assert isinstance(policy.scope, ScopePolicy)


ERRORS = [
    # text, fragments the one-line message must contain
    ("[scope]\nfolow = 'host'\n", ["p.toml:2", "[scope] folow", "unknown key"]),
    ("[crawl]\nx = 1\n", ["p.toml:1", "unknown section 'crawl'"]),
    ("follow = 'host'\n", ["p.toml", "unknown top-level key 'follow'"]),
    ("[scope]\nfollow = 'domain'\n", ["p.toml:2", "[scope] follow", "'domain'"]),
    ("[scope]\nmax_depth = -1\n", ["p.toml:2", "max_depth", "at least 0"]),
    ("[scope]\nmax_pages = 0\n", ["max_pages", "at least 1"]),
    ("[scope]\nmax_depth = true\n", ["max_depth", "integer", "boolean"]),
    ("[scope]\nmax_depth = 2.5\n", ["max_depth", "integer"]),
    ("[scope]\nmax_depth = '3'\n", ["max_depth", "integer", "string"]),
    ("[scope]\ndeny_url_patterns = ['(']\n", ["deny_url_patterns", "regular expression"]),
    ("[scope]\ndeny_url_patterns = '.*'\n", ["deny_url_patterns", "list of strings"]),
    ("[scope]\ndeny_domains = ['a@b.example']\n", ["deny_domains", "not a domain"]),
    ("[network]\nallowed_networks = ['10.0.0.1/8']\n", ["allowed_networks", "CIDR"]),
    ("[network]\nallowed_networks = ['example.com']\n", ["allowed_networks", "CIDR"]),
    ("[network]\nallow_private = 'yes'\n", ["allow_private", "true or false"]),
    ("[media]\ntypes = ['audio']\n", ["types", "'audio'"]),
    ("[media]\nmax_bytes = -5\n", ["max_bytes", "at least 1"]),
    ("[politeness]\ndelay_s = -0.5\n", ["delay_s"]),
    ("[politeness]\ntimeout_s = 0\n", ["timeout_s", "greater than"]),
    ("[politeness]\ntimeout_s = inf\n", ["timeout_s", "finite"]),
    ('[politeness]\nuser_agent = "a\\r\\nX-Evil: 1"\n', ["user_agent", "single line"]),
    ("[render]\njavascript = 1\n", ["javascript", "true or false"]),
    ("[render]\nsettle_ms = -1\n", ["p.toml:2", "[render] settle_ms", "at least 0"]),
    ("[render]\nsettle_ms = 0.5\n", ["settle_ms", "integer"]),
    ("[render]\nsettle_ms = true\n", ["settle_ms", "integer", "boolean"]),
    ("[render]\nmax_render_s = 0\n", ["p.toml:2", "[render] max_render_s", "greater than"]),
    ("[render]\nmax_render_s = inf\n", ["max_render_s", "finite"]),
    ("[render]\nmax_render_s = '15'\n", ["max_render_s", "number", "string"]),
    ("[scope\n", ["p.toml", "invalid TOML", "line 1"]),
    ("[scope]\nmax_depth = \n", ["invalid TOML", "line 2"]),
    ("scope = 3\n", ["p.toml", "[scope] must be a table"]),
]


@pytest.mark.parametrize(("text", "fragments"), ERRORS)
def test_errors_name_file_line_and_key(text, fragments):
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.toml")
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)


def test_load_policy_file(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[scope]\nfollow = "host"\nmax_depth = 1\n', encoding="utf-8")
    policy = load_policy(path)
    assert policy.scope.follow == "host" and policy.scope.max_depth == 1
    assert policy.media == CrawlPolicy().media


def test_load_policy_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(PolicyError, match="missing.toml"):
        load_policy(missing)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[scope]\nfollow = '\xff'\n")
    with pytest.raises(PolicyError, match="bad.toml.*UTF-8"):
        load_policy(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[scope]\nmax_hops = 3\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"unknown.toml:2: \[scope\] max_hops"):
        load_policy(unknown)


def test_policy_is_immutable():
    policy = CrawlPolicy()
    with pytest.raises(AttributeError):
        policy.scope.max_depth = 9  # type: ignore[misc]
