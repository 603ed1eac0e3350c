"""A video as a strip of blurred greyscale keyframes, made in memory (docs/review.md).

The review app never plays a video and never sends one to the browser. The preview route
fetches the video live under the run's policy (as for images), and this module decodes a
few frames with PyAV from a ``BytesIO`` (never a file), re-encodes each through
:func:`review.preview.finish` (downscaled, greyscale and blurred unless revealed, fresh
PNG from raw pixels) and drops the video. Nothing is written to disk or cached.

Which frames: ``count`` times spread evenly over the video (the keyframe at or before
each: a seek and one decoded frame) and the time of every frame match (decoded up to that
exact time, so the analyst sees the matching frame, marked). Decoding stops at a frame
budget and a deadline; a video that cannot be sought is decoded from its start within
the same budget.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import av
import av.error
from PIL import Image

from crawler.media.video import DEFAULT_MAX_SIDE, MAX_STREAMS
from review.preview import UnsupportedMedia, finish

MAX_DECODED = 3000  # frames decoded per strip, all targets together
MAX_MATCH_MARKS = 4  # matching frames shown besides the evenly spread ones


@dataclass(frozen=True)
class Keyframe:
    timestamp: float
    match: bool  # the frame a match names (its timestamp)
    png: bytes


def targets(duration: float | None, matches: list[float], count: int) -> list[tuple[float, bool]]:
    """(time, is a match) pairs in time order: `count` evenly spread over `duration`, and
    the match times; an even time close to a match time gives way to it."""
    marks = sorted({round(t, 3) for t in matches if t >= 0})[:MAX_MATCH_MARKS]
    even: list[float] = []
    if duration and duration > 0:
        even = [round(duration * (k + 0.5) / count, 3) for k in range(count)]
    elif not marks:
        even = [0.0]
    gap = (duration / count / 2) if duration else 0.5
    kept = [t for t in even if all(abs(t - m) > gap for m in marks)]
    return sorted([(t, False) for t in kept] + [(m, True) for m in marks])


def _open(body: bytes, max_pixels: int) -> av.container.InputContainer:
    try:
        container = av.open(io.BytesIO(body), mode="r")
    except Exception as exc:  # any container failure is an outcome, never a 500
        raise UnsupportedMedia(f"not a decodable video: {type(exc).__name__}") from exc
    try:
        if len(container.streams) > MAX_STREAMS or not container.streams.video:
            raise UnsupportedMedia("no video track to show")
        ctx = container.streams.video[0].codec_context
        width, height = (ctx.width or 0, ctx.height or 0) if ctx is not None else (0, 0)
        if not width or not height:
            raise UnsupportedMedia("not a decodable video: no picture size")
        if max(width, height) > DEFAULT_MAX_SIDE or width * height > max_pixels:
            raise UnsupportedMedia("the video has more pixels than the crawl policy allows")
    except Exception:
        container.close()
        raise
    return container


class _OutOfBudget(Exception):
    """The strip's decoding budget is spent: show the frames found so far."""


@dataclass
class _Budget:
    deadline: float
    decoded: int = 0

    def spend(self) -> None:
        self.decoded += 1
        if self.decoded > MAX_DECODED or time.monotonic() > self.deadline:
            raise _OutOfBudget


def _small(frame: av.VideoFrame, max_side: int) -> Image.Image:
    scale = min(1.0, max_side / max(frame.width, frame.height, 1))
    width, height = max(2, int(frame.width * scale)), max(2, int(frame.height * scale))
    return frame.reformat(width=width, height=height, format="rgb24").to_image()


def _by_seeking(
    container: av.container.InputContainer, wanted: list[tuple[float, bool]], budget: _Budget
) -> dict[tuple[float, bool], av.VideoFrame]:
    stream = container.streams.video[0]
    base = stream.time_base
    if base is None:
        raise ValueError("the video stream has no time base")
    out: dict[tuple[float, bool], av.VideoFrame] = {}
    try:
        for target in wanted:
            at, exact = target
            container.seek(int(at / base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                budget.spend()
                if not exact or frame.time is None or frame.time >= at - 0.02:
                    out[target] = frame
                    break
    except _OutOfBudget:
        pass  # a strip with the frames found so far
    return out


def _from_start(
    container: av.container.InputContainer, wanted: list[tuple[float, bool]], budget: _Budget
) -> dict[tuple[float, bool], av.VideoFrame]:
    stream = container.streams.video[0]
    rate = float(stream.average_rate or 25) or 25.0
    out: dict[tuple[float, bool], av.VideoFrame] = {}
    left = list(wanted)
    try:
        for n, frame in enumerate(container.decode(stream)):
            budget.spend()
            at = frame.time if frame.time is not None else n / rate
            while left and at >= left[0][0] - 0.02:
                out[left.pop(0)] = frame
            if not left:
                break
    except _OutOfBudget:
        pass
    return out


def strip(
    body: bytes,
    *,
    duration_s: float | None,
    match_times: list[float],
    count: int,
    reveal: bool,
    max_side: int,
    max_pixels: int,
    timeout_s: float,
) -> list[Keyframe]:
    """The strip's frames as PNGs (blurred greyscale unless `reveal`), in time order.
    Raises `UnsupportedMedia` when the bytes are not a video the app shows."""
    budget = _Budget(time.monotonic() + timeout_s)
    container = _open(body, max_pixels)
    try:
        duration = duration_s or (container.duration / 1_000_000 if container.duration else None)
        wanted = targets(duration, match_times, count)
        try:
            found = _by_seeking(container, wanted, budget)
        except (av.error.FFmpegError, ValueError, OverflowError):
            container.close()
            container = _open(body, max_pixels)
            found = _from_start(container, wanted, budget)
        frames: list[Keyframe] = []
        seen: set[float] = set()
        for at, exact in wanted:
            frame = found.get((at, exact))
            if frame is None:
                continue
            shown = at if exact or frame.time is None else round(float(frame.time), 3)
            if not exact and shown in seen:
                continue  # two spread times on one keyframe: show it once
            seen.add(shown)
            png = finish(_small(frame, max_side), reveal=reveal, max_side=max_side)
            frames.append(Keyframe(shown, exact, png))
    except UnsupportedMedia:
        raise
    except Exception as exc:  # hostile bytes: any decoder failure is an outcome
        raise UnsupportedMedia(f"the video could not be decoded: {type(exc).__name__}") from exc
    finally:
        container.close()
    if not frames:
        raise UnsupportedMedia("no frame of the video could be decoded")
    return frames
