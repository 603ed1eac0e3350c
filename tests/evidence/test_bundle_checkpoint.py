"""An evidence bundle carries the signed audit checkpoint of the chain head it was read at
(docs/operations.md, "Audit trail"): the same line as in TAKEDOWN_HOME/audit/checkpoints.jsonl (both engines)."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crawler.db.audit_checkpoint import read, sign
from crawler.db.session import Database
from crawler.evidence.bundle import BundleContent, build
from crawler.evidence.verify import EvidenceInvalid, verify_bundle
from tests.support.evidence_seed import crawl, decide
from tests.support.media import synthetic_png

HTML = "<html><head><title>Gallery</title></head><body><img src='a.png'></body></html>"


def test_export_carries_the_checkpoint_of_its_chain_head(
    db: Database, db_url: str, env: dict[str, str], cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    home = Path(env["TAKEDOWN_HOME"])
    done = crawl(db, db_url, home, HTML, [("http://127.0.0.3/a.png", synthetic_png(1))])
    decide(db, done.page_id)
    done.store.close()
    done.evidence.close()
    out = tmp_path / "bundle.zip"
    code, _, err = cli("evidence", "export", str(done.page_id), "--output", str(out))
    assert code == 0, err
    with zipfile.ZipFile(out) as zf:
        audit = json.loads(zf.read("manifest.json"))["audit"]
    checkpoint = audit["checkpoint"]
    assert (checkpoint["seq"], checkpoint["hash"]) == (
        audit["chain_head"]["id"],
        audit["chain_head"]["hash"],
    )
    lines = read(home / "audit" / "checkpoints.jsonl").checkpoints
    assert [c.as_json() for c in lines] == [checkpoint]
    code, hex_key, _ = cli("evidence", "key", "--format", "hex")
    assert cli("evidence", "verify", str(out), "--key", hex_key.strip())[0] == 0
    code, _, err = cli("audit", "verify")
    assert code == 0 and "matches 1 checkpoint" in err, err


def _bundle(tmp_path: Path, checkpoint: dict[str, object], key: Ed25519PrivateKey) -> bytes:
    manifest = {
        "format": "takedown-evidence-bundle/1",
        "page": {"id": 1, "url": "http://127.0.0.2/"},
        "records": [],
        "media": [],
        "decisions": [],
        "audit": {
            "events": 0,
            "chain_head": {"id": 7, "hash": "ab" * 32},
            "checkpoint": checkpoint,
        },
    }
    return build(BundleContent(manifest, [], []), key)


@pytest.mark.parametrize("case", ["other key", "other head"])
def test_a_bundle_whose_checkpoint_does_not_hold_fails(tmp_path: Path, case: str) -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    at = datetime(2026, 12, 1, tzinfo=UTC)
    good = sign(key, "sqlite:///x.db", 7, "ab" * 32, at).as_json()
    assert verify_bundle(_bundle(tmp_path, good, key)).page_id == 1
    if case == "other key":
        bad = sign(other, "sqlite:///x.db", 7, "ab" * 32, at).as_json()
    else:
        bad = sign(key, "sqlite:///x.db", 6, "cd" * 32, at).as_json()
    with pytest.raises(EvidenceInvalid, match="audit checkpoint"):
        verify_bundle(_bundle(tmp_path, bad, key))
