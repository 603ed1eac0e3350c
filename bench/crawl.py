"""Crawl benchmark: a bare Scrapy spider against `takedown crawl`, same local site.

Serves a generated site (default 2,000 pages, each linking to three children and two
other pages) on 127.0.0.2 from threads in this process, then crawls it twice, each in
its own subprocess: a bare Scrapy spider following every link with Scrapy's defaults,
and `takedown crawl` with a policy that allows only that address. Prints pages/s of
both and the ratio (target >= 0.9).

    python bench/crawl.py [--pages 2000] [--images 0]

Hook for media: `--images N` adds N synthetic JPEGs per page (generated in memory with
Pillow, never written to disk); the ticket's later target is 1,500 pages x 6 JPEGs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST = "127.0.0.2"
ROOT = Path(__file__).resolve().parent.parent


def make_jpegs(count: int) -> list[bytes]:
    if count == 0:
        return []
    from PIL import Image

    images = []
    for i in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (320, 240), ((40 * i) % 256, 90, 160)).save(buffer, "JPEG")
        images.append(buffer.getvalue())
    return images


def page_html(i: int, pages: int, images: int) -> bytes:
    children = [c for c in (3 * i + 1, 3 * i + 2, 3 * i + 3) if c < pages]
    others = [(i * 7 + 11) % pages, (i * 13 + 5) % pages]
    links = "".join(f'<a href="/p/{n}">page {n}</a> ' for n in children + others)
    imgs = "".join(f'<img src="/img/{i}-{k}.jpg">' for k in range(images))
    filler = "<p>" + "lorem ipsum dolor sit amet " * 40 + "</p>"
    return f"<html><head><title>page {i}</title></head><body>{links}{imgs}{filler}</body></html>".encode()


def serve(pages: int, images: int) -> tuple[ThreadingHTTPServer, int]:
    jpegs = make_jpegs(min(images, 6))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body, kind = self.route()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def route(self) -> tuple[bytes | None, str]:
            if self.path == "/":
                return page_html(0, pages, images), "text/html"
            if self.path.startswith("/p/"):
                n = int(self.path[3:]) if self.path[3:].isdigit() else -1
                return (page_html(n, pages, images) if 0 <= n < pages else None), "text/html"
            if self.path.startswith("/img/") and jpegs:
                return jpegs[hash(self.path) % len(jpegs)], "image/jpeg"
            return None, "text/plain"

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


BARE_SPIDER = textwrap.dedent(
    """
    import os
    # Scrapy's cookie middleware makes tldextract fetch the suffix list: never here.
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""
    import json, sys, scrapy
    from scrapy.crawler import CrawlerProcess

    class Bare(scrapy.Spider):
        name = "bare"
        start_urls = [sys.argv[1]]

        def parse(self, response):
            for href in response.css("a::attr(href)").getall():
                yield response.follow(href, self.parse)
            for src in response.css("img::attr(src)").getall():
                yield response.follow(src, self.image)

        def image(self, response):
            yield {"url": response.url, "bytes": len(response.body)}

    process = CrawlerProcess({"LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False})
    crawler = process.create_crawler(Bare)
    process.crawl(crawler)
    process.start()
    stats = crawler.stats.get_stats()
    print(json.dumps({"pages": stats.get("response_received_count", 0),
                      "seconds": stats.get("elapsed_time_seconds", 0)}))
    """
)


def run_bare(url: str, images: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bare_spider.py"  # Scrapy inspects callback source: a real file
        script.write_text(BARE_SPIDER)
        out = subprocess.run(
            [sys.executable, str(script), url], capture_output=True, text=True, check=True, cwd=tmp
        )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    responses = int(data["pages"])
    return responses, float(data["seconds"])


def run_takedown(url: str, pages: int) -> tuple[int, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.toml"
        policy.write_text(
            textwrap.dedent(f"""
            [scope]
            max_depth = 50
            max_pages = {pages * 2}
            max_pages_per_host = {pages * 8}
            [politeness]
            autothrottle = false
            delay_s = 0.0
            per_host_concurrency = 8
            [network]
            allowed_networks = ["{HOST}/32"]
            """)
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAKEDOWN_")}
        env |= {"TAKEDOWN_HOME": tmp, "TAKEDOWN_DB": f"sqlite:///{tmp}/bench.db"}
        takedown = [sys.executable, "-m", "crawler"]
        subprocess.run(
            [*takedown, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=ROOT
        )
        subprocess.run(
            [
                *takedown,
                "crawl",
                url,
                "--policy",
                str(policy),
                "-s",
                "TAKEDOWN_RDAP_ENRICH=false",
                "-s",
                "LOG_LEVEL=WARNING",
            ],
            env=env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        return read_run(f"{tmp}/bench.db")


def read_run(path: str) -> tuple[int, float, int]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        stats_text, pages = conn.execute("SELECT stats, pages FROM crawl_runs").fetchone()
        stored = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
    stats = json.loads(stats_text)
    return int(pages), float(stats["elapsed_time_seconds"]), int(stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--images", type=int, default=0, help="JPEGs per page (hook, default 0)")
    args = parser.parse_args()
    server, port = serve(args.pages, args.images)
    url = f"http://{HOST}:{port}/"
    try:
        bare_pages, bare_s = run_bare(url, args.images)
        td_pages, td_s, stored = run_takedown(url, args.pages)
    finally:
        server.shutdown()
    bare_rate, td_rate = bare_pages / bare_s, td_pages / td_s
    print(f"site: {args.pages} pages, {args.images} images/page, served from {HOST}")
    print(f"bare scrapy:    {bare_pages} responses in {bare_s:.1f} s = {bare_rate:.1f} pages/s")
    print(
        f"takedown crawl: {td_pages} pages ({stored} stored) in {td_s:.1f} s = {td_rate:.1f} pages/s"
    )
    print(f"ratio takedown/bare: {td_rate / bare_rate:.2f} (target >= 0.9)")


if __name__ == "__main__":
    main()
