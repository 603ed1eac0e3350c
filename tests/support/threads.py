"""Concurrency in tests: one call per thread, started together, every exception kept."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_in_threads(target: Callable[[int], None], count: int) -> list[BaseException]:
    """Call `target(0)` ... `target(count - 1)`, each in its own thread, and wait for all;
    returns what they raised (empty when every call returned)."""
    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            target(k)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
