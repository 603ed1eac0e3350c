"""Hash list files: parse the whole file first, then import in one transaction.

The format (docs/interface.md): CSV with a header `type,hash,category,reference`; the last two
may be empty. Type `vpdq` (docs/interface.md "Second round") carries ThreatExchange's vPDQ
serialisation in `hash` (a quoted JSON array of "pdq_hex,quality,timestamp"); it is stored
re-serialised in `hash_entries.vpdq` with its SHA-256 as the entry's `hash`. A single malformed row rejects the whole file with every bad line named,
and nothing is written. Re-importing the same file changes nothing (ON CONFLICT).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawler.db.models import HashEntry, HashList
from crawler.db.types import utcnow
from crawler.errors import UsageError
from crawler.media.video import parse_vpdq, serialise
from crawler.names import check_name, control_character

HEADER = ("type", "hash", "category", "reference")
HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}
HASH_TYPES = (*HEX_LENGTHS, "vpdq")
MAX_VPDQ_CHARS = 131_072  # the csv module's field limit: ~1,700 frames (28 minutes)
MAX_FIELD = {"category": 64, "reference": 256}
MAX_REPORTED = 200
ACTIONS = ("review", "auto")
BATCH = 20_000
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True)
class HashRow:
    hash_type: str
    hash: str
    category: str | None
    reference: str | None
    vpdq: str | None = None  # type vpdq: the serialisation; `hash` is then its SHA-256


class HashListError(UsageError):
    """A malformed file: `problems` holds (line number, reason) for every bad row."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source, self.problems = source, problems
        lines = ", ".join(str(n) for n, _ in problems[:MAX_REPORTED])
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        noun = "row" if len(problems) == 1 else "rows"
        super().__init__(
            f"{source}: {len(problems)} malformed {noun}, nothing imported; "
            f"bad lines: {lines}{more}"
        )

    def details(self) -> list[str]:
        return [f"{self.source}:{n}: {why}" for n, why in self.problems[:MAX_REPORTED]]


def _check_row(fields: list[str]) -> HashRow | str:
    """A parsed row, or the reason it is malformed."""
    if len(fields) < 2 or len(fields) > 4:
        return f"expected 2 to 4 columns, found {len(fields)}"
    fields = [f.strip() for f in fields] + [""] * (4 - len(fields))
    kind, value, category, reference = fields[0].lower(), fields[1].lower(), fields[2], fields[3]
    if kind not in HASH_TYPES:
        return f"unknown type {fields[0][:20]!r} (md5, sha1, sha256, pdq or vpdq)"
    vpdq = None
    if kind == "vpdq":
        vpdq = _check_vpdq(fields[1])
        if vpdq.startswith("vpdq"):
            return vpdq
        value = hashlib.sha256(vpdq.encode()).hexdigest()
    elif len(value) != HEX_LENGTHS[kind] or not _HEX.fullmatch(value):
        return f"{kind} hash must be {HEX_LENGTHS[kind]} hex characters"
    for name, text in (("category", category), ("reference", reference)):
        if len(text) > MAX_FIELD[name]:
            return f"{name} longer than {MAX_FIELD[name]} characters"
        if control_character(text):
            return f"{name} holds a control character ({control_character(text)})"
    return HashRow(kind, value, category or None, reference or None, vpdq)


def _check_vpdq(text: str) -> str:
    """The canonical serialisation, or a reason starting with "vpdq"."""
    if len(text) > MAX_VPDQ_CHARS:
        return f"vpdq hash longer than {MAX_VPDQ_CHARS:,} characters"
    try:
        frames = parse_vpdq(text)
    except ValueError as exc:
        return f"vpdq hash: {exc}"
    return serialise(frames)


def _check_header(row: list[str] | None) -> str | None:
    if row is None:
        return "the file is empty (a header `type,hash,category,reference` is required)"
    names = tuple(c.strip().lower() for c in row)
    if names[:2] != HEADER[:2] or names not in (HEADER, HEADER[:3], HEADER[:2]):
        return "the header must be `type,hash,category,reference`"
    return None


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _csv_problem(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return "unterminated quote (a quoted field must end on its own line)"
    if "field larger than field limit" in text:
        return f"a field longer than {csv.field_size_limit()} characters"
    return f"not valid CSV ({text})"


def _records(text: str) -> Iterator[tuple[int, list[str] | str]]:
    """(line number, fields or why the line is not CSV), one record a line. A record
    never spans lines: a quote left open is named at its own line instead of folding the
    rows after it into one field, and a bad line does not stop the lines after it."""
    reader = csv.reader(_LINE_BREAK.split(text.removeprefix("\ufeff")), strict=True)
    done = 0
    while True:
        start = done + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            done = reader.line_num
            yield start, _csv_problem(exc)
            continue
        done = reader.line_num
        if done > start:
            yield start, "a quoted field runs over a line break (unterminated quote?)"
        else:
            yield start, fields


def parse_rows(text: str, source: str) -> list[HashRow]:
    """Every row of the file, de-duplicated, or HashListError naming every bad line."""
    records = _records(text)
    number, header = next(records, (1, None))
    problem = header if isinstance(header, str) else _check_header(header or None)
    if problem:
        raise HashListError(source, [(number, problem)])
    rows: dict[tuple[str, str], HashRow] = {}
    problems: list[tuple[int, str]] = []
    for number, fields in records:
        if isinstance(fields, str):
            problems.append((number, fields))
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        checked = _check_row(fields)
        if isinstance(checked, str):
            problems.append((number, checked))
        else:
            rows.setdefault((checked.hash_type, checked.hash), checked)
    if problems:
        raise HashListError(source, problems)
    return list(rows.values())


def read_file(path: Path) -> tuple[list[HashRow], str]:
    """Parse `path`; returns the rows and the file's SHA-256 (for the audit trail)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    return parse_rows(text, str(path)), hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ImportResult:
    list_id: int
    created: bool
    rows: int
    added: int
    updated: int


def check_action(action: str | None, kind: str) -> None:
    """`--action auto` is for known lists only (docs/interface.md)."""
    if action is None:
        return
    if action not in ACTIONS:
        raise UsageError(f"--action {action!r}: must be review or auto")
    if action == "auto" and kind != "known":
        raise UsageError(f"--action auto: only a known list can confirm on its own, not {kind}")


def _get_or_create(
    session: Session,
    name: str,
    kind: str | None,
    threshold: int | None,
    action: str | None = None,
    percent: int | None = None,
) -> tuple[HashList, bool]:
    found = session.execute(select(HashList).where(HashList.name == name)).scalar()
    if found is None:
        check_action(action, kind or "known")
        found = HashList(
            name=name,
            kind=kind or "known",
            pdq_threshold=31 if threshold is None else threshold,
            vpdq_percent=80 if percent is None else percent,
            action=action or "review",
        )
        session.add(found)
        session.flush()
        return found, True
    if percent is not None and percent != found.vpdq_percent:
        found.vpdq_percent, found.version = percent, found.version + 1
    if kind is not None and kind != found.kind:
        raise UsageError(f"list {name!r} is a {found.kind} list; it cannot be imported as {kind}")
    check_action(action, found.kind)
    if threshold is not None and threshold != found.pdq_threshold:
        found.pdq_threshold, found.version = threshold, found.version + 1
    if action is not None and action != found.action:
        found.action, found.version = action, found.version + 1
    return found, False


_SQLITE_UPSERT = (
    "INSERT INTO hash_entries (list_id, hash_type, hash, category, reference, vpdq) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (list_id, hash_type, hash) DO UPDATE SET "
    "category = excluded.category, reference = excluded.reference "
    "WHERE hash_entries.category IS NOT excluded.category "
    "OR hash_entries.reference IS NOT excluded.reference"
)
_PG_STAGE = (
    "CREATE TEMP TABLE hash_import (hash_type text, hash text, category text, reference text, "
    "vpdq text) ON COMMIT DROP"
)
_PG_MERGE = (
    "INSERT INTO hash_entries (list_id, hash_type, hash, category, reference, vpdq) "
    "SELECT %s, hash_type, hash, category, reference, vpdq FROM hash_import "
    "ON CONFLICT (list_id, hash_type, hash) DO UPDATE SET "
    "category = excluded.category, reference = excluded.reference "
    "WHERE hash_entries.category IS DISTINCT FROM excluded.category "
    "OR hash_entries.reference IS DISTINCT FROM excluded.reference"
)


def _upsert_sqlite(cursor: Any, list_id: int, rows: list[HashRow]) -> int:
    touched = 0
    for start in range(0, len(rows), BATCH):
        batch = [
            (list_id, r.hash_type, r.hash, r.category, r.reference, r.vpdq)
            for r in rows[start : start + BATCH]
        ]
        cursor.executemany(_SQLITE_UPSERT, batch)
        touched += max(cursor.rowcount, 0)
    return touched


def _upsert_postgres(cursor: Any, list_id: int, rows: list[HashRow]) -> int:
    # COPY into a temporary table, then one INSERT … SELECT … ON CONFLICT: an order of
    # magnitude faster than row-by-row statements for million-row lists.
    # Two imports in one transaction (the demo's lists) would meet the first one's
    # staging table, which lives until commit.
    cursor.execute("DROP TABLE IF EXISTS hash_import")
    cursor.execute(_PG_STAGE)
    copy_sql = "COPY hash_import (hash_type, hash, category, reference, vpdq) FROM STDIN"
    with cursor.copy(copy_sql) as copy:
        for r in rows:
            copy.write_row((r.hash_type, r.hash, r.category, r.reference, r.vpdq))
    cursor.execute(_PG_MERGE, (list_id,))
    return max(cursor.rowcount, 0)


def _upsert_entries(session: Session, list_id: int, rows: list[HashRow]) -> int:
    """Insert new entries, update changed category/reference; returns rows touched."""
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        if session.get_bind().dialect.name == "postgresql":
            return _upsert_postgres(cursor, list_id, rows)
        return _upsert_sqlite(cursor, list_id, rows)
    finally:
        cursor.close()


def count_entries(session: Session, list_id: int) -> int:
    query = select(func.count()).select_from(HashEntry).where(HashEntry.list_id == list_id)
    return int(session.execute(query).scalar_one())


def import_rows(
    session: Session,
    name: str,
    rows: list[HashRow],
    *,
    kind: str | None = None,
    pdq_threshold: int | None = None,
    vpdq_percent: int | None = None,
    action: str | None = None,
) -> ImportResult:
    """Import parsed rows into list `name` inside the caller's transaction."""
    check_name(name, "list name")
    if pdq_threshold is not None and not 0 <= pdq_threshold <= 128:
        raise UsageError(f"--pdq-threshold {pdq_threshold}: must be between 0 and 128")
    if vpdq_percent is not None and not 1 <= vpdq_percent <= 100:
        raise UsageError(f"--vpdq-percent {vpdq_percent}: must be between 1 and 100")
    check_action(action, kind or "known")
    hash_list, created = _get_or_create(session, name, kind, pdq_threshold, action, vpdq_percent)
    before = 0 if created else count_entries(session, hash_list.id)
    touched = _upsert_entries(session, hash_list.id, rows)
    added = count_entries(session, hash_list.id) - before
    updated = max(touched - added, 0)
    if added or updated:
        hash_list.version += 0 if created else 1
        hash_list.updated_at = utcnow()
    return ImportResult(hash_list.id, created, len(rows), added, updated)


def list_summaries(session: Session) -> Iterable[tuple[HashList, dict[str, int]]]:
    """Every list with its entry counts by hash type."""
    counts: dict[int, dict[str, int]] = {}
    query = select(HashEntry.list_id, HashEntry.hash_type, func.count()).group_by(
        HashEntry.list_id, HashEntry.hash_type
    )
    for list_id, hash_type, n in session.execute(query):
        counts.setdefault(list_id, {})[hash_type] = int(n)
    for hash_list in session.execute(select(HashList).order_by(HashList.name)).scalars():
        yield hash_list, counts.get(hash_list.id, {})
