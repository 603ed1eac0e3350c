"""Address classification and host literals (hazard C-04)."""

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.net.addresses import AddressPolicy, classify, parse_host_literal

CLASSIFY_TABLE = [
    ("8.8.8.8", None),
    ("1.1.1.1", None),
    ("2606:4700:4700::1111", None),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fd00::1", "private"),
    ("fec0::1", "private"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.255", "cgnat"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.7", "documentation"),
    ("2001:db8::1", "documentation"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("198.18.0.1", "reserved"),
    ("192.0.0.8", "reserved"),
    ("2001::1", "reserved"),  # Teredo
    ("::127.0.0.1", "reserved"),  # deprecated IPv4-compatible
    ("64:ff9b:1::1", "reserved"),
    ("4000::1", "reserved"),  # outside global unicast
    # embedded IPv4 is judged by the address packets reach
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("::ffff:8.8.8.8", None),
    ("::ffff:0:a00:1", "private"),  # v4-translated 10.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 169.254.169.254
    ("64:ff9b::808:808", None),
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:808:808::1", None),
    ("[::1]", "loopback"),
    ("not an ip", "invalid"),
    ("", "invalid"),
]


@pytest.mark.parametrize(("ip", "reason"), CLASSIFY_TABLE)
def test_classify(ip, reason):
    assert classify(ip) == reason


LITERALS = [
    ("127.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0X7F000001", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0x7f.0x0.0x0.0x1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("0.0.0.0", "0.0.0.0"),
    ("0", "0.0.0.0"),
    ("[::1]", "::1"),
    ("::1", "::1"),
    ("[0:0:0:0:0:0:0:1]", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("[fe80::1%25eth0]", "fe80::1"),
    ("fe80::1%eth0", "fe80::1"),
    ("localhost", "127.0.0.1"),
    ("localhost.", "127.0.0.1"),
    ("LocalHost", "127.0.0.1"),
    ("app.localhost", "127.0.0.1"),
    ("%31%32%37.0.0.1", "127.0.0.1"),
    ("１２７。０。０。１", "127.0.0.1"),
    ("169.254.169.254", "169.254.169.254"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("2852039166", "169.254.169.254"),
    ("127.0.0.1 trailing", "127.0.0.1"),  # glibc inet_aton stops at whitespace
    ("example.com", None),
    ("1.2.3.4.5", None),
    ("256.0.0.1", None),
    ("1.2.3.256", None),
    ("08.0.0.1", None),
    ("", None),
    ("localhost.example", None),
]


@pytest.mark.parametrize(("host", "expected"), LITERALS)
def test_parse_host_literal(host, expected):
    assert parse_host_literal(host) == expected


@given(st.text(alphabet="0123456789abcdefxX.", min_size=1, max_size=20))
def test_literal_parser_agrees_with_inet_aton(text):
    try:
        expected = socket.inet_ntoa(socket.inet_aton(text))
    except OSError:
        expected = None
    got = parse_host_literal(text)
    if expected is not None:
        assert got == expected
    else:
        # Where libc refuses, we may still read a number (fail closed): never a
        # different address than a URL parser would, and never a crash.
        assert got is None or ipaddress.ip_address(got)


# --- property tests over encodings of blocked addresses --------------------------------

BLOCKED_V4 = [
    ipaddress.IPv4Network("127.0.0.0/8"),
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("169.254.169.254/32"),
    ipaddress.IPv4Network("100.64.0.0/10"),
    ipaddress.IPv4Network("0.0.0.0/32"),
]


@st.composite
def blocked_ipv4(draw):
    network = draw(st.sampled_from(BLOCKED_V4))
    offset = draw(st.integers(0, network.num_addresses - 1))
    return int(network.network_address) + offset


def _encode_part(value, radix, zeros, upper):
    if radix == 16:
        prefix = "0X" if upper else "0x"
        return prefix + "0" * zeros + (f"{value:X}" if upper else f"{value:x}")
    if radix == 8:
        return "0" + "0" * zeros + f"{value:o}"
    return str(value)


@st.composite
def inet_aton_spelling(draw):
    number = draw(blocked_ipv4())
    count = draw(st.integers(1, 4))
    octets = list(number.to_bytes(4, "big"))
    head, rest = octets[: count - 1], octets[count - 1 :]
    parts = [*head, int.from_bytes(bytes(rest), "big")]
    encoded = [
        _encode_part(
            part,
            draw(st.sampled_from([8, 10, 16])),
            draw(st.integers(0, 2)),
            draw(st.booleans()),
        )
        for part in parts
    ]
    dot = draw(st.sampled_from(["", "."]))
    return number, ".".join(encoded) + dot


@given(inet_aton_spelling())
def test_every_spelling_of_a_blocked_ipv4_is_refused(case):
    number, spelling = case
    literal = parse_host_literal(spelling)
    assert literal == str(ipaddress.IPv4Address(number))
    assert AddressPolicy().check(literal) is not None
    # the same address inside IPv6 is refused too
    mapped = f"::ffff:{literal}"
    assert AddressPolicy().check(parse_host_literal(f"[{mapped}]")) is not None


@given(
    st.sampled_from(["::1", "::ffff:127.0.0.1", "::ffff:a9fe:a9fe", "fe80::1", "fd12::1"]),
    st.booleans(),
    st.sampled_from(["", "%eth0", "%25lo"]),
)
def test_ipv6_spellings_are_refused(address, bracket, zone):
    exploded = ipaddress.IPv6Address(address).exploded
    text = exploded + zone if not bracket else f"[{exploded}{zone}]"
    literal = parse_host_literal(text)
    assert literal is not None
    assert AddressPolicy().check(literal) is not None


# --- the policy ------------------------------------------------------------------------


def test_public_passes_private_refused():
    policy = AddressPolicy()
    assert policy.check("8.8.8.8") is None
    assert policy.check("127.0.0.1") == "loopback"
    assert policy.check("garbage") == "invalid"


def test_allow_private_allows_every_class_but_not_garbage():
    policy = AddressPolicy(allow_private=True)
    for ip in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "203.0.113.7"):
        assert policy.check(ip) is None
    assert policy.check("nonsense") == "invalid"


def test_allowed_networks_win_and_match_mapped_spellings():
    policy = AddressPolicy(allowed_networks=["127.0.0.2/32", "203.0.113.0/24"])
    assert policy.check("127.0.0.2") is None
    assert policy.check("::ffff:127.0.0.2") is None
    assert policy.check("203.0.113.9") is None
    assert policy.check("127.0.0.1") == "loopback"  # the canary stays blocked


def test_allowed_networks_are_validated():
    with pytest.raises(ValueError):
        AddressPolicy(allowed_networks=["10.0.0.1/8"])
    with pytest.raises(ValueError):
        AddressPolicy(allowed_networks=["not-a-network"])
