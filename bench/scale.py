"""Scale-out benchmark: pages/s and images/s with 1 and 2 workers on the same site.

Serves the generated tree site of the scale-out tests (`tests/support/scalekit.py`: every
page links to `--branching` children down to `--depth`, and embeds one synthetic PNG made
in memory) on 127.0.0.2, starts a private `redis-server` on a free loopback port, and
runs `takedown crawl --workers N` for each N in `--workers` against a fresh SQLite
database. The rate is pages (and images) done over the run's own wall time in the
database (`crawl_runs.started_at` to `finished_at`: worker start-up included, as an
operator sees it). Prints one line per N and the scaling figure (rate at N / rate at 1).

    python bench/scale.py [--branching 6] [--depth 3] [--workers 1,2] [--per-host 8]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.support.scalekit import TreeSite, crawl_command, redis_server  # noqa: E402
from tests.support.sitekit import clean_env, migrated_sqlite  # noqa: E402


def run_figures(url: str) -> tuple[int, int, float]:
    engine = create_engine(url)
    with engine.connect() as conn:
        pages, media, started, finished = conn.execute(
            text("SELECT pages, media, started_at, finished_at FROM crawl_runs")
        ).one()
    engine.dispose()
    seconds = (_when(finished) - _when(started)).total_seconds()
    return int(pages), int(media), seconds


def _when(value: object) -> object:
    from datetime import datetime

    return datetime.fromisoformat(value) if isinstance(value, str) else value


def one_run(site: TreeSite, workers: int, concurrency: int, per_host: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(tmp)
        db_url = migrated_sqlite(folder)
        policy = folder / "policy.toml"
        policy.write_text(site.policy(per_host=per_host))
        with redis_server(folder) as server:
            env = {"TAKEDOWN_DB": db_url, "TAKEDOWN_HOME": str(folder / "home")}
            env["TAKEDOWN_REDIS_URL"] = server.url
            command = crawl_command(
                site,
                policy,
                site.web.url("site-a.test"),
                "--workers",
                str(workers),
                CONCURRENT_REQUESTS=concurrency,
                TAKEDOWN_PROGRESS="off",
                LOG_LEVEL="WARNING",
            )
            started = time.monotonic()
            result = subprocess.run(
                command, env=clean_env(env), capture_output=True, text=True, timeout=1800
            )
            wall = time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(f"crawl with {workers} workers failed:\n{result.stderr[-3000:]}")
        pages, media, seconds = run_figures(db_url)
    return {
        "workers": workers,
        "pages": pages,
        "images": media,
        "seconds": seconds,
        "wall": wall,
        "pages/s": pages / seconds,
        "images/s": media / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--branching", type=int, default=6)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.02, help="server seconds per request")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="CONCURRENT_REQUESTS per worker"
    )
    parser.add_argument("--per-host", type=int, default=8, help="politeness.per_host_concurrency")
    args = parser.parse_args()
    site = TreeSite(args.branching, args.depth, args.latency).start()
    try:
        rows = [
            one_run(site, int(n), args.concurrency, args.per_host) for n in args.workers.split(",")
        ]
    finally:
        site.stop()
    print(
        f"site: {len(site.page_urls())} pages, {len(site.image_paths())} images, "
        f"{args.latency * 1000:.0f} ms per request, per-host limit {args.per_host}"
    )
    for row in rows:
        print(
            f"workers={row['workers']:.0f}: {row['pages']:.0f} pages, {row['images']:.0f} images "
            f"in {row['seconds']:.1f} s (process wall {row['wall']:.1f} s): "
            f"{row['pages/s']:.1f} pages/s, {row['images/s']:.1f} images/s"
        )
    base = rows[0]
    for row in rows[1:]:
        print(
            f"scaling {row['workers']:.0f} vs {base['workers']:.0f} workers: "
            f"x{row['pages/s'] / base['pages/s']:.2f} pages/s, "
            f"x{row['images/s'] / base['images/s']:.2f} images/s"
        )


if __name__ == "__main__":
    main()
