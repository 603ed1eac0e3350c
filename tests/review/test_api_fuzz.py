"""A-11: schemathesis over /openapi.json — no input, valid or not, gives a server error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings

from crawler.db.session import Database
from review.auth import create_api_token
from tests.support.review import make_app, seed_item

schemathesis = pytest.importorskip("schemathesis")
MAX_EXAMPLES = 25


@pytest.fixture
def fuzz_app(db_url: str, users: dict[str, int], db: Database) -> Iterator[tuple[Flask, str]]:
    for i in range(3):
        seed_item(db, priority=i)
    with db.session() as s:
        token = create_api_token(s, users["lee"], "fuzz", None)  # type: ignore[arg-type]
    app = make_app(db_url)
    yield app, token
    app.extensions["review_db"].dispose()


def test_openapi_is_valid_and_no_operation_gives_5xx(fuzz_app: tuple[Flask, str]) -> None:
    app, token = fuzz_app
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    failures: list[str] = []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case):  # type: ignore[no-untyped-def]
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
            response = case.call()
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
            case.validate_response(response, checks=[schemathesis.checks.not_a_server_error])

        check()
    assert failures == []


def test_extra_fields_and_wrong_types_are_400(fuzz_app: tuple[Flask, str]) -> None:
    app, token = fuzz_app
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert (
        client.post("/api/v1/queue/next", json={"role": "admin"}, headers=auth).status_code == 400
    )
    bad = {"action": "confirm", "version": True, "claimed_by": 1}
    assert client.post("/api/v1/items/1/decision", json=bad, headers=auth).status_code == 400
    assert (
        client.post(
            "/api/v1/items/1/decision",
            data="x" * 100_000,
            headers={**auth, "Content-Type": "application/json"},
        ).status_code
        == 413
    )
    assert client.get("/api/v1/me").status_code == 401
