"""export hashlist: confirmed media only, in the import format, imported back unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import select

from crawler.db.models import AuditEvent, HashEntry, Media, Observation
from crawler.db.session import Database
from tests.support import notice_seed as seed


def _media(s, page_id: int, n: int, pdq: bool = True) -> Media:  # type: ignore[no-untyped-def]
    data = f"synthetic-{n}".encode()
    m = Media(
        sha256=hashlib.sha256(data).hexdigest(),
        sha1=hashlib.sha1(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        pdq=("ab" * 32) if pdq else None,
        bytes=len(data),
        media_type="image",
    )
    s.add(m)
    s.flush()
    s.add(
        Observation(
            page_id=page_id, media_id=m.id, media_url=f"http://x.example/{n}.png", status="hashed"
        )
    )
    s.flush()
    return m


def test_round_trip_through_hashlist_import(env, cli, db: Database, tmp_path: Path) -> None:
    with db.session() as s:
        h = seed.host(s, "a.example.net", "198.51.100.1", contact="abuse@hoster.example")
        confirmed = seed.item(s, h, category="B")
        removed = seed.item(s, h, status="removed", category="A")
        rejected = seed.item(s, h, status="rejected")
        shared = _media(s, confirmed.page_id, 1)
        s.add(
            Observation(
                page_id=removed.page_id,
                media_id=shared.id,
                media_url="http://x.example/again.png",
                status="hashed",
            )
        )
        _media(s, removed.page_id, 2, pdq=False)
        _media(s, rejected.page_id, 3)
    target = tmp_path / "shared.csv"
    code, _, err = cli("export", "hashlist", "--output", str(target))
    assert code == 0, err
    lines = target.read_text().splitlines()
    assert lines[0] == "type,hash,category,reference"
    assert len(lines) == 1 + 4 + 3  # shared: 4 hashes with pdq; the other: 3
    assert all(line.split(",")[2] == "A" for line in lines[1:])  # most severe wins
    code, _, err = cli("hashlist", "import", str(target), "--name", "partner")
    assert code == 0, err
    with db.read_session() as s:
        entries = s.execute(select(HashEntry.hash_type, HashEntry.hash)).all()
        media = s.execute(select(Media)).scalars().all()
        audit = s.execute(select(AuditEvent.action)).scalars().all()
    expected = {("sha256", m.sha256) for m in media[:2]} | {("md5", m.md5) for m in media[:2]}
    assert expected <= set(entries) and len(entries) == 7
    assert not any(media[2].sha256 == h for _, h in entries)  # rejected item's media stays out
    assert "export.hashlist" in audit
