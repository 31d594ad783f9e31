"""Time model: integer ticks with an explicit timescale.

Every media timestamp and duration in llhls is an ``int`` number of ticks of
a named timescale (ticks per second): 90 000 for video, the sample rate for
audio, 1 000 000 for wall-clock microseconds. Conversion between timescales
multiplies before it divides, so no precision is lost to floats; floats appear
only at the edges (playlist text, metrics, log lines).

The one place where durations become text is :func:`format_decimal`, used for
every decimal in a playlist.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

__all__ = [
    "VIDEO_TIMESCALE",
    "MICROS",
    "Clock",
    "SystemClock",
    "ManualClock",
    "Ticks",
    "rescale",
    "rescale_ceil",
    "to_seconds",
    "format_decimal",
    "format_ticks",
]

VIDEO_TIMESCALE = 90_000
"""The timescale of every video track (MPEG convention)."""

MICROS = 1_000_000
"""Timescale of wall-clock times held as integer microseconds."""


def rescale(value: int, src: int, dst: int) -> int:
    """Convert ``value`` ticks of timescale ``src`` to timescale ``dst``.

    Multiplies first, then divides, rounding half away from zero.
    """
    if src <= 0 or dst <= 0:
        raise ValueError(f"timescales must be positive, got {src} -> {dst}")
    num = value * dst
    q, r = divmod(abs(num), src)
    if 2 * r >= src:
        q += 1
    return q if num >= 0 else -q


def rescale_ceil(value: int, src: int, dst: int) -> int:
    """Like :func:`rescale` but rounds up (towards +infinity)."""
    if src <= 0 or dst <= 0:
        raise ValueError(f"timescales must be positive, got {src} -> {dst}")
    return -((-value * dst) // src)


def to_seconds(value: int, timescale: int) -> float:
    """Ticks as float seconds: for display and metrics only."""
    return value / timescale


def format_decimal(value: Fraction | int, places: int = 5) -> str:
    """Render a non-negative decimal for a playlist, never in exponent form.

    ``value`` is exact (a Fraction or int); it is rounded *up* to ``places``
    decimals so that a rendered duration is never smaller than the real one
    (a PART-TARGET rendered too small would make real parts exceed it).
    Trailing zeros are dropped: ``2`` not ``2.00000``; ``0.00001`` not ``1e-05``.
    """
    if value < 0:
        raise ValueError(f"playlist decimals are non-negative, got {value}")
    scale = 10**places
    frac = Fraction(value)
    scaled = -((-frac.numerator * scale) // frac.denominator)  # ceil
    whole, rest = divmod(scaled, scale)
    if rest == 0:
        return str(whole)
    digits = str(rest).rjust(places, "0").rstrip("0")
    return f"{whole}.{digits}"


def format_ticks(value: int, timescale: int, places: int = 5) -> str:
    """Render ``value`` ticks of ``timescale`` with :func:`format_decimal`."""
    return format_decimal(Fraction(value, timescale), places)


@dataclass(frozen=True, slots=True)
class Ticks:
    """A duration or timestamp: ``value`` ticks of ``timescale`` per second."""

    value: int
    """Number of ticks."""
    timescale: int
    """Ticks per second; positive."""

    def __post_init__(self) -> None:
        if self.timescale <= 0:
            raise ValueError(f"timescale must be positive, got {self.timescale}")

    def to(self, timescale: int) -> Ticks:
        """The same instant in another timescale (rounded to nearest)."""
        return Ticks(rescale(self.value, self.timescale, timescale), timescale)

    @property
    def fraction(self) -> Fraction:
        """Exact seconds."""
        return Fraction(self.value, self.timescale)

    @property
    def seconds(self) -> float:
        """Float seconds, for display."""
        return self.value / self.timescale


class Clock(Protocol):
    """Source of the current time. Cores never call it: adapters pass ``now``."""

    def monotonic(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    def wall_us(self) -> int:
        """UTC wall-clock time in integer microseconds since the Unix epoch."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall_us(self) -> int:
        return time.time_ns() // 1000


class ManualClock:
    """A virtual clock for tests and the simulator; advanced by hand."""

    def __init__(self, monotonic: float = 0.0, wall_us: int = 1_700_000_000_000_000) -> None:
        self._mono = monotonic
        self._wall_offset = wall_us - int(monotonic * MICROS)

    def monotonic(self) -> float:
        return self._mono

    def wall_us(self) -> int:
        return self._wall_offset + int(self._mono * MICROS)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock never runs backwards")
        self._mono += seconds
