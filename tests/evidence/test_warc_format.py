"""The WARC records written by `crawler.evidence.warc` are byte for byte warcio's."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.warcwriter import WARCWriter

from crawler.evidence.warc import (
    PageWarc,
    _record,
    append_media_record,
    check_warc,
    iter_records,
    warc_date,
    warc_digest,
    write_page_warc,
)

RID = "<urn:uuid:00000000-1111-4222-8333-444444444444>"
AT = datetime(2026, 11, 24, 9, 30, 5, tzinfo=UTC)


def _warcio(uri: str | None, kind: str, body: bytes, ctype: str, extra: dict[str, str]) -> bytes:
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    digest = warc_digest(body)
    headers = {"WARC-Block-Digest": digest, "WARC-Payload-Digest": digest, **extra}
    headers["WARC-Record-ID"] = RID
    record = writer.create_warc_record(
        uri or "",
        kind,
        payload=io.BytesIO(body),
        length=len(body),
        warc_content_type=ctype,
        warc_headers_dict=headers,
    )
    writer.write_record(record)
    return out.getvalue()


@pytest.mark.parametrize(
    ("uri", "kind", "body", "ctype", "extra"),
    [
        (None, "warcinfo", b'{"format": "x"}', "application/json", {}),
        (
            "http://127.0.0.2/p/ü",
            "resource",
            "<p>ünïcode</p>".encode() * 300,
            "text/html; charset=utf-8",
            {"WARC-Takedown-Transform": "t", "WARC-IP-Address": "127.0.0.2"},
        ),
        ("http://127.0.0.2/a.png", "metadata", b"{}", "application/json", {"WARC-Refers-To": RID}),
        ("http://127.0.0.2/empty", "metadata", b"", "application/json", {}),
    ],
)
def test_a_record_is_what_warcio_writes(
    uri: str | None, kind: str, body: bytes, ctype: str, extra: dict[str, str]
) -> None:
    extra = {"WARC-Date": warc_date(AT), **extra}
    ours, rid = _record(uri, kind, body, ctype, extra, RID)
    assert rid == RID
    # warcio puts a given WARC-Record-ID among the given headers; ours comes after the
    # type, as warcio's own id does: compare with the id in warcio's place.
    theirs = _warcio(uri, kind, body, ctype, extra)
    assert _headers(ours) == _moved(_headers(theirs))
    assert list(iter_records(ours))[0][1] == body
    check_warc(ours)


def _headers(data: bytes) -> list[tuple[str, str]]:
    headers = next(iter_records(data))[0]
    return [(str(k), str(v)) for k, v in headers.headers]


def _moved(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    rid = ("WARC-Record-ID", RID)
    rest = [h for h in headers if h != rid]
    at = [k for k, _ in rest].index("WARC-Type") + 1
    return [*rest[:at], rid, *rest[at:]]


def test_a_record_is_byte_for_byte_warcio_when_its_id_is_generated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uuid

    fixed = uuid.UUID(RID[len("<urn:uuid:") : -1])
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    extra = {"WARC-Date": warc_date(AT), "WARC-Refers-To": RID}
    body = b'{"sha256": "ab"}' * 50
    ours, _ = _record("http://127.0.0.2/a.png", "metadata", body, "application/json", extra)

    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    digest = warc_digest(body)
    record = writer.create_warc_record(
        "http://127.0.0.2/a.png",
        "metadata",
        payload=io.BytesIO(body),
        length=len(body),
        warc_content_type="application/json",
        warc_headers_dict={"WARC-Block-Digest": digest, "WARC-Payload-Digest": digest, **extra},
    )
    writer.write_record(record)
    assert ours == out.getvalue()


def test_a_page_warc_with_appended_media_verifies(tmp_path: Path) -> None:
    path = tmp_path / "w" / "page.warc.gz"
    facts = {"software": "0.1", "policy_sha256": "ab" * 32, "final_url": "http://x/"}
    page = PageWarc("http://x/", AT, "127.0.0.2", "<p>hi</p>", "cd" * 32, facts)
    rid = write_page_warc(path, page)
    append_media_record(path, "http://x/a.png", {"sha256": "ef" * 32}, rid, AT)
    data = path.read_bytes()
    assert check_warc(data) == 4
    records = list(iter_records(data))
    assert [h.get_header("WARC-Type") for h, _ in records] == [
        "warcinfo",
        "resource",
        "metadata",
        "metadata",
    ]
    assert records[2][0].get_header("WARC-Record-ID") == rid
    assert records[2][0].get_header("WARC-Refers-To") == records[1][0].get_header("WARC-Record-ID")
    assert records[3][0].get_header("WARC-Refers-To") == rid
    with pytest.raises(FileExistsError):
        write_page_warc(path, page)
