"""Accounts, server-side sessions and API tokens (docs/hazards.md A-06, A-09, A-10).

The cookie holds a random token; the database holds only its SHA-256 (`UserSession.id`),
the session's CSRF token and the user's `session_version` at issue time. A session dies
on logout, after `idle_timeout_s` without a request, `absolute_timeout_s` after login,
and whenever the user's `session_version` moves on (role change, disable, logout
everywhere). API tokens are stored hashed too and carry the owner's current role.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from crawler.accounts.passwords import verify_password
from crawler.db.audit import Event
from crawler.db.models import ROLES, ApiToken, User, UserSession
from review import totp
from review.audit import record
from review.config import ReviewConfig

TOKEN_PREFIX = "td_"  # noqa: S105 - a public prefix, not a secret
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often


@dataclass(frozen=True)
class Principal:
    """Who is asking: from a session cookie (with its CSRF token) or an API token."""

    user_id: int
    username: str
    role: str
    session_id: str | None = None
    csrf_token: str | None = None
    totp_enrolled: bool = False

    @property
    def is_lead(self) -> bool:
        return self.role in ("lead", "admin")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class LoginOutcome:
    user: User | None
    reason: str  # "ok", "bad-credentials", "code-required", "bad-code"
    totp_step: int | None = None  # the accepted code's step, claimed by `complete_login`


def check_credentials(
    session: Session, username: str, password: str, code: str, now: datetime
) -> LoginOutcome:
    """Verify password (dummy verify for unknown users) and, when enrolled, a TOTP code.

    Read-only, so it runs outside any write transaction: argon2id takes tens of
    milliseconds and on SQLite must not hold the one writer lock while it works.
    """
    user = session.execute(select(User).where(User.username == username)).scalar()
    usable = user is not None and user.active
    if not verify_password(user.password_hash if usable and user else None, password):
        return LoginOutcome(None, "bad-credentials")
    assert user is not None
    if not user.totp_secret:
        return LoginOutcome(user, "ok")
    if not code:
        return LoginOutcome(None, "code-required")
    step = totp.accept(user.totp_secret, code, user.totp_last_step, now)
    if step is None:
        return LoginOutcome(None, "bad-code")
    return LoginOutcome(user, "ok", step)


def complete_login(session: Session, outcome: LoginOutcome, now: datetime) -> str | None:
    """Use up the TOTP step (one conditional UPDATE: a code wins once) and open a session."""
    user = outcome.user
    assert user is not None
    if outcome.totp_step is not None:
        used = session.execute(
            update(User)
            .where(
                User.id == user.id,
                (User.totp_last_step.is_(None)) | (User.totp_last_step < outcome.totp_step),
            )
            .values(totp_last_step=outcome.totp_step)
            .returning(User.id)
            .execution_options(synchronize_session=False)
        ).scalar()
        if used is None:
            return None
    return open_session(session, user, now)


def open_session(session: Session, user: User, now: datetime) -> str:
    """A fresh session for `user` (a new id at every login); returns the cookie token."""
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            id=token_digest(token),
            user_id=user.id,
            session_version=user.session_version,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
    )
    return token


# Built once: this runs on every request (Core rows, no ORM objects).
_SESSION_LOOKUP = (
    select(
        UserSession.id,
        UserSession.csrf_token,
        UserSession.created_at,
        UserSession.last_seen_at,
        UserSession.revoked,
        UserSession.session_version,
        User.id.label("user_id"),
        User.username,
        User.role,
        User.active,
        User.session_version.label("user_session_version"),
        User.totp_secret.is_not(None).label("totp_enrolled"),
    )
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.id == bindparam("digest"))
)


def _session_alive(row: Any, cfg: ReviewConfig, now: datetime) -> bool:
    return bool(
        not row.revoked
        and row.active
        and row.session_version == row.user_session_version
        and now - row.last_seen_at <= timedelta(seconds=cfg.idle_timeout_s)
        and now - row.created_at <= timedelta(seconds=cfg.absolute_timeout_s)
    )


def resolve_session(
    session: Session, token: str, cfg: ReviewConfig, now: datetime
) -> tuple[Principal | None, bool]:
    """The session's principal, and whether its `last_seen_at` is due a refresh."""
    row = session.connection().execute(_SESSION_LOOKUP, {"digest": token_digest(token)}).first()
    if row is None or not _session_alive(row, cfg, now):
        return None, False
    enrolled = bool(row.totp_enrolled)
    principal = Principal(row.user_id, row.username, row.role, row.id, row.csrf_token, enrolled)
    return principal, now - row.last_seen_at >= TOUCH_EVERY


def touch_session(session: Session, session_id: str, now: datetime) -> None:
    session.execute(
        update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now)
    )


def resolve_api_token(session: Session, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == token_digest(token))
    ).scalar()
    if row is None or row.revoked_at is not None:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return Principal(user.id, user.username, user.role, totp_enrolled=bool(user.totp_secret))


def revoke_session(session: Session, session_id: str) -> None:
    session.execute(update(UserSession).where(UserSession.id == session_id).values(revoked=True))


def revoke_all_sessions(session: Session, user: User) -> None:
    """Every session of `user` dies now (role change, disable, logout everywhere)."""
    user.session_version += 1
    session.execute(update(UserSession).where(UserSession.user_id == user.id).values(revoked=True))


def create_api_token(session: Session, user_id: int, name: str, now: datetime) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user_id, name=name[:64], token_hash=token_digest(token)))
    session.flush()
    return token


def change_role(session: Session, actor: Principal, user_id: int, role: str) -> User | None:
    """Admin change of role or active flag; every session of that user is revoked."""
    user = session.get(User, user_id)
    if user is None or role not in (*ROLES, "disabled"):
        return None
    before = {"role": user.role, "active": user.active}
    if role == "disabled":
        user.active = False
    else:
        user.role, user.active = role, True
    revoke_all_sessions(session, user)
    record(
        session,
        Event(actor.username, "admin.user_change", "user", user.id, {"before": before, "to": role}),
    )
    return user


# --- TOTP enrolment (A-10) --------------------------------------------------------------

ENROL_SALT = "totp-enrolment"
ENROL_MAX_AGE_S = 600  # a started enrolment must be confirmed within ten minutes


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    token: str  # the secret, signed for this user, carried by the confirmation form


def start_enrolment(secret_key: str, principal: Principal) -> Enrolment:
    """A fresh secret, shown once; nothing is stored until a code confirms it."""
    secret = totp.new_secret()
    signer = URLSafeTimedSerializer(secret_key, salt=ENROL_SALT)
    token = signer.dumps({"user": principal.user_id, "secret": secret})
    return Enrolment(secret, totp.provisioning_uri(secret, principal.username), token)


def confirm_enrolment(
    session: Session, secret_key: str, principal: Principal, token: str, code: str, now: datetime
) -> str | None:
    """Store the secret when `code` proves the app has it; returns a refusal or None."""
    signer = URLSafeTimedSerializer(secret_key, salt=ENROL_SALT)
    try:
        data = signer.loads(token, max_age=ENROL_MAX_AGE_S)
    except BadData:
        return "This set-up has expired. Start again."
    user = session.get(User, principal.user_id)
    if user is None or data.get("user") != user.id:
        return "This set-up belongs to another account. Start again."
    if user.totp_secret:
        return "One-time codes are already set up for this account."
    step = totp.accept(str(data["secret"]), code, None, now)
    if step is None:
        return "That code is wrong. Check the time on your device and try again."
    user.totp_secret, user.totp_last_step = str(data["secret"]), step
    record(session, Event(principal.username, "account.totp_enrol", "user", user.id))
    return None
