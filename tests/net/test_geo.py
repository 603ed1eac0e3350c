"""GeoLookup against generated .mmdb files (docs/hazards.md O-04, A-01)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from crawler.errors import UsageError
from crawler.net.geo import GeoError, GeoInfo, GeoLookup
from tests.support.mmdb import write_asn_db, write_country_db, write_truncated_copy

COUNTRIES = {"203.0.113.0/24": "NL", "198.51.100.0/24": "us", "2001:db8::/32": "DE"}
ASNS = {
    "203.0.113.0/24": (64500, "Example Hosting"),
    "2001:db8::/32": (64501, "Example V6 Networks"),
}


@pytest.fixture
def dbs(tmp_path: Path) -> tuple[Path, Path]:
    country = write_country_db(tmp_path / "country.mmdb", COUNTRIES, build_epoch=1_700_000_000)
    asn = write_asn_db(tmp_path / "asn.mmdb", ASNS, build_epoch=1_700_000_001)
    return country, asn


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.7", GeoInfo("NL", 64500, "Example Hosting")),
        ("2001:db8::7", GeoInfo("DE", 64501, "Example V6 Networks")),
        ("2001:0DB8:0:0::7", GeoInfo("DE", 64501, "Example V6 Networks")),
        ("198.51.100.9", GeoInfo("US", None, None)),
        ("192.0.2.1", GeoInfo()),
        ("2a00:1450::1", GeoInfo()),
    ],
)
def test_lookup(dbs: tuple[Path, Path], ip: str, expected: GeoInfo) -> None:
    assert GeoLookup(*dbs).lookup(ip) == expected


def test_build_epochs_are_exposed(dbs: tuple[Path, Path]) -> None:
    geo = GeoLookup(*dbs)
    assert (geo.country_build_epoch, geo.asn_build_epoch) == (1_700_000_000, 1_700_000_001)


def test_unset_paths_give_none(dbs: tuple[Path, Path]) -> None:
    assert GeoLookup(None, None).lookup("203.0.113.7") == GeoInfo()
    assert GeoLookup(dbs[0], None).lookup("203.0.113.7") == GeoInfo("NL", None, None)
    assert GeoLookup(None, dbs[1]).lookup("203.0.113.7") == GeoInfo(None, 64500, "Example Hosting")
    assert GeoLookup(None, None).country_build_epoch is None


def test_not_an_ip_is_a_value_error(dbs: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError):
        GeoLookup(*dbs).lookup("example.net")


@pytest.mark.parametrize(
    ("org", "expected"),
    [
        ("Evil\r\nBcc: victim@example.net", "Evil Bcc: victim@example.net"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # escaped where rendered
        ("A\x00B\u202eC\u200bD", "A B C D"),
        ("x" * 1_000_000, "x" * 200),
        ("   ", None),
    ],
)
def test_hostile_org_strings(tmp_path: Path, org: str, expected: str | None) -> None:
    asn = write_asn_db(tmp_path / "asn.mmdb", {"203.0.113.0/24": (64500, org)})
    assert GeoLookup(None, asn).lookup("203.0.113.1").as_org == expected


@pytest.mark.parametrize(
    "record",
    [
        {"country": {"iso_code": "NLD"}},
        {"country": {"iso_code": "N1"}},
        {"country": {"iso_code": "ÑL"}},
        {"country": {"iso_code": 31}},
        {"country": "NL"},
        {"registered_country": {"iso_code": "NL"}},
        ["NL"],
    ],
)
def test_hostile_country_records(tmp_path: Path, record: object) -> None:
    country = write_country_db(tmp_path / "c.mmdb", {"203.0.113.0/24": record})
    assert GeoLookup(country, None).lookup("203.0.113.1").country is None


@pytest.mark.parametrize(
    "record",
    [
        {"autonomous_system_number": "64500"},
        {"autonomous_system_number": 0},
        {"autonomous_system_number": True},
        {"autonomous_system_number": 2**40},
        {"autonomous_system_organization": ["Example"]},
    ],
)
def test_hostile_asn_records(tmp_path: Path, record: dict[str, object]) -> None:
    asn = write_asn_db(tmp_path / "a.mmdb", {"203.0.113.0/24": record})
    assert GeoLookup(None, asn).lookup("203.0.113.1") == GeoInfo()


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.95])
def test_truncated_file_fails_naming_it(
    dbs: tuple[Path, Path], tmp_path: Path, keep: float
) -> None:
    broken = write_truncated_copy(dbs[0], tmp_path / "broken.mmdb", keep)
    with pytest.raises(GeoError, match="broken.mmdb"):
        GeoLookup(broken, dbs[1])


def test_missing_or_foreign_file_fails(tmp_path: Path) -> None:
    with pytest.raises(GeoError, match="absent.mmdb"):
        GeoLookup(None, tmp_path / "absent.mmdb")
    junk = tmp_path / "junk.mmdb"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(UsageError, match="junk.mmdb"):  # GeoError is a usage error: exit 2
        GeoLookup(junk, None)


def _replace_atomically(path: Path, networks: dict[str, object], epoch: int) -> None:
    staging = path.with_suffix(".tmp")
    write_country_db(staging, networks, build_epoch=epoch)
    os.replace(staging, path)


def test_reload_if_changed(dbs: tuple[Path, Path]) -> None:
    geo = GeoLookup(*dbs)
    assert geo.reload_if_changed() is False
    _replace_atomically(dbs[0], {"203.0.113.0/24": "FR"}, 1_800_000_000)
    assert geo.lookup("203.0.113.7").country == "NL"  # no reopen until asked
    assert geo.reload_if_changed() is True
    assert geo.lookup("203.0.113.7") == GeoInfo("FR", 64500, "Example Hosting")
    assert geo.country_build_epoch == 1_800_000_000


def test_broken_replacement_keeps_old_database(dbs: tuple[Path, Path], tmp_path: Path) -> None:
    geo = GeoLookup(*dbs)
    staging = write_truncated_copy(dbs[0], tmp_path / "partial.mmdb")
    os.replace(staging, dbs[0])
    with pytest.raises(GeoError, match="country.mmdb"):
        geo.reload_if_changed()
    assert geo.lookup("203.0.113.7").country == "NL"
    _replace_atomically(dbs[0], {"203.0.113.0/24": "BE"}, 1_800_000_000)
    assert geo.reload_if_changed() is True
    assert geo.lookup("203.0.113.7").country == "BE"


def test_swap_under_concurrent_lookups(dbs: tuple[Path, Path]) -> None:
    geo = GeoLookup(*dbs)
    stop = threading.Event()
    seen: set[str | None] = set()
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            while not stop.is_set():
                seen.add(geo.lookup("203.0.113.7").country)
        except BaseException as exc:  # the test reports any exception from a worker
            errors.append(exc)

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for worker in workers:
        worker.start()
    for round_, code in enumerate(["FR", "BE", "NL", "FR", "DE"] * 4):
        _replace_atomically(dbs[0], {"203.0.113.0/24": code}, 1_800_000_000 + round_)
        assert geo.reload_if_changed() is True
    stop.set()
    for worker in workers:
        worker.join(timeout=10)
    assert errors == []
    assert geo.lookup("203.0.113.7").country == "DE"
    assert seen <= {"NL", "FR", "BE", "DE"} and len(seen) > 1
