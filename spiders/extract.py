"""Pure extraction helpers for the site spider: links, media references, data: URIs.

No Scrapy, no policy: a parsel `Selector` (or raw strings) in, absolute URLs out, each
through `safe_link`, so one hostile href never costs the page its other links (H-11).
Every function reports what it dropped so the spider can count it.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree
from parsel import Selector

from crawler.net.datauri import decode_payload, header_params
from crawler.net.urls import safe_link

VIDEO_EXTENSIONS = frozenset(
    [
        ".mp4",
        ".m4v",
        ".webm",
        ".mov",
        ".avi",
        ".mkv",
        ".mpg",
        ".mpeg",
        ".3gp",
        ".flv",
        ".wmv",
        ".m3u8",
    ]
)
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | frozenset(
    [
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".gif",
        ".webp",
        ".bmp",
        ".avif",
        ".heic",
        ".tif",
        ".tiff",
        ".svg",
        ".ico",
        # archives: opened in memory, their images and videos hashed (crawler.media.archive)
        ".zip",
        ".tar",
        ".tgz",
        ".tar.gz",
    ]
)
MEDIA_SUFFIXES = tuple(MEDIA_EXTENSIONS)
LINK_XPATH = "//a/@href | //area/@href | //iframe/@src | //frame/@src"
MEDIA_ATTRIBUTE_XPATH = (
    "//img/@src | //video/@src | //video/@poster | //source/@src | //embed/@src"
    " | //object/@data | //input[@type='image']/@src | //*/@data-src | //*/@data-original"
    " | //*/@data-lazy | //*/@data-lazy-src | //*/@background"
)
SRCSET_XPATH = "//img/@srcset | //source/@srcset | //*/@data-srcset"
META_XPATH = (
    "//meta[@property='og:image' or @name='og:image' or @property='og:image:url'"
    " or @property='og:image:secure_url' or @property='og:video' or @name='twitter:image'"
    " or @property='twitter:image' or @name='twitter:image:src']/@content"
)
VIDEO_XPATH = (
    "//video/@src | //video//source/@src | //meta[@property='og:video'"
    " or @property='og:video:url' or @property='og:video:secure_url']/@content"
)
STYLE_XPATH = "//@style | //style/text()"
COUNT_XPATH = "count(//a) + count(//img)"
CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]{1,4200})\1\s*\)""", re.IGNORECASE)
MAX_ATTRIBUTE = 1_000_000  # a srcset or style longer than this is not parsed further


@functools.cache
def _compiled(query: str) -> etree.XPath:
    return etree.XPath(query, smart_strings=False)


def strings(selector: Selector, query: str) -> list[str]:
    """The string results of *query*: lxml straight, without a parsel `Selector` per
    result (that wrapping cost more than the queries), same strings as `getall()`."""
    return [str(v) for v in _compiled(query)(selector.root)]


def number(selector: Selector, query: str) -> float:
    value = _compiled(query)(selector.root)
    return float(value) if isinstance(value, int | float) else 0.0


@dataclass
class Extracted:
    urls: list[str] = field(default_factory=list)
    data_uris: list[str] = field(default_factory=list)
    bad: int = 0
    truncated: bool = False


def base_url(selector: Selector, page_url: str) -> str:
    """The page URL after ``<base href>``, itself passed through `safe_link` (C-06)."""
    found = strings(selector, "//base/@href")
    if not found:
        return page_url
    href = found[0]
    return safe_link(href, page_url) or page_url


def srcset_urls(value: str) -> list[str]:
    """Candidate URLs of a ``srcset`` (HTML's parser, simplified: commas end a URL only
    when they end it; descriptors after whitespace are skipped up to the next comma)."""
    urls, pos, n = [], 0, min(len(value), MAX_ATTRIBUTE)
    while pos < n:
        while pos < n and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < n and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            while pos < n and value[pos] != ",":
                pos += 1
        if url:
            urls.append(url)
    return urls


def css_urls(text: str) -> list[str]:
    return [m.group(2).strip() for m in CSS_URL.finditer(text[:MAX_ATTRIBUTE])]


def is_media_link(url: str) -> bool:
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(MEDIA_SUFFIXES)


def raw_media_refs(
    selector: Selector,
    body: bytes = b"",
    *,
    lower: bytes | None = None,
    encoding: str | None = None,
) -> Iterable[str]:
    """Every media reference on the page, in page order per kind, unresolved.

    With *body* given, a query whose marker never occurs in the raw bytes is skipped:
    each XPath here walks the whole tree, and most pages have no srcset or CSS urls.
    *lower* is ``body.lower()`` when the caller has it already (one copy per page).
    The raw bytes can hide a marker the parser sees: a character reference
    (``url&#40;``, ``og:&#105;mage``) or an encoding that is not ASCII-compatible
    (*encoding*, e.g. UTF-16). Then every query runs: a hostile page must not hide its
    images by spelling.
    """
    if lower is None:
        lower = body.lower() if body else b""
    if b"&#" in lower or not ascii_compatible(encoding):
        lower = b""
    yield from strings(selector, MEDIA_ATTRIBUTE_XPATH)
    if not lower or b"srcset" in lower:
        for value in strings(selector, SRCSET_XPATH):
            yield from srcset_urls(value)
    if not lower or b"image" in lower or b"og:video" in lower:
        yield from strings(selector, META_XPATH)
    if not lower or b"url(" in lower:
        for text in strings(selector, STYLE_XPATH):
            yield from css_urls(text)


def ascii_compatible(encoding: str | None) -> bool:
    """Whether ASCII markers in the raw bytes mean what they say (None: assume UTF-8)."""
    if not encoding:
        return True
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return False
    return not name.startswith(("utf-16", "utf-32", "utf-7"))


def resolve(refs: Iterable[str], base: str, cap: int) -> Extracted:
    """Absolute, de-duplicated URLs (``data:`` URIs apart), at most *cap* of them."""
    out = Extracted()
    seen: set[str] = set()
    for ref in refs:
        if ref.strip().lower().startswith("data:"):
            out.data_uris.append(ref.strip())
            continue
        url = safe_link(ref, base)
        if url is None:
            out.bad += 1
        elif url not in seen:
            if len(out.urls) >= cap:
                out.truncated = True
                break
            seen.add(url)
            out.urls.append(url)
    return out


def links(selector: Selector, base: str, cap: int) -> tuple[Extracted, list[str]]:
    """Page links (capped) and links that point at media files by extension."""
    hrefs = strings(selector, f"({LINK_XPATH})[position() <= {cap * 2 + 1}]")
    extracted = resolve(hrefs, base, cap)
    if len(hrefs) > cap * 2:  # only then can there be more than the query returned
        total = int(number(selector, f"count({LINK_XPATH})"))
        extracted.truncated = extracted.truncated or total > cap * 2 + 1
    media = [u for u in extracted.urls if is_media_link(u)]
    extracted.urls = [u for u in extracted.urls if not is_media_link(u)]
    return extracted, media


@dataclass(frozen=True)
class DataMedia:
    mime: str
    body: bytes


def decode_data_uri(uri: str, max_bytes: int) -> DataMedia | str:
    """The decoded media of a ``data:`` URI, or why not (``too-large``, ``malformed``,
    ``not-media``). The size is checked before decoding (M-10)."""
    if len(uri) > max_bytes * 4 // 3 + 1024:
        return "too-large"
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        return "malformed"
    params = header_params(header)
    mime = params[0] or "text/plain"
    if not mime.startswith(("image/", "video/")):
        return "not-media"
    body = decode_payload(params, payload)
    if not body:
        return "malformed"
    return "too-large" if len(body) > max_bytes else DataMedia(mime, body)


RAW_COUNT_LIMIT = 20_000_000  # bytes of the body whose tags are counted


def looks_truncated(body: bytes, selector: Selector, *, lower: bytes | None = None) -> bool:
    """libxml2 stops at its limits without raising (a link under 100k nested ``div``s
    simply vanished, H-10): compare tag counts in the raw bytes with the parsed tree.
    *lower* is ``body.lower()`` when the caller has it already."""
    if lower is None:
        lower = body[:RAW_COUNT_LIMIT].lower()
    raw = lower.count(b"<a ", 0, RAW_COUNT_LIMIT) + lower.count(b"<img ", 0, RAW_COUNT_LIMIT)
    parsed = int(number(selector, COUNT_XPATH))
    return raw - parsed > max(5, raw // 10) or last_depth(selector) >= TRUNCATION_DEPTH


# libxml2 (huge tree, as parsel parses) stops at 2,048 levels and drops the rest of the
# page silently; a document whose last element sits that deep was cut there (H-10).
TRUNCATION_DEPTH = 2000


def last_depth(selector: Selector) -> int:
    """Depth of the last element in document order: O(depth), not O(tree)."""
    element, depth = selector.root, 0
    while depth <= TRUNCATION_DEPTH and hasattr(element, "__len__") and len(element):
        element, depth = element[-1], depth + 1
    return depth


def media_kinds(urls: list[str], selector: Selector, base: str) -> dict[str, str]:
    """``image`` or ``video`` per URL, for `media.types`: video by extension or by the
    element that names it (``<video src>``, its ``<source>``, ``og:video``)."""
    videos = {safe_link(ref, base) for ref in selector.xpath(VIDEO_XPATH).getall()}
    kinds = {}
    for url in urls:
        path = url.split("?", 1)[0].split("#", 1)[0].lower()
        is_video = url in videos or any(path.endswith(ext) for ext in VIDEO_EXTENSIONS)
        kinds[url] = "video" if is_video else "image"
    return kinds
