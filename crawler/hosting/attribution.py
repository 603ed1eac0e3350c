"""Hosting attribution: who serves a (host, address) pair and whom to tell about it.

Two steps, because they cost very different amounts:

- `Attributor.locate(host, ip)` is offline and fast: registered domain (the bundled
  Public Suffix List, never fetched), country and ASN from the `.mmdb` files. Page and
  media stores call it for every new host.
- `Attributor.enrich(db, host_id)` asks RDAP for the abuse contact. It does network I/O,
  so it never runs inside a store transaction nor on the reactor: the store pipeline
  hands new hosts to a background thread, and `takedown hosts refresh` picks up whatever
  is still pending. Answers are cached per network in the `rdap_cache` table with the
  client's TTL, so one network costs one request across runs and processes.

Settings read (from a `crawler.config.Settings` or any object with the same attributes):
`geoip_country`, `geoip_asn` (`TAKEDOWN_GEOIP_COUNTRY`/`_ASN`) and `rdap_url`
(`TAKEDOWN_RDAP_URL`).

Outcome on the host row (docs/hazards.md E-06, E-07; never fatal, never dropped):

- `rdap_status` "pending" until looked up, then "ok" (contact from RDAP,
  `abuse_contact_source = "rdap"`), "none" (RDAP named no usable contact) or "error"
  (`rdap_error` says why; retried after the backoff the client chose).
- Without an RDAP contact, `abuse@<registered domain>` is filled in with
  `abuse_contact_source = "guess"`, so the item waits visibly with a contact to check.
  Hosts named by a bare IP address get no guess: there is no domain to write to.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import Select, select, update

from crawler.db.models import Host, RdapCache
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.db.upsert import insert_for
from crawler.hosting.abuse_address import guess_for
from crawler.net.geo import GeoError, GeoInfo, GeoLookup
from crawler.net.rdap import RdapClient, RdapResult, Status
from crawler.net.urls import InvalidURL, canonical_host, registered_domain

logger = logging.getLogger(__name__)

PENDING = "pending"
_ERROR_MAX_LEN = 500


class AttributionSettings(Protocol):
    """What the attributor reads; `crawler.config.Settings` has all of it."""

    @property
    def geoip_country(self) -> Path | None: ...
    @property
    def geoip_asn(self) -> Path | None: ...
    @property
    def rdap_url(self) -> str | None: ...


@dataclass(frozen=True)
class HostFacts:
    """The offline part of a host's attribution, ready to insert."""

    host: str
    ip: str  # "" when the address is unknown (the column is part of a unique key)
    registered_domain: str | None
    country: str | None = None
    asn: int | None = None
    as_org: str | None = None


@dataclass(frozen=True)
class Contact:
    """The abuse contact decided for one host."""

    rdap_status: str
    abuse_contact: str | None
    source: str | None  # "rdap" | "guess" | None
    error: str | None = None


def guess_contact(domain: str | None) -> str | None:
    """`abuse@<domain>` (RFC 2142), or None when there is no domain to write to."""
    return guess_for(domain)  # the one rule of what an abuse address is


def decide_contact(result: RdapResult, domain: str | None) -> Contact:
    """Turn an RDAP outcome into the host's contact; never leaves a host without one
    when a domain exists (E-07)."""
    if result.status == "ok" and result.email:
        return Contact("ok", result.email, "rdap")
    guess = guess_contact(domain)
    source = "guess" if guess else None
    error = (result.error or "")[:_ERROR_MAX_LEN] or None
    status = "error" if result.status == "error" else "none"
    return Contact(status, guess, source, error)


def _host_name(host: str) -> str:
    try:
        return canonical_host(host)
    except (InvalidURL, ValueError):
        return host.strip().lower()


def _domain(host: str) -> str | None:
    try:
        return registered_domain(host)
    except (InvalidURL, ValueError):
        return None


class Attributor:
    """Registered domain, GeoIP and RDAP abuse contact for hosts; thread-safe."""

    def __init__(
        self,
        settings: AttributionSettings,
        *,
        geo: GeoLookup | None = None,
        rdap: RdapClient | None = None,
    ) -> None:
        # Opening the .mmdb files here fails fast on a broken file (GeoError, exit 2).
        self._geo = geo or GeoLookup(settings.geoip_country, settings.geoip_asn)
        self._rdap = rdap or RdapClient(settings.rdap_url)

    def locate(self, host: str, ip: str | None) -> HostFacts:
        """Offline facts for (host, ip): no network, no database."""
        name = _host_name(host)
        geo = self._geo_info(ip) if ip else GeoInfo()
        return HostFacts(name, ip or "", _domain(name), geo.country, geo.asn, geo.as_org)

    def _geo_info(self, ip: str) -> GeoInfo:
        try:
            return self._geo.lookup(ip)
        except ValueError:  # not an address: nothing to look up
            return GeoInfo()
        except GeoError as exc:
            # A database that breaks mid-run must not stop stores; the host can be
            # re-located by `takedown hosts refresh` once the file is fixed.
            logger.error("GeoIP lookup failed for %s: %s", ip, exc)
            return GeoInfo()

    def enrich(self, db: Database, host_id: int) -> Contact | None:
        """Look up and record the abuse contact of one host; None if the host is gone."""
        with db.read_session() as session:
            row = session.get(Host, host_id)
            if row is None:
                return None
            ip, domain = row.ip, row.registered_domain
        result = self._cached(db, ip) if ip else None
        if result is None and ip:
            result = self._rdap.abuse_contact(ip)  # network I/O: outside any transaction
            self._remember(db, ip, result)
        if result is None:
            result = RdapResult("none", error="no address recorded for this host")
        contact = decide_contact(result, domain)
        self._apply(db, host_id, contact)
        return contact

    def enrich_pending(self, db: Database, *, limit: int = 1000) -> dict[str, int]:
        """Enrich hosts never looked up or whose last error has expired; counts by status."""
        with db.read_session() as session:
            ids = list(session.scalars(_pending_hosts().limit(limit)))
        counts: dict[str, int] = {}
        for host_id in ids:
            contact = self.enrich(db, host_id)
            if contact:
                counts[contact.rdap_status] = counts.get(contact.rdap_status, 0) + 1
        return counts

    def _cached(self, db: Database, ip: str) -> RdapResult | None:
        keys = _network_keys(ip)
        if not keys:
            return None
        with db.read_session() as session:
            rows = session.scalars(
                select(RdapCache).where(
                    RdapCache.network.in_(keys), RdapCache.expires_at > utcnow()
                )
            ).all()
        if not rows:
            return None
        best = max(rows, key=lambda r: ipaddress.ip_network(r.network).prefixlen)
        status: Status = "ok" if best.status == "ok" else "none"
        if best.status not in ("ok", "none"):
            status = "error"
        return RdapResult(status, email=best.abuse_contact, org=best.org, error=best.error)

    def _remember(self, db: Database, ip: str, result: RdapResult) -> None:
        network = _cache_network(ip, result)
        values = {
            "network": network,
            "abuse_contact": result.email,
            "org": result.org,
            "status": result.status,
            "error": (result.error or "")[:_ERROR_MAX_LEN] or None,
            "looked_up_at": utcnow(),
            "expires_at": datetime.fromtimestamp(result.expires_at, UTC),
        }
        with db.session() as session:
            stmt = insert_for(session, RdapCache).values(**values)
            excluded = stmt.excluded
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["network"],
                    set_={k: getattr(excluded, k) for k in values if k != "network"},
                )
            )

    @staticmethod
    def _apply(db: Database, host_id: int, contact: Contact) -> None:
        values: dict[str, object] = {
            "rdap_status": contact.rdap_status,
            "rdap_error": contact.error,
            "looked_up_at": utcnow(),
        }
        # An RDAP error keeps a contact found earlier: a registry outage must not turn
        # a confirmed contact back into a guess.
        keep_earlier = contact.rdap_status == "error"
        with db.session() as session:
            host = session.get(Host, host_id)
            if host is None:
                return
            if not (keep_earlier and host.abuse_contact):
                values["abuse_contact"] = contact.abuse_contact
                values["abuse_contact_source"] = contact.source
            session.execute(update(Host).where(Host.id == host_id).values(**values))


def _pending_hosts() -> Select[int]:
    # "error" rows come back too: the cache's expiry decides whether a request is made.
    return (
        select(Host.id)
        .where((Host.rdap_status.is_(None)) | (Host.rdap_status.in_((PENDING, "error"))))
        .order_by(Host.id)
    )


def _network_keys(ip: str) -> list[str]:
    """Every CIDR that could hold `ip`, longest prefix first, as cache keys."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return []
    return [
        str(ipaddress.ip_network(f"{address}/{length}", strict=False))
        for length in range(address.max_prefixlen, -1, -1)
    ]


def _cache_network(ip: str, result: RdapResult) -> str:
    """The network an answer speaks for; errors and odd answers only for the address."""
    address = ipaddress.ip_address(ip)
    single = str(ipaddress.ip_network(address))
    if result.status == "error" or not result.network:
        return single
    try:
        network = ipaddress.ip_network(result.network, strict=False)
    except ValueError:  # a registry handle rather than a CIDR
        return single
    return str(network) if address in network else single
