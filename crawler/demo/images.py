"""Synthetic images for the demo, tests and benchmarks: gradients, shapes and noise.

Never photographs. Each image is a pure function of its seed, so hash lists made from
them are reproducible.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def synthetic_image(seed: int, width: int = 640, height: int = 480) -> Image.Image:
    """An RGB image with a colour gradient, a few shapes and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0, 255, size=3)
    tilt = rng.uniform(-1, 1, size=(3, 2))
    channels = [
        base[c] + tilt[c, 0] * x * 200 / width + tilt[c, 1] * y * 200 / height for c in range(3)
    ]
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 6, size=(height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 9))):
        x0, y0 = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        x1 = x0 + int(rng.integers(20, max(21, width // 2)))
        y1 = y0 + int(rng.integers(20, max(21, height // 2)))
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=colour)
    return image


def encode(image: Image.Image, fmt: str = "JPEG", quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt == "JPEG" else {}
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def synthetic_jpeg(seed: int, width: int = 640, height: int = 480, quality: int = 85) -> bytes:
    return encode(synthetic_image(seed, width, height), "JPEG", quality)
