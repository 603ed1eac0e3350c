"""Password hashing with argon2id, with a bounded number of hashes at once.

argon2-cffi's default costs 64 MiB per hash; a login flood of 200 would want 12.8 GiB,
so at most `MAX_CONCURRENT` hashes run at a time and the rest wait. New passwords must
be 8-128 characters and not on the bundled breached-password list (docs/hazards.md A-10).
"""

from __future__ import annotations

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crawler.accounts.breached_passwords import is_breached
from crawler.errors import UsageError

MIN_LENGTH = 8
MAX_LENGTH = 128
MAX_CONCURRENT = 4

_hasher = PasswordHasher(time_cost=2, memory_cost=65_536, parallelism=1)
_slots = threading.BoundedSemaphore(MAX_CONCURRENT)
# A valid hash of a random password, verified for unknown users so that a login for a
# missing account costs the same time as one for a real account.
_DUMMY = _hasher.hash("dummy password for timing only")


def check_password_rules(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise UsageError(f"password too short: at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise UsageError(f"password too long: at most {MAX_LENGTH} characters")
    if is_breached(password):
        raise UsageError("password refused: it is on the list of breached passwords")


def hash_password(password: str) -> str:
    check_password_rules(password)
    with _slots:
        return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; a None hash still costs one verify."""
    with _slots:
        try:
            return _hasher.verify(stored or _DUMMY, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
