"""C-09 under `--render`: Chromium reaches the web only through the policy-enforcing
egress proxy. A rendered page's script inserts links and images (found, followed and
fetched through Scrapy) and calls the canary in every way it can; the canary sees
nothing. With no browser, rendering refuses to start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crawler.net.addresses import AddressPolicy
from crawler.net.egress_proxy import EgressProxy
from crawler.net.resolver import FilteringResolver
from tests.support.media import synthetic_png
from tests.support.sitekit import Web, one_page_web, one_site_web, policy_text, query, run_crawl

PNG = synthetic_png(1, (64, 64))

pytestmark = pytest.mark.browser


def script_page(port: int) -> str:
    canary = f"127.0.0.1:{port}"
    return f"""
<div id="out"></div>
<script>
  const out = document.getElementById('out');
  const a = document.createElement('a'); a.href = '/js-link'; a.textContent = 'js';
  out.appendChild(a);
  const img = document.createElement('img'); img.src = '/js-image.png'; out.appendChild(img);
  const tries = ['http://{canary}/fetch', 'http://canary.test:{port}/name',
                 'http://localhost:{port}/lh', 'http://[::1]:{port}/v6',
                 'http://2130706433:{port}/dec'];
  for (const u of tries) {{ fetch(u).catch(() => 0); }}
  try {{ const x = new XMLHttpRequest(); x.open('GET', 'http://{canary}/xhr'); x.send(); }}
  catch (e) {{}}
  const i2 = new Image(); i2.src = 'http://{canary}/img.png';
  const f = document.createElement('iframe'); f.src = 'http://{canary}/frame';
  document.body.appendChild(f);
  try {{ new WebSocket('ws://{canary}/ws'); }} catch (e) {{}}
  try {{ new WebSocket('ws://canary.test:{port}/ws2'); }} catch (e) {{}}
</script>"""


def rendered_web() -> Web:
    web = one_site_web()
    site = web["site-a.test"]
    site.page("/", script_page(web.port))
    site.page("/js-link", "reached through a link the script inserted")
    site.add("/js-image.png", PNG, content_type="image/png")
    return web


def test_c09_rendered_script_links_followed_canary_untouched(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    web = rendered_web().start()
    try:
        result = run_crawl(env, tmp_path, web, web.url("site-a.test"), "--render", timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        assert web.canary_hits == 0
        fetched = web.paths("site-a.test")
        assert "/js-link" in fetched and "/js-image.png" in fetched
        # the image was fetched once, by Scrapy: the browser aborts images
        assert fetched.count("/js-image.png") == 1
        media = query(db_url, "SELECT media_url, status FROM observations")
        assert any(m[0].endswith("/js-image.png") and m[1] == "hashed" for m in media), media
        raw = query(db_url, "SELECT stats FROM crawl_runs")[0][0]
        stats = raw if isinstance(raw, dict) else json.loads(raw or "{}")  # JSON on PG
        assert stats.get("render/proxy/refused", 0) >= 1
        assert stats.get("render/proxy/connected", 0) >= 1
    finally:
        web.stop()


def test_c09_render_refuses_without_chromium(cli, env, db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    policy = tmp_path / "policy.toml"
    policy.write_text("")
    code, _, err = cli(
        "crawl",
        "http://site-a.test/",
        "--render",
        "--policy",
        str(policy),
        "-s",
        "TAKEDOWN_CHROMIUM_PATH=/nonexistent/chromium",
    )
    assert code == 2 and "Chromium" in err and "/nonexistent/chromium" in err
    assert query(db_url, "SELECT count(*) FROM crawl_runs") == [(0,)]


def test_egress_proxy_refuses_every_spelling_of_loopback(web: Web) -> None:
    """The proxy alone, without a browser: CONNECT and absolute-URL requests."""
    import socket

    resolver = FilteringResolver(
        None, AddressPolicy(False, ["127.0.0.2/32"]), {"canary.test": "127.0.0.1"} | web.host_map()
    )
    proxy = EgressProxy(resolver, timeout=2)
    port = proxy.start()
    try:
        targets = [
            f"CONNECT 127.0.0.1:{web.port} HTTP/1.1",
            f"CONNECT canary.test:{web.port} HTTP/1.1",
            f"CONNECT [::1]:{web.port} HTTP/1.1",
            f"GET http://0x7f000001:{web.port}/ HTTP/1.1",
            f"GET http://localhost:{web.port}/ HTTP/1.1",
            f"GET ftp://site-a.test:{web.port}/ HTTP/1.1",
        ]
        for line in targets:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(f"{line}\r\nHost: x\r\n\r\n".encode())
                assert sock.recv(100).startswith(b"HTTP/1.1 403"), line
        web["site-a.test"].page("/", "ok")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"GET {web.url('site-a.test')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        assert web.canary_hits == 0
        assert sum(proxy.refused.values()) == len(targets) and proxy.connected == 1
    finally:
        proxy.stop()


# --- docs/policy.md: a rendered page is taken once it has settled ----------------------

LATE_GALLERY = """
<div id="gallery"></div>
<div style="height: 4000px">tall, so that the page scrolls</div>
<div id="bottom"></div>
<script>
  const add = (where, src) => {
    const img = document.createElement('img'); img.src = src;
    document.getElementById(where).appendChild(img);
  };
  document.addEventListener('DOMContentLoaded', () => {
    setTimeout(() => add('gallery', '/late-timer.png'), 300);
    const x = new XMLHttpRequest();
    x.open('GET', '/api/gallery.json');
    x.onload = () => JSON.parse(x.responseText).images.forEach((s) => add('gallery', s));
    x.send();
  });
  let scrolled = false;
  window.addEventListener('scroll', () => {
    if (!scrolled) { scrolled = true; add('bottom', '/late-scroll.png'); }
  });
</script>"""

RESTLESS = """
<img src="/static.png">
<div id="clock"></div>
<script>
  let n = 0;
  setInterval(() => { document.getElementById('clock').textContent = String(n++); }, 50);
</script>"""


def png(shade: int) -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.new("RGB", (32, 32), (shade, 255 - shade, 128)).save(buffer, "PNG")
    return buffer.getvalue()


def late_answer(body: bytes, delay_s: float) -> Any:
    """A route answering *delay_s* late (the XHR of the gallery)."""
    import time

    def respond(handler: Any) -> None:
        time.sleep(delay_s)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def observed(db_url: str) -> dict[str, str]:
    return {
        url.rsplit("/", 1)[-1]: status
        for url, status in query(db_url, "SELECT media_url, status FROM observations")
    }


def run_stats(db_url: str) -> dict[str, Any]:
    raw = query(db_url, "SELECT stats FROM crawl_runs")[0][0]
    return raw if isinstance(raw, dict) else json.loads(raw or "{}")


def test_rendered_gallery_waits_for_timer_xhr_and_scroll(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    web, site = one_page_web(LATE_GALLERY)
    site.routes["/api/gallery.json"] = late_answer(b'{"images": ["/late-xhr.png"]}', 0.5)  # type: ignore[assignment]
    for shade, name in enumerate(("late-timer", "late-xhr", "late-scroll")):
        site.add(f"/{name}.png", png(60 * shade), content_type="image/png")
    web.start()
    try:
        result = run_crawl(env, tmp_path, web, web.url("site-a.test"), "--render", timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        media = observed(db_url)
        assert media == {
            "late-timer.png": "hashed",
            "late-xhr.png": "hashed",
            "late-scroll.png": "hashed",
        }, media
        assert query(db_url, "SELECT parse_incomplete FROM pages") == [(False,)]
        stats = run_stats(db_url)
        assert stats.get("render/settle/settled") == 1 and "render/settle/cut" not in stats
        assert web.canary_hits == 0
    finally:
        web.stop()


def test_rendered_page_that_never_settles_is_cut_at_the_budget(
    env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    web, site = one_page_web(RESTLESS)
    site.add("/static.png", PNG, content_type="image/png")
    web.start()
    try:
        policy = policy_text(web, render={"settle_ms": 200, "max_render_s": 2})
        result = run_crawl(
            env, tmp_path, web, web.url("site-a.test"), "--render", policy=policy, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]
        # taken as it stood at the budget: recorded, its media hashed, and marked
        assert observed(db_url) == {"static.png": "hashed"}
        assert query(db_url, "SELECT status_code, error, parse_incomplete FROM pages") == [
            (200, None, True)
        ]
        stats = run_stats(db_url)
        assert stats.get("render/settle/cut") == 1 and "render/settle/settled" not in stats
        assert "had not settled at the 2 s render budget" in result.stderr
    finally:
        web.stop()
