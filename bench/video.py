"""Benchmark per-second vPDQ (crawler.media.video) on Meta's reference videos and on
synthetic ones.

For each video prints CPU time (``time.process_time``, per core) per second of video for:

* decode-only: PyAV decoding every frame from memory, nothing else (the floor: one frame
  a second still needs every frame decoded for inter-coded video);
* ours: :func:`crawler.media.video.hash_video`, decode + grey conversion + PDQ of one frame
  a second + dedupe;

then, for the reference videos (``/work/shared/vpdq-reference``, Meta's per-frame hashes
from its own implementation), the bits by which our frame hashes differ from Meta's at the
same timestamps (median / p90 / max) and match percentages: each video's frames against
Meta's hashes of ``chair-orig-22-sd-bar`` (the listed video), threshold 31, quality >= 50,
duplicates removed; the copies should match (>= 80%), the pattern video should not.
Peak RSS of the process is printed last.

When Meta's reference ``vpdq`` package is installed (the ``bench`` extra; it builds from
source against Debian's FFmpeg development packages, docs/benchmarks.md), the same run also
times it on every video (one hash a second, one thread, as ours) and prints the bits by
which our frame hashes differ from its hashes computed here (median / p90 / max) and its
match percentages. Without it, the stored reference hashes stand in.

    python bench/video.py                # reference videos + 3 synthetic clips, ~1 minute
    python bench/video.py --synthetic 1  # quicker

Nothing is written to disk: videos are read into memory and synthetic ones made in memory;
the reference package reads a file name, so it is given an anonymous in-memory file
(``memfd_create``, ``/proc/self/fd/N``).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import av

from crawler.media.pdq import hamming
from crawler.media.video import Frame, hash_video, match_percent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' video generator
from tests.support.video import VPDQ_REFERENCE, make_video, reference_frames  # noqa: E402

try:  # Meta's reference implementation (bench extra); optional
    import vpdq as meta_vpdq
except ImportError:  # pragma: no cover - depends on the machine
    meta_vpdq = None

REFERENCE = VPDQ_REFERENCE
ORIGINAL = "chair-orig-22-sd-bar"
NAMES = (ORIGINAL, "chair-22-sd-grey-bar", "chair-20-sd-bar", "pattern-sd-grey-bar")


def _decode_only(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def _cpu(fn, data: bytes, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn(data)
        best = min(best, time.process_time() - start)
    return best


def _meta_hash(data: bytes) -> list[Frame]:
    """Meta's vpdq on `data`, read from an anonymous in-memory file (never on disk)."""
    fd = os.memfd_create("bench-video")
    try:
        os.write(fd, data)
        features = meta_vpdq.computeHash(f"/proc/self/fd/{fd}", seconds_per_hash=1.0,
                                         thread_count=1)  # fmt: skip
    finally:
        os.close(fd)
    return [Frame(f.hex, int(f.quality), float(f.timestamp)) for f in features]


def _row(label: str, data: bytes, repeat: int) -> tuple[list[Frame], list[Frame]]:
    found = hash_video(data)
    seconds = max(found.duration_s or 0.0, 1e-9)
    decode = _cpu(_decode_only, data, repeat)
    ours = _cpu(hash_video, data, repeat)
    theirs_frames: list[Frame] = []
    theirs_text = ""
    if meta_vpdq is not None:
        theirs_frames = _meta_hash(data)
        theirs = _cpu(_meta_hash, data, repeat)
        theirs_text = (
            f"  Meta's vpdq {1000 * theirs / seconds:6.1f} ms/s (ours/Meta {ours / theirs:4.2f}x)"
        )
    print(
        f"{label:28} {seconds:6.1f} s  decode-only {1000 * decode / seconds:6.1f} ms/s  "
        f"ours {1000 * ours / seconds:6.1f} ms/s  ({ours / decode:4.2f}x decode){theirs_text}  "
        f"frames kept {len(found.frames)}  status {found.status}"
    )
    return list(found.frames), theirs_frames


def _bits_off(label: str, frames: list[Frame], reference: list[Frame]) -> list[int]:
    by_time = {round(f.timestamp, 3): f.pdq for f in reference}
    offs = sorted(
        hamming(f.pdq, by_time[min(by_time, key=lambda t: abs(t - f.timestamp))]) for f in frames
    )
    _summary(label, offs)
    return offs


def _summary(label: str, offs: list[int]) -> None:
    if not offs:
        print(f"{label:28} no frames")
        return
    offs = sorted(offs)
    p90 = offs[min(len(offs) - 1, int(0.9 * len(offs)))]
    print(
        f"{label:28} frames {len(offs):3}  median {statistics.median(offs):4.1f}  "
        f"p90 {p90:3}  max {offs[-1]:3}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    parser.add_argument("--synthetic", type=int, default=3, help="synthetic clips (0-3)")
    args = parser.parse_args()
    print("CPU time per second of video (best of", args.repeat, "runs)")
    ours: dict[str, list[Frame]] = {}
    meta: dict[str, list[Frame]] = {}
    if meta_vpdq is None:
        print("Meta's vpdq package is not installed: only the stored reference hashes compare")
    if REFERENCE.is_dir():
        for name in NAMES:
            data = (REFERENCE / f"{name}.mp4").read_bytes()
            ours[name], meta[name] = _row(name, data, args.repeat)
    clips = [
        ("synthetic 640x360 30fps 20s", dict(seconds=20, fps=30, size=(640, 360), seed=1)),
        ("synthetic 1280x720 30fps 10s", dict(seconds=10, fps=30, size=(1280, 720), seed=2)),
        ("synthetic 320x240 60fps 30s", dict(seconds=30, fps=60, size=(320, 240), seed=3)),
    ]
    for label, kw in clips[: args.synthetic]:
        data = make_video(codec="libx264", **kw)  # type: ignore[arg-type]
        ours[label], meta[label] = _row(label, data, args.repeat)
    if meta_vpdq is not None:
        print("\nBits off Meta's vpdq run here, same video, nearest timestamp (per frame of ours)")
        every: list[int] = []
        for name, frames in ours.items():
            every += _bits_off(name, frames, meta[name])
        _summary("all videos", every)
    if not REFERENCE.is_dir():
        return
    print("\nBits off Meta's stored reference hashes at the same timestamp (per sampled frame)")
    for name in NAMES:
        _bits_off(name, ours[name], reference_frames(name))
    listed = reference_frames(ORIGINAL)
    print(f"\nMatch percentage against Meta's hashes of {ORIGINAL} (threshold 31)")
    for name in NAMES:
        ref_side = match_percent(reference_frames(name), listed, 31)
        here = (
            f"   Meta's vpdq here {match_percent(meta[name], listed, 31):5.1f}%"
            if meta[name]
            else ""
        )
        print(
            f"{name:28} ours {match_percent(ours[name], listed, 31):5.1f}%   "
            f"Meta's stored frames (every frame) {ref_side:5.1f}%{here}"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
