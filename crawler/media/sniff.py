"""Media format sniffing from the bytes themselves (never from Content-Type or the URL).

A server can label anything ``image/jpeg``; decoding decisions rest on the magic bytes
only. :func:`sniff` returns a :class:`Sniffed` naming the format and its broad kind
("image", "video", "archive" or "other"); unknown bytes give ``format=None, kind="other"``.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"
# Tags that start an HTML document, from the WHATWG MIME sniffing standard; each must be
# followed by a space or ">" so that "<b" does not match "<bogus".
_HTML_TAGS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
    b"<!--",
    b"<meta",
)
_BMP_DIB_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_FTYP_BRANDS = {
    b"qt  ": ("mov", "video"),
    b"avif": ("avif", "image"),
    b"avis": ("avif", "image"),
    b"heic": ("heic", "image"),
    b"heix": ("heic", "image"),
    b"mif1": ("heic", "image"),
    b"msf1": ("heic", "image"),
    b"M4A ": ("m4a", "other"),
    b"crx ": ("cr3", "image"),
}
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


@dataclass(frozen=True, slots=True)
class Sniffed:
    format: str | None
    kind: str  # "image" | "video" | "archive" | "other"


_UNKNOWN = Sniffed(None, "other")

# Fixed signatures at offset 0: (prefix, format, kind). Checked in order.
_PREFIXES: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "jpeg", "image"),
    (b"\x89PNG\r\n\x1a\n", "png", "image"),
    (b"GIF87a", "gif", "image"),
    (b"GIF89a", "gif", "image"),
    (b"II*\x00", "tiff", "image"),
    (b"MM\x00*", "tiff", "image"),
    (b"II+\x00", "tiff", "image"),
    (b"MM\x00+", "tiff", "image"),
    (b"8BPS", "psd", "image"),
    (b"%!PS", "eps", "image"),
    (b"\xc5\xd0\xd3\xc6", "eps", "image"),
    (b"%PDF-", "pdf", "other"),
    (b"\x00\x00\x01\x00", "ico", "image"),
    (b"\xff\x0a", "jxl", "image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "jxl", "image"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "jp2", "image"),
    (b"FLV\x01", "flv", "video"),
    (b"\x00\x00\x01\xba", "mpeg", "video"),
    (b"\x00\x00\x01\xb3", "mpeg", "video"),
    (b"OggS", "ogg", "other"),
    (b"ID3", "mp3", "other"),
    (b"fLaC", "flac", "other"),
    (b"PK\x03\x04", "zip", "archive"),
    (b"PK\x05\x06", "zip", "archive"),  # an empty ZIP: only the end record
    (b"\x1f\x8b", "gzip", "archive"),  # opened as a gzip'd TAR (crawler.media.archive)
)


def _riff(data: bytes) -> Sniffed | None:
    if data[:4] != b"RIFF" or len(data) < 12:
        return None
    sub = data[8:12]
    if sub == b"WEBP":
        return Sniffed("webp", "image")
    if sub == b"AVI ":
        return Sniffed("avi", "video")
    if sub == b"WAVE":
        return Sniffed("wav", "other")
    return None


def _iso_bmff(data: bytes) -> Sniffed | None:
    box = data[4:8]
    if box == b"ftyp" and len(data) >= 12:
        fmt, kind = _FTYP_BRANDS.get(data[8:12], ("mp4", "video"))
        return Sniffed(fmt, kind)
    if box in _QUICKTIME_ATOMS:
        return Sniffed("mov", "video")
    return None


def _ebml(data: bytes) -> Sniffed | None:
    if data[:4] != b"\x1a\x45\xdf\xa3":
        return None
    # The DocType element sits in the first few dozen bytes of the EBML header.
    return Sniffed("webm", "video") if b"webm" in data[:64] else Sniffed("mkv", "video")


def _bmp(data: bytes) -> Sniffed | None:
    # "BM" alone is too weak (text can start with it): also require a known DIB header size.
    if data[:2] != b"BM" or len(data) < 18:
        return None
    dib = int.from_bytes(data[14:18], "little")
    return Sniffed("bmp", "image") if dib in _BMP_DIB_SIZES else None


def _tar(data: bytes) -> Sniffed | None:
    # POSIX/GNU TAR: "ustar" at offset 257 of the first header block.
    return Sniffed("tar", "archive") if data[257:262] == b"ustar" else None


def _mpeg_ts(data: bytes) -> Sniffed | None:
    packet = 188
    if len(data) >= 3 * packet and all(data[i * packet] == 0x47 for i in range(3)):
        return Sniffed("mpegts", "video")
    return None


def _markup(data: bytes) -> Sniffed | None:
    head = data[:4096]
    if head.startswith(_BOM):
        head = head[len(_BOM) :]
    head = head.lstrip(b" \t\r\n\x0c").lower()
    if not head.startswith(b"<"):
        return None
    if head.startswith((b"<svg", b"<?xml", b"<!doctype svg")) and b"<svg" in head:
        return Sniffed("svg", "image")
    if head.startswith(b"<!--") and b"<svg" in head and b"<html" not in head:
        return Sniffed("svg", "image")
    for tag in _HTML_TAGS:
        if head.startswith(tag) and head[len(tag) : len(tag) + 1] in (b" ", b">", b"\t", b"\n"):
            return Sniffed("html", "other")
    if head.startswith(b"<?xml"):
        return Sniffed("xml", "other")
    return None


_CHECKS = (_riff, _iso_bmff, _ebml, _bmp, _tar, _mpeg_ts, _markup)


def sniff(data: bytes) -> Sniffed:
    """The format the bytes actually are, whatever they were served as."""
    for prefix, fmt, kind in _PREFIXES:
        if data.startswith(prefix):
            return Sniffed(fmt, kind)
    for check in _CHECKS:
        found = check(data)
        if found is not None:
            return found
    return _UNKNOWN
