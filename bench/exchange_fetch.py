"""Exchange fetch benchmark: memory stays flat as the number of entries grows.

An in-process exchange built on the library's own base class
(`SignalExchangeAPIWithSimpleUpdates`) yields N synthetic PDQ records in pages of
1,000 (as NCMEC, StopNCII and TAT page theirs), and `crawler.matching.exchanges.fetch` streams
them into a list. Each size runs in its own subprocess; prints records/s and the
peak resident memory of each, so 100k and 1M can be compared.

    python bench/exchange_fetch.py [--sizes 100000,1000000] [--db sqlite|URL]

With a PostgreSQL URL, give one size and an empty database.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, resource, sys, time
from dataclasses import dataclass
import typing as t

from threatexchange.exchanges import fetch_state as state
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPIWithSimpleUpdates

from crawler.matching import exchanges
from crawler.db.migrate import upgrade
from crawler.db.session import Database

TOTAL, URL = int(sys.argv[1]), sys.argv[2]
PAGE = 1000


@dataclass
class Checkpoint(state.FetchCheckpointBase):
    offset: int


class Paged(SignalExchangeAPIWithSimpleUpdates):
    @classmethod
    def for_collab(cls, collab):
        return cls()

    @staticmethod
    def get_config_cls():
        return CollaborationConfigWithDefaults

    @staticmethod
    def get_checkpoint_cls():
        return Checkpoint

    @staticmethod
    def get_record_cls():
        return state.FetchedSignalMetadata

    def fetch_iter(self, _types, checkpoint):
        start = checkpoint.offset if checkpoint else 0
        for offset in range(start, TOTAL, PAGE):
            updates = {
                ("pdq", f"{i * 2654435761 % (1 << 64):016x}" * 4): state.FetchedSignalMetadata()
                for i in range(offset, min(offset + PAGE, TOTAL))
            }
            yield state.FetchDelta(updates, Checkpoint(offset + PAGE))


real = exchanges._api_classes
exchanges._api_classes = lambda: {**real(), "bench": Paged}
db = Database(URL)
upgrade(db)
with db.session() as s:
    exchanges.add_exchange(s, exchanges.ExchangeSpec("bench", "bench", "bench-list"))
began = time.perf_counter()
stats = exchanges.fetch(db, "bench")
elapsed = time.perf_counter() - began
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"records": stats.records, "added": stats.added, "seconds": elapsed,
                  "peak_mb": peak_kb / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--db", default="sqlite")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db" if args.db == "sqlite" else args.db
            env = {**os.environ, "PYTHONPATH": os.getcwd()}
            began = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(size), url],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            figures = json.loads(out.strip().splitlines()[-1])
            print(
                f"{size:>9,} records: {figures['added']:,} entries in "
                f"{figures['seconds']:.1f} s ({size / figures['seconds']:,.0f} records/s), "
                f"peak RSS {figures['peak_mb']:.0f} MB "
                f"(process {time.perf_counter() - began:.1f} s)"
            )


if __name__ == "__main__":
    main()
