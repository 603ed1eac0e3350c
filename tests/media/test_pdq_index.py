"""PDQIndex must return exactly what a brute-force scan returns, for every layout."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.media.pdq_index import (
    HASH_BITS,
    Layout,
    PDQIndex,
    PDQMatch,
    array_to_hexes,
    bytes_to_hex,
    choose_layout,
    chunk_radii,
    hex_to_bytes,
    hexes_to_array,
)

# Forced layouts run the table code on small data; None lets the index choose. MIH12 is
# the 10M layout; its 134 MB offsets table makes it too slow to build in every test.
MIH12 = Layout(tuple([21] * 8 + [22] * 4))
LAYOUTS = {
    "auto": None,
    "brute": Layout(()),
    "mih16": Layout(tuple([16] * 16)),
    "mih24": Layout(tuple([10] * 8 + [11] * 16)),
}


def brute_force(hashes: np.ndarray, ids: np.ndarray, query: np.ndarray, radius: int, bits=None):
    """Reference: unpack every bit, count differences. Shares no code with the index."""
    bits = np.unpackbits(hashes, axis=1) if bits is None else bits
    qbits = np.unpackbits(query)
    dists = (bits != qbits).sum(axis=1)
    hit = np.flatnonzero(dists <= radius)
    return sorted((int(ids[i]), int(dists[i])) for i in hit)


def flip_bits(rng: np.random.Generator, row: np.ndarray, n: int) -> np.ndarray:
    out = row.copy()
    for bit in rng.choice(HASH_BITS, size=n, replace=False):
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


def flip_random(rng: np.random.Generator, rows: np.ndarray, max_bits: int) -> np.ndarray:
    """Flip about 0..max_bits random bits in each row (vectorised, unlike flip_bits)."""
    rate = rng.uniform(0, max_bits / HASH_BITS, size=(len(rows), 1))
    noise = np.packbits(rng.random((len(rows), HASH_BITS)) < rate, axis=1)
    return rows ^ noise


def clustered(rng: np.random.Generator, n: int, family: int = 50) -> np.ndarray:
    """Families of near-variants around a root, and exact copies, like real lists."""
    roots = uniform(rng, max(1, n // family))
    out = flip_random(rng, roots[rng.integers(0, len(roots), size=n)], 20)
    out[: n // 10] = out[n // 10 : 2 * (n // 10)]  # 10% exact duplicates
    return out


def queries_near(rng: np.random.Generator, hashes: np.ndarray, count: int) -> np.ndarray:
    return flip_random(rng, hashes[rng.integers(0, len(hashes), size=count)], 40)


def as_pairs(matches: list[PDQMatch]) -> list[tuple[int, int]]:
    return sorted((m.id, m.distance) for m in matches)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("make", [uniform, clustered], ids=["uniform", "clustered"])
@pytest.mark.parametrize("radius", [31, 17, 8, 0])
def test_recall_matches_brute_force(layout: Layout | None, make, radius: int) -> None:
    rng = np.random.default_rng(radius)
    hashes = make(rng, 3000)
    ids = rng.permutation(len(hashes)).astype(np.int64) * 7
    index = PDQIndex(hashes, ids, layout=layout)
    for query in queries_near(rng, hashes, 40):
        assert as_pairs(index.query(query, radius)) == brute_force(hashes, ids, query, radius)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_planted_near_duplicates_at_the_threshold(layout: Layout | None) -> None:
    rng = np.random.default_rng(7)
    hashes = uniform(rng, 5000)
    base = hashes[123]
    planted = {d: flip_bits(rng, base, d) for d in (0, 1, 15, 31, 32)}
    all_hashes = np.vstack([hashes, *planted.values()])
    ids = np.arange(len(all_hashes), dtype=np.int64)
    index = PDQIndex(all_hashes, ids, layout=layout)
    found = dict(index.query(base, 31))
    for offset, distance in enumerate(planted):
        planted_id = 5000 + offset
        if distance <= 31:
            assert found[planted_id] == distance
        else:
            assert planted_id not in found
    assert found[123] == 0


def test_results_are_nearest_first_then_by_id() -> None:
    rng = np.random.default_rng(3)
    base = uniform(rng, 1)[0]
    hashes = np.stack([flip_bits(rng, base, d) for d in (9, 2, 2, 30, 0)])
    index = PDQIndex(hashes, [50, 40, 30, 20, 10], layout=LAYOUTS["mih16"])
    assert [m.distance for m in index.query(base)] == [0, 2, 2, 9, 30]
    assert [m.id for m in index.query(base)][1:3] == [30, 40]


def test_large_uniform_index_is_exact_and_uses_tables() -> None:
    rng = np.random.default_rng(11)
    hashes = uniform(rng, 200_000)
    ids = np.arange(len(hashes), dtype=np.int64)
    index = PDQIndex(hashes, ids)
    assert not index.layout.brute_force
    bits = np.unpackbits(hashes, axis=1)
    for query in queries_near(rng, hashes, 20):
        assert as_pairs(index.query(query)) == brute_force(hashes, ids, query, 31, bits)


@pytest.mark.parametrize("make", [uniform, clustered], ids=["uniform", "clustered"])
def test_production_layout_is_exact(make) -> None:
    rng = np.random.default_rng(12)
    hashes = make(rng, 5000)
    ids = np.arange(len(hashes), dtype=np.int64)
    index = PDQIndex(hashes, ids, layout=MIH12)
    for radius, query in zip([31, 31, 20, 9, 2, 0] * 5, queries_near(rng, hashes, 30)):
        assert as_pairs(index.query(query, radius)) == brute_force(hashes, ids, query, radius)


def test_batch_query_equals_single_queries() -> None:
    rng = np.random.default_rng(5)
    hashes = clustered(rng, 4000)
    index = PDQIndex(hashes, np.arange(4000), layout=LAYOUTS["mih24"])
    queries = queries_near(rng, hashes, 25)
    batch = index.query_batch(queries, 20)
    assert len(batch) == 25
    assert batch == [index.query(q, 20) for q in queries]
    assert any(batch)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_empty_index(layout: Layout | None) -> None:
    index = PDQIndex(np.zeros((0, 32), dtype=np.uint8), np.zeros(0, dtype=np.int64), layout=layout)
    assert len(index) == 0
    assert index.query(bytes(32)) == []
    assert index.query_batch(np.zeros((3, 32), dtype=np.uint8)) == [[], [], []]
    assert index.query_batch(np.zeros((0, 32), dtype=np.uint8)) == []


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_duplicate_hashes_keep_every_id(layout: Layout | None) -> None:
    rng = np.random.default_rng(9)
    hashes = uniform(rng, 500)
    twin = hashes[42]
    all_hashes = np.vstack([hashes, twin, twin, flip_bits(rng, twin, 3)])
    ids = np.arange(len(all_hashes), dtype=np.int64) + 1000
    index = PDQIndex(all_hashes, ids, layout=layout)
    assert len(index) == 503
    assert index.unique_hashes == 501
    assert index.query(twin) == [(1042, 0), (1500, 0), (1501, 0), (1502, 3)]


def test_duplicate_ids_are_kept_as_given() -> None:
    rng = np.random.default_rng(4)
    hashes = uniform(rng, 3)
    index = PDQIndex(hashes, [5, 5, 5])
    assert index.query(hashes[1], 0) == [(5, 0)]


def test_query_accepts_bytes_hex_and_arrays() -> None:
    rng = np.random.default_rng(2)
    hashes = uniform(rng, 100)
    index = PDQIndex(hashes, np.arange(100))
    row = hashes[17]
    expected = index.query(row)
    assert index.query(bytes(row)) == expected
    assert index.query(bytes_to_hex(row)) == expected
    assert expected[0] == (17, 0)


def test_hex_round_trip() -> None:
    rng = np.random.default_rng(1)
    hashes = uniform(rng, 20)
    hexes = array_to_hexes(hashes)
    assert all(len(h) == 64 for h in hexes)
    assert np.array_equal(hexes_to_array(hexes), hashes)
    assert hex_to_bytes(hexes[0]) == bytes(hashes[0])
    assert bytes_to_hex(hex_to_bytes("ab" * 32)) == "ab" * 32
    index = PDQIndex.from_hex(hexes, range(20))
    assert index.query(hexes[3], 0) == [(3, 0)]


@pytest.mark.parametrize("bad", ["ab" * 31, "zz" * 32, "ab" * 33])
def test_hex_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        hex_to_bytes(bad)


def test_rejects_bad_inputs() -> None:
    hashes = np.zeros((2, 32), dtype=np.uint8)
    with pytest.raises(ValueError, match="ids"):
        PDQIndex(hashes, [1])
    with pytest.raises(ValueError, match="shape"):
        PDQIndex(np.zeros((2, 31), dtype=np.uint8), [1, 2])
    with pytest.raises(ValueError, match="uint8"):
        PDQIndex(hashes.astype(np.int64), [1, 2])
    index = PDQIndex(hashes, [1, 2], max_radius=20)
    with pytest.raises(ValueError, match="radius"):
        index.query(bytes(32), 21)
    with pytest.raises(ValueError, match="radius"):
        index.query(bytes(32), -1)
    with pytest.raises(ValueError):
        index.query(bytes(31))


@pytest.mark.parametrize("m", range(1, 33))
@pytest.mark.parametrize("radius", [0, 1, 11, 12, 13, 31, 64])
def test_chunk_radii_cover_the_radius(m: int, radius: int) -> None:
    """Pigeonhole: if every chunk differed by more than its probe radius, the total would
    exceed ``radius``, so sum(radius_c + 1) must be exactly radius + 1."""
    radii = chunk_radii(tuple([8] * m), radius)
    assert sum(r + 1 for r in radii) == radius + 1
    assert radii == sorted(radii, reverse=True)


def test_layout_choice_follows_size() -> None:
    assert choose_layout(1000, 31).brute_force
    big = choose_layout(10_000_000, 31)
    assert not big.brute_force
    assert big.widths == tuple(sorted(big.widths))
    assert sum(big.widths) == HASH_BITS


def test_memory_per_hash_within_budget() -> None:
    rng = np.random.default_rng(8)
    index = PDQIndex(uniform(rng, 100_000), np.arange(100_000))
    assert index.nbytes / len(index) <= 128


hash_rows = st.binary(min_size=32, max_size=32)


@settings(max_examples=60, deadline=None)
@given(
    roots=st.lists(hash_rows, min_size=0, max_size=12),
    flips=st.lists(st.lists(st.integers(0, 255), max_size=40), min_size=1, max_size=60),
    query_flips=st.lists(st.integers(0, 255), max_size=45),
    radius=st.integers(0, 31),
    layout=st.sampled_from(list(LAYOUTS.values())),
)
def test_property_index_equals_brute_force(roots, flips, query_flips, radius, layout) -> None:
    if not roots:
        hashes = np.zeros((0, 32), dtype=np.uint8)
        query = np.zeros(32, dtype=np.uint8)
    else:
        base = [np.frombuffer(r, dtype=np.uint8) for r in roots]
        rows = []
        for i, bits in enumerate(flips):
            row = base[i % len(base)].copy()
            for b in bits:
                row[b // 8] ^= np.uint8(1 << (b % 8))
            rows.append(row)
        hashes = np.stack(rows)
        query = base[0].copy()
        for b in query_flips:
            query[b // 8] ^= np.uint8(1 << (b % 8))
    ids = np.arange(len(hashes), dtype=np.int64)
    index = PDQIndex(hashes, ids, layout=layout)
    assert as_pairs(index.query(query, radius)) == brute_force(hashes, ids, query, radius)
