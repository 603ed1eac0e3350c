"""Review-app accounts."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.accounts.passwords import hash_password
from crawler.db.audit import Event, record
from crawler.db.models import ROLES, User
from crawler.errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def add_user(
    session: Session, username: str, role: str, password: str, *, actor: str = "cli"
) -> User:
    if not _NAME.fullmatch(username):
        raise UsageError(f"user name {username[:70]!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise UsageError(f"role {role!r}: must be one of {', '.join(ROLES)}")
    if session.execute(select(User.id).where(User.username == username)).first():
        raise UsageError(f"user {username!r} already exists")
    user = User(username=username, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    record(session, Event(actor, "user.add", "user", user.id, {"username": username, "role": role}))
    return user
