"""Extraction tables over HTML snippets (M-10, C-06, H-09, H-11): no network."""

from __future__ import annotations

import base64

import pytest
from parsel import Selector

from spiders import extract

PAGE = "http://a.test/dir/page.html"


def media_of(html: str, page: str = PAGE, cap: int = 100) -> list[str]:
    selector = Selector(text=html)
    base = extract.base_url(selector, page)
    refs = [
        *extract.raw_media_refs(selector, html.encode()),
        *extract.links(selector, base, cap)[1],
    ]
    return extract.resolve(refs, base, cap).urls


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<img src="a.png">', ["http://a.test/dir/a.png"]),
        (
            '<img srcset="/s1.png 1x, /s2.png 2x,/s3.png 300w">',
            ["http://a.test/s1.png", "http://a.test/s2.png", "http://a.test/s3.png"],
        ),
        ('<picture><source srcset="/p.webp"><img src="/p.jpg"></picture>', None),
        ('<img data-src="/lazy.png" data-srcset="/l2.png 2x">', None),
        ('<div data-original="/o.png" data-lazy-src="/ls.png"></div>', None),
        ("<div style=\"background:url('/st.png')\"></div>", ["http://a.test/st.png"]),
        ('<style>.x{background-image:url("/css.png")}</style>', ["http://a.test/css.png"]),
        ('<video src="/v.mp4" poster="/p.jpg"><source src="/v.webm"></video>', None),
        ('<embed src="/e.swf">', ["http://a.test/e.swf"]),
        ('<meta property="og:image" content="/og.jpg">', ["http://a.test/og.jpg"]),
        ('<meta name="twitter:image" content="/tw.jpg">', ["http://a.test/tw.jpg"]),
        ('<a href="/linked.jpg">x</a><a href="/page">y</a>', ["http://a.test/linked.jpg"]),
    ],
)
def test_media_in_every_form(html: str, expected: list[str] | None) -> None:
    found = media_of(html)
    if expected is None:  # several forms: every candidate present
        assert len(found) >= 2 and all(u.startswith("http://a.test/") for u in found), found
    else:
        assert found == expected


def test_srcset_every_candidate() -> None:
    assert extract.srcset_urls("a.png 1x, b.png 2x, c,d.png 3x") == ["a.png", "b.png", "c,d.png"]


@pytest.mark.parametrize(
    ("uri", "outcome"),
    [
        ("data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"x" * 10).decode(), "ok"),
        ("data:image/png;base64,@@@", "malformed"),
        ("data:text/html,<b>x</b>", "not-media"),
        ("data:image/png;base64," + "A" * 10_000, "too-large"),
        ("data:image/png", "malformed"),
    ],
)
def test_data_uris_size_checked(uri: str, outcome: str) -> None:
    result = extract.decode_data_uri(uri, max_bytes=1000)
    assert (result if isinstance(result, str) else "ok") == outcome


def test_data_uris_kept_apart() -> None:
    out = extract.resolve(["data:image/png;base64,AAAA", "/x.png"], PAGE, 10)
    assert out.data_uris == ["data:image/png;base64,AAAA"] and out.urls == ["http://a.test/x.png"]


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://b.test/root/", "http://b.test/root/x.png"),
        ("/other/", "http://a.test/other/x.png"),
        ("javascript:alert(1)", "http://a.test/dir/x.png"),  # a hostile base is ignored
    ],
)
def test_base_href_resolution(base: str, expected: str) -> None:
    assert media_of(f'<base href="{base}"><img src="x.png">') == [expected]


# A NUL never reaches us: libxml2 drops it from the attribute while parsing.
HOSTILE = [
    "javascript:alert(1)",
    "http://a.test:99999/",
    "http://[unclosed/",
    "/" + "x" * 3000,
    "mailto:x@a.test",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_href_skipped_rest_kept(bad: str) -> None:
    html = f'<a href="/good1">g</a><a href="{bad}">b</a><a href="/good2">g</a>'
    links, _ = extract.links(Selector(text=html), PAGE, 100)
    assert links.urls == ["http://a.test/good1", "http://a.test/good2"]
    assert links.bad == 1


@pytest.mark.parametrize(
    ("count", "truncated"), [(10, False), (20, False), (21, True), (500, True)]
)
def test_outlink_cap(count: int, truncated: bool) -> None:
    html = "".join(f'<a href="/p{i}">x</a>' for i in range(count))
    links, _ = extract.links(Selector(text=html), PAGE, 20)
    assert len(links.urls) == min(count, 20) and links.truncated is truncated


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://a.test/v.mp4", "video"),
        ("http://a.test/stream", "video"),  # named by <video src>
        ("http://a.test/i.png", "image"),
    ],
)
def test_media_kinds(url: str, kind: str) -> None:
    selector = Selector(text='<video src="/stream"></video>')
    assert extract.media_kinds([url], selector, PAGE)[url] == kind


@pytest.mark.parametrize(
    ("html", "encoding", "expected"),
    [
        (
            "<div style=\"background:url&#40;'/hidden.png')\"></div>",
            "utf-8",
            "http://a.test/hidden.png",
        ),
        ('<meta property="og:&#105;mage" content="/og.jpg">', "utf-8", "http://a.test/og.jpg"),
        ('<img srcset="/s1.png 1x, /s2.png 2x">', "utf-16", "http://a.test/s2.png"),
        ("<style>.x{background:url(/u16.png)}</style>", "utf-16-le", "http://a.test/u16.png"),
    ],
)
def test_spelling_cannot_hide_media_from_the_marker_shortcut(
    html: str, encoding: str, expected: str
) -> None:
    """The raw-byte shortcut must not skip a query the parser would answer (hostile page)."""
    body = html.encode(encoding)
    selector = Selector(text=html)
    refs = list(extract.raw_media_refs(selector, body, encoding=encoding))
    found = extract.resolve(refs, PAGE, 100).urls
    assert expected in found
