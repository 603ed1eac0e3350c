"""Clean hostile text from GeoIP files and RDAP answers before anything stores it.

Strings from a `.mmdb` file or an RDAP server are attacker-influenced (docs/hazards.md A-01, E-06):
they may hold CR/LF (header injection in notices), bidi overrides, NUL bytes or megabytes of
text. Cleaning here is plain-text hygiene only: markup such as `<script>` is kept as text,
because escaping belongs to the place that renders it (templates, e-mail builders).
"""

from __future__ import annotations

import unicodedata

DEFAULT_MAX_LEN = 200

# Placeholders registries put where a name or contact would be; they are not names.
_PLACEHOLDER_PREFIXES = (
    "redacted",
    "not disclosed",
    "non-public data",
    "data protected",
    "withheld",
    "please query the rdap service",
    "please query the whois service",
    "gdpr masked",
)


def clean_text(value: object, max_len: int = DEFAULT_MAX_LEN) -> str | None:
    """Return `value` as one line of printable text, at most `max_len` characters.

    Non-strings, and strings that are empty once cleaned, give None. Control and format
    characters (Unicode category C*: CR, LF, NUL, bidi overrides, ...) become spaces and
    runs of whitespace collapse, so the result never spans lines.
    """
    if not isinstance(value, str):
        return None
    # Cap before the per-character pass so a 50 MB string costs little.
    head = value[: max_len * 4]
    chars = (" " if unicodedata.category(c).startswith("C") else c for c in head)
    text = " ".join("".join(chars).split())
    return text[:max_len].rstrip() or None


def is_placeholder(text: str) -> bool:
    """True for privacy placeholders such as "REDACTED FOR PRIVACY" or "Not Disclosed"."""
    folded = text.casefold().strip(" .:-*[]()")
    return folded.startswith(_PLACEHOLDER_PREFIXES)
