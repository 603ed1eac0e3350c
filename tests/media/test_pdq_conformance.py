"""PDQ conformance against Meta's published reference hashes (docs/hazards.md M-04/M-05 context).

The reference images are read in place, never copied. Their folder is found through
``TAKEDOWN_PDQ_REFERENCE``, else ``<repo root>/../shared/pdq-reference``, else
``/work/shared/pdq-reference``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crawler.media.hashing import hash_media
from crawler.media.pdq import DIHEDRAL_NAMES, hamming, pdq_dihedral

REFERENCE_TOLERANCE = 16  # Meta's own test: decoders differ by a few bits
MATCH_DISTANCE = 31
REPO_ROOT = Path(__file__).resolve().parents[2]


def _reference_dir() -> Path | None:
    candidates = [
        os.environ.get("TAKEDOWN_PDQ_REFERENCE"),
        str(REPO_ROOT.parent / "shared" / "pdq-reference"),
        "/work/shared/pdq-reference",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "expected.csv").is_file():
            return Path(candidate)
    return None


REFERENCE = _reference_dir()
pytestmark = pytest.mark.skipif(
    REFERENCE is None,
    reason="PDQ reference images not found: set TAKEDOWN_PDQ_REFERENCE to the folder holding "
    "expected.csv (facebook/ThreatExchange pdq/data images)",
)


def _expected() -> dict[str, str]:
    if REFERENCE is None:
        return {}
    with (REFERENCE / "expected.csv").open(newline="") as handle:
        return {row["file"]: row["pdq"].lower() for row in csv.DictReader(handle)}


EXPECTED = _expected()
EDITS = sorted(name for name in EXPECTED if not name.startswith("bridge-"))
BRIDGES = sorted(name for name in EXPECTED if name.startswith("bridge-"))
ORIGINAL = "aaa-orig.jpg"


def _hash_file(name: str) -> str:
    assert REFERENCE is not None
    result = hash_media((REFERENCE / name).read_bytes(), declared_type="image/jpeg")
    assert result.status == "hashed", result.error
    assert result.pdq is not None
    return result.pdq


def test_reference_set_is_complete() -> None:
    assert ORIGINAL in EXPECTED
    assert len(BRIDGES) == 8
    assert len(EDITS) >= 10


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_file_within_tolerance_of_reference(name: str) -> None:
    assert hamming(_hash_file(name), EXPECTED[name]) <= REFERENCE_TOLERANCE


@pytest.mark.parametrize("name", EDITS)
def test_each_edit_matches_the_original(name: str) -> None:
    assert hamming(_hash_file(name), EXPECTED[ORIGINAL]) <= MATCH_DISTANCE


@pytest.mark.parametrize("name", [b for b in BRIDGES if not b.startswith("bridge-1")])
def test_transforms_of_the_original_do_not_match_it_directly(name: str) -> None:
    # Rotations and flips need the dihedral hashes: a plain PDQ must not match them.
    assert hamming(_hash_file(name), EXPECTED[ORIGINAL]) > MATCH_DISTANCE


def test_dihedral_hashes_of_the_original_match_each_published_transform() -> None:
    assert REFERENCE is not None
    with Image.open(REFERENCE / ORIGINAL) as image:
        hashes, quality = pdq_dihedral(image.convert("RGB"))
    assert quality == 100
    for name, bridge in zip(DIHEDRAL_NAMES, BRIDGES, strict=True):
        assert hamming(hashes[name], EXPECTED[bridge]) <= REFERENCE_TOLERANCE, (name, bridge)


def test_full_decode_is_the_baseline_and_fast_path_stays_close() -> None:
    # The fast path (DCT-scaled decode, folded weights) against a full-size decode.
    assert REFERENCE is not None
    from crawler.media.pdq import pdq_from_luma

    with Image.open(REFERENCE / ORIGINAL) as image:
        luma = np.asarray(image.convert("RGB"), dtype=np.float32) @ np.float32(
            [0.299, 0.587, 0.114]
        )
    full = pdq_from_luma(luma).hex
    assert hamming(full, _hash_file(ORIGINAL)) <= 6
