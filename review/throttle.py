"""Login throttling per account and per address: progressive delay, never lockout (A-09).

After a few free failures each further attempt must wait twice as long as the one before
(capped), so guessing slows to a crawl while the real owner can still sign in a little
later; an attacker cannot lock a colleague out. Attempts that arrive during the wait are
refused with 429 before any password hashing, which also bounds argon2's memory use.
State is per process: the app is served by one multi-threaded process (docs/review.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    FORGET_AFTER_S = 3600.0

    def __init__(
        self, free_per_account: int = 3, free_per_address: int = 10, max_delay_s: float = 300.0
    ) -> None:
        self._free = {"account": free_per_account, "address": free_per_address}
        self._max_delay = max_delay_s
        self._state: dict[tuple[str, str], _Failures] = {}
        self._lock = threading.Lock()

    def _delay(self, kind: str, failures: int) -> float:
        over = failures - self._free[kind]
        return 0.0 if over < 0 else min(2.0**over, self._max_delay)

    def retry_after(self, account: str, address: str, now: float) -> float:
        """Seconds until another attempt for this account from this address is heard."""
        wait = 0.0
        with self._lock:
            for key in (("account", account.lower()), ("address", address)):
                state = self._state.get(key)
                if state is not None:
                    wait = max(wait, state.last + self._delay(key[0], state.count) - now)
        return max(wait, 0.0)

    def failed(self, account: str, address: str, now: float) -> None:
        with self._lock:
            for key in (("account", account.lower()), ("address", address)):
                state = self._state.setdefault(key, _Failures(0, now))
                if now - state.last > self.FORGET_AFTER_S:
                    state.count = 0
                state.count, state.last = state.count + 1, now
            if len(self._state) > 100_000:  # bound memory under a flood of random names
                self._state.clear()

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._state.pop(("account", account.lower()), None)
