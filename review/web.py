"""Request plumbing shared by the HTML pages and the JSON API.

One read session per request (opened on first use, closed at teardown) and short write
transactions through `writing()`; the signed-in `Principal` on `g`; one helper turning
"missing", "forbidden" and "invalid" into 404/403/400; security headers on every response (A-05);
CSRF on every state-changing request (A-07).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Response, abort, current_app, g, request
from sqlalchemy.orm import Session

from crawler.db.session import Database
from review import audit
from review.auth import Principal, resolve_api_token, resolve_session, touch_session
from review.checkpoint import Checkpointer
from review.config import ReviewConfig

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
COOKIE_SECURE = "__Host-td_session"
COOKIE_LOOPBACK = "td_session"


def cfg() -> ReviewConfig:
    config: ReviewConfig = current_app.extensions["review_config"]
    return config


def database() -> Database:
    db: Database = current_app.extensions["review_db"]
    return db


def now() -> datetime:
    return cfg().clock()


def reader() -> Session:
    """The request's read session (a snapshot on SQLite), closed at teardown."""
    if "read_cm" not in g:
        g.read_cm = database().request_reads()
        g.read_session = g.read_cm.__enter__()
    session: Session = g.read_session
    return session


@contextmanager
def writing() -> Iterator[Session]:
    """A short write transaction (BEGIN IMMEDIATE on SQLite), committed on success.

    On SQLite, writers of every thread and process take turns (`Database.session`)
    instead of sleeping in SQLite's busy handler; WAL checkpoints run in the background
    (`review.checkpoint`), not inside a commit that holds the turn. On PostgreSQL the
    transaction's audit appends go with its COMMIT (`review.audit.commit`), so they must
    be its last statements: nothing else runs in it after the body.
    """
    with database().session() as session:
        audit.defer_to_commit(session)
        yield session
        audit.commit(session)  # PostgreSQL: the held audit appends and COMMIT in one go
    checkpointer: Checkpointer = current_app.extensions["review_checkpointer"]
    checkpointer.wrote()


def close_reader(exc: BaseException | None) -> None:
    cm = g.pop("read_cm", None)
    g.pop("read_session", None)
    if cm is not None:
        cm.__exit__(None, None, None)


def found(value: T | None) -> T:
    """404 when something is missing (or not for this user to know about)."""
    if value is None:
        abort(404)
    return value


def allow(condition: bool) -> None:
    """403 when the signed-in user may not do this."""
    if not condition:
        abort(403)


def valid(problem: str | None) -> None:
    """400 with `problem` when parsing the request found one."""
    if problem:
        abort(400, problem)


# --- who is asking --------------------------------------------------------------------


def is_loopback_request() -> bool:
    host = (request.host or "").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_secure() -> bool:
    """Secure (and `__Host-` prefixed) unless the app is reached over plain loopback."""
    return request.is_secure or not is_loopback_request()


def cookie_name() -> str:
    return COOKIE_SECURE if cookie_secure() else COOKIE_LOOPBACK


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def load_principal() -> None:
    g.principal, g.via_token = None, False
    token = _bearer()
    if token is not None:
        g.principal, g.via_token = resolve_api_token(reader(), token), True
        return
    cookie = request.cookies.get(cookie_name())
    if cookie:
        found_principal, stale = resolve_session(reader(), cookie, cfg(), now())
        if found_principal is not None and stale and found_principal.session_id:
            with writing() as session:  # at most once a minute: the idle timeout's clock
                touch_session(session, found_principal.session_id, now())
        g.principal = found_principal


def principal() -> Principal | None:
    found_principal: Principal | None = g.get("principal")
    return found_principal


def user() -> Principal:
    p = principal()
    if p is None:
        abort(401)
    return p


def roles(*allowed: str) -> Callable[[F], F]:
    """Require a signed-in user with one of `allowed` roles (all roles when empty)."""

    def wrap(view: F) -> F:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            p = user()
            allow(not allowed or p.role in allowed)
            return view(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


# --- CSRF -----------------------------------------------------------------------------


def _origin_ok() -> bool:
    """False for a request a browser marks as coming from another site.

    With `Referrer-Policy: no-referrer` Chromium sends `Origin: null` even on same-origin
    form posts, so the Fetch Metadata header decides where browsers send it; `Origin` is
    the fallback; a request with neither (a script) relies on its token.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return True
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def check_csrf() -> None:
    """Unsafe methods need a same-origin request and, with a session cookie, its token."""
    if request.method in SAFE_METHODS:
        return
    if g.get("via_token"):
        return  # a bearer token is never sent by a browser on its own: nothing to forge
    if not _origin_ok():
        abort(403, "cross-origin request refused")
    p = principal()
    if p is None or p.csrf_token is None or request.endpoint == "views.login":
        return  # the login form (which opens a fresh session) is checked by origin only
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent.encode(), p.csrf_token.encode()):
        abort(403, "missing or wrong CSRF token")


# --- headers --------------------------------------------------------------------------


def new_nonce() -> None:
    g.csp_nonce = secrets.token_urlsafe(16)


def csp(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' blob:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def security_headers(response: Response) -> Response:
    headers = response.headers
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = csp(g.get("csp_nonce") or "none")
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Cache-Control"] = "no-store"
    headers["Pragma"] = "no-cache"
    headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), autoplay=()"
    return response
