"""`exchange add --action`, vPDQ signals from an exchange, and exchange names under the
shared rule for names (crawler/names.py); local-file exchange, both engines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import select

from crawler.db.models import AuditEvent, Exchange, HashEntry, HashList
from crawler.db.session import Database
from crawler.media.video import parse_vpdq, serialise

PDQ_A = "f" * 16 + "0" * 48
PDQ_B = "0f" * 32
MD5 = "ab" * 16


def _add(cli, name: str, path: Path, *extra: str) -> tuple[int, str, str]:
    return cli(
        "exchange", "add", name, "--api", "local_file", "--list", "lx", "--file", str(path), *extra
    )  # fmt: skip


def _list(db: Database, name: str = "lx") -> HashList | None:
    with db.read_session() as s:
        row = s.execute(select(HashList).where(HashList.name == name)).scalar()
        if row is not None:
            s.expunge(row)
        return row


def _entries(db: Database) -> list[tuple[str, str, str | None]]:
    with db.read_session() as s:
        rows = s.execute(
            select(HashEntry.hash_type, HashEntry.hash, HashEntry.vpdq)
            .join(HashList, HashList.id == HashEntry.list_id)
            .where(HashList.name == "lx")
            .order_by(HashEntry.hash_type, HashEntry.hash)
        )
        return [(t, h, v) for t, h, v in rows]


def test_action_auto_is_passed_to_the_list_and_audited(
    env, cli, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "signals.txt"
    path.write_text(f"video_md5 {MD5}\n")
    code, _, err = _add(cli, "partner", path, "--action", "auto")
    assert code == 0, err
    hash_list = _list(db)
    assert hash_list is not None and (hash_list.kind, hash_list.action) == ("known", "auto")
    assert cli("exchange", "fetch", "partner")[0] == 0
    assert _entries(db) == [("md5", MD5, None)]
    with db.read_session() as s:
        added = s.execute(
            select(AuditEvent.details).where(AuditEvent.action == "exchange.added")
        ).scalar_one()
    assert added is not None and added["action"] == "auto"
    # The default stays review.
    code, _, err = cli(
        "exchange", "add", "other", "--api", "local_file", "--list", "ly", "--file", str(path)
    )  # fmt: skip
    assert code == 0, err
    default = _list(db, "ly")
    assert default is not None and default.action == "review"


def test_bad_action_is_refused_with_exit_2_and_nothing_written(
    env, cli, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "signals.txt"
    path.write_text(f"video_md5 {MD5}\n")
    for extra, words in (
        (("--action", "sometimes"), "must be review or auto"),
        (("--action", "auto", "--kind", "benign"), "only a known list"),
    ):
        code, _, err = _add(cli, "partner", path, *extra)
        assert code == 2 and words in err, (extra, err)
        assert "Traceback" not in err
    with db.read_session() as s:
        assert s.execute(select(Exchange)).first() is None
        assert s.execute(select(HashList)).first() is None


def test_vpdq_signals_become_vpdq_entries(env, cli, db: Database, tmp_path: Path) -> None:
    # The library's own serialisation (spaces after commas); ours is the canonical form.
    upstream = json.dumps([f"{PDQ_A},100,0.0", f"{PDQ_B},90,1.0"])
    canonical = serialise(parse_vpdq(upstream))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    path = tmp_path / "signals.txt"
    path.write_text(
        f"vpdq {upstream}\n"
        'vpdq ["not a frame"]\n'
        f"vpdq {json.dumps([f'{PDQ_A},101,0.0'])}\n"  # quality out of range
        f"video_md5 {MD5}\n"
    )
    assert _add(cli, "videos", path)[0] == 0
    code, _, err = cli("exchange", "fetch", "videos")
    assert code == 0, err
    assert "2 entries added" in err and "2 malformed" in err
    assert _entries(db) == [("md5", MD5, None), ("vpdq", digest, canonical)]
    # The same video in a hash-list file is the same entry (same hash, same serialisation).
    listed = tmp_path / "list.csv"
    quoted = '"' + upstream.replace('"', '""') + '"'  # CSV quoting
    listed.write_text(f"type,hash\nvpdq,{quoted}\n")
    assert cli("hashlist", "import", str(listed), "--name", "lz")[0] == 0
    with db.read_session() as s:
        other = s.execute(
            select(HashEntry.hash, HashEntry.vpdq)
            .join(HashList, HashList.id == HashEntry.list_id)
            .where(HashList.name == "lz")
        ).one()
    assert tuple(other) == (digest, canonical)
    # Upstream deletion removes the vpdq entry like any other.
    path.write_text(f"video_md5 {MD5}\n")
    code, _, err = cli("exchange", "fetch", "videos")
    assert code == 0 and "0 entries added, 1 removed" in err, err
    assert _entries(db) == [("md5", MD5, None)]


def test_exchange_names_follow_the_shared_rule(env, cli, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "signals.txt"
    path.write_text(f"video_md5 {MD5}\n")
    for bad, words in (
        ("", "is empty"),
        (" partner", "starts or ends with a space"),
        ("x" * 101, "longer than 100"),
        ("part\x00ner", "control or invisible"),
        ("part\u202ener", "control or invisible"),
        ("-partner", "may not start with '-'"),
    ):
        code, _, err = cli(
            "exchange", "add", "--api", "local_file", "--list", "lx", "--file", str(path), "--",
            bad,
        )  # fmt: skip
        assert code == 2, (bad, err)
        assert words in err and "Traceback" not in err, (bad, err)
    with db.read_session() as s:
        assert s.execute(select(Exchange)).first() is None
        assert s.execute(select(HashList)).first() is None
    # A name the shared rule accepts (it was refused before: spaces, parentheses, é).
    name = "Hotline NL (équipe)"
    code, _, err = _add(cli, name, path)
    assert code == 0, err
    assert cli("exchange", "fetch", name)[0] == 0
    assert _entries(db) == [("md5", MD5, None)]


def test_a_vpdq_opinion_is_reported_with_the_serialisation(
    env, cli, db: Database, tmp_path: Path, monkeypatch
) -> None:
    from threatexchange.exchanges.impl.file_api import LocalFileSignalExchangeAPI

    from crawler.db.models import ExchangeOpinion

    upstream = json.dumps([f"{PDQ_A},100,0.0"])
    canonical = serialise(parse_vpdq(upstream))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    path = tmp_path / "signals.txt"
    path.write_text(f"vpdq {upstream}\n")
    assert _add(cli, "videos", path)[0] == 0
    assert cli("exchange", "fetch", "videos")[0] == 0
    with db.session() as s:
        exchange_id = s.execute(select(Exchange.id)).scalar_one()
        s.add(ExchangeOpinion(exchange_id=exchange_id, hash_type="vpdq", hash=digest))
    calls: list[tuple[str, str]] = []

    def report_opinion(self, s_type, signal, opinion) -> None:  # type: ignore[no-untyped-def]
        calls.append((s_type.get_name(), signal))

    monkeypatch.setattr(LocalFileSignalExchangeAPI, "report_opinion", report_opinion)
    code, _, err = cli("exchange", "feedback")
    assert code == 0 and "1 opinions sent" in err, err
    assert calls == [("vpdq", canonical)]
