"""Network traces and the bottleneck link of the simulator (pure, deterministic).

Two trace formats drive a link's capacity:

* **throughput traces** (``../shared/traces/network``): one sample per line,
  ``time_s<TAB or space>Mbit/s``; each rate holds until the next sample, the
  last one for the median sample interval; the trace then repeats;
* **Mahimahi packet-delivery traces**: one integer millisecond timestamp per
  line, each one delivery opportunity for a 1500-byte packet (a timestamp may
  repeat); the trace repeats with a period of its last timestamp, as
  Mahimahi's link shell does.

Both become a cumulative capacity ``bytes_by(t)`` with its inverse
``time_of(c)``. A :class:`Link` is a FIFO bottleneck on that capacity: a
response entering at ``t`` starts when the ones before it are through,
occupies its bytes of capacity (whole packets on a packet trace; capacity
nobody uses is lost) and reaches the player half an RTT later. Loss (a
seeded, per-packet probability) costs the lost packets' capacity again and
one RTT for the retransmission.
"""

from __future__ import annotations

import bisect
import math
import random
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = [
    "PACKET_BYTES",
    "Capacity",
    "RateTrace",
    "PacketTrace",
    "ConstantRate",
    "load_trace",
    "Link",
    "Transfer",
]

PACKET_BYTES = 1500
"""Bytes per delivery opportunity of a Mahimahi trace (and per packet for loss)."""


class Capacity(Protocol):
    """Cumulative link capacity over time (repeating)."""

    name: str
    period_s: float
    mean_bps: float

    def bytes_by(self, t: float) -> float:
        """Bytes the link can have carried by ``t`` seconds (from the trace start)."""
        ...

    def time_of(self, c: float) -> float:
        """The first time at which ``bytes_by`` reaches ``c``."""
        ...

    def round_bytes(self, nbytes: int) -> int:
        """The capacity ``nbytes`` occupy (whole packets on packet traces)."""
        ...


class RateTrace:
    """Piecewise-constant throughput from ``(time_s, Mbit/s)`` samples, repeating."""

    def __init__(self, name: str, samples: Iterable[tuple[float, float]]) -> None:
        points = sorted(samples)
        if len(points) < 1:
            raise ValueError(f"{name}: a throughput trace needs samples")
        t0 = points[0][0]
        times = [t - t0 for t, _ in points]
        rates = [max(0.0, mbps) * 1e6 / 8 for _, mbps in points]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
        last = statistics.median(gaps) if gaps else 1.0
        self.name = name
        """Trace name (file name)."""
        self._bounds = times + [times[-1] + last]
        self._rates = rates
        cum = [0.0]
        for i, r in enumerate(rates):
            cum.append(cum[-1] + r * (self._bounds[i + 1] - self._bounds[i]))
        self._cum = cum
        self.period_s = self._bounds[-1]
        """Seconds after which the trace repeats."""
        self._total = cum[-1]
        if not self._total > 0 or not self.period_s > 0:
            raise ValueError(f"{name}: the trace carries nothing")
        self.mean_bps = self._total * 8 / self.period_s
        """Mean throughput, bit/s."""

    def bytes_by(self, t: float) -> float:
        if t <= 0:
            return 0.0
        k, tau = divmod(t, self.period_s)
        i = bisect.bisect_right(self._bounds, tau) - 1
        i = min(i, len(self._rates) - 1)
        return k * self._total + self._cum[i] + self._rates[i] * (tau - self._bounds[i])

    def time_of(self, c: float) -> float:
        if c <= 0:
            return 0.0
        k = math.floor(c / self._total)
        rest = c - k * self._total
        if rest <= 0:
            k -= 1
            rest = self._total
        i = bisect.bisect_left(self._cum, rest)
        if self._cum[i] == rest:
            # reached exactly at a bound: the start of the flat stretch before it, if any
            while i > 0 and self._rates[i - 1] == 0:
                i -= 1
            return k * self.period_s + self._bounds[i]
        return (
            k * self.period_s + self._bounds[i - 1] + (rest - self._cum[i - 1]) / self._rates[i - 1]
        )

    def round_bytes(self, nbytes: int) -> int:
        return nbytes


class ConstantRate(RateTrace):
    """A constant throughput (bit/s)."""

    def __init__(self, bps: float, name: str | None = None) -> None:
        super().__init__(
            name or f"constant-{bps / 1e6:g}Mbps", [(0.0, bps / 1e6), (1.0, bps / 1e6)]
        )


class PacketTrace:
    """Mahimahi delivery opportunities (ms timestamps, one 1500-byte packet each)."""

    def __init__(self, name: str, stamps_ms: Iterable[int]) -> None:
        stamps = sorted(int(s) for s in stamps_ms)
        if not stamps or stamps[-1] <= 0:
            raise ValueError(f"{name}: a Mahimahi trace needs a positive last timestamp")
        if stamps[0] < 0:
            raise ValueError(f"{name}: negative timestamp")
        self.name = name
        """Trace name (file name)."""
        self._times = [s / 1000 for s in stamps]
        self.period_s = stamps[-1] / 1000
        """Seconds after which the trace repeats (its last timestamp)."""
        self.mean_bps = len(stamps) * PACKET_BYTES * 8 / self.period_s
        """Mean throughput, bit/s."""

    def bytes_by(self, t: float) -> float:
        if t < 0:
            return 0.0
        k, tau = divmod(t, self.period_s)
        n = len(self._times)
        return (k * n + bisect.bisect_right(self._times, tau)) * PACKET_BYTES

    def time_of(self, c: float) -> float:
        if c <= 0:
            return 0.0
        index = math.ceil(c / PACKET_BYTES - 1e-9) - 1  # 0-based opportunity
        k, j = divmod(index, len(self._times))
        return k * self.period_s + self._times[j]

    def round_bytes(self, nbytes: int) -> int:
        return math.ceil(nbytes / PACKET_BYTES) * PACKET_BYTES


def load_trace(path: Path) -> Capacity:
    """A throughput trace (two columns) or a Mahimahi trace (one integer column)."""
    rows = [line.split() for line in path.read_text(encoding="ascii").splitlines()]
    rows = [r for r in rows if r and not r[0].startswith("#")]
    if not rows:
        raise ValueError(f"{path}: empty trace")
    if all(len(r) == 1 for r in rows):
        return PacketTrace(path.name, (int(r[0]) for r in rows))
    if all(len(r) >= 2 for r in rows):
        return RateTrace(path.name, ((float(r[0]), float(r[1])) for r in rows))
    raise ValueError(f"{path}: neither a throughput nor a Mahimahi trace")


@dataclass(frozen=True, slots=True)
class Transfer:
    """One response through a :class:`Link`."""

    first_byte: float
    """When its first byte left the bottleneck queue (sim seconds)."""
    last_byte: float
    """When its last byte passed the bottleneck."""
    arrival: float
    """When the player has it all (propagation and retransmission included)."""
    lost: int
    """Packets lost (and sent again)."""


class Link:
    """A FIFO bottleneck on ``capacity`` from sim time ``start`` (+ ``offset_s`` into the trace)."""

    def __init__(
        self,
        capacity: Capacity,
        rtt_s: float,
        *,
        loss: float = 0.0,
        seed: int = 0,
        start: float = 0.0,
        offset_s: float = 0.0,
    ) -> None:
        if rtt_s < 0:
            raise ValueError(f"rtt must be >= 0, got {rtt_s}")
        if not 0 <= loss < 1:
            raise ValueError(f"loss must be in [0, 1), got {loss}")
        self.capacity = capacity
        """The trace."""
        self.rtt_s = rtt_s
        """Round-trip propagation delay."""
        self.loss = loss
        """Per-packet loss probability."""
        self._rng = random.Random(seed)
        self._shift = offset_s - start
        self._used = 0.0
        self.bytes = 0
        """Bytes carried (lost ones not counted)."""

    def send(self, t: float, nbytes: int) -> Transfer:
        """Queue a response of ``nbytes`` at sim time ``t``; when it arrives."""
        cap = self.capacity
        local = t + self._shift
        available = cap.bytes_by(local)
        start_c = max(self._used, available)
        first = t if start_c <= available else cap.time_of(start_c) - self._shift
        lost = 0
        if self.loss > 0:
            packets = math.ceil(nbytes / PACKET_BYTES)
            lost = sum(1 for _ in range(packets) if self._rng.random() < self.loss)
        end_c = start_c + cap.round_bytes(nbytes + lost * PACKET_BYTES)
        self._used = end_c
        last = max(first, cap.time_of(end_c) - self._shift)
        self.bytes += nbytes
        arrival = last + self.rtt_s / 2 + (self.rtt_s if lost else 0.0)
        return Transfer(first, last, arrival, lost)
