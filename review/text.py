"""Hostile text from crawled pages, RDAP and GeoIP, made safe to show (docs/hazards.md A-01..A-03).

Jinja2's autoescape handles markup; these helpers handle what escaping leaves intact:
`javascript:`/`data:` URLs (only parsed http(s) URLs ever become links), bidi overrides and
zero-width characters (shown as visible `<U+202E>` escapes, and every value sits in its own
bidi-isolated element in the templates), megabyte strings (cut), and punycode hosts (the
ASCII form is shown beside the Unicode one so a homograph cannot pass for the real name).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

MAX_SHOWN = 2000
HTTP_SCHEMES = ("http", "https")

# Format (Cf) characters include the bidi controls U+202A..U+202E, U+2066..U+2069 and the
# zero-width U+200B..U+200D, U+2060, U+FEFF; controls (Cc) include NUL, CR, LF and ESC.
_ESCAPED_CATEGORIES = ("Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp")


def _visible(char: str) -> str:
    if unicodedata.category(char) in _ESCAPED_CATEGORIES:
        return f"<U+{ord(char):04X}>"
    return char


def display_text(value: object, limit: int = MAX_SHOWN) -> str:
    """`value` as one line of plain text with invisible and control characters spelled out."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    head = text[:limit]
    # isprintable() is False for every character of the escaped categories (and for any
    # separator but the space), so the common clean string skips the per-character walk.
    # Lone surrogates from bad UTF-8 decoding become visible escapes, never raw bytes.
    shown = head if head.isprintable() else "".join(_visible(c) for c in head)
    return shown + (f"… [{len(text) - limit} more characters]" if cut else "")


def link_target(url: object) -> str | None:
    """The URL when it is a well-formed absolute http(s) URL that may be offered as a link."""
    if not isinstance(url, str) or len(url) > MAX_SHOWN:
        return None
    if any(unicodedata.category(c) in _ESCAPED_CATEGORIES or c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in HTTP_SCHEMES or not parts.hostname:
        return None
    return url


def ascii_host(host: object) -> str | None:
    """The punycode (IDNA) form of a host when it differs from what is shown, else None."""
    if not isinstance(host, str) or not host or host.isascii():
        return None
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return "(not a valid internationalised name)"


def unicode_host(host: object) -> str | None:
    """The Unicode form of a punycode host (`xn--`), so a homograph is visible, else None."""
    if not isinstance(host, str) or "xn--" not in host.lower():
        return None
    try:
        decoded = host.encode("ascii").decode("idna")
    except UnicodeError:
        return None
    return decoded if decoded != host else None
