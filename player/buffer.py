"""Playout: a buffer of delivered media per track and a playout clock (pure).

The buffer knows *when* media plays, not how it decodes. Every delivered chunk
(a part or a segment) is pushed with its media-time range on the session's
timeline, in integer microseconds; an optional payload rides along and is
handed back by :meth:`PlayoutBuffer.pop_due` once the play position reaches
its start.

The playout clock moves the play position at a settable ``rate`` (1.0 by
default; the catch-up controller steers it). Playback starts when every
track holds ``start_threshold`` of media, stalls when any track runs dry, and
resumes once every track holds ``resume_threshold`` again. The instant the
buffer ran dry is computed exactly from the rate, so stall timing does not
depend on how often :meth:`PlayoutBuffer.advance` is called.

Like every core in the player, nothing here reads a clock: each call takes
``now`` (seconds on a monotonic clock) from the adapter.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from llhls.timing import MICROS

__all__ = ["PlayState", "BufferConfig", "PlayoutStats", "PlayoutBuffer"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PlayState(enum.Enum):
    """Where the playout clock is."""

    BUFFERING = "buffering"
    """Before the first frame: waiting for ``start_threshold`` on every track."""
    PLAYING = "playing"
    """The play position moves at ``rate``."""
    STALLED = "stalled"
    """A track ran dry after playback had started; waiting for ``resume_threshold``."""
    ENDED = "ended"
    """The end of the stream was reached."""


@dataclass(frozen=True, slots=True)
class BufferConfig:
    """Thresholds of the playout buffer."""

    start_threshold: float = 0.2
    """Seconds of media every track must hold before playback starts."""
    resume_threshold: float = 0.2
    """Seconds of media every track must hold to leave a stall."""
    merge_tolerance: float = 0.005
    """Chunks closer than this (seconds) are one contiguous range: timestamps
    derived from PDT and rounded playlist durations jitter by a millisecond."""
    max_gap: float = 1.0
    """A stall in front of a hole no longer than this (seconds) jumps the hole
    once the media after it reaches ``resume_threshold``."""
    keep_behind: float = 1.0
    """Seconds of ranges kept behind the play position (for inspection)."""

    def __post_init__(self) -> None:
        for name in ("start_threshold", "resume_threshold", "merge_tolerance", "max_gap"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.keep_behind < 0:
            raise ValueError(f"keep_behind must be >= 0, got {self.keep_behind}")


@dataclass(frozen=True, slots=True)
class PlayoutStats:
    """Counters of a playout, as of the last call that passed ``now``."""

    state: PlayState
    """Current state."""
    position_s: float | None
    """Play position in media seconds (``None`` before playback starts)."""
    buffer_s: float
    """Media seconds buffered ahead of the position (the minimum over tracks)."""
    rate: float
    """Current playout rate."""
    started_at: float | None
    """``now`` at which playback started."""
    stalls: int
    """Number of stalls after playback started."""
    stall_s: float
    """Wall seconds spent stalled (an ongoing stall counts up to ``now``)."""
    played_s: float
    """Wall seconds spent playing."""
    gaps_skipped: int
    """Holes in the media jumped over."""


class _Track(Generic[T]):
    """Buffered ranges and queued payloads of one track."""

    __slots__ = ("ranges", "items")

    def __init__(self) -> None:
        self.ranges: list[list[int]] = []
        """Sorted, disjoint ``[start, end)`` microsecond ranges."""
        self.items: deque[tuple[int, int, T]] = deque()
        """Queued ``(start, end, payload)``, in push order."""

    def add(self, start: int, end: int, tolerance: int) -> None:
        """Insert ``[start, end)`` and merge ranges closer than ``tolerance``."""
        ranges = self.ranges
        ranges.append([start, end])
        ranges.sort()
        merged: list[list[int]] = [ranges[0]]
        for r in ranges[1:]:
            last = merged[-1]
            if r[0] <= last[1] + tolerance:
                last[1] = max(last[1], r[1])
            else:
                merged.append(r)
        self.ranges = merged

    def covering(self, position: int, tolerance: int) -> list[int] | None:
        """The range that holds ``position`` (ends are inclusive), or ``None``."""
        for r in self.ranges:
            if r[0] - tolerance <= position <= r[1]:
                return r
        return None

    def next_after(self, position: int) -> list[int] | None:
        """The first range starting after ``position``."""
        for r in self.ranges:
            if r[0] > position:
                return r
        return None

    def prune(self, before: int) -> None:
        """Forget ranges that ended before ``before``."""
        self.ranges = [r for r in self.ranges if r[1] >= before]


class PlayoutBuffer(Generic[T]):
    """A per-track media buffer drained by a playout clock running at ``rate``.

    ``tracks`` names every track that must hold media for playback to go on
    (e.g. ``("video", "audio")``). Times are integer microseconds of media
    time; ``now`` is wall-clock seconds and must never decrease.
    """

    def __init__(self, tracks: Iterable[str], config: BufferConfig | None = None) -> None:
        self._tracks: dict[str, _Track[T]] = {name: _Track() for name in tracks}
        if not self._tracks:
            raise ValueError("a playout buffer needs at least one track")
        self._config = config or BufferConfig()
        self._tol = round(self._config.merge_tolerance * MICROS)
        self._state = PlayState.BUFFERING
        self._rate = 1.0
        self._position: int | None = None
        self._min_start: int | None = None
        self._last_now: float | None = None
        self._ended_input: set[str] = set()
        self._started_at: float | None = None
        self._stall_start: float | None = None
        self._stalls = 0
        self._stall_s = 0.0
        self._played_s = 0.0
        self._gaps_skipped = 0

    # -- inputs ------------------------------------------------------------------------------

    def push(self, track: str, start_us: int, duration_us: int, now: float, item: T) -> None:
        """Add a chunk of ``track`` covering ``[start_us, start_us + duration_us)``.

        ``item`` is queued for :meth:`pop_due`. Advances the clock to ``now``
        first, then starts or resumes playback if the thresholds are met.
        """
        if track not in self._tracks:
            raise KeyError(f"unknown track {track!r}")
        if duration_us <= 0:
            raise ValueError(f"chunk duration must be positive, got {duration_us}")
        self.advance(now)
        buf = self._tracks[track]
        buf.add(start_us, start_us + duration_us, self._tol)
        buf.items.append((start_us, start_us + duration_us, item))
        if self._position is not None:
            buf.prune(self._position - round(self._config.keep_behind * MICROS))
        self._try_play(now)

    def end_of_stream(self, track: str, now: float) -> None:
        """No more media will come for ``track``: running dry there ends playback."""
        if track not in self._tracks:
            raise KeyError(f"unknown track {track!r}")
        self.advance(now)
        self._ended_input.add(track)
        self._try_play(now)

    def play_from(self, start_us: int) -> None:
        """Start presenting at media time ``start_us`` (before playback starts).

        Media before it is due at once (:meth:`pop_due`: decode, do not show);
        the start threshold counts from here.
        """
        if self._state is not PlayState.BUFFERING:
            raise RuntimeError("play_from() is for before playback starts")
        self._min_start = start_us

    def set_rate(self, rate: float, now: float) -> None:
        """Change the playout rate at ``now`` (the clock is advanced first)."""
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.advance(now)
        self._rate = rate

    def advance(self, now: float) -> None:
        """Move the playout clock to ``now``, detecting a stall at its exact instant."""
        last = self._last_now
        self._last_now = now
        if last is None:
            return
        if now < last:
            raise ValueError(f"time went backwards: {now} < {last}")
        if self._state is not PlayState.PLAYING or self._position is None:
            return
        t = last
        while True:
            ahead = self._level_us()
            want = round((now - t) * self._rate * MICROS)
            if want < ahead:
                self._position += want
                self._played_s += now - t
                return
            # ran dry between t and now
            t_empty = t + ahead / (self._rate * MICROS)
            self._position += ahead
            self._played_s += t_empty - t
            t = t_empty
            if self._all_ended():
                self._state = PlayState.ENDED
                logger.debug("playout ended at %.3f", t_empty)
                return
            if self._jump_gap(1):
                continue
            self._state = PlayState.STALLED
            self._stalls += 1
            self._stall_start = t_empty
            logger.debug("stall %d at %.3f (position %d us)", self._stalls, t_empty, self._position)
            return

    # -- outputs -----------------------------------------------------------------------------

    def pop_due(self, track: str) -> list[T]:
        """Payloads of ``track`` whose start is at or before the play position."""
        buf = self._tracks[track]
        out: list[T] = []
        if self._position is None:
            return out
        while buf.items and buf.items[0][0] <= self._position:
            out.append(buf.items.popleft()[2])
        return out

    def pop_all(self, track: str) -> list[T]:
        """Every queued payload of ``track``, due or not (for decode-ahead)."""
        buf = self._tracks[track]
        out = [item for _, _, item in buf.items]
        buf.items.clear()
        return out

    def get_timer(self) -> float | None:
        """The wall time at which the buffer runs dry at the current rate, if playing."""
        if self._state is not PlayState.PLAYING or self._last_now is None:
            return None
        return self._last_now + self._level_us() / (self._rate * MICROS)

    @property
    def state(self) -> PlayState:
        """Current state."""
        return self._state

    @property
    def rate(self) -> float:
        """Current playout rate."""
        return self._rate

    @property
    def position_us(self) -> int | None:
        """Play position in media microseconds (``None`` before playback starts)."""
        return self._position

    @property
    def position_s(self) -> float | None:
        """Play position in media seconds."""
        return None if self._position is None else self._position / MICROS

    @property
    def level_s(self) -> float:
        """Media seconds buffered ahead of the position: the minimum over tracks."""
        return self._level_us() / MICROS

    def track_level_s(self, track: str) -> float:
        """Media seconds of ``track`` buffered contiguously ahead of the position."""
        return self._track_ahead(self._tracks[track]) / MICROS

    def ranges(self, track: str) -> list[tuple[int, int]]:
        """Buffered ``(start, end)`` microsecond ranges of ``track``."""
        return [(r[0], r[1]) for r in self._tracks[track].ranges]

    def stats(self, now: float | None = None) -> PlayoutStats:
        """Counters; pass ``now`` to count an ongoing stall up to ``now``."""
        stall_s = self._stall_s
        if self._state is PlayState.STALLED and self._stall_start is not None and now is not None:
            stall_s += max(0.0, now - self._stall_start)
        return PlayoutStats(
            state=self._state,
            position_s=self.position_s,
            buffer_s=self.level_s,
            rate=self._rate,
            started_at=self._started_at,
            stalls=self._stalls,
            stall_s=stall_s,
            played_s=self._played_s,
            gaps_skipped=self._gaps_skipped,
        )

    # -- internals ---------------------------------------------------------------------------

    def _all_ended(self) -> bool:
        return self._ended_input == set(self._tracks)

    def _track_ahead(self, buf: _Track[T]) -> int:
        if self._position is None:
            return sum(r[1] - r[0] for r in buf.ranges[:1])
        r = buf.covering(self._position, self._tol)
        return 0 if r is None else max(0, r[1] - self._position)

    def _level_us(self) -> int:
        tracks = self._tracks
        if len(tracks) == 1:  # the common case, without a generator
            for buf in tracks.values():
                return self._track_ahead(buf)
        return min(self._track_ahead(buf) for buf in tracks.values())

    def _start_position(self) -> int | None:
        """The earliest media time every track covers, if any."""
        firsts = [buf.ranges[0] for buf in self._tracks.values() if buf.ranges]
        if len(firsts) < len(self._tracks):
            return None
        position = max(r[0] for r in firsts)
        if self._min_start is not None:
            position = max(position, self._min_start)
        if all(buf.covering(position, self._tol) for buf in self._tracks.values()):
            return position
        return None

    def _try_play(self, now: float) -> None:
        cfg = self._config
        if self._state is PlayState.BUFFERING:
            position = self._start_position()
            if position is None:
                if self._all_ended():
                    self._state = PlayState.ENDED
                return
            self._position = position
            if self._level_us() >= round(cfg.start_threshold * MICROS) or self._all_ended():
                self._state = PlayState.PLAYING
                self._started_at = now
                logger.debug("playback starts at %.3f, position %d us", now, position)
            else:
                self._position = None
            return
        if self._state is not PlayState.STALLED or self._position is None:
            return
        threshold = max(round(cfg.resume_threshold * MICROS), 1)
        level = self._level_us()
        if level >= threshold or (level > 0 and self._all_ended()) or self._jump_gap(threshold):
            self._end_stall(now)
        elif self._all_ended():
            self._end_stall(now)
            self._state = PlayState.ENDED

    def _jump_gap(self, threshold: int) -> bool:
        """Jump a short hole in front of the position if ``threshold`` (> 0) follows it."""
        assert self._position is not None
        target = self._position
        for buf in self._tracks.values():
            if self._track_ahead(buf) > 0:
                continue
            nxt = buf.next_after(self._position)
            if nxt is None:
                return False
            target = max(target, nxt[0])
        if target == self._position or target - self._position > self._config.max_gap * MICROS:
            return False
        saved = self._position
        self._position = target
        if self._level_us() >= threshold:
            self._gaps_skipped += 1
            logger.debug("jumped a %d us hole at %d", target - saved, saved)
            return True
        self._position = saved
        return False

    def _end_stall(self, now: float) -> None:
        if self._stall_start is not None:
            self._stall_s += max(0.0, now - self._stall_start)
        self._stall_start = None
        self._state = PlayState.PLAYING
