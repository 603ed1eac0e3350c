"""One hostile local web, crawled once in a subprocess; one test per docs/hazards.md row.

The web: site-a.test (the seed site, full of traps), site-b.test (denied and
off-site), cdn-c.test (embedded media only), and one host per robots.txt mode. The
canary on 127.0.0.1 must see no connection at all, whatever spelling reached it.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.support.sitekit import Web, migrated_env, policy_text, run_crawl

PNG = b"\x89PNG\r\n\x1a\n" + b"synthetic-media-bytes" * 10
MEDIA_CAP = 100_000


def _raw(status: int, headers: dict[str, str], body: bytes = b"", close: bool = True) -> Any:
    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
        if close:
            h.close_connection = True

    return handler


def _endless(content_type: str) -> Any:
    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.end_headers()
        chunk = b"\0" * 65536
        try:
            for _ in range(2000):  # 128 MiB at most, far above every cap
                h.wfile.write(chunk)
        except OSError:
            pass
        h.close_connection = True

    return handler


def _slow(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html")
    h.send_header("Content-Length", "100")
    h.end_headers()
    try:
        for _ in range(30):
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.5)
    except OSError:
        pass
    h.close_connection = True


def _sleep_then_404(h: BaseHTTPRequestHandler) -> None:
    time.sleep(8)
    _raw(404, {"Content-Length": "0"})(h)


def _links(*hrefs: str) -> str:
    return "".join(f'<a href="{h}">l</a>' for h in hrefs)


def build_web() -> Web:
    web = Web()
    p = web.port
    a, b, cdn = web["site-a.test"], web["site-b.test"], web["cdn-c.test"]
    canary_spellings = [
        f"http://127.0.0.1:{p}/",
        f"http://2130706433:{p}/",
        f"http://0x7f000001:{p}/",
        f"http://0177.0.0.1:{p}/",
        f"http://127.1:{p}/",
        f"http://[::1]:{p}/",
        f"http://[::ffff:127.0.0.1]:{p}/",
        f"http://localhost:{p}/",
        f"http://localhost.:{p}/",
        f"http://canary.test:{p}/",
        f"http://0.0.0.0:{p}/",
        f"http://0:{p}/",
    ]
    # The same spellings as media: media may be fetched off-site, so they reach the
    # address checks themselves (as links they are already off-scope).
    images = "".join(f'<img src="{u}c{i}.png">' for i, u in enumerate(canary_spellings))
    a.page("/canary-media", images + '<img src="/img/to-canary.png">')
    a.add("/img/to-canary.png", b"", 302, Location=f"http://127.0.0.1:{p}/from-redirect.png")
    a.add("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    a.page(
        "/",
        _links(
            "/cal/2026/1",
            "/sid?sid=1",
            "/rel/",
            "/loop",
            "/chain/0",
            "/tofile",
            "/todata",
            "/toftp",
            "/tocanary",
            "/canary-media",
            "/base",
            "/hostile",
            "/flood",
            "/private/secret",
            "/bomb",
            "/short",
            "/slow",
            "/huge",
            "/busy",
            "/media",
            "/cookie",
            "/after-cookie",
            web.url("site-b.test", "/"),
            web.url("cdn-c.test", "/page.html"),
            *canary_spellings,
        ),
    )
    a.fallback = lambda path: _site_a_dynamic(web, path)
    a.add("/loop", b"", 302, Location="/loop2")
    a.add("/loop2", b"", 302, Location="/loop")
    a.add("/tofile", b"", 302, Location="file:///etc/passwd")
    a.add("/todata", b"", 302, Location="data:text/html,<a href='http://127.0.0.1/'>x</a>")
    a.add("/toftp", b"", 302, Location=f"ftp://127.0.0.1:{p}/x")
    a.add("/tocanary", b"", 302, Location=f"http://127.0.0.1:{p}/from-redirect")
    a.add("/go-b", b"", 302, Location=web.url("site-b.test", "/from-seed-redirect"))
    a.page("/base", f'<base href="http://127.0.0.1:{p}/"><a href="x">x</a><img src="y.png">')
    a.page(
        "/hostile",
        (
            '<a href="javascript:alert(1)">j</a><a href="http://site-a.test:99999/">p</a>'
            '<a href="http://[unclosed/">u</a><a href="/nul\x00x">n</a>'
            f'<a href="/{"x" * 3000}">long</a><a href="/good-after-bad">good</a>'
        ),
    )
    a.page("/good-after-bad", "fine")
    a.page("/flood", _links(*(f"/denied/{i}" for i in range(3000))))
    bomb = gzip.compress(b"<html>" + b" " * (40 * 1024 * 1024))
    a.add("/bomb", bomb, **{"Content-Encoding": "gzip"})
    a.routes["/short"] = _raw(
        200, {"Content-Type": "text/html", "Content-Length": "1000"}, b"short"
    )
    a.routes["/slow"] = _slow
    a.add("/huge", b"<html>" + b"<p>x</p>" * (12 * 1024 * 1024 // 8))
    a.add("/busy", b"busy", 503, content_type="text/plain", **{"Retry-After": "1"})
    a.page("/cookie", "c", **{"Set-Cookie": "session=secret; Path=/"})
    a.page("/after-cookie", "after")
    a.page("/media", _media_forms(web))
    a.add("/img/a.png", PNG, content_type="image/png")
    a.routes["/img/huge.jpg"] = _raw(
        200, {"Content-Type": "image/jpeg", "Content-Length": str(10**9)}
    )
    a.routes["/img/endless.jpg"] = _endless("image/jpeg")
    a.routes["/img/short.jpg"] = _raw(
        200, {"Content-Type": "image/jpeg", "Content-Length": "1000"}, b"x" * 10
    )
    b.page("/", "site b")
    cdn.add("/cdn.png", PNG, content_type="image/png")
    cdn.page("/page.html", "a cdn page, never a page of ours")
    _robots_hosts(web)
    return web


def _media_forms(web: Web) -> str:
    data = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    return (
        '<img src="/img/a.png" srcset="/img/s1.png 1x, /img/s2.png 2x">'
        '<picture><source srcset="/img/pic.webp"></picture>'
        '<img data-src="/img/lazy.png" data-srcset="/img/lazy2.png 2x">'
        '<div data-original="/img/orig.png" style="background:url(\'/img/style.png\')"></div>'
        '<style>.x{background-image:url("/img/css.png")}</style>'
        '<video src="/img/v.mp4" poster="/img/poster.jpg"><source src="/img/v2.webm"></video>'
        '<embed src="/img/e.swf"><meta property="og:image" content="/img/og.jpg">'
        '<meta name="twitter:image" content="/img/tw.jpg"><a href="/img/linked.jpg">l</a>'
        f'<img src="{data}"><img src="data:image/png;base64,@@@notbase64@@@">'
        f'<img src="{web.url("cdn-c.test", "/cdn.png")}">'
        '<img src="/img/huge.jpg"><img src="/img/endless.jpg"><img src="/img/short.jpg">'
    )


def _site_a_dynamic(web: Web, path: str) -> Any:
    if path.startswith("/cal/"):
        year, month = (int(x) for x in path.split("/")[2:4])
        nxt = f"/cal/{year + month // 12}/{month % 12 + 1}"
        return (200, {"Content-Type": "text/html"}, f"<a href='{nxt}'>next</a>".encode())
    if path.startswith("/sid?sid="):
        n = int(path.split("=")[1])
        return (
            200,
            {"Content-Type": "text/html"},
            f"<a href='/sid?sid={n + 1}'>again</a>".encode(),
        )
    if path.startswith("/rel/"):
        return (200, {"Content-Type": "text/html"}, b"<a href='a/'>deeper</a>")
    if path.startswith("/chain/"):
        n = int(path.split("/")[2])
        return (302, {"Location": f"/chain/{n + 1}"}, b"")
    return None


def _robots_hosts(web: Web) -> None:
    pages = _links("/p")
    for name in web.hosts:
        if name.startswith("robots-"):
            web[name].page("/", pages)
            web[name].page("/p", "p")
            web[name].page("/q", "q")
    web["robots-503.test"].add("/robots.txt", b"down", 503, content_type="text/plain")
    web["robots-timeout.test"].routes["/robots.txt"] = _sleep_then_404
    web["robots-404.test"].add("/robots.txt", b"", 404)
    huge = b"User-agent: *\nDisallow: /p\n" + b"# filler\n" * (5 * 1024 * 1024 // 9)
    web["robots-huge.test"].add("/robots.txt", huge, content_type="text/plain")
    utf16 = "User-agent: *\nDisallow: /\n".encode("utf-16")
    web["robots-utf16.test"].add("/robots.txt", utf16, content_type="text/plain")
    web["robots-delay.test"].add(
        "/robots.txt", "User-agent: *\nCrawl-delay: 1\n", content_type="text/plain"
    )
    web["robots-delay.test"].page("/", _links("/p", "/q"))
    web["robots-longdelay.test"].add(
        "/robots.txt", "User-agent: *\nCrawl-delay: 120\n", content_type="text/plain"
    )
    web["robots-multi.test"].add(
        "/robots.txt", "User-agent: *\nDisallow: /\n", content_type="text/plain"
    )


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hazards")
    url, env = migrated_env(tmp)
    web = build_web().start()
    policy = policy_text(
        web,
        scope={
            "max_depth": 4,
            "max_pages_per_host": 40,
            "deny_domains": ["site-b.test"],
            "deny_url_patterns": ["/denied/"],
        },
        media={"max_bytes": MEDIA_CAP},
        politeness={"timeout_s": 3},
    )
    seeds = [
        web.url("site-a.test", "/"),
        web.url("site-a.test", "/go-b"),
        web.url("site-b.test", "/"),
    ]
    seeds += [web.url(n, "/") for n in web.hosts if n.startswith("robots-")]
    seeds += [web.url("robots-multi.test", "/p"), web.url("robots-multi.test", "/q")]
    settings = {"TAKEDOWN_ROBOTS_RETRY_DELAYS": "[0.2, 0.2]", "LOG_LEVEL": "INFO"}
    started = time.monotonic()
    result = run_crawl(env, tmp, web, *seeds, policy=policy, timeout=180, extra_settings=settings)
    elapsed = time.monotonic() - started
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM crawl_runs")).scalar(), result.stderr[-3000:]
        run = conn.execute(text("SELECT stats, finish_reason, status, pages FROM crawl_runs")).one()
        frontier = [
            tuple(r) for r in conn.execute(text("SELECT kind, state, url, reason FROM frontier"))
        ]
        observations = [
            tuple(r)
            for r in conn.execute(text("SELECT media_url, status, error FROM observations"))
        ]
        pages = [
            tuple(r)
            for r in conn.execute(
                text("SELECT url, status_code, error, parse_incomplete FROM pages")
            )
        ]
    engine.dispose()
    stats = run.stats if isinstance(run.stats, dict) else json.loads(run.stats)
    yield {
        "result": result,
        "web": web,
        "stats": stats,
        "run": run,
        "frontier": frontier,
        "observations": observations,
        "pages": pages,
        "elapsed": elapsed,
    }
    web.stop()


def paths(crawled: dict[str, Any], host: str) -> list[str]:
    return crawled["web"].paths(host)


def page_error(crawled: dict[str, Any], suffix: str) -> str | None:
    return next(p[2] for p in crawled["pages"] if p[0].endswith(suffix))


def test_crawl_finishes_in_time(crawled: dict[str, Any]) -> None:
    result = crawled["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert crawled["run"].status == "finished"
    assert crawled["elapsed"] < 120


def test_c04_c05_c06_canary_sees_nothing(crawled: dict[str, Any]) -> None:
    assert crawled["web"].canary_hits == 0
    # The spellings canonicalise to a few URLs; each was refused before any connection.
    assert crawled["stats"]["policy/blocked/private-address"] >= 13


def test_c01_calendar_trap_is_bounded(crawled: dict[str, Any]) -> None:
    calendar = [p for p in paths(crawled, "site-a.test") if p.startswith("/cal/")]
    assert 0 < len(calendar) <= 10  # max_pages_per_host 40 -> prefix budget 10, and depth
    assert any(
        k.startswith("scope/budget-exhausted/") or k == "policy/blocked/max-depth"
        for k in crawled["stats"]
    )


def test_c02_session_ids_and_repeating_segments(crawled: dict[str, Any]) -> None:
    assert len([p for p in paths(crawled, "site-a.test") if p.startswith("/sid")]) == 1
    rel = [p for p in paths(crawled, "site-a.test") if p.startswith("/rel/")]
    assert rel == ["/rel/", "/rel/a/", "/rel/a/a/"]


def test_c03_redirect_loops_chains_and_non_http_targets(crawled: dict[str, Any]) -> None:
    site = paths(crawled, "site-a.test")
    assert site.count("/loop") == 1 and site.count("/loop2") == 1
    assert len([p for p in site if p.startswith("/chain/")]) <= 6
    assert "too many redirects" in (page_error(crawled, "/chain/0") or "")
    # file:, data: and ftp: targets are never followed: the 302 itself is the record.
    statuses = {p[0].rsplit("/", 1)[1]: p[1] for p in crawled["pages"]}
    assert statuses["tofile"] == statuses["todata"] == statuses["toftp"] == 302


def test_c07_off_scope_seed_redirect_and_deny_over_seeds(crawled: dict[str, Any]) -> None:
    assert paths(crawled, "site-b.test") == []
    assert crawled["stats"].get("policy/blocked/denied-domain", 0) >= 1


def test_c10_offsite_media_fetched_pages_not(crawled: dict[str, Any]) -> None:
    assert paths(crawled, "cdn-c.test") == ["/robots.txt", "/cdn.png"]


def test_c12_cookies_never_sent(crawled: dict[str, Any]) -> None:
    hits = [h for h in crawled["web"].hits if h.path == "/after-cookie"]
    assert hits and all("Cookie" not in h.headers for h in hits)


def test_user_agent_from_policy_on_every_request(crawled: dict[str, Any]) -> None:
    agents = {h.headers.get("User-Agent") for h in crawled["web"].hits}
    assert agents == {"takedown-crawler (+contact URL of the operator)"}


def test_r01_robots_503_and_timeout_disallow_everything(crawled: dict[str, Any]) -> None:
    assert paths(crawled, "robots-503.test") == ["/robots.txt"] * 3  # retried, never past
    assert paths(crawled, "robots-timeout.test") and set(paths(crawled, "robots-timeout.test")) == {
        "/robots.txt"
    }


def test_r02_robots_404_allows(crawled: dict[str, Any]) -> None:
    assert {"/", "/p"} <= set(paths(crawled, "robots-404.test"))


def test_r04_huge_robots_capped_early_rules_hold(crawled: dict[str, Any]) -> None:
    assert paths(crawled, "robots-huge.test") == ["/robots.txt", "/"]
    assert crawled["stats"].get("robots/truncated", 0) >= 1


def test_r05_utf16_robots_is_unreachable(crawled: dict[str, Any]) -> None:
    assert paths(crawled, "robots-utf16.test") == ["/robots.txt"]


def test_r06_crawl_delay_applied_and_absurd_delay_skips_host(crawled: dict[str, Any]) -> None:
    hits = [
        h for h in crawled["web"].hits if h.host == "robots-delay.test" and h.path != "/robots.txt"
    ]
    assert len(hits) == 3
    gaps = [b.at - a.at for a, b in zip(hits, hits[1:], strict=False)]
    assert min(gaps) >= 0.8
    assert paths(crawled, "robots-longdelay.test") == ["/robots.txt"]
    assert crawled["stats"].get("policy/blocked/crawl-delay", 0) >= 1


def test_every_request_waiting_for_robots_is_checked(crawled: dict[str, Any]) -> None:
    assert paths(crawled, "robots-multi.test") == ["/robots.txt"]
    assert "/private/secret" not in paths(crawled, "site-a.test")


def test_h01_gzip_bomb_aborted(crawled: dict[str, Any]) -> None:
    assert page_error(crawled, "/bomb")


def test_h02_content_length_lies(crawled: dict[str, Any]) -> None:
    assert "short body" in (page_error(crawled, "/short") or "")
    media = {m[0].rsplit("/", 1)[1]: m for m in crawled["observations"]}
    assert media["huge.jpg"][1] == "skipped" and "declared 1000000000" in media["huge.jpg"][2]
    assert media["endless.jpg"][1] == "skipped"
    assert media["short.jpg"][1] == "error"


def test_h05_slow_drip_times_out(crawled: dict[str, Any]) -> None:
    assert "timed out" in (page_error(crawled, "/slow") or "")


def test_h06_retry_after_bounded(crawled: dict[str, Any]) -> None:
    hits = [h.at for h in crawled["web"].hits if h.path == "/busy"]
    assert 1 <= len(hits) <= 3
    assert all(b - a >= 0.8 for a, b in zip(hits, hits[1:], strict=False))


def test_h08_huge_html_recorded_as_too_large(crawled: dict[str, Any]) -> None:
    assert "larger than" in (page_error(crawled, "/huge") or "")


def test_h09_link_flood_capped(crawled: dict[str, Any]) -> None:
    assert crawled["stats"]["outlinks/truncated"] >= 1
    flood = next(p for p in crawled["pages"] if p[0].endswith("/flood"))
    assert flood[3]  # parse_incomplete


def test_h11_hostile_hrefs_skipped_good_links_kept(crawled: dict[str, Any]) -> None:
    assert "/good-after-bad" in paths(crawled, "site-a.test")
    assert crawled["stats"]["outlinks/bad-href"] >= 3


def test_m10_media_in_every_form(crawled: dict[str, Any]) -> None:
    fetched = set(paths(crawled, "site-a.test"))
    for name in (
        "a.png",
        "s1.png",
        "s2.png",
        "pic.webp",
        "lazy.png",
        "lazy2.png",
        "orig.png",
        "style.png",
        "css.png",
        "v.mp4",
        "poster.jpg",
        "v2.webm",
        "e.swf",
        "og.jpg",
        "tw.jpg",
        "linked.jpg",
    ):
        assert f"/img/{name}" in fetched, name
    assert any(m[0].startswith("data:image/png;sha256=") for m in crawled["observations"])
    assert crawled["stats"]["media/data-uri/malformed"] == 1
