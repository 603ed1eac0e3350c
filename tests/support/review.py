"""Review-app fixtures and helpers: an app on this test's database, users, seeded review items,
a loopback media server. tests/review/conftest.py re-exports the fixtures."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crawler.accounts.users import add_user
from crawler.db.models import HashEntry, HashList, Host, Match, Media, Observation, Page, ReviewItem
from crawler.db.session import Database
from review.app import create_app
from tests.support.http_server import serve_routes, stop
from tests.support.rows import added

PASSWORD = "correct horse battery"
SECRET = "test-secret-key-0123456789abcdef"
_counter = itertools.count(1)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
def users(db: Database) -> dict[str, int]:
    return add_review_users(db)


def add_review_users(db: Database) -> dict[str, int]:
    """Two analysts, two leads and an admin, all with PASSWORD; name -> user id."""
    out = {}
    with db.session() as s:
        for name, role in (
            ("ana", "analyst"),
            ("bob", "analyst"),
            ("lee", "lead"),
            ("ada", "admin"),
            ("lou", "lead"),
        ):
            out[name] = add_user(s, name, role, PASSWORD).id
    return out


def make_app(db_url: str, **overrides: Any) -> Flask:
    config = {"db_url": db_url, "secret_key": SECRET, **overrides}
    return create_app(test_config=config)


@pytest.fixture
def app(db_url: str, users: dict[str, int], clock: Clock) -> Iterator[Flask]:
    application = make_app(db_url, clock=clock)
    yield application
    application.extensions["review_db"].dispose()


def seed_item(
    db: Database,
    *,
    priority: int = 0,
    title: str = "A page",
    url: str | None = None,
    host: str = "example.net",
    country: str = "NL",
    media: list[dict[str, Any]] | None = None,
    status: str = "pending",
) -> int:
    """One page with its host, media, matches and a review item; returns the item id."""
    n = next(_counter)
    url = url or f"http://{host}/page-{n}"
    with db.session() as s:
        from sqlalchemy import select

        h = s.execute(select(Host).where(Host.host == host, Host.country == country)).scalar()
        if h is None:
            h = added(
                s,
                Host(
                    host=host,
                    ip=f"203.0.113.{n % 250}",
                    country=country,
                    asn=64500,
                    as_org="Example Hosting",
                    abuse_contact="abuse@example.net",
                ),
            )
        page = Page(url=url, canonical_url=f"{url}#{n}", title=title, host_id=h.id, status_code=200)
        added(s, page)
        for spec in media or []:
            _add_media(s, page.id, spec)
        return added(s, ReviewItem(page_id=page.id, priority=priority, status=status)).id


def _list(s: Any, name: str, kind: str) -> HashList:
    from sqlalchemy import select

    found = s.execute(select(HashList).where(HashList.name == name)).scalar()
    if found is None:
        found = added(s, HashList(name=name, kind=kind))
    return found


def _add_media(s: Any, page_id: int, spec: dict[str, Any]) -> None:
    from sqlalchemy import select

    sha = spec.get("sha256") or f"{next(_counter):064x}"
    media = s.execute(select(Media).where(Media.sha256 == sha)).scalar()
    if media is None:
        media = Media(
            sha256=sha,
            # Distinct per media: a media decision spreads by every hash (md5 included).
            sha1=hashlib.sha1(sha.encode()).hexdigest(),
            md5=hashlib.md5(sha.encode()).hexdigest(),
            pdq=spec.get("pdq") or hashlib.sha256(sha.encode()).hexdigest(),
            pdq_quality=90,
            bytes=1000,
            width=64,
            height=64,
            media_type=spec.get("type", "image"),
            format="PNG",
        )
        added(s, media)
    added(
        s, Observation(page_id=page_id, media_id=media.id, media_url=spec["url"], status="hashed")
    )
    match = spec.get("match")  # e.g. ("known-a", "known", "pdq", 12)
    if match:
        lst = _list(s, match[0], match[1])
        entry = s.execute(
            select(HashEntry).where(HashEntry.list_id == lst.id, HashEntry.hash == sha)
        ).scalar()
        if entry is None:
            entry = HashEntry(
                list_id=lst.id,
                hash_type=match[2] if match[2] != "pdq" else "pdq",
                hash=sha,
                category="A",
                reference="r-1",
            )
            added(s, entry)
        added(
            s,
            Match(
                media_id=media.id,
                list_id=lst.id,
                entry_id=entry.id,
                match_type=match[2],
                distance=match[3],
            ),
        )


_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> str:
    """Sign in; returns the session's CSRF token."""
    resp = client.post("/login", data={"username": username, "password": password})
    assert resp.status_code == 302, resp.data[:300]
    page = client.get("/queue")
    match = _CSRF.search(page.get_data(as_text=True))
    assert match
    return match.group(1)


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at test cost: the production cost (64 MiB) is checked by crawler's tests."""
    from argon2 import PasswordHasher

    import crawler.accounts.passwords as pw

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(pw, "_hasher", cheap)
    monkeypatch.setattr(pw, "_DUMMY", cheap.hash("dummy password for timing only"))


# --- a loopback media server for previews (127.0.0.2, never a public address) ---------


@dataclass
class MediaServer:
    base: str
    routes: dict[str, tuple[int, str, bytes]]
    hits: list[str]


@pytest.fixture
def media_server() -> Iterator[MediaServer]:
    routes: dict[str, tuple[int, str, bytes]] = {}
    hits: list[str] = []
    server, base = serve_routes(routes, "127.0.0.2", hits)
    yield MediaServer(base, routes, hits)
    stop(server)


def loopback_preview_config() -> Any:
    from crawler.net.addresses import AddressPolicy
    from review.config import PreviewConfig

    return PreviewConfig(
        address_policy=AddressPolicy(allowed_networks=("127.0.0.2/32",)), timeout_s=5
    )


# --- `takedown review serve` (gunicorn) in a child process ---------------------------------


@contextmanager
def review_serve(db_url: str, home: Path, secret: str, workers: int) -> Iterator[Any]:
    """`takedown review serve --workers N` on a free port of 127.0.0.1, once it answers
    GET /login with 200; yields the server process and its port; stopped on exit."""
    import http.client
    import os
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "TAKEDOWN_DB": db_url, "TAKEDOWN_HOME": str(home)}
    env["TAKEDOWN_SECRET_KEY"] = secret
    cmd = [sys.executable, "-m", "crawler", "review", "serve", "--port", str(port)]
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen([*cmd, "--workers", str(workers)], env=env, cwd=root)
    try:
        deadline, status = time.monotonic() + 60, 0
        while status != 200:
            assert server.poll() is None and time.monotonic() < deadline, "server did not start"
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/login")
                answer = conn.getresponse()
                answer.read()
                status = answer.status
                conn.close()
            except OSError:
                time.sleep(0.2)
        yield server, port
    finally:
        server.terminate()
        server.wait(timeout=60)
