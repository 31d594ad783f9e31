"""Latency from reference points: which capture instant is on screen now (pure).

Glass-to-glass latency at wall time ``now`` is ``now`` minus the capture time
of the picture being presented. The play position ``P`` (µs on the session's
media timeline, :attr:`player.buffer.PlayoutBuffer.position_us`) says *which*
media is presented; a :class:`CaptureTimeline` says *when* that media was
captured, from reference points ``(timeline_us, capture_us)``:

* ``pixels`` — a decoded video frame at timeline ``t`` whose barcode reads
  capture time ``c`` (:mod:`llhls.barcode`);
* ``prft`` — a delivered chunk starting at ``t`` whose ``prft`` box says its
  first sample was captured at ``c``;
* ``pdt`` — the timeline *is* the PROGRAM-DATE-TIME (``Session.use_pdt``), so
  ``c = t`` everywhere.

Between reference points capture time advances with media time (a live source
is captured in real time), so the capture time at ``P`` is ``c + (P - t)``
for the latest reference at or before ``P``. During a stall ``P`` stands
still and the latency grows with ``now``, as a viewer would see.

:class:`MediaToTimeline` maps a frame's presentation time (ticks of its
track, as the decoder returns it) onto the session's timeline, from the
start of each delivered chunk on both.
"""

from __future__ import annotations

import bisect
from collections import deque

from llhls.timing import MICROS

__all__ = ["CaptureTimeline", "MediaToTimeline", "latency_s"]

MAX_EXTRAPOLATION_US = 2 * MICROS
"""A reference further than this behind the position is not trusted (a gap in
references: unreadable barcodes, chunks without ``prft``)."""


def latency_s(wall_us: int, capture_us: int) -> float:
    """Seconds from ``capture_us`` to ``wall_us`` (both UTC µs)."""
    return (wall_us - capture_us) / MICROS


class CaptureTimeline:
    """Reference points ``(timeline_us, capture_us)``, sorted by timeline position.

    ``limit`` bounds the points kept (the oldest go first); points behind
    the position are dropped by :meth:`capture_at` except the latest one.
    """

    __slots__ = ("_points", "_limit", "_max_distance")

    def __init__(self, *, limit: int = 4096, max_distance_us: int = MAX_EXTRAPOLATION_US) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        if max_distance_us < 0:
            raise ValueError(f"max_distance_us must be >= 0, got {max_distance_us}")
        self._points: list[tuple[int, int]] = []
        self._limit = limit
        self._max_distance = max_distance_us

    def __len__(self) -> int:
        return len(self._points)

    def add(self, timeline_us: int, capture_us: int) -> None:
        """A point: the media at ``timeline_us`` was captured at ``capture_us``.

        A point at a position already known replaces it.
        """
        points = self._points
        if not points or timeline_us > points[-1][0]:
            points.append((timeline_us, capture_us))
        else:
            i = bisect.bisect_left(points, (timeline_us,))
            if i < len(points) and points[i][0] == timeline_us:
                points[i] = (timeline_us, capture_us)
            else:
                points.insert(i, (timeline_us, capture_us))
        if len(points) > self._limit:
            del points[: len(points) - self._limit]

    def clear(self) -> None:
        """Forget every point (a new timeline after a jump to live)."""
        self._points.clear()

    def capture_at(self, position_us: int) -> int | None:
        """Capture time (UTC µs) of the media at ``position_us``, or ``None`` if unknown.

        Forgets the points before the latest one at or before ``position_us``
        (positions only move forward).
        """
        points = self._points
        i = bisect.bisect_right(points, (position_us, 2**63)) - 1
        if i < 0:
            return None
        if i > 0:
            del points[:i]
        timeline, capture = points[0]
        distance = position_us - timeline
        if distance > self._max_distance:
            return None
        return capture + distance


class MediaToTimeline:
    """Maps presentation times of one track (µs of media time) onto the session timeline.

    Each delivered chunk adds ``(first_pts_us, start_us)``: its first
    presentation time and its start on the timeline. A frame maps through the
    latest chunk that starts at or before it.
    """

    __slots__ = ("_anchors",)

    def __init__(self, *, limit: int = 256) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self._anchors: deque[tuple[int, int]] = deque(maxlen=limit)

    def add(self, first_pts_us: int, start_us: int) -> None:
        """A chunk whose first frame has presentation time ``first_pts_us`` starts at
        ``start_us`` on the timeline."""
        self._anchors.append((first_pts_us, start_us))

    def clear(self) -> None:
        """Forget every chunk (a new decoder: presentation times start afresh)."""
        self._anchors.clear()

    def to_timeline(self, pts_us: int) -> int | None:
        """The timeline position of the frame at ``pts_us``, or ``None`` before any chunk."""
        for first, start in reversed(self._anchors):
            if first <= pts_us:
                return start + (pts_us - first)
        return None
