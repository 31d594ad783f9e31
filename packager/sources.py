"""Sources of raw frames, timed on a live (wall-clock) timeline.

Two sources share one interface, :class:`Source`:

* :class:`TestSource` (``testsrc``): scrolling colour bars and a sweeping box,
  the capture time as a clock ``HH:MM:SS.mmm`` (7-segment digits) and as the
  :mod:`llhls.barcode` band in every frame; a 440 Hz tone at -20 dBFS with a
  short click at the start of each wall-clock UTC second.
* :class:`FileSource`: any file PyAV opens, re-timed onto the live timeline
  (optionally looping).

A source yields :class:`VideoItem` and :class:`AudioItem` in capture order.
``items(start_us)`` runs as fast as possible (tests, VOD); ``live()`` paces
them in real time: no item is released before the wall clock reaches its
capture time. Video frame ``n`` is captured at ``start_us + n / fps`` and
audio sample ``k`` at ``start_us + k / sample_rate`` (integer microseconds,
rounded down).

The pure parts (timing, pattern drawing, 7-segment text, tone synthesis) are
module-level functions, separate from the PyAV I/O.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol, TypeVar

import av
import numpy as np
import numpy.typing as npt

from llhls import barcode
from llhls.errors import ConfigError, SourceError
from llhls.timing import MICROS, Clock, SystemClock

__all__ = [
    "AAC_FRAME",
    "AUDIO_RATES",
    "VideoItem",
    "AudioItem",
    "Item",
    "Source",
    "TestSource",
    "FileSource",
    "open_source",
    "paced",
    "frame_time_us",
    "sample_time_us",
    "format_clock",
    "draw_text",
    "Pattern",
    "make_pattern",
    "draw_pattern",
    "tone",
]

logger = logging.getLogger(__name__)

AAC_FRAME = 1024
"""Samples per audio item (one AAC frame)."""
AUDIO_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
"""Sample rates AAC can signal; a file's audio at another rate is resampled to 48 kHz."""
_LAYOUTS = {1: "mono", 2: "stereo"}
_CLICK_US = 5_000
"""Length of the click at each UTC second."""

Sleep = Callable[[float], None]


# --------------------------------------------------------------------------- items


@dataclass(frozen=True, slots=True)
class VideoItem:
    """One raw video frame of a source."""

    frame: av.VideoFrame
    """The picture (testsrc: rgb24; files: the decoder's pixel format)."""
    index: int
    """Frame number since the source started, counting across loops."""
    capture_us: int
    """UTC wall-clock capture time, integer microseconds since the epoch."""

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"frame index must be >= 0, got {self.index}")


@dataclass(frozen=True, slots=True)
class AudioItem:
    """One block of AAC_FRAME raw audio samples (fltp)."""

    frame: av.AudioFrame
    """The samples; ``frame.samples == AAC_FRAME``."""
    first_sample: int
    """Number of the block's first sample since the source started."""
    capture_us: int
    """UTC wall-clock capture time of the first sample, integer microseconds."""

    def __post_init__(self) -> None:
        if self.first_sample < 0:
            raise ValueError(f"first_sample must be >= 0, got {self.first_sample}")


Item = VideoItem | AudioItem
"""Anything a source yields."""


class Source(Protocol):
    """A live source of raw frames."""

    @property
    def fps(self) -> Fraction:
        """Video frame rate (frames per second)."""
        ...

    @property
    def width(self) -> int:
        """Video width in pixels."""
        ...

    @property
    def height(self) -> int:
        """Video height in pixels."""
        ...

    @property
    def has_audio(self) -> bool:
        """Whether :class:`AudioItem` s are produced."""
        ...

    @property
    def sample_rate(self) -> int:
        """Audio sample rate in Hz (0 without audio)."""
        ...

    @property
    def channels(self) -> int:
        """Audio channel count (0 without audio)."""
        ...

    def items(self, start_us: int | None = None) -> Iterator[Item]:
        """Items in capture order, unpaced; times count from ``start_us`` (default: now)."""
        ...

    def live(self, sleep: Sleep = time.sleep) -> Iterator[Item]:
        """Items paced in real time, starting now."""
        ...

    def close(self) -> None:
        """Release files and decoders."""
        ...


# --------------------------------------------------------------------------- timing

T = TypeVar("T", bound=VideoItem | AudioItem)


def frame_time_us(start_us: int, index: int, fps: Fraction) -> int:
    """Capture time of video frame ``index``: start + index / fps, rounded down."""
    return start_us + index * MICROS * fps.denominator // fps.numerator


def sample_time_us(start_us: int, sample: int, sample_rate: int) -> int:
    """Capture time of audio sample ``sample``: start + sample / rate, rounded down."""
    return start_us + sample * MICROS // sample_rate


def paced(items: Iterable[T], clock: Clock, sleep: Sleep = time.sleep) -> Iterator[T]:
    """Release each item no earlier than its capture time on ``clock``.

    ``sleep`` is called with the seconds to wait (pass ``ManualClock.advance``
    to run on a virtual clock). Items that are already due pass at once, so a
    consumer that falls behind sees them late but with their true capture time.
    """
    for item in items:
        while True:
            wait = item.capture_us - clock.wall_us()
            if wait <= 0:
                break
            sleep(wait / MICROS)
        yield item


# --------------------------------------------------------------------------- drawing

# Segments: a (top), b (top right), c (bottom right), d (bottom), e (bottom left),
# f (top left), g (middle).
_SEGMENTS = {
    "0": "abcdef",
    "1": "bc",
    "2": "abdeg",
    "3": "abcdg",
    "4": "bcfg",
    "5": "acdfg",
    "6": "acdefg",
    "7": "abc",
    "8": "abcdefg",
    "9": "abcdfg",
    "-": "g",
}


def format_clock(utc_ms: int) -> str:
    """``HH:MM:SS.mmm`` of a UTC time in milliseconds since the epoch."""
    seconds, ms = divmod(utc_ms, 1000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours % 24:02d}:{minute:02d}:{sec:02d}.{ms:03d}"


def _fill(rgb: npt.NDArray[np.uint8], y0: int, y1: int, x0: int, x1: int, colour: int) -> None:
    rgb[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = colour


def draw_text(
    rgb: npt.NDArray[np.uint8], text: str, x: int, y: int, height: int, colour: int = 255
) -> int:
    """Draw digits, ``-``, ``:``, ``.`` and spaces as 7-segment glyphs; return the end x.

    ``height`` is the glyph height in pixels; ``colour`` a grey level. Glyphs
    outside the frame are clipped.
    """
    h = max(height, 5)
    w = max(h // 2, 3)
    t = max(h // 8, 1)
    gap = max(h // 5, 1)
    half = h // 2
    for char in text:
        if char in _SEGMENTS:
            segs = _SEGMENTS[char]
            boxes = {
                "a": (y, y + t, x, x + w),
                "b": (y, y + half, x + w - t, x + w),
                "c": (y + half, y + h, x + w - t, x + w),
                "d": (y + h - t, y + h, x, x + w),
                "e": (y + half, y + h, x, x + t),
                "f": (y, y + half, x, x + t),
                "g": (y + half - t // 2, y + half - t // 2 + t, x, x + w),
            }
            for seg in segs:
                _fill(rgb, *boxes[seg], colour)
            x += w + gap
        elif char == ":":
            _fill(rgb, y + h // 4, y + h // 4 + t, x, x + t, colour)
            _fill(rgb, y + 3 * h // 4 - t, y + 3 * h // 4, x, x + t, colour)
            x += t + gap
        elif char == ".":
            _fill(rgb, y + h - t, y + h, x, x + t, colour)
            x += t + gap
        elif char == " ":
            x += w + gap
        else:
            raise ValueError(f"draw_text cannot draw {char!r}")
    return x


_BAR_COLOURS = np.array(
    [
        [235, 235, 235],
        [235, 235, 16],
        [16, 235, 235],
        [16, 235, 16],
        [235, 16, 235],
        [235, 16, 16],
        [16, 16, 235],
        [64, 64, 64],
    ],
    dtype=np.uint8,
)


def _bar_strip(width: int) -> npt.NDArray[np.uint8]:
    """One row of colour bars, two frame widths long (so any window of W fits)."""
    bar = max(width // len(_BAR_COLOURS), 1)
    period = bar * len(_BAR_COLOURS)
    x = np.arange(2 * width + period)
    return _BAR_COLOURS[(x // bar) % len(_BAR_COLOURS)]


def _layout(height: int) -> tuple[int, int, int]:
    """(text top, text height, pattern top) below the barcode band."""
    band = barcode.band_height(height)
    text_h = max(height // 12, 7)
    pad = max(height // 60, 1)
    return band + pad, text_h, band + 2 * pad + text_h


_GRAIN_SLACK = 256
"""The grain tile is this much larger than the area it covers, in both directions."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """Precomputed pieces of the test pattern for one frame size."""

    width: int
    """Frame width."""
    height: int
    """Frame height."""
    strip: npt.NDArray[np.uint8]
    """One row of colour bars, (2 W + period, 3)."""
    grain: npt.NDArray[np.uint8] | None
    """Noise tile (rows + slack, W + slack, 3) added to the bars, or None."""


def make_pattern(width: int, height: int, grain: int = 8, seed: int = 0) -> Pattern:
    """Build the :class:`Pattern` of a ``width`` x ``height`` frame.

    ``grain`` is the peak-to-peak amplitude of the film-grain noise laid over
    the bars (0: none). Without it the pattern compresses to a fraction of any
    useful bit rate; with it the encoder has to spend its budget, as on
    camera content.
    """
    if not 0 <= grain <= 20:
        raise ConfigError(f"grain must be in [0, 20], got {grain}")
    noise = None
    if grain:
        rows = height - _layout(height)[2] + _GRAIN_SLACK
        rng = np.random.default_rng(seed)
        mono = rng.integers(0, grain, size=(rows, width + _GRAIN_SLACK, 1), dtype=np.uint8)
        # Same value in R, G and B (luma grain); stored per channel so the
        # per-frame add runs over contiguous memory.
        noise = np.repeat(mono, 3, axis=2)
    return Pattern(width, height, _bar_strip(width), noise)


def draw_pattern(
    rgb: npt.NDArray[np.uint8],
    index: int,
    fps: Fraction,
    utc_ms: int,
    pattern: Pattern | None = None,
) -> None:
    """Draw frame ``index`` of the test pattern into ``rgb`` (H, W, 3) in place.

    Colour bars scroll left at a quarter of the width per second under a
    fresh film grain every frame (the grain tile is read at a pseudo-random
    offset, too far from the last one for motion search to find), a grey box
    sweeps back and forth every 4 s, the clock ``HH:MM:SS.mmm`` of ``utc_ms``
    sits under the barcode band, which carries ``utc_ms`` itself.
    ``pattern`` caches the precomputed parts (built when omitted).
    """
    height, width = rgb.shape[0], rgb.shape[1]
    if pattern is None or (pattern.width, pattern.height) != (width, height):
        pattern = make_pattern(width, height)
    strip = pattern.strip
    text_top, text_h, top = _layout(height)
    # Bars: shift = index / fps * W / 4 pixels, modulo one bar period.
    period = strip.shape[0] - 2 * width
    shift = (index * width * fps.denominator // (4 * fps.numerator)) % period
    bars = strip[np.newaxis, shift : shift + width]
    if pattern.grain is None:
        rgb[top:] = bars
    else:
        mix = (index * 2654435761) & 0xFFFFFFFF
        dy, dx = (mix >> 8) % _GRAIN_SLACK, (mix >> 16) % _GRAIN_SLACK
        noise = pattern.grain[dy : dy + height - top, dx : dx + width]
        np.add(bars, noise, out=rgb[top:])
    # Sweeping box: a triangle wave over 4 s.
    box = max(min(width, height) // 6, 2)
    cycle = 4 * fps.numerator
    phase = (index * fps.denominator) % cycle
    travel = width - box
    pos = 2 * travel * phase // cycle
    left = pos if pos <= travel else 2 * travel - pos
    box_top = top + max((height - top - box) // 2, 0)
    rgb[box_top : box_top + box, left : left + box] = 128
    # Clock text on black under the band.
    rgb[barcode.band_height(height) : top] = 0
    draw_text(rgb, format_clock(utc_ms), max(width // 40, 1), text_top, text_h)
    barcode.encode_into(rgb, utc_ms)


def tone(
    first_sample: int,
    count: int,
    sample_rate: int,
    start_us: int,
    frequency: int = 440,
    level_dbfs: float = -20.0,
) -> npt.NDArray[np.float32]:
    """``count`` mono samples of the test tone from sample ``first_sample``.

    A sine of ``frequency`` Hz at ``level_dbfs``, plus a 5 ms, 2 kHz click at
    -6 dBFS wherever a sample's capture time falls in the first 5 ms of a UTC
    second. Phase is computed exactly from the sample number (integer math),
    so consecutive blocks join without a seam.
    """
    k = np.arange(first_sample, first_sample + count, dtype=np.int64)
    amplitude = 10.0 ** (level_dbfs / 20.0)
    phase = (k * frequency) % sample_rate
    out: npt.NDArray[np.float64] = amplitude * np.sin(2.0 * np.pi * phase / sample_rate)
    times = start_us + k * MICROS // sample_rate
    click = (times % MICROS) < _CLICK_US
    if np.any(click):
        click_phase = (k * 2000) % sample_rate
        out = np.where(click, out + 0.5 * np.sin(2.0 * np.pi * click_phase / sample_rate), out)
    return out.astype(np.float32)


# --------------------------------------------------------------------------- testsrc


def _check_video(width: int, height: int, fps: Fraction) -> None:
    if width < barcode.MIN_WIDTH or height < 16 or width % 2 or height % 2:
        raise ConfigError(f"frame size must be even and at least 64x16, got {width}x{height}")
    if fps <= 0 or fps > 240:
        raise ConfigError(f"frame rate must be in (0, 240], got {fps}")


def _check_audio(sample_rate: int, channels: int) -> None:
    if sample_rate not in AUDIO_RATES:
        raise ConfigError(f"sample rate {sample_rate} is not an AAC rate")
    if channels not in _LAYOUTS:
        raise ConfigError(f"channels must be 1 or 2, got {channels}")


def _audio_frame(
    samples: npt.NDArray[np.float32], first_sample: int, sample_rate: int
) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples), format="fltp", layout=_LAYOUTS[samples.shape[0]]
    )
    frame.sample_rate = sample_rate
    frame.pts = first_sample
    frame.time_base = Fraction(1, sample_rate)
    return frame


class _Format:
    """The picture and sound format every source reports (see :class:`Source`)."""

    _fps: Fraction
    _width: int
    _height: int
    _has_audio: bool
    _sample_rate: int
    _channels: int

    @property
    def fps(self) -> Fraction:
        """Video frame rate (for files: the stream's average rate)."""
        return self._fps

    @property
    def width(self) -> int:
        """Video width."""
        return self._width

    @property
    def height(self) -> int:
        """Video height."""
        return self._height

    @property
    def has_audio(self) -> bool:
        """Whether audio items are produced."""
        return self._has_audio

    @property
    def sample_rate(self) -> int:
        """Audio sample rate of the items (0 without audio)."""
        return self._sample_rate

    @property
    def channels(self) -> int:
        """Audio channels of the items (0 without audio)."""
        return self._channels


class TestSource(_Format):
    """The built-in test source (``testsrc``)."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: Fraction = Fraction(30),
        sample_rate: int = 48000,
        channels: int = 2,
        clock: Clock | None = None,
        audio: bool = True,
        grain: int = 8,
    ) -> None:
        fps = Fraction(fps)
        _check_video(width, height, fps)
        if audio:
            _check_audio(sample_rate, channels)
        self._fps = fps
        self._width = width
        self._height = height
        self._has_audio = audio
        self._sample_rate = sample_rate if audio else 0
        self._channels = channels if audio else 0
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._pattern = make_pattern(width, height, grain)

    def video_item(self, index: int, start_us: int) -> VideoItem:
        """Render frame ``index`` of a stream that started at ``start_us``."""
        capture = frame_time_us(start_us, index, self._fps)
        frame = av.VideoFrame(self._width, self._height, "rgb24")
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(
            self._height, plane.line_size
        )
        rgb = rows[:, : self._width * 3].reshape(self._height, self._width, 3)
        draw_pattern(rgb, index, self._fps, capture // 1000, self._pattern)
        frame.pts = index
        frame.time_base = Fraction(self._fps.denominator, self._fps.numerator)
        return VideoItem(frame, index, capture)

    def audio_item(self, first_sample: int, start_us: int) -> AudioItem:
        """Synthesize the AAC_FRAME samples from ``first_sample`` on."""
        mono = tone(first_sample, AAC_FRAME, self._sample_rate, start_us)
        samples = np.repeat(mono[np.newaxis, :], self._channels, axis=0)
        frame = _audio_frame(samples, first_sample, self._sample_rate)
        return AudioItem(
            frame, first_sample, sample_time_us(start_us, first_sample, self._sample_rate)
        )

    def items(self, start_us: int | None = None) -> Iterator[Item]:
        """Endless items in capture order (video first on equal times), unpaced."""
        start = self.clock.wall_us() if start_us is None else start_us
        index = 0
        sample = 0
        while True:
            video_at = frame_time_us(start, index, self._fps)
            if self._has_audio and sample_time_us(start, sample, self._sample_rate) < video_at:
                yield self.audio_item(sample, start)
                sample += AAC_FRAME
            else:
                yield self.video_item(index, start)
                index += 1

    def live(self, sleep: Sleep = time.sleep) -> Iterator[Item]:
        """Items paced in real time, stamped from the clock's current time."""
        return paced(self.items(self.clock.wall_us()), self.clock, sleep)

    def close(self) -> None:
        """Nothing to release."""


# --------------------------------------------------------------------------- files


class FileSource(_Format):
    """Frames decoded from a media file, re-timed onto a live timeline.

    Video frame ``n`` (counting across loops) is captured at
    ``start + n / fps`` where ``fps`` is the stream's average rate, so a
    constant-rate file plays at its own pace. Audio is converted to fltp
    (48 kHz if the file's rate is not an AAC rate, mono or stereo), cut into
    blocks of AAC_FRAME samples and timed by sample count from the same start.
    At the end of each pass the audio is padded with silence or trimmed to the
    video's length so the two stay aligned across loops.
    """

    def __init__(self, path: str | Path, loop: bool = False, clock: Clock | None = None) -> None:
        self.path = str(path)
        self.loop = loop
        self.clock: Clock = clock if clock is not None else SystemClock()
        container = self._open()
        try:
            video = container.streams.video[0] if container.streams.video else None
            if video is None:
                raise SourceError(f"source {self.path!r} has no video stream")
            width = video.codec_context.width
            height = video.codec_context.height
            if width <= 0 or height <= 0:
                raise SourceError(f"source {self.path!r}: video stream has no frame size")
            rate = video.average_rate or video.guessed_rate or video.base_rate
            fps = Fraction(rate) if rate else Fraction(30)
            if fps <= 0 or fps > 240:
                logger.warning("source %s: implausible frame rate %s, using 30", self.path, fps)
                fps = Fraction(30)
            self._fps = fps.limit_denominator(1001)
            self._width = width
            self._height = height
            audio = container.streams.audio[0] if container.streams.audio else None
            self._has_audio = audio is not None and audio.codec_context.sample_rate > 0
            if audio is not None and self._has_audio:
                rate_in = audio.codec_context.sample_rate
                self._sample_rate = rate_in if rate_in in AUDIO_RATES else 48000
                self._channels = min(max(audio.codec_context.channels, 1), 2)
            else:
                self._sample_rate = 0
                self._channels = 0
        except BaseException:
            container.close()
            raise
        self._first: av.container.InputContainer | None = container

    def _open(self) -> av.container.InputContainer:
        try:
            return av.open(self.path, mode="r")
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open source {self.path!r}: {exc}") from exc

    def close(self) -> None:
        """Close the probe container if items() never used it."""
        if self._first is not None:
            self._first.close()
            self._first = None

    def live(self, sleep: Sleep = time.sleep) -> Iterator[Item]:
        """Items paced in real time, starting now."""
        return paced(self.items(self.clock.wall_us()), self.clock, sleep)

    def items(self, start_us: int | None = None) -> Iterator[Item]:
        """Items in capture order, unpaced; endless when looping."""
        start = self.clock.wall_us() if start_us is None else start_us
        state = _Retimer(self, start)
        passes = 0
        while True:
            container = self._first if self._first is not None else self._open()
            self._first = None
            try:
                yield from state.run_pass(container)
            finally:
                container.close()
            passes += 1
            if state.video_index == 0:
                raise SourceError(f"source {self.path!r}: no video frame could be decoded")
            if not self.loop:
                yield from state.finish()
                return
            logger.debug("source %s: pass %d done, looping", self.path, passes)


class _Retimer:
    """Merges a file's decoded video and audio into timed items, across passes."""

    def __init__(self, source: FileSource, start_us: int) -> None:
        self.source = source
        self.start_us = start_us
        self.video_index = 0
        self.next_sample = 0
        self.pending: deque[VideoItem] = deque()
        self.fifo = av.AudioFifo()
        self.layout = _LAYOUTS.get(source.channels, "stereo")
        # Video may run ahead of audio by at most this much before it is
        # released anyway (bounded memory for files with sparse audio).
        self.max_lead = max(int(source.fps), 1)

    def _next_audio_us(self) -> int:
        return sample_time_us(self.start_us, self.next_sample, self.source.sample_rate)

    def _audio_item(self) -> AudioItem:
        frame = self.fifo.read(AAC_FRAME)
        if frame is None:  # pragma: no cover - guarded by fifo.samples checks
            raise SourceError("audio FIFO underrun")
        frame.pts = self.next_sample
        frame.time_base = Fraction(1, self.source.sample_rate)
        item = AudioItem(frame, self.next_sample, self._next_audio_us())
        self.next_sample += AAC_FRAME
        return item

    def _drain(self, final: bool) -> Iterator[Item]:
        """Yield whatever can be ordered; everything (audio blocks) when ``final``."""
        while True:
            audio_ready = self.source.has_audio and self.fifo.samples >= AAC_FRAME
            if self.pending and audio_ready:
                if self._next_audio_us() < self.pending[0].capture_us:
                    yield self._audio_item()
                else:
                    yield self.pending.popleft()
            elif self.pending and (
                final or not self.source.has_audio or len(self.pending) > self.max_lead
            ):
                yield self.pending.popleft()
            elif audio_ready and final:
                yield self._audio_item()
            else:
                return

    def _push_audio(self, frame: av.AudioFrame) -> None:
        frame.pts = None
        self.fifo.write(frame)

    def _silence(self, count: int) -> None:
        if count <= 0:
            return
        zeros = np.zeros((self.source.channels, count), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(zeros, format="fltp", layout=self.layout)
        frame.sample_rate = self.source.sample_rate
        self._push_audio(frame)

    def run_pass(self, container: av.container.InputContainer) -> Iterator[Item]:
        """Decode one pass over the file."""
        source = self.source
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        streams: list[av.stream.Stream] = [video]
        resampler: av.AudioResampler | None = None
        if source.has_audio and container.streams.audio:
            streams.append(container.streams.audio[0])
            resampler = av.AudioResampler(
                format="fltp", layout=self.layout, rate=source.sample_rate
            )
        try:
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        capture = frame_time_us(self.start_us, self.video_index, source.fps)
                        self.pending.append(VideoItem(frame, self.video_index, capture))
                        self.video_index += 1
                    elif isinstance(frame, av.AudioFrame) and resampler is not None:
                        for out in resampler.resample(frame):
                            self._push_audio(out)
                yield from self._drain(final=False)
            if resampler is not None:
                for out in resampler.resample(None):
                    self._push_audio(out)
        except av.FFmpegError as exc:
            raise SourceError(f"cannot decode source {source.path!r}: {exc}") from exc
        if source.has_audio:
            # Align audio with the video's end so loops do not drift apart.
            target = self.video_index * source.sample_rate * source.fps.denominator
            target //= source.fps.numerator
            excess = self.next_sample + self.fifo.samples - target
            if excess < 0:
                self._silence(-excess)
            elif excess > 0 and self.fifo.samples > 0:
                keep = max(self.fifo.samples - excess, 0)
                drop = self.fifo.samples - keep
                if drop > 0:
                    self.fifo.read(drop)
        # Frames after the last whole audio block wait for the next pass's
        # audio (or for finish()) so items stay in capture order.
        yield from self._drain(final=False)

    def finish(self) -> Iterator[Item]:
        """End of the source: the last audio blocks, the remainder padded to a full block."""
        if self.source.has_audio and self.fifo.samples % AAC_FRAME:
            self._silence(AAC_FRAME - self.fifo.samples % AAC_FRAME)
        yield from self._drain(final=True)


# --------------------------------------------------------------------------- factory


def open_source(spec: str, loop: bool = False, clock: Clock | None = None) -> Source:
    """``testsrc`` or the path of a media file; anything else raises SourceError."""
    if spec == "testsrc":
        return TestSource(clock=clock)
    if not spec:
        raise SourceError("empty source: give 'testsrc' or the path of a media file")
    if not Path(spec).exists():
        raise SourceError(f"unknown source {spec!r}: not 'testsrc' and no such file")
    return FileSource(spec, loop=loop, clock=clock)
