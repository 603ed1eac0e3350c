"""Read an RFC 9083 "ip network" answer defensively: abuse e-mail, names, network range.

Every field may be missing, of the wrong type, huge, or hostile. Rules:

- The abuse contact is an `email` property in the jCard (`vcardArray`) of an entity whose
  `roles` contain "abuse", at any nesting depth up to `max_depth`, visiting at most
  `max_entities` entities. Entities are searched breadth first, so the shallowest abuse
  entity wins; among equals, document order. The first *valid* address wins: one
  `local@domain` address, ASCII, no spaces or control characters, a dotted domain,
  at most 254 characters. Placeholders (redacted, not disclosed, RFC 2606/6761 domains
  such as `example.net` or `*.invalid`) are ignored.
- Names (`name` of the network, `fn` of the registrant or abuse entity) are cleaned to
  one line of at most 200 characters; privacy placeholders become None. Markup stays as
  text: it is escaped where it is rendered.
- The network comes from `cidr0_cidrs`, else from `startAddress`/`endAddress`.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from crawler.net.sanitize import clean_text, is_placeholder

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAME_MAX_LEN = 200
MAX_NETWORKS = 64
MAX_VCARD_PROPERTIES = 200

_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_TLDS = {"example", "invalid", "test", "localhost", "local"}
_PLACEHOLDER_WORDS = ("redacted", "disclosed", "withheld", "privacy-protected")


class RdapFormatError(ValueError):
    """The answer is not an RDAP object we can read at all."""


@dataclass(frozen=True)
class ParsedNetwork:
    email: str | None
    name: str | None
    org: str | None
    handle: str | None
    networks: tuple[IPNetwork, ...]


def valid_email(value: object, *, allow_example_domains: bool = False) -> str | None:
    """`value` as one normalised e-mail address, or None if it is not exactly one."""
    if not isinstance(value, str) or len(value) > 320:
        return None
    text = value.strip(" ")
    if text[:7].lower() == "mailto:":
        text = text[7:]
    if len(text) > 254 or text.count("@") != 1:
        return None
    local, domain = text.split("@")
    labels = domain.split(".")
    if len(local) > 64 or not _LOCAL_PART.fullmatch(local) or len(labels) < 2:
        return None
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return None
    address = f"{local}@{domain.lower()}"
    if _is_placeholder_email(address, allow_example_domains):
        return None
    return address


def _is_placeholder_email(address: str, allow_example_domains: bool) -> bool:
    folded = address.casefold()
    domain = folded.rsplit("@", 1)[1]
    if any(word in folded for word in _PLACEHOLDER_WORDS):
        return True
    if not domain.rsplit(".", 1)[1].isalpha() and not domain.rsplit(".", 1)[1].startswith("xn--"):
        return True  # a numeric "TLD" is an address literal in disguise
    if allow_example_domains:
        return False
    example = any(domain == d or domain.endswith("." + d) for d in _EXAMPLE_DOMAINS)
    return example or domain.rsplit(".", 1)[1] in _RESERVED_TLDS


def clean_name(value: object) -> str | None:
    text = clean_text(value, NAME_MAX_LEN)
    return None if text is None or is_placeholder(text) else text


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def iter_entities(
    doc: dict[str, Any], max_depth: int, max_entities: int
) -> Iterator[dict[str, Any]]:
    """Entities breadth first, bounded in depth and count; safe on repeated objects."""
    queue: deque[tuple[object, int]] = deque((e, 1) for e in _as_list(doc.get("entities")))
    seen: set[int] = set()
    while queue and len(seen) < max_entities:
        entity, depth = queue.popleft()
        if not isinstance(entity, dict) or id(entity) in seen:
            continue
        seen.add(id(entity))
        yield entity
        if depth < max_depth:
            children = _as_list(entity.get("entities"))[:max_entities]
            queue.extend((child, depth + 1) for child in children)


def has_role(entity: dict[str, Any], role: str) -> bool:
    roles = _as_list(entity.get("roles"))
    return any(isinstance(r, str) and r.strip().casefold() == role for r in roles[:50])


def vcard_values(entity: dict[str, Any], prop: str) -> Iterator[object]:
    """Values of one jCard property: `["vcard", [[name, params, type, value], ...]]`."""
    card = entity.get("vcardArray")
    if not (isinstance(card, list) and len(card) >= 2 and card[0] == "vcard"):
        return
    for item in _as_list(card[1])[:MAX_VCARD_PROPERTIES]:
        if isinstance(item, list) and len(item) >= 4 and item[0] == prop:
            yield item[3]


def entity_name(entity: dict[str, Any]) -> str | None:
    for prop in ("fn", "org"):
        for value in vcard_values(entity, prop):
            first = value[0] if isinstance(value, list) and value else value
            if name := clean_name(first):
                return name
    return None


def abuse_contact(
    entities: list[dict[str, Any]], allow_example_domains: bool
) -> tuple[str | None, str | None]:
    """(e-mail, entity name) of the first abuse entity with a valid address."""
    for entity in entities:
        if not has_role(entity, "abuse"):
            continue
        for value in vcard_values(entity, "email"):
            if email := valid_email(value, allow_example_domains=allow_example_domains):
                return email, entity_name(entity)
    return None, None


def _cidr0(doc: dict[str, Any]) -> list[IPNetwork]:
    networks: list[IPNetwork] = []
    for item in _as_list(doc.get("cidr0_cidrs"))[:MAX_NETWORKS]:
        if not isinstance(item, dict):
            continue
        prefix = item.get("v4prefix", item.get("v6prefix"))
        length = item.get("length")
        if isinstance(prefix, str) and isinstance(length, int) and not isinstance(length, bool):
            try:
                networks.append(ipaddress.ip_network(f"{prefix[:64]}/{length}", strict=False))
            except ValueError:
                continue
    return networks


def _address_range(doc: dict[str, Any]) -> list[IPNetwork]:
    start, end = doc.get("startAddress"), doc.get("endAddress")
    if not (isinstance(start, str) and isinstance(end, str)):
        return []
    try:
        first, last = ipaddress.ip_address(start[:64]), ipaddress.ip_address(end[:64])
        ranges = ipaddress.summarize_address_range(first, last)
        return list(itertools.islice(ranges, MAX_NETWORKS))
    except (TypeError, ValueError):
        return []


def parse_ip_network(
    doc: object, *, max_depth: int, max_entities: int, allow_example_domains: bool = False
) -> ParsedNetwork:
    """Extract what attribution needs; raises RdapFormatError if `doc` is not an object."""
    if not isinstance(doc, dict):
        raise RdapFormatError(f"expected a JSON object, got {type(doc).__name__}")
    entities = list(iter_entities(doc, max_depth, max_entities))
    email, abuse_name = abuse_contact(entities, allow_example_domains)
    registrants = (entity_name(e) for e in entities if has_role(e, "registrant"))
    org = next((n for n in registrants if n), None) or abuse_name
    handle = clean_text(doc.get("handle"), NAME_MAX_LEN)
    networks = _cidr0(doc) or _address_range(doc)
    return ParsedNetwork(email, clean_name(doc.get("name")), org, handle, tuple(networks))
