"""One rule for what an abuse address is; no notice is built or sent to an IP literal.

Formerly `attribution.guess_contact` refused IP literals but `notices.contact_for`
did not, so `notices build` addressed a notice to `abuse@127.0.0.2`. Now a confirmed item
with no valid recipient waits, and `notices due` and the app's /notices page say why.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crawler.db.models import Notice
from crawler.db.session import Database
from crawler.hosting import attribution
from crawler.hosting.abuse_address import address_problem, valid_abuse_address
from crawler.notices import build as notices
from crawler.notices import notice_mail
from crawler.notices.build import build_notices, outbox, waiting
from tests.support import notice_seed as seed
from tests.support.notice_seed import T0
from tests.support.review import cheap_password_hashing, login, make_app, users  # noqa: F401

CFG = seed.settings()

REFUSED = [
    "abuse@127.0.0.2",
    "abuse@[127.0.0.2]",
    "abuse@0x7f000001",
    "abuse@2130706433",
    "abuse@[::1]",
    "abuse@10.1.2",
    "abuse@x.localhost",
    "abuse@host.123",
    "Abuse <abuse@example.net>",
    "abuse@example.net\r\nBcc: x@example.net",
    "",
    None,
]


@pytest.mark.parametrize("address", REFUSED)
def test_every_caller_refuses_ip_literals_and_non_addresses(address: str | None) -> None:
    assert not valid_abuse_address(address) and address_problem(address)
    # One function, whoever asks.
    assert notices.valid_address is valid_abuse_address
    assert notice_mail.valid_address is valid_abuse_address


def test_guesses_come_from_the_same_rule() -> None:
    assert valid_abuse_address("abuse@hoster.example.net")
    assert "IP address" in str(address_problem("abuse@127.0.0.2"))
    for domain in ("127.0.0.2", "0x7f000001", "[::1]", "x.localhost", "nodot", None):
        assert attribution.guess_contact(domain) is None, domain
    assert attribution.guess_contact("example.org") == "abuse@example.org"


def _seed_ip_hosts(db: Database) -> tuple[int, int, int]:
    """A host named by an IP (no RDAP contact), one whose RDAP contact is an IP literal,
    and an open draft built to `abuse@127.0.0.2` by an earlier version."""
    with db.session() as s:
        bare = seed.host(s, "127.0.0.2", "127.0.0.2", domain="127.0.0.2")
        rdap_ip = seed.host(s, "127.0.0.4", "127.0.0.4", contact="abuse@127.0.0.9")
        old = seed.host(s, "127.0.0.5", "127.0.0.5", domain="127.0.0.5")
        a = seed.item(s, bare, url="http://127.0.0.2/gallery/")
        b = seed.item(s, rdap_ip, url="http://127.0.0.4/page/")
        s.add(Notice(serial="TD-2026-000001", abuse_contact="abuse@127.0.0.5", status="draft",
                     created_at=T0))  # fmt: skip
        seed.item(s, old, status="pending")
        return a.id, b.id, old.id


def test_an_ip_host_waits_with_a_reason_and_nothing_goes_to_an_ip(db: Database) -> None:
    a, b, _ = _seed_ip_hosts(db)
    with db.session() as s:
        result = build_notices(s, CFG, T0)
    assert result.created == []
    reasons = {w.item_id: w.reason for w in result.waiting}
    assert set(reasons) == {a, b}
    assert "IP address" in reasons[a] and "'127.0.0.2'" in reasons[a]
    assert "abuse@127.0.0.9" in reasons[b] and "IP address" in reasons[b]
    with db.read_session() as s:
        contacts = set(s.execute(select(Notice.abuse_contact)).scalars())
        assert contacts == {"abuse@127.0.0.5"}  # only the old one; nothing new
        assert outbox(s, CFG, T0) == []  # the old draft is not due: it waits
        waits = waiting(s)
        assert {w.item_id for w in waits.items} == {a, b}
        assert [(n.serial, "IP address" in why) for n, why in waits.notices] == [
            ("TD-2026-000001", True)
        ]


def test_notices_due_lists_what_waits_with_the_reason(
    db: Database, env: dict[str, str], cli
) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = _seed_ip_hosts(db)
    assert cli("notices", "build")[0] == 0
    code, out, err = cli("notices", "due")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3, out
    assert lines[0].startswith("TD-2026-000001\twaiting\tdraft\t") and "IP address" in lines[0]
    assert lines[1].startswith(f"item {a}\twaiting\t") and "http://127.0.0.2/gallery/" in lines[1]
    assert lines[2].startswith(f"item {b}\twaiting\t") and "abuse@127.0.0.9" in lines[2]
    with db.read_session() as s:
        assert set(s.execute(select(Notice.abuse_contact)).scalars()) == {"abuse@127.0.0.5"}


def test_the_notices_page_shows_what_waits_and_why(
    db: Database,
    db_url: str,
    users: dict[str, int],  # noqa: F811
) -> None:
    a, _, _ = _seed_ip_hosts(db)
    app = make_app(db_url)
    try:
        client = app.test_client()
        login(client, "lee")
        page = client.get("/notices")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
    finally:
        app.extensions["review_db"].dispose()
    assert "Waiting for a valid recipient" in html
    assert f"Item #{a}" in html and "http://127.0.0.2/gallery/" in html
    assert "is an IP address, not a domain to write to" in html
    assert "TD-2026-000001" in html
