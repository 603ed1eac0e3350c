"""Country and autonomous system of an IP address, from MaxMind-format `.mmdb` files.

Settings (read by `crawler.config`, passed here as plain paths):

- `TAKEDOWN_GEOIP_COUNTRY`: GeoLite2-Country layout; `country.iso_code` gives `country`.
  Unset: `country` is None.
- `TAKEDOWN_GEOIP_ASN`: GeoLite2-ASN layout; `autonomous_system_number` and
  `autonomous_system_organization` give `asn` and `as_org`. Unset: both None.

Behaviour on hostile or broken input (docs/hazards.md O-04, A-01):

- A missing, unreadable, corrupt or truncated file at start raises `GeoError` naming the
  file: a broken database must stop the run, never turn every host into "unknown".
- Operators replace a database by atomic rename. `reload_if_changed()` notices a new
  inode, size or mtime and reopens; if the new file is broken, the old one stays in
  service and `GeoError` says so. Lookups in flight keep the reader they started with.
- Values are treated as hostile text: `country` must be two ASCII letters (upper-cased),
  `asn` an integer in 1..2**32-1, `as_org` one line of at most 200 characters without
  control characters. Anything else becomes None. Markup is left as text for the
  renderer to escape.

Lookups are thread-safe: they read one immutable snapshot of the open readers.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from crawler.errors import UsageError
from crawler.net.sanitize import clean_text

logger = logging.getLogger(__name__)

AS_ORG_MAX_LEN = 200
_MAX_ASN = 2**32 - 1


class GeoError(UsageError):
    """A GeoIP database that cannot be used; the message names the file."""


@dataclass(frozen=True)
class GeoInfo:
    """Where an address is hosted. Every field is None when unknown or not configured."""

    country: str | None = None
    asn: int | None = None
    as_org: str | None = None


@dataclass(frozen=True)
class _OpenDb:
    """One open reader and the file identity it was opened from."""

    path: Path
    reader: Any
    identity: tuple[int, int, int, int]
    build_epoch: int | None


def _identity(path: Path) -> tuple[int, int, int, int]:
    # The reader in service keeps its file mapped, so its inode cannot be reused by a
    # replacement: a new inode number reliably means a new file.
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _probe(reader: Any) -> None:
    """Walk the tree once so a file cut short in its data section fails now, not later."""
    version = reader.metadata().ip_version
    for probe in ("1.1.1.1", "203.0.113.1") + (("2001:db8::1",) if version == 6 else ()):
        reader.get(probe)


def open_db(path: Path, kind: str) -> _OpenDb:
    """Open and check one database; raise GeoError naming the file if it is unusable."""
    try:
        identity = _identity(path)
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
        _probe(reader)
        epoch = reader.metadata().build_epoch
    except (OSError, ValueError, InvalidDatabaseError) as exc:
        raise GeoError(f"GeoIP {kind} database {path} is unusable: {exc}") from exc
    build_epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None
    return _OpenDb(path, reader, identity, build_epoch)


def _country(record: object) -> str | None:
    country = record.get("country") if isinstance(record, dict) else None
    code = country.get("iso_code") if isinstance(country, dict) else None
    if isinstance(code, str) and len(code) == 2 and code.isascii() and code.isalpha():
        return code.upper()
    return None


def _asn(record: object) -> tuple[int | None, str | None]:
    if not isinstance(record, dict):
        return None, None
    number = record.get("autonomous_system_number")
    valid = isinstance(number, int) and not isinstance(number, bool) and 0 < number <= _MAX_ASN
    org = clean_text(record.get("autonomous_system_organization"), AS_ORG_MAX_LEN)
    return (number if valid else None), org


class GeoLookup:
    """Country and ASN lookups over up to two `.mmdb` files (either may be None)."""

    def __init__(self, country_path: Path | None, asn_path: Path | None) -> None:
        self._lock = threading.Lock()  # serialises reloads, never lookups
        self._country = open_db(country_path, "country") if country_path else None
        self._asn = open_db(asn_path, "ASN") if asn_path else None

    @property
    def country_build_epoch(self) -> int | None:
        """Build time (Unix seconds) of the country database in service, if any."""
        return self._country.build_epoch if self._country else None

    @property
    def asn_build_epoch(self) -> int | None:
        """Build time (Unix seconds) of the ASN database in service, if any."""
        return self._asn.build_epoch if self._asn else None

    def lookup(self, ip: str) -> GeoInfo:
        """Country and ASN of `ip`. Raises ValueError if `ip` is not an IP address."""
        address = str(ipaddress.ip_address(ip))
        country_db, asn_db = self._country, self._asn  # one snapshot per lookup
        country = _country(self._get(country_db, address)) if country_db else None
        asn, as_org = _asn(self._get(asn_db, address)) if asn_db else (None, None)
        return GeoInfo(country=country, asn=asn, as_org=as_org)

    @staticmethod
    def _get(db: _OpenDb, address: str) -> object:
        try:
            return db.reader.get(address)
        except (ValueError, InvalidDatabaseError) as exc:
            # An IPv6 address in an IPv4-only database has no answer, not an error.
            if ":" in address and db.reader.metadata().ip_version == 4:
                return None
            raise GeoError(f"GeoIP database {db.path} failed on a lookup: {exc}") from exc

    def reload_if_changed(self) -> bool:
        """Reopen any database whose file was replaced; True if one was reopened.

        Raises GeoError if a replaced file is unusable; the previous database then stays
        in service, so lookups go on with the older data rather than with none.
        """
        with self._lock:
            before = (self._country, self._asn)
            # Assigned one at a time so a good new file is kept when the other is broken.
            self._country = self._reopened(self._country, "country")
            self._asn = self._reopened(self._asn, "ASN")
            return self._country is not before[0] or self._asn is not before[1]

    @staticmethod
    def _reopened(db: _OpenDb | None, kind: str) -> _OpenDb | None:
        if db is None:
            return None
        try:
            if _identity(db.path) == db.identity:
                return db
        except OSError as exc:
            raise GeoError(f"GeoIP {kind} database {db.path} vanished: {exc}") from exc
        fresh = open_db(db.path, kind)
        logger.info("reopened GeoIP %s database %s (build %s)", kind, db.path, fresh.build_epoch)
        # The old reader is not closed: lookups in flight may still hold it; it is
        # released when the last of them drops its reference.
        return fresh
