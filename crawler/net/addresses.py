"""Address classification: which IP addresses the crawler may connect to.

Pure functions, no DNS. The filtering resolver and the download handlers call
`AddressPolicy.check` on the address actually connected to (hazards C-04, C-05, C-06);
`parse_host_literal` lets a request whose host *is* an address be refused before any
resolver runs, whatever spelling the page used.

Reasons returned by `classify` (and `AddressPolicy.check`), one per address:

- ``"unspecified"``   0.0.0.0/8, ``::`` (Linux connects 0.0.0.0 to the local host)
- ``"loopback"``      127.0.0.0/8, ``::1``, and the names ``localhost`` / ``*.localhost``
- ``"private"``       RFC 1918, IPv6 unique-local fc00::/7 and deprecated site-local fec0::/10
- ``"link-local"``    169.254.0.0/16 (cloud metadata lives here), fe80::/10
- ``"cgnat"``         100.64.0.0/10
- ``"multicast"``     224.0.0.0/4, ff00::/8
- ``"documentation"`` 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20.
  Never routed on the Internet, so a real crawl has no business there; kept as its own
  reason because test fixtures use these ranges as "public-looking" addresses and can
  allow them through ``allowed_networks``.
- ``"reserved"``      every other special-purpose block (240.0.0.0/4 and broadcast,
  192.0.0.0/24, 198.18.0.0/15, IPv6 outside global unicast 2000::/3, 2001::/23 including
  Teredo, local-use NAT64, deprecated IPv4-compatible ``::a.b.c.d``)
- ``"invalid"``       not an address at all: callers fail closed on it

Addresses that embed an IPv4 address (v4-mapped ``::ffff:a.b.c.d``, v4-translated,
NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the embedded address, because that is
where the packets end up. Zone IDs (``fe80::1%eth0``) are ignored.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK_NAME_ADDRESS = "127.0.0.1"

_V4_TABLE: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("169.254.0.0/16", "link-local"),
    ("100.64.0.0/10", "cgnat"),
    ("224.0.0.0/4", "multicast"),
    ("192.0.2.0/24", "documentation"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("240.0.0.0/4", "reserved"),
    ("192.0.0.0/24", "reserved"),
    ("198.18.0.0/15", "reserved"),
    ("192.88.99.0/24", "reserved"),
)

_V6_TABLE: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fc00::/7", "private"),
    ("fec0::/10", "private"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("2001::/23", "reserved"),
    ("64:ff9b:1::/48", "reserved"),
    ("100::/64", "reserved"),
    ("5f00::/16", "reserved"),
)

_V4_NETS = tuple((ipaddress.IPv4Network(net), reason) for net, reason in _V4_TABLE)
_V6_NETS = tuple((ipaddress.IPv6Network(net), reason) for net, reason in _V6_TABLE)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def parse_address(text: str) -> IPAddress | None:
    """Strict parse of a canonical address string: brackets and zone IDs removed."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.partition("%")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address that packets to *address* are delivered to, if it embeds one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _V4_TRANSLATED or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def classify(ip: str) -> str | None:
    """Reason an address is not public (see module doc), or None for a public address."""
    address = parse_address(ip)
    if address is None:
        return "invalid"
    return _classify_address(address)


def _classify_address(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv4Address):
        return _lookup(address, _V4_NETS)
    inner = embedded_ipv4(address)
    if inner is not None:
        return _lookup(inner, _V4_NETS)
    reason = _lookup(address, _V6_NETS)
    if reason is not None:
        return reason
    if address in _V4_COMPATIBLE or address not in _GLOBAL_UNICAST:
        return "reserved"
    return None


def _lookup(address: IPAddress, table: Iterable[tuple[IPNetwork, str]]) -> str | None:
    for network, reason in table:
        if address in network:
            return reason
    return None


def parse_network(text: str) -> IPNetwork:
    """One CIDR (or single address) from a policy file; ValueError with the cause."""
    return ipaddress.ip_network(text.strip(), strict=True)


@dataclass(frozen=True)
class AddressPolicy:
    """The `[network]` rules: public addresses pass; `allowed_networks` wins over the rest."""

    allow_private: bool = False
    allowed_networks: Iterable[str] = ()
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks = tuple(parse_network(net) for net in self.allowed_networks)
        object.__setattr__(self, "allowed_networks", tuple(str(n) for n in networks))
        object.__setattr__(self, "_networks", networks)

    def check(self, ip: str) -> str | None:
        """None when *ip* may be connected to, else the reason it is refused."""
        address = parse_address(ip)
        if address is None:
            return "invalid"
        if self._is_allow_listed(address):
            return None
        reason = _classify_address(address)
        if reason is None or self.allow_private:
            return None
        return reason

    def _is_allow_listed(self, address: IPAddress) -> bool:
        # A v4-mapped spelling of an allow-listed IPv4 address is the same endpoint.
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            inner = embedded_ipv4(address)
            if inner is not None:
                candidates.append(inner)
        return any(a in net for a in candidates for net in self._networks)


# --- host literals -------------------------------------------------------------------

_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_NUMERIC_PART = re.compile(r"(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)")


def parse_host_literal(host: str) -> str | None:
    """The address a resolver would use for *host* without asking DNS, else None.

    Recognises every spelling `inet_aton` and URL parsers accept: ``127.1``,
    ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``0x7f.1``, a trailing dot,
    ``[::1]``, ``[::ffff:127.0.0.1]``, zone IDs, full-width digits and ideographic dots.
    The names ``localhost`` and ``*.localhost`` (RFC 6761) give ``127.0.0.1``.
    """
    text = _normalise_literal(host)
    if not text:
        return None
    if text == "localhost" or text.endswith(".localhost"):
        return LOOPBACK_NAME_ADDRESS
    if ":" in text:
        address = parse_address(text)
        return None if address is None else str(address)
    return parse_ipv4_number(text)


def parse_ipv4_number(text: str) -> str | None:
    """Dotted quad for an inet_aton spelling (``127.1``, ``0x7f.1``, ``017700000001``)."""
    number = _parse_inet_aton(text)
    return None if number is None else str(ipaddress.IPv4Address(number))


def _normalise_literal(host: str) -> str:
    # Browsers percent-decode and NFKC-map a host before reading it as a number.
    text = unicodedata.normalize("NFKC", unquote(host)).translate(_DOTS).strip().lower()
    # glibc's inet_aton stops at the first whitespace and ignores what follows.
    text = text.split(None, 1)[0] if text.split() else ""
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.partition("%")[0] if ":" in text else text
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text


def _parse_inet_aton(text: str) -> int | None:
    """inet_aton(3): 1-4 parts, each decimal, 0x-hex or 0-octal; the last fills the rest."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART.fullmatch(p) for p in parts):
        return None
    values = [_part_value(p) for p in parts]
    *head, last = values
    if any(v > 0xFF for v in head) or last >= 1 << (8 * (5 - len(parts))):
        return None
    number = 0
    for value in head:
        number = (number << 8) | value
    return (number << (8 * (5 - len(parts)))) | last


def _part_value(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        # "0x" alone reads as 0 under the URL standard; fail closed and agree.
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part)
