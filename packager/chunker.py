"""Chunker: coded samples -> CMAF parts -> segments. Pure, no I/O.

Every track of a stream cuts on the same time grid, so parts and segments are
aligned across renditions and between audio and video:

* grid point ``k`` lies at ``k * part_duration`` seconds of media time;
* a sample starts a new part when its midpoint lies past the current part's
  grid point (video frames sit exactly on the grid; AAC frames of 1024
  samples are cut at the frame boundary nearest to it);
* every ``parts_per_segment`` grid points a new segment starts. The encoders
  force a key frame on the segment grid; the boundary is taken as soon as the
  last part of a segment closes, so the origin can hint part 0 of the next
  segment at once. A sample there that is not a sync sample yields a part
  without INDEPENDENT (``PartDone.independent`` is False) rather than a late
  boundary.

A part is closed as soon as its last sample is in (assuming the next sample
has the same duration), so it is published without waiting one more frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from llhls.errors import ConfigError
from llhls.media import Sample

__all__ = [
    "PartDone",
    "SegmentDone",
    "ChunkEvent",
    "Chunker",
    "GridConfig",
    "declared_part_target",
    "meets_part_floor",
    "part_bounds",
]


@dataclass(frozen=True, slots=True)
class GridConfig:
    """The stream-wide cutting grid shared by every track."""

    part_duration: Fraction
    """Nominal part duration in seconds (an integer number of video frames)."""
    parts_per_segment: int
    """Grid points per segment; the segment duration is their product."""

    def __post_init__(self) -> None:
        if self.part_duration <= 0:
            raise ConfigError(f"part duration must be positive, got {self.part_duration}")
        if self.parts_per_segment < 1:
            raise ConfigError(f"parts per segment must be >= 1, got {self.parts_per_segment}")

    @property
    def segment_duration(self) -> Fraction:
        """Nominal segment duration in seconds."""
        return self.part_duration * self.parts_per_segment

    @classmethod
    def for_video(
        cls,
        fps: Fraction,
        part_target: Fraction,
        segment: Fraction,
        other_frames: Sequence[Fraction] = (),
    ) -> GridConfig:
        """Round ``part_target`` to whole frames and ``segment`` to whole parts.

        ``other_frames`` are the fixed sample durations of the other tracks
        (AAC: 1024 / sample rate). The part is the whole number of video frames
        nearest to ``part_target`` for which every track's parts stay within
        [85 %, 100 %] of the declared PART-TARGET (:func:`meets_part_floor`).
        """
        if fps <= 0:
            raise ConfigError(f"frame rate must be positive, got {fps}")
        if segment * fps < 1:
            raise ConfigError(f"segment duration {float(segment):g} s is shorter than a frame")
        if part_target > segment:
            raise ConfigError(
                f"part target {float(part_target):g} s is longer than the segment "
                f"({float(segment):g} s)"
            )
        # rounding to whole frames must not make a part longer than the segment
        most = math.floor(segment * fps)
        nearest = min(max(1, round(part_target * fps)), most)
        frames = [1 / fps, *other_frames]
        for step in range(nearest + 1):
            for n in (nearest + step, nearest - step) if step else (nearest,):
                if 1 <= n <= most and meets_part_floor(Fraction(n) / fps, frames):
                    part = Fraction(n) / fps
                    return cls(part, max(1, round(segment / part)))
        longest = max(frames)
        raise ConfigError(
            f"no part duration near {float(part_target):g} s keeps every part within "
            f"85-100 % of PART-TARGET with {float(longest) * 1000:.1f} ms samples; "
            "use a longer --part-target"
        )


def part_bounds(part_duration: Fraction, frame: Fraction) -> tuple[Fraction, Fraction]:
    """Shortest and longest part a track with fixed ``frame`` duration produces.

    With nearest-boundary cutting, a part holds floor or ceil of
    ``part_duration / frame`` frames.
    """
    ratio = part_duration / frame
    return Fraction(math.floor(ratio)) * frame, Fraction(math.ceil(ratio)) * frame


def meets_part_floor(part_duration: Fraction, frames: Sequence[Fraction]) -> bool:
    """Spec rule (section 4.4.4.9): every part of every track is >= 85 % of the declared
    PART-TARGET (parts at a segment end or starting independent are exempt, but
    most parts are neither, so the grid must satisfy it for all)."""
    target = declared_part_target(part_duration, frames)
    return all(part_bounds(part_duration, f)[0] * 100 >= 85 * target for f in frames)


def declared_part_target(part_duration: Fraction, frames: Sequence[Fraction]) -> Fraction:
    """The PART-TARGET to declare: the longest part any track can produce.

    ``frames`` lists each track's fixed sample duration in seconds. Every
    part is then <= the target; :func:`part_bounds` tells how short one gets.
    """
    longest = part_duration
    for frame in frames:
        longest = max(longest, part_bounds(part_duration, frame)[1])
    return longest


@dataclass(frozen=True, slots=True)
class PartDone:
    """A complete part, ready to be written as one CMAF chunk."""

    msn: int
    """Media sequence number of the parent segment."""
    index: int
    """Part index within the parent, from 0."""
    samples: tuple[Sample, ...]
    """The part's samples in decode order."""
    independent: bool
    """True when the first sample is a sync sample."""
    duration: int
    """Sum of sample durations, in track ticks."""
    segment_start: bool
    """True for the first part of a segment (index 0)."""


@dataclass(frozen=True, slots=True)
class SegmentDone:
    """Segment ``msn`` has all its parts."""

    msn: int
    """Media sequence number."""
    parts: int
    """Number of parts."""
    duration: int
    """Sum of part durations, in track ticks."""


ChunkEvent = PartDone | SegmentDone


class Chunker:
    """Cuts one track's samples into parts and segments on the shared grid."""

    def __init__(self, timescale: int, grid: GridConfig) -> None:
        if timescale <= 0:
            raise ConfigError(f"timescale must be positive, got {timescale}")
        self._ts = timescale
        self._grid = grid
        # grid point k in ticks is k * _num / _den (exact rational)
        self._num = grid.part_duration.numerator * timescale
        self._den = grid.part_duration.denominator
        self._k = 1  # grid point that ends the open part
        self._open: list[Sample] = []
        self._msn = 0
        self._index = 0
        self._segment_ticks = 0
        self._started = False
        self._last_dts: int | None = None

    def _past_grid(self, dts: int, duration: int) -> bool:
        """True when a sample at ``dts`` has its midpoint past grid point ``_k``."""
        return (2 * dts + duration) * self._den > 2 * self._k * self._num

    def push(self, sample: Sample) -> list[ChunkEvent]:
        """Add the next sample (in decode order); returns the parts/segments it completes."""
        if self._last_dts is not None and sample.dts <= self._last_dts:
            raise ValueError(
                f"samples must arrive in increasing decode order: {sample.dts} after "
                f"{self._last_dts}"
            )
        self._last_dts = sample.dts
        events: list[ChunkEvent] = []
        if not self._started:
            self._started = True
            # skip grid points before the first sample (a track starting late)
            while self._past_grid(sample.dts, sample.duration):
                self._k += 1
        elif not self._open:
            # the previous part was closed early; catch up over any gap
            while self._past_grid(sample.dts, sample.duration):
                self._k += 1
        elif self._past_grid(sample.dts, sample.duration):
            events.extend(self._close())
        self._open.append(sample)
        # close early when the next sample (same duration assumed) belongs to the next part
        nxt = sample.dts + sample.duration
        if self._past_grid(nxt, sample.duration):
            events.extend(self._close())
        return events

    def _close(self) -> list[ChunkEvent]:
        events: list[ChunkEvent] = []
        samples = tuple(self._open)
        self._open = []
        duration = sum(s.duration for s in samples)
        events.append(
            PartDone(
                msn=self._msn,
                index=self._index,
                samples=samples,
                independent=samples[0].keyframe,
                duration=duration,
                segment_start=self._index == 0,
            )
        )
        self._segment_ticks += duration
        self._index += 1
        self._k += 1
        # does the next part start a segment? (grid point k-1 is on the segment grid)
        if (self._k - 1) % self._grid.parts_per_segment == 0:
            events.append(self._end_segment())
        return events

    def _end_segment(self) -> SegmentDone:
        done = SegmentDone(msn=self._msn, parts=self._index, duration=self._segment_ticks)
        self._msn += 1
        self._index = 0
        self._segment_ticks = 0
        return done

    def flush(self) -> list[ChunkEvent]:
        """Close the open part and segment at the end of the stream."""
        events: list[ChunkEvent] = []
        if self._open:
            events.extend(self._close())
        if self._index > 0:
            events.append(self._end_segment())
        return events
