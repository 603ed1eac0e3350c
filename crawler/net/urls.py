"""URL and host identity, crawl scope, trap guards and the reflection guard.

Pure: no I/O, no Scrapy. Every host is read the way the downloader reads it: Scrapy
passes each request URL through `w3lib.url.safe_url_string` (which treats ``\\`` as
``/``, drops tabs and newlines, maps IDN labels with NFKC and IDNA 2003) and connects to
`urllib.parse.urlsplit(url).hostname`. Doing the same here means the host judged by the
scope is the host connected to (hazard C-11).

Reason keys returned by `Scope.check`, `Budget.try_take` and `check_url_shape`:
``url-too-long``, ``bad-url``, ``scheme``, ``bad-host``, ``denied-domain``,
``denied-pattern``, ``reflection``, ``trap/deep-path``, ``trap/repeating-segments``,
``max-depth``, ``offsite``, ``budget/pages``, ``budget/host``, ``budget/prefix``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, unquote_plus, urljoin, urlsplit, urlunsplit

from w3lib.url import safe_url_string

from crawler.net.addresses import parse_address, parse_ipv4_number

if TYPE_CHECKING:
    import tldextract

    from crawler.policy import CrawlPolicy, ScopePolicy

MAX_URL_LENGTH = 2083  # the old IE limit, still the de-facto ceiling for links
MAX_PATH_SEGMENTS = 20
MAX_SEGMENT_REPEATS = 2
HTTP_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

SESSION_PARAMS = frozenset(
    {"jsessionid", "phpsessid", "sid", "sessionid", "session_id", "aspsessionid"}
)
TRACKING_PREFIXES = ("utm_",)


class InvalidURL(ValueError):
    """A URL or host that the downloader could not, or should not, connect to."""


# --- hosts ---------------------------------------------------------------------------

_ASCII_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_FORBIDDEN_HOST_CHARS = re.compile(r"[\x00-\x20\x7f/\\@#?%:\[\]<>^|\"'`{}]")


# Pure functions of a host or URL string, called by several components for every link
# and request (frontier, gate, robots, politeness, storage): cached so the reactor parses
# each spelling once. Exceptions are not cached; every cached value is immutable.
_HOST_CACHE = 16_384
_URL_CACHE = 8_192


@functools.lru_cache(maxsize=_HOST_CACHE)
def canonical_host(host: str) -> str:
    """The one spelling of *host* used for scope, robots, politeness, DB and GeoIP.

    Punycode as the downloader encodes it, lower case, no trailing dot, IPv6 without
    brackets, IPv4 in dotted-quad whatever the input spelling (``127.1`` and
    ``0x7f000001`` are ``127.0.0.1``). Raises `InvalidURL` for anything that is not a
    plain host: ``user@host``, ``host:port``, backslashes, ``#``, whitespace, ``%``.
    Idempotent.
    """
    if host.startswith("[") and host.endswith("]") or ":" in host:
        return _canonical_ipv6(host)
    if not host or _FORBIDDEN_HOST_CHARS.search(host):
        raise InvalidURL(f"not a plain host name: {host!r}")
    ascii_host = _to_ascii(host).lower()
    if ascii_host.endswith("."):
        ascii_host = ascii_host[:-1]
    if not _ASCII_HOST.fullmatch(ascii_host) or len(ascii_host) > 253:
        raise InvalidURL(f"not a valid host name: {host!r}")
    if any(len(label) > 63 for label in ascii_host.split(".")):
        raise InvalidURL(f"host label longer than 63 characters: {host!r}")
    return parse_ipv4_number(ascii_host) or ascii_host


def _canonical_ipv6(host: str) -> str:
    inner = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    address = parse_address(inner)
    if address is None or address.version != 6:
        raise InvalidURL(f"not a valid IPv6 literal: {host!r}")
    return str(address)


def _to_ascii(host: str) -> str:
    if host.isascii():
        return host
    # The same mapping as w3lib's, so a Unicode host names the host Scrapy connects to.
    normalised = unicodedata.normalize("NFKC", host)
    try:
        return normalised.encode("idna").decode("ascii")
    except UnicodeError:
        return _to_ascii_uts46(normalised)


def _to_ascii_uts46(host: str) -> str:
    try:
        import idna
    except ImportError as exc:
        raise InvalidURL(f"cannot encode host {host!r}") from exc
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise InvalidURL(f"cannot encode host {host!r}: {exc}") from exc


def host_variants(host: str) -> frozenset[str]:
    """*host* as the downloader encodes it and, when different, as browsers do (UTS-46).

    ``straße.de`` is ``strasse.de`` to Scrapy but ``xn--strae-oqa.de`` to a browser; a
    deny list blocks both so neither spelling slips through.
    """
    variants = {canonical_host(host)}
    if not host.isascii():
        try:
            import idna

            text = unicodedata.normalize("NFKC", host).rstrip(".")
            variants.add(canonical_host(idna.encode(text, uts46=True).decode("ascii")))
        except (ImportError, UnicodeError, InvalidURL):
            pass
    return frozenset(variants)


@functools.lru_cache(maxsize=_URL_CACHE)
def downloader_split(url: str) -> SplitResult:
    """*url* split as Scrapy's downloader sees it; `InvalidURL` where Scrapy would fail."""
    try:
        parts = urlsplit(safe_url_string(url))
        parts.port  # noqa: B018 - raises ValueError for a port over 65535 or not a number
    except (ValueError, UnicodeError) as exc:
        raise InvalidURL(f"unparseable URL: {exc}") from exc
    return parts


@functools.lru_cache(maxsize=_URL_CACHE)
def url_host(url: str) -> str:
    """The canonical host the downloader would connect to for *url*."""
    hostname = downloader_split(url).hostname
    if not hostname:
        raise InvalidURL("URL has no host")
    return canonical_host(hostname)


@functools.cache
def _extractor() -> tldextract.TLDExtract:
    import tldextract

    # The bundled snapshot only: no suffix_list_urls means no fetch, no cache_dir means
    # no disk writes. Private suffixes (github.io, blogspot.com) count, so one user's
    # site is its own registered domain and "registered-domain" scope stays narrow.
    return tldextract.TLDExtract(
        cache_dir=None,
        suffix_list_urls=(),
        fallback_to_snapshot=True,
        include_psl_private_domains=True,
    )


@functools.lru_cache(maxsize=_HOST_CACHE)
def registered_domain(host: str) -> str:
    """The registrable domain of *host* (``img.example.co.uk`` -> ``example.co.uk``).

    An IP address is its own registered domain. A name under an unknown suffix follows
    the Public Suffix List's default rule (the last label is the suffix), so test names
    such as ``a.site.test`` give ``site.test``.
    """
    host = canonical_host(host)
    if parse_address(host) is not None:
        return host
    parts = _extractor()(host)
    if parts.suffix and parts.domain:
        return f"{parts.domain}.{parts.suffix}"
    if parts.suffix:
        return host  # the host is itself a public suffix
    labels = host.split(".")
    return ".".join(labels[-2:])


def is_same_or_subdomain(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


# --- canonical URL for de-duplication ------------------------------------------------

_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# ASP.NET cookieless sessions put the session in a path segment: /(S(x1y2z3))/page.aspx
_ASPNET_SESSION_SEGMENT = re.compile(r"\((?:[A-Za-z]\([^()/]*\))+\)")


@functools.lru_cache(maxsize=_URL_CACHE)
def canonical_url(url: str) -> str:
    """One spelling per logical page, for fingerprints; callers keep the original URL.

    Lower-case scheme and host, punycode, default port and fragment and user info
    dropped, dot segments resolved, percent-escapes normalised, session and ``utm_*``
    parameters removed (also ``;jsessionid=`` path parameters), query parameters in a
    stable order by name (repeated names keep their relative order).
    """
    parts = downloader_split(url)
    if not parts.hostname:
        raise InvalidURL("URL has no host")
    host = canonical_host(parts.hostname)
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(parts.scheme):
        netloc = f"{netloc}:{parts.port}"
    path = _canonical_path(parts.path)
    return urlunsplit((parts.scheme, netloc, path, _canonical_query(parts.query), ""))


def _normalise_escapes(text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(fix, text)


def _is_session_name(name: str) -> bool:
    key = unquote_plus(name).strip().lower()
    return key in SESSION_PARAMS or key.startswith(TRACKING_PREFIXES)


def _canonical_path(path: str) -> str:
    segments = []
    for segment in path.split("/"):
        name, *params = segment.split(";")
        kept = [p for p in params if not _is_session_name(p.partition("=")[0])]
        if _ASPNET_SESSION_SEGMENT.fullmatch(name) and not kept:
            continue
        segments.append(_normalise_escapes(";".join([name, *kept])))
    return _remove_dot_segments("/".join(segments)) or "/"


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, as servers resolve ``/a/../b``."""
    segments = path.split("/")
    output: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments[-1] in (".", ".."):
        output.append("")  # "/a/b/.." names the directory "/a/"
    return "/".join(output)


def _canonical_query(query: str) -> str:
    pairs = []
    for token in query.split("&"):
        if not token:
            continue
        name, eq, value = token.partition("=")
        if _is_session_name(name):
            continue
        pairs.append((_normalise_escapes(name), eq + _normalise_escapes(value)))
    pairs.sort(key=lambda pair: pair[0])  # stable: a=2&a=1 stays distinct from a=1&a=2
    return "&".join(name + rest for name, rest in pairs)


# --- links from pages ----------------------------------------------------------------

_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")


def safe_link(href: str, base_url: str) -> str | None:
    """The absolute http(s) URL *href* points to from a page at *base_url*, or None.

    *base_url* is the page URL after any ``<base href>``. Never raises: a hostile href
    (``javascript:``, ``data:``, ``mailto:``, port 99999, an unclosed ``[``, NUL or
    control characters, over 2,083 characters) gives None so the rest of the page goes
    on (hazard H-11). Whitespace is stripped and ``\\`` read as ``/`` as browsers do;
    the fragment is dropped (it never reaches a server).
    """
    try:
        return _safe_link(href, base_url)
    except (ValueError, UnicodeError, TypeError):
        return None


def _safe_link(href: str, base_url: str) -> str | None:
    if len(href) > 2 * MAX_URL_LENGTH:
        return None  # before any string work on a hostile megabyte
    text = href.strip(_C0_OR_SPACE).translate(_TAB_OR_NEWLINE)
    if len(text) > MAX_URL_LENGTH or _CONTROL.search(text):
        return None
    scheme = _SCHEME.match(text)
    if scheme and scheme.group(1).lower() not in HTTP_SCHEMES:
        return None
    text = _backslashes_to_slashes(text)
    if text[:1] == "/" and text[1:2] != "/":
        origin = _origin(base_url)
        if origin is not None:
            return _absolute_path_link(origin, text)
    return _checked_link(urljoin(base_url, text))


# Most links of most pages are absolute paths ("/p/16"), repeated across a site's pages.
# `urljoin` resolves those against the base's scheme and netloc alone (its path, query
# and fragment are never read), so the whole answer is cached on (origin, href): the
# same string `urljoin(base_url, href)` gives, then the same checks.


@functools.lru_cache(maxsize=_HOST_CACHE)
def _origin(base_url: str) -> str | None:
    """``scheme://netloc`` of *base_url* exactly as `urljoin` splits it, or None."""
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return None
    if parts.scheme not in HTTP_SCHEMES or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


@functools.lru_cache(maxsize=_URL_CACHE)
def _absolute_path_link(origin: str, path: str) -> str | None:
    return _checked_link(urljoin(origin + "/", path))


@functools.lru_cache(maxsize=_URL_CACHE)
def _checked_link(joined: str) -> str | None:
    """*joined* as the downloader will request it, without fragment; None when not
    http(s), hostless, a host no resolver should see, or too long. A pure function of
    *joined*: cached, and None is cached too (never an exception)."""
    try:
        parts = downloader_split(joined)
        if parts.scheme not in HTTP_SCHEMES or not parts.hostname:
            return None
        canonical_host(parts.hostname)  # raises for hosts no resolver should see
        result = urlunsplit(parts._replace(fragment=""))
    except (ValueError, UnicodeError, TypeError):
        return None
    return result if len(result) <= MAX_URL_LENGTH else None


def _backslashes_to_slashes(href: str) -> str:
    # In http(s) URLs browsers read "\" as "/" before the query: "/\evil.com" is
    # "//evil.com", another host. Resolve it as they do so the scope judges that host.
    if "\\" not in href:
        return href
    cut = min((i for i in (href.find("?"), href.find("#")) if i >= 0), default=len(href))
    return href[:cut].replace("\\", "/") + href[cut:]


# --- reflection guard ----------------------------------------------------------------

# Services that fetch a URL they are given: reverse image search, translation proxies,
# archivers. Asking them about candidate media would make a third party fetch it.
_REFLECTING_ENDPOINTS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (re.compile(host), re.compile(path))
    for host, path in (
        (r"^images\.google\.", r""),
        (r"(^|\.)google\.[a-z.]+$", r"^/(searchbyimage|uploadbyurl|imgres|url)\b"),
        (r"^lens\.google\.com$", r""),
        (r"(^|\.)yandex\.[a-z.]+$", r"^/images/search"),
        (r"(^|\.)tineye\.com$", r"^/search"),
        (r"(^|\.)bing\.com$", r"^/images/search"),
        (r"\.translate\.goog$", r""),
        (r"^translate\.google(usercontent)?\.", r""),
        (r"(^|\.)saucenao\.com$", r"^/search"),
        (r"(^|\.)iqdb\.org$", r""),
        (r"(^|\.)graph\.baidu\.com$", r""),
        (r"(^|\.)web\.archive\.org$", r"^/save"),
        (r"^archive\.(ph|today|is|li|vn|fo|md)$", r"^/submit"),
    )
)
# Parameter names whose bare host-like value ("cdn.other.net/x.jpg") means "fetch this".
_URL_PARAMS = frozenset(
    {"url", "u", "uri", "img", "image", "imgurl", "image_url", "imageurl", "src", "source"}
    | {"q", "link", "target", "dest", "destination", "redirect", "redirect_url", "goto"}
    | {"to", "out", "href", "file", "proxy", "fetch", "load", "site", "domain", "host"}
)
# Special-use and internal names that the suffix list lacks but a service may resolve.
SPECIAL_USE_TLDS = frozenset(
    {"test", "example", "invalid", "localhost", "local", "internal", "lan", "home", "corp"}
)
_EMBEDDED_URL = re.compile(r"(?i)https?:[/\\]+([^/\\?#\s&'\"<>]+)")
_SCHEME_RELATIVE = re.compile(r"^[/\\]{2}([^/\\?#\s&]+)")
_BASE64ISH = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")


def is_reflection(url: str) -> bool:
    """True when fetching *url* would make another service fetch some other URL.

    A known reverse-image-search, translation or archive endpoint, or a URL whose query
    or path carries a URL or host of another registered domain (``?url=``, ``?imgurl=``,
    ``/proxy/http://...``, percent-encoded any number of times, or base64 ``aHR0c...``).
    Unparseable embedded hosts count as foreign: the guard fails closed.
    """
    try:
        parts = downloader_split(url)
        own = registered_domain(parts.hostname or "")
    except InvalidURL:
        return False  # not fetchable at all; the caller's URL checks say why
    host = canonical_host(parts.hostname or "")
    if any(p.search(parts.path) for p in _endpoint_paths(host)):
        return True
    if not parts.query and ":" not in parts.path and "%" not in parts.path:
        return False  # nothing could spell a URL or a host: most links of most pages
    return any(_is_foreign(candidate, own) for candidate in _embedded_hosts(parts))


@functools.lru_cache(maxsize=_HOST_CACHE)
def _endpoint_paths(host: str) -> tuple[re.Pattern[str], ...]:
    """The path rules of the reflecting endpoints *host* is one of (usually none)."""
    return tuple(p for h, p in _REFLECTING_ENDPOINTS if h.search(host))


def _embedded_hosts(parts: SplitResult) -> Iterable[str]:
    text = parts.path + "?" + parts.query
    for _ in range(4):  # nested encodings: %253A%252F%252F ...
        yield from _EMBEDDED_URL.findall(text)
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    for name, value in _query_pairs(parts.query):
        yield from _value_hosts(name, value)


def _query_pairs(query: str) -> Iterable[tuple[str, str]]:
    for token in query.split("&"):
        name, _, value = token.partition("=")
        yield unquote_plus(name).strip().lower(), unquote_plus(value).strip()


def _value_hosts(name: str, value: str) -> Iterable[str]:
    for text in (value, _base64_text(value)):
        yield from _SCHEME_RELATIVE.findall(text)
        yield from _EMBEDDED_URL.findall(text)
    if name in _URL_PARAMS and _looks_like_host(value):
        yield re.split(r"[/?#\\]", value, maxsplit=1)[0]


def _base64_text(value: str) -> str:
    if not _BASE64ISH.fullmatch(value):
        return ""
    padded = value + "=" * (-len(value) % 4)
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            return decode(padded).decode("ascii", errors="replace")
        except (binascii.Error, ValueError):
            continue
    return ""


def _looks_like_host(value: str) -> bool:
    candidate = re.split(r"[/?#\\]", value, maxsplit=1)[0]
    if "." not in candidate or " " in candidate:
        return False
    try:
        host = canonical_host(candidate.rpartition("@")[2].partition(":")[0])
    except InvalidURL:
        return False
    if parse_address(host) is not None:
        return True
    if host.rpartition(".")[2] in SPECIAL_USE_TLDS:
        return True
    return bool(_extractor()(host).suffix)  # a real public suffix, not "image.jpg"


def _is_foreign(authority: str, own_domain: str) -> bool:
    hostport = authority.rpartition("@")[2]
    host = hostport if hostport.startswith("[") else hostport.partition(":")[0]
    try:
        return registered_domain(host) != own_domain
    except InvalidURL:
        return True


# --- scope ---------------------------------------------------------------------------


def check_url_shape(url: str) -> str | None:
    """Checks that need no policy: length first (before any regex), scheme, host, traps."""
    if len(url) > MAX_URL_LENGTH:
        return "url-too-long"
    try:
        parts = downloader_split(url)
    except InvalidURL:
        return "bad-url"
    if parts.scheme not in HTTP_SCHEMES:
        return "scheme"
    try:
        canonical_host(parts.hostname or "")
    except InvalidURL:
        return "bad-host"
    return check_path_traps(parts.path)


def check_path_traps(path: str) -> str | None:
    """``trap/deep-path`` over 20 segments; ``trap/repeating-segments`` for a run of
    segments repeated more than twice in a row (``/a/b/a/b/a/b/``, ``/a/a/a/``)."""
    segments = path.strip("/").split("/") if path.strip("/") else []
    if len(segments) > MAX_PATH_SEGMENTS:
        return "trap/deep-path"
    if _has_repeating_run(segments, MAX_SEGMENT_REPEATS + 1):
        return "trap/repeating-segments"
    return None


def _has_repeating_run(segments: list[str], times: int) -> bool:
    count = len(segments)
    for size in range(1, count // times + 1):
        for start in range(count - size * times + 1):
            unit = segments[start : start + size]
            if all(
                segments[start + k * size : start + (k + 1) * size] == unit for k in range(1, times)
            ):
                return True
    return False


class Scope:
    """Which URLs a crawl may fetch, from the `[scope]` policy and the seed URLs.

    There is no ``dont_filter`` escape hatch: seeds, retries, redirects, rechecks and
    previews all pass through `check`, and deny rules win over seeds and media (C-07).
    ``depth`` is the number of link hops from a seed; pages may go to ``max_depth``,
    media one hop further (the images of the deepest pages are still fetched).
    Follow modes: ``host`` (a seed's exact host), ``registered-domain`` (a seed's
    registered domain), ``seed-prefix`` (a seed's host and the path up to its last
    ``/``; scheme and port ignored); ``extra_domains`` and their subdomains add to each.
    ``fetch_offsite`` is `MediaPolicy.fetch_offsite`.
    """

    @classmethod
    def from_policy(cls, policy: CrawlPolicy, seeds: Iterable[str]) -> Scope:
        return cls(policy.scope, seeds, fetch_offsite=policy.media.fetch_offsite)

    def __init__(
        self, policy: ScopePolicy, seeds: Iterable[str], *, fetch_offsite: bool = True
    ) -> None:
        self.policy = policy
        self.fetch_offsite = fetch_offsite
        self._deny = frozenset(d for domain in policy.deny_domains for d in host_variants(domain))
        self._deny_patterns = tuple(re.compile(p) for p in policy.deny_url_patterns)
        self._hosts: set[str] = set()
        self._domains: set[str] = set()
        self._prefixes: set[tuple[str, str]] = set()
        self.rejected_seeds: list[tuple[str, str]] = []
        for seed in seeds:
            self._add_seed(seed)

    @property
    def has_seeds(self) -> bool:
        """False when every seed was rejected: a crawl with no work is a failure (C-13)."""
        return bool(self._hosts)

    def _add_seed(self, seed: str) -> None:
        reason = self._check_rules(seed)
        if reason is not None:
            self.rejected_seeds.append((seed, reason))
            return
        parts = downloader_split(seed)
        host = canonical_host(parts.hostname or "")
        self._hosts.add(host)
        self._domains.add(registered_domain(host))
        self._prefixes.add((host, parts.path[: parts.path.rfind("/") + 1] or "/"))

    def check(self, url: str, *, depth: int, is_media: bool = False) -> str | None:
        """None when *url* may be fetched, else a reason key (module doc)."""
        reason = self._check_rules(url)
        if reason is not None:
            return reason
        if depth > self.policy.max_depth + (1 if is_media else 0):
            return "max-depth"
        if self.in_scope(url):
            return None
        if is_media and self.fetch_offsite:
            return None  # one hop: the caller never follows links out of media
        return "offsite"

    def _check_rules(self, url: str) -> str | None:
        reason = check_url_shape(url)
        if reason is not None:
            return reason
        host = url_host(url)
        if any(is_same_or_subdomain(host, d) for d in self._deny):
            return "denied-domain"
        # Patterns see both the URL as written and its canonical form, so an escaped
        # or reordered spelling cannot dodge a rule.
        if self._deny_patterns and self._denied_pattern(url):
            return "denied-pattern"
        if is_reflection(url):
            return "reflection"
        return None

    def _denied_pattern(self, url: str) -> bool:
        spellings = (url, canonical_url(url))
        return any(p.search(s) for p in self._deny_patterns for s in spellings)

    def in_scope(self, url: str) -> bool:
        """Whether *url* is inside the followed area (ignores deny rules and depth)."""
        parts = downloader_split(url)
        host = canonical_host(parts.hostname or "")
        if any(is_same_or_subdomain(host, d) for d in self.policy.extra_domains):
            return True
        mode = self.policy.follow
        if mode == "host":
            return host in self._hosts
        if mode == "seed-prefix":
            return any(h == host and parts.path.startswith(p) for h, p in self._prefixes)
        return registered_domain(host) in self._domains


# --- budgets -------------------------------------------------------------------------


class Budget:
    """Page budgets of one crawl (C-01): per crawl, per host, per path prefix.

    The prefix is the host plus the first ``prefix_segments`` path segments, so one
    endless calendar or facet tree cannot eat a host's whole budget. `try_take` takes
    one page from every budget or from none.
    """

    def __init__(
        self,
        max_pages: int,
        max_pages_per_host: int,
        max_pages_per_prefix: int | None = None,
        prefix_segments: int = 2,
    ) -> None:
        self.max_pages = max_pages
        self.max_pages_per_host = max_pages_per_host
        self.max_pages_per_prefix = (
            max_pages_per_prefix
            if max_pages_per_prefix is not None
            else max(1, max_pages_per_host // 4)
        )
        self.prefix_segments = prefix_segments
        self.pages = 0
        self._hosts: Counter[str] = Counter()
        self._prefixes: Counter[tuple[str, str]] = Counter()
        self._exhausted: set[str] = set()

    @classmethod
    def from_policy(cls, policy: ScopePolicy) -> Budget:
        return cls(policy.max_pages, policy.max_pages_per_host)

    @property
    def exhausted_hosts(self) -> frozenset[str]:
        """Hosts that hit their host or prefix budget, for ``scope/budget-exhausted``."""
        return frozenset(self._exhausted)

    def try_take(self, url: str) -> str | None:
        try:
            host = url_host(url)
            path = downloader_split(url).path
        except InvalidURL:
            return "bad-url"
        prefix = (host, "/".join(path.strip("/").split("/")[: self.prefix_segments]))
        reason = self._refusal(host, prefix)
        if reason is not None:
            return reason
        self.pages += 1
        self._hosts[host] += 1
        self._prefixes[prefix] += 1
        return None

    def _refusal(self, host: str, prefix: tuple[str, str]) -> str | None:
        if self.pages >= self.max_pages:
            return "budget/pages"
        if self._hosts[host] >= self.max_pages_per_host:
            self._exhausted.add(host)
            return "budget/host"
        if self._prefixes[prefix] >= self.max_pages_per_prefix:
            self._exhausted.add(host)
            return "budget/prefix"
        return None
