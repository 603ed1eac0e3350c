"""Export a page's evidence, verify it with the CLI, and purge past retention (both engines)."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from crawler.db.audit import verify_chain
from crawler.db.models import AuditEvent, EvidenceRecord
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.evidence.records import evidence_root, purge
from crawler.evidence.warc import iter_records
from tests.support.evidence_seed import GALLERY_HTML, crawl, crawled_page


def test_bundle_exports_verifies_and_holds_the_facts(
    db: Database, db_url: str, env: dict[str, str], cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    page_id = crawled_page(db, db_url, env)
    out = tmp_path / "bundle.zip"
    code, _, err = cli("evidence", "export", str(page_id), "--output", str(out))
    assert code == 0, err
    code, pem, _ = cli("evidence", "key")
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----")
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem)
    code, hex_key, _ = cli("evidence", "key", "--format", "hex")
    for pinned in (str(key_file), hex_key.strip()):
        code, stdout, err = cli("evidence", "verify", str(out), "--key", pinned)
        assert code == 0, err
        assert stdout.startswith("OK ") and "pinned key" in stdout and "2 media" in stdout

    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        warc = zf.read(manifest["records"][0]["warc"])
        audit = json.loads(zf.read("audit.json"))
    rec = manifest["records"][0]
    assert rec["redirect_chain"] == [
        "http://127.0.0.2/gallery/",
        "http://127.0.0.2/gallery/index.html",
    ]
    assert rec["tls_issuer"] == "CN=Synthetic Test CA" and rec["ip"] == "127.0.0.2"
    assert rec["policy_sha256"] and rec["software_version"] == "0.1.0"
    assert {m["ip"] for m in manifest["media"]} == {"127.0.0.3"}
    assert all(m["sha256"] and m["sha1"] and m["md5"] and m["pdq"] for m in manifest["media"])
    assert manifest["decisions"][0]["action"] == "confirm"
    assert [e["action"] for e in audit] == ["item.claimed", "decision.confirm", "item.viewed"]
    kinds = [h.get_header("WARC-Type") for h, _ in iter_records(warc)]
    # The media before its page waited, then both were appended after the page's records.
    assert kinds == ["warcinfo", "resource", "metadata", "metadata", "metadata"]

    key_path = Path(env["TAKEDOWN_HOME"]) / "evidence" / "signing-key.pem"
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    with db.read_session() as s:
        exported = s.execute(
            select(AuditEvent).where(AuditEvent.action == "evidence.export")
        ).scalar_one()
        assert exported.target_id == str(page_id) and exported.details["bundle_sha256"]
        assert verify_chain(s).ok


def test_verify_with_another_key_fails(
    db: Database, db_url: str, env: dict[str, str], cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    page_id = crawled_page(db, db_url, env)
    out = tmp_path / "bundle.zip"
    assert cli("evidence", "export", str(page_id), "--output", str(out))[0] == 0
    code, _, err = cli("evidence", "verify", str(out), "--key", "11" * 32)
    assert code == 1 and "not by the expected key" in err and len(err.strip().splitlines()) == 1


def test_export_of_unknown_page_is_exit_2(
    db: Database, env: dict[str, str], cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("evidence", "export", "4242", "--output", str(tmp_path / "x.zip"))
    assert code == 2 and "no such page" in err
    assert not (tmp_path / "x.zip").exists()


def _age(db: Database, record_id: int, days: int) -> None:
    with db.session() as s:
        s.execute(update(EvidenceRecord).where(EvidenceRecord.id == record_id)
                  .values(created_at=utcnow() - timedelta(days=days)))  # fmt: skip


def test_purge_removes_expired_records_audits_and_reruns_as_noop(
    db: Database, db_url: str, env: dict[str, str], cli
) -> None:  # type: ignore[no-untyped-def]
    home = Path(env["TAKEDOWN_HOME"])
    old = crawl(db, db_url, home, GALLERY_HTML, [], url="http://127.0.0.2/old/")
    new = crawl(db, db_url, home, GALLERY_HTML, [], url="http://127.0.0.2/new/")
    for done in (old, new):
        done.store.close()
        done.evidence.close()
    with db.read_session() as s:
        rows = {r.page_id: r for r in s.execute(select(EvidenceRecord)).scalars()}
    _age(db, rows[old.page_id].id, 400)
    old_file = evidence_root(home) / str(rows[old.page_id].warc_path)
    new_file = evidence_root(home) / str(rows[new.page_id].warc_path)

    code, _, err = cli("evidence", "purge", "--older-than", "365")
    assert code == 0 and "purged 1 record(s) and 1 WARC file(s)" in err
    assert not old_file.exists() and new_file.exists()
    with db.read_session() as s:
        assert [r.page_id for r in s.execute(select(EvidenceRecord)).scalars()] == [new.page_id]
        events = (
            s.execute(select(AuditEvent).where(AuditEvent.action == "evidence.purge"))
            .scalars()
            .all()
        )
        assert [(e.details["rows"], e.details["files"]) for e in events] == [(1, 1)]
        assert verify_chain(s).ok

    code, _, err = cli("evidence", "purge", "--older-than", "365")
    assert code == 0 and "purged 0 record(s)" in err
    with db.read_session() as s:
        assert (
            len(s.execute(select(AuditEvent).where(AuditEvent.action == "evidence.purge")).all())
            == 1
        )


def test_purge_resumes_after_being_killed_between_file_and_row(
    db: Database, db_url: str, env: dict[str, str]
) -> None:
    home = Path(env["TAKEDOWN_HOME"])
    done = crawl(db, db_url, home, GALLERY_HTML, [])
    done.store.close()
    done.evidence.close()
    with db.read_session() as s:
        rec = s.execute(select(EvidenceRecord)).scalar_one()
    _age(db, rec.id, 30)
    (evidence_root(home) / str(rec.warc_path)).unlink()  # the killed run got this far
    result = purge(db, home, older_than_days=7)
    assert (result.rows, result.files) == (1, 0)
    assert purge(db, home, older_than_days=7).rows == 0
