"""A small synthetic gallery site served from memory on a loopback address.

Some of its images are in the demo's known-hash list (exactly, or as a recompressed,
resized variant that only PDQ catches); a "logo" on every page is in the known list by
mistake and in a benign list too, so it is suppressed; one page carries hostile text
(markup in its title and alt text) to show that analysts see it as text.
"""

from __future__ import annotations

import hashlib
import html
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from crawler.demo.images import encode, synthetic_image

HOSTILE_TITLE = 'Gallery 5 <script>alert("xss")</script>'
HOSTILE_ALT = '"><img src=x onerror=alert(1)>'
# The demo's hosting provider: a documentation ASN and a made-up abuse desk.
ABUSE_CONTACT = "abuse@hosting.takedown-demo.org"
AS_NUMBER, AS_ORG, COUNTRY = 64500, "Demo Hosting", "NL"


@dataclass
class Resource:
    content_type: str
    body: bytes
    status: int = 200


@dataclass
class DemoSite:
    """The site's resources by path, and the hash lists that go with it."""

    galleries: int = 8
    resources: dict[str, Resource] = field(default_factory=dict)
    known_rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    benign_rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self.resources["/robots.txt"] = Resource("text/plain", b"User-agent: *\nAllow: /\n")
        self._add_images()
        self.resources["/"] = Resource("text/html; charset=utf-8", self._index())
        for number in range(1, self.galleries + 1):
            page = self._gallery(number)
            self.resources[f"/gallery/{number}"] = Resource("text/html; charset=utf-8", page)

    def _add_images(self) -> None:
        for seed in range(0, 3 * self.galleries + 1):
            image = synthetic_image(1000 + seed, 640, 480)
            if seed == 11:  # served recompressed and smaller: only PDQ recognises it
                body = encode(image.resize((480, 360)), "JPEG", quality=40)
                self._pdq_row(image, "B", "demo-near-11")
            else:
                body = encode(image, "JPEG", quality=85)
            self.resources[f"/img/{seed}.jpg"] = Resource("image/jpeg", body)
            if seed in (3, 7, 16):
                digest = hashlib.sha256(body).hexdigest()
                self.known_rows.append(
                    ("sha256", digest, "A" if seed != 16 else "C", f"demo-{seed}")
                )
        logo = self.resources["/img/0.jpg"].body
        self.known_rows.append(("md5", hashlib.md5(logo).hexdigest(), "C", "demo-logo"))  # noqa: S324 - a list hash, not security
        self.benign_rows.append(("sha256", hashlib.sha256(logo).hexdigest(), "", "site logo"))

    def _pdq_row(self, image: Any, category: str, reference: str) -> None:
        from crawler.media.hashing import hash_media

        hashes = hash_media(encode(image, "PNG"))
        if hashes.pdq:
            self.known_rows.append(("pdq", hashes.pdq, category, reference))

    def _index(self) -> bytes:
        links = "".join(
            f'<li><a href="/gallery/{n}">Gallery {n}</a></li>' for n in range(1, self.galleries + 1)
        )
        return _page("Demo galleries", f"<ul>{links}</ul>", "")

    def _gallery(self, number: int) -> bytes:
        first = 3 * (number - 1) + 1
        imgs = [
            f'<img src="/img/{first}.jpg" alt="picture {first}">',
            f'<img srcset="/img/{first + 1}.jpg 1x" src="/img/0.jpg" alt="picture {first + 1}">',
            f'<img data-src="/img/{first + 2}.jpg" class="lazy" alt="{html.escape(HOSTILE_ALT) if number == 5 else "lazy"}">',
        ]
        nav = f'<a href="/gallery/{number % self.galleries + 1}">next</a> <a href="/">home</a>'
        title = HOSTILE_TITLE if number == 5 else f"Gallery {number}"
        return _page(title, "".join(imgs), nav)

    def csv(self, rows: list[tuple[str, str, str, str]]) -> str:
        return "type,hash,category,reference\n" + "".join(",".join(r) + "\n" for r in rows)

    def remove(self, path: str) -> None:
        """Take a page down, as a hosting provider would after a notice."""
        self.resources[path] = Resource("text/html", b"<h1>Not found</h1>", status=404)

    def rdap(self, path: str) -> Resource:
        """A minimal RFC 9083 answer naming the demo provider's abuse desk, for any IP."""
        address = path.rsplit("/", 1)[-1]
        card = [
            "vcard",
            [
                ["version", {}, "text", "4.0"],
                ["fn", {}, "text", "Abuse desk"],
                ["email", {}, "text", ABUSE_CONTACT],
            ],
        ]
        doc = {
            "objectClassName": "ip network",
            "rdapConformance": ["rdap_level_0"],
            "handle": "DEMO-NET",
            "startAddress": address,
            "endAddress": address,
            "name": AS_ORG,
            "entities": [
                {
                    "objectClassName": "entity",
                    "handle": "DEMO-ABUSE",
                    "roles": ["abuse"],
                    "vcardArray": card,
                }
            ],
        }
        return Resource("application/rdap+json", json.dumps(doc).encode())

    def start(self, host: str = "127.0.0.2", port: int = 0) -> str:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                path = self.path.split("?", 1)[0]
                found = (
                    site.rdap(path) if path.startswith("/rdap/ip/") else site.resources.get(path)
                )
                found = found or Resource("text/html", b"<h1>Not found</h1>", 404)
                self.send_response(found.status)
                self.send_header("Content-Type", found.content_type)
                self.send_header("Content-Length", str(len(found.body)))
                self.end_headers()
                self.wfile.write(found.body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://{host}:{self._server.server_address[1]}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _page(title: str, body: str, nav: str) -> bytes:
    # The hostile title is deliberately raw markup: the crawler must store it as text.
    return (
        f"<!doctype html><html><head><title>{title}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}<p>{nav}</p></body></html>"
    ).encode()
