"""Crawl benchmark: a bare Scrapy spider against `takedown crawl`, same local site.

Serves a generated site (default 2,000 pages, each linking to three children and two
other pages) on 127.0.0.2 from threads in this process, then crawls it twice, each in
its own subprocess: a bare Scrapy spider following every link with Scrapy's defaults,
and `takedown crawl` with a policy that allows only that address. Prints pages/s of
both and the ratio (target >= 0.9).

    python bench/crawl.py [--pages 2000] [--images 0] [--no-evidence]
                          [--per-host 16] [--bare-concurrent N]

Both crawlers run at the same real concurrency: the bare spider's per-domain bound of
8 does not hold in Scrapy 2.19 (it runs up to its 16 global requests against the host),
so takedown gets `--per-host 16`; the peak connections open at the server are printed
for each, and `--per-host 8 --bare-concurrent 8` holds both at 8.

With `--images N` (docs/benchmarks.md: `--pages 1500 --images 6`) every page embeds N JPEGs
(synthetic, 20-80 KB, `crawler.demo.images`, generated in memory, never written): the
bare spider downloads each one and computes its SHA-256; `takedown crawl` computes
every hash (SHA-256, SHA-1, MD5, PDQ), matches against a 1,000-entry known list and
stores everything. Then the ratio printed is of images/s (target >= 0.8).
`--no-evidence` runs takedown with `TAKEDOWN_EVIDENCE=false` (evidence pipeline off).

With `--media-every K` every K-th page also embeds a video (`<video src>`, one of
4 synthetic 10-second 640x360 H.264 clips made in memory by PyAV) and links a ZIP
(`<a href>`, six of the served JPEGs): the bare spider downloads both and computes their
SHA-256; `takedown crawl` computes every video's vPDQ and opens every ZIP in memory,
hashing the images inside. The videos and ZIPs count as media in the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST = "127.0.0.2"
IMAGES_PER_PAGE = [0]  # set by main() before serving
MEDIA_EVERY = [0]  # every K-th page embeds a video and links a ZIP (0: none)
EXTRA: dict[str, list[bytes]] = {"videos": [], "zips": []}
ROOT = Path(__file__).resolve().parent.parent


JPEG_POOL = 48  # distinct images served; every image URL is fetched and hashed anyway
JPEG_SHAPES = ((640, 480, 90), (800, 600, 85), (960, 720, 85), (720, 540, 90))


def make_jpegs(count: int) -> list[bytes]:
    """Synthetic JPEGs of 20-80 KB (a pool: pages x images would be slow to generate)."""
    if count == 0:
        return []
    sys.path.insert(0, str(ROOT))
    from crawler.demo.images import synthetic_jpeg

    pool = []
    for seed in range(JPEG_POOL):
        width, height, quality = JPEG_SHAPES[seed % len(JPEG_SHAPES)]
        pool.append(synthetic_jpeg(1000 + seed, width, height, quality))
    return pool


class Connections:
    """Open connections at the server, now and at the peak: how many requests a crawler
    really has in flight against the one host (Scrapy's HTTP/1.1 pool keeps one
    connection per concurrent request)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.peak = 0

    def opened(self) -> None:
        with self.lock:
            self.open += 1
            self.peak = max(self.peak, self.open)

    def closed(self) -> None:
        with self.lock:
            self.open -= 1

    def take_peak(self) -> int:
        with self.lock:
            peak, self.peak = self.peak, self.open
            return peak


CONNECTIONS = Connections()


def make_videos_and_zips(jpegs: list[bytes]) -> None:
    """4 synthetic clips (PyAV, in memory) and 4 ZIPs of six JPEGs each."""
    import io
    import zipfile

    sys.path.insert(0, str(ROOT))
    from tests.support.video import make_video

    for n in range(4):
        EXTRA["videos"].append(
            make_video(10, fps=30, size=(640, 360), seed=50 + n, codec="libx264")
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for k, jpeg in enumerate(jpegs[:6]):
                archive.writestr(f"set{n}/{k}.jpg", jpeg)
        EXTRA["zips"].append(buffer.getvalue())


def page_html(i: int, pages: int, images: int) -> bytes:
    children = [c for c in (3 * i + 1, 3 * i + 2, 3 * i + 3) if c < pages]
    others = [(i * 7 + 11) % pages, (i * 13 + 5) % pages]
    links = "".join(f'<a href="/p/{n}">page {n}</a> ' for n in children + others)
    imgs = "".join(f'<img src="/img/{i}-{k}.jpg">' for k in range(images))
    if MEDIA_EVERY[0] and i % MEDIA_EVERY[0] == 0:
        imgs += f'<video src="/vid/{i}.mp4"></video><a href="/zip/{i}.zip">download</a>'

    filler = "<p>" + "lorem ipsum dolor sit amet " * 40 + "</p>"
    return f"<html><head><title>page {i}</title></head><body>{links}{imgs}{filler}</body></html>".encode()


def serve(pages: int, jpegs: list[bytes]) -> tuple[ThreadingHTTPServer, int]:
    images = IMAGES_PER_PAGE[0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            CONNECTIONS.opened()

        def finish(self) -> None:
            CONNECTIONS.closed()
            super().finish()

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
            if self.path.startswith(("/vid/", "/zip/")):
                pool = EXTRA["videos" if self.path.startswith("/vid/") else "zips"]
                n = int(self.path[5:].split(".")[0])
                kind = "video/mp4" if self.path.startswith("/vid/") else "application/zip"
                return pool[n % len(pool)], kind
            if self.path.startswith("/img/") and jpegs:
                n = int(self.path[5:].split(".")[0].replace("-", ""))
                return jpegs[n % len(jpegs)], "image/jpeg"
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
    import hashlib, json, sys, scrapy
    from scrapy.crawler import CrawlerProcess

    class Bare(scrapy.Spider):
        name = "bare"
        start_urls = [sys.argv[1]]

        def parse(self, response):
            for href in response.css("a::attr(href)").getall():
                yield response.follow(href, self.image if href.endswith(".zip") else self.parse)
            for src in response.css("img::attr(src), video::attr(src)").getall():
                yield response.follow(src, self.image)

        def image(self, response):
            yield {"url": response.url, "sha256": hashlib.sha256(response.body).hexdigest()}

    settings = {"LOG_LEVEL": "WARNING", "TELNETCONSOLE_ENABLED": False}
    if len(sys.argv) > 2:
        settings["CONCURRENT_REQUESTS"] = int(sys.argv[2])
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(Bare)
    process.crawl(crawler)
    process.start()
    stats = crawler.stats.get_stats()
    images = stats.get("item_scraped_count", 0)
    print(json.dumps({"pages": stats.get("response_received_count", 0) - images,
                      "images": images, "seconds": stats.get("elapsed_time_seconds", 0)}))
    """
)


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process and its descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_bare(url: str, concurrent: int | None) -> Figures:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bare_spider.py"  # Scrapy inspects callback source: a real file
        script.write_text(BARE_SPIDER)
        before = children_cpu()
        out = subprocess.run(
            [sys.executable, str(script), url, *([str(concurrent)] if concurrent else [])],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp,
        )
        cpu = children_cpu() - before
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Figures(int(data["pages"]), int(data["images"]), float(data["seconds"]), cpu=cpu)


@dataclass
class Figures:
    pages: int
    images: int
    seconds: float
    stored: int = 0
    matched: int = 0
    cpu: float = 0.0  # CPU seconds of the crawl's processes, start-up included
    connections: int = 0  # peak connections open at the server during the crawl


def known_list(jpegs: list[bytes], path: Path) -> None:
    """1,000 entries: SHA-256 and PDQ at random, plus the SHA-256 of 8 served images."""
    rng = random.Random(7)
    rows = [f"sha256,{hashlib.sha256(j).hexdigest()},A,bench-hit" for j in jpegs[:8]]
    while len(rows) < 1000:
        kind = "sha256" if len(rows) % 2 else "pdq"
        rows.append(f"{kind},{rng.getrandbits(256):064x},A,bench-{len(rows)}")
    path.write_text("type,hash,category,reference\n" + "\n".join(rows) + "\n")


def run_takedown(
    url: str, pages: int, jpegs: list[bytes], evidence: bool, per_host: int
) -> Figures:
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
            per_host_concurrency = {per_host}
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
        if jpegs:
            known_list(jpegs, Path(tmp) / "known.csv")
            subprocess.run(
                [*takedown, "hashlist", "import", f"{tmp}/known.csv", "--name", "bench"],
                env=env,
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
        before = children_cpu()
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
                "-s",
                f"TAKEDOWN_EVIDENCE={str(evidence).lower()}",
            ],
            env=env,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        cpu = children_cpu() - before
        figures = read_run(f"{tmp}/bench.db")
        figures.cpu = cpu
        return figures


def read_run(path: str) -> Figures:
    import sqlite3

    with sqlite3.connect(path) as conn:
        stats_text, pages, media = conn.execute(
            "SELECT stats, pages, media FROM crawl_runs"
        ).fetchone()
        stored = conn.execute("SELECT count(*) FROM pages").fetchone()[0]
        matched = conn.execute("SELECT count(DISTINCT media_id) FROM matches").fetchone()[0]
    stats = json.loads(stats_text)
    seconds = float(stats["elapsed_time_seconds"])
    return Figures(int(pages), int(media), seconds, int(stored), int(matched))


def report(args: argparse.Namespace, bare: Figures, td: Figures, sizes: str) -> None:
    print(f"site: {args.pages} pages, {args.images} images/page {sizes}, served from {HOST}")
    if args.media_every:
        v, z = (
            f"{min(map(len, EXTRA[k])) // 1024}-{max(map(len, EXTRA[k])) // 1024} KB"
            for k in ("videos", "zips")
        )
        print(f"      plus a video ({v}) and a ZIP ({z}) on every {args.media_every}th page")
    for name, f in (("bare scrapy:   ", bare), ("takedown crawl:", td)):
        print(
            f"{name} {f.pages} pages, {f.images} images in {f.seconds:.1f} s = "
            f"{f.pages / f.seconds:.1f} pages/s, {f.images / f.seconds:.1f} images/s; "
            f"CPU {f.cpu:.1f} s in all its processes; at most {f.connections} connections open"
        )
    print(
        f"takedown: {td.stored} pages stored, {td.matched} media matched; evidence {args.evidence}"
    )
    if args.images:
        ratio = (td.images / td.seconds) / (bare.images / bare.seconds)
        print(f"ratio takedown/bare images/s: {ratio:.2f} (target >= 0.8)")
    else:
        ratio = (td.pages / td.seconds) / (bare.pages / bare.seconds)
        print(f"ratio takedown/bare pages/s: {ratio:.2f} (target >= 0.9)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--images", type=int, default=0, help="JPEGs per page (default 0)")
    parser.add_argument(
        "--no-evidence", dest="evidence", action="store_false", help="evidence pipeline off"
    )
    parser.add_argument(
        "--per-host",
        type=int,
        default=16,
        help="takedown's per_host_concurrency (default 16: what the bare spider really "
        "has in flight, see docs/benchmarks.md)",
    )
    parser.add_argument(
        "--bare-concurrent",
        type=int,
        default=None,
        help="the bare spider's CONCURRENT_REQUESTS (default: Scrapy's, 16)",
    )
    parser.add_argument(
        "--media-every",
        type=int,
        default=0,
        help="every K-th page embeds a video and links a ZIP of six JPEGs (default 0: none)",
    )
    args = parser.parse_args()
    IMAGES_PER_PAGE[0] = args.images
    MEDIA_EVERY[0] = args.media_every
    if args.media_every:
        make_videos_and_zips(make_jpegs(6))
    jpegs = make_jpegs(args.images)
    sizes = f"({min(map(len, jpegs)) // 1024}-{max(map(len, jpegs)) // 1024} KB)" if jpegs else ""
    server, port = serve(args.pages, jpegs)
    url = f"http://{HOST}:{port}/"
    try:
        bare = run_bare(url, args.bare_concurrent)
        bare.connections = CONNECTIONS.take_peak()
        td = run_takedown(url, args.pages, jpegs, args.evidence, args.per_host)
        td.connections = CONNECTIONS.take_peak()
    finally:
        server.shutdown()
    report(args, bare, td, sizes)


if __name__ == "__main__":
    main()
