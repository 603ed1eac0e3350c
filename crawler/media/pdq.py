"""PDQ perceptual hashing in numpy, following Meta's reference algorithm step by step.

Why not call ``pdqhash`` directly: its C++ core filters the whole image with four box-filter
passes before keeping 64x64 samples, which costs ~30 ms for a 1280x960 picture here and
~340 ms at 3000x2000. PDQ's downsampling is linear, so the four passes followed by the
64x64 decimation collapse into two small matrices per image size: ``out = A @ luma @ B.T``
with ``A`` 64xH and ``B`` 64xW, applied as banded gathers (cached per size). The result is
the same arithmetic as the reference (box windows with shrinking edges, two Jarosz passes,
decimation at ``(i + 0.5) * n / 64``, 16x16 DCT of the 64x64 buffer, median threshold,
gradient quality, all-zero hash and quality 0 under 5 px a side), up to float rounding:
bit-identical to ``pdqhash`` on the sizes tested, ~100x cheaper.

Because the weights are explicit, a plane decoded at reduced size (JPEG DCT scaling,
``Image.reduce``) can be hashed at the full-size geometry: :class:`Geometry` sums the
weights over the block each reduced pixel stands for.

Hex format: Meta's, i.e. bit ``k = 16 * row + col`` of the 16x16 DCT output is bit ``k``
of a 256-bit big-endian number (the hex string starts with bit 255).

Input is a float luma plane (``0.299 R + 0.587 G + 0.114 B``, 0..255). Turning images of
any mode into luma is :func:`luma_from_image`'s job; its policies:

* alpha (RGBA, LA, PA, P with transparency) is composited on white, so transparent areas
  hash as a white background rather than as whatever colour the encoder left under them;
* 16-bit grey (I;16*, I) is scaled by 1/257 to 0..255 instead of being clipped;
* 1-bit and grey images are used directly (grey has luma equal to its value);
* other modes (CMYK, YCbCr, ...) go through Pillow's RGB conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image

Luma = NDArray[np.float32]

PDQ_BITS = 256
# Meta's PDQ: matching ignores hashes whose quality is below this.
MIN_USEFUL_QUALITY = 50
_SAMPLES = 64
# The reference refuses images narrower or shorter than this: all-zero hash, quality 0.
_MIN_HASHABLE_DIM = 5
_JAROSZ_PASSES = 2
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_GREY_MODES = frozenset({"1", "L"})
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


@dataclass(frozen=True, slots=True)
class PdqHash:
    """A PDQ hash as Meta's 64-character hex string, with its quality (0..100)."""

    hex: str
    quality: int


def _dct_matrix() -> NDArray[np.float64]:
    """The reference 16x64 DCT-II rows, skipping the DC term (frequencies 1..16)."""
    i = np.arange(1, 17, dtype=np.float64)[:, None]
    j = np.arange(_SAMPLES, dtype=np.float64)[None, :]
    return np.sqrt(2.0 / _SAMPLES) * np.cos(np.pi / 2.0 / _SAMPLES * i * (2.0 * j + 1.0))


_DCT = _dct_matrix()


def _window_size(old: int) -> int:
    """Meta's computeJaroszFilterWindowSize(old, 64), integer arithmetic as in C."""
    return (old + 2 * _SAMPLES - 1) // (2 * _SAMPLES)


def _box_transpose(rows: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Apply the transpose of Meta's 1-D box filter to each row of ``rows``.

    The reference box writes ``out[o] = mean(x[o - left .. o + right])`` clipped to the
    vector, with ``right = (window + 2) // 2 - 1`` and ``left = window - 1 - right``.
    Its transpose spreads ``u[o] / count[o]`` over the same window, which lets us build
    the rows of ``A = S @ M @ M`` (S = decimation) without forming the n x n matrix M.
    """
    n = rows.shape[1]
    right = (window + 2) // 2 - 1
    left = window - 1 - right
    o = np.arange(n)
    count = np.minimum(o + right, n - 1) - np.maximum(o - left, 0) + 1
    scaled = rows / count
    csum = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(scaled, axis=1)], axis=1)
    # (M^T u)[i] sums u[o]/count[o] over the o whose window holds i: o in [i - right, i + left].
    lo = np.maximum(o - right, 0)
    hi = np.minimum(o + left, n - 1) + 1
    result: NDArray[np.float64] = csum[:, hi] - csum[:, lo]
    return result


def _sampling_matrix(n: int) -> NDArray[np.float64]:
    """64 x n weights: two box passes along one axis, then the reference decimation."""
    if n == _SAMPLES:
        # The reference skips filtering altogether for a 64x64 input; mirrored here so that
        # a 64-pixel axis is sampled as-is (callers avoid handing exactly 64x64 images).
        return np.eye(_SAMPLES, dtype=np.float64)
    picks = (((np.arange(_SAMPLES) + 0.5) * n) / _SAMPLES).astype(np.int64)
    rows = np.zeros((_SAMPLES, n), dtype=np.float64)
    rows[np.arange(_SAMPLES), picks] = 1.0
    window = _window_size(n)
    for _ in range(_JAROSZ_PASSES):
        rows = _box_transpose(rows, window)
    return rows


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where a reduced luma plane came from, so PDQ can be computed at full-size geometry.

    Each luma pixel stands for a block of the full-resolution image (``height`` x
    ``width``), as produced by JPEG DCT scaling or ``Image.reduce``: blocks start at the
    top-left, the last one partial. ``rows_from_end``/``cols_from_end`` say that the plane
    was flipped along that axis after reducing (EXIF orientation), so its partial block
    comes first. PDQ's filter weights are then summed over each block: the hash is that of
    the full-size image up to the detail lost inside blocks, far closer than hashing the
    small plane as if it were the image (see docs/benchmarks.md).
    """

    height: int
    width: int
    rows_from_end: bool = False
    cols_from_end: bool = False


@dataclass(frozen=True, slots=True)
class _Band:
    """The non-zero band of a 64 x n sampling matrix: 64 x K indices and weights.

    Each output sample only reads about n/64 * 2 neighbours, so gathering that band and
    weighting it costs one pass over the image, where a dense 64 x n product costs 64.
    """

    index: NDArray[np.int64]
    weight: NDArray[np.float32]


def _fold(matrix: NDArray[np.float64], reduced: int, from_end: bool) -> NDArray[np.float64]:
    """Sum full-size weights over the blocks that became each reduced pixel."""
    full = matrix.shape[1]
    block = -(-full // reduced)
    if -(-full // block) != reduced:
        raise ValueError(f"{reduced} pixels cannot be blocks of a {full}-pixel axis")
    padded = np.zeros((_SAMPLES, reduced * block))
    start = reduced * block - full if from_end else 0
    padded[:, start : start + full] = matrix
    folded: NDArray[np.float64] = padded.reshape(_SAMPLES, reduced, block).sum(axis=2)
    return folded


@lru_cache(maxsize=256)
def _band(full: int, reduced: int, from_end: bool) -> _Band:
    matrix = _sampling_matrix(full)
    if reduced != full:
        matrix = _fold(matrix, reduced, from_end)
    n = matrix.shape[1]
    nonzero = matrix != 0.0
    first = nonzero.argmax(axis=1)
    last = n - nonzero[:, ::-1].argmax(axis=1)
    width = int((last - first).max())
    start = np.minimum(first, n - width)
    index = start[:, None] + np.arange(width)[None, :]
    weight = np.take_along_axis(matrix, index, axis=1).astype(np.float32)
    # Shared between calls (and threads) through the cache: make accidents loud.
    index.setflags(write=False)
    weight.setflags(write=False)
    return _Band(index, weight)


def _downsample(luma: NDArray[np.generic], geometry: Geometry) -> NDArray[np.float64]:
    """The 64x64 buffer the reference computes with its Jarosz filter and decimation."""
    height, width = luma.shape
    if geometry.height == _SAMPLES and geometry.width == _SAMPLES and luma.shape == (64, 64):
        return luma.astype(np.float64)
    rows = _band(geometry.height, height, geometry.rows_from_end)
    cols = _band(geometry.width, width, geometry.cols_from_end)
    gathered = luma[rows.index].astype(np.float32, copy=False)  # 64 x K x W
    by_row = np.einsum("kj,kjw->kw", rows.weight, gathered)  # 64 x W
    out = np.einsum("cj,kcj->kc", cols.weight, by_row[:, cols.index])  # 64 x 64
    return out.astype(np.float64)


def _quality(buffer: NDArray[np.float64]) -> int:
    """Meta's image-domain quality: summed neighbour differences in percent, truncated."""
    vertical = np.trunc((buffer[:-1, :] - buffer[1:, :]) * 100.0 / 255.0)
    horizontal = np.trunc((buffer[:, :-1] - buffer[:, 1:]) * 100.0 / 255.0)
    total = int(np.abs(vertical).sum() + np.abs(horizontal).sum())
    return min(total // 90, 100)


def _dct16(buffer: NDArray[np.float64]) -> NDArray[np.float64]:
    result: NDArray[np.float64] = _DCT @ buffer @ _DCT.T
    return result


def _hex_from_dct(dct: NDArray[np.float64]) -> str:
    """Threshold at the reference's median (the 128th smallest value) and pack to hex."""
    flat = dct.ravel()
    median = np.partition(flat, 127)[127]
    return hex_from_bits(flat > median)


def hex_from_bits(bits: NDArray[np.bool_] | NDArray[np.uint8]) -> str:
    """Pack 256 bits, bit ``k`` at index ``k``, into Meta's hex (bit 255 first)."""
    array = np.asarray(bits, dtype=np.uint8).ravel()
    if array.size != PDQ_BITS:
        raise ValueError(f"a PDQ hash has 256 bits, got {array.size}")
    return np.packbits(array[::-1]).tobytes().hex()


def hex_from_pdqhash_bits(bits: NDArray[np.generic]) -> str:
    """Convert the bit vector returned by the ``pdqhash`` package (bit 255 first) to hex."""
    array = np.asarray(bits, dtype=np.uint8).ravel()
    return hex_from_bits(array[::-1])


def hamming(a: str, b: str) -> int:
    """Bits that differ between two PDQ hex strings."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _check_luma(luma: NDArray[np.generic]) -> NDArray[np.generic]:
    """Accept uint8 (decoded grey, converted to float after the cheap gather) or float."""
    if luma.ndim != 2 or luma.shape[0] < 1 or luma.shape[1] < 1:
        raise ValueError(f"PDQ needs a non-empty 2-D luma plane, got shape {luma.shape}")
    if luma.dtype in (np.uint8, np.float32):
        return luma
    return luma.astype(np.float32)


_ZERO_HEX = "0" * 64


def _prepare(
    luma: NDArray[np.generic], geometry: Geometry | None
) -> tuple[NDArray[np.generic], Geometry]:
    plane = _check_luma(luma)
    return plane, geometry or Geometry(plane.shape[0], plane.shape[1])


def _too_small(geometry: Geometry) -> bool:
    return min(geometry.height, geometry.width) < _MIN_HASHABLE_DIM


def pdq_from_luma(luma: NDArray[np.generic], geometry: Geometry | None = None) -> PdqHash:
    """PDQ hash and quality of a luma plane (values 0..255, uint8 or float).

    ``geometry`` describes the full-size image when ``luma`` is a block-reduced version.
    """
    plane, geometry = _prepare(luma, geometry)
    if _too_small(geometry):
        return PdqHash(_ZERO_HEX, 0)
    buffer = _downsample(plane, geometry)
    return PdqHash(_hex_from_dct(_dct16(buffer)), _quality(buffer))


# Each dihedral transform of the image permutes and negates the 16x16 DCT coefficients:
# a flip negates the odd frequencies (even indices here, frequency = index + 1) along its
# axis, and a transpose swaps the axes. Order and names follow pdqhash.compute_dihedral.
_EVEN = (np.arange(16) % 2 == 0).astype(np.float64)
_FLIP = 1.0 - 2.0 * _EVEN  # -1 where the frequency is odd


def _dihedral_dcts(d: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    # pdqhash names the top-bottom mirror "flipx" (it flips along the x axis).
    fx = d * _FLIP[None, :]  # mirror left-right
    fy = d * _FLIP[:, None]  # mirror top-bottom
    fxy = fx * _FLIP[:, None]
    return {
        "original": d,
        "rotate90": fx.T,
        "rotate180": fxy,
        "rotate270": fy.T,
        "flipx": fy,
        "flipy": fx,
        "flip_plus1": d.T,
        "flip_minus1": fxy.T,
    }


DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)


def pdq_dihedral_from_luma(
    luma: NDArray[np.generic], geometry: Geometry | None = None
) -> tuple[dict[str, str], int]:
    """The 8 dihedral PDQ hashes (rotations and flips) by name, and the quality.

    Costs the same as one hash: the transforms act on the 16x16 DCT, not on pixels.
    """
    plane, geometry = _prepare(luma, geometry)
    if _too_small(geometry):
        return dict.fromkeys(DIHEDRAL_NAMES, _ZERO_HEX), 0
    buffer = _downsample(plane, geometry)
    dcts = _dihedral_dcts(_dct16(buffer))
    return {name: _hex_from_dct(dcts[name]) for name in DIHEDRAL_NAMES}, _quality(buffer)


def _alpha_on_white(luma: Luma, alpha: Image.Image) -> Luma:
    weight = np.asarray(alpha, dtype=np.float32) / 255.0
    result: Luma = luma * weight + 255.0 * (1.0 - weight)
    return result


def _rgb_luma(image: Image.Image) -> Luma:
    result: Luma = np.asarray(image.convert("RGB"), dtype=np.float32) @ _LUMA_WEIGHTS
    return result


def luma_from_image(image: Image.Image) -> Luma:
    """The luma plane PDQ hashes, following the mode policies in the module docstring."""
    mode = image.mode
    if mode in _GREY_MODES:
        return np.asarray(image.convert("L"), dtype=np.float32)
    if mode in _WIDE_GREY_MODES:
        wide = np.asarray(image, dtype=np.float32)
        result: Luma = np.clip(wide, 0.0, 65535.0) / 257.0
        return result
    if mode == "LA":
        return _alpha_on_white(np.asarray(image.getchannel("L"), np.float32), image.getchannel("A"))
    if mode in ("P", "PA") and (mode == "PA" or "transparency" in image.info):
        image = image.convert("RGBA")
    if mode in ("RGBA", "RGBa") or image.mode == "RGBA":
        rgba = image.convert("RGBA")
        return _alpha_on_white(_rgb_luma(rgba), rgba.getchannel("A"))
    return _rgb_luma(image)


def pdq_hex_from_image(image: Image.Image) -> PdqHash:
    """PDQ of an already decoded, upright Pillow image (no resizing, no EXIF handling)."""
    return pdq_from_luma(luma_from_image(image))


def pdq_dihedral(image: Image.Image) -> tuple[dict[str, str], int]:
    """The 8 dihedral PDQ hashes of an already decoded, upright Pillow image."""
    return pdq_dihedral_from_luma(luma_from_image(image))
