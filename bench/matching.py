"""Benchmark exact PDQ range search: the project's PDQIndex against faiss and threatexchange.

Prints one table row per (size, data, index): build time, memory per hash, median and p99
query time, and recall of planted near-duplicates (each query is a stored hash with 0-31
bits flipped, so its source must come back). Everything runs on one thread.

    python bench/matching.py                       # 1M and 10M, everything (slow: ~30 min)
    python bench/matching.py --sizes 1M --queries 200 --skip-threatexchange   # quick look

Memory: "struct" counts the index's own arrays (PDQIndex.nbytes; 32 B a hash for faiss'
flat codes); "rss" is the process RSS growth while building, after the input is made,
which is the only fair figure for threatexchange's Python-object index.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from crawler.media.pdq_index import PDQIndex, array_to_hexes

RADIUS = 31
ROW = "{:>5} {:>9} {:>22} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7}"


@dataclass
class Result:
    size: str
    data: str
    name: str
    build_s: float
    struct_bph: float | None
    rss_bph: float
    median_ms: float
    p99_ms: float
    recall: float
    queries: int

    def row(self) -> str:
        struct = f"{self.struct_bph:.1f}" if self.struct_bph is not None else "-"
        return ROW.format(
            self.size,
            self.data,
            self.name,
            f"{self.build_s:.1f}",
            struct,
            f"{self.rss_bph:.0f}",
            f"{self.median_ms:.3f}",
            f"{self.p99_ms:.3f}",
            f"{100 * self.recall:.1f}%",
            self.queries,
        )


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def parse_size(text: str) -> int:
    scale = {"K": 1_000, "M": 1_000_000}.get(text[-1].upper(), 1)
    return int(float(text.rstrip("KkMm")) * scale)


def flip_bits(rng: np.random.Generator, rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Flip exactly counts[i] distinct bits of row i."""
    order = np.argsort(rng.random((len(rows), 256), dtype=np.float32), axis=1)
    mask = np.zeros((len(rows), 256), dtype=bool)
    picks = np.arange(256)[None, :] < counts[:, None]
    np.put_along_axis(mask, order, picks, axis=1)
    return rows ^ np.packbits(mask, axis=1)


def make_hashes(rng: np.random.Generator, n: int, data: str) -> np.ndarray:
    """Uniform random hashes, or families of near-variants (as real lists are)."""
    if data == "uniform":
        return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    # Clustered: families of ~50 variants 0-20 bits from a root, plus 5% exact copies.
    roots = rng.integers(0, 256, size=(max(1, n // 50), 32), dtype=np.uint8)
    out = np.empty((n, 32), dtype=np.uint8)
    step = 250_000
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        base = roots[rng.integers(0, len(roots), size=hi - lo)]
        out[lo:hi] = flip_bits(rng, base, rng.integers(0, 21, size=hi - lo))
    copies = n // 20
    out[:copies] = out[rng.integers(copies, n, size=copies)]
    return out


def make_queries(
    rng: np.random.Generator, hashes: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Planted near-duplicates: stored rows with 0..31 bits flipped, and their row ids."""
    sources = rng.integers(0, len(hashes), size=count)
    distances = np.arange(count) % (RADIUS + 1)
    return flip_bits(rng, hashes[sources], distances), sources


def time_queries(
    search: Callable[[np.ndarray], Sequence[int]], queries: np.ndarray, sources: np.ndarray
) -> tuple[list[float], float]:
    times, found = [], 0
    for query, source in zip(queries, sources):
        start = time.perf_counter()
        ids = search(query)
        times.append(time.perf_counter() - start)
        found += int(source) in set(ids)
    return times, found / max(len(queries), 1)


def measure(
    label: tuple[str, str, str],
    build: Callable[[], tuple[object, float | None]],
    search_factory: Callable[[object], Callable[[np.ndarray], Sequence[int]]],
    queries: np.ndarray,
    sources: np.ndarray,
    n: int,
) -> Result:
    gc.collect()
    rss0 = rss_bytes()
    start = time.perf_counter()
    index, struct_bytes = build()
    build_s = time.perf_counter() - start
    gc.collect()
    rss_bph = (rss_bytes() - rss0) / n
    times, recall = time_queries(search_factory(index), queries, sources)
    del index
    gc.collect()
    ms = sorted(1000 * t for t in times)
    return Result(
        *label,
        build_s,
        struct_bytes / n if struct_bytes is not None else None,
        rss_bph,
        statistics.median(ms),
        ms[min(len(ms) - 1, int(0.99 * len(ms)))],
        recall,
        len(ms),
    )


def bench_project(hashes: np.ndarray, ids: np.ndarray) -> tuple[object, float | None]:
    index = PDQIndex(hashes, ids)
    print(f"  project layout: {index.layout.describe()}, {index.bucket_stats()}", flush=True)
    return index, float(index.nbytes)


def bench_faiss(hashes: np.ndarray) -> tuple[object, float | None]:
    index = faiss.IndexBinaryFlat(256)
    index.add(hashes)
    return index, float(index.ntotal * 32)


def faiss_search(index: object) -> Callable[[np.ndarray], Sequence[int]]:
    def search(query: np.ndarray) -> Sequence[int]:
        _, _, rows = index.range_search(query.reshape(1, 32), RADIUS + 1)  # type: ignore[attr-defined]
        return rows.tolist()

    return search


def bench_threatexchange(hashes: np.ndarray) -> tuple[object, float | None]:
    from threatexchange.signal_type.pdq.pdq_index import PDQIndex as TXPDQIndex

    hexes = array_to_hexes(hashes)
    return TXPDQIndex(zip(hexes, range(len(hexes)), strict=True)), None


def tx_search(index: object) -> Callable[[np.ndarray], Sequence[int]]:
    def search(query: np.ndarray) -> Sequence[int]:
        return [m.metadata for m in index.query(bytes(query).hex())]  # type: ignore[attr-defined]

    return search


def check_exact(index: PDQIndex, hashes: np.ndarray, queries: np.ndarray) -> bool:
    """The project's answers must equal faiss flat's (a full scan) for every query."""
    flat = faiss.IndexBinaryFlat(256)
    flat.add(hashes)
    lims, dists, rows = flat.range_search(queries, RADIUS + 1)
    for q, query in enumerate(queries):
        expected = sorted(
            zip(rows[lims[q] : lims[q + 1]].tolist(), dists[lims[q] : lims[q + 1]].tolist())
        )
        if sorted(index.query(query)) != expected:
            return False
    return True


def run_size(args: argparse.Namespace, size: str, data: str) -> list[Result]:
    n = parse_size(size)
    rng = np.random.default_rng(args.seed)
    print(f"# {size} {data}: generating", flush=True)
    hashes = make_hashes(rng, n, data)
    ids = np.arange(n, dtype=np.int64)
    queries, sources = make_queries(rng, hashes, args.queries)
    few = max(1, min(args.queries, args.baseline_queries))
    results = [
        measure(
            (size, data, "project PDQIndex"),
            lambda: bench_project(hashes, ids),
            lambda idx: lambda q: [m.id for m in idx.query(q)],  # type: ignore[attr-defined]
            queries,
            sources,
            n,
        )
    ]
    print(results[-1].row(), flush=True)
    if args.check_exact:
        exact = check_exact(PDQIndex(hashes, ids), hashes, queries[:few])
        print(f"  project == faiss flat on {few} queries: {exact}", flush=True)
    if not args.skip_faiss:
        label = (size, data, "faiss IndexBinaryFlat")
        results.append(
            measure(
                label, lambda: bench_faiss(hashes), faiss_search, queries[:few], sources[:few], n
            )
        )
        print(results[-1].row(), flush=True)
    if not args.skip_threatexchange and data in args.threatexchange_data.split(","):
        label = (size, data, "threatexchange PDQIndex")
        try:
            results.append(
                measure(
                    label,
                    lambda: bench_threatexchange(hashes),
                    tx_search,
                    queries[:few],
                    sources[:few],
                    n,
                )
            )
            print(results[-1].row(), flush=True)
        except ImportError as exc:
            print(f"  threatexchange not installed ({exc}): pip install threatexchange==1.2.17")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated, e.g. 100K,1M,10M")
    parser.add_argument("--data", default="uniform,clustered")
    parser.add_argument("--queries", type=int, default=1000, help="queries for the project index")
    parser.add_argument(
        "--baseline-queries",
        type=int,
        default=1000,
        help="queries for faiss and threatexchange (they are slow)",
    )
    parser.add_argument("--skip-threatexchange", action="store_true")
    parser.add_argument("--skip-faiss", action="store_true")
    parser.add_argument(
        "--threatexchange-data",
        default="uniform,clustered",
        help="data sets threatexchange runs on",
    )
    parser.add_argument(
        "--check-exact", action="store_true", help="compare every answer with faiss flat"
    )
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)  # one thread for everyone: queries are timed one by one
    print(f"radius {RADIUS}, one thread, numpy {np.__version__}, faiss {faiss.__version__}")
    header = ROW.format(
        "size",
        "data",
        "index",
        "build s",
        "B/hash",
        "rss B/h",
        "median ms",
        "p99 ms",
        "recall",
        "queries",
    )
    print(header, flush=True)
    results: list[Result] = []
    for size in args.sizes.split(","):
        for data in args.data.split(","):
            results.extend(run_size(args, size, data))
    print("\n" + header)
    for result in results:
        print(result.row())


if __name__ == "__main__":
    main()
