"""Benchmark in-memory media hashing: hash_media against pdqhash on a full Pillow decode.

For synthetic JPEGs (waves, filled shapes, grain; quality 85) at three sizes, prints one row
per size with CPU time per image (``time.process_time``, so figures are per core):

* (a) ``pdqhash.compute`` on a full Pillow RGB decode: PDQ only, the naive baseline;
* (b) ``hash_media``: SHA-256, SHA-1, MD5 and PDQ, the project's path;
* the speed-up (a)/(b) in images per second per core;
* decode-only: Pillow decoding at the reduced size hash_media uses, nothing else, and
  (b)/decode-only (the stretch goal is 1.5x or less);
* bits by which (b)'s PDQ differs from (a)'s: median, p90 and max.

    python bench/hashing.py                 # default: about 1 minute of CPU, under 2 minutes here
    python bench/hashing.py --images 4 --repeat 2    # quick look
    python bench/hashing.py --blocks        # PDQ error by JPEG DCT scale, plain vs folded

Images are generated in memory and never written anywhere.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image

from crawler.media.hashing import _draft_jpeg, hash_media
from crawler.media.pdq import Geometry, hamming, hex_from_pdqhash_bits, pdq_from_luma

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' image generator
from tests.support.media import jpeg as synthetic_jpeg  # noqa: E402

SIZES = [(640, 480), (1280, 960), (3000, 2000)]
ROW = "{:>10} {:>7} {:>9} {:>9} {:>8} {:>9} {:>8} {:>8} {:>12}"
ROW_BLOCKS = "{:>10} {:>6} {:>10} {:>18} {:>18}"


def baseline(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        bits, _ = pdqhash.compute(np.asarray(image.convert("RGB")))
    return hex_from_pdqhash_bits(bits)


def project(data: bytes) -> str:
    result = hash_media(data)
    assert result.pdq is not None, result.error
    return result.pdq


def decode_only(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        _draft_jpeg(image)  # the same reduced decode hash_media asks for
        image.load()


def cpu_ms(function: Callable[[bytes], object], bodies: list[bytes], repeat: int) -> float:
    """Median over rounds of CPU milliseconds per image."""
    rounds = []
    for _ in range(repeat):
        start = time.process_time()
        for body in bodies:
            function(body)
        rounds.append((time.process_time() - start) * 1000 / len(bodies))
    return statistics.median(rounds)


@dataclass
class Row:
    size: str
    kib: float
    a_ms: float
    b_ms: float
    decode_ms: float
    bits: list[int]

    def cells(self) -> list[str]:
        return [
            self.size,
            f"{self.kib:.0f}",
            f"{self.a_ms:.1f}",
            f"{self.b_ms:.2f}",
            f"{self.a_ms / self.b_ms:.1f}x",
            f"{self.decode_ms:.2f}",
            f"{self.b_ms / self.decode_ms:.2f}x",
            f"{1000 / self.b_ms:.0f}",
            _spread(sorted(self.bits)),
        ]


def measure(width: int, height: int, images: int, repeat: int) -> Row:
    bodies = [synthetic_jpeg(width, height, seed) for seed in range(images)]
    bits = [hamming(baseline(body), project(body)) for body in bodies]  # also warms caches
    # The baseline is slow and steady: fewer rounds keep the whole run short.
    a_ms = cpu_ms(baseline, bodies, max(1, repeat // 2))
    b_ms = cpu_ms(project, bodies, repeat)
    decode_ms = cpu_ms(decode_only, bodies, repeat)
    kib = statistics.mean(len(body) for body in bodies) / 1024
    return Row(f"{width}x{height}", kib, a_ms, b_ms, decode_ms, bits)


def scaled_hashes(data: bytes, scale: int) -> tuple[str, str]:
    """PDQ of a 1/scale JPEG decode: as if it were the image, and at full-size geometry."""
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        image.draft("L", (width // scale, height // scale))
        luma = np.asarray(image.convert("L"))
    plain = pdq_from_luma(luma).hex
    return plain, pdq_from_luma(luma, Geometry(height, width)).hex


def block_study(images: int) -> None:
    """Why hash_media folds PDQ's weights over decoded blocks: error per DCT scale."""
    print(ROW_BLOCKS.format("size", "scale", "decoded", "plain med/p90/max", "folded med/p90/max"))
    for width, height in SIZES:
        bodies = [synthetic_jpeg(width, height, 100 + seed) for seed in range(images)]
        references = [baseline(body) for body in bodies]
        for scale in (1, 2, 4, 8):
            pairs = [scaled_hashes(body, scale) for body in bodies]
            plain = sorted(hamming(ref, p) for ref, (p, _) in zip(references, pairs, strict=True))
            folded = sorted(hamming(ref, f) for ref, (_, f) in zip(references, pairs, strict=True))
            decoded = f"{-(-width // scale)}x{-(-height // scale)}"
            cells = [_spread(plain), _spread(folded)]
            print(ROW_BLOCKS.format(f"{width}x{height}", f"1/{scale}", decoded, *cells))


def _spread(bits: list[int]) -> str:
    p90 = bits[min(len(bits) - 1, int(round(0.9 * (len(bits) - 1))))]
    return f"{statistics.median(bits):g} / {p90} / {max(bits)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10, help="distinct images per size")
    parser.add_argument("--repeat", type=int, default=5, help="timing rounds (median kept)")
    parser.add_argument("--blocks", action="store_true", help="PDQ error by DCT scale instead")
    args = parser.parse_args()
    if args.blocks:
        block_study(args.images)
        return
    header = ["size", "KiB", "(a) ms", "(b) ms", "(a)/(b)", "decode", "(b)/dec", "(b) img/s"]
    print(ROW.format(*header, "bits med/p90/max"))
    for width, height in SIZES:
        print(ROW.format(*measure(width, height, args.images, args.repeat).cells()), flush=True)
    print(
        "\n(a) pdqhash.compute on a full Pillow RGB decode (PDQ only); (b) hash_media "
        "(SHA-256, SHA-1, MD5, PDQ);\nCPU ms per image via time.process_time; decode = Pillow "
        "decode at the reduced size hash_media uses;\nbits = Hamming distance between the (a) "
        "and (b) PDQ hashes of the same image."
    )


if __name__ == "__main__":
    main()
