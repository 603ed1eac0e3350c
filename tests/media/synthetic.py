"""Synthetic test images, generated in code: gradients, shapes and noise, never photographs."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def structured(width: int, height: int, seed: int, noise: float = 6.0) -> Image.Image:
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


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg(width: int, height: int, seed: int, quality: int = 85) -> bytes:
    return encode(structured(width, height, seed), "JPEG", quality=quality)


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
