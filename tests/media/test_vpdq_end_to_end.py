"""vPDQ end to end (docs/interface.md): vpdq hash-list rows, videos stored with
their frame hashes, frame matches against pdq entries (with `timestamp`), vpdq matches
(with `match_percent`, `--vpdq-percent`), export fields and rematch. Both engines."""

from __future__ import annotations

import hashlib
import io
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from sqlalchemy import delete, select

from crawler.db.models import HashEntry, HashList, Match, Media, Observation, ReviewItem
from crawler.db.session import Database
from crawler.evidence.records import media_facts
from crawler.matching.rematch import rematch
from crawler.media.hashlists import HashListError, HashRow, import_rows, parse_rows
from crawler.media.pdq import pdq_from_luma
from crawler.media.video import hash_video, parse_vpdq, serialise
from crawler.reporting.exports import export
from tests.support.archives import store_bodies
from tests.support.rows import all_rows
from tests.support.video import make_video, scene

PAGE = "http://127.0.0.2/videos"


def _vpdq_of(data: bytes) -> str:
    found = hash_video(data)
    assert found.vpdq is not None
    return found.vpdq


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


# --- hash-list rows ---------------------------------------------------------------------


def test_a_vpdq_row_is_read_from_a_quoted_csv_cell_and_stored_canonically() -> None:
    vpdq = _vpdq_of(make_video(3, seed=5))
    # any spacing or case (one record per line: the strict reader refuses a cell over lines)
    spaced = json.dumps(json.loads(vpdq), separators=(" , ", ":")).upper()
    text = f"type,hash,category,reference\nvpdq,{_csv_cell(spaced)},A,clip-1\npdq,{'a' * 64},B,\n"
    vrow, prow = parse_rows(text, "list.csv")
    assert vrow.hash_type == "vpdq" and vrow.vpdq == vpdq and len(vrow.hash) == 64
    assert (vrow.category, vrow.reference) == ("A", "clip-1") and prow.vpdq is None


@pytest.mark.parametrize(
    "cell",
    [
        "not json",
        "[]",
        _csv_cell('["' + "a" * 63 + ',100,0"]'),
        _csv_cell('["' + "a" * 64 + ',100"]'),
    ],
)
def test_a_malformed_vpdq_row_rejects_the_file_naming_the_line(cell: str) -> None:
    text = f"type,hash\npdq,{'a' * 64}\nvpdq,{cell}\n"
    with pytest.raises(HashListError) as caught:
        parse_rows(text, "list.csv")
    assert caught.value.problems[0][0] == 3 and "vpdq" in caught.value.problems[0][1]


def test_import_cli_sets_vpdq_percent_and_stores_the_serialisation(
    db: Database, env: dict[str, str], cli, tmp_path: Path
) -> None:
    vpdq = _vpdq_of(make_video(3, seed=5))
    path = tmp_path / "videos.csv"
    path.write_text(f"type,hash,category,reference\nvpdq,{_csv_cell(vpdq)},A,clip-1\n")
    code, _, err = cli("hashlist", "import", str(path), "--name", "videos", "--vpdq-percent", "60")
    assert code == 0, err
    code, _, err = cli("hashlist", "import", str(path), "--name", "videos", "--vpdq-percent", "0")
    assert code == 2 and "--vpdq-percent" in err
    with db.read_session() as session:
        listed = session.execute(select(HashList)).scalar_one()
        entry = session.execute(select(HashEntry)).scalar_one()
    assert listed.vpdq_percent == 60
    assert (entry.hash_type, entry.vpdq, entry.category) == ("vpdq", vpdq, "A")


# --- crawl, match, export, rematch -----------------------------------------------------


def _lists(db: Database, known_video: bytes, known_picture: np.ndarray) -> None:
    luma = (known_picture @ np.array([0.299, 0.587, 0.114])).astype(np.float32)
    picture_pdq = pdq_from_luma(luma).hex
    vpdq = _vpdq_of(known_video)
    rows = [
        HashRow("vpdq", hashlib.sha256(vpdq.encode()).hexdigest(), "A", "clip", vpdq),
        HashRow("pdq", picture_pdq, "B", "still"),
    ]
    with db.session() as session:
        import_rows(session, "strict", rows, vpdq_percent=80)
        import_rows(session, "loose", rows[:1], vpdq_percent=40)


def _matches(db: Database) -> dict[str, list[tuple[str, str, float | None, float | None]]]:
    found: dict[str, list[tuple[str, str, float | None, float | None]]] = {}
    with db.read_session() as session:
        rows = session.execute(
            select(
                Media.sha256, HashList.name, Match.match_type, Match.timestamp, Match.match_percent
            )
            .join(Media, Media.id == Match.media_id)
            .join(HashList, HashList.id == Match.list_id)
            .order_by(HashList.name, Match.match_type)
        )
        for sha, name, kind, ts, pct in rows:
            found.setdefault(sha, []).append((name, kind, ts, pct))
    return found


def test_videos_match_vpdq_and_pdq_entries_export_and_rematch(db: Database) -> None:
    known = make_video(4, seed=3)
    videos = {
        "copy.mkv": make_video(4, seed=3, grey=True, fmt="matroska", size=(240, 180)),
        # two of the four seconds are the known clip's: 50%
        "half.mp4": _half(),
        "still.mp4": make_video(4, seed=7),  # second 2 shows the listed still picture
        "other.mp4": make_video(4, seed=9),
    }
    _lists(db, known, scene(160, 120, 7 * 1000 + 2))
    store_bodies(db, videos, PAGE)
    sha = {name: hashlib.sha256(body).hexdigest() for name, body in videos.items()}
    found = _matches(db)
    assert found[sha["copy.mkv"]] == [
        ("loose", "vpdq", None, 100.0),
        ("strict", "vpdq", None, 100.0),
    ]
    assert found[sha["half.mp4"]] == [("loose", "vpdq", None, 50.0)]  # under strict's 80%
    assert found[sha["still.mp4"]] == [("strict", "pdq", 2.0, None)]
    assert sha["other.mp4"] not in found

    out = io.StringIO()
    export(db, "media", "jsonl", out)
    records = {
        r["media_url"].rsplit("/", 1)[1]: r for r in map(json.loads, out.getvalue().splitlines())
    }
    copy = records["copy.mkv"]
    assert (copy["media_type"], copy["status"], copy["vpdq_frames"]) == ("video", "hashed", 4)
    assert copy["duration_s"] == pytest.approx(3.75)
    assert {m["match_percent"] for m in copy["matches"]} == {100.0}
    (still,) = records["still.mp4"]["matches"]
    assert (still["type"], still["timestamp"], still["match_percent"]) == ("pdq", 2.0, None)
    with db.read_session() as session:
        stored = session.execute(
            select(Media.vpdq).where(Media.sha256 == sha["copy.mkv"])
        ).scalar_one()
    assert len(parse_vpdq(stored)) == 4  # frame hashes kept (hashes only) for rematch

    with db.read_session() as session:
        item = session.execute(select(ReviewItem)).scalar_one()
    # near matches only (vpdq, frame pdq): a person looks; never tier 2 "exact"
    assert item.status == "pending" and not item.no_viewing_needed
    assert item.priority < 2_000_000

    with db.read_session() as session:
        facts = media_facts(session, item.page_id)
    # evidence records carry the frame hashes (hashes only) and the decoded length
    copy_facts = next(f for f in facts if f["media_url"].endswith("copy.mkv"))
    assert parse_vpdq(copy_facts["vpdq"]) and copy_facts["duration_s"] == pytest.approx(3.75)

    with db.session() as session:
        session.execute(delete(Match))
    summary = rematch(db)
    assert summary.new_matches == 4
    assert _matches(db) == found
    assert rematch(db).new_matches == 0


def _half() -> bytes:
    """Seconds 0-1 are the known clip's (seed 3), seconds 2-3 another's."""
    first = [scene(160, 120, 3 * 1000 + n) for n in range(2)]
    second = [scene(160, 120, 11 * 1000 + n) for n in range(2)]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.time_base = Fraction(1, 4)
        for n, picture in enumerate(p for p in first + second for _ in range(4)):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = n
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return buffer.getvalue()


def test_serialise_round_trip_of_a_stored_video() -> None:
    frames = hash_video(make_video(2)).frames
    assert parse_vpdq(serialise(frames)) == list(frames)


def test_hostile_videos_are_recorded_and_the_crawl_goes_on(db: Database) -> None:
    from tests.support.video import audio_only, corrupt_middle

    good = make_video(3, seed=21)
    store_bodies(
        db,
        {
            "corrupt.mkv": corrupt_middle(make_video(6, fmt="matroska", seed=22)),
            "truncated.mp4": good[: len(good) // 2],
            "sound.mkv": audio_only(),
            "good.mp4": good,
        },
        PAGE,
    )
    rows = all_rows(
        db,
        select(Observation.media_url, Observation.status, Observation.error, Media.vpdq)
        .outerjoin(Media, Media.id == Observation.media_id)
        .order_by(Observation.id),
    )
    got = {url.rsplit("/", 1)[1]: (status, error, vpdq) for url, status, error, vpdq in rows}
    assert got["corrupt.mkv"][0] == "error" and "partial vPDQ" in got["corrupt.mkv"][1]
    assert got["corrupt.mkv"][2]  # the frames before the damage are kept
    assert got["truncated.mp4"][0] == "error" and got["truncated.mp4"][2] is None
    assert got["sound.mkv"][:1] == ("skipped",) and "no video track" in got["sound.mkv"][1]
    assert got["good.mp4"][0] == "hashed" and len(parse_vpdq(got["good.mp4"][2])) == 3


def test_a_confirmed_video_is_shared_as_a_vpdq_row_that_imports_again(db: Database) -> None:
    from crawler.reporting.hashlist_export import export_hashlist

    store_bodies(db, {"shared.mp4": make_video(3, seed=31)}, PAGE)
    with db.session() as session:
        page = session.execute(select(Observation.page_id)).scalars().first()
        session.add(ReviewItem(page_id=page, status="confirmed", category="A"))
    out = io.StringIO()
    export_hashlist(db, out, ("A", "B", "C"))
    rows = parse_rows(out.getvalue(), "shared.csv")
    (vrow,) = [r for r in rows if r.hash_type == "vpdq"]
    with db.read_session() as session:
        stored = session.execute(select(Media.vpdq)).scalar_one()
    assert vrow.vpdq == stored and vrow.category == "A"
