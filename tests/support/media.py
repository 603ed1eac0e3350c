"""Synthetic test images, generated in code: gradients, shapes and noise, never photographs.

The one generator for the test suite and the benchmarks is `picture(seed, width, height,
style=...)`; each style is a pure function of its seed, so hashes asserted by tests stay put:

- "structured": waves, filled shapes, blur and grain, enough structure for PDQ (default);
- "waves": smooth sine gradients, a few filled rectangles, mild noise (PDQ quality ~100);
- "gradient": a horizontal ramp plus coarse noise (small PNGs for the store pipeline);
- "bands": two ramps and a diagonal pattern with one white row (small JPEGs);
- "blocks": 16x16 random colour blocks with sharp red stripes (detail a blur must remove);
- "demo": the demo's own generator, crawler.demo.images.synthetic_image.

`png`/`jpeg` wrappers below encode a picture; the older names stay as thin shortcuts.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from crawler.demo.images import synthetic_image


def picture(
    seed: int, width: int, height: int, style: str = "structured", noise: float | None = None
) -> Image.Image:
    """An RGB synthetic image of `style` (see the module docstring); `noise` overrides grain."""
    if style == "structured":
        return _structured(width, height, seed, 6.0 if noise is None else noise)
    if style == "waves":
        return _waves(seed, width, height, 4.0 if noise is None else noise)
    if style == "gradient":
        return _gradient(seed, width, height)
    if style == "bands":
        return _bands(seed, width, height)
    if style == "blocks":
        return _blocks(seed, width, height)
    if style == "demo":
        return synthetic_image(seed, width, height)
    raise ValueError(f"unknown picture style {style!r}")


def structured(width: int, height: int, seed: int, noise: float = 6.0) -> Image.Image:
    return picture(seed, width, height, "structured", noise)


def _structured(width: int, height: int, seed: int, noise: float) -> Image.Image:
    """An RGB picture with enough structure for PDQ: waves, filled shapes, sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    longest = max(width, height)
    channels = []
    for _ in range(3):
        angle, freq, phase = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 3), rng.uniform(0, 6)
        wave = np.sin(freq * 2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / longest + phase)
        channels.append(127 + 100 * wave)
    image = Image.fromarray(np.stack(channels, -1).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
        size = rng.uniform(0.03, 0.25) * longest
        box = (x0, y0, x0 + size, y0 + size * rng.uniform(0.5, 1.5))
        fill = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    image = image.filter(ImageFilter.GaussianBlur(longest / 800))
    if noise:
        grain = rng.normal(0, noise, (height, width, 1))
        image = Image.fromarray((np.asarray(image) + grain).clip(0, 255).astype(np.uint8))
    return image


def _waves(seed: int, width: int, height: int, noise: float) -> Image.Image:
    """Smooth gradients, a few filled shapes and mild noise: PDQ quality ~100."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width]).reshape(2, 1, 1)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(1, 4, 3)
        channels.append(127 + 100 * np.sin(2 * np.pi * (fx * x + fy * y) + phase))
    rgb = np.stack(channels, axis=-1)
    for _ in range(6):
        x0, y0 = rng.integers(0, [width - width // 4, height - height // 4])
        w, h = rng.integers([width // 10, height // 10], [width // 4, height // 4])
        rgb[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, 3)
    rgb += rng.normal(0, noise, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _gradient(seed: int, width: int, height: int) -> Image.Image:
    """A gradient plus noise, different for every seed."""
    rng = np.random.default_rng(seed)
    grad = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    grain = rng.integers(0, 60, (height, width, 3)).astype(np.float32)
    return Image.fromarray(np.clip(grad + grain, 0, 255).astype(np.uint8), "RGB")


def _bands(seed: int, width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    pixels = np.stack([xx * 255 // width, yy * 255 // height, (xx + yy) % 256], axis=-1)
    pixels = pixels.astype(np.uint8)
    pixels[rng.integers(0, height), :, :] = 255
    return Image.fromarray(pixels, "RGB")


def _blocks(seed: int, width: int, height: int) -> Image.Image:
    """A colourful, high-variance image: random blocks and stripes."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    image = np.kron(blocks, np.ones((height // 16, width // 16, 1), dtype=np.uint8))
    image[:, ::8, 0] = 255  # sharp red stripes: detail a blur must remove
    return Image.fromarray(image, "RGB")


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg(width: int, height: int, seed: int, quality: int = 85) -> bytes:
    return encode(structured(width, height, seed), "JPEG", quality=quality)


def synthetic_png(seed: int, size: tuple[int, int] = (96, 64), text: str | None = None) -> bytes:
    """A "gradient" PNG, different for every seed; `text` goes into a tEXt chunk."""
    info = None
    if text is not None:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("comment", text)
    return encode(picture(seed, *size, "gradient"), "PNG", pnginfo=info)


def synthetic_jpeg(seed: int, size: tuple[int, int] = (160, 120), comment: bytes = b"") -> bytes:
    """A "bands" JPEG; `comment` goes into a COM segment."""
    return encode(picture(seed, *size, "bands"), "JPEG", quality=90, comment=comment)


def blocks_png(size: int = 256, seed: int = 1) -> bytes:
    """A square "blocks" PNG, the preview tests' image (a blur visibly changes it)."""
    return encode(picture(seed, size, size, "blocks"), "PNG")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def header_only_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height and whose pixel data is missing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def ztxt_bomb_png() -> bytes:
    """A valid small PNG with a zTXt chunk that inflates to 64 MB (Pillow caps text at 1 MB)."""
    plain = encode(structured(32, 32, 1), "PNG")
    bomb = png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * (64 << 20), 9))
    # Insert right after IHDR (8-byte signature + 25-byte IHDR chunk).
    return plain[:33] + bomb + plain[33:]
