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
Peak RSS of the process is printed last. Meta's ``vpdq`` package was not built here (no
FFmpeg development headers on this machine); its hashes in the reference files stand in.

    python bench/video.py                # reference videos + 3 synthetic clips, ~1 minute
    python bench/video.py --synthetic 1  # quicker

Nothing is written anywhere; videos are read into memory and synthetic ones made in memory.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import sys
import time
from pathlib import Path

import av

from crawler.media.pdq import hamming
from crawler.media.video import Frame, hash_video, match_percent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' video generator
from tests.media.videokit import make_video  # noqa: E402

REFERENCE = Path("/work/shared/vpdq-reference")
ORIGINAL = "chair-orig-22-sd-bar"
NAMES = (ORIGINAL, "chair-22-sd-grey-bar", "chair-20-sd-bar", "pattern-sd-grey-bar")


def _reference(name: str) -> list[Frame]:
    frames = []
    for line in (REFERENCE / f"{name}.txt").read_text().split():
        _n, quality, pdq, ts = line.split(",")
        frames.append(Frame(pdq, int(quality), float(ts)))
    return frames


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


def _row(label: str, data: bytes, repeat: int) -> list[Frame]:
    found = hash_video(data)
    seconds = max(found.duration_s or 0.0, 1e-9)
    decode = _cpu(_decode_only, data, repeat)
    ours = _cpu(hash_video, data, repeat)
    print(
        f"{label:28} {seconds:6.1f} s  decode-only {1000 * decode / seconds:6.1f} ms/s  "
        f"ours {1000 * ours / seconds:6.1f} ms/s  ({ours / decode:4.2f}x decode)  "
        f"frames kept {len(found.frames)}  status {found.status}"
    )
    return list(found.frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    parser.add_argument("--synthetic", type=int, default=3, help="synthetic clips (0-3)")
    args = parser.parse_args()
    print("CPU time per second of video (best of", args.repeat, "runs)")
    ours: dict[str, list[Frame]] = {}
    if REFERENCE.is_dir():
        for name in NAMES:
            ours[name] = _row(name, (REFERENCE / f"{name}.mp4").read_bytes(), args.repeat)
    clips = [
        ("synthetic 640x360 30fps 20s", dict(seconds=20, fps=30, size=(640, 360), seed=1)),
        ("synthetic 1280x720 30fps 10s", dict(seconds=10, fps=30, size=(1280, 720), seed=2)),
        ("synthetic 320x240 60fps 30s", dict(seconds=30, fps=60, size=(320, 240), seed=3)),
    ]
    for label, kw in clips[: args.synthetic]:
        _row(label, make_video(codec="libx264", **kw), args.repeat)  # type: ignore[arg-type]
    if not ours:
        return
    print("\nBits off Meta's reference hash at the same timestamp (per sampled frame)")
    for name, frames in ours.items():
        reference = {round(f.timestamp, 3): f.pdq for f in _reference(name)}
        offs = sorted(
            hamming(f.pdq, reference[min(reference, key=lambda t: abs(t - f.timestamp))])
            for f in frames
        )
        p90 = offs[min(len(offs) - 1, int(0.9 * len(offs)))]
        print(
            f"{name:28} frames {len(offs):3}  median {statistics.median(offs):4.1f}  "
            f"p90 {p90:3}  max {offs[-1]:3}"
        )
    listed = _reference(ORIGINAL)
    print(f"\nMatch percentage against Meta's hashes of {ORIGINAL} (threshold 31)")
    for name, frames in ours.items():
        ref_side = match_percent(_reference(name), listed, 31)
        print(
            f"{name:28} ours {match_percent(frames, listed, 31):5.1f}%   "
            f"Meta's own frames (every frame) {ref_side:5.1f}%"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
