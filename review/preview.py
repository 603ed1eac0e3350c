"""Preview images made on the server, in memory (docs/hazards.md A-04, A-13).

Only raster formats Pillow decodes are accepted: SVG, HTML or anything else is refused
(415), whatever the server declared. The image is downscaled first (so blur cost and the
pixels sent stay small), then for the default preview greyscaled and blurred hard enough
that no detail survives; only `Reveal` gets the unblurred downscaled colour version.
Either way it is re-encoded from raw pixels into a fresh PNG, so no EXIF, ICC, XMP or text
chunk of the original reaches the browser. Nothing is written to disk or cached.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageFilter

ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
_MARKUP_TYPES = ("svg", "html", "xml", "javascript")


class UnsupportedMedia(Exception):
    """Not a raster image we preview (HTTP 415)."""


def _looks_like_markup(body: bytes, content_type: str) -> bool:
    declared = content_type.lower()
    head = body[:512].lstrip().lower()
    return any(t in declared for t in _MARKUP_TYPES) or head.startswith((b"<", b"\xef\xbb\xbf<"))


def _open(body: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(body))
            if image.format not in ALLOWED_FORMATS:
                raise UnsupportedMedia(f"format {image.format} is not previewed")
            if image.width * image.height > max_pixels:
                raise UnsupportedMedia("image has more pixels than the crawl policy allows")
            image.draft("RGB", (1024, 1024))  # JPEG: decode at reduced size, cheaper
            image.seek(0)
            image.load()
    except UnsupportedMedia:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning) as exc:
        raise UnsupportedMedia(f"not a decodable image: {type(exc).__name__}") from exc
    return image


def _fresh(image: Image.Image) -> Image.Image:
    """A new image from raw pixels only: no metadata can ride along."""
    return Image.frombytes(image.mode, image.size, image.tobytes())


def render(
    body: bytes, content_type: str, *, reveal: bool, max_side: int, max_pixels: int
) -> bytes:
    """PNG bytes of the preview: blurred and greyscale unless `reveal`."""
    if _looks_like_markup(body, content_type):
        raise UnsupportedMedia("markup (SVG/HTML) is never previewed")
    return finish(_open(body, max_pixels), reveal=reveal, max_side=max_side)


def finish(image: Image.Image, *, reveal: bool, max_side: int) -> bytes:
    """PNG bytes of a decoded image (a picture or a video frame): downscaled, then
    greyscale and blurred unless `reveal`, re-encoded from raw pixels."""
    image = image.convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if not reveal:
        image = image.convert("L")
        radius = max(image.width, image.height) / 12
        image = image.filter(ImageFilter.GaussianBlur(radius)).filter(
            ImageFilter.GaussianBlur(radius)
        )
    out = io.BytesIO()
    _fresh(image).save(out, format="PNG", optimize=False)
    return out.getvalue()
