"""False-positive feedback: a reject in review of a page matched only by exchange lists
records an opinion; `exchange feedback` shows it (--dry-run) and reports it with the
library's `report_opinion` where the exchange accepts it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from crawler.db.models import ExchangeOpinion, ReviewItem
from crawler.db.session import Database
from tests.support.review import login, seed_item

S1, S2, S3 = "a1" * 32, "b2" * 32, "c3" * 32


def _exact(name: str, sha256: str, list_name: str) -> dict[str, Any]:
    """A media on example.net whose SHA-256 is on `list_name`."""
    return {
        "url": f"http://example.net/{name}",
        "sha256": sha256,
        "match": (list_name, "known", "sha256", 0),
    }


def _reject(client: FlaskClient, csrf: str, db: Database, item_id: int) -> None:
    client.post(f"/items/{item_id}/claim", data={"csrf_token": csrf})
    with db.read_session() as s:
        item = s.get(ReviewItem, item_id)
        assert item is not None
        version = item.version
    data = {"csrf_token": csrf, "version": version, "action": "reject"}
    assert client.post(f"/items/{item_id}/decision", data=data).status_code == 302


def _opinions(db: Database) -> list[tuple[str, int | None, str]]:
    with db.read_session() as s:
        rows = s.execute(
            select(ExchangeOpinion.hash, ExchangeOpinion.item_id, ExchangeOpinion.status)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def exchange_list(env, cli, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "signals.txt"
    path.write_text(f"video_sha256 {S1}\nvideo_sha256 {S2}\n")
    assert (
        cli(
            "exchange", "add", "fx", "--api", "local_file", "--list", "fx-list", "--file", str(path)
        )[0]
        == 0
    )
    assert cli("exchange", "fetch", "fx")[0] == 0
    return "fx-list"


def test_reject_of_a_page_matched_only_by_an_exchange_records_an_opinion(
    app: Flask, db: Database, cli, exchange_list: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_exchange = seed_item(db, media=[_exact("a.png", S1, exchange_list)])
    also_local = seed_item(
        db, media=[_exact("b.png", S2, exchange_list), _exact("c.png", S3, "local-known")]
    )
    ana = app.test_client()
    csrf = login(ana, "ana")
    _reject(ana, csrf, db, only_exchange)
    _reject(ana, csrf, db, also_local)
    assert _opinions(db) == [(S1, only_exchange, "pending")]

    # --dry-run shows it and sends nothing.
    code, out, err = cli("exchange", "feedback", "--dry-run")
    assert code == 0, err
    assert S1 in out and f"review item {only_exchange}" in out and S2 not in out
    assert _opinions(db) == [(S1, only_exchange, "pending")]

    # The library's local-file exchange does not take negative opinions: kept as such.
    code, _, err = cli("exchange", "feedback")
    assert code == 0, err
    assert "1 not accepted" in err
    assert _opinions(db) == [(S1, only_exchange, "unsupported")]

    # An exchange that takes them: report_opinion is called with the signal.
    from threatexchange.exchanges.fetch_state import SignalOpinionCategory
    from threatexchange.exchanges.impl.file_api import LocalFileSignalExchangeAPI

    calls: list[tuple[Any, str, Any]] = []

    def report_opinion(self: Any, s_type: Any, signal: str, opinion: Any) -> None:
        calls.append((s_type.get_name(), signal, opinion.category))

    monkeypatch.setattr(LocalFileSignalExchangeAPI, "report_opinion", report_opinion)
    with db.session() as s:
        s.execute(update(ExchangeOpinion).values(status="pending"))
    code, _, err = cli("exchange", "feedback")
    assert code == 0 and "1 opinions sent" in err
    assert calls == [("video_sha256", S1, SignalOpinionCategory.NEGATIVE_CLASS)]
    assert _opinions(db) == [(S1, only_exchange, "sent")]
    assert cli("exchange", "feedback", "--dry-run")[1] == ""


def test_upstream_deletion_closes_the_pending_item_it_alone_matched(
    db: Database, cli, exchange_list: str, tmp_path: Path
) -> None:
    gone = seed_item(db, media=[_exact("a.png", S1, exchange_list)])
    kept = seed_item(db, media=[_exact("b.png", S2, exchange_list)])
    (tmp_path / "signals.txt").write_text(f"video_sha256 {S2}\n")
    code, _, err = cli("exchange", "fetch", "fx")
    assert code == 0, err
    assert "1 removed" in err and "1 pages re-assessed" in err
    with db.read_session() as s:
        statuses = {i: s.get(ReviewItem, i).status for i in (gone, kept)}  # type: ignore[union-attr]
    assert statuses == {gone: "suppressed", kept: "pending"}
