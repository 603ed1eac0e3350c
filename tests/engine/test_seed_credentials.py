"""A seed's user name and password never reach the database or the site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tests.support.sitekit import Web, policy_text, run_crawl

SECRETS = ("hunter2", "ann:", "s3cret", "bob:")


def _stored_text(db_url: str) -> str:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = [
            *conn.execute(text("SELECT url, final_url, error FROM pages")).all(),
            *conn.execute(text("SELECT url FROM frontier")).all(),
        ]
    engine.dispose()
    return repr(rows)


def test_seed_credentials_are_stripped_before_storing(
    web: Web, env: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    site = web["site-a.test"]
    site.page("/", "<p>home</p>")
    site.add("/robots.txt", "", status=404, content_type="text/plain")
    good = web.url("site-a.test", "/").replace("http://", "http://ann:hunter2@")
    failing = web.url("site-a.test", "/gone").replace("http://", "http://bob:s3cret@")
    policy = policy_text(web, scope={"follow": "host"})
    result = run_crawl(env, tmp_path, web, good, failing, policy=policy)
    stored = _stored_text(db_url)
    assert web.url("site-a.test", "/") in stored and "/gone" in stored, result.stderr[-3000:]
    for secret in SECRETS:
        assert secret not in stored
        assert secret not in result.stderr
    assert result.stderr.count("user name and password removed") == 2
    sent: list[Any] = [h.headers for h in web.hits]
    assert sent and not any("Authorization" in h for h in sent)
