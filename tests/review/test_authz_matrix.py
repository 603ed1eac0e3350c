"""Every route of the app x anonymous/analyst/lead/admin -> the expected status (A-08).

The cases are generated from the app's own route table: a route added without a row in
`POLICY` fails `test_policy_covers_every_route`, so nobody can add an unprotected page by
forgetting the matrix. Each cell signs in afresh (one role, one client) and sends a
request that passes CSRF, so what it measures is authorization alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from werkzeug.routing import Rule

from crawler.db.session import Database
from tests.support.review import Clock, login, make_app, seed_item

ROLES = ("anonymous", "analyst", "lead", "admin")
ANY, LEADS, ADMIN, PUBLIC = ("analyst", "lead", "admin"), ("lead", "admin"), ("admin",), ROLES


@dataclass(frozen=True)
class Cell:
    """Who may call an endpoint, and the status an allowed caller gets with our request."""

    allowed: tuple[str, ...]
    ok: int


# endpoint -> who may call it; `ok` is the status for an allowed caller with the request
# built by `_request` (an empty form or body where one is needed: 400 shows it got past
# authorization to validation).
POLICY: dict[str, Cell] = {
    "static": Cell(PUBLIC, 200),
    "views.index": Cell(PUBLIC, 302),
    "views.login_form": Cell(PUBLIC, 200),
    "views.login": Cell(PUBLIC, 401),  # wrong password: refused for everyone alike
    "api.openapi": Cell(PUBLIC, 200),
    "views.logout": Cell(ANY, 302),
    "views.queue_page": Cell(ANY, 200),
    "views.next_item": Cell(ANY, 302),
    "views.item_page": Cell(ANY, 200),
    "views.claim": Cell(ANY, 302),
    "views.renew": Cell(ANY, 302),
    "views.decision": Cell(ANY, 400),
    "views.preview": Cell(ANY, 404),
    "views.reveal": Cell(ANY, 404),
    "views.keyframes": Cell(ANY, 404),
    "views.reveal_keyframes": Cell(ANY, 404),
    "views.leave_warning": Cell(ANY, 200),
    "views.exposure_page": Cell(ANY, 200),
    "views.notices_page": Cell(ANY, 200),
    "views.resolve_dispute": Cell(LEADS, 400),  # no dispute named
    "views.account_page": Cell(ANY, 200),
    "views.totp_start": Cell(ANY, 200),
    "views.totp_confirm": Cell(ANY, 400),
    "views.create_token": Cell(ANY, 200),
    "views.audit_page": Cell(LEADS, 200),
    "views.settled_page": Cell(LEADS, 200),
    "views.settled_revert": Cell(LEADS, 400),
    "views.benign_proposals_page": Cell(LEADS, 200),
    "views.benign_proposals_agree": Cell(LEADS, 400),
    "views.users_page": Cell(ADMIN, 200),
    "views.change_role": Cell(ADMIN, 302),
    "api.me": Cell(ANY, 200),
    "api.queue_list": Cell(ANY, 200),
    "api.queue_next": Cell(ANY, 200),
    "api.item": Cell(ANY, 200),
    "api.lease": Cell(ANY, 409),  # nobody in the matrix holds the item
    "api.decision": Cell(ANY, 400),
    "api.exposure_api": Cell(ANY, 200),
    "api.notices": Cell(ANY, 200),
    "api.audit": Cell(LEADS, 200),
    "console.settings_page": Cell(ANY, 200),
    "console.save_settings": Cell(ANY, 400),  # an empty form: refused by validation
    "console.reset_settings": Cell(ANY, 302),
    "console.save_team_default": Cell(ADMIN, 400),
    "console.dashboard_page": Cell(LEADS, 200),
}


def _routes() -> list[tuple[str, str]]:
    app = make_app("sqlite://", secret_key="route-table-only-0123456789")
    return sorted(
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    )


def _expected(endpoint: str, method: str, role: str) -> int:
    cell = POLICY[endpoint]
    if role in cell.allowed:
        return cell.ok
    if role != "anonymous":
        return 403
    html_get = method == "GET" and not endpoint.startswith("api.")
    return 302 if html_get else 401  # anonymous pages go to the login form


def test_policy_covers_every_route() -> None:
    assert {endpoint for endpoint, _ in _routes()} == set(POLICY)


@pytest.fixture
def matrix_app(db_url: str, users: dict[str, int], clock: Clock) -> Iterator[Flask]:
    app = make_app(db_url, clock=clock)
    yield app
    app.extensions["review_db"].dispose()


def _path(app: Flask, endpoint: str, item_id: int, user_id: int) -> str:
    rule: Rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values: dict[str, Any] = {"item_id": item_id, "observation_id": 999_999, "user_id": user_id}
    args = {name: values[name] for name in rule.arguments if name in values}
    if endpoint == "static":
        args["filename"] = "app.css"
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **args)


def _request(app: Flask, role: str, endpoint: str, method: str, path: str) -> int:
    client = app.test_client()
    headers: dict[str, str] = {}
    form: dict[str, str] = {}
    if role != "anonymous":
        csrf = login(client, {"analyst": "ana", "lead": "lee", "admin": "ada"}[role])
        # Pages send the token as a form field; the header marks the page's lease timer.
        if endpoint.startswith("api."):
            headers["X-CSRF-Token"] = csrf
        else:
            form["csrf_token"] = csrf
    if endpoint == "views.login":
        form = {"username": "ana", "password": "not the password"}
    if endpoint == "views.change_role":
        form["role"] = "lead"
    if method == "GET":
        return client.get(path, headers=headers).status_code
    if endpoint.startswith("api."):
        return client.post(path, json={}, headers=headers).status_code
    return client.post(path, data=form, headers=headers).status_code


@pytest.mark.parametrize("route", _routes(), ids=lambda r: f"{r[1]} {r[0]}")
def test_route_by_role(
    matrix_app: Flask, db: Database, users: dict[str, int], route: tuple[str, str]
) -> None:
    endpoint, method = route
    item_id = seed_item(db)
    for _ in ROLES:  # one free item per role for the claims
        seed_item(db)
    path = _path(matrix_app, endpoint, item_id, users["lou"])
    got = {role: _request(matrix_app, role, endpoint, method, path) for role in ROLES}
    want = {role: _expected(endpoint, method, role) for role in ROLES}
    assert got == want
