"""The 64 KiB body limit holds however the body is framed.

Raw HTTP/1.1 requests with `Transfer-Encoding: chunked` against a served app: the
development server and waitress in a thread, gunicorn through `takedown review serve`.
A chunked body over the limit is refused with 413 before any view runs (nothing decided,
no login attempt audited); one within the limit still works.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from crawler.db.models import AuditEvent, Decision, ReviewItem
from crawler.db.session import Database
from tests.support.review import PASSWORD, SECRET, make_app, review_serve, seed_item

LIMIT = 64 * 1024
FORM = "application/x-www-form-urlencoded"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_VERSION = re.compile(r'name="version" value="(\d+)"')


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    cookie: str | None = None,
    chunk: int = 16 * 1024,
) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection; the body (if any) sent chunked from a thread."""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if cookie:
        head.append(f"Cookie: {cookie}")
    if body is not None:
        head += [f"Content-Type: {FORM}", "Transfer-Encoding: chunked"]
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)

    def send() -> None:
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            if body is not None:
                for i in range(0, len(body), chunk):
                    part = body[i : i + chunk]
                    sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed before taking the whole body

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    data, headers, length = bytearray(), dict[str, str](), None
    try:  # read the answer as far as its Content-Length: a server may still drain the body
        while (length is None or len(data) < length) and (got := sock.recv(65536)):
            data += got
            if length is None and b"\r\n\r\n" in data:
                header_text, _, rest = bytes(data).partition(b"\r\n\r\n")
                lines = header_text.decode("latin-1").split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
                headers["status"] = lines[0].split()[1]
                length = int(headers.get("content-length", 1 << 40))
                data = bytearray(rest)
    except ConnectionResetError:
        pass
    finally:
        sock.close()
        sender.join(timeout=60)
    return int(headers["status"]), headers, bytes(data)


def _counts(db: Database) -> tuple[int, int]:
    with db.read_session() as s:
        logins = s.execute(
            select(func.count()).where(AuditEvent.action.like("auth.login%"))
        ).scalar_one()
        decisions = s.execute(select(func.count()).select_from(Decision)).scalar_one()
    return logins, decisions


def _check_limit(port: int, db: Database) -> None:
    """The issue's probes, then a decision over the limit by a signed-in analyst."""
    item = seed_item(db)
    big_field = urlencode({"username": "a" * (1 << 20), "password": "x"}).encode()
    many_fields = b"&".join(b"f%d=1" % i for i in range(200_000)) + b"&username=ana&password=x"
    just_over = urlencode({"username": "ana", "password": "x" * LIMIT}).encode()
    for body in (big_field, many_fields, just_over):
        status, _, _ = _request(port, "POST", "/login", body)
        assert status == 413
    assert _counts(db) == (0, 0)  # no login attempt was even looked at

    login = urlencode({"username": "ana", "password": PASSWORD}).encode()
    status, headers, _ = _request(port, "POST", "/login", login)  # chunked within the limit
    assert status == 302, headers
    cookie = headers["set-cookie"].split(";")[0]
    csrf = _CSRF.search(_request(port, "GET", "/queue", cookie=cookie)[2].decode())
    assert csrf
    claim = urlencode({"csrf_token": csrf.group(1)}).encode()
    assert _request(port, "POST", f"/items/{item}/claim", claim, cookie=cookie)[0] == 302
    status, _, page = _request(port, "GET", f"/items/{item}", cookie=cookie)
    version = _VERSION.search(page.decode())
    assert status == 200 and version
    form = {"csrf_token": csrf.group(1), "version": version.group(1), "action": "reject"}
    padded = urlencode({**form, "pad": "p" * LIMIT}).encode()
    status, _, _ = _request(port, "POST", f"/items/{item}/decision", padded, cookie=cookie)
    assert status == 413
    with db.read_session() as s:
        row = s.get(ReviewItem, item)
        assert row is not None and row.status == "pending"
    assert _counts(db)[1] == 0
    status, _, _ = _request(
        port, "POST", f"/items/{item}/decision", urlencode(form).encode(), cookie=cookie
    )
    assert status == 302  # the same decision, chunked within the limit, is recorded
    assert _counts(db)[1] == 1


@pytest.fixture(params=["werkzeug", "waitress"])
def served(request: Any, db_url: str, users: dict[str, int]) -> Iterator[int]:
    app = make_app(db_url)
    if request.param == "werkzeug":
        from werkzeug.serving import make_server

        server: Any = make_server("127.0.0.1", 0, app, threaded=True)
        port, run, stop = server.server_port, server.serve_forever, server.shutdown
    else:
        import waitress.server

        server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=4)
        port, run, stop = server.effective_port, server.run, server.close
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop()
        app.extensions["review_db"].dispose()


def test_chunked_bodies_over_the_limit_are_refused(served: int, db: Database) -> None:
    _check_limit(served, db)


def test_chunked_bodies_over_the_limit_are_refused_by_gunicorn(
    db: Database, users: dict[str, int], tmp_path: Path
) -> None:
    """`takedown review serve` (gunicorn, which passes a chunked body on without a length)."""
    with review_serve(db.url, tmp_path, SECRET, workers=1) as (_, port):
        _check_limit(port, db)
