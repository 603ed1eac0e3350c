"""Abuse contact of the network hosting an IP address, by RDAP (RFC 9083).

Setting (read by `crawler.config`, passed here as `base_url`):

- `TAKEDOWN_RDAP_URL`: `GET {base}/ip/{ip}` answers. Unset: the registry is found through
  the IANA bootstrap files (https://data.iana.org/rdap/ipv4.json, ipv6.json), fetched on
  the first lookup that needs them (never at construction) and kept for a day.

`abuse_contact()` never raises for network or content trouble: it returns an
`RdapResult` whose `status` is "ok" (an abuse e-mail), "none" (the registry answered but
names no usable abuse contact: the item waits visibly, docs/hazards.md E-07) or "error" (with
`error`, `error_kind` and `expires_at`, the time before which no new attempt is made).

Caching: answers are cached per network (`cidr0_cidrs`, else `startAddress`-`endAddress`),
so other addresses in it make no request: "ok" for `cache_ttl_s`, "none" for
`negative_ttl_s`. Networks broader than /8 (IPv4) or /16 (IPv6) are cached for the one
address only, so one answer cannot speak for half the Internet.

Backoff: 429, 5xx, timeouts and unreachable servers put the whole registry in backoff
(doubling from `error_backoff_s` to `max_backoff_s`, or longer if Retry-After says so);
lookups meanwhile return "error" without a request. Unreadable answers (too large,
invalid JSON, wrong types) back off the single address the same way.

Hostile answers (docs/hazards.md E-06): body capped at `max_bytes` while reading, one deadline of
`timeout_s` for the whole exchange, redirects only to http(s), entity walk bounded by
`max_depth`/`max_entities`, strict e-mail validation; see `crawler.net.rdap_parse`.

Thread-safe; concurrent lookups of one uncached network may each make a request.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from crawler.net.addresses import classify
from crawler.net.bounded_http import FetchError, HttpStatusError, fetch
from crawler.net.rdap_parse import (
    IPAddress,
    IPNetwork,
    ParsedNetwork,
    RdapFormatError,
    parse_ip_network,
)

Status = Literal["ok", "none", "error"]
BootstrapFetch = Callable[[str], Any]

IANA_BOOTSTRAP = {
    4: "https://data.iana.org/rdap/ipv4.json",
    6: "https://data.iana.org/rdap/ipv6.json",
}
RDAP_ACCEPT = "application/rdap+json, application/json;q=0.9"
_MIN_CACHED_PREFIX = {4: 8, 6: 16}
_HOST_LEVEL_KINDS = {"rate_limited", "server_error", "timeout", "unreachable", "bootstrap"}


class RdapError(Exception):
    """A lookup that produced no usable answer; `kind` is a stable word for callers."""

    def __init__(self, message: str, kind: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True)
class RdapResult:
    """The outcome of one lookup. Strings are cleaned plain text; escape them on output."""

    status: Status
    email: str | None = None
    network: str | None = None  # CIDR containing the address, else the registry handle
    name: str | None = None  # the network's name
    org: str | None = None  # the registrant's (else the abuse entity's) name
    error: str | None = None
    error_kind: str | None = None  # e.g. rate_limited, timeout, too_large, invalid
    source: str | None = None  # the URL asked
    looked_up_at: float = 0.0
    expires_at: float = 0.0  # cached until then; for errors, no new attempt before then


@dataclass
class _Failure:
    count: int
    until: float
    result: RdapResult


class _Backoff:
    """Doubling backoff per key (a registry URL or one address)."""

    def __init__(self, base_s: float, max_s: float) -> None:
        self._base_s, self._max_s = base_s, max_s
        self._failures: dict[str, _Failure] = {}

    def active(self, key: str, now: float) -> RdapResult | None:
        failure = self._failures.get(key)
        return failure.result if failure and failure.until > now else None

    def fail(self, key: str, now: float, exc: RdapError, result: RdapResult) -> RdapResult:
        count = self._failures[key].count + 1 if key in self._failures else 1
        delay = min(self._base_s * 2 ** min(count - 1, 30), self._max_s)
        until = now + max(delay, exc.retry_after or 0.0)
        result = replace(result, expires_at=until)
        self._failures[key] = _Failure(count, until, result)
        return result

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass(frozen=True)
class _Entry:
    result: RdapResult
    expires_at: float


class _NetworkCache:
    """Results keyed by network; a lookup tries each cached prefix length, longest first."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: dict[tuple[int, int, int], _Entry] = {}
        self._prefixes: list[tuple[int, int]] = []  # (version, prefix length), longest first

    def get(self, address: IPAddress, now: float) -> RdapResult | None:
        for version, length in self._prefixes:
            if version == address.version:
                key = (version, length, int(address) >> (address.max_prefixlen - length))
                entry = self._entries.get(key)
                if entry and entry.expires_at > now:
                    return entry.result
        return None

    def put(self, network: IPNetwork, result: RdapResult) -> None:
        shift = network.max_prefixlen - network.prefixlen
        key = (network.version, network.prefixlen, int(network.network_address) >> shift)
        self._entries.pop(key, None)  # re-insert so eviction order is by age
        self._entries[key] = _Entry(result, result.expires_at)
        if key[:2] not in self._prefixes:
            self._prefixes = sorted({*self._prefixes, key[:2]}, key=lambda p: -p[1])
        while len(self._entries) > self._max_entries:
            del self._entries[next(iter(self._entries))]


def _bootstrap_services(doc: object, version: int) -> list[tuple[IPNetwork, str]]:
    """(prefix, base URL) pairs from an IANA bootstrap file, https preferred."""
    services = doc.get("services") if isinstance(doc, dict) else None
    pairs: list[tuple[IPNetwork, str]] = []
    for service in services if isinstance(services, list) else []:
        if not (isinstance(service, list) and len(service) >= 2):
            continue
        prefixes, urls = service[0], service[1]
        urls = [u for u in urls if isinstance(u, str)] if isinstance(urls, list) else []
        url = next((u for u in urls if u.startswith("https://")), None)
        url = url or next((u for u in urls if u.startswith("http://")), None)
        for prefix in prefixes if (url and isinstance(prefixes, list)) else []:
            try:
                network = ipaddress.ip_network(prefix, strict=False)
            except (TypeError, ValueError):
                continue
            if network.version == version:
                pairs.append((network, url))  # type: ignore[arg-type]
    return pairs


class _Bootstrap:
    """Finds the registry for an address from the IANA files, fetched lazily."""

    def __init__(self, fetch_json: BootstrapFetch, clock: Callable[[], float]) -> None:
        self._fetch_json, self._clock = fetch_json, clock
        self._lock = threading.Lock()
        self._tables: dict[int, tuple[float, list[tuple[IPNetwork, str]]]] = {}

    def registry_for(self, address: IPAddress) -> str:
        candidates = [(n, u) for n, u in self._table(address.version) if address in n]
        if not candidates:
            raise RdapError(f"no RDAP registry listed for {address}", "no_registry")
        return max(candidates, key=lambda pair: pair[0].prefixlen)[1]

    def _table(self, version: int) -> list[tuple[IPNetwork, str]]:
        with self._lock:  # one fetch per file, however many threads ask at once
            fetched = self._tables.get(version)
            if fetched and fetched[0] > self._clock():
                return fetched[1]
            try:
                table = _bootstrap_services(self._fetch_json(IANA_BOOTSTRAP[version]), version)
            except (FetchError, RdapError, ValueError) as exc:
                raise RdapError(f"RDAP bootstrap unavailable: {exc}", "bootstrap") from exc
            if not table:
                raise RdapError("RDAP bootstrap file lists no registries", "bootstrap")
            self._tables[version] = (self._clock() + 86400, table)
            return table


class RdapClient:
    """Abuse contacts by RDAP, cached per network; see the module docstring."""

    def __init__(
        self,
        base_url: str | None,
        *,
        timeout_s: float = 10.0,
        max_bytes: int = 1_000_000,
        max_depth: int = 16,
        max_entities: int = 1000,
        cache_ttl_s: float = 86400.0,
        negative_ttl_s: float = 3600.0,
        error_backoff_s: float = 60.0,
        max_backoff_s: float = 3600.0,
        max_cache_entries: int = 100_000,
        allow_example_domains: bool = False,
        clock: Callable[[], float] = time.time,
        bootstrap_fetch: BootstrapFetch | None = None,
    ) -> None:
        if base_url is not None and not base_url.startswith(("http://", "https://")):
            raise ValueError(f"RDAP base URL must be http(s): {base_url!r}")
        self._base_url = base_url
        self._timeout_s, self._max_bytes = timeout_s, max_bytes
        self._max_depth, self._max_entities = max_depth, max_entities
        self._ttl_s, self._negative_ttl_s = cache_ttl_s, negative_ttl_s
        self._allow_example_domains = allow_example_domains
        self._clock = clock
        self._lock = threading.Lock()
        self._cache = _NetworkCache(max_cache_entries)
        self._backoff = _Backoff(error_backoff_s, max_backoff_s)
        self._bootstrap = _Bootstrap(bootstrap_fetch or self._fetch_json, clock)

    def abuse_contact(self, ip: str) -> RdapResult:
        """The abuse contact for `ip`; never raises (see RdapResult.status)."""
        now = self._clock()
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return RdapResult(
                "error",
                error="not an IP address",
                error_kind="invalid_ip",
                looked_up_at=now,
                expires_at=now,
            )
        kind = classify(str(address))
        if self._base_url is None and kind not in (None, "documentation"):
            # No public registry holds loopback, private or reserved space: asking the
            # IANA bootstrap would only send traffic off the machine for nothing.
            # (Documentation ranges stay lookable: tests stand them in for public space.)
            reason = f"{kind} address: no public registry holds it"
            return RdapResult("none", error=reason, looked_up_at=now, expires_at=now)
        with self._lock:
            known = self._cache.get(address, now) or self._backoff.active(str(address), now)
        return known or self._look_up(address, now)

    def _look_up(self, address: IPAddress, now: float) -> RdapResult:
        try:
            base = self._base_url or self._bootstrap.registry_for(address)
        except RdapError as exc:
            return self._failed("bootstrap", str(address), exc, None, now)
        url = f"{base.rstrip('/')}/ip/{address}"
        with self._lock:
            blocked = self._backoff.active(base, now)
        if blocked:
            return replace(blocked, source=url)
        try:
            parsed = self._query(url)
        except RdapError as exc:
            return self._failed(base, str(address), exc, url, now)
        with self._lock:
            self._backoff.clear(base)
        return self._store(address, parsed, url, now)

    def _query(self, url: str) -> ParsedNetwork | None:
        """The parsed answer, None for 404 (no record), or RdapError."""
        try:
            body = fetch(
                url, timeout_s=self._timeout_s, max_bytes=self._max_bytes, accept=RDAP_ACCEPT
            )
        except HttpStatusError as exc:
            if exc.status == 404:
                return None
            raise RdapError(str(exc), exc.kind, exc.retry_after) from exc
        except FetchError as exc:
            raise RdapError(str(exc), exc.kind) from exc
        try:
            return parse_ip_network(
                self._decode(body),
                max_depth=self._max_depth,
                max_entities=self._max_entities,
                allow_example_domains=self._allow_example_domains,
            )
        except RdapFormatError as exc:
            raise RdapError(f"not an RDAP object: {exc}", "invalid") from exc

    @staticmethod
    def _decode(body: bytes) -> object:
        try:
            return json.loads(body)
        except RecursionError as exc:
            raise RdapError("invalid JSON: nested too deeply", "invalid") from exc
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise RdapError(f"invalid JSON: {str(exc)[:200]}", "invalid") from exc

    def _fetch_json(self, url: str) -> object:
        body = fetch(url, timeout_s=self._timeout_s, max_bytes=self._max_bytes)
        return self._decode(body)

    def _failed(
        self, base: str, ip: str, exc: RdapError, url: str | None, now: float
    ) -> RdapResult:
        result = RdapResult(
            "error", error=str(exc), error_kind=exc.kind, source=url, looked_up_at=now
        )
        # Server trouble backs off the whole registry; a bad answer only this address.
        key = base if exc.kind in _HOST_LEVEL_KINDS else ip
        with self._lock:
            return self._backoff.fail(key, now, exc, result)

    def _store(
        self, address: IPAddress, parsed: ParsedNetwork | None, url: str, now: float
    ) -> RdapResult:
        ok = parsed is not None and parsed.email is not None
        answered = _answer_network(address, parsed)
        result = RdapResult(
            "ok" if ok else "none",
            email=parsed.email if parsed else None,
            network=str(answered) if answered else (parsed.handle if parsed else None),
            name=parsed.name if parsed else None,
            org=parsed.org if parsed else None,
            error=None if parsed else "no RDAP record for this address (404)",
            source=url,
            looked_up_at=now,
            expires_at=now + (self._ttl_s if ok else self._negative_ttl_s),
        )
        too_broad = answered and answered.prefixlen < _MIN_CACHED_PREFIX[answered.version]
        cached = ipaddress.ip_network(address) if not answered or too_broad else answered
        with self._lock:
            self._cache.put(cached, result)
        return result


def _answer_network(address: IPAddress, parsed: ParsedNetwork | None) -> IPNetwork | None:
    """The answer's network holding `address`; None if it names none that does."""
    for network in parsed.networks if parsed else ():
        if network.version == address.version and address in network:
            return network
    return None
