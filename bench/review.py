"""Review app benchmark: 100,000 queue items, 20 concurrent clients, loopback only.

Measures p50/p95 of `GET /queue` and of `POST /queue/next` (the atomic claim; each client
rejects what it claimed, unmeasured, so the next claim takes a new item) on SQLite and on
a throwaway PostgreSQL database (127.0.0.1:5432, user root, trust auth), served by
waitress in this process.

    python bench/review.py [--items 100000] [--clients 20] [--requests 25] [--engines sqlite,pg]
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import create_engine, insert, text

# Run as a script, this file's folder comes first on sys.path and "review" would be this
# file, not the package; put the repository root there instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.db.migrate import upgrade  # noqa: E402
from crawler.db.models import Host, Page, ReviewItem  # noqa: E402
from crawler.db.session import Database  # noqa: E402
from crawler.users import add_user  # noqa: E402

PASSWORD = "bench password 123"
PG_ADMIN = "postgresql+psycopg://root@127.0.0.1:5432/postgres"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def seed(db: Database, items: int, clients: int) -> None:
    with db.session() as s:
        s.execute(
            insert(Host),
            [
                {
                    "host": f"h{i}.example",
                    "ip": f"203.0.113.{i % 250}",
                    "country": ("NL", "DE", "US")[i % 3],
                }
                for i in range(300)
            ],
        )
        for start in range(0, items, 20_000):
            chunk = range(start, min(start + 20_000, items))
            s.execute(
                insert(Page),
                [
                    {
                        "url": f"http://h{i % 300}.example/p{i}",
                        "canonical_url": f"http://h{i % 300}.example/p{i}",
                        "title": f"page {i}",
                        "host_id": i % 300 + 1,
                    }
                    for i in chunk
                ],
            )
            s.execute(
                insert(ReviewItem),
                [
                    {"page_id": i + 1, "priority": (i * 7919) % 1000, "status": "pending"}
                    for i in chunk
                ],
            )
        for c in range(clients):
            add_user(s, f"bench{c}", "analyst", PASSWORD)


class Client:
    def __init__(self, port: int, name: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""
        self.csrf = ""
        self.login(name)

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, str, str]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        cookie = resp.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return resp.status, resp.getheader("Location") or "", data

    def login(self, name: str) -> None:
        self.request("POST", "/login", {"username": name, "password": PASSWORD})
        _, _, page = self.request("GET", "/queue")
        match = CSRF.search(page)
        assert match, "login failed"
        self.csrf = match.group(1)


def run_clients(port: int, clients: int, requests: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"queue": [], "next": []}
    lock = threading.Lock()
    sessions = [Client(port, f"bench{c}") for c in range(clients)]
    barrier = threading.Barrier(clients)

    def work(client: Client) -> None:
        barrier.wait()
        for _ in range(requests):
            t0 = time.perf_counter()
            status, _, _ = client.request("GET", "/queue")
            t1 = time.perf_counter()
            status2, location, _ = client.request(
                "POST", "/queue/next", {"csrf_token": client.csrf}
            )
            t2 = time.perf_counter()
            assert status == 200 and status2 == 302 and "/items/" in location
            with lock:
                timings["queue"].append(t1 - t0)
                timings["next"].append(t2 - t1)
            item = location.rsplit("/", 1)[1]
            _, _, page = client.request("GET", f"/items/{item}")
            version = re.search(r'name="version" value="(\d+)"', page)
            assert version
            form = {"csrf_token": client.csrf, "version": version.group(1), "action": "reject"}
            client.request("POST", f"/items/{item}/decision", form)

    threads = [threading.Thread(target=work, args=(c,)) for c in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return timings


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@contextmanager
def pg_database() -> Iterator[str]:
    name = f"td_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://root@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/bench.db"


def bench(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    import waitress.server

    from review.app import create_app

    db = Database(url)
    upgrade(db)
    t0 = time.perf_counter()
    seed(db, args.items, args.clients)
    print(f"  seeded {args.items} items in {time.perf_counter() - t0:.1f} s")
    db.dispose()
    app = create_app(test_config={"db_url": url, "secret_key": "bench-secret-key-0123456789"})
    server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=args.clients)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        return run_clients(server.effective_port, args.clients, args.requests)  # type: ignore[union-attr]
    finally:
        server.task_dispatcher.shutdown()  # type: ignore[union-attr]
        server.close()
        app.extensions["review_db"].dispose()


def main() -> None:
    import logging

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" noise
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25, help="per client and endpoint")
    parser.add_argument("--engines", default="sqlite,pg")
    args = parser.parse_args()
    for engine in args.engines.split(","):
        print(f"{engine}: {args.items} items, {args.clients} clients x {args.requests} requests")
        with sqlite_database() if engine == "sqlite" else pg_database() as url:
            timings = bench(url, args)
        for name, label in (("queue", "GET /queue"), ("next", "POST /queue/next")):
            values = timings[name]
            print(
                f"  {label:18} n={len(values):4} p50={pct(values, 0.5):7.1f} ms "
                f"p95={pct(values, 0.95):7.1f} ms  mean={statistics.mean(values) * 1000:7.1f} ms"
            )


if __name__ == "__main__":
    main()
