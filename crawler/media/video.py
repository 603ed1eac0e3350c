"""vPDQ of a video in memory: one PDQ hash a second, in Meta's serialisation.

:func:`hash_video` decodes with PyAV from a ``BytesIO`` (never a file path, never a temp
file), samples the first decoded frame at or after each whole second of *decoded*
timestamps, hashes it with the project's PDQ (:mod:`crawler.media.pdq`) on its luma plane,
and keeps frames of quality >= 50 whose hash was not seen before in this video. It never
raises for any bytes; like :func:`crawler.media.hashing.hash_media` it keeps no bytes.

Policies (docs/hazards.md V-01..V-04, tests in ``tests/media/test_video.py``):

* **Timestamps, not declarations.** Sampling follows each decoded frame's presentation
  time; a container that lies about its duration or frame count changes nothing, and
  ``duration_s`` is the last decoded frame's time, not the header's claim.
* **Budgets.** At most ``max_frames`` frames are hashed (policy ``[media] video_max_frames``)
  and at most ``max_frames * 120`` frames decoded, within ``max_seconds`` (300) of decoding;
  reaching any ends sampling, and the result says so in ``error`` (status still "hashed":
  the frames so far are real).
* **Caps before decoding.** More than :data:`MAX_STREAMS` streams, or a video stream wider,
  taller or larger than the limits, is refused from the headers: status "skipped".
* **Decoded-memory budget.** The decoder's working set is estimated as the bytes of one
  decoded frame times the frames it may hold at once (16 reference frames, one per decoding
  thread, two in flight: :data:`FRAMES_HELD`) and must stay within ``max_decoded_bytes``
  (:data:`DEFAULT_MAX_DECODED_BYTES`, 512 MiB). Checked from the headers before decoding
  (8-bit 4:2:0 assumed: "skipped") and again on every decoded frame with its real size
  and dimensions, so a stream whose headers declare a small picture and that switches to
  a huge one (or to a deeper pixel format) mid-stream stops at its first such frame: the
  frames before it kept, status "error" naming the frame.
* **No video track** (audio only): status "skipped", exact hashes only.
* **Corrupt data mid-stream**: the frames decoded so far are kept (a partial vPDQ) and the
  status is "error" with the decoder's reason.

Serialisation (ThreatExchange/HMA): a JSON array of ``"pdq_hex,quality,timestamp"``.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field

import av
import av.error

from crawler.media.pdq import MIN_USEFUL_QUALITY, hamming, pdq_from_luma

DEFAULT_MAX_FRAMES = 3600
DEFAULT_MAX_SIDE = 8192
DEFAULT_MAX_PIXELS = 89_478_485
MAX_STREAMS = 64
# The decoder's working set for one video, and the frames it may hold at once beyond the
# threads' own: H.264/HEVC keep up to 16 reference frames, plus two in flight.
DEFAULT_MAX_DECODED_BYTES = 512 * 1024 * 1024
FRAMES_HELD = 16 + 2
# Wall-clock seconds of decoding per video before sampling stops (a slow-decoding file).
DEFAULT_MAX_SECONDS = 300.0
# Decoded frames per hashed frame before sampling gives up (120 fps video, one hash a second).
_DECODE_FACTOR = 120
_MAX_REASON = 300
_HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled frame's PDQ hash, quality and time (seconds into the video)."""

    pdq: str
    quality: int
    timestamp: float

    def serialise(self) -> str:
        return f"{self.pdq},{self.quality},{self.timestamp:.3f}"


@dataclass(frozen=True, slots=True)
class VideoHashes:
    """What sampling learnt: usable frames, how far it got, and any reason to doubt it."""

    frames: tuple[Frame, ...] = ()
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    status: str = "hashed"
    error: str | None = None
    sampled: int = 0  # frames hashed before the quality and duplicate filters

    @property
    def vpdq(self) -> str | None:
        """ThreatExchange's serialisation of the kept frames (None when there are none)."""
        return serialise(self.frames) if self.frames else None


def serialise(frames: tuple[Frame, ...] | list[Frame]) -> str:
    """The JSON array of ``"pdq_hex,quality,timestamp"`` strings, compact."""
    return json.dumps([f.serialise() for f in frames], separators=(",", ":"))


def parse_vpdq(text: str) -> list[Frame]:
    """Frames of a vPDQ serialisation; ValueError naming the first problem."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON array ({exc.msg})") from None
    if not isinstance(items, list) or not items:
        raise ValueError("must be a non-empty JSON array of 'pdq_hex,quality,timestamp'")
    frames: list[Frame] = []
    for n, item in enumerate(items, 1):
        parts = item.split(",") if isinstance(item, str) else []
        if len(parts) != 3:
            raise ValueError(f"frame {n}: expected 'pdq_hex,quality,timestamp'")
        hex_hash, quality, timestamp = (p.strip() for p in parts)
        hex_hash = hex_hash.lower()
        if len(hex_hash) != 64 or not set(hex_hash) <= _HEX_DIGITS:
            raise ValueError(f"frame {n}: PDQ hash must be 64 hex characters")
        try:
            q, t = int(quality), float(timestamp)
        except ValueError:
            raise ValueError(f"frame {n}: quality must be an integer, timestamp a number") from None
        if not 0 <= q <= 100 or not t >= 0 or t == float("inf"):
            raise ValueError(f"frame {n}: quality 0..100 and a finite timestamp >= 0 required")
        frames.append(Frame(hex_hash, q, t))
    return frames


def usable_frames(frames: list[Frame] | tuple[Frame, ...]) -> list[Frame]:
    """Quality >= 50, first occurrence of each hash: what vPDQ percentages count."""
    seen: set[str] = set()
    kept: list[Frame] = []
    for frame in frames:
        if frame.quality >= MIN_USEFUL_QUALITY and frame.pdq not in seen:
            seen.add(frame.pdq)
            kept.append(frame)
    return kept


def match_percent(query: list[Frame], listed: list[Frame], threshold: int) -> float:
    """Percentage of the query's usable frames within ``threshold`` of a listed usable frame.

    Brute force, for tests and benchmarks; the crawl asks the PDQ index the same question.
    """
    mine, theirs = usable_frames(query), usable_frames(listed)
    if not mine or not theirs:
        return 0.0
    hits = sum(1 for f in mine if any(hamming(f.pdq, g.pdq) <= threshold for g in theirs))
    return round(100.0 * hits / len(mine), 1)


def _clip(reason: str) -> str:
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 3] + "..."


@dataclass
class _Sampler:
    max_frames: int
    deadline: float  # time.monotonic() value after which sampling stops
    frames: list[Frame] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    sampled: int = 0
    decoded: int = 0
    next_time: float = 0.0
    last_time: float | None = None

    def offer(self, frame: av.VideoFrame, fallback_rate: float) -> None:
        self.decoded += 1
        at = frame.time
        if at is None:  # no timestamps at all: count frames at the declared rate
            at = (self.decoded - 1) / fallback_rate
        self.last_time = at if self.last_time is None else max(self.last_time, at)
        if at < self.next_time:
            return
        self.next_time = float(int(at)) + 1.0
        luma = frame.to_ndarray(format="gray")
        pdq = pdq_from_luma(luma)
        self.sampled += 1
        if pdq.quality >= MIN_USEFUL_QUALITY and pdq.hex not in self.seen:
            self.seen.add(pdq.hex)
            self.frames.append(Frame(pdq.hex, pdq.quality, round(max(at, 0.0), 3)))

    def budget_reason(self) -> str | None:
        """Why sampling must stop now (a budget of the policy or of time), or None."""
        where = f"at {self.last_time or 0:.1f} s; later frames not sampled"
        if self.sampled >= self.max_frames or self.decoded >= self.max_frames * _DECODE_FACTOR:
            return (
                f"frame budget reached ({self.sampled} frames hashed, {self.decoded} decoded) "
                + where
            )
        if time.monotonic() > self.deadline:
            return f"decoding time budget reached ({self.decoded} frames decoded) " + where
        return None


def _held(threads: int) -> int:
    return FRAMES_HELD + max(threads, 1)


def _memory_refusal(
    width: int, height: int, frame_bytes: int, threads: int, budget: int
) -> str | None:
    """Why a frame of this size would take the decoder past the memory budget, or None."""
    need = frame_bytes * _held(threads)
    if need <= budget:
        return None
    return (
        f"{width}x{height} frames of {frame_bytes:,} bytes, {_held(threads)} held by the "
        f"decoder: {need:,} bytes, above the decoded-memory budget of {budget:,}"
    )


def _frame_refusal(
    frame: av.VideoFrame, max_side: int, max_pixels: int, threads: int, budget: int
) -> str | None:
    """A decoded frame bigger than the caps (a stream that changed size mid-way), or None."""
    width, height = frame.width, frame.height
    if max(width, height) > max_side or width * height > max_pixels:
        return f"{width}x{height}, above the limits ({max_side} px a side, {max_pixels:,} pixels)"
    size = sum(plane.buffer_size for plane in frame.planes)
    return _memory_refusal(width, height, size, threads, budget)


def _refusal(container: av.container.InputContainer, max_side: int, max_pixels: int) -> str | None:
    if len(container.streams) > MAX_STREAMS:
        return (
            f"{len(container.streams)} streams, above the cap of {MAX_STREAMS}; exact hashes only"
        )
    if not container.streams.video:
        return "no video track (audio or data only); exact hashes only"
    ctx = container.streams.video[0].codec_context
    width, height = ctx.width or 0, ctx.height or 0
    if max(width, height) > max_side or width * height > max_pixels:
        return (
            f"video declares {width}x{height}, above the limits ({max_side} px a side, "
            f"{max_pixels:,} pixels); exact hashes only"
        )
    return None


def _result(sampler: _Sampler, width: int | None, height: int | None, **kw: object) -> VideoHashes:
    duration = None if sampler.last_time is None else round(max(sampler.last_time, 0.0), 3)
    return VideoHashes(
        tuple(sampler.frames),
        duration,
        width,
        height,
        sampled=sampler.sampled,
        **kw,  # type: ignore[arg-type]
    )


def _decode(
    data: bytes,
    max_frames: int,
    max_side: int,
    max_pixels: int,
    max_seconds: float,
    max_decoded_bytes: int,
) -> VideoHashes:
    sampler = _Sampler(max_frames, time.monotonic() + max_seconds)
    with av.open(io.BytesIO(data), mode="r") as container:
        refusal = _refusal(container, max_side, max_pixels)
        if refusal is not None:
            return VideoHashes(status="skipped", error=refusal)
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = float(stream.average_rate or stream.guessed_rate or 25) or 25.0
        stream.thread_type = "AUTO"
        threads = stream.codec_context.thread_count or 1
        frame_bytes = (width or 0) * (height or 0) * 3 // 2  # 8-bit 4:2:0
        refusal = _memory_refusal(width or 0, height or 0, frame_bytes, threads, max_decoded_bytes)
        if refusal is not None:
            return VideoHashes(
                status="skipped", error=f"video declares {refusal}; exact hashes only"
            )
        try:
            for frame in container.decode(stream):
                too_big = _frame_refusal(frame, max_side, max_pixels, threads, max_decoded_bytes)
                if too_big is not None:
                    why = _clip(
                        f"partial vPDQ ({len(sampler.frames)} frames): decoding stopped at frame "
                        f"{sampler.decoded + 1} ({too_big}; the headers declared {width}x{height})"
                    )
                    return _result(sampler, width, height, status="error", error=why)
                sampler.offer(frame, rate)
                if (reason := sampler.budget_reason()) is not None:
                    return _result(sampler, width, height, error=reason)
        except (av.error.FFmpegError, ValueError, MemoryError) as exc:
            reason = _clip(
                f"partial vPDQ ({len(sampler.frames)} frames): decoding stopped at "
                f"{sampler.last_time or 0:.1f} s ({type(exc).__name__}: {exc})"
            )
            return _result(sampler, width, height, status="error", error=reason)
        declared = container.duration / 1_000_000 if container.duration else None
    if sampler.decoded == 0:
        return VideoHashes(width=width, height=height, status="error", error="no frame decoded")
    shortfall = _shortfall(sampler, declared, rate)
    if shortfall is not None:
        return _result(sampler, width, height, status="error", error=shortfall)
    return _result(sampler, width, height)


def _shortfall(sampler: _Sampler, declared: float | None, rate: float) -> str | None:
    """Why the decoded frames end well before the container's declared duration, if so."""
    end = (sampler.last_time or 0.0) + 1.0 / rate
    if declared is None or declared - end <= max(2.0, 0.1 * declared):
        return None
    return (
        f"partial vPDQ ({len(sampler.frames)} frames): decoding ended at {end:.1f} s of the "
        f"{declared:.1f} s the container declares (corrupt data or a lying header)"
    )


def hash_video(
    data: bytes,
    *,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_side: int = DEFAULT_MAX_SIDE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> VideoHashes:
    """Per-second vPDQ of ``data``. Never raises for any bytes."""
    try:
        return _decode(data, max_frames, max_side, max_pixels, max_seconds, max_decoded_bytes)
    except Exception as exc:  # any container or decoder failure is an outcome
        return VideoHashes(
            status="error", error=_clip(f"could not decode the video ({type(exc).__name__}: {exc})")
        )
