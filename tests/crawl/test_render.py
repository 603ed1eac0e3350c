"""C-09 under `--render`: Chromium reaches the web only through the policy-enforcing
egress proxy. A rendered page's script inserts links and images (found, followed and
fetched through Scrapy) and calls the canary in every way it can; the canary sees
nothing. With no browser, rendering refuses to start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from crawler.net.addresses import AddressPolicy
from crawler.net.egress_proxy import EgressProxy
from crawler.net.resolver import FilteringResolver
from tests.crawl.sitekit import Web, run_crawl


def synthetic_png() -> bytes:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    Image.linear_gradient("L").resize((64, 64)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = synthetic_png()

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
    web = Web(["site-a.test"])
    site = web["site-a.test"]
    site.add("/robots.txt", "User-agent: *\n", content_type="text/plain")
    site.page("/", script_page(web.port))
    site.page("/js-link", "reached through a link the script inserted")
    site.add("/js-image.png", PNG, content_type="image/png")
    return web


def rows(db_url: str, query: str) -> list[Any]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        result = [tuple(r) for r in conn.execute(text(query))]
    engine.dispose()
    return result


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
        media = rows(db_url, "SELECT media_url, status FROM observations")
        assert any(m[0].endswith("/js-image.png") and m[1] == "hashed" for m in media), media
        raw = rows(db_url, "SELECT stats FROM crawl_runs")[0][0]
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
    assert rows(db_url, "SELECT count(*) FROM crawl_runs") == [(0,)]


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
