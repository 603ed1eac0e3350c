"""Live preview fetches under the crawl policy's address rules (docs/hazards.md A-04, C-04).

`fetch_media` is the one function the preview route calls: swap it for the crawler's own
policy-gated client once one exists for blocking callers. It resolves the host itself,
checks every address with `AddressPolicy.check`, connects to the checked address (so a
DNS answer cannot change between check and connect), re-checks after every redirect,
caps the body at the policy's `max_bytes` and the whole exchange at one deadline. No
cookies, no proxies, no decompression; nothing is written to disk.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from crawler.net.addresses import parse_host_literal
from review.config import PreviewConfig

MAX_REDIRECTS = 3
_CHUNK = 65536
_GONE_STATUSES = (404, 410, 451)


class PreviewUnavailable(Exception):
    """Why no preview: `kind` is gone | refused | too-large | unavailable."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Fetched:
    body: bytes
    content_type: str
    final_url: str


def _resolve(host: str, port: int) -> list[str]:
    literal = parse_host_literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise PreviewUnavailable("gone", f"the host no longer resolves: {exc}") from exc
    return sorted({str(info[4][0]) for info in infos})


def _checked_address(host: str, port: int, cfg: PreviewConfig) -> str:
    addresses = _resolve(host, port)
    for address in addresses:
        reason = cfg.address_policy.check(address)
        if reason is not None:
            raise PreviewUnavailable("refused", f"address refused by the crawl policy ({reason})")
    if not addresses:
        raise PreviewUnavailable("gone", "the host has no address")
    return addresses[0]


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address while verifying the certificate for the host name."""

    def __init__(self, address: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _connection(
    url: str, cfg: PreviewConfig, timeout: float
) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PreviewUnavailable("refused", "only http(s) media are previewed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise PreviewUnavailable("refused", "bad port in the media URL") from exc
    address = _checked_address(parts.hostname, port, cfg)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        return _PinnedHTTPS(address, parts.hostname, port, timeout), path
    conn = http.client.HTTPConnection(address, port, timeout=timeout)
    return conn, path


def _read_capped(resp: http.client.HTTPResponse, cfg: PreviewConfig, deadline: float) -> bytes:
    declared = resp.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > cfg.max_bytes:
        raise PreviewUnavailable("too-large", "the media is larger than the policy allows")
    chunks, total = [], 0
    while chunk := resp.read(_CHUNK):
        total += len(chunk)
        if total > cfg.max_bytes:
            raise PreviewUnavailable("too-large", "the media is larger than the policy allows")
        if time.monotonic() > deadline:
            raise PreviewUnavailable("unavailable", "the media server is too slow")
        chunks.append(chunk)
    return b"".join(chunks)


def _once(url: str, cfg: PreviewConfig, deadline: float) -> Fetched | str:
    """The fetched body, or the redirect target."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise PreviewUnavailable("unavailable", "the media server is too slow")
    conn, path = _connection(url, cfg, remaining)
    parts = urlsplit(url)
    headers = {
        "Host": parts.netloc.rsplit("@", 1)[-1],
        "User-Agent": cfg.user_agent,
        "Accept": "image/*",
        "Accept-Encoding": "identity",
    }
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
            return urljoin(url, resp.getheader("Location", ""))
        if resp.status in _GONE_STATUSES:
            raise PreviewUnavailable("gone", f"the media server answers {resp.status}")
        if resp.status != 200:
            raise PreviewUnavailable("unavailable", f"the media server answers {resp.status}")
        body = _read_capped(resp, cfg, deadline)
        return Fetched(body, resp.getheader("Content-Type", "") or "", url)
    except (ConnectionRefusedError, socket.gaierror) as exc:
        raise PreviewUnavailable("gone", "the media server no longer answers") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise PreviewUnavailable("unavailable", f"fetch failed: {type(exc).__name__}") from exc
    finally:
        conn.close()


def fetch_media(url: str, cfg: PreviewConfig) -> Fetched:
    """GET one media URL under the crawl policy; raises `PreviewUnavailable`."""
    deadline = time.monotonic() + cfg.timeout_s
    for _ in range(MAX_REDIRECTS + 1):
        answer = _once(url, cfg, deadline)
        if isinstance(answer, Fetched):
            return answer
        url = answer
    raise PreviewUnavailable("unavailable", "too many redirects")
