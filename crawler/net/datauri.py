"""How a `data:` URI's header and payload decode (RFC 2397), as a browser would see them.

One rule for the spider (`spiders.extract.decode_data_uri`, which hashes the media) and
for evidence (`crawler.evidence.datauri`, which replaces it by its hashes in the archived
page), so both see the same bytes. Pure: no size checks here, the callers make them
before decoding (M-10).
"""

from __future__ import annotations

import base64
import re
from urllib.parse import unquote_to_bytes


def header_params(header: str) -> list[str]:
    """The `;`-separated parts of a `data:` header (between `data:` and `,`), stripped
    and lower-cased: the media type first, then its parameters (`base64`, `charset=...`)."""
    return [p.strip().lower() for p in header.split(";")]


def decode_payload(params: list[str], payload: str) -> bytes | None:
    """The bytes of a `data:` payload (percent-decoded, then base64-decoded when `base64`
    is among the parameters, whitespace ignored); None when it is malformed."""
    try:
        if "base64" in params[1:]:
            cleaned = re.sub(r"\s+", "", unquote_to_bytes(payload).decode("ascii"))
            return base64.b64decode(cleaned, validate=True)
        return unquote_to_bytes(payload)
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
