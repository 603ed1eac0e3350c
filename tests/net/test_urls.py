"""Host identity, canonical URLs, scope, traps, budgets, reflection and hostile links."""

import socket
from urllib.parse import urljoin, urlsplit

import pytest
import scrapy
from hypothesis import assume, given
from hypothesis import strategies as st
from scrapy.utils.httpobj import urlparse_cached

from crawler.net import urls
from crawler.net.urls import (
    Budget,
    InvalidURL,
    Scope,
    canonical_host,
    canonical_url,
    is_reflection,
    registered_domain,
    safe_link,
    url_host,
)
from crawler.policy import CrawlPolicy, MediaPolicy, ScopePolicy

# --- C-11 host identity ----------------------------------------------------------------

HOSTS = [
    ("Example.COM", "example.com"),
    ("example.com.", "example.com"),
    ("Bücher.Example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("ＥＸＡＭＰＬＥ.com", "example.com"),
    ("straße.de", "strasse.de"),  # what w3lib, and so Scrapy, connects to
    ("[::1]", "::1"),
    ("::1", "::1"),
    ("[0:0::1]", "::1"),
    ("127.1", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("a_b.example", "a_b.example"),
]


@pytest.mark.parametrize(("host", "expected"), HOSTS)
def test_canonical_host(host, expected):
    assert canonical_host(host) == expected


@pytest.mark.parametrize(
    "host",
    [
        "user@host.com",
        "host.com#@evil.com",
        "good.com\\evil.com",
        "a b.com",
        "",
        "a..b",
        ".a",
        "host.com:80",
        "a.com%40b.com",
        "x" * 64 + ".com",
        "[::1",
        "[127.0.0.1]",
    ],
)
def test_canonical_host_rejects_non_hosts(host):
    with pytest.raises(InvalidURL):
        canonical_host(host)


def _downloader_host(url):
    """What Scrapy 2.19's downloader connects to for *url*."""
    hostname = urlparse_cached(scrapy.Request(url)).hostname
    return hostname


URL_HOSTS = [
    ("http://evil.com#@good.com/", "evil.com"),
    ("http://good.com\\@evil.com/", "good.com"),
    ("http://good.com\\evil.com/", "good.com"),
    ("http://user:pw@Good.COM./x", "good.com"),
    ("http://a.com%2F@b.com/", "b.com"),
    ("http://Bücher.example/ä", "xn--bcher-kva.example"),
    ("http://[::1]:8080/", "::1"),
    ("http://exa\tmple.com/", "example.com"),
    ("HTTPS://WWW.Example.com:443/", "www.example.com"),
]


@pytest.mark.parametrize(("url", "expected"), URL_HOSTS)
def test_url_host_is_the_downloaders_host(url, expected):
    assert url_host(url) == expected
    assert canonical_host(_downloader_host(url)) == expected


HOST_ALPHABET = "abcXYZ019-._@#\\:/[]%é ß。"


@given(st.text(alphabet=HOST_ALPHABET, min_size=1, max_size=24))
def test_canonical_host_is_idempotent(text):
    try:
        host = canonical_host(text)
    except InvalidURL:
        return
    assert canonical_host(host) == host
    assert host == host.lower() and not host.endswith(".") and host.isascii()


@given(st.text(alphabet=HOST_ALPHABET, min_size=1, max_size=24), st.sampled_from(["", "/p", "?q"]))
def test_url_host_equals_downloader_host(authority, tail):
    url = f"http://{authority}{tail}"
    try:
        expected = _downloader_host(url)
    except ValueError:
        return  # Scrapy refuses it; so must we
    assume(expected)
    try:
        ours = url_host(url)
    except InvalidURL:
        return  # refusing is always safe
    assert ours == canonical_host(expected)


# --- registered domain -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("img.example.co.uk", "example.co.uk"),
        ("www.Example.com.", "example.com"),
        ("alice.github.io", "alice.github.io"),
        ("a.b.site.test", "site.test"),
        ("localhost", "localhost"),
        ("203.0.113.7", "203.0.113.7"),
        ("::1", "::1"),
    ],
)
def test_registered_domain(host, expected):
    assert registered_domain(host) == expected


def test_registered_domain_makes_no_network_call(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    urls._extractor.cache_clear()
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert registered_domain("news.bbc.co.uk") == "bbc.co.uk"


# --- C-02 canonical URLs ---------------------------------------------------------------

SAME = [
    ("http://ex.com/a?id=1&sid=aaa", "http://ex.com/a?id=1&sid=bbb"),
    ("http://ex.com/a;jsessionid=AAA?x=1", "http://ex.com/a;jsessionid=BBB?x=1"),
    ("http://ex.com/a?PHPSESSID=1&b=2", "http://ex.com/a?b=2&phpsessid=2"),
    ("http://ex.com/a?session_id=1", "http://ex.com/a?sessionid=2"),
    ("http://ex.com/a?utm_source=x", "http://ex.com/a"),
    ("HTTP://EX.COM:80/a#top", "http://ex.com/a"),
    ("https://ex.com:443/", "https://ex.com"),
    ("http://ex.com/%7euser/%41", "http://ex.com/~user/A"),
    ("http://ex.com/a%2fb", "http://ex.com/a%2Fb"),
    ("http://ex.com/a/./b/../c", "http://ex.com/a/c"),
    ("http://ex.com/?b=2&a=1", "http://ex.com/?a=1&b=2"),
    ("http://Bücher.example/", "http://xn--bcher-kva.example/"),
    ("http://user@ex.com/", "http://ex.com/"),
    ("http://ex.com/(S(x1y2z3))/p.aspx", "http://ex.com/p.aspx"),
    ("http://ex.com./", "http://ex.com/"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_aliases_share_one_canonical_url(a, b):
    assert canonical_url(a) == canonical_url(b)


DIFFERENT = [
    ("http://ex.com/a", "https://ex.com/a"),
    ("http://ex.com:8080/a", "http://ex.com/a"),
    ("http://ex.com/?a=2&a=1", "http://ex.com/?a=1&a=2"),
    ("http://ex.com/a", "http://ex.com/A"),
    ("http://ex.com/a/", "http://ex.com/a"),
    ("http://ex.com/?id=1", "http://ex.com/?id=2"),
]


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_distinct_pages_stay_distinct(a, b):
    assert canonical_url(a) != canonical_url(b)


@given(st.sampled_from([u for pair in SAME + DIFFERENT for u in pair]))
def test_canonical_url_is_idempotent(url):
    once = canonical_url(url)
    assert canonical_url(once) == once


# --- traps -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/a/b/a/b/", None),
        ("/a/b/a/b/a/b/", "trap/repeating-segments"),
        ("/a/a/a/", "trap/repeating-segments"),
        ("/x/a/b/c/a/b/c/a/b/c/y", "trap/repeating-segments"),
        ("/2024/01/01/post", None),
        ("/" + "/".join(f"s{i}" for i in range(20)), None),
        ("/" + "/".join(f"s{i}" for i in range(21)), "trap/deep-path"),
        ("/", None),
    ],
)
def test_path_traps(path, reason):
    assert urls.check_path_traps(path) == reason


def test_self_relative_links_end_in_a_trap():
    """A page at /a/ linking href="a/" would mint /a/a/a/... without the guard (C-02)."""
    scope = Scope(ScopePolicy(max_depth=50), ["http://ex.com/a/"])
    url, fetched = "http://ex.com/a/", 0
    while scope.check(url, depth=fetched) is None:
        fetched += 1
        url = safe_link("a/", url)
    assert fetched == 2  # /a/ and /a/a/; /a/a/a/ is a trap


# --- scope -----------------------------------------------------------------------------


def _scope(follow="registered-domain", seeds=("http://www.site.test/forum/index.html",), **kw):
    return Scope(ScopePolicy(follow=follow, **kw), list(seeds))


SCOPE_TABLE = [
    # follow, url, depth, is_media, reason
    ("registered-domain", "http://www.site.test/x", 1, False, None),
    ("registered-domain", "http://cdn.site.test/x", 1, False, None),
    ("registered-domain", "http://other.test/x", 1, False, "offsite"),
    ("host", "http://www.site.test/x", 1, False, None),
    ("host", "http://WWW.SITE.TEST./x", 1, False, None),
    ("host", "http://cdn.site.test/x", 1, False, "offsite"),
    ("seed-prefix", "http://www.site.test/forum/t/1", 1, False, None),
    ("seed-prefix", "https://www.site.test/forum/", 1, False, None),
    ("seed-prefix", "http://www.site.test/shop/", 1, False, "offsite"),
    ("registered-domain", "http://www.site.test/x", 3, False, None),
    ("registered-domain", "http://www.site.test/x", 4, False, "max-depth"),
    ("registered-domain", "http://www.site.test/x.jpg", 4, True, None),
    ("registered-domain", "http://www.site.test/x.jpg", 5, True, "max-depth"),
    ("registered-domain", "ftp://www.site.test/x", 1, False, "scheme"),
    ("registered-domain", "file:///etc/passwd", 0, False, "scheme"),
    ("registered-domain", "javascript:alert(1)", 0, False, "scheme"),
    ("registered-domain", "http://www.site.test/" + "x" * 2100, 1, False, "url-too-long"),
    ("registered-domain", "http://www.site.test:99999/", 1, False, "bad-url"),
    ("registered-domain", "http://a.com%40b.com/", 1, False, "bad-host"),
    (
        "registered-domain",
        "http://www.site.test/share?url=http://x.org/i.jpg",
        1,
        False,
        "reflection",
    ),
]


@pytest.mark.parametrize(("follow", "url", "depth", "is_media", "reason"), SCOPE_TABLE)
def test_scope_table(follow, url, depth, is_media, reason):
    assert _scope(follow).check(url, depth=depth, is_media=is_media) == reason


def test_extra_domains_and_their_subdomains_are_in_scope():
    scope = _scope("host", extra_domains=("partner.test",))
    assert scope.check("http://img.partner.test/a", depth=1) is None
    assert scope.check("http://partner.test/a", depth=1) is None
    assert scope.check("http://notpartner.test/a", depth=1) == "offsite"


def test_deny_wins_over_seeds_media_and_dont_filter():
    """C-07: there is no bypass; a denied seed is rejected and listed (C-13)."""
    scope = _scope(
        seeds=["http://bad.test/", "http://www.site.test/"],
        deny_domains=("bad.test",),
        deny_url_patterns=(r"/private/",),
    )
    assert scope.rejected_seeds == [("http://bad.test/", "denied-domain")]
    assert scope.check("http://bad.test/", depth=0) == "denied-domain"
    assert scope.check("http://img.BAD.test./a.jpg", depth=1, is_media=True) == "denied-domain"
    assert scope.check("http://www.site.test/private/a", depth=0) == "denied-pattern"
    assert scope.check("http://www.site.test/private/a.jpg", depth=1, is_media=True) == (
        "denied-pattern"
    )
    assert scope.check("http://www.site.test/%70rivate/a", depth=0) == "denied-pattern"
    assert "dont_filter" not in Scope.check.__code__.co_varnames


def test_all_seeds_rejected_is_visible():
    scope = _scope(seeds=["ftp://x.test/", "http://bad.test/"], deny_domains=("bad.test",))
    assert not scope.has_seeds
    assert [reason for _, reason in scope.rejected_seeds] == ["scheme", "denied-domain"]


def test_media_offsite_one_hop_pages_never():
    """C-10: page A embeds an image on CDN B: the image is in, B's pages are not."""
    scope = _scope()
    assert scope.check("http://cdn.other.test/i.jpg", depth=1, is_media=True) is None
    assert scope.check("http://cdn.other.test/", depth=1) == "offsite"
    strict = Scope.from_policy(
        CrawlPolicy(media=MediaPolicy(fetch_offsite=False)), ["http://www.site.test/"]
    )
    assert strict.check("http://cdn.other.test/i.jpg", depth=1, is_media=True) == "offsite"
    assert strict.check("http://www.site.test/i.jpg", depth=1, is_media=True) is None


def test_unicode_deny_blocks_both_spellings():
    scope = _scope(seeds=["http://www.site.test/"], deny_domains=("straße.de",))
    assert scope.check("http://straße.de/a.jpg", depth=1, is_media=True) == "denied-domain"
    assert scope.check("http://xn--strae-oqa.de/a.jpg", depth=1, is_media=True) == ("denied-domain")


def test_overlong_url_rejected_before_any_regex(monkeypatch):
    scope = _scope(deny_url_patterns=("a",))

    def explode(*args):
        raise AssertionError("regex ran on an overlong URL")

    monkeypatch.setattr(scope, "_deny_patterns", (type("P", (), {"search": explode})(),))
    assert scope.check("http://www.site.test/" + "a" * 3000, depth=1) == "url-too-long"


# --- C-01 budgets ----------------------------------------------------------------------


def test_budget_per_crawl():
    budget = Budget(max_pages=3, max_pages_per_host=10, max_pages_per_prefix=10)
    taken = [budget.try_take(f"http://h{i}.test/") for i in range(5)]
    assert taken == [None, None, None, "budget/pages", "budget/pages"]


def test_budget_per_host_names_the_host():
    budget = Budget(max_pages=100, max_pages_per_host=2, max_pages_per_prefix=100)
    results = [budget.try_take(f"http://A.test/p{i}") for i in range(3)]
    assert results == [None, None, "budget/host"]
    assert budget.try_take("http://b.test/") is None
    assert budget.exhausted_hosts == frozenset({"a.test"})


def test_budget_per_prefix_stops_a_calendar():
    budget = Budget(max_pages=1000, max_pages_per_host=1000, max_pages_per_prefix=5)
    calendar = [f"http://ex.test/events/cal/{day}" for day in range(50)]
    taken = sum(budget.try_take(url) is None for url in calendar)
    assert taken == 5
    assert budget.try_take("http://ex.test/events/cal/99") == "budget/prefix"
    assert budget.try_take("http://ex.test/about/") is None
    assert budget.pages == 6


def test_budget_default_prefix_cap_and_bad_url():
    budget = Budget.from_policy(ScopePolicy())
    assert budget.max_pages_per_prefix == 500
    assert budget.try_take("http://[::1/") == "bad-url"


# --- reflection ------------------------------------------------------------------------

REFLECTIONS = [
    "http://site.test/share?url=http://victim.test/a.jpg",
    "http://site.test/share?u=https%3A%2F%2Fvictim.test%2Fa.jpg",
    "http://site.test/share?u=https%253A%252F%252Fvictim.test%252Fa.jpg",
    "http://site.test/x?img=victim.test/a.jpg",
    "http://site.test/x?imgurl=//victim.test/a.jpg",
    "http://site.test/x?image_url=aHR0cDovL3ZpY3RpbS50ZXN0L2EuanBn",
    "http://site.test/x?src=cdn.victim.co.uk/a.jpg",
    "http://site.test/search?q=http://victim.test/",
    "http://site.test/proxy?target=http://10.0.0.1/",
    "http://site.test/redirect?url=http://victim.test/",
    "http://site.test/proxy/http://victim.test/a.jpg",
    "https://images.google.com/searchbyimage?image_url=http://victim.test/a.jpg",
    "https://www.google.com/searchbyimage?image_url=x",
    "https://lens.google.com/uploadbyurl?url=http://victim.test/a.jpg",
    "https://yandex.ru/images/search?rpt=imageview&url=http://victim.test/a.jpg",
    "https://tineye.com/search?url=http://victim.test/a.jpg",
    "https://www.bing.com/images/search?view=detailv2&q=imgurl:http://victim.test/a.jpg",
    "https://victim-test.translate.goog/a.jpg?_x_tr_sl=auto",
    "https://web.archive.org/save/http://victim.test/",
]

NOT_REFLECTIONS = [
    "http://site.test/page?id=3",
    "http://site.test/login?next=/account",
    "http://site.test/r?url=http://www.site.test/next",
    "http://site.test/p?src=image.jpg",
    "http://site.test/p?q=kittens",
    "http://site.test/img/a.jpg",
    "https://www.google.com/",
]


@pytest.mark.parametrize("url", REFLECTIONS)
def test_reflections_detected(url):
    assert is_reflection(url)


@pytest.mark.parametrize("url", NOT_REFLECTIONS)
def test_ordinary_links_are_not_reflections(url):
    assert not is_reflection(url)


def test_reflection_refused_even_for_offsite_media():
    scope = _scope()
    url = "https://lens.google.com/uploadbyurl?url=http://www.site.test/a.jpg"
    assert scope.check(url, depth=1, is_media=True) == "reflection"


# --- H-11 hostile hrefs ----------------------------------------------------------------

BASE = "http://site.test/dir/page.html"

LINKS = [
    ("other.html", "http://site.test/dir/other.html"),
    ("  /abs  ", "http://site.test/abs"),
    ("\n/a\tb\n", "http://site.test/ab"),
    ("../up#frag", "http://site.test/up"),
    ("//cdn.test/i.jpg", "http://cdn.test/i.jpg"),
    ("HTTPS://Other.test/x", "https://other.test/x"),
    ("/\\evil.test/x", "http://evil.test/x"),  # as a browser reads it
    ("?q=1", "http://site.test/dir/page.html?q=1"),
    ("javascript:alert(1)", None),
    (" JavaScript:alert(1)", None),
    ("java\tscript:alert(1)", None),
    ("data:text/html,<script>", None),
    ("mailto:a@b.test", None),
    ("tel:123", None),
    ("ftp://site.test/x", None),
    ("http://site.test:99999/", None),
    ("http://site.test:port/", None),
    ("http://[::1/", None),
    ("http://[site.test/", None),
    ("/a\x00b", None),
    ("/a\x1bb", None),
    ("/" + "a" * 2100, None),
    ("x" * 100_000, None),
    ("http://a.com%40b.com/", None),
    ("http:///nohost", "http://site.test/nohost"),  # urljoin treats it as a path
]


@pytest.mark.parametrize(("href", "expected"), LINKS)
def test_safe_link(href, expected):
    assert safe_link(href, BASE) == expected


def test_good_links_survive_a_hostile_batch():
    hrefs = [href for href, _ in LINKS]
    resolved = [safe_link(h, BASE) for h in hrefs]
    assert [r for r in resolved if r] == [e for _, e in LINKS if e]


@given(st.text(max_size=60))
def test_safe_link_never_raises(href):
    result = safe_link(href, BASE)
    if result is not None:
        assert urlsplit(result).scheme in ("http", "https")
        scrapy.Request(result)  # what we return, Scrapy accepts


PATH_PIECES = st.sampled_from(
    ["/", "a", "..", ".", "//", ";p", "?q=1", "#f", "%2e", "\\", ":", "@"]
)


@given(st.lists(PATH_PIECES, max_size=10).map("".join), st.sampled_from(["/x/y?z#w", "/", ""]))
def test_absolute_path_links_depend_on_the_origin_only(tail, base_path):
    """The cached absolute-path shortcut (urljoin reads only the base's scheme and netloc
    for "/..." references) gives what joining against the full page URL gives."""
    href = "/" + tail
    base = "http://Site.test:8080" + base_path
    expected = urls._checked_link(urljoin(base, urls._backslashes_to_slashes(href)))
    if href.startswith(("//", "/\\")) or "\x00" in href:
        return  # another host, or refused earlier: not the shortcut
    assert safe_link(href, base) == expected
    assert safe_link(href, "http://Site.test:8080/other/page.html?a=b") == expected
