"""What an abuse address is: the one rule for every address a notice may be sent to.

Used by attribution (the RFC 2142 guess `abuse@<domain>`), notice building (which
contact a confirmed URL goes to) and notice rendering (the To, Cc and From headers).

An address is usable when it is a plain `local@domain`: at most 254 characters, no
display name, spaces, CR/LF or other characters that could add a header, and a domain
that is a DNS name with at least two labels whose last label is not all digits. IP
literals (`abuse@127.0.0.2`, `abuse@[127.0.0.2]`, `abuse@0x7f000001`) are refused: a
host named by a bare IP address has no domain to write to, and mail to one goes nowhere.
"""

from __future__ import annotations

import re

from crawler.net.addresses import parse_host_literal

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")
_MAX_LEN = 254


def address_problem(address: str | None) -> str | None:
    """Why `address` is not a usable abuse address, in words; None when it is one."""
    if not address:
        return "no address"
    if len(address) > _MAX_LEN:
        return f"longer than {_MAX_LEN} characters"
    domain = address.rpartition("@")[2]
    if _is_ip_literal(domain):
        return f"{domain[:64]!r} is an IP address, not a domain to write to"
    if not _ADDRESS.fullmatch(address):
        return "not a plain local@domain address"
    if domain.rpartition(".")[2].isdigit():
        return f"{domain[:64]!r} is not a domain name (numeric top-level label)"
    return None


def valid_abuse_address(address: str | None) -> bool:
    """A usable abuse address (see `address_problem`)."""
    return address_problem(address) is None


def guess_for(domain: str | None) -> str | None:
    """`abuse@<domain>` (RFC 2142) when that is a usable address, else None."""
    if not domain:
        return None
    guess = f"abuse@{domain.strip().lower()}"
    return guess if valid_abuse_address(guess) else None


def _is_ip_literal(domain: str) -> bool:
    text = domain.strip()
    if text.startswith("[") and text.endswith("]"):
        return True
    try:
        return parse_host_literal(text) is not None
    except ValueError:
        return False
