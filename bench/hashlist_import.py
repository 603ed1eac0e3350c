"""Import 1,000,000 generated hash-list rows on SQLite and PostgreSQL; print rows/s.

    python bench/hashlist_import.py [--rows 1000000] [--engines sqlite,pg]

Rows are random hex of every type (25% each). The file is parsed and validated whole
first (as the CLI does), then imported in one transaction; both phases are timed, and a
second import of the same file (which must change nothing) is timed too.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from crawler.db.migrate import upgrade
from crawler.db.session import Database
from crawler.media import hashlists

PG_ADMIN = os.environ.get("TAKEDOWN_TEST_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


def make_file(path: Path, rows: int) -> None:
    kinds = [("md5", 16), ("sha1", 20), ("sha256", 32), ("pdq", 32)]
    with path.open("w") as handle:
        handle.write("type,hash,category,reference\n")
        for i in range(rows):
            kind, size = kinds[i % 4]
            handle.write(f"{kind},{os.urandom(size).hex()},{'ABC'[i % 3]},r{i}\n")


def timed_import(url: str, path: Path) -> tuple[float, float, float]:
    db = Database(url)
    upgrade(db)
    t0 = time.perf_counter()
    rows, _digest = hashlists.read_file(path)
    t1 = time.perf_counter()
    with db.session() as session:
        hashlists.import_rows(session, "bench", rows)
    t2 = time.perf_counter()
    with db.session() as session:
        again = hashlists.import_rows(session, "bench", rows)
    t3 = time.perf_counter()
    assert again.added == 0 and again.updated == 0
    db.dispose()
    return t1 - t0, t2 - t1, t3 - t2


def pg_database() -> tuple[str, str]:
    name = f"td_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_pg(name: str) -> None:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,pg")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "list.csv"
        make_file(path, args.rows)
        print(f"{args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB")
        print(
            f"{'engine':8} {'parse s':>8} {'import s':>9} {'total s':>8} {'rows/s':>9} {'re-import s':>12}"
        )
        for engine in args.engines.split(","):
            name = None
            if engine == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            else:
                name, url = pg_database()
            try:
                parse, load, again = timed_import(url, path)
            finally:
                if name:
                    drop_pg(name)
            total = parse + load
            print(
                f"{engine:8} {parse:8.1f} {load:9.1f} {total:8.1f} {args.rows / total:9,.0f} {again:12.1f}"
            )


if __name__ == "__main__":
    main()
