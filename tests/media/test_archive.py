"""Archives in memory (crawler.media.archive): members hashed as media, caps, hostile
archives (docs/hazards.md Z-01..Z-03). Synthetic archives
are built with zipfile/tarfile in memory; the images are synthetic."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from crawler.media.archive import ArchiveLimits, scan_archive
from crawler.media.hashing import hash_media
from tests.support.archives import make_zip
from tests.support.media import jpeg
from tests.support.video import make_video


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _scan(data: bytes, **limits: int):  # type: ignore[no-untyped-def]
    return scan_archive(data, hash_media, ArchiveLimits(**limits))


A, B = jpeg(160, 120, 1), jpeg(160, 120, 2)


@pytest.mark.parametrize(
    ("build", "fmt"),
    [(make_zip, "zip"), (_tar, "tar"), (lambda m: _tar(m, "w:gz"), "tar.gz")],
    ids=["zip", "tar", "tar.gz"],
)
def test_each_image_and_video_inside_is_hashed_as_its_own_media(build, fmt: str) -> None:
    video = make_video(2)
    scan = _scan(build({"a.jpg": A, "dir/b.jpg": B, "notes.txt": b"hello", "clip.mp4": video}))
    assert (scan.format, scan.status, scan.error) == (fmt, "hashed", None)
    got = {m.path: m.hashes for m in scan.members}
    assert set(got) == {"a.jpg", "dir/b.jpg", "clip.mp4"}
    assert got["a.jpg"].sha256 == hash_media(A).sha256 and got["a.jpg"].pdq
    assert got["clip.mp4"].media_type == "video" and got["clip.mp4"].vpdq


def test_nested_archives_are_opened_to_depth_two() -> None:
    inner = make_zip({"b.jpg": B})
    scan = _scan(make_zip({"a.jpg": A, "inner.zip": inner}))
    assert [(m.path, m.depth, m.status) for m in scan.members] == [
        ("a.jpg", 1, "hashed"),
        ("inner.zip/b.jpg", 2, "hashed"),
    ]


def test_z01_an_archive_nested_ten_deep_is_opened_two_levels_only() -> None:
    data = make_zip({"deep.jpg": A})
    for n in range(10):
        data = make_zip({f"level{n}.zip": data})
    scan = _scan(data)
    assert scan.status == "hashed"
    (member,) = scan.members
    assert member.status == "skipped" and "nested deeper than 2" in (member.error or "")
    assert member.path == "level9.zip/level8.zip"


def test_z01_zip_bomb_stops_at_the_ratio_cap_while_streaming() -> None:
    bomb = make_zip({"zeros.jpg": b"\xff\xd8\xff" + bytes(20_000_000)})
    assert len(bomb) < 100_000
    scan = _scan(bomb)
    assert scan.status == "skipped" and "archive_max_ratio" in (scan.error or "")
    assert scan.unpacked <= 100 * len(bomb) + (1 << 20)  # stopped within one chunk


def test_z01_total_unpacked_cap_is_named() -> None:
    stored = make_zip({f"{n}.jpg": A for n in range(5)}, zipfile.ZIP_STORED)
    scan = _scan(stored, max_unpacked_bytes=len(A) * 2 + 10)
    assert scan.status == "skipped" and "archive_max_unpacked_bytes" in (scan.error or "")
    assert len(scan.members) == 2  # the members before the cap are kept


def test_z01_a_zip_with_100000_tiny_members_stops_at_the_member_cap() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("first.jpg", A)
        for n in range(100_000):
            archive.writestr(f"t/{n}", b"x")
    scan = _scan(buffer.getvalue())
    assert scan.status == "skipped" and "archive_max_members" in (scan.error or "")
    assert scan.count == 2001 and [m.path for m in scan.members] == ["first.jpg"]


@pytest.mark.parametrize(
    "name", ["../../etc/x.jpg", "/etc/passwd.jpg", "a\x00b\x1b[31m.jpg", "n" * 10_000]
)
def test_z02_member_names_are_text_never_paths(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    scan = _scan(_tar({name: A}))
    (member,) = scan.members
    assert member.status == "hashed" and len(member.path) <= 512
    assert member.path.isprintable()
    if name.startswith(("../", "/")):
        assert member.path == name  # recorded as given, as text
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere


def test_z03_an_encrypted_member_is_skipped_and_the_others_hashed() -> None:
    data = bytearray(make_zip({"secret.jpg": A, "open.jpg": B}, zipfile.ZIP_STORED))
    # Set the "encrypted" flag bit of the first member (local and central headers).
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset] |= 0x1
    scan = _scan(bytes(data))
    by_path = {m.path: m for m in scan.members}
    assert by_path["secret.jpg"].status == "skipped" and "encrypted" in (
        by_path["secret.jpg"].error or ""
    )
    assert by_path["open.jpg"].status == "hashed"


def test_z03_links_and_devices_are_recorded_never_followed() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        link = tarfile.TarInfo("link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
        device = tarfile.TarInfo("dev.jpg")
        device.type = tarfile.CHRTYPE
        archive.addfile(device)
        info = tarfile.TarInfo("real.jpg")
        info.size = len(A)
        archive.addfile(info, io.BytesIO(A))
    scan = _scan(buffer.getvalue())
    assert [(m.path, m.status) for m in scan.members] == [
        ("link.jpg", "skipped"),
        ("dev.jpg", "skipped"),
        ("real.jpg", "hashed"),
    ]


@pytest.mark.parametrize(
    ("build", "cut"), [(make_zip, 0.5), (lambda m: _tar(m, "w:gz"), 0.7)], ids=["zip", "tar.gz"]
)
def test_z03_a_truncated_archive_is_an_error_not_a_crash(build, cut: float) -> None:
    data = build({"a.jpg": A, "b.jpg": B, "c.jpg": jpeg(160, 120, 3)})
    scan = _scan(data[: int(len(data) * cut)])
    assert scan.status == "error" and "could not read" in (scan.error or "")


def test_not_an_archive_is_skipped() -> None:
    scan = _scan(A)
    assert scan.status == "skipped" and scan.members == []


def test_archives_are_sniffed_from_their_bytes() -> None:
    from crawler.media.sniff import Sniffed, sniff

    assert sniff(_tar({"a.jpg": A})) == Sniffed("tar", "archive")
    assert sniff(_tar({"a.jpg": A}, "w:gz")) == Sniffed("gzip", "archive")
    assert sniff(make_zip({"a.jpg": A})) == Sniffed("zip", "archive")
    assert hash_media(make_zip({"a.jpg": A})).media_type == "archive"
