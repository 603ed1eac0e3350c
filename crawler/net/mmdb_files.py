"""Write small MaxMind-format `.mmdb` files: GeoIP data for the demo and the tests.

GeoIP databases cannot be downloaded here; the demo and the tests generate their own:

    write_country_db(path, {"203.0.113.0/24": "NL", "2001:db8::/32": "DE"})
    write_asn_db(path, {"203.0.113.0/24": (64500, "Example Hosting")})
    write_truncated_copy(source, dest)

Databases are IPv6 trees with IPv4 networks mapped into `::/96`, like MaxMind's own
files, so IPv4 and IPv6 keys may be mixed. Record values are passed through unchecked,
so a test may write hostile ones (an `as_org` with CR/LF, a three-letter country).
Each writer returns the path it wrote; `build_epoch` fixes the metadata build time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

__all__ = ["write_asn_db", "write_country_db", "write_truncated_copy"]


class _Writer(MMDBWriter):
    """mmdb_writer stamps `build_epoch` with the current second; tests need to set it."""

    def __init__(self, database_type: str, build_epoch: int | None) -> None:
        super().__init__(ip_version=6, ipv4_compatible=True, database_type=database_type)
        self._epoch = int(time.time()) if build_epoch is None else build_epoch

    def _build_meta(self) -> dict[str, Any]:
        return {**super()._build_meta(), "build_epoch": self._epoch}


def _write(
    path: Path, database_type: str, records: Mapping[str, Any], build_epoch: int | None
) -> Path:
    writer = _Writer(database_type, build_epoch)
    for cidr, record in records.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


def write_country_db(
    path: Path, networks: Mapping[str, Any], *, build_epoch: int | None = None
) -> Path:
    """Write a GeoLite2-Country-layout file: {cidr: iso_code} -> `country.iso_code`.

    A value that is a dict is written as the whole record instead (for odd layouts).
    """
    records = {
        cidr: value if isinstance(value, dict) else {"country": {"iso_code": value}}
        for cidr, value in networks.items()
    }
    return _write(Path(path), "GeoLite2-Country", records, build_epoch)


def write_asn_db(
    path: Path, networks: Mapping[str, Any], *, build_epoch: int | None = None
) -> Path:
    """Write a GeoLite2-ASN-layout file: {cidr: (asn, organisation)}.

    A value that is a dict is written as the whole record instead (for odd layouts).
    """
    records = {
        cidr: value
        if isinstance(value, dict)
        else {"autonomous_system_number": value[0], "autonomous_system_organization": value[1]}
        for cidr, value in networks.items()
    }
    return _write(Path(path), "GeoLite2-ASN", records, build_epoch)


def write_truncated_copy(source: Path, dest: Path, keep: float = 0.5) -> Path:
    """Copy the first `keep` fraction of `source` to `dest`, as an interrupted download."""
    data = Path(source).read_bytes()
    Path(dest).write_bytes(data[: int(len(data) * keep)])
    return Path(dest)
