"""Playback metrics: 100 ms samples and the ``play --metrics`` summary (pure).

The collector is told what happens (first request, first decoded frame,
latency observations from each source, rate changes) and is polled with the
buffer level, rate and rendition; it takes a sample every ``interval``
seconds of ``now``. :meth:`MetricsCollector.summary` builds the JSON object
of the design brief, with exactly these keys::

    protocol, startup_s, latency_p50_s, latency_p95_s, latency_source,
    stalls, stall_s, played_s, rate_changes, min_rate, max_rate,
    bytes, requests, connections, zero_rtt, samples

and one sample object per 100 ms with ``t``, ``latency_s``, ``buffer_s``,
``rate``, ``rendition`` and ``target_s`` (the latency controller's current
target, ``null`` before it is known).

Latency sources, in order of preference: ``pixels`` (the barcode read from
decoded frames: glass-to-glass), ``prft`` (the producer reference time box of
each CMAF chunk) and ``pdt`` (EXT-X-PROGRAM-DATE-TIME). Each sample takes the
most preferred source with a fresh observation; the percentiles use the most
preferred source present in any sample, over the samples of that source only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from player.transport.base import TransportStats

__all__ = [
    "LatencySource",
    "LATENCY_SOURCES",
    "SUMMARY_KEYS",
    "SAMPLE_KEYS",
    "MetricsSample",
    "TransportTotals",
    "PlayoutTotals",
    "MetricsCollector",
    "percentile",
]

logger = logging.getLogger(__name__)

LatencySource = Literal["pixels", "prft", "pdt"]
LATENCY_SOURCES: tuple[LatencySource, ...] = ("pixels", "prft", "pdt")
"""Latency sources, most preferred first."""

SUMMARY_KEYS: tuple[str, ...] = (
    "protocol",
    "startup_s",
    "latency_p50_s",
    "latency_p95_s",
    "latency_source",
    "stalls",
    "stall_s",
    "played_s",
    "rate_changes",
    "min_rate",
    "max_rate",
    "bytes",
    "requests",
    "connections",
    "zero_rtt",
    "samples",
)
"""The keys of the summary object, in output order."""

SAMPLE_KEYS: tuple[str, ...] = ("t", "latency_s", "buffer_s", "rate", "rendition", "target_s")
"""The keys of each sample object, in output order."""

_PLACES = 4
"""Decimals kept in the JSON floats (0.1 ms)."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, _PLACES)


@dataclass(frozen=True, slots=True)
class MetricsSample:
    """One 100 ms sample."""

    t: float
    """Seconds since the first request."""
    latency_s: float | None
    """Latency from the best fresh source; ``None`` when none is fresh."""
    source: LatencySource | None
    """Source of ``latency_s`` (not written to the JSON sample)."""
    buffer_s: float
    """Seconds buffered ahead of the play position."""
    rate: float
    """Playout rate."""
    rendition: str | None
    """The video (or only) rendition being played."""
    target_s: float | None = None
    """The latency controller's current target (``None`` before it is known)."""

    def __post_init__(self) -> None:
        if (self.latency_s is None) != (self.source is None):
            raise ValueError("latency_s and source are both set or both None")
        if self.buffer_s < 0:
            raise ValueError(f"buffer_s must be >= 0, got {self.buffer_s}")
        if not self.rate > 0:
            raise ValueError(f"rate must be positive, got {self.rate}")

    def to_json(self) -> dict[str, object]:
        """The sample object of the summary."""
        return {
            "t": _round(self.t),
            "latency_s": _round(self.latency_s),
            "buffer_s": _round(self.buffer_s),
            "rate": _round(self.rate),
            "rendition": self.rendition,
            "target_s": _round(self.target_s),
        }


@dataclass(frozen=True, slots=True)
class TransportTotals:
    """What the transport counted over the run."""

    bytes: int = 0
    """Response body bytes received."""
    requests: int = 0
    """Requests sent."""
    connections: int = 0
    """Connections opened."""
    zero_rtt: bool | None = None
    """h3: whether the server accepted 0-RTT early data on the latest connection;
    ``None`` (JSON null) for TCP transports."""

    def __post_init__(self) -> None:
        for name in ("bytes", "requests", "connections"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    @classmethod
    def from_stats(cls, stats: TransportStats) -> TransportTotals:
        """The totals of a fetcher's live :class:`~player.transport.base.TransportStats`."""
        return cls(
            bytes=stats.bytes_received,
            requests=stats.requests,
            connections=stats.connections,
            zero_rtt=stats.zero_rtt,
        )


@dataclass(frozen=True, slots=True)
class PlayoutTotals:
    """What the playout buffer counted over the run."""

    stalls: int = 0
    """Stalls after playback started."""
    stall_s: float = 0.0
    """Wall seconds spent stalled."""
    played_s: float = 0.0
    """Wall seconds spent playing."""

    def __post_init__(self) -> None:
        if self.stalls < 0 or self.stall_s < 0 or self.played_s < 0:
            raise ValueError("playout totals must be >= 0")

    def plus(self, stalls: int, stall_s: float, played_s: float) -> PlayoutTotals:
        """These totals with more added (e.g. a new buffer's after a jump to live)."""
        return PlayoutTotals(self.stalls + stalls, self.stall_s + stall_s, self.played_s + played_s)


class MetricsCollector:
    """Collects samples every ``interval`` seconds and builds the summary.

    ``max_age``: a latency observation older than this (seconds of ``now``)
    is no longer fresh enough for a sample.
    """

    def __init__(self, protocol: str, *, interval: float = 0.1, max_age: float = 1.0) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval}")
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        self.protocol = protocol
        self._interval = interval
        self._max_age = max_age
        self._origin: float | None = None
        self._first_frame: float | None = None
        self._next_due: float | None = None
        self._latest: dict[LatencySource, tuple[float, float]] = {}
        self._samples: list[MetricsSample] = []
        self._rate: float | None = None
        self._rate_changes = 0
        self._min_rate: float | None = None
        self._max_rate: float | None = None

    # -- inputs ------------------------------------------------------------------------------

    def on_first_request(self, now: float) -> None:
        """The first request went out: ``t = 0`` of the samples, start of ``startup_s``."""
        if self._origin is None:
            self._origin = now
            self._next_due = now

    def on_first_frame(self, now: float) -> None:
        """The first frame was decoded (only the first call counts)."""
        if self._first_frame is None:
            self._first_frame = now

    def observe_latency(self, source: LatencySource, latency_s: float, now: float) -> None:
        """A latency measurement from ``source`` made at ``now``."""
        if source not in LATENCY_SOURCES:
            raise ValueError(f"unknown latency source {source!r}")
        if not math.isfinite(latency_s):
            raise ValueError(f"latency must be finite, got {latency_s}")
        self._latest[source] = (now, latency_s)

    def on_rate(self, rate: float) -> None:
        """The playout rate is now ``rate`` (a change is counted when it differs)."""
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if self._rate is not None and not math.isclose(rate, self._rate, abs_tol=1e-9):
            self._rate_changes += 1
        self._rate = rate
        self._min_rate = rate if self._min_rate is None else min(self._min_rate, rate)
        self._max_rate = rate if self._max_rate is None else max(self._max_rate, rate)

    def poll(
        self,
        now: float,
        buffer_s: float,
        rate: float,
        rendition: str | None,
        target_s: float | None = None,
    ) -> bool:
        """Take a sample if one is due at ``now``; True when a sample was taken.

        Samples are due every ``interval`` from the first request; a late poll
        takes one sample and skips the missed slots (no invented values).
        """
        if self._origin is None or self._next_due is None or now < self._next_due:
            return False
        self.on_rate(rate)
        latency, source = self.current_latency(now)
        self._samples.append(
            MetricsSample(
                t=now - self._origin,
                latency_s=latency,
                source=source,
                buffer_s=max(0.0, buffer_s),
                rate=rate,
                rendition=rendition,
                target_s=target_s,
            )
        )
        missed = math.floor((now - self._next_due) / self._interval)
        self._next_due += (missed + 1) * self._interval
        return True

    # -- outputs -----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When the next sample is due (``None`` before the first request)."""
        return self._next_due

    def current_latency(self, now: float) -> tuple[float | None, LatencySource | None]:
        """The freshest latency from the most preferred source, with that source."""
        for source in LATENCY_SOURCES:
            seen = self._latest.get(source)
            if seen is not None and now - seen[0] <= self._max_age:
                return seen[1], source
        return None, None

    @property
    def samples(self) -> list[MetricsSample]:
        """Samples taken so far."""
        return list(self._samples)

    @property
    def startup_s(self) -> float | None:
        """First request to first decoded frame, if both happened."""
        if self._origin is None or self._first_frame is None:
            return None
        return self._first_frame - self._origin

    def latency_source(self) -> LatencySource | None:
        """The most preferred source present in any sample."""
        used = {s.source for s in self._samples}
        for source in LATENCY_SOURCES:
            if source in used:
                return source
        return None

    def summary(
        self,
        transport: TransportTotals | None = None,
        playout: PlayoutTotals | None = None,
    ) -> dict[str, object]:
        """The metrics summary object (JSON-serialisable, keys in :data:`SUMMARY_KEYS`)."""
        transport = transport or TransportTotals()
        playout = playout or PlayoutTotals()
        source = self.latency_source()
        values = [
            s.latency_s for s in self._samples if s.source == source and s.latency_s is not None
        ]
        p50 = percentile(values, 50) if values else None
        p95 = percentile(values, 95) if values else None
        result: dict[str, object] = {
            "protocol": self.protocol,
            "startup_s": _round(self.startup_s),
            "latency_p50_s": _round(p50),
            "latency_p95_s": _round(p95),
            "latency_source": source,
            "stalls": playout.stalls,
            "stall_s": _round(playout.stall_s),
            "played_s": _round(playout.played_s),
            "rate_changes": self._rate_changes,
            "min_rate": _round(self._min_rate if self._min_rate is not None else 1.0),
            "max_rate": _round(self._max_rate if self._max_rate is not None else 1.0),
            "bytes": transport.bytes,
            "requests": transport.requests,
            "connections": transport.connections,
            "zero_rtt": transport.zero_rtt,
            "samples": [s.to_json() for s in self._samples],
        }
        assert tuple(result) == SUMMARY_KEYS
        return result
