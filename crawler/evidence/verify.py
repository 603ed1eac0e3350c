"""Verify an evidence bundle on its own: no database, no network, only the bundle and a key.

Checks, in order, each failing with one line naming what failed:

1. the zip reads and every member's CRC holds;
2. `manifest.json` parses and names an Ed25519 key (the pinned `--key` when given must be
   that key); `manifest.sig` is a valid signature of its bytes;
3. the members are exactly the manifest's `files` plus manifest and signature, and each
   has the SHA-256 the manifest says; the audit checkpoint the manifest carries (if any)
   is signed by the same key and holds the manifest's chain head;
4. every WARC record's `WARC-Block-Digest` and `WARC-Payload-Digest`;
5. the audit excerpt: each event's hash recomputed with `crawler.db.audit.event_hash`, and
   `prev_hash` equal to the previous event's hash wherever ids are adjacent;
6. the zip bytes equal the canonical packing of the members, so a flipped header byte
   that readers ignore still fails.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crawler.db.audit import GENESIS, Event, event_hash
from crawler.errors import TakedownError
from crawler.evidence.bundle import AUDIT, MANIFEST, SIGNATURE, pack, sha256_hex
from crawler.evidence.keys import key_id
from crawler.evidence.warc import WarcInvalid, check_warc


class EvidenceInvalid(TakedownError):
    """The bundle fails verification; the message names the first check that failed."""

    exit_code = 1


@dataclass(frozen=True)
class VerifyReport:
    page_id: int
    url: str
    records: int
    media: int
    warc_records: int
    audit_events: int
    audit_links: int
    key_id: str
    pinned: bool


def _members(data: bytes) -> list[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if len(set(names)) != len(names):
                raise EvidenceInvalid("bundle has a member twice")
            return [(name, zf.read(name)) for name in names]
    except EvidenceInvalid:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged zip fails in many ways
        raise EvidenceInvalid(f"not a readable bundle: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200]


def _manifest(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EvidenceInvalid(f"{MANIFEST} is not valid JSON (altered)") from None
    if not isinstance(value, dict) or not isinstance(value.get("files"), dict):
        raise EvidenceInvalid(f"{MANIFEST} lacks its list of files")
    return value


def _signer(manifest: dict[str, Any], pinned: Ed25519PublicKey | None) -> Ed25519PublicKey:
    try:
        embedded = Ed25519PublicKey.from_public_bytes(
            bytes.fromhex(manifest["signing_key"]["public_key"])
        )
    except (KeyError, TypeError, ValueError):
        raise EvidenceInvalid(f"{MANIFEST} names no valid Ed25519 signing key") from None
    if pinned is not None and key_id(pinned) != key_id(embedded):
        raise EvidenceInvalid(
            f"signed by key {key_id(embedded)}, not by the expected key {key_id(pinned)}"
        )
    return embedded


def _check_signature(key: Ed25519PublicKey, manifest_raw: bytes, sig_raw: bytes) -> None:
    try:
        signature = bytes.fromhex(sig_raw.decode("ascii").strip())
        key.verify(signature, manifest_raw)
    except (UnicodeDecodeError, ValueError, InvalidSignature):
        raise EvidenceInvalid(f"{SIGNATURE}: signature does not match {MANIFEST}") from None


def _check_files(files: dict[str, Any], members: dict[str, bytes]) -> None:
    expected = set(files) | {MANIFEST, SIGNATURE}
    for name in sorted(set(members) - expected):
        raise EvidenceInvalid(f"{name}: member not listed in {MANIFEST}")
    for name in sorted(expected - set(members)):
        raise EvidenceInvalid(f"{name}: member listed in {MANIFEST} is missing")
    for name, digest in sorted(files.items()):
        if sha256_hex(members[name]) != digest:
            raise EvidenceInvalid(f"{name}: SHA-256 does not match {MANIFEST}")


def _check_warcs(members: dict[str, bytes]) -> int:
    total = 0
    for name in sorted(n for n in members if n.startswith("warc/")):
        try:
            total += check_warc(members[name])
        except WarcInvalid as exc:
            raise EvidenceInvalid(f"{name}: {exc}") from None
    return total


def _event_ok(event: dict[str, Any]) -> bool:
    at = datetime.fromisoformat(event["at"])
    body = Event(
        event["actor"], event["action"], event["target_type"], event["target_id"], event["details"]
    )
    return event_hash(event["prev_hash"], at, body, int(event["id"])) == event["hash"]


def check_audit(raw: bytes) -> tuple[int, int]:
    """(events, links checked) of an audit excerpt; EvidenceInvalid names the bad event."""
    try:
        events = json.loads(raw.decode("utf-8"))
        checked = [(_event_ok(e), e) for e in events]
    except (UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise EvidenceInvalid(f"{AUDIT}: malformed ({_first_line(exc)})") from None
    links, previous = 0, None
    for ok, event in checked:
        if not ok:
            raise EvidenceInvalid(f"{AUDIT}: event {event['id']} does not match its hash")
        if previous is not None and int(event["id"]) <= int(previous["id"]):
            raise EvidenceInvalid(f"{AUDIT}: event {event['id']} is out of order")
        if previous is not None and int(event["id"]) == int(previous["id"]) + 1:
            if event["prev_hash"] != previous["hash"]:
                raise EvidenceInvalid(
                    f"{AUDIT}: link broken between events {previous['id']} and {event['id']}"
                )
            links += 1
        previous = event
    return len(checked), links


def _check_checkpoint(manifest: dict[str, Any], key: Ed25519PublicKey) -> None:
    """The audit checkpoint the bundle carries (if any) is signed by the bundle's key and
    holds the chain head the bundle names (`crawler.db.audit_checkpoint`)."""
    audit = manifest.get("audit")
    if not isinstance(audit, dict) or audit.get("checkpoint") is None:
        return  # bundles made before checkpoints
    from crawler.db.audit_checkpoint import parse_line

    checkpoint = parse_line(audit["checkpoint"])
    head = audit.get("chain_head") or {"id": 0, "hash": GENESIS}
    if checkpoint is None or not checkpoint.valid_under(key):
        raise EvidenceInvalid(f"{MANIFEST}: audit checkpoint is not signed by the bundle's key")
    if not isinstance(head, dict) or (head.get("id"), head.get("hash")) != (
        checkpoint.seq,
        checkpoint.hash,
    ):
        raise EvidenceInvalid(f"{MANIFEST}: audit checkpoint does not hold the bundle's chain head")


def verify_bundle(data: bytes, pinned: Ed25519PublicKey | None = None) -> VerifyReport:
    """Run every check (see the module docstring); raises EvidenceInvalid at the first failure."""
    listed = _members(data)
    members = dict(listed)
    if MANIFEST not in members or SIGNATURE not in members:
        raise EvidenceInvalid(f"bundle lacks {MANIFEST} or {SIGNATURE}")
    manifest = _manifest(members[MANIFEST])
    key = _signer(manifest, pinned)
    _check_signature(key, members[MANIFEST], members[SIGNATURE])
    _check_files(manifest["files"], members)
    _check_checkpoint(manifest, key)
    warc_records = _check_warcs(members)
    events, links = check_audit(members[AUDIT]) if AUDIT in members else (0, 0)
    if pack(listed) != data:
        raise EvidenceInvalid("zip container altered outside its members (headers differ)")
    page = manifest.get("page") or {}
    return VerifyReport(
        page_id=int(page.get("id", 0)),
        url=str(page.get("url", "")),
        records=len(manifest.get("records", [])),
        media=len(manifest.get("media", [])),
        warc_records=warc_records,
        audit_events=events,
        audit_links=links,
        key_id=key_id(key),
        pinned=pinned is not None,
    )
