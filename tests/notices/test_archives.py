"""A notice names each archive on a noticed page with how many matched members it holds,
in the JSON export, and in the text and HTML of the .eml. Both engines;
synthetic images zipped in memory."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

from sqlalchemy import select, update

from crawler.db.models import Host, ReviewItem
from crawler.db.session import Database
from crawler.media.hashing import hash_media
from crawler.media.hashlists import HashRow, import_rows
from tests.support import notice_seed as seed
from tests.support.archives import make_zip, store_bodies
from tests.support.media import jpeg

A, B, C, D = (jpeg(160, 120, seed) for seed in (21, 22, 23, 24))


def _seed(db: Database, benign: bytes | None = None) -> None:
    """One page with a ZIP holding two known images (one nested), one unknown; a second
    ZIP with no known member."""
    with db.session() as session:
        rows = [
            HashRow("sha256", hash_media(A).sha256, "A", "known-a"),
            HashRow("sha256", hash_media(B).sha256, "A", "known-b"),
        ]
        import_rows(session, "known", rows)
        if benign is not None:
            ok = [HashRow("sha256", hash_media(benign).sha256, None, "ok")]
            import_rows(session, "benign", ok, kind="benign")
    pack = make_zip({"a.jpg": A, "deeper/inner.zip": make_zip({"b.jpg": B}), "c.jpg": C})
    store_bodies(db, {"pack.zip": pack, "clean.zip": make_zip({"d.jpg": D})})
    with db.session() as session:
        session.execute(update(Host).values(abuse_contact="abuse@hoster.example"))
        session.execute(update(Host).values(abuse_contact_source="rdap"))
        session.execute(update(ReviewItem).values(status="confirmed", category="A"))


def test_json_names_the_archive_with_its_matched_members(env, cli, db: Database) -> None:
    _seed(db)
    assert cli("notices", "build")[0] == 0
    code, out, err = cli("notices", "export", "--format", "json")
    assert code == 0, err
    (notice,) = json.loads(out)
    (url,) = notice["urls"]
    assert url["url"] == "http://127.0.0.2/downloads"  # existing fields unchanged
    assert url["archive_members_matched"] == 2
    assert url["archives"] == [{"url": "http://127.0.0.3/pack.zip", "members_matched": 2}]


def test_eml_text_and_html_name_the_archive(env, cli, db: Database, tmp_path: Path) -> None:
    _seed(db)
    assert cli("notices", "build")[0] == 0
    folder = tmp_path / "out"
    assert cli("notices", "export", "--format", "eml", "--output", str(folder))[0] == 0
    (path,) = folder.iterdir()
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    plain = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "archive http://127.0.0.3/pack.zip holds 2 matched files" in plain
    assert "clean.zip" not in plain
    assert "<bdi>http://127.0.0.3/pack.zip</bdi></code> holds 2 matched files" in html


def test_a_benign_member_is_not_counted_and_a_plain_page_says_zero(env, cli, db: Database) -> None:
    _seed(db, benign=A)
    with db.session() as session:
        plain_host = session.execute(select(Host)).scalars().first()
        seed.item(session, plain_host, url="http://127.0.0.2/plain")
    assert cli("notices", "build")[0] == 0
    (notice,) = json.loads(cli("notices", "export", "--format", "json")[1])
    by_url = {u["url"]: u for u in notice["urls"]}
    assert by_url["http://127.0.0.2/downloads"]["archive_members_matched"] == 1
    assert by_url["http://127.0.0.2/downloads"]["archives"][0]["members_matched"] == 1
    assert by_url["http://127.0.0.2/plain"]["archive_members_matched"] == 0
    assert by_url["http://127.0.0.2/plain"]["archives"] == []


def test_rematch_drops_a_benign_copy_made_before_the_fix(env, cli, db: Database) -> None:
    """An archive given its benign member's match (as an earlier version did) loses it on
    `rematch`, and its page is a candidate again."""
    from sqlalchemy import delete, insert

    from crawler.db.models import ArchiveMember, HashList, Match, Media
    from crawler.matching.rematch import rematch

    _seed(db, benign=A)
    with db.session() as session:
        archive = session.execute(select(Media.id).where(Media.media_type == "archive"))
        pack_id = min(archive.scalars())
        benign = session.execute(
            select(Match)
            .join(HashList, HashList.id == Match.list_id)
            .join(ArchiveMember, ArchiveMember.media_id == Match.media_id)
            .where(HashList.kind == "benign", ArchiveMember.archive_id == pack_id)
        ).scalar_one()
        session.execute(
            insert(Match).values(
                media_id=pack_id,
                list_id=benign.list_id,
                entry_id=benign.entry_id,
                match_type=benign.match_type,
                distance=0,
            )
        )
        session.execute(delete(ReviewItem))
    rematch(db)
    with db.read_session() as session:
        kinds = session.execute(
            select(HashList.kind)
            .join(Match, Match.list_id == HashList.id)
            .where(Match.media_id == pack_id)
        ).scalars()
        assert sorted(kinds) == ["known", "known"]  # A's and B's known copies; no benign one
        assert session.execute(select(ReviewItem)).scalars().all() != []
