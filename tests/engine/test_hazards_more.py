"""The docs/hazards.md rows test_hazards.py left untested: H-01 (deflate, br, zstd and stacked
bombs), H-03 (header flood), H-04 (broken HTTP), H-07 (self-signed TLS), H-10 (deep
nesting), R-03 (robots.txt redirects, one hop to the canary), `media.types`; plus R-06's
24-hour rules cache on a fake clock and S-02 (SIGINT/SIGTERM, then `--resume`)."""

from __future__ import annotations

import datetime
import json
import signal
import ssl
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import brotli
import pytest
from backports import zstd

from tests.support.sitekit import (
    Host,
    Web,
    done_pages,
    make_handler,
    migrated_env,
    policy_text,
    query,
    run_crawl,
    start_crawl,
)
from tests.support.sitekit import tree_web as sitekit_tree_web

BOMB_SIZE = 40 * 1024 * 1024  # four times the 10 MiB page cap
RSS_BOUND_KB = 700 * 1024


def _bomb_bodies() -> dict[str, tuple[str, bytes]]:
    data = b"<html>" + b" " * BOMB_SIZE
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    gzipped = gz.compress(data) + gz.flush()
    return {
        "/bomb-deflate": ("deflate", zlib.compress(data, 9)),
        "/bomb-br": ("br", brotli.compress(data, quality=1)),
        "/bomb-zstd": ("zstd", zstd.compress(data)),
        "/bomb-stacked": ("gzip, br", brotli.compress(gzipped, quality=1)),
    }


def _raw(payload: bytes) -> Any:
    """A route that writes *payload* as the whole response, status line included."""

    def handler(h: BaseHTTPRequestHandler) -> None:
        try:
            h.wfile.write(payload)
            h.wfile.flush()
        except OSError:
            pass
        h.close_connection = True

    return handler


BROKEN = {
    "/broken-status": b"HTTP/1.1 two-hundred OK\r\nContent-Length: 5\r\n\r\nhello",
    "/broken-http09": b"<html><body>no status line at all</body></html>",
    "/broken-nocolon": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nNoColonHere\r\n\r\nhello",
    "/broken-lengths": (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n"
        b"Content-Length: 50\r\n\r\nhello"
    ),
    "/broken-nul": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: a\x00b\r\n\r\nhello",
}
FLOOD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
    + b"".join(b"X-Flood-%d: %s\r\n" % (i, b"v" * 1000) for i in range(20_000))
    + b"Content-Length: 2\r\n\r\nhi"
)


def _links(*hrefs: str) -> str:
    return "".join(f'<a href="{h}">l</a>' for h in hrefs)


def build_web() -> Web:
    web = Web(["site-a.test", "robots-404.test"])
    web.hosts["robots-redirect.test"] = Host("robots-redirect.test", "127.0.0.13")
    web.hosts["robots-chain.test"] = Host("robots-chain.test", "127.0.0.14")
    a, p = web["site-a.test"], web.port
    bombs = _bomb_bodies()
    a.add("/robots.txt", "User-agent: *\n", content_type="text/plain")
    a.page("/", _links(*bombs, *BROKEN, "/flood", "/deep", "/videos", "/after"))
    for path, (encoding, body) in bombs.items():
        a.add(path, body, **{"Content-Encoding": encoding})
    for path, payload in BROKEN.items():
        a.routes[path] = _raw(payload)
    a.routes["/flood"] = _raw(FLOOD)
    a.add("/deep", "<html><body>" + "<div>" * 100_000 + '<a href="/hidden">h</a>')
    a.page(
        "/videos",
        '<video src="/v/clip.mp4" poster="/v/poster.png"><source src="/v/stream"></video>'
        '<a href="/v/linked.webm">v</a><meta property="og:video" content="/v/og">'
        '<img src="/v/still.png">',
    )
    a.page("/after", "the crawl went on")
    red = web["robots-redirect.test"]
    red.add("/robots.txt", b"", 302, Location="/robots-hop")
    red.add("/robots-hop", b"", 302, Location=f"http://127.0.0.1:{p}/robots.txt")
    red.page("/", _links("/p"))
    red.page("/p", "allowed: robots.txt unavailable")
    chain = web["robots-chain.test"]
    chain.fallback = lambda path: (
        (302, {"Location": f"/r/{int(path[3:]) + 1}"}, b"") if path.startswith("/r/") else None
    )
    chain.add("/robots.txt", b"", 302, Location="/r/1")
    chain.page("/", _links("/p"))
    chain.page("/p", "allowed: robots.txt unavailable after too many hops")
    return web


def start_tls(web: Web, tmp: Path) -> Host:
    """An HTTPS host on 127.0.0.15 with a throwaway self-signed certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tls-self.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "tls.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    host = Host("tls-self.test", "127.0.0.15")
    host.add("/robots.txt", "User-agent: *\n", content_type="text/plain")
    host.page("/", _links("/found-over-tls"))
    host.page("/found-over-tls", "followed")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "tls.pem")
    server = ThreadingHTTPServer((host.ip, web.port), make_handler(web, host))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    web.hosts[host.name] = host
    web.servers.append(server)
    return host


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hazards-more")
    url, env = migrated_env(tmp)
    web = build_web().start()
    start_tls(web, tmp)
    policy = policy_text(
        web, scope={"max_depth": 3}, media={"types": ["image"]}, politeness={"timeout_s": 5}
    )
    seeds = [web.url(n, "/") for n in ("site-a.test", "robots-redirect.test", "robots-chain.test")]
    seeds.append(f"https://tls-self.test:{web.port}/")
    result = run_crawl(env, tmp, web, *seeds, policy=policy, timeout=240)
    run = query(url, "SELECT stats, status FROM crawl_runs")
    assert run, result.stderr[-3000:]
    pages = {
        r[0].split(str(web.port), 1)[1]: r
        for r in query(url, "SELECT url, status_code, error, parse_incomplete FROM pages")
    }
    yield {
        "result": result,
        "web": web,
        "stats": json.loads(run[0][0]) if isinstance(run[0][0], str) else run[0][0],
        "status": run[0][1],
        "pages": pages,
        "tls": query(url, "SELECT url, status_code, tls_verified FROM pages"),
    }
    web.stop()


def test_crawl_went_on(crawled: dict[str, Any]) -> None:
    assert crawled["result"].returncode == 0, crawled["result"].stderr[-3000:]
    assert crawled["status"] == "finished"
    assert crawled["pages"]["/after"][1] == 200
    assert crawled["web"].canary_hits == 0


def test_h01_bombs_per_encoding_aborted_memory_bounded(crawled: dict[str, Any]) -> None:
    for path in ("/bomb-deflate", "/bomb-br", "/bomb-zstd", "/bomb-stacked"):
        page = crawled["pages"][path]
        assert page[1] is None and "decompress" in (page[2] or ""), page
    assert crawled["stats"]["memusage/max"] < RSS_BOUND_KB * 1024


def test_h03_header_flood_is_a_per_url_error(crawled: dict[str, Any]) -> None:
    page = crawled["pages"]["/flood"]
    assert page[1] is None and page[2], page
    assert crawled["stats"]["memusage/max"] < RSS_BOUND_KB * 1024


@pytest.mark.parametrize("path", sorted(set(BROKEN) - {"/broken-nocolon"}))
def test_h04_broken_http_is_a_per_url_error(crawled: dict[str, Any], path: str) -> None:
    page = crawled["pages"][path]
    assert page[1] is None and page[2], page


def test_h04_header_line_without_colon_skipped_as_browsers_do(crawled: dict[str, Any]) -> None:
    """Scrapy 2.19's lenient parser drops the bad line and keeps the rest (scrapy#210)."""
    assert crawled["pages"]["/broken-nocolon"][1] == 200


def test_h07_self_signed_tls_fetched_for_discovery(crawled: dict[str, Any]) -> None:
    assert "/found-over-tls" in crawled["web"].paths("tls-self.test")
    # Scrapy does not verify certificates: the page is fetched, and stored as unverified.
    rows = crawled["tls"]
    tls = {r[0].split(str(crawled["web"].port), 1)[1]: r for r in rows if r[0].startswith("https:")}
    assert tls.keys() == {"/", "/found-over-tls"}, rows
    assert all(r[1] == 200 and r[2] in (False, 0) for r in tls.values()), tls
    # Plain HTTP pages have no certificate: None, not False.
    assert all(r[2] is None for r in rows if r[0].startswith("http:") and r[1] is not None)


def test_h10_deep_nesting_flagged_parse_incomplete(crawled: dict[str, Any]) -> None:
    assert crawled["pages"]["/deep"][3]
    assert crawled["stats"]["pages/parse-incomplete"] >= 1


def test_r03_robots_redirect_to_canary_is_unavailable(crawled: dict[str, Any]) -> None:
    web = crawled["web"]
    assert web.paths("robots-redirect.test") == ["/robots.txt", "/robots-hop", "/", "/p"]
    chain = web.paths("robots-chain.test")
    assert len([p for p in chain if p == "/robots.txt" or p.startswith("/r")]) <= 6
    assert "/p" in chain
    assert crawled["stats"]["robots/unavailable"] >= 2


def test_media_types_image_only_never_fetches_videos(crawled: dict[str, Any]) -> None:
    fetched = crawled["web"].paths("site-a.test")
    assert "/v/poster.png" in fetched and "/v/still.png" in fetched
    assert not [p for p in fetched if p.startswith("/v/") and not p.endswith(".png")], fetched


# --- the rules cache on a fake clock --------------------------------------------


def test_r06_robots_refetched_after_24_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    from protego import Protego
    from scrapy.utils.test import get_crawler
    from twisted.internet import defer

    from crawler.engine.middlewares import robots

    crawler = get_crawler(settings_dict={"TAKEDOWN_ROBOTS_RETRY_DELAYS": "[]"})
    mw = robots.RobotsTxtMiddleware(crawler, "takedown", crawler.settings)
    clock = [1_000_000.0]
    monkeypatch.setattr(robots.time, "time", lambda: clock[0])
    loads: list[str] = []

    async def load(origin: str) -> None:
        loads.append(origin)
        mw.rules[origin] = robots.Rules(Protego.parse("User-agent: *\n"), fetched_at=clock[0])
        for waiter in mw.waiters.pop(origin, []):
            waiter.callback(mw.rules[origin])

    monkeypatch.setattr(mw, "_load", load)
    monkeypatch.setattr(robots, "maybe_deferred_to_future", lambda d: d)
    monkeypatch.setattr(robots, "deferred_from_coro", defer.Deferred.fromCoroutine)

    def rules(origin: str) -> None:
        defer.Deferred.fromCoroutine(mw.rules_for(origin))

    rules("http://a.test:80")
    clock[0] += 24 * 3600 - 1
    rules("http://a.test:80")
    rules("https://a.test:443")  # cached per scheme, host and port
    assert loads == ["http://a.test:80", "https://a.test:443"]
    clock[0] += 2
    rules("http://a.test:80")
    assert loads[-1] == "http://a.test:80" and len(loads) == 3


# --- S-02: graceful interrupt, then --resume ---------------------------------------------

BRANCHING = 5


def tree_web() -> Web:
    return sitekit_tree_web(BRANCHING, 0.05)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_s02_graceful_interrupt_then_resume_refetches_nothing(
    env: dict[str, str], db_url: str, tmp_path: Path, signum: int
) -> None:
    web = tree_web().start()
    try:
        policy = tmp_path / "policy.toml"
        policy.write_text(policy_text(web, politeness={"per_host_concurrency": 4}))
        process = start_crawl(env, web, policy, web.url("site-a.test"), "--name", "interrupted")
        deadline = time.monotonic() + 60
        while len(done_pages(db_url)) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signum)
        assert process.wait(timeout=60) is not None
        first = len(done_pages(db_url))
        result = run_crawl(env, tmp_path, web, "--resume", "interrupted")
        assert result.returncode == 0, result.stderr[-3000:]
        fetched = Counter(h.path for h in web.hits if h.path != "/robots.txt")
        assert 0 < first < len(fetched)
        assert max(fetched.values()) == 1, [p for p, n in fetched.items() if n > 1]
        assert len(done_pages(db_url)) == len(fetched) == 1 + 5 + 25 + 125
    finally:
        web.stop()
