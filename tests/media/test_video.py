"""vPDQ in memory (crawler.media.video): conformance with Meta's reference hashes, the
serialisation, and hostile videos (docs/hazards.md V-01..V-04)."""

from __future__ import annotations

import json

import pytest

from crawler.media.hashing import hash_media
from crawler.media.pdq import hamming
from crawler.media.video import (
    DEFAULT_MAX_DECODED_BYTES,
    FRAMES_HELD,
    Frame,
    hash_video,
    match_percent,
    parse_vpdq,
    serialise,
    usable_frames,
)
from tests.support.video import (
    VPDQ_REFERENCE,
    audio_only,
    corrupt_middle,
    lie_about_duration,
    make_video,
    reference_frames,
)

REFERENCE = VPDQ_REFERENCE
ORIGINAL = "chair-orig-22-sd-bar"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason="Meta's vPDQ reference files are not on this machine"
)


def _ours(name: str) -> list[Frame]:
    found = hash_video((REFERENCE / f"{name}.mp4").read_bytes())
    assert found.status == "hashed", found.error
    return list(found.frames)


# --- conformance with Meta's reference ------------------------------------------------


@needs_reference
@pytest.mark.parametrize(
    "name", [ORIGINAL, "chair-22-sd-grey-bar", "chair-20-sd-bar", "pattern-sd-grey-bar"]
)
def test_frame_hashes_are_within_a_few_bits_of_metas_at_the_same_timestamps(name: str) -> None:
    reference = {round(f.timestamp, 3): f.pdq for f in reference_frames(name)}
    ours = _ours(name)
    assert len(ours) >= 6  # one a second
    assert [f.timestamp for f in ours[:3]] == [0.0, 1.0, 2.0]
    offs = sorted(
        hamming(f.pdq, reference[min(reference, key=lambda t: abs(t - f.timestamp))]) for f in ours
    )
    assert offs[len(offs) // 2] <= 4 and offs[-1] <= 10, offs


@needs_reference
@pytest.mark.parametrize(
    ("name", "matches"),
    [("chair-22-sd-grey-bar", True), ("chair-20-sd-bar", True), ("pattern-sd-grey-bar", False)],
)
def test_copies_match_the_original_and_the_pattern_does_not(name: str, matches: bool) -> None:
    listed = reference_frames(ORIGINAL)  # Meta's own hashes of the original, every frame
    percent = match_percent(_ours(name), listed, threshold=31)
    assert (percent >= 80) is matches, percent
    if not matches:
        assert percent == 0


# --- serialisation --------------------------------------------------------------------


def test_serialisation_is_threatexchanges_json_array_and_round_trips() -> None:
    frames = (Frame("a" * 64, 100, 0.0), Frame("b" * 64, 73, 1.0))
    text = serialise(frames)
    assert json.loads(text) == [f"{'a' * 64},100,0.000", f"{'b' * 64},73,1.000"]
    assert parse_vpdq(text) == list(frames)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{}",
        '["abc,1,0"]',
        f'["{"a" * 64},101,0"]',
        f'["{"a" * 64},50,-1"]',
        f'["{"g" * 64},50,0"]',
        f'["{"a" * 64},50"]',
    ],
)
def test_malformed_serialisations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_vpdq(text)


def test_low_quality_and_duplicate_frames_are_not_counted() -> None:
    frames = [Frame("a" * 64, 100, 0), Frame("a" * 64, 100, 1), Frame("b" * 64, 49, 2)]
    assert usable_frames(frames) == [frames[0]]


# --- synthetic videos -----------------------------------------------------------------


def test_one_frame_a_second_is_sampled_by_timestamp_and_hashed() -> None:
    found = hash_video(make_video(4, fps=5))
    assert found.status == "hashed" and found.error is None
    assert [f.timestamp for f in found.frames] == [0.0, 1.0, 2.0, 3.0]
    assert all(f.quality >= 50 for f in found.frames)
    assert (found.width, found.height) == (160, 120)
    assert found.duration_s == pytest.approx(3.8)


def test_a_re_encoded_greyscale_copy_matches_a_synthetic_original() -> None:
    original = hash_video(make_video(5, seed=3))
    grey = hash_video(make_video(5, seed=3, grey=True, fmt="matroska", size=(240, 180)))
    other = hash_video(make_video(5, seed=4))
    assert match_percent(list(grey.frames), list(original.frames), 31) == 100
    assert match_percent(list(other.frames), list(original.frames), 31) == 0


def test_repeated_scenes_are_deduplicated() -> None:
    found = hash_video(make_video(6, scenes=2, fmt="matroska", codec="ffv1"))  # lossless
    assert len(found.frames) == 2 and found.sampled == 6


def test_hash_media_gives_videos_a_vpdq_and_a_duration() -> None:
    data = make_video(3)
    result = hash_media(data)
    assert (result.media_type, result.status, result.pdq) == ("video", "hashed", None)
    assert len(json.loads(result.vpdq or "[]")) == 3 and result.duration_s == pytest.approx(2.75)


# --- hostile videos -------------------------------------------------------------------


def test_v01_a_container_lying_about_its_duration_is_sampled_by_decoded_time() -> None:
    lying = lie_about_duration(make_video(4, fmt="matroska"), seconds=36_000)
    found = hash_video(lying)
    assert len(found.frames) == 4 and found.duration_s == pytest.approx(3.75)
    assert found.status == "error" and "36000.0 s the container declares" in (found.error or "")


def test_v02_a_long_video_stops_at_the_frame_budget_and_says_so() -> None:
    found = hash_video(make_video(30, fps=2, size=(64, 48)), max_frames=5)
    assert len(found.frames) == 5 and found.status == "hashed"
    assert "frame budget reached" in (found.error or "")
    result = hash_media(make_video(30, fps=2, size=(64, 48)), max_frames=5)
    assert len(json.loads(result.vpdq or "[]")) == 5 and "frame budget" in (result.error or "")


def test_v02_no_video_track_is_recorded_with_exact_hashes() -> None:
    data = audio_only()
    result = hash_media(data)
    assert (result.media_type, result.status) == ("video", "skipped")
    assert "no video track" in (result.error or "") and result.vpdq is None
    assert len(result.sha256) == 64


def test_v02_a_video_with_sound_is_hashed_on_its_picture() -> None:
    found = hash_video(make_video(3, fmt="matroska", audio=True))
    assert found.status == "hashed" and len(found.frames) == 3


def test_v03_corrupt_packets_mid_stream_keep_the_frames_before_them() -> None:
    clean = make_video(6, fmt="matroska")
    found = hash_video(corrupt_middle(clean))
    assert found.status == "error" and "partial vPDQ" in (found.error or "")
    assert 1 <= len(found.frames) < 6
    assert found.frames[0] == hash_video(clean).frames[0]


@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_v03_truncated_files_are_errors_not_crashes(cut: float) -> None:
    data = make_video(4)
    result = hash_media(data[: int(len(data) * cut)])
    assert result.status == "error" and result.error and result.vpdq is None


def test_v04_dimension_caps_are_checked_before_decoding() -> None:
    found = hash_video(make_video(2), max_side=100)
    assert found.status == "skipped" and "above the limits" in (found.error or "")
    assert found.frames == ()
    result = hash_media(make_video(2), max_pixels=160 * 120 - 1)
    assert result.status == "skipped" and result.vpdq is None


def test_v04_a_decoding_time_budget_stops_a_slow_video_and_says_so() -> None:
    found = hash_video(make_video(5), max_seconds=0.0)
    assert found.status == "hashed" and len(found.frames) == 1
    assert "decoding time budget reached" in (found.error or "")


def test_v04_a_decoded_memory_budget_refuses_before_decoding() -> None:
    data = make_video(2, size=(160, 120))
    frame_bytes = 160 * 120 * 3 // 2
    found = hash_video(data, max_decoded_bytes=frame_bytes * FRAMES_HELD)  # threads on top
    assert found.status == "skipped" and found.frames == ()
    assert "above the decoded-memory budget" in (found.error or "")
    assert "video declares 160x120" in (found.error or "")
    assert hash_video(data, max_decoded_bytes=frame_bytes * (FRAMES_HELD + 64)).status == "hashed"
    assert DEFAULT_MAX_DECODED_BYTES == 512 * 1024 * 1024


def test_v04_a_stream_that_grows_mid_way_stops_at_its_first_big_frame() -> None:
    """Raw H.264 whose headers declare 64x48 and that switches to 640x480 after 3 s: the
    header checks pass, the per-frame check stops decoding at the first big frame."""
    small = make_video(3, fmt="h264", codec="libx264", size=(64, 48), fps=4, seed=5)
    big = make_video(3, fmt="h264", codec="libx264", size=(640, 480), fps=4, seed=6)
    for limits in ({"max_side": 100}, {"max_decoded_bytes": 64 * 48 * 3 // 2 * 40}):
        found = hash_video(small + big, **limits)  # type: ignore[arg-type]
        assert found.status == "error", limits
        assert (found.width, found.height) == (64, 48)
        assert "decoding stopped at frame 13 (640x480" in (found.error or "")
        assert "the headers declared 64x48" in (found.error or "")
    assert hash_video(small + big).status == "hashed"  # within the default caps: decoded
