"""Signed checkpoints of the audit chain, kept outside the database.

The chain (`crawler.db.audit`) shows that no event was changed, removed or inserted *relative
to the other rows*; whoever can write the database can still delete its last events and
move `audit_head` back, or edit an event and recompute every hash after it, and the chain
verifies. A checkpoint pins the head as it was: `{seq, hash, at, database}` signed with
the Ed25519 evidence key (`crawler.evidence.keys`), one JSON line appended to
`TAKEDOWN_HOME/audit/checkpoints.jsonl`. Nothing the database holds can change that file,
and a copy of each line can go to the operator's own store (`takedown audit checkpoint
--output FILE`). `check` then compares the chain with every checkpoint:

- truncation: the head is below a checkpointed seq, an event at or below one is missing,
  or a later checkpoint has a lower seq than an earlier one (the head moved back);
- rewriting: the event at a checkpointed seq has another hash (or two checkpoints of one
  seq disagree);
- forgery: a line that is not a checkpoint or whose signature does not verify.

What this does not prove: events after the newest checkpoint are bound only by the chain;
whoever holds both the key and the database can rewrite both (copies exported off the
machine, checked with `--checkpoints COPY --key PINNED`, bound that). docs/operations.md,
"Audit trail".
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from crawler.db.audit import GENESIS
from crawler.db.models import AuditEvent, AuditHead
from crawler.db.session import safe_url
from crawler.db.types import utcnow
from crawler.errors import TakedownError
from crawler.evidence.keys import key_id, load_or_create_key

log = logging.getLogger(__name__)

FORMAT = "takedown-audit-checkpoint/1"
_FIELDS = ("format", "database", "seq", "hash", "at", "key_id")
_BATCH = 500


def checkpoint_path(home: Path) -> Path:
    return home / "audit" / "checkpoints.jsonl"


def database_name(db_url: str) -> str:
    """Which chain a checkpoint belongs to: the database URL without its password."""
    return safe_url(db_url)


@dataclass(frozen=True)
class Checkpoint:
    database: str
    seq: int
    hash: str
    at: str
    key_id: str
    signature: str
    line: int = 0  # where it was read from (1-based); 0 for one just taken

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "database": self.database,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "key_id": self.key_id,
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    def json_line(self) -> str:
        return json.dumps(self.as_json(), sort_keys=True, separators=(",", ":")) + "\n"

    def valid_under(self, key: Ed25519PublicKey) -> bool:
        if self.key_id != key_id(key):
            return False
        try:
            key.verify(bytes.fromhex(self.signature), signed_bytes(self.body()))
        except (InvalidSignature, ValueError):
            return False
        return True


def signed_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(
    key: Ed25519PrivateKey, database: str, seq: int, head_hash: str, at: datetime
) -> Checkpoint:
    public = key.public_key()
    body = Checkpoint(database, seq, head_hash, at.isoformat(), key_id(public), "").body()
    signature = key.sign(signed_bytes(body)).hex()
    return Checkpoint(database, seq, head_hash, body["at"], body["key_id"], signature)


def head_of(session: Session) -> tuple[int, str]:
    head = session.get(AuditHead, 1)
    return (0, GENESIS) if head is None else (head.last_id, head.last_hash)


def append(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line (O_APPEND, fsynced): earlier lines are never rewritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, checkpoint.json_line().encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ReadResult:
    checkpoints: list[Checkpoint]
    malformed: list[str]  # "line N: why"


def read(path: Path) -> ReadResult:
    """Every line of a checkpoint file; lines that are not checkpoints are named."""
    found: list[Checkpoint] = []
    bad: list[str] = []
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ReadResult(found, bad)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(_parse(json.loads(line), number))
        except (ValueError, TypeError, KeyError):
            bad.append(f"line {number}: not a checkpoint")
    return ReadResult(found, bad)


def parse_line(value: Any) -> Checkpoint | None:
    """A checkpoint from its JSON object (as a bundle carries it); None if it is not one."""
    try:
        return _parse(value, 0)
    except (ValueError, TypeError, KeyError):
        return None


def _parse(value: Any, number: int) -> Checkpoint:
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise ValueError("format")
    seq = value["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError("seq")
    if set(value) != {*_FIELDS, "signature"}:
        raise ValueError("fields")
    text = {k: value[k] for k in ("database", "hash", "at", "key_id", "signature")}
    if not all(isinstance(t, str) for t in text.values()):
        raise ValueError("field")
    return Checkpoint(seq=seq, line=number, **text)


def take(
    session: Session, key: Ed25519PrivateKey, path: Path, database: str
) -> tuple[Checkpoint, bool]:
    """Checkpoint the current head; (checkpoint, False) when the newest one already holds it."""
    seq, head_hash = head_of(session)
    return of_head(key, path, database, seq, head_hash)


def of_head(
    key: Ed25519PrivateKey, path: Path, database: str, seq: int, head_hash: str
) -> tuple[Checkpoint, bool]:
    """Checkpoint the head (`seq`, `head_hash`) unless the newest checkpoint already holds it."""
    public = key.public_key()
    ours = [c for c in _tail(path) if c.database == database]
    if ours and (ours[-1].seq, ours[-1].hash) == (seq, head_hash) and ours[-1].valid_under(public):
        return ours[-1], False
    checkpoint = sign(key, database, seq, head_hash, utcnow())
    append(path, checkpoint)
    return checkpoint, True


def _tail(path: Path, size: int = 64 * 1024) -> list[Checkpoint]:
    """The checkpoints in the last `size` bytes: the file grows for ever, `take` runs often."""
    try:
        with path.open("rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, end - size))
            data = handle.read()
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    found: list[Checkpoint] = []
    for line in lines[1:] if end > size else lines:
        try:
            found.append(_parse(json.loads(line), 0))
        except (ValueError, TypeError, KeyError):
            continue
    return found


def after_run(home: Path, db_url: str, session: Session) -> Checkpoint | None:
    """A checkpoint at the end of a crawl (cheap: one row read, one line appended); a
    failure is logged, never fails the run."""
    try:
        key = load_or_create_key(home)
        return take(session, key, checkpoint_path(home), database_name(db_url))[0]
    except (OSError, ValueError, TakedownError, SQLAlchemyError) as exc:
        log.warning("audit checkpoint not written: %s", exc)
        return None


def latest(path: Path, database: str, key: Ed25519PublicKey) -> Checkpoint | None:
    """The newest validly signed checkpoint of `database` in `path`."""
    ours = [c for c in read(path).checkpoints if c.database == database and c.valid_under(key)]
    return ours[-1] if ours else None


@dataclass(frozen=True)
class Finding:
    kind: str  # "truncated", "rewritten" or "forged"
    message: str


@dataclass(frozen=True)
class CheckReport:
    checked: int  # valid checkpoints of this database compared with the chain
    other_databases: int  # checkpoints of other databases, not compared
    findings: list[Finding]
    newest: Checkpoint | None

    @property
    def ok(self) -> bool:
        return not self.findings


def _hashes_at(session: Session, seqs: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(seqs))
    out: dict[int, str] = {}
    for i in range(0, len(wanted), _BATCH):
        batch = wanted[i : i + _BATCH]
        stmt = select(AuditEvent.id, AuditEvent.hash).where(AuditEvent.id.in_(batch))
        out.update({row_id: digest for row_id, digest in session.execute(stmt).all()})
    return out


def check(session: Session, path: Path, database: str, key: Ed25519PublicKey | None) -> CheckReport:
    """Compare the chain in `session` with every checkpoint of `database` in `path`."""
    result = read(path)
    findings = [Finding("forged", f"{path}: {why}") for why in result.malformed]
    ours = [c for c in result.checkpoints if c.database == database]
    others = len(result.checkpoints) - len(ours)
    if ours and key is None:
        findings.append(Finding("forged", f"{path}: no key to check the signatures with"))
        return CheckReport(0, others, findings, None)
    valid: list[Checkpoint] = []
    for c in ours:
        if key is not None and c.valid_under(key):
            valid.append(c)
        else:
            findings.append(Finding("forged", f"{path} line {c.line}: bad signature"))
    head_seq, _ = head_of(session)
    stored = _hashes_at(session, (c.seq for c in valid if 0 < c.seq <= head_seq))
    seen: dict[int, Checkpoint] = {}
    highest: Checkpoint | None = None
    for c in valid:
        where = f"checkpoint of event {c.seq} taken {c.at} (line {c.line})"
        if highest is not None and c.seq < highest.seq:
            findings.append(
                Finding(
                    "truncated",
                    f"head moved back: {where} is below the checkpoint of event "
                    f"{highest.seq} taken {highest.at}",
                )
            )
        if c.seq in seen and seen[c.seq].hash != c.hash:
            findings.append(Finding("rewritten", f"{where} disagrees with line {seen[c.seq].line}"))
        seen.setdefault(c.seq, c)
        highest = c if highest is None or c.seq > highest.seq else highest
        if c.seq == 0:
            continue
        if c.seq > head_seq:
            findings.append(
                Finding("truncated", f"the head is at event {head_seq}, behind the {where}")
            )
        elif c.seq not in stored:
            findings.append(Finding("truncated", f"event {c.seq} is missing ({where})"))
        elif stored[c.seq] != c.hash:
            findings.append(Finding("rewritten", f"event {c.seq} differs from the {where}"))
    return CheckReport(len(valid), others, findings, valid[-1] if valid else None)
