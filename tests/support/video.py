"""Synthetic test videos made with PyAV at test time: moving shapes on gradients, noise.

Never photographs; encoded in memory (``BytesIO``), nothing written to disk.
"""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from crawler.media.video import Frame
from tests.support.media import structured

# Meta's reference vPDQ outputs and their videos, beside the checkout when present.
VPDQ_REFERENCE = Path("/work/shared/vpdq-reference")


def scene(width: int, height: int, seed: int) -> np.ndarray:
    """One RGB picture (uint8) with enough structure for PDQ."""
    return np.asarray(structured(width, height, seed, noise=2.0).convert("RGB"))


def make_video(
    seconds: float = 3.0,
    *,
    fps: int = 4,
    size: tuple[int, int] = (160, 120),
    seed: int = 1,
    scenes: int | None = None,
    fmt: str = "mp4",
    codec: str = "mpeg4",
    grey: bool = False,
    audio: bool = False,
) -> bytes:
    """A clip that changes scene every second (``scenes`` distinct pictures, cycled)."""
    width, height = size
    pictures = [scene(width, height, seed * 1000 + n) for n in range(scenes or int(seconds) + 1)]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        if audio:
            sound = out.add_stream("mp2", rate=44100)
        for n in range(int(seconds * fps)):
            picture = pictures[(n // fps) % len(pictures)]
            if grey:
                luma = (picture @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
                picture = np.repeat(luma[:, :, None], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = n
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if audio:
            _silence(out, sound, seconds)
    return buffer.getvalue()


def _silence(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    samples = 1152
    for n in range(int(seconds * 44100 / samples)):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, samples), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 44100, n * samples
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


def audio_only(seconds: float = 2.0, fmt: str = "matroska") -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as out:
        _silence(out, out.add_stream("mp2", rate=44100), seconds)
    return buffer.getvalue()


def lie_about_duration(mkv: bytes, seconds: float = 36_000.0) -> bytes:
    """Rewrite a Matroska file's declared Duration (Segment Info, ID 0x4489; ms units)."""
    data = bytearray(mkv)
    at = data.find(b"\x44\x89")
    size = data[at + 2]
    if size == 0x88:
        data[at + 3 : at + 11] = struct.pack(">d", seconds * 1000)
    elif size == 0x84:
        data[at + 3 : at + 7] = struct.pack(">f", seconds * 1000)
    else:  # pragma: no cover - PyAV always writes one of the two
        raise ValueError("no Duration element found")
    return bytes(data)


def corrupt_middle(data: bytes, length: int = 3000, seed: int = 1) -> bytes:
    """Overwrite ``length`` bytes in the middle of ``data`` with noise."""
    noisy = bytearray(data)
    start = len(data) // 2
    noise = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    noisy[start : start + length] = noise[: len(data) - start]
    return bytes(noisy)


def reference_frames(name: str) -> list[Frame]:
    """Meta's vPDQ frames for the video `name` (its file's lines: `n,quality,pdq,timestamp`)."""
    frames = []
    for line in (VPDQ_REFERENCE / f"{name}.txt").read_text().split():
        _number, quality, pdq, timestamp = line.split(",")
        frames.append(Frame(pdq, int(quality), float(timestamp)))
    return frames
