"""The numpy PDQ against the pdqhash package (Meta's C++), on synthetic images."""

from __future__ import annotations

import numpy as np
import pdqhash
import pytest
from PIL import Image

from crawler.media.pdq import (
    DIHEDRAL_NAMES,
    Geometry,
    hamming,
    hex_from_bits,
    hex_from_pdqhash_bits,
    pdq_dihedral,
    pdq_from_luma,
    pdq_hex_from_image,
)
from tests.support.media import structured

SIZES = [(640, 480), (333, 517), (130, 128), (64, 64), (65, 64), (2000, 7), (1, 1), (4, 300)]


def _reference(image: Image.Image) -> tuple[str, int]:
    bits, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    return hex_from_pdqhash_bits(bits), quality


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_matches_pdqhash_bit_for_bit_and_quality(width: int, height: int) -> None:
    image = structured(width, height, seed=width + height)
    expected_hex, expected_quality = _reference(image)
    ours = pdq_hex_from_image(image)
    assert hamming(ours.hex, expected_hex) <= 2
    assert ours.quality == expected_quality


def test_images_under_five_pixels_get_the_reference_refusal() -> None:
    result = pdq_hex_from_image(structured(4, 300, seed=1))
    assert (result.hex, result.quality) == ("0" * 64, 0)


@pytest.mark.parametrize(("width", "height"), [(640, 480), (257, 300)])
def test_dihedral_matches_pdqhash_compute_dihedral(width: int, height: int) -> None:
    image = structured(width, height, seed=7)
    bits, quality = pdqhash.compute_dihedral(np.asarray(image))
    ours, our_quality = pdq_dihedral(image)
    assert our_quality == quality
    for name, expected in zip(DIHEDRAL_NAMES, bits, strict=True):
        assert hamming(ours[name], hex_from_pdqhash_bits(expected)) <= 2, name


@pytest.mark.parametrize(
    ("name", "transpose"),
    [
        ("rotate90", Image.Transpose.ROTATE_90),
        ("rotate180", Image.Transpose.ROTATE_180),
        ("flipx", Image.Transpose.FLIP_TOP_BOTTOM),
        ("flip_plus1", Image.Transpose.TRANSPOSE),
    ],
)
def test_dihedral_hash_is_the_hash_of_the_transformed_pixels(
    name: str, transpose: Image.Transpose
) -> None:
    image = structured(512, 384, seed=3)
    hashes, _ = pdq_dihedral(image)
    assert hamming(hashes[name], pdq_hex_from_image(image.transpose(transpose)).hex) <= 16


def test_hex_puts_bit_255_first() -> None:
    bits = np.zeros(256, dtype=np.uint8)
    bits[0] = 1
    assert hex_from_bits(bits) == "0" * 63 + "1"
    bits[:] = 0
    bits[255] = 1
    assert hex_from_bits(bits) == "8" + "0" * 63


def test_hex_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="256 bits"):
        hex_from_bits(np.zeros(255, dtype=np.uint8))


@pytest.mark.parametrize("block", [2, 4, 8])
def test_block_reduced_luma_with_geometry_stays_close_to_full_size(block: int) -> None:
    image = structured(1301, 1027, seed=11)
    luma = np.asarray(image.convert("L"), dtype=np.float32)
    full = pdq_from_luma(luma).hex
    reduced = image.convert("L").reduce(block)
    small = np.asarray(reduced, dtype=np.float32)
    folded = pdq_from_luma(small, Geometry(1027, 1301)).hex
    naive = pdq_from_luma(small).hex
    assert hamming(folded, full) <= 6
    # Folding must be doing the work: never worse than hashing the small plane as is.
    assert hamming(folded, full) <= hamming(naive, full)


def test_geometry_that_cannot_be_blocks_is_rejected() -> None:
    with pytest.raises(ValueError, match="cannot be blocks"):
        pdq_from_luma(np.zeros((100, 100), dtype=np.uint8), Geometry(1000, 150))
