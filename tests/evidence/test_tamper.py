"""Any altered byte of a bundle fails verification with one clear reason (no database)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crawler.db.audit import GENESIS, Event, event_hash
from crawler.evidence.bundle import BundleContent, build, canonical_json, pack, sha256_hex
from crawler.evidence.verify import EvidenceInvalid, check_audit, verify_bundle
from crawler.evidence.warc import PageWarc, append_media_record, write_page_warc

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
AT = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def _audit() -> list[dict[str, object]]:
    """Events 1, 2 and 4 of a chain (3 belongs to another page): one link, one gap."""
    rows, prev = [], GENESIS
    for n, action in enumerate(
        ["item.claimed", "decision.confirm", "notice.created", "item.viewed"], 1
    ):
        event = Event("alice", action, "review_item", 7, {"n": n})
        digest = event_hash(prev, AT, event, n)
        rows.append({"id": n, "at": AT.isoformat(timespec="microseconds"), "actor": "alice",
                     "action": action, "target_type": "review_item", "target_id": "7",
                     "details": {"n": n}, "prev_hash": prev, "hash": digest})  # fmt: skip
        prev = digest
    return [r for r in rows if r["id"] != 3]


def _content(tmp: Path, audit: list[dict[str, object]] | None = None) -> BundleContent:
    path = tmp / "page.warc.gz"
    if not path.exists():
        html = (
            "<html><body><img src='data:application/x-takedown-removed;sha256=00,'></body></html>"
        )
        rid = write_page_warc(
            path, PageWarc("http://127.0.0.2/", AT, "127.0.0.2", html, "aa" * 32, {"status": 200})
        )
        append_media_record(path, "http://127.0.0.3/a.png", {"sha256": "bb" * 32}, rid, AT)
    manifest = {"format": "takedown-evidence-bundle/1", "page": {"id": 1, "url": "http://127.0.0.2/"},
                "records": [{"id": 1, "warc": "warc/1.warc.gz"}], "media": [], "decisions": []}  # fmt: skip
    return BundleContent(manifest, [("warc/1.warc.gz", path.read_bytes())], audit or _audit())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build(_content(tmp_path_factory.mktemp("bundle")), KEY)


def _regions(data: bytes) -> dict[str, tuple[int, int]]:
    """Byte ranges of each member's data, its local header, the central directory, the end."""
    out: dict[str, tuple[int, int]] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode())
        out[info.filename] = (start, start + info.file_size)
        out[f"header:{info.filename}"] = (info.header_offset, start)
    end = len(data) - 22
    out["central-directory"] = (max(r[1] for r in out.values()), end)
    out["end-record"] = (end, len(data))
    return out


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def _fails(data: bytes) -> str:
    with pytest.raises(EvidenceInvalid) as raised:
        verify_bundle(data)
    reason = str(raised.value)
    assert reason and "\n" not in reason
    return reason


def test_untouched_bundle_verifies(bundle: bytes) -> None:
    report = verify_bundle(bundle, KEY.public_key())
    assert (report.records, report.warc_records, report.audit_events, report.audit_links) == (
        1,
        4,
        3,
        1,
    )


REGIONS = ["manifest.json", "manifest.sig", "warc/1.warc.gz", "audit.json",
           "header:manifest.json", "header:warc/1.warc.gz", "header:audit.json",
           "central-directory", "end-record"]  # fmt: skip


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5, 0.8, 1.0])
@pytest.mark.parametrize("region", REGIONS)
def test_one_flipped_byte_fails(bundle: bytes, region: str, fraction: float) -> None:
    start, end = _regions(bundle)[region]
    offset = min(end - 1, start + int((end - start) * fraction))
    reason = _fails(_flip(bundle, offset))
    if region in ("manifest.json", "manifest.sig", "warc/1.warc.gz", "audit.json"):
        assert region in reason  # the member named, whichever check caught it


def test_every_byte_sweep(bundle: bytes) -> None:
    for offset in range(0, len(bundle), 11):
        _fails(_flip(bundle, offset))


def _rezip(data: bytes, name: str, new: bytes) -> bytes:
    """An attacker's edit with consistent CRCs: only the cryptography can tell."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = [(n, new if n == name else zf.read(n)) for n in zf.namelist()]
    return pack(members)


def test_consistent_edit_of_a_warc_fails_on_the_manifest_digest(bundle: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        warc = zf.read("warc/1.warc.gz")
    reason = _fails(_rezip(bundle, "warc/1.warc.gz", warc + warc[:40]))
    assert reason == "warc/1.warc.gz: SHA-256 does not match manifest.json"


def test_edited_manifest_fails_the_signature(bundle: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    manifest["page"]["url"] = "http://elsewhere.test/"
    reason = _fails(_rezip(bundle, "manifest.json", canonical_json(manifest)))
    assert reason == "manifest.sig: signature does not match manifest.json"


def test_resigned_bundle_with_a_bad_warc_record_fails_its_digest(tmp_path: Path) -> None:
    content = _content(tmp_path)
    name, warc = content.warcs[0]
    from crawler.evidence.warc import _write  # a record whose declared digest lies

    buf = io.BytesIO()
    _write(
        buf,
        "http://x/",
        "metadata",
        b"{}",
        "application/json",
        {"WARC-Block-Digest": "sha256:AAAA"},
    )
    forged = BundleContent(content.manifest, [(name, warc + buf.getvalue())], content.audit)
    reason = _fails(build(forged, KEY))
    assert reason.startswith("warc/1.warc.gz: record 5") and "WARC-Block-Digest" in reason


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda ev: ev[0]["details"].update(n=99), "audit.json: event 1 does not match its hash"),
        (
            lambda ev: ev[1].update(prev_hash="0" * 64),
            "audit.json: event 2 does not match its hash",
        ),
        (lambda ev: ev.reverse(), "audit.json: event 2 is out of order"),
    ],
)
def test_resigned_bundle_with_a_bad_audit_excerpt_fails_the_chain(
    tmp_path: Path, edit, expected: str
) -> None:  # type: ignore[no-untyped-def]
    audit = _audit()
    edit(audit)
    assert _fails(build(_content(tmp_path, audit), KEY)) == expected


def test_broken_link_between_adjacent_events_is_named() -> None:
    audit = _audit()
    # Event 2 rehashed over a wrong predecessor: its own hash holds, the link does not.
    event = Event("alice", "decision.confirm", "review_item", 7, {"n": 2})
    audit[1]["prev_hash"] = "f" * 64
    audit[1]["hash"] = event_hash("f" * 64, AT, event, 2)
    with pytest.raises(EvidenceInvalid, match="link broken between events 1 and 2"):
        check_audit(canonical_json(audit))


def test_digests_in_manifest_cover_every_member(bundle: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        files = json.loads(zf.read("manifest.json"))["files"]
        assert files == {
            n: sha256_hex(zf.read(n)) for n in zf.namelist() if not n.startswith("manifest.")
        }
