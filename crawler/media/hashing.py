"""In-memory media hashing: exact hashes of every body, PDQ of allowlisted raster images.

:func:`hash_media` never raises for any bytes, never writes them anywhere and logs nothing:
the caller holds the bytes and drops them once it has the :class:`MediaHashes`.

Policies (each one is tested in ``tests/media``):

* **Exact hashes** (SHA-256, SHA-1, MD5 of the exact bytes) are always computed first, so
  they exist even when decoding fails, is refused or is not attempted.
* **Format** is sniffed from the bytes (:mod:`crawler.media.sniff`); the declared
  Content-Type is stored alongside but never trusted.
* **Decode allowlist**: only JPEG, PNG, GIF, WebP and BMP are decoded, and Pillow is told
  so (``Image.open(..., formats=[...])``) so that a polyglot cannot reach another decoder.
  TIFF, EPS (Ghostscript), PSD, SVG (never rasterised: scripts, external references),
  ICO, AVIF, HEIC and the rest get exact hashes only, with status "skipped".
  Videos get exact hashes and a per-second vPDQ (:mod:`crawler.media.video`): ``vpdq``
  holds the frame hashes in ThreatExchange's serialisation, ``duration_s`` the decoded
  length; the video's own status and reason become the record's.
* **Archives** (ZIP, TAR, gzip'd TAR) are opened in memory (:mod:`crawler.media.archive`):
  each image or video inside is hashed by this same function and listed in ``members``
  (hashes only); the archive's status and reason are the scan's (caps, encryption,
  damage).
* **Pixel limit**: the size declared in the header is checked against ``max_pixels``
  before any pixel is decoded, so the limit holds exactly and a header-only bomb costs
  nothing; Pillow's own bomb warning/error is mapped to the same "skipped" outcome. This
  explicit check is used instead of ``warnings.catch_warnings()``, which is not
  thread-safe before Python 3.14 and hashing runs in worker threads.
* **Truncated files** are errors: ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left False.
  Any exception while decoding (``OSError``, zTXt/iCCP ``ValueError``, ``MemoryError``
  ...) becomes status "error" with the reason.
* **Frames**: animated GIF/WebP/PNG are hashed on their first frame only.
* **Orientation**: the EXIF orientation is applied first, so PDQ is of the upright image.
  An unreadable EXIF block is ignored (hash as stored) rather than losing the PDQ.
* **Modes and alpha**: see :mod:`crawler.media.pdq`: alpha is composited on white,
  16-bit grey is scaled, palette/1-bit/CMYK go through RGB.
* **Speed**: PDQ itself is cheap (:mod:`crawler.media.pdq`), so the cost is decoding.
  JPEGs are decoded with DCT scaling (1/2, 1/4, 1/8) straight to the luma (Y) channel,
  other large formats are box-reduced (``Image.reduce``); either way one decoded pixel
  stands for a block no wider than half PDQ's filter window, and PDQ is computed at the
  full-size geometry (:class:`crawler.media.pdq.Geometry`), which keeps it within a few
  bits of a full decode (figures in docs/benchmarks.md).
* **Quality**: PDQ quality is stored as computed; flat or tiny images get a low value and
  images under 5 px a side get Meta's all-zero hash with quality 0. Matching ignores PDQ
  below quality 50 (:data:`crawler.media.pdq.MIN_USEFUL_QUALITY`).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from crawler.media.archive import ArchiveLimits, ArchiveMember, scan_archive
from crawler.media.pdq import Geometry, PdqHash, luma_from_image, pdq_from_luma
from crawler.media.sniff import Sniffed, sniff
from crawler.media.video import DEFAULT_MAX_FRAMES, hash_video

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own default limit
PDQ_FORMATS = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "bmp": "BMP"}
_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "I", "F"})
_MAX_REASON = 300
_ORIENTATION_TAG = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# For each transpose: (axes swapped, upright rows reversed, upright cols reversed).
_AXES_AFTER = {
    Image.Transpose.FLIP_LEFT_RIGHT: (False, False, True),
    Image.Transpose.FLIP_TOP_BOTTOM: (False, True, False),
    Image.Transpose.ROTATE_180: (False, True, True),
    Image.Transpose.TRANSPOSE: (True, False, False),
    Image.Transpose.ROTATE_90: (True, True, False),
    Image.Transpose.ROTATE_270: (True, False, True),
    Image.Transpose.TRANSVERSE: (True, True, True),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaHashes:
    """What hashing learnt about one body. Holds no media bytes.

    ``status`` is "hashed" (every hash the format allows was computed), "skipped" (exact
    hashes only, by policy: format, size) or "error" (exact hashes only: the bytes could
    not be decoded as what they claim to be); ``error`` then says why.
    """

    sha256: str
    sha1: str
    md5: str
    pdq: str | None
    pdq_quality: int | None
    media_type: str
    format: str | None
    declared_type: str | None
    width: int | None
    height: int | None
    bytes: int
    status: str
    error: str | None
    vpdq: str | None = None  # videos: JSON array of "pdq_hex,quality,timestamp"
    duration_s: float | None = None
    members: tuple[ArchiveMember, ...] = ()  # archives: what is inside, hashed


@dataclass(frozen=True, slots=True)
class _Outcome:
    """The perceptual half of a result."""

    status: str
    error: str | None = None
    pdq: PdqHash | None = None
    width: int | None = None
    height: int | None = None
    vpdq: str | None = None
    duration_s: float | None = None
    members: tuple[ArchiveMember, ...] = ()


def exact_digests(data: bytes) -> tuple[str, str, str]:
    """SHA-256, SHA-1 and MD5 of `data`, in hex: the one place exact hashes are computed."""
    # One call each over the whole buffer: hashlib releases the GIL for large inputs.
    return (
        hashlib.sha256(data).hexdigest(),
        hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )


def _clip(reason: str) -> str:
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 3] + "..."


def _pixel_refusal(width: int, height: int, max_pixels: int) -> str | None:
    """The reason to refuse decoding, from the header's size alone, or None."""
    if width * height <= max_pixels:
        return None
    return (
        f"image declares {width}x{height} = {width * height:,} pixels, above the limit "
        f"of {max_pixels:,}; exact hashes only"
    )


def _block_size(width: int, height: int) -> int:
    """How many source pixels one decoded pixel may stand for, per axis.

    PDQ box-filters each axis with a window of about n/128 pixels before sampling. Blocks
    up to half that window change the folded hash by 0-2 bits on the images we measured
    (docs/benchmarks.md); larger blocks start to blur detail the filter would keep.
    """
    window = (min(width, height) + 127) // 128
    return max(1, window // 2)


def _jpeg_scale(width: int, height: int) -> int:
    block = _block_size(width, height)
    return next(scale for scale in (8, 4, 2, 1) if scale <= block)


def _draft_jpeg(image: ImageFile.ImageFile) -> None:
    """Ask libjpeg for a DCT-scaled decode, straight to luma when the JPEG is YCbCr."""
    scale = _jpeg_scale(*image.size)
    if scale > 1:
        # "L" only changes YCbCr JPEGs (Y is the luma PDQ wants); CMYK and grey keep their mode.
        # Pillow picks the largest scale with size // requested >= scale: ask for floors.
        image.draft("L", (max(1, image.width // scale), max(1, image.height // scale)))
    else:
        image.draft("L", None)


def _reduce_large(image: Image.Image) -> Image.Image:
    factor = _block_size(*image.size)
    if factor < 2 or image.mode not in _REDUCIBLE_MODES:
        return image
    return image.reduce(factor)


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not cost the PDQ
        return 1
    return value if isinstance(value, int) else 1


def _upright_geometry(width: int, height: int, method: Image.Transpose | None) -> Geometry:
    """Full-size geometry of the upright image, given the stored size and the transpose."""
    if method is None:
        return Geometry(height, width)
    swapped, rows_from_end, cols_from_end = _AXES_AFTER[method]
    if swapped:
        width, height = height, width
    return Geometry(height, width, rows_from_end, cols_from_end)


def pdq_of_decoded(image: Image.Image, full_size: tuple[int, int] | None = None) -> PdqHash:
    """PDQ of a decoded Pillow image, applying the orientation and mode policies.

    ``full_size`` is the (width, height) stored in the file when ``image`` was decoded or
    reduced to a smaller size (JPEG draft, ``Image.reduce``); PDQ is then computed at
    full-size geometry.
    """
    method = _TRANSPOSE_FOR_ORIENTATION.get(_orientation(image))
    geometry = _upright_geometry(*(full_size or image.size), method)
    upright = image if method is None else image.transpose(method)
    return pdq_from_luma(luma_from_image(upright), geometry)


def _decode_and_hash(data: bytes, fmt: str, max_pixels: int) -> _Outcome:
    with Image.open(io.BytesIO(data), formats=[PDQ_FORMATS[fmt]]) as image:
        width, height = image.size
        refusal = _pixel_refusal(width, height, max_pixels)
        if refusal is not None:
            return _Outcome("skipped", refusal, width=width, height=height)
        if fmt == "jpeg":
            _draft_jpeg(image)
        image.load()
        reduced = image if fmt == "jpeg" else _reduce_large(image)
        pdq = pdq_of_decoded(reduced, (width, height))
        return _Outcome("hashed", pdq=pdq, width=width, height=height)


def _describe_failure(fmt: str, exc: BaseException) -> _Outcome:
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return _Outcome("skipped", _clip(f"Pillow refused a pixel bomb: {exc}; exact hashes only"))
    if isinstance(exc, UnidentifiedImageError):
        # Pillow's message names an in-memory object address: useless to a person.
        detail = f"the bytes start like {fmt.upper()} but are not a readable {fmt.upper()} file"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return _Outcome(
        "error", _clip(f"could not decode the {fmt.upper()} image ({detail}); exact hashes only")
    )


def _perceptual(data: bytes, fmt: str, max_pixels: int) -> _Outcome:
    try:
        return _decode_and_hash(data, fmt, max_pixels)
    except Exception as exc:  # any decoder failure is an outcome, not a crash
        return _describe_failure(fmt, exc)


def _declared_media(declared_type: str | None) -> bool:
    return declared_type is not None and declared_type.lower().startswith(("image/", "video/"))


def _not_decoded(data: bytes, sniffed: Sniffed, declared_type: str | None) -> _Outcome:
    """Reasons for every body that is not an allowlisted raster image."""
    fmt = sniffed.format
    served = f" (served as {declared_type})" if declared_type else ""
    if not data:
        return _Outcome("error", "empty body: nothing but the exact hashes of zero bytes")
    if fmt is None:
        if _declared_media(declared_type):
            return _Outcome(
                "error",
                f"the bytes match no known image or video format{served}; exact hashes only",
            )
        return _Outcome("skipped", "format not recognised from the bytes; exact hashes only")
    if fmt == "svg":
        return _Outcome("skipped", "SVG is never rasterised (scripts, external references)")
    if sniffed.kind == "image":
        return _Outcome(
            "skipped",
            f"{fmt.upper()} is not on the decode allowlist (JPEG, PNG, GIF, WebP, BMP); "
            "exact hashes only",
        )
    return _Outcome(
        "skipped", f"the bytes are {fmt.upper()}, not an image or video{served}; exact hashes only"
    )


def _video(data: bytes, max_pixels: int, max_frames: int) -> _Outcome:
    found = hash_video(data, max_frames=max_frames, max_pixels=max_pixels)
    return _Outcome(
        found.status, found.error, None, found.width, found.height, found.vpdq, found.duration_s
    )


def _archive(data: bytes, max_pixels: int, max_frames: int, limits: ArchiveLimits) -> _Outcome:
    def member(body: bytes) -> MediaHashes:
        return hash_media(body, max_pixels=max_pixels, max_frames=max_frames)

    scan = scan_archive(data, member, limits)
    return _Outcome(scan.status, scan.error, members=tuple(scan.members))


def _analyse(
    data: bytes,
    sniffed: Sniffed,
    max_pixels: int,
    declared: str | None,
    max_frames: int,
    limits: ArchiveLimits,
) -> _Outcome:
    if sniffed.format in PDQ_FORMATS:
        return _perceptual(data, sniffed.format, max_pixels)
    if data and sniffed.kind == "video":
        return _video(data, max_pixels, max_frames)
    if data and sniffed.kind == "archive":
        return _archive(data, max_pixels, max_frames, limits)
    return _not_decoded(data, sniffed, declared)


def hash_media(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    declared_type: str | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    archive_limits: ArchiveLimits | None = None,
) -> MediaHashes:
    """Hash one media body in memory. Never raises for any ``data`` bytes."""
    sha256, sha1, md5 = exact_digests(data)
    try:
        sniffed = sniff(data)
        outcome = _analyse(
            data, sniffed, max_pixels, declared_type, max_frames, archive_limits or ArchiveLimits()
        )
    except Exception as exc:  # last resort: exact hashes must survive
        sniffed = Sniffed(None, "other")
        outcome = _Outcome("error", _clip(f"internal error while hashing: {exc!r}"))
    return MediaHashes(
        sha256=sha256,
        sha1=sha1,
        md5=md5,
        pdq=outcome.pdq.hex if outcome.pdq else None,
        pdq_quality=outcome.pdq.quality if outcome.pdq else None,
        media_type=sniffed.kind,
        format=sniffed.format,
        declared_type=declared_type,
        width=outcome.width,
        height=outcome.height,
        bytes=len(data),
        status=outcome.status,
        error=outcome.error,
        vpdq=outcome.vpdq,
        duration_s=outcome.duration_s,
        members=outcome.members,
    )
