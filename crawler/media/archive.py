"""Archives opened in memory: every image and video inside hashed as its own media.

:func:`scan_archive` reads ZIP, TAR and gzip'd TAR from the bytes it is given (``BytesIO``:
nothing is ever written to disk, no member name is ever used as a path), hands each
member's bytes to ``hasher`` one at a time and keeps only what it returns (hashes). It
never raises for any bytes.

Policies (docs/hazards.md Z-01..Z-03; tests in
``tests/media/test_archive.py``):

* **Caps, checked while streaming** (policy ``[media]``): ``archive_max_members`` members
  (counted across nested archives), ``archive_max_unpacked_bytes`` bytes unpacked in all,
  ``archive_max_ratio`` unpacked/packed (per member, against its compressed size, and for
  the archive as a whole). Members are read in chunks and reading stops the moment a cap
  is passed, whatever the headers claim. The result's ``status`` is then "skipped" and
  ``error`` names the cap; members hashed before it are kept.
* **Nesting**: an archive inside an archive is opened up to ``max_depth`` levels (2: the
  archive and the archives it holds); deeper ones are recorded, not opened.
* **Names are data**: stored with control characters replaced and cut to 512 characters;
  ``../../etc/x`` and ``/abs`` are just text.
* **Encrypted members, links, devices**: recorded as skipped members with the reason;
  the other members are still hashed. Nothing is ever followed.
* **Truncated or corrupt archives**: members read before the damage are kept; status
  "error" with the reason.
* Only members whose bytes sniff as an image, a video or an archive are hashed (or
  opened); other files count towards the caps and are otherwise ignored.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from crawler.media.sniff import sniff

_CHUNK = 1 << 20
_MAX_NAME = 512
_MAX_REASON = 300
ARCHIVE_FORMATS = frozenset({"zip", "tar", "gzip"})


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    max_members: int = 2000
    max_unpacked_bytes: int = 500_000_000
    max_ratio: int = 100
    max_depth: int = 2
    max_member_bytes: int = 25_000_000  # the policy's media.max_bytes


@dataclass(frozen=True, slots=True)
class ArchiveMember:
    """One member: its path (text), where it sits, and the hasher's result (or why not)."""

    path: str
    hashes: Any | None  # what ``hasher`` returned; None when the member was not read
    status: str  # "hashed" (hasher ran) | "skipped" | "error"
    error: str | None = None
    depth: int = 1  # 1: directly in the archive; 2: inside an archive inside it


@dataclass
class ArchiveScan:
    """The archive's own outcome and its members, in archive order."""

    format: str | None
    status: str = "hashed"
    error: str | None = None
    members: list[ArchiveMember] = field(default_factory=list)
    count: int = 0  # members seen, nested ones included
    unpacked: int = 0  # bytes read out of the archive, nested ones included


class _Cap(Exception):
    """A limit was passed: stop reading, say which."""


def clean_name(name: str) -> str:
    """A member name as text to store: no control characters, at most 512 characters."""
    text = "".join(c if c.isprintable() else "\ufffd" for c in name)
    return text if len(text) <= _MAX_NAME else text[: _MAX_NAME - 3] + "..."


def _clip(reason: str) -> str:
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 3] + "..."


@dataclass
class _Scanner:
    limits: ArchiveLimits
    hasher: Callable[[bytes], Any]
    packed: int
    scan: ArchiveScan

    def read(self, stream: IO[bytes], packed_size: int, path: str) -> bytes:
        """A member's bytes, read in chunks, stopped by the caps whatever it declares."""
        limit = self.limits
        member_cap = min(limit.max_member_bytes, limit.max_ratio * max(packed_size, 1))
        parts: list[bytes] = []
        size = 0
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            self.scan.unpacked += len(chunk)
            if self.scan.unpacked > limit.max_unpacked_bytes:
                raise _Cap(
                    f"archive_max_unpacked_bytes: more than {limit.max_unpacked_bytes:,} "
                    f"bytes unpacked (at member {path!r})"
                )
            if self.scan.unpacked > limit.max_ratio * max(self.packed, 1):
                raise _Cap(
                    f"archive_max_ratio: more than {limit.max_ratio} times the archive's "
                    f"{self.packed:,} bytes unpacked (at member {path!r})"
                )
            if size > member_cap:
                raise _MemberTooBig(path, member_cap, packed_size)
            parts.append(chunk)
        return b"".join(parts)

    def count(self) -> None:
        self.scan.count += 1
        if self.scan.count > self.limits.max_members:
            raise _Cap(f"archive_max_members: more than {self.limits.max_members:,} members")

    def member(self, path: str, data: bytes, depth: int) -> None:
        """Hash a media member, open an archive member, ignore the rest."""
        sniffed = sniff(data)
        if sniffed.format in ARCHIVE_FORMATS:
            if depth >= self.limits.max_depth:
                reason = f"an archive nested deeper than {self.limits.max_depth} levels: not opened"
                self.scan.members.append(ArchiveMember(path, None, "skipped", reason, depth))
                return
            try:
                _walk(self, data, depth + 1, prefix=path + "/")
            except _Cap:
                raise
            except Exception as exc:  # a damaged inner archive costs only itself
                reason = _clip(f"nested archive unreadable ({type(exc).__name__}: {exc})")
                self.scan.members.append(ArchiveMember(path, None, "error", reason, depth))
            return
        if sniffed.kind in ("image", "video"):
            self.scan.members.append(ArchiveMember(path, self.hasher(data), "hashed", None, depth))

    def skip(self, path: str, reason: str, depth: int) -> None:
        self.scan.members.append(ArchiveMember(path, None, "skipped", reason, depth))


class _MemberTooBig(Exception):
    def __init__(self, path: str, cap: int, packed: int) -> None:
        super().__init__(
            f"member larger than {cap:,} bytes unpacked ({packed:,} packed; "
            "archive_max_ratio or media.max_bytes): not hashed"
        )
        self.path = path


def _zip_members(data: bytes) -> Iterator[tuple[zipfile.ZipFile, zipfile.ZipInfo]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            yield archive, info


def _walk_zip(s: _Scanner, data: bytes, depth: int, prefix: str) -> None:
    for archive, info in _zip_members(data):
        s.count()
        path = prefix + clean_name(info.filename)
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            s.skip(path, "encrypted member: not opened", depth)
            continue
        try:
            with archive.open(info) as stream:
                body = s.read(stream, info.compress_size, path)
        except _MemberTooBig as exc:
            s.skip(path, str(exc), depth)
            continue
        except (NotImplementedError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            s.scan.members.append(
                ArchiveMember(path, None, "error", _clip(f"unreadable member: {exc}"), depth)
            )
            continue
        s.member(path, body, depth)


def _walk_tar(s: _Scanner, data: bytes, depth: int, prefix: str) -> None:
    # "r:*" reads gzip'd or plain TAR from memory; members are read one by one.
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for info in archive:
            s.count()
            path = prefix + clean_name(info.name)
            if info.isdir():
                continue
            if not info.isfile():
                s.skip(path, "a link or device, not a file: never followed", depth)
                continue
            stream = archive.extractfile(info)
            if stream is None:  # pragma: no cover - isfile() members always have one
                continue
            try:
                # TAR members are stored whole: the archive-wide ratio catches gzip bombs.
                body = s.read(stream, info.size, path)
            except _MemberTooBig as exc:
                s.skip(path, str(exc), depth)
                continue
            s.member(path, body, depth)


def _walk(s: _Scanner, data: bytes, depth: int, prefix: str = "") -> None:
    fmt = sniff(data).format
    if fmt == "zip":
        _walk_zip(s, data, depth, prefix)
    else:
        _walk_tar(s, data, depth, prefix)


def _archive_format(data: bytes) -> str | None:
    fmt = sniff(data).format
    if fmt == "gzip":
        return "tar.gz"
    return fmt if fmt in ARCHIVE_FORMATS else None


def scan_archive(
    data: bytes, hasher: Callable[[bytes], Any], limits: ArchiveLimits | None = None
) -> ArchiveScan:
    """Open ``data`` (ZIP, TAR, gzip'd TAR) in memory and hash its media members."""
    scan = ArchiveScan(_archive_format(data))
    scanner = _Scanner(limits or ArchiveLimits(), hasher, len(data), scan)
    try:
        if scan.format is None:
            scan.status, scan.error = "skipped", "not a ZIP, TAR or gzip'd TAR archive"
        else:
            _walk(scanner, data, 1)
    except _Cap as exc:
        scan.status, scan.error = "skipped", _clip(f"{exc}; members after it not opened")
    except RecursionError:  # pragma: no cover - depth is capped long before
        scan.status, scan.error = "skipped", "nesting too deep"
    except Exception as exc:  # truncated, corrupt, not really an archive
        kept = len(scan.members)
        scan.status = "error"
        scan.error = _clip(
            f"could not read the {scan.format} archive ({type(exc).__name__}: {exc}); "
            f"{kept} members read before it kept"
        )
    return scan
