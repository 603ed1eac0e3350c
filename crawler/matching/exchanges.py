"""Hash lists fed by the exchanges hotlines already use, through python-threatexchange.

The library (`SignalExchangeAPI`) talks to each exchange: NCMEC, StopNCII, Meta's
ThreatExchange, Tech Against Terrorism, and a local file. This module is only the glue:

- An exchange (table `exchanges`) feeds one hash list. Its checkpoint (the library's own
  checkpoint dataclass as JSON) and the entries of each batch the library yields are
  committed in one transaction, so a fetch killed at any point resumes from the last
  batch it finished and nothing is half-imported. Memory holds one batch at a time.
- `exchange_records` remembers which signals each upstream record key put in the list,
  so an upstream deletion (or an update that drops a signal) removes exactly those
  entries (unless another record of the exchange still has them).
- A full fetch (the first, a stale checkpoint, or an exchange that always answers with
  its whole contents, such as the local file) marks every record with a new generation;
  when it completes, records left on an older generation are deleted like upstream
  deletions. A full fetch interrupted half-way is resumed, still as a full fetch.
- Signal types the project does not match are counted and skipped. vPDQ signals (the
  library's `vpdq` extension) become entries of our `vpdq` type: the serialisation checked
  and made canonical like a hash-list file's, its SHA-256 as the entry's hash.
- `exchange add --action review|auto` sets the list's action as `hashlist import` does;
  exchange names follow the shared rule for names (crawler/names.py), and may not start
  with '-' (a schedule passes the name on a command line).
- Credentials never reach the database, logs or messages: they come from a file only its
  owner can read (refused otherwise, exit 2) or from an environment variable, and are
  handed to the library's `for_collab` directly (never its home-directory fallback).
- Feedback: a page rejected in review whose every match came from exchange lists records
  a negative opinion per signal (`exchange_opinions`); `send_opinions` reports them with
  the library's `report_opinion`, which most exchanges do not implement (then the
  opinion is kept as `unsupported`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import logging
import os
import re
import socket
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, or_, select, tuple_, update
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from crawler.db.audit import Event, record
from crawler.db.models import (
    Exchange,
    ExchangeOpinion,
    ExchangeRecord,
    HashEntry,
    HashList,
    Match,
    Observation,
    ReviewItem,
)
from crawler.db.session import Database
from crawler.db.types import utcnow
from crawler.errors import DependencyError, TakedownError, UsageError
from crawler.matching.candidates import update_candidates
from crawler.media import hashlists
from crawler.names import check_name

log = logging.getLogger(__name__)

APIS = ("ncmec", "stopncii", "fb_threatexchange", "tat", "local_file")
# Exchanges whose every fetch is the whole data set: each is a full fetch.
SNAPSHOT_APIS = frozenset({"local_file"})
CHUNK = 2_000
FETCH_LEASE = timedelta(minutes=30)
MAX_KEY = 256
_RECORDS = cast(Table, ExchangeRecord.__table__)  # Core inserts: no ORM bookkeeping


def _api_classes() -> dict[str, Any]:
    from threatexchange.exchanges.impl.fb_threatexchange_api import (
        FBThreatExchangeSignalExchangeAPI,
    )
    from threatexchange.exchanges.impl.file_api import LocalFileSignalExchangeAPI
    from threatexchange.exchanges.impl.ncmec_api import NCMECSignalExchangeAPI
    from threatexchange.exchanges.impl.stop_ncii_api import StopNCIISignalExchangeAPI
    from threatexchange.exchanges.impl.techagainstterrorism_api import TATSignalExchangeAPI

    return {
        "ncmec": NCMECSignalExchangeAPI,
        "stopncii": StopNCIISignalExchangeAPI,
        "fb_threatexchange": FBThreatExchangeSignalExchangeAPI,
        "tat": TATSignalExchangeAPI,
        "local_file": LocalFileSignalExchangeAPI,
    }


def api_class(api: str) -> Any:
    classes = _api_classes()
    if api not in classes:
        raise UsageError(f"--api {api[:40]!r}: one of {', '.join(APIS)}")
    return classes[api]


def _signal_types() -> tuple[list[Any], dict[str, str]]:
    """Every signal type the library knows (so the others can be counted), and the map
    from the library's names to this project's hash types."""
    from threatexchange.signal_type.md5 import VideoMD5Signal
    from threatexchange.signal_type.pdq.signal import PdqSignal
    from threatexchange.signal_type.raw_text import RawTextSignal
    from threatexchange.signal_type.sha256 import VideoSHA256Signal
    from threatexchange.signal_type.trend_query import TrendQuerySignal
    from threatexchange.signal_type.url import URLSignal
    from threatexchange.signal_type.url_md5 import UrlMD5Signal

    known: list[Any] = [
        PdqSignal,
        VideoMD5Signal,
        VideoSHA256Signal,
        URLSignal,
        RawTextSignal,
        UrlMD5Signal,
        TrendQuerySignal,
    ]
    vpdq = _vpdq_signal_type()
    known.append(vpdq)
    ours = {"pdq": "pdq", "video_md5": "md5", "video_sha256": "sha256", vpdq.get_name(): "vpdq"}
    return known, ours


@functools.cache
def _vpdq_signal_type() -> Any:
    """The library's `vpdq` signal type, by name and serialisation, without its extension.

    The library's own class lives in an extension that imports Meta's `vpdq` package, which
    builds from source against FFmpeg's headers; without it every vPDQ signal was counted
    as a type "not matched here" and dropped. Fetching and reporting opinions need only the
    name and the check of a serialisation; hashing and matching videos are this project's
    (`crawler.media.video`, `crawler.matching.matcher`), so those methods are refused.
    """
    from threatexchange.content_type.video import VideoContent
    from threatexchange.signal_type import signal_base
    from threatexchange.signal_type.index import SignalTypeIndex

    from crawler.media.hashlists import _check_vpdq

    class VPDQSignal(signal_base.SimpleSignalType, signal_base.FileHasher):
        """ThreatExchange's vPDQ: a JSON array of "pdq,quality,seconds" frame strings."""

        @classmethod
        def get_name(cls) -> str:
            return "vpdq"

        @classmethod
        def get_content_types(cls) -> list[Any]:
            return [VideoContent]

        @classmethod
        def get_index_cls(cls) -> type[SignalTypeIndex[Any]]:
            raise NotImplementedError("vPDQ is matched by crawler.matching, not the library")

        @classmethod
        def validate_signal_str(cls, signal_str: str) -> str:
            canonical = _check_vpdq(signal_str.strip())
            if canonical.startswith("vpdq"):
                raise ValueError(canonical)
            return signal_str

        @classmethod
        def hash_from_file(cls, file: Any) -> str:
            raise NotImplementedError("videos are hashed by crawler.media.video")

        @staticmethod
        def get_examples() -> list[str]:
            return []

    return VPDQSignal


def _library_signal_type(hash_type: str) -> Any | None:
    known, ours = _signal_types()
    names = {v: k for k, v in ours.items()}
    return next((s for s in known if s.get_name() == names.get(hash_type)), None)


# --- credentials --------------------------------------------------------------------------


def env_variable(name: str) -> str:
    """The per-exchange credentials variable: TAKEDOWN_EXCHANGE_<NAME>_CREDENTIALS."""
    return f"TAKEDOWN_EXCHANGE_{re.sub(r'[^A-Z0-9]', '_', name.upper())}_CREDENTIALS"


def check_credentials_file(path: Path) -> Path:
    """The file, resolved, if only its owner may read it; UsageError (exit 2) otherwise."""
    resolved = path.expanduser().resolve()
    try:
        info = resolved.stat()
    except OSError as exc:
        raise UsageError(f"--credentials-file {path}: cannot read ({exc.strerror})") from exc
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"--credentials-file {path}: not a regular file")
    if info.st_mode & 0o077:
        raise UsageError(
            f"--credentials-file {path}: readable by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):o}); run `chmod 600 {path}`"
        )
    return resolved


def _credential_text(exchange: Exchange) -> str | None:
    path = exchange.config.get("credentials_file")
    if path:
        checked = check_credentials_file(Path(path))
        try:
            return checked.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"credentials file {path}: cannot read") from exc
    cls = api_class(exchange.api)
    if not hasattr(cls, "get_credential_cls"):
        return None
    for variable in (env_variable(exchange.name), cls.get_credential_cls().ENV_VARIABLE):
        text = os.environ.get(variable, "").strip()
        if text:
            return text
    raise UsageError(
        f"exchange {exchange.name!r}: no credentials; give --credentials-file when adding it "
        f"or set {env_variable(exchange.name)}"
    )


# --- configuration ------------------------------------------------------------------------


def _collab(exchange: Exchange) -> Any:
    """The library's collaboration config for the exchange (its options, no secrets)."""
    import dacite

    cls = api_class(exchange.api).get_config_cls()
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    data: dict[str, Any] = {"name": exchange.name, "api": exchange.api, "enabled": True}
    data.update({k: v for k, v in exchange.config.get("options", {}).items()})
    data = {k: v for k, v in data.items() if k in names}
    if exchange.api == "ncmec" and isinstance(data.get("environment"), str):
        data["environment"] = _ncmec_environment(data["environment"])
    try:
        return dacite.from_dict(cls, data, dacite.Config(cast=[enum.Enum, int, set]))
    except (dacite.DaciteError, ValueError, TypeError) as exc:
        raise UsageError(f"exchange {exchange.name!r}: bad option ({exc})") from exc


def _ncmec_environment(value: str) -> Any:
    from threatexchange.exchanges.clients.ncmec.hash_api import NCMECEnvironment

    for env in NCMECEnvironment:
        if value in (env.name, env.value):
            return env
    names = ", ".join(e.name for e in NCMECEnvironment)
    raise UsageError(f"--option environment={value[:40]!r}: one of {names}")


def _connect(exchange: Exchange) -> Any:
    """An authenticated library client; errors never carry the credentials."""
    cls = api_class(exchange.api)
    collab = _collab(exchange)
    if not hasattr(cls, "get_credential_cls"):
        return cls.for_collab(collab)
    text = _credential_text(exchange)
    cred_cls = cls.get_credential_cls()
    try:
        creds = cred_cls._from_str(text or "")
        valid = creds._are_valid()
    except Exception as exc:  # noqa: BLE001 - the library's parsers raise anything
        raise UsageError(
            f"exchange {exchange.name!r}: credentials not in the expected form"
        ) from exc
    if not valid:
        raise UsageError(f"exchange {exchange.name!r}: credentials not in the expected form")
    return cls.for_collab(collab, creds)


# --- add, list, remove --------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    api: str
    list_name: str
    credentials_file: Path | None = None
    options: dict[str, str] = field(default_factory=dict)
    kind: str | None = None
    pdq_threshold: int | None = None
    action: str | None = None  # review | auto (hashlists.check_action); None: review


def parse_options(pairs: Iterable[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--option {pair[:80]!r}: expected KEY=VALUE")
        options[key.strip()] = value.strip()
    return options


def add_exchange(session: Session, spec: ExchangeSpec, actor: str = "cli") -> Exchange:
    check_name(spec.name, "exchange name")
    if spec.name.startswith("-"):
        raise UsageError(f"exchange name {spec.name[:40]!r}: may not start with '-'")
    cls = api_class(spec.api)
    hashlists.check_action(spec.action, spec.kind or "known")
    if session.execute(select(Exchange.id).where(Exchange.name == spec.name)).first():
        raise UsageError(f"exchange {spec.name!r} already exists (remove it first)")
    config: dict[str, Any] = {"options": dict(spec.options)}
    if spec.credentials_file is not None:
        if not hasattr(cls, "get_credential_cls"):
            raise UsageError(f"--api {spec.api}: takes no credentials")
        config["credentials_file"] = str(check_credentials_file(spec.credentials_file))
    if spec.api == "local_file":
        filename = spec.options.get("filename")
        if not filename:
            raise UsageError("--api local_file needs --file PATH")
        config["options"]["filename"] = str(Path(filename).expanduser().resolve())
    known = {f.name for f in dataclasses.fields(cls.get_config_cls())} - {"name", "api"}
    unknown = set(spec.options) - known
    if unknown:
        raise UsageError(
            f"--option {sorted(unknown)[0]!r}: not an option of {spec.api} "
            f"({', '.join(sorted(known - {'enabled'})) or 'none'})"
        )
    hash_list = session.execute(select(HashList).where(HashList.name == spec.list_name)).scalar()
    if hash_list is not None:
        if session.execute(select(Exchange.id).where(Exchange.list_id == hash_list.id)).first():
            raise UsageError(f"list {spec.list_name!r} is already fed by an exchange")
        if hashlists.count_entries(session, hash_list.id):
            raise UsageError(
                f"list {spec.list_name!r} already has entries; an exchange feeds a list of its own"
            )
    result = hashlists.import_rows(
        session,
        spec.list_name,
        [],
        kind=spec.kind,
        pdq_threshold=spec.pdq_threshold,
        action=spec.action,
    )
    row = Exchange(
        name=spec.name,
        api=spec.api,
        list_id=result.list_id,
        config=config,
        generation=0,
        full_fetch=False,
        created_at=utcnow(),
    )
    _collab(row)  # options checked now, not at the first fetch
    session.add(row)
    session.flush()
    details = {"name": spec.name, "api": spec.api, "list": spec.list_name}
    if spec.action is not None:
        details["action"] = spec.action
    record(session, Event(actor, "exchange.added", "exchange", row.id, details))
    return row


def get_exchange(session: Session, name: str) -> Exchange:
    row = session.execute(select(Exchange).where(Exchange.name == name)).scalar()
    if row is None:
        raise UsageError(f"no exchange named {name[:80]!r} (see `takedown exchange list`)")
    return row


def list_exchanges(session: Session) -> list[tuple[Exchange, str, int]]:
    """Every exchange with its list's name and entry count."""
    counts = dict(
        session.execute(select(HashEntry.list_id, func.count()).group_by(HashEntry.list_id)).all()
    )
    rows = session.execute(
        select(Exchange, HashList.name)
        .join(HashList, HashList.id == Exchange.list_id)
        .order_by(Exchange.name)
    ).all()
    return [(ex, list_name, int(counts.get(ex.list_id, 0))) for ex, list_name in rows]


def remove_exchange(session: Session, name: str, actor: str = "cli") -> None:
    """Forget the exchange and its checkpoint; its list and entries stay."""
    row = get_exchange(session, name)
    record(session, Event(actor, "exchange.removed", "exchange", row.id, {"name": name}))
    session.delete(row)


# --- fetch --------------------------------------------------------------------------------


@dataclass
class FetchStats:
    name: str
    batches: int = 0
    records: int = 0
    added: int = 0
    removed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    full: bool = False
    reassessed: int = 0
    # Pages that matched entries removed in the current transaction (not printed).
    pages: set[int] = field(default_factory=set)

    def lines(self) -> list[str]:
        kind = "full" if self.full else "incremental"
        out = [
            f"{self.name}: {kind} fetch: {self.batches} batches, {self.records} records, "
            f"{self.added} entries added, {self.removed} removed"
        ]
        if self.reassessed:
            out.append(f"{self.name}: {self.reassessed} pages re-assessed after upstream deletions")
        if self.skipped:
            parts = ", ".join(f"{n} {t}" for t, n in sorted(self.skipped.items()))
            out.append(f"{self.name}: skipped (signal types not matched here): {parts}")
        return out


Progress = Callable[[FetchStats], None]


def _key_text(key: Any) -> str:
    if isinstance(key, tuple):
        return json.dumps(list(key), ensure_ascii=True)
    return str(key)


def _skip_label(key: Any) -> str:
    if isinstance(key, tuple) and key and isinstance(key[0], str) and key[0]:
        return key[0][:32]
    return "other"


class _Converter:
    """Upstream records to (hash_type, hash) pairs, via the library's conversion."""

    def __init__(self, cls: Any, collab: Any) -> None:
        self.cls, self.collab = cls, collab
        self.known, self.ours = _signal_types()
        from threatexchange.exchanges.signal_exchange_api import (
            SignalExchangeAPIWithSimpleUpdates,
        )

        self.simple = issubclass(cls, SignalExchangeAPIWithSimpleUpdates)
        # vpdq entries of the current batch: SHA-256 -> canonical serialisation.
        self.vpdq: dict[str, str] = {}

    def is_deletion(self, value: Any) -> bool:
        if value is None:
            return True
        try:
            return self.cls.fetch_value_merge(None, value) is None
        except AssertionError:
            return False

    def convert(
        self, live: list[tuple[Any, Any]], skipped: dict[str, int]
    ) -> list[set[tuple[str, str]]]:
        """The signals of each (key, value) of `live`, in order (none when skipped)."""
        if self.simple:
            # Keys are (signal type name, signal): one conversion for the whole chunk.
            converted = self.cls.naive_convert_to_signal_type(self.known, self.collab, dict(live))
            accepted: set[tuple[str, str]] = set()
            for s_type, by_signal in converted.items():
                name = s_type.get_name()
                accepted.update((name, signal) for signal in by_signal)
            out = []
            for key, _ in live:
                if key in accepted:
                    out.append(self._ours(key[0], [key[1]], skipped))
                else:
                    self._skip(key, skipped)
                    out.append(set())
            return out
        return [self._one(key, value, skipped) for key, value in live]

    def _one(self, key: Any, value: Any, skipped: dict[str, int]) -> set[tuple[str, str]]:
        converted = self.cls.naive_convert_to_signal_type(self.known, self.collab, {key: value})
        found: set[tuple[str, str]] = set()
        for s_type, by_signal in converted.items():
            found |= self._ours(s_type.get_name(), list(by_signal), skipped)
        if not converted:
            self._skip(key, skipped)
        return found

    def _ours(self, name: str, signals: list[str], skipped: dict[str, int]) -> set[tuple[str, str]]:
        ours = self.ours.get(name)
        if ours is None:
            skipped[name] = skipped.get(name, 0) + len(signals)
            return set()
        found = set()
        for signal in signals:
            if ours == "vpdq":
                canonical = hashlists._check_vpdq(str(signal).strip())
                if canonical.startswith("vpdq"):  # a reason, not a serialisation
                    skipped["malformed"] = skipped.get("malformed", 0) + 1
                    continue
                digest = hashlib.sha256(canonical.encode()).hexdigest()
                self.vpdq[digest] = canonical
                found.add((ours, digest))
                continue
            value = str(signal).strip().lower()
            if len(value) == hashlists.HEX_LENGTHS[ours] and hashlists._HEX.fullmatch(value):
                found.add((ours, value))
            else:
                skipped["malformed"] = skipped.get("malformed", 0) + 1
        return found

    def _skip(self, key: Any, skipped: dict[str, int]) -> None:
        """A type the library does not know, or a value it found malformed."""
        label = _skip_label(key)
        label = "malformed" if label in self.ours else label
        skipped[label] = skipped.get(label, 0) + 1


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _referenced(
    session: Session, exchange_id: int, signals: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for chunk in _chunks(sorted(signals), 500):
        query = select(ExchangeRecord.hash_type, ExchangeRecord.hash).where(
            ExchangeRecord.exchange_id == exchange_id,
            tuple_(ExchangeRecord.hash_type, ExchangeRecord.hash).in_(chunk),
        )
        found.update((t, h) for t, h in session.execute(query))
    return found


def _drop_entries(
    session: Session, list_id: int, signals: set[tuple[str, str]], pages: set[int]
) -> int:
    """Delete the entries (their matches go with them); adds the pages they matched."""
    removed = 0
    for chunk in _chunks(sorted(signals), 500):
        entries = select(HashEntry.id).where(
            HashEntry.list_id == list_id,
            tuple_(HashEntry.hash_type, HashEntry.hash).in_(chunk),
        )
        matched = (
            select(Observation.page_id)
            .join(Match, Match.media_id == Observation.media_id)
            .where(Match.entry_id.in_(entries))
            .distinct()
        )
        pages.update(int(p) for p in session.execute(matched).scalars())
        result = session.execute(
            delete(HashEntry).where(
                HashEntry.list_id == list_id,
                tuple_(HashEntry.hash_type, HashEntry.hash).in_(chunk),
            )
        )
        removed += max(result.rowcount, 0)  # type: ignore[attr-defined]
    return removed


def _apply(
    session: Session,
    exchange: Exchange,
    updates: Mapping[Any, Any],
    converter: _Converter,
    stats: FetchStats,
) -> None:
    """One batch from the library, inside the caller's transaction."""
    items = list(updates.items())
    for chunk in _chunks(items):
        keys: list[str] = []
        live: list[tuple[Any, Any]] = []
        texts: list[str] = []
        for key, value in chunk:
            text = _key_text(key)
            if len(text) > MAX_KEY:
                stats.skipped["malformed"] = stats.skipped.get("malformed", 0) + 1
                continue
            keys.append(text)
            if not converter.is_deletion(value):
                live.append((key, value))
                texts.append(text)
        new_rows: list[dict[str, Any]] = []
        new_signals: set[tuple[str, str]] = set()
        for text, found in zip(texts, converter.convert(live, stats.skipped), strict=True):
            new_signals |= found
            new_rows.extend(
                {
                    "exchange_id": exchange.id,
                    "record_key": text,
                    "hash_type": hash_type,
                    "hash": value,
                    "generation": exchange.generation,
                }
                for hash_type, value in found
            )
        _replace_records(session, exchange, keys, new_rows, new_signals, stats, converter.vpdq)
        converter.vpdq.clear()
    stats.records += len(items)


def _replace_records(
    session: Session,
    exchange: Exchange,
    keys: list[str],
    new_rows: list[dict[str, Any]],
    new_signals: set[tuple[str, str]],
    stats: FetchStats,
    vpdq: Mapping[str, str] | None = None,
) -> None:
    where = (ExchangeRecord.exchange_id == exchange.id, ExchangeRecord.record_key.in_(keys))
    old = {
        (t, h)
        for t, h in session.execute(
            select(ExchangeRecord.hash_type, ExchangeRecord.hash).where(*where)
        )
    }
    if keys:
        session.execute(delete(ExchangeRecord).where(*where))
    if new_rows:
        session.connection().execute(insert(_RECORDS), new_rows)
        reference = f"exchange:{exchange.name}"[:256]
        rows = [
            hashlists.HashRow(t, h, None, reference, (vpdq or {}).get(h) if t == "vpdq" else None)
            for t, h in sorted(new_signals)
        ]
        # Entries are written with fixed category and reference: only new ones count.
        stats.added += hashlists._upsert_entries(session, exchange.list_id, rows)
    gone = old - new_signals
    if gone:
        gone -= _referenced(session, exchange.id, gone)
        stats.removed += _drop_entries(session, exchange.list_id, gone, stats.pages)


def _sweep(session: Session, exchange: Exchange, stats: FetchStats) -> None:
    """At the end of a full fetch: records not seen in it were deleted upstream."""
    while True:
        stale = session.execute(
            select(ExchangeRecord.id, ExchangeRecord.hash_type, ExchangeRecord.hash)
            .where(
                ExchangeRecord.exchange_id == exchange.id,
                ExchangeRecord.generation < exchange.generation,
            )
            .limit(CHUNK)
        ).all()
        if not stale:
            return
        session.execute(delete(ExchangeRecord).where(ExchangeRecord.id.in_([r[0] for r in stale])))
        gone = {(t, h) for _, t, h in stale}
        gone -= _referenced(session, exchange.id, gone)
        stats.removed += _drop_entries(session, exchange.list_id, gone, stats.pages)


def _load_checkpoint(cls: Any, data: dict[str, Any] | None) -> Any:
    import dacite

    if data is None:
        return None
    try:
        return dacite.from_dict(
            cls.get_checkpoint_cls(), data, dacite.Config(cast=[enum.Enum, set])
        )
    except (dacite.DaciteError, ValueError, TypeError):
        log.warning("stored checkpoint unreadable; fetching everything again")
        return None


def _dump_checkpoint(checkpoint: Any) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    data = dataclasses.asdict(checkpoint)
    return json.loads(json.dumps(data, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(type(value).__name__)


def _bump_list(session: Session, list_id: int) -> None:
    session.execute(
        update(HashList)
        .where(HashList.id == list_id)
        .values(version=HashList.version + 1, updated_at=utcnow())
    )


def _fault(exchange: str, exc: BaseException, secrets: tuple[str, ...]) -> TakedownError:
    """The one-line error for a failed fetch: 3 when the exchange is unreachable or
    overloaded, 1 when it refused us or answered something unreadable."""
    import requests

    status = None
    response = getattr(exc, "response", None)
    if response is not None:
        status = getattr(response, "status_code", None)
    if isinstance(exc, requests.exceptions.RetryError) or status in (429, 500, 502, 503, 504):
        why = f"HTTP {status}" if status else "kept answering 429/5xx (retries exhausted)"
        return DependencyError(f"exchange {exchange!r}: unavailable ({why}); run fetch again later")
    if isinstance(exc, requests.exceptions.Timeout | requests.exceptions.ConnectionError):
        return DependencyError(f"exchange {exchange!r}: unreachable ({type(exc).__name__})")
    if status in (401, 403):
        return TakedownError(f"exchange {exchange!r}: credentials refused (HTTP {status})")
    if status is not None:
        return TakedownError(f"exchange {exchange!r}: HTTP {status}")
    text = str(exc)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return TakedownError(
        f"exchange {exchange!r}: unreadable answer ({type(exc).__name__}: {text[:200]})"
    )


def _secrets(exchange: Exchange) -> tuple[str, ...]:
    try:
        text = _credential_text(exchange) or ""
    except TakedownError:
        return ()
    return tuple(p for p in re.split(r"[\s:,]+", text) if len(p) >= 4) + (text,)


def _reassess(session: Session, stats: FetchStats, categories: tuple[str, ...]) -> None:
    """Review items of pages that lost matches: closed when nothing else matches them."""
    if stats.pages:
        update_candidates(session, stats.pages, categories)
        stats.reassessed += len(stats.pages)
        stats.pages.clear()


def _owner() -> str:
    return f"{socket.gethostname()[:80]}:{os.getpid()}"


def _dead(owner: str) -> bool:
    """A lock holder on this machine whose process is gone (killed, crashed)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname()[:80] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _lock(db: Database, name: str, owner: str) -> None:
    """One fetch of an exchange at a time: a lease in its row, renewed at each batch,
    taken over when expired or when its holder on this machine is dead."""
    now = utcnow()
    with db.session() as s:
        row = get_exchange(s, name)
        free = or_(Exchange.lock_owner.is_(None), Exchange.lock_until < now)
        if row.lock_owner and _dead(row.lock_owner):
            free = or_(free, Exchange.lock_owner == row.lock_owner)
        won = s.execute(
            update(Exchange)
            .where(Exchange.id == row.id, free)
            .values(lock_owner=owner, lock_until=now + FETCH_LEASE)
            .execution_options(synchronize_session=False)
        )
        if won.rowcount != 1:  # type: ignore[attr-defined]
            raise TakedownError(
                f"exchange {name!r}: a fetch is already running ({row.lock_owner}); "
                "try again when it ends"
            )


def _unlock(db: Database, name: str, owner: str) -> None:
    with db.session() as s:
        s.execute(
            update(Exchange)
            .where(Exchange.name == name, Exchange.lock_owner == owner)
            .values(lock_owner=None, lock_until=None)
            .execution_options(synchronize_session=False)
        )


def fetch(
    db: Database,
    name: str,
    progress: Progress | None = None,
    categories: tuple[str, ...] = (),
) -> FetchStats:
    """Fetch one exchange from its checkpoint; each batch is committed with it."""
    owner = _owner()
    _lock(db, name, owner)
    try:
        return _fetch(db, name, progress, categories)
    finally:
        _unlock(db, name, owner)


def _fetch(
    db: Database, name: str, progress: Progress | None, categories: tuple[str, ...]
) -> FetchStats:
    with db.read_session() as s:
        exchange = get_exchange(s, name)
        s.expunge(exchange)
    cls = api_class(exchange.api)
    client = _connect(exchange)
    secrets = _secrets(exchange)
    converter = _Converter(cls, _collab(exchange))
    checkpoint = _load_checkpoint(cls, exchange.checkpoint)
    stats = FetchStats(name)
    with db.session() as s:
        row = s.get(Exchange, exchange.id)
        assert row is not None
        if not row.full_fetch and (
            checkpoint is None or exchange.api in SNAPSHOT_APIS or checkpoint.is_stale()
        ):
            row.generation, row.full_fetch, row.checkpoint = row.generation + 1, True, None
            checkpoint = None
        if exchange.api in SNAPSHOT_APIS:
            checkpoint = None
        exchange.generation, exchange.full_fetch = row.generation, row.full_fetch
    stats.full = exchange.full_fetch
    deltas = client.fetch_iter(converter.known, checkpoint)
    try:
        while True:
            try:
                delta = next(deltas)
            except StopIteration:
                break
            except TakedownError:
                raise
            except Exception as exc:  # noqa: BLE001 - the library raises anything
                error = _fault(name, exc, secrets)
                _note(db, exchange.id, "failed", str(error))
                raise error from None
            with db.session() as s:
                _apply(s, exchange, delta.updates, converter, stats)
                _reassess(s, stats, categories)
                values: dict[str, Any] = {
                    "checkpoint": _dump_checkpoint(delta.checkpoint),
                    "lock_until": utcnow() + FETCH_LEASE,
                }
                s.execute(update(Exchange).where(Exchange.id == exchange.id).values(**values))
                _bump_list(s, exchange.list_id)
            stats.batches += 1
            if stats.batches & (stats.batches - 1) == 0:
                _analyze(db)  # at 1, 2, 4, 8... batches: see _analyze
            if progress:
                progress(stats)
    finally:
        close = getattr(deltas, "close", None)
        if close:
            close()
    with db.session() as s:
        if exchange.full_fetch:
            _sweep(s, exchange, stats)
            _reassess(s, stats, categories)
            _bump_list(s, exchange.list_id)
        s.execute(
            update(Exchange)
            .where(Exchange.id == exchange.id)
            .values(full_fetch=False, last_fetch_at=utcnow(), last_status="ok", last_error=None)
        )
        details = {"name": name, "records": stats.records, "added": stats.added}
        details |= {"removed": stats.removed, "skipped": stats.skipped, "full": stats.full}
        record(s, Event("cli", "exchange.fetched", "exchange", exchange.id, details))
    return stats


def _analyze(db: Database) -> None:
    """PostgreSQL: refresh the planner's statistics of the tables a fetch grows. Without
    them, a list filled from empty within one fetch keeps the plans of an empty table
    (a scan of every record of the exchange for each batch's keys)."""
    if db.engine.dialect.name != "postgresql":
        return
    with db.engine.connect() as conn:
        conn.execute(sql_text("ANALYZE exchange_records, hash_entries"))
        conn.commit()


def _note(db: Database, exchange_id: int, status: str, error: str) -> None:
    with db.session() as s:
        s.execute(
            update(Exchange)
            .where(Exchange.id == exchange_id)
            .values(last_fetch_at=utcnow(), last_status=status, last_error=error[:500])
        )


# --- feedback -----------------------------------------------------------------------------


def after_decision(session: Session, action: str, item_ids: list[int], now: datetime) -> None:
    """The review app's hook (review/decisions.py), called after every decision."""
    if action == "reject":
        on_reject(session, item_ids, now)


def on_reject(session: Session, item_ids: Iterable[int], now: datetime) -> int:
    """After a reject in review: for each rejected page whose every match came from
    lists fed by exchanges, record a negative opinion per matched signal (once)."""
    recorded = 0
    for item_id in item_ids:
        rows = session.execute(
            select(Exchange.id, HashEntry.hash_type, HashEntry.hash)
            .select_from(ReviewItem)
            .join(Observation, Observation.page_id == ReviewItem.page_id)
            .join(Match, Match.media_id == Observation.media_id)
            .join(HashEntry, HashEntry.id == Match.entry_id)
            .outerjoin(Exchange, Exchange.list_id == Match.list_id)
            .where(ReviewItem.id == item_id)
            .distinct()
        ).all()
        if not rows or any(ex_id is None for ex_id, _, _ in rows):
            continue
        for ex_id, hash_type, value in rows:
            exists = session.execute(
                select(ExchangeOpinion.id).where(
                    ExchangeOpinion.exchange_id == ex_id,
                    ExchangeOpinion.hash_type == hash_type,
                    ExchangeOpinion.hash == value,
                )
            ).first()
            if exists:
                continue
            session.add(
                ExchangeOpinion(
                    exchange_id=ex_id,
                    item_id=item_id,
                    hash_type=hash_type,
                    hash=value,
                    opinion="negative",
                    status="pending",
                    created_at=now,
                )
            )
            recorded += 1
    if recorded:
        session.flush()
    return recorded


@dataclass(frozen=True)
class OpinionLine:
    id: int
    exchange: str
    hash_type: str
    hash: str
    item_id: int | None
    status: str


def pending_opinions(session: Session, name: str | None = None) -> list[OpinionLine]:
    query = (
        select(ExchangeOpinion, Exchange.name)
        .join(Exchange, Exchange.id == ExchangeOpinion.exchange_id)
        .where(ExchangeOpinion.status.in_(("pending", "failed")))
        .order_by(ExchangeOpinion.id)
    )
    if name:
        query = query.where(Exchange.name == name)
    return [
        OpinionLine(o.id, ex_name, o.hash_type, o.hash, o.item_id, o.status)
        for o, ex_name in session.execute(query)
    ]


def send_opinions(db: Database, name: str | None = None) -> dict[str, int]:
    """Report pending opinions with the library's `report_opinion`; counts by outcome."""
    from threatexchange.exchanges.fetch_state import SignalOpinion, SignalOpinionCategory

    counts = {"sent": 0, "unsupported": 0, "failed": 0}
    with db.read_session() as s:
        lines = pending_opinions(s, name)
        exchanges = {e.name: e for e in s.execute(select(Exchange)).scalars()}
        for e in exchanges.values():
            s.expunge(e)
        # A vpdq opinion is reported with the serialisation, not our SHA-256 of it.
        serialised = {
            (line.id): s.execute(
                select(HashEntry.vpdq).where(
                    HashEntry.list_id == exchanges[line.exchange].list_id,
                    HashEntry.hash_type == "vpdq",
                    HashEntry.hash == line.hash,
                )
            ).scalar()
            for line in lines
            if line.hash_type == "vpdq"
        }
    clients: dict[str, Any] = {}
    for line in lines:
        exchange = exchanges[line.exchange]
        s_type = _library_signal_type(line.hash_type)
        status, error = "unsupported", None
        if s_type is not None:
            try:
                if line.exchange not in clients:
                    clients[line.exchange] = _connect(exchange)
                opinion = SignalOpinion(True, SignalOpinionCategory.NEGATIVE_CLASS, set())
                signal = serialised.get(line.id) or line.hash
                clients[line.exchange].report_opinion(s_type, signal, opinion)
                status = "sent"
            except NotImplementedError:
                status = "unsupported"
            except TakedownError:
                raise
            except Exception as exc:  # noqa: BLE001 - one failed report is recorded
                status, error = "failed", str(_fault(line.exchange, exc, _secrets(exchange)))
        counts[status] += 1
        with db.session() as s:
            s.execute(
                update(ExchangeOpinion)
                .where(ExchangeOpinion.id == line.id)
                .values(
                    status=status,
                    error=error,
                    sent_at=utcnow() if status == "sent" else None,
                )
            )
    return counts
