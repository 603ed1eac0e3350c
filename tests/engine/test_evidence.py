"""A real crawl leaves evidence: a record and WARC per page that exports and verifies."""

from __future__ import annotations

import base64
import gzip
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tests.support.sitekit import Web, policy_text, run_crawl

PNG = b"\x89PNG\r\n\x1a\n" + b"synthetic-media-bytes" * 10
INLINE = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"inline-marker-bytes" * 8).decode()


def _evidence(db_url: str) -> list[Any]:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.page_id, e.final_url, e.status_code, e.headers, e.fetched_at, "
                "e.warc_path FROM evidence_records e ORDER BY e.id"
            )
        ).all()
    engine.dispose()
    return list(rows)


def test_crawled_page_gets_evidence_that_exports_and_verifies(
    web: Web, env: dict[str, str], db_url: str, cli: Any, tmp_path: Path
) -> None:
    site = web["site-a.test"]
    site.page(
        "/",
        f'<img src="/a.png"><img src="data:image/png;base64,{INLINE}"><a href="/b">b</a>',
        ETag='"v1"',
    )
    site.page("/b", "<p>second page</p>")
    site.add("/a.png", PNG, content_type="image/png")
    site.add("/robots.txt", "", status=404, content_type="text/plain")
    policy = policy_text(web, scope={"follow": "host"})
    result = run_crawl(env, tmp_path, web, web.url("site-a.test"), policy=policy)
    assert result.returncode == 0, result.stderr[-3000:]

    rows = _evidence(db_url)
    assert sorted(row.final_url for row in rows) == [
        web.url("site-a.test", "/"),
        web.url("site-a.test", "/b"),
    ]
    home = Path(env["TAKEDOWN_HOME"])
    for row in rows:
        assert row.status_code == 200 and row.fetched_at is not None
        assert (home / "evidence" / row.warc_path).is_file()
    root = next(row for row in rows if row.final_url.endswith(f":{web.port}/"))
    assert "ETag" in str(root.headers) and "Date" in str(root.headers)

    out = tmp_path / "bundle.zip"
    code, _, err = cli("evidence", "export", str(root.page_id), "--output", str(out))
    assert code == 0, err
    code, stdout, err = cli("evidence", "verify", str(out))
    assert code == 0, err
    assert stdout.startswith("OK ")
    with zipfile.ZipFile(out) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            if name.endswith(".gz"):
                data = gzip.decompress(data)
            assert PNG not in data and INLINE.encode() not in data  # hashes, never bytes
