"""Attribution: generated .mmdb files and a fake RDAP server on 127.0.0.1 (E-06, E-07)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.db.models import Host, RdapCache
from crawler.db.session import Database
from crawler.engine.storage import Storage
from crawler.hosting.attribution import Attributor, guess_contact
from crawler.items import PageItem
from crawler.net.rdap import RdapClient
from tests.support.mmdb import write_asn_db, write_country_db
from tests.support.rdap import FakeRdap, entity, ip_network, json_answer, raw_answer


def abuse(email: str) -> dict:
    return entity(["abuse"], email=email, fn="Abuse desk")


@dataclass(frozen=True)
class Cfg:
    geoip_country: Path | None
    geoip_asn: Path | None
    rdap_url: str | None


@pytest.fixture
def rdap() -> FakeRdap:
    with FakeRdap() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture
def cfg(tmp_path: Path, rdap: FakeRdap) -> Cfg:
    country = write_country_db(tmp_path / "c.mmdb", {"127.0.0.0/24": "NL", "127.0.1.0/24": "DE"})
    asn = write_asn_db(tmp_path / "a.mmdb", {"127.0.0.0/24": (64500, "Example Hosting")})
    return Cfg(country, asn, rdap.base_url)


def _attributor(cfg: Cfg) -> Attributor:
    # allow_example_domains: the fake answers use reserved names like the real tests do
    client = RdapClient(cfg.rdap_url, timeout_s=2, allow_example_domains=True)
    return Attributor(cfg, rdap=client)


def _store(db: Database, attributor: Attributor, host: str, ip: str) -> int:
    url = f"http://{host}/"
    page = PageItem(url=url, final_url=url, status=200, depth=0, ip=ip)
    return Storage(db, attributor).store_page(page).host_id


def _host(db: Database, host_id: int) -> Host:
    with db.read_session() as s:
        row = s.get(Host, host_id)
        assert row is not None
        return row


def test_locate_is_offline_geo_and_registered_domain(cfg: Cfg, db: Database) -> None:
    host_id = _store(db, _attributor(cfg), "img.cdn.example.co.uk", "127.0.0.7")
    host = _host(db, host_id)
    assert (host.registered_domain, host.country, host.asn, host.as_org) == (
        "example.co.uk", "NL", 64500, "Example Hosting",
    )  # fmt: skip
    assert host.rdap_status == "pending" and host.abuse_contact is None


def test_rdap_contact_cached_per_network_across_clients(
    cfg: Cfg, db: Database, rdap: FakeRdap
) -> None:
    answer = ip_network("127.0.0.0", "127.0.0.255", entities=[abuse("noc@hoster.net")])
    rdap.routes["127.0.0.7"] = json_answer(answer)
    first = _store(db, _attributor(cfg), "a.site.test", "127.0.0.7")
    contact = _attributor(cfg).enrich(db, first)
    assert contact is not None and contact.abuse_contact == "noc@hoster.net"
    host = _host(db, first)
    assert (host.abuse_contact, host.abuse_contact_source, host.rdap_status) == (
        "noc@hoster.net", "rdap", "ok",
    )  # fmt: skip
    # Another address in the same network, with a fresh client: answered from the table.
    second = _store(db, _attributor(cfg), "b.other.test", "127.0.0.9")
    assert _attributor(cfg).enrich(db, second).abuse_contact == "noc@hoster.net"  # type: ignore[union-attr]
    assert rdap.requests == ["/rdap/ip/127.0.0.7"]
    with db.read_session() as s:
        assert s.scalars(select(RdapCache.network)).all() == ["127.0.0.0/24"]


def test_no_rdap_contact_falls_back_to_a_marked_guess(
    cfg: Cfg, db: Database, rdap: FakeRdap
) -> None:
    rdap.routes["127.0.1.5"] = json_answer(ip_network("127.0.1.0", "127.0.1.255",
                                                      entities=[entity(["registrant"])]))  # fmt: skip
    host_id = _store(db, _attributor(cfg), "www.shady.test", "127.0.1.5")
    _attributor(cfg).enrich_pending(db)
    host = _host(db, host_id)
    assert (host.abuse_contact, host.abuse_contact_source, host.rdap_status) == (
        "abuse@shady.test", "guess", "none",
    )  # fmt: skip


@pytest.mark.parametrize(
    "handler",
    [raw_answer(b"boom", status=500), raw_answer(b"{not json"), raw_answer(b"slow", status=429)],
)
def test_rdap_errors_are_recorded_never_fatal(
    cfg: Cfg, db: Database, rdap: FakeRdap, handler: object
) -> None:
    rdap.routes["127.0.0.8"] = handler  # type: ignore[assignment]
    host_id = _store(db, _attributor(cfg), "x.site.test", "127.0.0.8")
    contact = _attributor(cfg).enrich(db, host_id)
    host = _host(db, host_id)
    assert contact is not None and host.rdap_status == "error" and host.rdap_error
    assert (host.abuse_contact, host.abuse_contact_source) == ("abuse@site.test", "guess")


def test_error_keeps_a_contact_found_earlier(cfg: Cfg, db: Database, rdap: FakeRdap) -> None:
    answer = ip_network("127.0.0.0", "127.0.0.255", entities=[abuse("noc@hoster.net")])
    rdap.routes["127.0.0.7"] = json_answer(answer)
    host_id = _store(db, _attributor(cfg), "a.site.test", "127.0.0.7")
    _attributor(cfg).enrich(db, host_id)
    with db.session() as s:
        s.execute(RdapCache.__table__.delete())
    rdap.routes["127.0.0.7"] = raw_answer(b"down", status=503)
    _attributor(cfg).enrich(db, host_id)
    host = _host(db, host_id)
    assert (host.rdap_status, host.abuse_contact, host.abuse_contact_source) == (
        "error", "noc@hoster.net", "rdap",
    )  # fmt: skip


def test_ip_literal_host_gets_no_guess() -> None:
    assert guess_contact("127.0.0.7") is None and guess_contact(None) is None
    assert guess_contact("example.net") == "abuse@example.net"
