"""TOTP enrolment on the Account page, the require-TOTP setting and breached passwords."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from crawler.accounts.breached_passwords import is_breached
from crawler.accounts.passwords import check_password_rules
from crawler.db.models import AuditEvent, User
from crawler.db.session import Database
from crawler.errors import UsageError
from review import totp
from tests.support.review import PASSWORD, Clock, login, make_app

_SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
_URI = re.compile(r'id="totp-uri">([^<]+)<')
_TOKEN = re.compile(r'name="enrolment" value="([^"]+)"')


def _start(client: FlaskClient, csrf: str) -> tuple[str, str, str]:
    html = client.post("/account/totp/start", data={"csrf_token": csrf}).get_data(as_text=True)
    secret, uri, token = _SECRET.search(html), _URI.search(html), _TOKEN.search(html)
    assert secret and uri and token, html[:500]
    return secret.group(1), uri.group(1), token.group(1)


def _stored_secret(db: Database, name: str) -> str | None:
    with db.read_session() as s:
        return s.execute(select(User.totp_secret).where(User.username == name)).scalar()


def test_enrolment_shows_secret_and_uri_and_needs_a_code(
    app: Flask, db: Database, clock: Clock
) -> None:
    client = app.test_client()
    csrf = login(client, "ana")
    secret, uri, token = _start(client, csrf)
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri.replace("&amp;", "&")
    assert "http" not in uri  # no external QR service: the URI is text only
    assert _stored_secret(db, "ana") is None  # nothing stored before a code confirms it
    wrong = client.post("/account/totp", data={"csrf_token": csrf, "enrolment": token, "code": "1"})
    assert wrong.status_code == 400 and _stored_secret(db, "ana") is None
    code = totp.code_at(secret, totp.step_of(clock.now))
    ok = client.post("/account/totp", data={"csrf_token": csrf, "enrolment": token, "code": code})
    assert ok.status_code == 302 and _stored_secret(db, "ana") == secret
    with db.read_session() as s:
        actions = s.execute(select(AuditEvent.action)).scalars().all()
    assert "account.totp_enrol" in actions
    # From now on a sign-in needs a fresh code; the enrolment code itself is used up.
    again = app.test_client().post(
        "/login", data={"username": "ana", "password": PASSWORD, "code": code}
    )
    assert again.status_code == 401


def test_enrolment_token_is_bound_to_its_user_and_expires(
    app: Flask, db: Database, clock: Clock
) -> None:
    ana, bob = app.test_client(), app.test_client()
    csrf_ana, csrf_bob = login(ana, "ana"), login(bob, "bob")
    secret, _uri, token = _start(ana, csrf_ana)
    code = totp.code_at(secret, totp.step_of(clock.now))
    stolen = bob.post(
        "/account/totp", data={"csrf_token": csrf_bob, "enrolment": token, "code": code}
    )
    assert stolen.status_code == 400 and _stored_secret(db, "bob") is None
    forged = ana.post(
        "/account/totp", data={"csrf_token": csrf_ana, "enrolment": token + "x", "code": code}
    )
    assert forged.status_code == 400 and _stored_secret(db, "ana") is None


def test_required_totp_sends_unenrolled_users_to_the_account_page(
    db_url: str, users: dict[str, int], clock: Clock, db: Database
) -> None:
    app = make_app(db_url, clock=clock, require_totp=True)
    try:
        client = app.test_client()
        client.post("/login", data={"username": "bob", "password": PASSWORD})
        page = client.get("/queue")
        assert page.status_code == 302 and "/account" in page.headers["Location"]
        assert client.get("/api/v1/me").status_code == 403
        assert client.get("/account").status_code == 200
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/account").text)
        assert csrf
        assert client.post("/queue/next", data={"csrf_token": csrf.group(1)}).status_code == 403
        secret, _uri, token = _start(client, csrf.group(1))
        code = totp.code_at(secret, totp.step_of(clock.now))
        data = {"csrf_token": csrf.group(1), "enrolment": token, "code": code}
        assert client.post("/account/totp", data=data).status_code == 302
        assert client.get("/queue").status_code == 200
    finally:
        app.extensions["review_db"].dispose()


@pytest.mark.parametrize("password", ["password123", "Password1", " qwertyuiop ", "iloveyou"])
def test_breached_passwords_are_refused(password: str) -> None:
    assert is_breached(password)
    with pytest.raises(UsageError, match="breached"):
        check_password_rules(password)


def test_uncommon_passwords_pass() -> None:
    assert not is_breached(PASSWORD)
    check_password_rules("a long and rare passphrase")


@pytest.mark.parametrize("name", ["ana\x00", "\x00", "a\x00' OR 1=1 --"])
def test_login_with_nul_in_the_user_name_is_refused_not_a_server_error(
    app: Flask, db: Database, name: str
) -> None:
    """Hostile form input: PostgreSQL text cannot hold NUL; the answer is a plain 401."""
    client = app.test_client()
    response = client.post("/login", data={"username": name, "password": PASSWORD})
    assert response.status_code == 401
    assert "Wrong user name or password." in response.get_data(as_text=True)
    with db.read_session() as s:
        actors = s.execute(
            select(AuditEvent.actor).where(AuditEvent.action == "auth.login_failed")
        ).scalars()
        assert all("\x00" not in actor for actor in actors)
