"""Format sniffing from magic bytes: a table of what counts and what must not."""

from __future__ import annotations

import pytest

from crawler.media.sniff import sniff


@pytest.mark.parametrize(
    ("data", "fmt", "kind"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg", "image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png", "image"),
        (b"GIF87a\x01\x00", "gif", "image"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp", "image"),
        (b"BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00", "bmp", "image"),
        (b"BM is how this text file starts", None, "other"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff", "image"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "eps", "image"),
        (b"\xc5\xd0\xd3\xc6\x1e\x00", "eps", "image"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00", "avif", "image"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "heic", "image"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00", "mp4", "video"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "mov", "video"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "wav", "other"),
        (b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>", "svg", "image"),
        (b"<!-- made by hand --><svg></svg>", "svg", "image"),
        (b"<!-- comment --><html><body></body></html>", "html", "other"),
        (b"\n\n<!DOCTYPE HTML>\n<html>", "html", "other"),
        (b"<b>bold</b>", "html", "other"),
        (b"<bogus>not a tag WHATWG sniffs</bogus>", None, "other"),
        (b'<?xml version="1.0"?><rss/>', "xml", "other"),
        (b"%PDF-1.7\n", "pdf", "other"),
        (b"", None, "other"),
    ],
)
def test_sniff(data: bytes, fmt: str | None, kind: str) -> None:
    found = sniff(data)
    assert (found.format, found.kind) == (fmt, kind)
