"""Evidence of a crawl that found a ZIP: its WARC media record and the bundle carry each
member's path (text) and hashes, and no member bytes are anywhere at rest: WARC, bundle,
home folder, database (docs/hazards.md M-11)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path

from crawler.db.session import Database
from crawler.evidence.bundle import export_bundle
from crawler.evidence.warc import iter_records
from tests.support.at_rest import db_text, expanded, marker_needles
from tests.support.evidence_seed import crawl
from tests.support.media import synthetic_png


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # raw bytes inside
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_warc_records_member_hashes_and_no_member_bytes_at_rest(
    db: Database, db_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    marker = f"TDMARK-{uuid.uuid4().hex}"
    outer, inner = synthetic_png(31, text=marker), synthetic_png(32, text=marker + "-in")
    pack = _zip({"../../etc/x.png": outer, "nested.zip": _zip({"b.png": inner})})
    home = Path(env["TAKEDOWN_HOME"])
    url = "http://127.0.0.3/pack.zip"
    done = crawl(db, db_url, home, "<html><a href='/pack.zip'>pack</a></html>", [(url, pack)])
    done.store.close()
    done.evidence.close()
    bundle = export_bundle(db, home, done.page_id)
    (home / "bundle.zip").write_bytes(bundle.data)

    (warc,) = (home / "evidence" / "warc").rglob("*.warc.gz")
    records = [
        json.loads(block)
        for headers, block in iter_records(warc.read_bytes())
        if headers.get_header("WARC-Target-URI") == url
    ]
    (facts,) = records
    assert facts["media_type"] == "archive"
    assert facts["sha256"] == hashlib.sha256(pack).hexdigest()
    members = {m["path"]: m for m in facts["archive_members"]}
    assert set(members) == {"../../etc/x.png", "nested.zip/b.png"}  # paths as text only
    for path, body, depth in (("../../etc/x.png", outer, 1), ("nested.zip/b.png", inner, 2)):
        member = members[path]
        assert member["status"] == "hashed" and member["depth"] == depth
        assert member["sha256"] == hashlib.sha256(body).hexdigest()
        assert member["md5"] == hashlib.md5(body).hexdigest()  # noqa: S324
        assert member["sha1"] == hashlib.sha1(body).hexdigest()  # noqa: S324
        assert member["pdq"] and member["media_type"] == "image"
    with zipfile.ZipFile(home / "bundle.zip") as zf:
        manifest = json.loads(zf.read("manifest.json"))
    (in_bundle,) = [m for m in manifest["media"] if m["media_url"] == url]
    assert in_bundle["archive_members"] == facts["archive_members"]

    needles = [
        *marker_needles(marker.encode()),
        outer[:64],
        inner[:64],
        outer[-64:],
        inner[-64:],
    ]
    haystacks = {"database": db_text(db)}
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        haystacks[str(path)] = b"".join(expanded(path.read_bytes()))
    assert any(p.endswith("bundle.zip") for p in haystacks)
    assert any(p.endswith(".warc.gz") for p in haystacks)
    assert gzip.decompress(warc.read_bytes()).count(b"archive_members") == 1
    assert [where for where, data in haystacks.items() for n in needles if n in data] == []
