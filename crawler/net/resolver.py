"""The process-wide filtering resolver (hazards C-04, C-05, O-02).

Installed through `TWISTED_DNS_RESOLVER`, which Scrapy reads from the *process*
settings only (a resolver in a spider's `custom_settings` is silently ignored; the
startup self-test in `crawler.engine.middlewares.selftest` catches that). Every name Twisted
resolves passes through `FilteringResolver.getHostByName`:

- a host that *is* an address in any spelling (``127.1``, ``0x7f000001``, ``[::1]``,
  ``localhost.``) is judged without DNS;
- names under ``.test`` (RFC 6761) resolve only through the `TAKEDOWN_TEST_HOSTS` map,
  never through real DNS, so tests cannot leak;
- every other name is resolved in a thread with a timeout, every answer is filtered
  through `AddressPolicy` (private answers dropped), and the first remaining address is
  the one connected to. No cache: a rebinding name (TTL 0) is filtered on every lookup.

Dotted-quad literals never reach a resolver in Twisted, so the scope gate applies the
same `AddressPolicy` to literal hosts before the download (`crawler.engine.middlewares.scope`).

Settings read: `TAKEDOWN_POLICY` (the `[network]` section), `TAKEDOWN_TEST_HOSTS`,
`DNS_TIMEOUT`. Emits no stats itself (it is built before any crawler): a refusal is a
`BlockedAddressError`, which the address check middleware counts.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet import defer, threads
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

from crawler.net.addresses import AddressPolicy, parse_host_literal
from crawler.policy import CrawlPolicy, parse_policy

TEST_SUFFIX = ".test"

Lookup = Callable[[str], list[str]]


class BlockedAddressError(DNSLookupError):
    """A name whose every answer the address policy refuses; `reason` is the key."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: address refused by policy ({reason})")
        self.name = name
        self.reason = reason


def system_lookup(name: str) -> list[str]:
    """Every IPv4 answer for *name* (Scrapy's HTTP/1.1 handler connects over IPv4)."""
    infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def policy_from_settings(settings: Any) -> CrawlPolicy:
    text = settings.get("TAKEDOWN_POLICY") or ""
    return parse_policy(text, source="TAKEDOWN_POLICY") if text else CrawlPolicy()


def address_policy(policy: CrawlPolicy) -> AddressPolicy:
    return AddressPolicy(policy.network.allow_private, policy.network.allowed_networks)


@implementer(IResolverSimple)
class FilteringResolver:
    """`IResolverSimple` whose every answer has passed `AddressPolicy`."""

    def __init__(
        self,
        reactor: Any,
        policy: AddressPolicy,
        test_hosts: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        lookup: Lookup = system_lookup,
    ) -> None:
        self.reactor = reactor
        self.policy = policy
        self.test_hosts = {k.lower().rstrip("."): v for k, v in (test_hosts or {}).items()}
        self.timeout = timeout
        self.lookup = lookup

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> FilteringResolver:
        settings = crawler.settings
        policy = address_policy(policy_from_settings(settings))
        hosts = settings.getdict("TAKEDOWN_TEST_HOSTS")
        return cls(reactor, policy, hosts, settings.getfloat("DNS_TIMEOUT", 10.0))

    def install_on_reactor(self) -> None:
        self.reactor.installResolver(self)

    def static_answer(self, name: str) -> str | None:
        """The address for a literal or a test name, without DNS; raises when refused.

        None means "ask DNS". Unknown ``.test`` names fail: they never reach DNS.
        """
        literal = parse_host_literal(name)
        if literal is not None:
            return self._judged(name, [literal])
        key = name.lower().rstrip(".")
        if key.endswith(TEST_SUFFIX) or key in self.test_hosts:
            if key not in self.test_hosts:
                raise DNSLookupError(f"{name}: not in TAKEDOWN_TEST_HOSTS")
            return self._judged(name, [self.test_hosts[key]])
        return None

    def _judged(self, name: str, answers: Sequence[str]) -> str:
        reasons = []
        for answer in answers:
            reason = self.policy.check(answer)
            if reason is None:
                return answer
            reasons.append(reason)
        if not reasons:
            raise DNSLookupError(f"{name}: no address")
        raise BlockedAddressError(name, reasons[0])

    def getHostByName(  # noqa: N802 - Twisted's interface name
        self, name: str, timeout: Sequence[int] = ()
    ) -> defer.Deferred[str]:
        try:
            answer = self.static_answer(name)
        except DNSLookupError as exc:
            return defer.fail(exc)
        if answer is not None:
            return defer.succeed(answer)
        d: defer.Deferred[list[str]] = threads.deferToThreadPool(
            self.reactor, self.reactor.getThreadPool(), self.lookup, name
        )
        d.addTimeout(self.timeout, self.reactor)
        d.addErrback(self._lookup_failed, name)
        return d.addCallback(lambda answers: self._judged(name, answers))

    @staticmethod
    def _lookup_failed(failure: Any, name: str) -> Any:
        if failure.check(DNSLookupError):
            return failure
        raise DNSLookupError(f"{name}: {failure.getErrorMessage() or 'lookup failed'}")

    def resolve_blocking(self, name: str) -> str:
        """The permitted address for *name*, in the calling thread (the egress proxy's
        threads, for the browser under `--render`); raises `DNSLookupError` or
        `BlockedAddressError` exactly as `getHostByName` fails."""
        answer = self.static_answer(name)
        if answer is not None:
            return answer
        try:
            answers = self.lookup(name)
        except OSError as exc:
            raise DNSLookupError(f"{name}: {exc}") from exc
        return self._judged(name, answers)

    def refuses(self, name: str) -> bool:
        """Whether the resolver refuses *name* without DNS (the startup self-test)."""
        try:
            self.static_answer(name)
        except DNSLookupError:
            return True
        return False
