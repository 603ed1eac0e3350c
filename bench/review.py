"""Review app benchmark: 100,000 queue items, 20 concurrent clients, loopback only.

Measures p50/p95 of `GET /queue` and of `POST /queue/next` (the atomic claim; each client
rejects what it claimed, unmeasured, so the next claim takes a new item) on SQLite and on
a throwaway PostgreSQL database (127.0.0.1:5432, user root, trust auth). The app runs as
production runs it: `takedown review serve` (gunicorn, `--workers` processes with
`--threads` threads each, by default the command's: two processes per CPU, 4 threads);
the clients run in `--client-procs` other processes, so neither side's GIL skews the
other. Each engine is measured with 1 client and then with `--clients` in the same run,
with the load average, the CPU time of the server's processes (master and workers) per
request, the requests a second and how many of the machine's CPUs were busy (server,
clients and database together), so figures from a shared machine can be compared within
a run. `--think-ms` pauses after each measured pair and after each decision, as an analyst
would.

    python bench/review.py [--items 100000] [--clients 20] [--requests 25] [--engines sqlite,pg]
                           [--workers N] [--threads N] [--client-procs 2] [--think-ms 0]
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import create_engine, insert, text

# Run as a script, this file's folder comes first on sys.path and "review" would be this
# file, not the package; put the repository root there instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.accounts.users import add_user  # noqa: E402
from crawler.db.migrate import upgrade  # noqa: E402
from crawler.db.models import Host, Page, ReviewItem  # noqa: E402
from crawler.db.session import Database  # noqa: E402

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
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
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

    def round(self, timings: dict[str, list[float]], think_s: float) -> None:
        """Queue page and Next item (measured), then open and reject the claimed item."""
        t0 = time.perf_counter()
        status, _, _ = self.request("GET", "/queue")
        t1 = time.perf_counter()
        status2, location, _ = self.request("POST", "/queue/next", {"csrf_token": self.csrf})
        t2 = time.perf_counter()
        assert status == 200 and status2 == 302 and "/items/" in location, (status, status2)
        timings["queue"].append(t1 - t0)
        timings["next"].append(t2 - t1)
        time.sleep(think_s)
        item = location.rsplit("/", 1)[1]
        _, _, page = self.request("GET", f"/items/{item}")
        version = re.search(r'name="version" value="(\d+)"', page)
        assert version
        form = {"csrf_token": self.csrf, "version": version.group(1), "action": "reject"}
        self.request("POST", f"/items/{item}/decision", form)
        time.sleep(think_s)


def client_process(
    port: int, names: list[str], job: tuple[int, float], start: Any, results: Any
) -> None:
    """One client process: a thread per client, all released by `start` together."""
    requests, think_s = job
    clients = [Client(port, name) for name in names]
    timings: dict[str, list[float]] = {"queue": [], "next": []}
    results.put("ready")
    start.wait()

    def work(client: Client) -> None:
        for _ in range(requests):
            client.round(timings, think_s)  # list.append is atomic under the GIL

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(timings)


def run_clients(
    port: int, args: argparse.Namespace, clients: int, on_start: Callable[[], None]
) -> dict[str, list[float]]:
    """`clients` clients spread over `--client-procs` processes (not the server's).

    Logins (argon2id at production cost) happen before `on_start`, outside the figures.
    """
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = min(args.client_procs, clients)
    names = [f"bench{c}" for c in range(clients)]
    job = (args.requests, args.think_ms / 1000)
    workers = [
        ctx.Process(target=client_process, args=(port, names[i::procs], job, start, results))
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    for _ in workers:
        assert results.get(timeout=600) == "ready"
    on_start()
    start.set()
    merged: dict[str, list[float]] = {"queue": [], "next": []}
    for _ in workers:
        part = results.get(timeout=3600)
        for key in merged:
            merged[key].extend(part[key])
    for w in workers:
        w.join()
    return merged


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` and its live children (Linux /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that just ended
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, "server exited"
        assert time.monotonic() < deadline, "server did not start"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/login")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)


@contextmanager
def server_process(url: str, args: argparse.Namespace) -> Iterator[tuple[int, int]]:
    """(pid, port) of `takedown review serve` in its own processes."""
    port = free_port()
    cmd = [sys.executable, "-m", "crawler", "review", "serve", "--port", str(port)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "TAKEDOWN_DB": url, "TAKEDOWN_HOME": home}
        env["TAKEDOWN_SECRET_KEY"] = "bench-secret-key-0123456789"
        proc = subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parent.parent)
        try:
            wait_until_serving(proc, port)
            yield proc.pid, port
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (Linux /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def report(
    label: str, clients: int, timings: dict[str, list[float]], cpu: float, wall: float, busy: float
) -> None:
    rounds = len(timings["queue"])
    print(
        f"  {clients} client(s): server CPU {cpu / (rounds * 4) * 1000:.1f} ms per request; "
        f"{rounds * 4 / wall:.0f} requests/s; machine busy {busy / wall:.2f} of "
        f"{os.cpu_count()} CPUs"
    )
    for name, path in (("queue", "GET /queue"), ("next", "POST /queue/next")):
        values = timings[name]
        print(
            f"    {label:6} {path:18} n={len(values):4} p50={pct(values, 0.5):7.1f} ms "
            f"p95={pct(values, 0.95):7.1f} ms  mean={statistics.mean(values) * 1000:7.1f} ms"
        )


def bench(url: str, args: argparse.Namespace) -> None:
    db = Database(url)
    upgrade(db)
    t0 = time.perf_counter()
    seed(db, args.items, args.clients)
    print(f"  seeded {args.items} items in {time.perf_counter() - t0:.1f} s")
    if not db.is_sqlite:
        # What autovacuum does within a minute of such an insert: with the statistics of
        # an empty table PostgreSQL plans the capped counts as bitmap scans of every
        # pending row (6-16 ms a queue page), which no running installation sees for long.
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    db.dispose()
    with server_process(url, args) as (pid, port):
        for clients in (1, args.clients):
            load = os.getloadavg()[0]
            marks: list[tuple[float, float, float]] = []

            def started() -> None:
                marks.append((cpu_seconds(pid), time.perf_counter(), machine_busy()[0]))

            timings = run_clients(port, args, clients, started)
            cpu0, t0, busy0 = marks[0]
            wall, busy = time.perf_counter() - t0, machine_busy()[0] - busy0
            report(f"load{load:4.1f}", clients, timings, cpu_seconds(pid) - cpu0, wall, busy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25, help="rounds per client")
    parser.add_argument("--engines", default="sqlite,pg")
    parser.add_argument("--workers", type=int, help="app processes (default: serve's)")
    parser.add_argument("--threads", type=int, help="threads per app process (default: serve's)")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes")
    parser.add_argument("--think-ms", type=float, default=0, help="pause after each pair")
    args = parser.parse_args()
    from review.server import DEFAULT_THREADS, default_workers

    workers, threads = args.workers or default_workers(), args.threads or DEFAULT_THREADS
    print(
        f"{os.cpu_count()} CPUs; takedown review serve --workers {workers} "
        f"--threads {threads}; think={args.think_ms} ms"
    )
    for engine in args.engines.split(","):
        print(f"{engine}: {args.items} items, {args.clients} clients x {args.requests} rounds")
        with sqlite_database() if engine == "sqlite" else pg_database() as url:
            bench(url, args)


if __name__ == "__main__":
    main()
