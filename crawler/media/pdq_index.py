"""Exact PDQ range search over millions of hashes: multi-index hashing in numpy.

A query asks for every stored PDQ hash within Hamming distance ``r`` (<= 31 for the usual
threshold) of a 256-bit hash. Recall must be 100%: a hotline cannot miss a known image
because an approximate index guessed wrong. So this is an *exact* range search.

Structure
---------
Built once from ``N`` hashes (``uint8`` array ``(N, 32)``) and ``int64`` ids:

* Exact duplicate hashes are collapsed first (real lists hold many copies of the same hash
  under different ids); each unique hash keeps a slice of ids. The ``U`` unique hashes are
  stored as ``(U, 4)`` native ``uint64`` words.
* The 256 bits are cut into ``m`` contiguous chunks of ``floor(256/m)`` or ``ceil(256/m)``
  bits (e.g. 12 chunks of 21-22 bits at 10M). Per chunk, a bucketed table: ``positions``
  (``int32`` row numbers of the unique hashes, sorted by that chunk's value, built with
  ``np.argsort``) and ``offsets`` (an exclusive ``bincount`` cumsum, so bucket ``v`` is
  ``positions[offsets[v]:offsets[v + 1]]``). All chunks share one flat ``offsets`` and one
  flat ``positions`` array so that a query gathers every probed bucket in a few numpy calls.
* Small indexes skip the tables: a vectorised popcount over every hash is faster there.
  :func:`choose_layout` picks brute force or the chunk count from a cost model calibrated
  by ``bench/matching.py``, under a memory budget.

Memory per hash: 32 (hash) + 8 (id) + 4 per chunk (positions) + 4 x 2^w / N (offsets),
plus 4 per unique hash when there are duplicates. At 10M with 12 chunks that is
32 + 8 + 48 + 13.4 = ~101 bytes; :attr:`PDQIndex.nbytes` reports the real figure.

Why it is exact
---------------
Pigeonhole, in the sharpened form of Norouzi et al. (multi-index hashing, 2012): write
``r = m * s + a`` with ``0 <= a < m``. If ``d(q, h) <= r`` then either one of the first
``a + 1`` chunks differs in at most ``s`` bits, or one of the others differs in at most
``s - 1`` bits; otherwise the distance would be at least ``(a + 1)(s + 1) + (m - a - 1)s =
r + 1``. A query therefore probes, in each chunk, every value within that chunk's small
radius (all XOR masks of popcount <= s), which lists a superset of the answers; every
candidate is then verified with a full 256-bit popcount, so nothing outside the radius is
returned. The narrowest chunks get the larger radius because they have fewer masks.

Clustered lists (families of near-variants) give uneven buckets. Duplicates are collapsed,
and a near-variant that lands in a heavy bucket is usually a true match of the query, so
the cost follows the answer size; ``bench/matching.py`` measures uniform and clustered data.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache
from math import comb
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

HASH_BYTES = 32
HASH_BITS = 256
DEFAULT_RADIUS = 31
# Probe counts grow as C(w, r/m); beyond this the tables stop paying for themselves.
MAX_RADIUS = 64
DEFAULT_BYTES_PER_HASH = 128

# Cost model, in nanoseconds, fitted to 1M and 10M uniform runs (chunk counts 10-20) on a
# 2-core shared box. Probes and candidates are each ~one cache miss plus numpy work; only
# the ratios matter: they pick brute force versus tables and the chunk count.
_NS_PER_PROBE = 35.0
_NS_PER_CANDIDATE = 50.0
_NS_PER_BRUTE_HASH = 4.0
_NS_TABLE_OVERHEAD = 80_000.0
_NS_BRUTE_OVERHEAD = 10_000.0
# Candidates verified together in one batch: bounds the temporary arrays (~100 B each).
_BATCH_CANDIDATES = 2_000_000

Hash = bytes | str | NDArray[np.uint8]
U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]
# int32 while row numbers fit (halves the tables), int64 beyond.
Idx = NDArray[np.signedinteger[Any]]


class PDQMatch(NamedTuple):
    """One stored hash within the query radius."""

    id: int
    distance: int


@dataclass(frozen=True)
class Layout:
    """How the 256 bits are cut; ``widths`` is empty for brute force."""

    widths: tuple[int, ...]

    @property
    def brute_force(self) -> bool:
        return not self.widths

    @property
    def starts(self) -> tuple[int, ...]:
        return tuple(itertools.accumulate(self.widths, initial=0))[:-1]

    def describe(self) -> str:
        if self.brute_force:
            return "brute-force"
        return f"mih({len(self.widths)} chunks of {min(self.widths)}-{max(self.widths)} bits)"


@dataclass(frozen=True)
class BucketStats:
    """Bucket occupancy, for spotting clustered lists that defeat the tables."""

    buckets: int
    max_bucket: int
    mean_nonempty: float
    share_in_buckets_over_64: float


# ---------------------------------------------------------------------------------------
# Hex helpers


def hex_to_bytes(hex_hash: str) -> bytes:
    """64 hex digits (PDQ's text form) to 32 bytes; ValueError on anything else."""
    if len(hex_hash) != 2 * HASH_BYTES:
        raise ValueError(f"a PDQ hash is 64 hex digits, got {len(hex_hash)} characters")
    return bytes.fromhex(hex_hash)


def bytes_to_hex(raw: bytes | NDArray[np.uint8]) -> str:
    """32 bytes to 64 lowercase hex digits."""
    data = bytes(np.asarray(raw, dtype=np.uint8).ravel()) if not isinstance(raw, bytes) else raw
    if len(data) != HASH_BYTES:
        raise ValueError(f"a PDQ hash is 32 bytes, got {len(data)}")
    return data.hex()


def hexes_to_array(hex_hashes: list[str]) -> NDArray[np.uint8]:
    """Many hex hashes to a ``(N, 32)`` uint8 array, the index's input form."""
    raw = b"".join(hex_to_bytes(h) for h in hex_hashes)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(hex_hashes), HASH_BYTES).copy()


def array_to_hexes(hashes: NDArray[np.uint8]) -> list[str]:
    """A ``(N, 32)`` uint8 array back to hex strings."""
    return [bytes(row).hex() for row in _as_matrix(hashes)]


# ---------------------------------------------------------------------------------------
# Bit twiddling shared by build and query


def _as_matrix(hashes: ArrayLike) -> NDArray[np.uint8]:
    arr = np.asarray(hashes)
    if arr.ndim != 2 or arr.shape[1] != HASH_BYTES:
        raise ValueError(f"hashes must have shape (N, 32), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"hashes must be uint8, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def _as_row(query: Hash) -> NDArray[np.uint8]:
    if isinstance(query, str):
        query = hex_to_bytes(query)
    if isinstance(query, bytes):
        if len(query) != HASH_BYTES:
            raise ValueError(f"a PDQ hash is 32 bytes, got {len(query)}")
        return np.frombuffer(query, dtype=np.uint8).reshape(1, HASH_BYTES)
    return _as_matrix(np.asarray(query).reshape(1, -1))


def _to_words(hashes: NDArray[np.uint8]) -> U64:
    """(N, 32) bytes to (N, 4) native uint64; any fixed bit order gives the same distances."""
    return hashes.view(np.uint64).reshape(-1, 4)


def _chunk_values(words: U64, start: int, width: int) -> U64:
    """Bits [start, start + width) of each 256-bit row, counting word k as bits 64k..64k+63."""
    word, offset = divmod(start, 64)
    mask = np.uint64((1 << width) - 1)
    values = words[:, word] >> np.uint64(offset)
    if offset + width > 64:
        # The chunk straddles two words: take the high part from the next one.
        values = values | (words[:, word + 1] << np.uint64(64 - offset))
    return values & mask


def _distances(candidates: U64, queries: U64) -> I64:
    """Row-wise 256-bit Hamming distance of two same-shape ``(C, 4)`` word arrays.

    The four per-word popcounts (one byte each) are summed through a uint32 view: numpy's
    ``sum(axis=1)`` over rows of four is ~10x slower, and broadcasting one query row
    against ``(C, 4)`` runs a 4-element inner loop per row, hence same-shape inputs.
    """
    counts = np.bitwise_count(candidates ^ queries).view(np.uint32).ravel()
    pairs = (counts & 0x00FF00FF) + ((counts >> 8) & 0x00FF00FF)
    return ((pairs & 0xFFFF) + (pairs >> 16)).astype(np.int64)


@lru_cache(maxsize=256)
def _flip_masks(width: int, radius: int) -> I64:
    """Every ``width``-bit value of popcount <= radius: the XORs that reach a chunk's ball."""
    masks = [0]
    for k in range(1, min(radius, width) + 1):
        masks.extend(sum(1 << b for b in bits) for bits in itertools.combinations(range(width), k))
    return np.array(masks, dtype=np.int64)


def chunk_radii(widths: tuple[int, ...], radius: int) -> list[int]:
    """Per-chunk probe radius (-1 = skip) from the sharpened pigeonhole bound.

    ``widths`` must be sorted ascending so the narrow chunks get the larger radius.
    """
    m = len(widths)
    s, a = divmod(radius, m)
    return [s if c <= a else s - 1 for c in range(m)]


def _split_bits(m: int) -> tuple[int, ...]:
    base, extra = divmod(HASH_BITS, m)
    return tuple([base] * (m - extra) + [base + 1] * extra)


# ---------------------------------------------------------------------------------------
# Choosing a layout


def _probe_count(widths: tuple[int, ...], radius: int) -> list[int]:
    return [
        sum(comb(w, k) for k in range(s + 1)) if s >= 0 else 0
        for w, s in zip(widths, chunk_radii(widths, radius), strict=True)
    ]


def expected_candidates(widths: tuple[int, ...], n_unique: int, radius: int) -> float:
    """Hashes one query verifies on uniform data: every hash for brute force."""
    if not widths:
        return float(n_unique)
    probes = _probe_count(widths, radius)
    return sum(p * n_unique / 2**w for p, w in zip(probes, widths, strict=True))


def estimate_query_ns(widths: tuple[int, ...], n_unique: int, radius: int) -> float:
    """Model of one query's cost on uniform data; brute force when ``widths`` is empty."""
    candidates = expected_candidates(widths, n_unique, radius)
    if not widths:
        return _NS_BRUTE_OVERHEAD + _NS_PER_BRUTE_HASH * candidates
    probes = sum(_probe_count(widths, radius))
    return _NS_TABLE_OVERHEAD + _NS_PER_PROBE * probes + _NS_PER_CANDIDATE * candidates


def table_bytes(widths: tuple[int, ...], n_unique: int) -> int:
    """Bytes of the offsets and positions arrays for a layout."""
    if not widths:
        return 0
    return 4 * (sum(2**w for w in widths) + 1) + 4 * len(widths) * n_unique


def choose_layout(
    n_unique: int, radius: int, bytes_per_hash: int = DEFAULT_BYTES_PER_HASH
) -> Layout:
    """Cheapest layout by :func:`estimate_query_ns` whose tables fit the memory budget.

    The budget covers the tables plus the 40 bytes every hash needs anyway (hash, id);
    brute force always fits, so small or tight indexes fall back to it.
    """
    best = Layout(())
    best_ns = estimate_query_ns((), n_unique, radius)
    table_budget = max(0, bytes_per_hash - HASH_BYTES - 8) * max(n_unique, 1)
    for m in range(8, 33):
        widths = _split_bits(m)
        if max(widths) > 30 or table_bytes(widths, n_unique) > table_budget:
            continue
        ns = estimate_query_ns(widths, n_unique, radius)
        if ns < best_ns:
            best, best_ns = Layout(widths), ns
    return best


# ---------------------------------------------------------------------------------------
# Build steps


def _sort_unique(words: U64) -> tuple[I64, I64]:
    """Row order sorting the hashes, and the start of each run of identical hashes.

    A full ``lexsort`` on four keys takes ~10 s at 10M; sorting on the first word and
    lexsorting only the rows whose first word repeats is ~7x faster and gives the same order.
    """
    order = np.argsort(words[:, 0], kind="stable")
    first = words[order, 0]
    repeat = np.zeros(len(order), dtype=bool)
    same = first[1:] == first[:-1]
    repeat[1:] |= same
    repeat[:-1] |= same
    if repeat.any():
        slots = np.flatnonzero(repeat)
        rows = order[slots]
        sub = words[rows]
        order[slots] = rows[np.lexsort((sub[:, 3], sub[:, 2], sub[:, 1], sub[:, 0]))]
    ordered = words[order]
    new_run = np.ones(len(order), dtype=bool)
    new_run[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    return order.astype(np.int64), np.flatnonzero(new_run).astype(np.int64)


def _build_tables(words: U64, layout: Layout) -> tuple[Idx, Idx]:
    """Flat (positions, offsets) for every chunk; see the module docstring."""
    n = len(words)
    index_dtype: type[np.signedinteger[Any]] = (
        np.int32 if len(layout.widths) * n < 2**31 else np.int64
    )
    positions = np.empty(len(layout.widths) * n, dtype=index_dtype)
    offsets = np.zeros(sum(2**w for w in layout.widths) + 1, dtype=index_dtype)
    bucket_base = 0
    for c, (start, width) in enumerate(zip(layout.starts, layout.widths, strict=True)):
        values = _chunk_values(words, start, width)
        positions[c * n : (c + 1) * n] = _bucket_order(values, width)
        counts = np.bincount(values.astype(np.int64), minlength=2**width)
        offsets[bucket_base] = c * n
        np.cumsum(counts, out=offsets[bucket_base + 1 : bucket_base + 2**width + 1])
        offsets[bucket_base + 1 : bucket_base + 2**width + 1] += c * n
        bucket_base += 2**width
    return positions, offsets


def _bucket_order(values: U64, width: int) -> I64:
    """Row numbers ordered by chunk value (order inside a bucket is irrelevant).

    Sorting ``value << 32 | row`` as one uint64 key is ~25% faster than ``np.argsort``,
    which matters: this runs once per chunk and dominates the build.
    """
    n = len(values)
    if width + n.bit_length() > 64:
        return np.argsort(values).astype(np.int64)
    shift = np.uint64(n.bit_length())
    keys = (values << shift) | np.arange(n, dtype=np.uint64)
    keys.sort()
    return (keys & np.uint64((1 << int(shift)) - 1)).astype(np.int64)


def _concat_ranges(starts: I64, lengths: I64) -> I64:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`` without a loop."""
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    shift = np.repeat(starts - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + shift


# ---------------------------------------------------------------------------------------
# The index


class PDQIndex:
    """Exact Hamming range search over a fixed set of PDQ hashes.

    ``hashes`` is ``(N, 32)`` uint8, ``ids`` ``N`` integers (duplicates of either allowed).
    ``max_radius`` is the largest radius a query may ask for; it shapes the tables, and
    each query may use any radius from 0 to it (every hash list has its own threshold).
    ``layout`` overrides the automatic choice (benchmarks and tests use it).
    """

    def __init__(
        self,
        hashes: ArrayLike,
        ids: ArrayLike,
        *,
        max_radius: int = DEFAULT_RADIUS,
        bytes_per_hash: int = DEFAULT_BYTES_PER_HASH,
        layout: Layout | None = None,
    ) -> None:
        matrix = _as_matrix(hashes)
        id_array = np.asarray(ids, dtype=np.int64).ravel()
        if len(id_array) != len(matrix):
            raise ValueError(f"{len(matrix)} hashes but {len(id_array)} ids")
        _check_radius(max_radius, MAX_RADIUS)
        self.max_radius = max_radius
        order, run_starts = _sort_unique(_to_words(matrix))
        self._words: U64 = np.ascontiguousarray(_to_words(matrix)[order[run_starts]])
        self._ids: I64 = id_array[order]
        # Without duplicates unique row i owns id i, so the run offsets are not stored.
        self._id_offsets: I64 | None = None
        if len(run_starts) != len(order):
            self._id_offsets = np.append(run_starts, len(order))
        self.layout = layout or choose_layout(len(self._words), max_radius, bytes_per_hash)
        self._positions, self._offsets = _build_tables(self._words, self.layout)
        # Brute force reads whole columns; the tables path gathers whole rows.
        self._columns = np.ascontiguousarray(self._words.T) if self.layout.brute_force else None
        self._bucket_base = np.array(
            list(itertools.accumulate((2**w for w in self.layout.widths), initial=0))[:-1],
            dtype=np.int64,
        )

    @classmethod
    def from_hex(
        cls, hex_hashes: list[str], ids: ArrayLike, *, max_radius: int = DEFAULT_RADIUS
    ) -> PDQIndex:
        """Build from PDQ's 64-hex-digit text form."""
        return cls(hexes_to_array(hex_hashes), ids, max_radius=max_radius)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def unique_hashes(self) -> int:
        return len(self._words)

    @property
    def nbytes(self) -> int:
        """Bytes held by the index's arrays (what a hash costs, measured not modelled)."""
        arrays: list[NDArray[Any]] = [
            self._words,
            self._ids,
            self._positions,
            self._offsets,
            self._bucket_base,
        ]
        if self._id_offsets is not None:
            arrays.append(self._id_offsets)
        if self._columns is not None:
            arrays.append(self._columns)
        return sum(a.nbytes for a in arrays)

    def query(self, query: Hash, radius: int = DEFAULT_RADIUS) -> list[PDQMatch]:
        """Every stored (id, distance) within ``radius`` of ``query``, nearest first."""
        _, ids, dists = self.query_batch_arrays(_as_row(query), radius)
        return [PDQMatch(int(i), int(d)) for i, d in zip(ids, dists, strict=True)]

    def query_batch(self, queries: ArrayLike, radius: int = DEFAULT_RADIUS) -> list[list[PDQMatch]]:
        """:meth:`query` for each row of a ``(Q, 32)`` uint8 array."""
        matrix = _as_matrix(queries)
        qidx, ids, dists = self.query_batch_arrays(matrix, radius)
        bounds = np.searchsorted(qidx, np.arange(len(matrix) + 1))
        return [
            [PDQMatch(int(i), int(d)) for i, d in zip(ids[lo:hi], dists[lo:hi], strict=True)]
            for lo, hi in itertools.pairwise(bounds)
        ]

    def query_batch_arrays(
        self, queries: ArrayLike, radius: int = DEFAULT_RADIUS
    ) -> tuple[I64, I64, I64]:
        """Flat (query row, id, distance) arrays sorted by query, distance, id."""
        _check_radius(radius, self.max_radius)
        qwords = _to_words(_as_matrix(queries))
        if not len(qwords):
            return _concat_triples([])
        parts = [self._search_rows(qwords, lo, radius) for lo in self._row_batches(len(qwords))]
        qidx, rows, dists = _concat_triples(parts)
        qidx, ids, dists = self._expand_ids(qidx, rows, dists)
        order = np.lexsort((ids, dists, qidx))
        return qidx[order], ids[order], dists[order]

    def bucket_stats(self) -> BucketStats:
        """Occupancy of the chunk tables (empty for brute force)."""
        if self.layout.brute_force or not len(self._words):
            return BucketStats(0, 0, 0.0, 0.0)
        sizes = np.diff(self._offsets)
        nonempty = sizes[sizes > 0]
        heavy = int(sizes[sizes > 64].sum())
        return BucketStats(
            len(sizes), int(sizes.max()), float(nonempty.mean()), heavy / int(sizes.sum())
        )

    # -- search internals ---------------------------------------------------------------

    def _row_batches(self, n_queries: int) -> list[tuple[int, int]]:
        """Query rows searched together: enough to amortise numpy calls, bounded memory."""
        per_query = expected_candidates(self.layout.widths, len(self._words), self.max_radius)
        step = max(1, int(_BATCH_CANDIDATES // max(per_query, 1.0)))
        return [(lo, min(lo + step, n_queries)) for lo in range(0, n_queries, step)]

    def _search_rows(
        self, qwords: U64, bounds: tuple[int, int], radius: int
    ) -> tuple[I64, I64, I64]:
        lo, hi = bounds
        if self.layout.brute_force:
            qidx, rows, dists = self._brute_search(qwords[lo:hi], radius)
        else:
            qidx, rows, dists = self._table_search(qwords[lo:hi], radius)
        return qidx + lo, rows, dists

    def _brute_search(self, qwords: U64, radius: int) -> tuple[I64, I64, I64]:
        """Scan every hash, one contiguous word column at a time.

        numpy rather than faiss' flat index: faiss spins up OpenMP for every call, which
        costs milliseconds per query on a busy 2-core machine.
        """
        assert self._columns is not None  # set whenever the layout is brute force
        found: list[tuple[I64, I64, I64]] = []
        for q, query in enumerate(qwords):
            dists = np.zeros(len(self._words), dtype=np.uint16)
            for column, word in zip(self._columns, query, strict=True):
                dists += np.bitwise_count(column ^ word)
            rows = np.flatnonzero(dists <= radius).astype(np.int64)
            hits = dists[rows].astype(np.int64)
            found.append((np.full(len(rows), q, dtype=np.int64), rows, hits))
        return _concat_triples(found)

    def _table_search(self, qwords: U64, radius: int) -> tuple[I64, I64, I64]:
        qidx, rows = self._table_candidates(qwords, radius)
        dists = _distances(np.take(self._words, rows, axis=0), qwords[qidx])
        hit = dists <= radius
        qidx, rows, dists = qidx[hit], rows[hit], dists[hit]
        # A hash close in several chunks is listed once per chunk: keep one.
        _, first = np.unique(qidx * len(self._words) + rows, return_index=True)
        return qidx[first], rows[first], dists[first]

    def _table_candidates(self, qwords: U64, radius: int) -> tuple[I64, I64]:
        chunk_of, masks = _probe_plan(self.layout.widths, radius)
        keys = np.stack(
            [
                _chunk_values(qwords, s, w).astype(np.int64)
                for s, w in zip(self.layout.starts, self.layout.widths, strict=True)
            ],
            axis=1,
        )
        buckets = (keys[:, chunk_of] ^ masks) + self._bucket_base[chunk_of]
        starts = self._offsets[buckets].astype(np.int64)
        lengths = (self._offsets[buckets + 1] - starts).ravel()
        rows = self._positions[_concat_ranges(starts.ravel(), lengths)].astype(np.int64)
        per_query = lengths.reshape(len(qwords), -1).sum(axis=1)
        qidx = np.repeat(np.arange(len(qwords), dtype=np.int64), per_query)
        return qidx, rows

    def _expand_ids(self, qidx: I64, rows: I64, dists: I64) -> tuple[I64, I64, I64]:
        if self._id_offsets is None:
            return qidx, self._ids[rows], dists
        starts = self._id_offsets[rows]
        counts = self._id_offsets[rows + 1] - starts
        ids = self._ids[_concat_ranges(starts, counts)]
        return np.repeat(qidx, counts), ids, np.repeat(dists, counts)


@lru_cache(maxsize=64)
def _probe_plan(widths: tuple[int, ...], radius: int) -> tuple[I64, I64]:
    """For a query radius: which chunk each probe reads, and the XOR mask it applies."""
    chunk_of: list[I64] = []
    masks: list[I64] = []
    for c, (w, s) in enumerate(zip(widths, chunk_radii(widths, radius), strict=True)):
        if s < 0:
            continue
        chunk_masks = _flip_masks(w, s)
        masks.append(chunk_masks)
        chunk_of.append(np.full(len(chunk_masks), c, dtype=np.int64))
    return np.concatenate(chunk_of), np.concatenate(masks)


def _concat_triples(parts: list[tuple[I64, I64, I64]]) -> tuple[I64, I64, I64]:
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    qidx, rows, dists = (np.concatenate(p).astype(np.int64) for p in zip(*parts, strict=True))
    return qidx, rows, dists


def _check_radius(radius: int, limit: int) -> None:
    if not 0 <= radius <= limit:
        raise ValueError(f"radius must be between 0 and {limit}, got {radius}")
