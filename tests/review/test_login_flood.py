"""A bounded login flood against a child process at production argon2id cost (A-09).

argon2-cffi's 64 MiB per hash means 32 simultaneous logins would need 2 GiB; the app lets
`crawler.accounts.passwords.MAX_CONCURRENT` hashes run at once. The child's peak RSS (VmHWM) must
grow by no more than that many hashes' memory plus slack, and the flood must meet 429s
(progressive delay, not lockout). SQLite only: the bound is in the process, not the database.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest

from crawler.accounts.passwords import MAX_CONCURRENT
from crawler.accounts.users import add_user
from crawler.db.migrate import upgrade
from crawler.db.session import Database

HASH_MIB = 64  # memory_cost=65_536 KiB in crawler/accounts/passwords.py
FLOOD = 32  # requests at once, per wave
SLACK_MIB = 48  # allocator and thread-stack noise


@pytest.fixture
def flood_port(tmp_path: Path) -> Iterator[int]:
    url = f"sqlite:///{tmp_path / 'flood.db'}"
    db = Database(url)
    upgrade(db)
    with db.session() as s:
        add_user(s, "ana", "analyst", "a long and rare passphrase")
    db.dispose()
    port_file = tmp_path / "port"
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "tests.support.flood_server", url, str(port_file)]
    child = subprocess.Popen(cmd, cwd=root)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text()):
            assert child.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield int(port_file.read_text())
    finally:
        child.terminate()
        child.wait(timeout=30)


def _get(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    return conn.getresponse().read().decode()


def _login(port: int, n: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = urlencode({"username": ("ana", f"nobody{n}")[n % 2], "password": f"guess {n}"})
    conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    return conn.getresponse().status


def test_login_flood_keeps_rss_bounded_and_meets_429(flood_port: int) -> None:
    _login(flood_port, 0)  # one hash first: the baseline includes the allocator's warm-up
    baseline_kib = int(_get(flood_port, "/peak"))
    with ThreadPoolExecutor(FLOOD) as pool:
        statuses = list(pool.map(lambda n: _login(flood_port, n), range(1, 2 * FLOOD + 1)))
    growth_mib = (int(_get(flood_port, "/peak")) - baseline_kib) / 1024
    assert set(statuses) <= {401, 429} and 429 in statuses and 401 in statuses
    assert growth_mib <= MAX_CONCURRENT * HASH_MIB + SLACK_MIB, f"peak grew {growth_mib:.0f} MiB"
