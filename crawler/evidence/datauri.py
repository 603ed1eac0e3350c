"""Replace every `data:` URI in page text by a placeholder carrying its hashes (M-10, M-11).

Wherever a `data:` URI sits (`src`, `srcset`, CSS `url()`, inline scripts, plain text),
its payload is decoded in memory, hashed and replaced by an empty `data:` URI whose
parameters carry the hashes, so the archived HTML stays well-formed and never holds the
media bytes. Where a payload ends is decided by the character before `data:` (a quote or
`(` closes at its partner) and, for base64, by the alphabet: when in doubt the span runs
longer, because keeping a few characters of markup too few is harmless and keeping a few
of media too many is not.
"""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from crawler.media.hashing import hash_media
from crawler.net.datauri import decode_payload, header_params

PLACEHOLDER_TYPE = "application/x-takedown-removed"
_HEADER = re.compile(r"data:([^,\s\"'<>()]{0,256}),", re.IGNORECASE)
_CLOSERS = {'"': '"', "'": "'", "(": ")"}
_UNQUOTED_END = re.compile(r"[\s\"'<>)]")
_BASE64_CHARS = frozenset(string.ascii_letters + string.digits + "+/=_-%\\" + string.whitespace)
# A srcset descriptor ("2x", "480w") after a base64 payload belongs to the markup.
_DESCRIPTOR = re.compile(r"\s+\d+(?:\.\d+)?[wx]\s*$")
_MIME = re.compile(r"[^a-z0-9.+/-]")


@dataclass(frozen=True)
class ReplacedMedia:
    """One `data:` URI taken out of the page: what it was, by hashes only."""

    mime: str
    bytes: int
    sha256: str
    sha1: str
    md5: str
    pdq: str | None
    pdq_quality: int | None
    malformed: bool  # the payload did not decode: the hashes are of its text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sanitized:
    text: str
    replaced: list[ReplacedMedia]


def _payload_end(text: str, start: int, opener: str, is_base64: bool) -> int:
    closer = _CLOSERS.get(opener)
    if closer is None:
        found = _UNQUOTED_END.search(text, start)
        end = found.start() if found else len(text)
    else:
        end = text.find(closer, start)
        end = len(text) if end < 0 else end
    if not is_base64:
        return end
    stop = start
    while stop < end and text[stop] in _BASE64_CHARS:
        stop += 1
    descriptor = _DESCRIPTOR.search(text, start, stop)
    return descriptor.start() if descriptor else stop


def _describe(header: str, payload: str) -> ReplacedMedia:
    params = header_params(header)
    mime = _MIME.sub("", params[0])[:64] or "text/plain"
    body = decode_payload(params, payload)  # as the spider decodes it
    data = body if body is not None else payload.encode("utf-8", "surrogatepass")
    hashes = hash_media(data, declared_type=mime)
    return ReplacedMedia(
        mime=mime,
        bytes=len(data),
        sha256=hashes.sha256,
        sha1=hashes.sha1,
        md5=hashes.md5,
        pdq=hashes.pdq,
        pdq_quality=hashes.pdq_quality,
        malformed=body is None,
    )


def placeholder(media: ReplacedMedia) -> str:
    """An empty, valid `data:` URI naming what was removed."""
    parts = [
        PLACEHOLDER_TYPE,
        f"type={quote(media.mime, safe='')}",
        f"bytes={media.bytes}",
        f"sha256={media.sha256}",
        f"sha1={media.sha1}",
        f"md5={media.md5}",
    ]
    if media.pdq:
        parts.append(f"pdq={media.pdq}")
    if media.malformed:
        parts.append("malformed=1")
    return "data:" + ";".join(parts) + ","


def sanitize(text: str) -> Sanitized:
    """`text` with every `data:` URI replaced by its placeholder, and what was replaced."""
    out: list[str] = []
    replaced: list[ReplacedMedia] = []
    pos = 0
    for match in _HEADER.finditer(text):
        if match.start() < pos:
            continue  # inside a payload already consumed
        header = match.group(1)
        opener = text[match.start() - 1] if match.start() else ""
        is_base64 = "base64" in header.lower().split(";")[1:]
        end = _payload_end(text, match.end(), opener, is_base64)
        media = _describe(header, text[match.end() : end])
        out += [text[pos : match.start()], placeholder(media)]
        replaced.append(media)
        pos = end
    out.append(text[pos:])
    return Sanitized("".join(out), replaced)
