"""RdapClient against a fake RDAP server on loopback, one mode per case (docs/hazards.md E-06, E-07)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from crawler.net.rdap import RdapClient
from crawler.net.rdap_parse import valid_email
from tests.support.rdap import (
    FakeRdap,
    entity,
    ip_network,
    json_answer,
    raw_answer,
    send,
    stall_answer,
    stream_answer,
)

IP = "203.0.113.7"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rdap() -> Iterator[FakeRdap]:
    with FakeRdap() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client(server: FakeRdap, clock: FakeClock, **kwargs: Any) -> RdapClient:
    return RdapClient(server.base_url, clock=clock, timeout_s=kwargs.pop("timeout_s", 2), **kwargs)


def test_nested_abuse_entity(rdap: FakeRdap, clock: FakeClock) -> None:
    abuse_poc = entity(["abuse"], "Abuse@Hoster-One.NET", "Abuse Desk", handle="ABUSE-1")
    org = entity(["registrant"], fn="Hoster One B.V.", entities=[abuse_poc], handle="ORG-1")
    rdap.routes[IP] = json_answer(ip_network(entities=[org]))
    result = client(rdap, clock).abuse_contact(IP)
    assert (result.status, result.email) == ("ok", "Abuse@hoster-one.net")
    assert (result.network, result.name, result.org) == (
        "203.0.113.0/24",
        "EXAMPLE-HOSTING-NET",
        "Hoster One B.V.",
    )
    assert result.source == f"{rdap.base_url}/ip/{IP}"
    assert (result.looked_up_at, result.expires_at) == (clock.now, clock.now + 86400)


def test_top_level_abuse_entity(rdap: FakeRdap, clock: FakeClock) -> None:
    doc = ip_network(
        entities=[entity(["technical"], "noc@hoster.net"), entity(["abuse"], "abuse@hoster.net")]
    )
    rdap.routes[IP] = json_answer(doc)
    assert client(rdap, clock).abuse_contact(IP).email == "abuse@hoster.net"


def test_no_abuse_entity_is_none_not_error(rdap: FakeRdap, clock: FakeClock) -> None:
    rdap.routes[IP] = json_answer(
        ip_network(entities=[entity(["registrant"], "owner@hoster.net", "Hoster")])
    )
    result = client(rdap, clock).abuse_contact(IP)
    assert (result.status, result.email, result.error, result.org) == ("none", None, None, "Hoster")
    assert result.expires_at == clock.now + 3600  # negative answers are kept shorter


@pytest.mark.parametrize(
    "email",
    [
        "REDACTED FOR PRIVACY",
        "redacted@redacted.invalid",
        "Please query the RDAP service of the registrar of record",
        "abuse@example.net",
        "not-disclosed@hoster.net",
    ],
)
def test_redacted_placeholders_are_ignored(rdap: FakeRdap, clock: FakeClock, email: str) -> None:
    doc = ip_network(
        entities=[entity(["abuse", "registrant"], email, "REDACTED FOR PRIVACY")],
        name="Not Disclosed",
    )
    rdap.routes[IP] = json_answer(doc)
    result = client(rdap, clock).abuse_contact(IP)
    assert (result.status, result.email, result.org, result.name) == ("none", None, None, None)


def test_script_and_crlf_in_fields(rdap: FakeRdap, clock: FakeClock) -> None:
    hostile = entity(
        ["abuse"], "abuse@hoster.net\r\nBcc: victim@hoster.net", "<script>alert(1)</script>\r\nX"
    )
    good = entity(["abuse"], "abuse@hoster.net", "<script>alert(2)</script>\r\nSubject: hi")
    doc = ip_network(entities=[hostile, good], name="NET\r\n<img src=x onerror=alert(3)>")
    rdap.routes[IP] = json_answer(doc)
    result = client(rdap, clock).abuse_contact(IP)
    assert result.email == "abuse@hoster.net"
    assert result.org == "<script>alert(2)</script> Subject: hi"  # one line; escaped where shown
    assert result.name == "NET <img src=x onerror=alert(3)>"
    for text in (result.org, result.name, result.network):
        assert text is not None and "\r" not in text and "\n" not in text


def test_several_abuse_entities_first_valid_wins(rdap: FakeRdap, clock: FakeClock) -> None:
    nested = entity(["registrant"], entities=[entity(["abuse"], "deep@hoster-two.net")])
    doc = ip_network(
        entities=[
            nested,
            entity(["abuse"], "two addresses@hoster.net"),
            entity(["abuse"], "first@hoster-one.net"),
            entity(["abuse"], "second@hoster-one.net"),
        ]
    )
    rdap.routes[IP] = json_answer(doc)
    # Breadth first: a top-level abuse entity beats a nested one, then document order.
    assert client(rdap, clock).abuse_contact(IP).email == "first@hoster-one.net"


def _chain(depth: int, leaf: dict[str, Any], fanout: int = 1) -> dict[str, Any]:
    """Entities that all claim the same handle, each repeating its child `fanout` times."""
    node = leaf
    for _ in range(depth):
        node = entity(["registrant"], fn="Loop Org", entities=[node] * fanout, handle="LOOP")
    return node


def test_cyclic_looking_nesting_is_bounded(rdap: FakeRdap, clock: FakeClock) -> None:
    rdap.routes["203.0.113.1"] = json_answer(
        ip_network(entities=[_chain(3, entity(["abuse"], "abuse@loop.net"), fanout=8)])
    )
    rdap.routes["203.0.114.1"] = json_answer(
        ip_network(
            "203.0.114.0",
            "203.0.114.255",
            entities=[_chain(40, entity(["abuse"], "abuse@deep.net"))],
        )
    )
    rdap.routes["203.0.115.1"] = raw_answer(
        b'{"entities":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    )
    rdap_client = client(rdap, clock)
    assert rdap_client.abuse_contact("203.0.113.1").email == "abuse@loop.net"
    deep = rdap_client.abuse_contact("203.0.114.1")
    assert (deep.status, deep.email) == ("none", None)  # beyond max_depth: not walked
    nested = rdap_client.abuse_contact("203.0.115.1")
    assert (nested.status, nested.error_kind) == ("error", "invalid")


@pytest.mark.parametrize("declare_length", [False, True])
def test_50_mb_body_stops_at_cap(rdap: FakeRdap, clock: FakeClock, declare_length: bool) -> None:
    rdap.routes[IP] = stream_answer(50_000_000, declare_length)
    started = time.monotonic()
    result = client(rdap, clock, timeout_s=10).abuse_contact(IP)
    assert time.monotonic() - started < 3
    assert (result.status, result.error_kind) == ("error", "too_large")
    assert result.error is not None and "response too large" in result.error


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe\x00garbage", b"", b"[1, 2, 3]", b'"ip network"', b"null"],
)
def test_invalid_json(rdap: FakeRdap, clock: FakeClock, body: bytes) -> None:
    rdap.routes[IP] = raw_answer(body)
    result = client(rdap, clock).abuse_contact(IP)
    assert (result.status, result.error_kind) == ("error", "invalid")


@pytest.mark.parametrize(
    "doc",
    [
        {"entities": "abuse@hoster.net"},
        {"entities": [5, None, "x", {"roles": "abuse"}, {"roles": [5, None]}]},
        {"entities": [{"roles": ["abuse"], "vcardArray": {"email": "a@hoster.net"}}]},
        {
            "entities": [
                {
                    "roles": ["abuse"],
                    "vcardArray": ["vcard", [["email", {}, "text", ["a@hoster.net"]]]],
                }
            ]
        },
        {"entities": [{"roles": ["abuse"], "vcardArray": ["vcard", "email"]}], "name": 5},
        {"startAddress": 5, "endAddress": ["x"], "cidr0_cidrs": [{"v4prefix": 1, "length": "24"}]},
        {"startAddress": "203.0.113.255", "endAddress": "203.0.113.0", "handle": {"x": 1}},
    ],
)
def test_wrong_types_never_crash(rdap: FakeRdap, clock: FakeClock, doc: dict[str, Any]) -> None:
    rdap.routes[IP] = json_answer(doc)
    result = client(rdap, clock).abuse_contact(IP)
    assert (result.status, result.email) == ("none", None)


def test_429_backs_off_the_registry(rdap: FakeRdap, clock: FakeClock) -> None:
    rdap.default = json_answer({"errorCode": 429}, status=429, headers={"Retry-After": "120"})
    rdap_client = client(rdap, clock)
    first = rdap_client.abuse_contact(IP)
    assert (first.status, first.error_kind, first.expires_at) == (
        "error",
        "rate_limited",
        clock.now + 120,
    )
    assert first.error is not None and "429" in first.error
    assert rdap_client.abuse_contact("198.51.100.1").status == "error"  # served from the backoff
    assert len(rdap.requests) == 1
    clock.now += 121
    rdap.default = json_answer(ip_network(entities=[entity(["abuse"], "abuse@hoster.net")]))
    assert rdap_client.abuse_contact(IP).email == "abuse@hoster.net"
    assert len(rdap.requests) == 2


def test_503_backoff_doubles(rdap: FakeRdap, clock: FakeClock) -> None:
    rdap.default = raw_answer(b"unavailable", status=503)
    rdap_client = client(rdap, clock)
    delays = []
    for _ in range(3):
        result = rdap_client.abuse_contact(IP)
        assert (result.status, result.error_kind) == ("error", "server_error")
        delays.append(result.expires_at - clock.now)
        clock.now = result.expires_at + 1
    assert delays == [60, 120, 240]
    assert len(rdap.requests) == 3


@pytest.mark.parametrize("trickle", [False, True])
def test_stall_times_out(rdap: FakeRdap, clock: FakeClock, trickle: bool) -> None:
    rdap.routes[IP] = stall_answer(rdap.release, trickle)
    started = time.monotonic()
    result = client(rdap, clock, timeout_s=0.5).abuse_contact(IP)
    assert time.monotonic() - started < 2
    assert (result.status, result.error_kind) == ("error", "timeout")


def test_cache_per_network(rdap: FakeRdap, clock: FakeClock) -> None:
    rdap.default = json_answer(ip_network(entities=[entity(["abuse"], "abuse@hoster.net")]))
    rdap_client = client(rdap, clock)
    for ip in ("203.0.113.7", "203.0.113.200", "203.0.113.0"):
        assert rdap_client.abuse_contact(ip).email == "abuse@hoster.net"
    assert len(rdap.requests) == 1
    rdap_client.abuse_contact("203.0.114.1")  # outside the answer's network: asked again
    assert len(rdap.requests) == 2


def test_cache_uses_cidr0_and_ipv6(rdap: FakeRdap, clock: FakeClock) -> None:
    doc = ip_network(
        "2001:db8::",
        "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        entities=[entity(["abuse"], "abuse@v6-hoster.net")],
        cidr0_cidrs=[{"v6prefix": "2001:db8::", "length": 32}],
    )
    rdap.default = json_answer(doc)
    rdap_client = client(rdap, clock)
    assert rdap_client.abuse_contact("2001:db8::1").network == "2001:db8::/32"
    assert rdap_client.abuse_contact("2001:db8:5::9").email == "abuse@v6-hoster.net"
    assert rdap.requests == ["/rdap/ip/2001:db8::1"]


def test_overbroad_network_is_cached_for_one_address(rdap: FakeRdap, clock: FakeClock) -> None:
    rdap.default = json_answer(
        ip_network("0.0.0.0", "255.255.255.255", entities=[entity(["abuse"], "a@iana-ish.net")])
    )
    rdap_client = client(rdap, clock)
    assert rdap_client.abuse_contact("203.0.113.1").network == "0.0.0.0/0"
    rdap_client.abuse_contact("203.0.113.1")
    rdap_client.abuse_contact("198.51.100.1")
    assert len(rdap.requests) == 2


def test_ttl_expiry(rdap: FakeRdap, clock: FakeClock) -> None:
    rdap.default = json_answer(ip_network(entities=[entity(["abuse"], "abuse@hoster.net")]))
    rdap_client = client(rdap, clock, cache_ttl_s=100, negative_ttl_s=10)
    rdap_client.abuse_contact(IP)
    clock.now += 99
    rdap_client.abuse_contact(IP)
    assert len(rdap.requests) == 1
    clock.now += 2
    rdap.default = json_answer(ip_network())
    assert rdap_client.abuse_contact(IP).status == "none"
    clock.now += 11
    rdap_client.abuse_contact(IP)
    assert len(rdap.requests) == 3


def test_404_is_none(rdap: FakeRdap, clock: FakeClock) -> None:
    result = client(rdap, clock).abuse_contact(IP)
    assert (result.status, result.email, result.network) == ("none", None, None)
    assert result.error is not None and "404" in result.error


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/"]
)
def test_redirect_to_other_schemes_refused(rdap: FakeRdap, clock: FakeClock, location: str) -> None:
    rdap.routes[IP] = lambda req: send(req, 302, b"", {"Location": location})
    result = client(rdap, clock).abuse_contact(IP)
    assert (result.status, result.error_kind) == ("error", "refused_url")


def test_http_redirect_followed(rdap: FakeRdap, clock: FakeClock) -> None:
    rdap.routes[IP] = lambda req: send(req, 307, b"", {"Location": "/rdap/ip/203.0.113.8"})
    rdap.routes["203.0.113.8"] = json_answer(
        ip_network(entities=[entity(["abuse"], "abuse@rir-two.net")])
    )
    assert client(rdap, clock).abuse_contact(IP).email == "abuse@rir-two.net"


def test_not_an_ip(rdap: FakeRdap, clock: FakeClock) -> None:
    result = client(rdap, clock).abuse_contact("203.0.113.7/../../admin")
    assert (result.status, result.error_kind) == ("error", "invalid_ip")
    assert rdap.requests == []


def test_bootstrap_is_lazy_and_injectable(rdap: FakeRdap, clock: FakeClock) -> None:
    asked: list[str] = []

    def bootstrap(url: str) -> object:
        asked.append(url)
        return {
            "services": [
                [["203.0.0.0/8"], ["ftp://nowhere/", "http://127.0.0.1:9/never/"]],
                [["203.0.113.0/24", "bogus"], [rdap.base_url + "/"]],
                "junk",
            ]
        }

    rdap.default = json_answer(ip_network(entities=[entity(["abuse"], "abuse@hoster.net")]))
    rdap_client = RdapClient(None, clock=clock, bootstrap_fetch=bootstrap, timeout_s=2)
    assert asked == []
    assert rdap_client.abuse_contact(IP).email == "abuse@hoster.net"  # longest prefix wins
    assert rdap_client.abuse_contact("203.0.113.9").status == "ok"
    assert asked == ["https://data.iana.org/rdap/ipv4.json"]
    missing = rdap_client.abuse_contact("192.0.2.1")
    assert (missing.status, missing.error_kind) == ("error", "no_registry")


def test_bootstrap_failure_is_an_error_result(clock: FakeClock) -> None:
    def broken(url: str) -> object:
        raise ValueError("bootstrap file unreadable")

    result = RdapClient(None, clock=clock, bootstrap_fetch=broken).abuse_contact(IP)
    assert (result.status, result.error_kind) == ("error", "bootstrap")


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError):
        RdapClient("file:///etc/")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abuse@hoster.net", "abuse@hoster.net"),
        ("mailto:Abuse@Hoster.NET", "Abuse@hoster.net"),
        (" abuse@hoster.net ", "abuse@hoster.net"),
        ("abuse@hoster.net\r\n", None),
        ("abuse@hoster.net\nBcc: x@y.net", None),
        ("a@hoster.net, b@hoster.net", None),
        ("a@b@hoster.net", None),
        ("abuse@localhost", None),
        ("abuse@hoster", None),
        ("abuse@127.0.0.1", None),
        ("abuse@[127.0.0.1]", None),
        ("abuse@-hoster.net", None),
        ("<script>@hoster.net", None),
        ("abus\u00e9@hoster.net", None),
        ("a" * 65 + "@hoster.net", None),
        ("abuse@" + "a" * 250 + ".net", None),
        ("abuse@hoster.example", None),
        ("abuse@mail.example.com", None),
        ("abuse@hoster.test", None),
        (["abuse@hoster.net"], None),
        (None, None),
    ],
)
def test_valid_email(value: object, expected: str | None) -> None:
    assert valid_email(value) == expected


def test_example_domains_allowed_on_request() -> None:
    assert valid_email("abuse@example.net", allow_example_domains=True) == "abuse@example.net"


@pytest.mark.parametrize("ip", ["127.0.0.2", "10.1.2.3", "192.168.0.9", "::1", "169.254.169.254"])
def test_bootstrap_never_asked_about_non_public_addresses(ip: str) -> None:
    """With no RDAP_URL, a loopback or private address is answered locally, never sent off."""
    asked: list[str] = []

    def bootstrap(url: str) -> object:
        asked.append(url)
        raise AssertionError("the bootstrap must not be fetched")

    result = RdapClient(None, bootstrap_fetch=bootstrap).abuse_contact(ip)
    assert result.status == "none" and "no public registry" in (result.error or "")
    assert asked == []
