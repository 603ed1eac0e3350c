"""Login throttling per account and per address: progressive delay, never lockout (A-09).

After a few free failures each further attempt must wait twice as long as the one before
(capped), so guessing slows to a crawl while the real owner can still sign in a little
later; an attacker cannot lock a colleague out. Attempts that arrive during the wait are
refused with 429 before any password hashing, which also bounds argon2's memory use.

The counts live in the `login_failures` table, so every app process (`takedown review
serve --workers N`) enforces the same delay: a guesser gains nothing by landing on
another worker. A failure is one upsert inside the login's own write transaction, and
rows quiet for `FORGET_AFTER` are deleted then, which bounds the table under a flood of
random names.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crawler.db.models import LoginFailure

FORGET_AFTER = timedelta(hours=1)

_LOOKUP = select(LoginFailure.kind, LoginFailure.failures, LoginFailure.last_at).where(
    or_(
        and_(LoginFailure.kind == "account", LoginFailure.key == bindparam("account")),
        and_(LoginFailure.kind == "address", LoginFailure.key == bindparam("address")),
    )
)
_FORGET = delete(LoginFailure).where(LoginFailure.last_at < bindparam("cutoff"))
_SUCCEEDED = delete(LoginFailure).where(
    LoginFailure.kind == "account", LoginFailure.key == bindparam("account")
)


def _count_failure(dialect: str) -> Any:
    """INSERT a first failure, or count one more (from 1 again after a quiet hour)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(LoginFailure).values(
        kind=bindparam("kind"), key=bindparam("key"), failures=1, last_at=bindparam("now")
    )
    return stmt.on_conflict_do_update(
        index_elements=[LoginFailure.kind, LoginFailure.key],
        set_={
            "failures": case(
                (LoginFailure.last_at < bindparam("cutoff"), 1),
                else_=LoginFailure.failures + 1,
            ),
            "last_at": stmt.excluded.last_at,
        },
    )


_UPSERTS = {name: _count_failure(name) for name in ("postgresql", "sqlite")}


def _account_key(account: str) -> str:
    return account.lower()[:255]


class LoginThrottle:
    def __init__(
        self, free_per_account: int = 3, free_per_address: int = 10, max_delay_s: float = 300.0
    ) -> None:
        self._free = {"account": free_per_account, "address": free_per_address}
        self._max_delay = max_delay_s

    def _delay(self, kind: str, failures: int) -> float:
        over = failures - self._free[kind]
        return 0.0 if over < 0 else min(2.0**over, self._max_delay)

    def retry_after(self, session: Session, account: str, address: str, now: datetime) -> float:
        """Seconds until another attempt for this account from this address is heard."""
        params = {"account": _account_key(account), "address": address}
        wait = 0.0
        for kind, failures, last_at in session.connection().execute(_LOOKUP, params):
            if now - last_at > FORGET_AFTER:
                continue
            due = (last_at - now).total_seconds() + self._delay(kind, failures)
            wait = max(wait, due)
        return wait

    def failed(self, session: Session, account: str, address: str, now: datetime) -> None:
        """Count a failure for the account and the address (inside a write transaction)."""
        conn = session.connection()
        cutoff = now - FORGET_AFTER
        conn.execute(_FORGET, {"cutoff": cutoff})
        upsert = _UPSERTS[conn.dialect.name]
        for kind, key in (("account", _account_key(account)), ("address", address)):
            conn.execute(upsert, {"kind": kind, "key": key, "now": now, "cutoff": cutoff})

    def succeeded(self, session: Session, account: str) -> None:
        session.connection().execute(_SUCCEEDED, {"account": _account_key(account)})
