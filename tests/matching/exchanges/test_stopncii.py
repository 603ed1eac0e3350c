"""The StopNCII exchange through python-threatexchange against a fake StopNCII on
127.0.0.1 (the library lets the base URL be set in the credentials): paging,
incremental fetch from the stored checkpoint, and faults (401, 429, 500, malformed
pages, nobody listening) stopping at the last good batch."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import select

from crawler.db.models import Exchange, HashEntry, HashList
from crawler.db.session import Database
from tests.support.http_server import QuietHandler, start, stop

FUNCTION_KEY = "fk-5d9e1c7a"
SUBSCRIPTION_KEY = "sk-8b2f4e6d"
PAGE = 3


def _pdq(n: int) -> str:
    return f"{n:064x}"


@dataclass
class FakeStopNCII:
    """FetchHashes over a log of (timestamp, signal type, hash), three records a page."""

    records: list[tuple[int, str, str]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    fail_status: int | None = None  # answer pages after the first with this status
    fail_body: str | None = None  # or with this body
    port: int = 0

    def page(self, start: int, token: str) -> dict[str, Any]:
        rows = sorted(r for r in self.records if r[0] >= start)
        offset = int(token or 0)
        chunk = rows[offset : offset + PAGE]
        more = offset + PAGE < len(rows)
        return {
            "count": len(chunk),
            "nextPageToken": str(offset + PAGE) if more else None,
            "nextSetTimestamp": (chunk[-1][0] + 1) if chunk else start,
            "hasMoreRecords": more,
            "hashRecords": [
                {
                    "lastModtimestamp": ts,
                    "signalType": kind,
                    "hashValue": value,
                    "hashStatus": "Active",
                    "caseNumbers": {},
                    "CSPFeedbacks": [],
                }
                for ts, kind, value in chunk
            ],
        }


@pytest.fixture
def fake() -> Iterator[FakeStopNCII]:
    state = FakeStopNCII()

    class Handler(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            state.requests.append(query)
            if (
                self.headers.get("x-functions-key") != FUNCTION_KEY
                or self.headers.get("Ocp-Apim-Subscription-Key") != SUBSCRIPTION_KEY
            ):
                return self._send(401, b'{"error": "unauthorized"}')
            if url.path != "/v1/FetchHashes":
                return self._send(404, b"{}")
            if query.get("nextPageToken"):
                if state.fail_status:
                    return self._send(state.fail_status, b'{"error": "busy"}')
                if state.fail_body is not None:
                    return self._send(200, state.fail_body.encode())
            body = state.page(int(query["startTimestamp"]), query.get("nextPageToken", ""))
            self._send(200, json.dumps(body).encode())

        def _send(self, status: int, body: bytes) -> None:
            self.reply(status, "application/json", body)

    server, _ = start(Handler, "127.0.0.1")
    state.port = server.server_address[1]
    yield state
    stop(server)


def _credentials(tmp_path: Path, port: int, function_key: str = FUNCTION_KEY) -> Path:
    path = tmp_path / "stopncii.keys"
    path.write_text(f"{function_key},{SUBSCRIPTION_KEY},http://127.0.0.1:{port}/v1\n")
    path.chmod(0o600)
    return path


def _entries(db: Database) -> set[str]:
    with db.read_session() as s:
        rows = s.execute(
            select(HashEntry.hash)
            .join(HashList, HashList.id == HashEntry.list_id)
            .where(HashList.name == "ncii")
        )
        return set(rows.scalars())


def _add(cli, creds: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(
        "exchange",
        "add",
        "sncii",
        "--api",
        "stopncii",
        "--list",
        "ncii",
        "--credentials-file",
        str(creds),
    )
    assert code == 0, err


def test_stopncii_pages_then_fetches_incrementally(
    env, cli, db: Database, fake: FakeStopNCII, tmp_path: Path
) -> None:
    fake.records = [(100 + i, "ImagePDQ", _pdq(i)) for i in range(7)]
    fake.records += [(200, "VideoMD5", "ab" * 16), (201, "URL", "https://example.test/x")]
    _add(cli, _credentials(tmp_path, fake.port))
    code, _, err = cli("exchange", "fetch", "sncii")
    assert code == 0, err
    assert "3 batches" in err and "8 entries added" in err and "1 url" in err
    assert _entries(db) == {_pdq(i) for i in range(7)} | {"ab" * 16}
    assert FUNCTION_KEY not in err and SUBSCRIPTION_KEY not in err

    # The next fetch starts from the stored checkpoint, not from the beginning.
    fake.requests.clear()
    fake.records.append((300, "ImagePDQ", _pdq(99)))
    code, _, err = cli("exchange", "fetch", "sncii")
    assert code == 0, err
    assert fake.requests[0]["startTimestamp"] == "202"
    assert "1 entries added" in err
    assert _pdq(99) in _entries(db)
    with db.read_session() as s:
        row = s.execute(select(Exchange)).scalar_one()
        assert row.checkpoint is not None and row.checkpoint["update_time"] == 301
        assert FUNCTION_KEY not in json.dumps(row.config)


@pytest.mark.parametrize(
    ("fault", "exit_code"),
    [
        ({"fail_status": 500}, 3),
        ({"fail_status": 429}, 3),
        ({"fail_body": "<html>oops"}, 1),
        ({"fail_body": '{"count": 1}'}, 1),
    ],
)
def test_fault_stops_at_the_last_good_batch_and_the_next_fetch_resumes(
    env,
    cli,
    db: Database,
    fake: FakeStopNCII,
    tmp_path: Path,
    fault: dict[str, Any],
    exit_code: int,
) -> None:
    fake.records = [(100 + i, "ImagePDQ", _pdq(i)) for i in range(7)]
    _add(cli, _credentials(tmp_path, fake.port))
    for key, value in fault.items():
        setattr(fake, key, value)
    code, _, err = cli("exchange", "fetch", "sncii")
    assert code == exit_code, err
    assert "Traceback" not in err
    assert _entries(db) == {_pdq(i) for i in range(3)}  # the first page only
    with db.read_session() as s:
        row = s.execute(select(Exchange)).scalar_one()
        assert row.checkpoint is not None and row.checkpoint["update_time"] == 103
        assert row.last_status == "failed"
    fake.fail_status, fake.fail_body = None, None
    fake.requests.clear()
    code, _, err = cli("exchange", "fetch", "sncii")
    assert code == 0, err
    assert fake.requests[0]["startTimestamp"] == "103"
    assert _entries(db) == {_pdq(i) for i in range(7)}


def test_refused_credentials_exit_1_without_showing_them(
    env, cli, db: Database, fake: FakeStopNCII, tmp_path: Path
) -> None:
    fake.records = [(100, "ImagePDQ", _pdq(1))]
    _add(cli, _credentials(tmp_path, fake.port, function_key="fk-wrong-4c2a"))
    code, out, err = cli("exchange", "fetch", "sncii")
    assert code == 1 and "credentials refused (HTTP 401)" in err
    assert "fk-wrong-4c2a" not in err + out and SUBSCRIPTION_KEY not in err + out
    assert _entries(db) == set()


def test_credentials_from_the_environment_and_nobody_listening(
    env, cli, db: Database, fake: FakeStopNCII, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.records = [(100, "ImagePDQ", _pdq(1))]
    assert cli("exchange", "add", "sncii", "--api", "stopncii", "--list", "ncii")[0] == 0
    value = f"{FUNCTION_KEY},{SUBSCRIPTION_KEY},http://127.0.0.1:{fake.port}/v1"
    monkeypatch.setenv("TAKEDOWN_EXCHANGE_SNCII_CREDENTIALS", value)
    assert cli("exchange", "fetch", "sncii")[0] == 0
    assert _entries(db) == {_pdq(1)}
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv(
        "TAKEDOWN_EXCHANGE_SNCII_CREDENTIALS",
        f"{FUNCTION_KEY},{SUBSCRIPTION_KEY},http://127.0.0.1:{closed}/v1",
    )
    code, _, err = cli("exchange", "fetch", "sncii")
    assert code == 3 and "unreachable" in err, err
    assert SUBSCRIPTION_KEY not in err
