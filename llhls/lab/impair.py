"""Network impairment, as a pure model: one direction of a link, on a clock you pass in.

No sockets, no clock, no asyncio: :class:`Link` takes ``now`` (float seconds on
any monotonic clock) as an argument, the way aioquic's ``QuicConnection`` does.
``llhls/lab/relay.py`` pumps real UDP datagrams and TCP bytes through it; a
simulator can pump virtual packets through the same object.

The path of a packet through one direction::

    enqueue(packet, size, now)
      -> window      TCP only: waits until the congestion window lets it go
      -> loss        Bernoulli (``loss``) or Gilbert-Elliott (``burst``), per packet
      -> bottleneck  FIFO server with a rate (fixed, throughput trace or Mahimahi
                     delivery trace) and a drop-tail queue limited in *time*
                     (``queue_ms``); finish time computed at once
      -> delay       fixed ``delay_ms`` plus uniform jitter in [-jitter, +jitter]
      -> order       a packet never leaves before the one enqueued before it
    pop_due(now) -> packets whose departure time has come

Choices, stated once:

* **Jitter never reorders.** A packet's departure is at least its
  predecessor's (as netem does when it also shapes rate). TCP byte streams
  must not be reordered anyway; for UDP it keeps QUIC's loss detection honest.
  In dense flows (packets closer than 2 x jitter) the clamp raises the mean
  delay towards ``delay + jitter``.
* **Rates count payload bytes** (the UDP payload or TCP bytes the relay sees),
  not IP/UDP/TCP headers: ``--rate-mbps 8`` carries 8 Mbit/s of goodput. A
  real 8 Mbit/s wire carries about 3-4 % less. A bottleneck wastes capacity
  while idle (no credit is saved up).
* **The queue limit is in time**: a packet is dropped when it would wait more
  than ``queue_ms`` before its transmission starts; a packet that finds the
  queue empty is always accepted. So the worst queueing delay is the same at
  any rate, also while a trace's rate changes.
* **Gilbert-Elliott** burst loss: two states, Good and Bad. A packet is lost
  with probability ``loss`` in Good and ``loss_bad`` (default 1) in Bad;
  after each packet the state flips Good->Bad with probability ``p_gb`` and
  Bad->Good with ``p_bg``. Stationary share of Bad: ``p_gb / (p_gb + p_bg)``;
  mean Bad run: ``1 / p_bg`` packets; mean loss: see
  :meth:`GilbertElliott.mean_loss`. The chain also moves on while no packet
  passes: one step per ``slot_ms`` (default 1 ms, one 1500-byte packet at
  12 Mbit/s) of idle time beyond the first. A burst is thus a short stretch
  of *time*, as on a real link: a sparse flow (a QUIC probe sent 1 s after the
  packets lost before it) meets the stationary loss rate, not the rest of a
  burst that began a second earlier. Without this, a burst of 4 packets could
  swallow a lost tail and the next three loss probes, seconds apart.
* **TCP (``stream=True``) loses no bytes.** A relay between two TCP sockets
  cannot drop bytes without corrupting the stream; a segment-sized chunk
  (:data:`TCP_SEGMENT` bytes, the relay cuts the stream so) that draws "lost"
  is delivered late by ``tcp_loss_penalty_ms`` instead: the time a real TCP
  needs to detect and repair the loss (fast retransmit / RACK: about 1.25
  RTT), and everything behind it waits too (head-of-line blocking, as in real
  TCP). The default penalty is 1.25 x the round trip (``rtt_ms``; by default
  2 x ``delay_ms``, the relay passes the real sum of both directions), at
  least 1 ms.
* **The TCP sender's congestion window is modelled** (``tcp_cc="reno"``, the
  default; ``"none"`` switches it off and gives the old behaviour exactly).
  The relay terminates TCP, so the real sender sees a loopback path and never
  slows down; instead each stream link paces its chunks as a Reno sender on
  the emulated path would (:class:`RenoSender`, one per connection and
  direction):

  - the window starts at :data:`TCP_INITIAL_WINDOW` segments (RFC 6928, 10 x
    1448 bytes); slow start adds one segment per acknowledged segment (it
    doubles per round trip; one ACK per segment, no delayed ACKs) up to
    ``ssthresh`` (initially unlimited); congestion avoidance then adds one
    segment per round trip (Reno, RFC 5681 eq. 3; not CUBIC);
  - a chunk enters the path (loss draw, bottleneck, delay) only while the
    bytes in flight (sent, not yet acknowledged) stay within ``cwnd``; the
    rest waits in the link's send buffer (:attr:`Link.unsent_bytes`). A
    chunk is acknowledged when it arrives plus the return half of the round
    trip (``rtt_ms - delay_ms``), each on its own (SACK: a late chunk holds
    one slot of the window, not the whole window);
  - a "lost" chunk is seen by the sender one round trip after it was sent
    (when the next chunks are acknowledged): ``cwnd`` and ``ssthresh`` halve
    (at least 2 segments), at most once per window (NewReno: losses among
    chunks sent before the cut do not cut again, and acknowledgements of them
    do not grow the window). It is delivered late as above and acknowledged
    only then. Its retransmission does not take bottleneck capacity;
  - with a rate, a chunk that would wait more than ``queue_ms`` in the
    bottleneck counts as lost in the same way (drop-tail; ``queue_drops``
    counts them, ``penalized`` the random ones), so the window saw-tooths
    against the queue as a real one does;
  - idle restart (RFC 5681 4.1, RFC 2861): a chunk sent with nothing in
    flight more than one RTO after the previous send restarts from the
    initial window (``ssthresh`` keeps at least 3/4 of the old window). The
    RTO is ``max(1 s, 2 x RTT)`` (RFC 6298's minimum; Linux restarts sooner,
    after about RTT + 200 ms). HLS fetches are bursty, so this matters.

  Without ``rtt_ms`` the round trip is 2 x ``delay_ms``. Steady throughput
  under random loss p follows Mathis et al.: ``MSS / RTT x 1.22 / sqrt(p)``.
  In stream mode the queue never drops bytes: the adapter stops reading from
  the socket while :meth:`Link.backlog` exceeds ``queue_ms`` or the send
  buffer holds more than a window (backpressure through the TCP window).

Rate schedules (``LinkConfig.rate``), all pure and looping forever:

* :class:`ConstantRate` - fixed Mbit/s.
* :class:`ThroughputTrace` - the shared traces' format (``time_s<TAB>Mbit/s``
  per line). Sample i holds from its time to the next sample's; the last
  sample holds for the median sample interval (as the simulator's
  ``llhls/lab/traces.py`` does); then the trace starts again.
* :class:`DeliveryTrace` - Mahimahi: one integer millisecond per line, each a
  chance to deliver 1500 bytes; several lines with the same time are several
  chances. It loops with period = the last timestamp. A packet may use what a
  previous packet left of an opportunity; an opportunity nobody waits for is
  lost (Mahimahi's semantics).
"""

from __future__ import annotations

import bisect
import math
import random
import statistics
from collections import deque
from dataclasses import dataclass, field, replace
from heapq import heappop, heappush
from typing import Generic, Literal, TypeVar, get_args

from llhls.errors import ConfigError

__all__ = [
    "TCP_SEGMENT",
    "TCP_INITIAL_WINDOW",
    "TCP_MIN_RTO_S",
    "TcpCc",
    "DELIVERY_BYTES",
    "ConstantRate",
    "ThroughputTrace",
    "DeliveryTrace",
    "RateSchedule",
    "GilbertElliott",
    "LinkConfig",
    "LinkStats",
    "Bottleneck",
    "Link",
    "RenoSender",
    "parse_trace",
]

TCP_SEGMENT = 1448
"""Bytes per TCP segment the relay models (1500 MTU - IPv4 - TCP with timestamps)."""

TCP_INITIAL_WINDOW = 10
"""Initial congestion window of the modelled TCP sender, in segments (RFC 6928)."""

TCP_MIN_RTO_S = 1.0
"""Lower bound of the RTO that decides an idle restart (RFC 6298); the RTO is
``max(TCP_MIN_RTO_S, 2 x RTT)``."""

TcpCc = Literal["none", "reno"]
"""Congestion control of the modelled TCP sender: none (rates only) or Reno."""

DELIVERY_BYTES = 1500
"""Bytes one Mahimahi delivery opportunity carries."""

_BYTES_PER_MBIT = 125_000.0

_LEVEL_EPS = 1e-3
"""Bytes of float rounding tolerated when deciding whether a bottleneck is idle."""


def _finite(name: str, value: float, *, low: float = 0.0, high: float = math.inf) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        bound = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
        raise ConfigError(f"{name} must be a number {bound}, got {value!r}")


@dataclass(frozen=True, slots=True)
class ConstantRate:
    """A fixed rate."""

    mbps: float
    """Megabits (10^6 bits) per second of payload; positive."""
    _bps: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mbps) and self.mbps > 0):
            raise ConfigError(f"rate must be a positive number of Mbit/s, got {self.mbps!r}")
        object.__setattr__(self, "_bps", self.mbps * _BYTES_PER_MBIT)

    def level_at(self, t: float) -> float:
        """Bytes the link can carry in [0, t)."""
        return t * self._bps

    def time_at(self, level: float) -> float:
        """Earliest t at which :meth:`level_at` reaches ``level``."""
        return level / self._bps

    def describe(self) -> str:
        """Short text for logs."""
        return f"{self.mbps:g} Mbit/s"


@dataclass(frozen=True, slots=True)
class ThroughputTrace:
    """Piecewise-constant rate from a ``time_s<TAB>Mbit/s`` trace, looping."""

    times_s: tuple[float, ...]
    """Start of each sample in seconds: first 0, strictly increasing. The last sample
    holds for the median interval (1 s if there is one sample)."""
    mbps: tuple[float, ...]
    """Rate of each sample in Mbit/s; >= 0, at least one > 0."""
    name: str = "trace"
    """Where the trace came from (for logs)."""
    _period: float = field(init=False, repr=False, compare=False)
    _bps: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _cum: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.times_s)
        if n == 0 or n != len(self.mbps):
            raise ConfigError(f"{self.name}: a throughput trace needs samples")
        if self.times_s[0] != 0:
            raise ConfigError(f"{self.name}: the first sample must be at time 0")
        for a, b in zip(self.times_s, self.times_s[1:], strict=False):
            if not (math.isfinite(b) and b > a):
                raise ConfigError(f"{self.name}: sample times must increase ({a!r} then {b!r})")
        for value in self.mbps:
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{self.name}: rates must be >= 0 Mbit/s, got {value!r}")
        if max(self.mbps) <= 0:
            raise ConfigError(f"{self.name}: every rate is 0: nothing could ever pass")
        gaps = [b - a for a, b in zip(self.times_s, self.times_s[1:], strict=False)]
        period = self.times_s[-1] + (statistics.median(gaps) if gaps else 1.0)
        bps = tuple(v * _BYTES_PER_MBIT for v in self.mbps)
        ends = (*self.times_s[1:], period)
        cum = [0.0]
        for start, end, rate in zip(self.times_s, ends, bps, strict=True):
            cum.append(cum[-1] + (end - start) * rate)
        object.__setattr__(self, "_period", period)
        object.__setattr__(self, "_bps", bps)
        object.__setattr__(self, "_cum", tuple(cum))

    @property
    def period_s(self) -> float:
        """Length of one loop of the trace in seconds."""
        return self._period

    def mean_mbps(self) -> float:
        """Time-weighted mean rate over one loop."""
        return self._cum[-1] / self._period / _BYTES_PER_MBIT

    def mbps_at(self, t: float) -> float:
        """The trace's rate at time t (looped)."""
        rem = max(t, 0.0) % self._period
        return self.mbps[bisect.bisect_right(self.times_s, rem) - 1]

    def level_at(self, t: float) -> float:
        """Bytes the link can carry in [0, t)."""
        k, rem = divmod(max(t, 0.0), self._period)
        i = bisect.bisect_right(self.times_s, rem) - 1
        return k * self._cum[-1] + self._cum[i] + (rem - self.times_s[i]) * self._bps[i]

    def time_at(self, level: float) -> float:
        """Earliest t at which :meth:`level_at` reaches ``level``."""
        if level <= 0:
            return 0.0
        capacity = self._cum[-1]
        k, rem = divmod(level, capacity)
        tol = capacity * 1e-12  # float rounding must not push a level past a silence
        if rem <= tol:  # a whole number of loops: reached at the end of the previous one
            k -= 1
            rem = capacity
        i = bisect.bisect_left(self._cum, rem - tol) - 1  # cum[i] < rem <= ~cum[i+1]
        return k * self._period + self.times_s[i] + (rem - self._cum[i]) / self._bps[i]

    def describe(self) -> str:
        """Short text for logs."""
        return f"trace {self.name} (mean {self.mean_mbps():.3g} Mbit/s, loop {self._period:g} s)"


@dataclass(frozen=True, slots=True)
class DeliveryTrace:
    """Mahimahi packet-delivery trace: 1500-byte opportunities at integer ms, looping."""

    ms: tuple[int, ...]
    """Opportunity times in ms: >= 0, non-decreasing, the last > 0 (the loop period)."""
    name: str = "trace"
    """Where the trace came from (for logs)."""

    def __post_init__(self) -> None:
        if not self.ms:
            raise ConfigError(f"{self.name}: a delivery trace needs at least one line")
        if self.ms[0] < 0 or any(b < a for a, b in zip(self.ms, self.ms[1:], strict=False)):
            raise ConfigError(f"{self.name}: delivery times must be >= 0 and non-decreasing")
        if self.ms[-1] <= 0:
            raise ConfigError(f"{self.name}: the last delivery time (the loop period) must be > 0")

    @property
    def period_s(self) -> float:
        """Length of one loop in seconds (the last timestamp)."""
        return self.ms[-1] / 1000

    def mean_mbps(self) -> float:
        """Mean rate over one loop."""
        return len(self.ms) * DELIVERY_BYTES / self.period_s / _BYTES_PER_MBIT

    def level_at(self, t: float) -> float:
        """Bytes of the opportunities strictly before t."""
        period = self.ms[-1]
        k, rem = divmod(max(t, 0.0) * 1000.0, period)
        return float((int(k) * len(self.ms) + bisect.bisect_left(self.ms, rem)) * DELIVERY_BYTES)

    def time_at(self, level: float) -> float:
        """Time of the opportunity that carries byte number ``level``."""
        n = math.ceil(level / DELIVERY_BYTES)
        if n <= 0:
            return 0.0
        k, i = divmod(n - 1, len(self.ms))
        return (k * self.ms[-1] + self.ms[i]) / 1000

    def describe(self) -> str:
        """Short text for logs."""
        return (
            f"mahimahi trace {self.name} (mean {self.mean_mbps():.3g} Mbit/s, "
            f"loop {self.period_s:g} s)"
        )


RateSchedule = ConstantRate | ThroughputTrace | DeliveryTrace
"""How fast a bottleneck serves, over time."""


def parse_trace(text: str, name: str = "trace") -> ThroughputTrace | DeliveryTrace:
    """Parse a trace file's text; the format is recognised from its lines.

    Two numbers per line (``time_s`` and ``Mbit/s``, separated by blanks or a
    TAB) make a :class:`ThroughputTrace`; times are shifted so that the first is
    0. One integer per line makes a Mahimahi :class:`DeliveryTrace`. Blank
    lines and ``#`` comments are skipped. Raises :class:`ConfigError` naming the
    line on anything else.
    """
    rows: list[tuple[int, list[str]]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            rows.append((number, line.split()))
    if not rows:
        raise ConfigError(f"{name}: empty trace")
    width = len(rows[0][1])
    if width not in (1, 2):
        raise ConfigError(
            f"{name}: line {rows[0][0]}: expected 'time_s Mbit/s' or one integer ms "
            f"(Mahimahi), got {len(rows[0][1])} fields"
        )
    if width == 1:
        ms: list[int] = []
        for number, fields in rows:
            if len(fields) != 1 or not fields[0].isdigit():
                raise ConfigError(f"{name}: line {number}: expected one integer (ms)")
            ms.append(int(fields[0]))
        return DeliveryTrace(tuple(ms), name=name)
    times: list[float] = []
    rates: list[float] = []
    for number, fields in rows:
        try:
            if len(fields) != 2:
                raise ValueError
            t, r = float(fields[0]), float(fields[1])
        except ValueError:
            raise ConfigError(f"{name}: line {number}: expected 'time_s Mbit/s'") from None
        if times and not t > times[-1]:
            raise ConfigError(f"{name}: line {number}: time {t:g} does not increase")
        times.append(t)
        rates.append(r)
    origin = times[0]
    return ThroughputTrace(tuple(t - origin for t in times), tuple(rates), name=name)


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Burst loss: a two-state (Good/Bad) Markov chain stepped once per packet."""

    p_gb: float
    """Probability of moving Good -> Bad after a packet; in (0, 1]."""
    p_bg: float
    """Probability of moving Bad -> Good after a packet; in (0, 1]."""
    loss_bad: float = 1.0
    """Loss probability of a packet sent in the Bad state; in [0, 1]."""
    slot_ms: float = 1.0
    """Idle time per extra step of the chain (see the module notes); 0: it steps only
    per packet, however far apart the packets are."""

    def __post_init__(self) -> None:
        _finite("burst loss P_GB", self.p_gb, high=1.0)
        _finite("burst loss P_BG", self.p_bg, high=1.0)
        _finite("burst loss LOSS_BAD", self.loss_bad, high=1.0)
        _finite("burst loss slot (ms)", self.slot_ms)
        if self.p_gb <= 0 or self.p_bg <= 0:
            raise ConfigError("burst loss P_GB and P_BG must be > 0")

    def bad_after(self, bad: bool, steps: int) -> float:
        """Probability of the Bad state ``steps`` steps after ``bad`` (closed form)."""
        share = self.bad_share
        return share + ((1.0 if bad else 0.0) - share) * (1.0 - self.p_gb - self.p_bg) ** steps

    @classmethod
    def from_mean(cls, loss: float, burst_packets: float) -> GilbertElliott:
        """Parameters for a mean loss rate and a mean run of lost packets (loss_bad = 1)."""
        _finite("mean loss", loss, high=0.999)
        if not (math.isfinite(burst_packets) and burst_packets >= 1):
            raise ConfigError(f"mean burst must be >= 1 packet, got {burst_packets!r}")
        p_bg = 1.0 / burst_packets
        return cls(p_gb=loss * p_bg / (1.0 - loss), p_bg=p_bg)

    @classmethod
    def parse(cls, text: str) -> GilbertElliott:
        """``P_GB,P_BG[,LOSS_BAD]`` as on the command line."""
        parts = text.split(",")
        try:
            if len(parts) not in (2, 3):
                raise ValueError
            values = [float(p) for p in parts]
        except ValueError:
            raise ConfigError(
                f"--burst-loss wants P_GB,P_BG[,LOSS_BAD] (e.g. 0.01,0.3), got {text!r}"
            ) from None
        return cls(*values)

    @property
    def bad_share(self) -> float:
        """Stationary probability of the Bad state."""
        return self.p_gb / (self.p_gb + self.p_bg)

    def mean_loss(self, loss_good: float = 0.0) -> float:
        """Long-run fraction of packets lost, with ``loss_good`` in the Good state."""
        bad = self.bad_share
        return bad * self.loss_bad + (1.0 - bad) * loss_good


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Impairments of one direction of a link."""

    delay_ms: float = 0.0
    """One-way delay added to every packet, ms (a relay adds it in each direction)."""
    jitter_ms: float = 0.0
    """Each packet's delay is ``delay_ms`` + uniform(-jitter, +jitter), at least 0."""
    loss: float = 0.0
    """Probability that a packet is lost (in the Good state when ``burst`` is set)."""
    burst: GilbertElliott | None = None
    """Gilbert-Elliott burst loss; None: independent losses only."""
    rate: RateSchedule | None = None
    """Bottleneck rate; None: no rate limit (and no queue)."""
    queue_ms: float = 200.0
    """Drop-tail limit: the longest a packet may wait for the bottleneck, ms."""
    tcp_loss_penalty_ms: float | None = None
    """Extra delay of a 'lost' TCP chunk; None: 1.25 x the round trip, >= 1 ms."""
    tcp_cc: TcpCc = "reno"
    """Congestion window of the modelled TCP sender (stream mode only): ``"reno"``
    (slow start, AIMD, idle restart) or ``"none"`` (rates alone bound the sender)."""
    rtt_ms: float | None = None
    """Round trip of the path (both directions' delays), for the TCP model; None:
    2 x ``delay_ms``. :meth:`with_rtt` sets it."""

    def __post_init__(self) -> None:
        _finite("delay (ms)", self.delay_ms)
        _finite("jitter (ms)", self.jitter_ms)
        _finite("loss", self.loss, high=1.0)
        _finite("queue (ms)", self.queue_ms)
        if self.tcp_loss_penalty_ms is not None:
            _finite("TCP loss penalty (ms)", self.tcp_loss_penalty_ms)
        if self.rtt_ms is not None:
            _finite("round trip (ms)", self.rtt_ms)
        if self.tcp_cc not in get_args(TcpCc):
            choices = ", ".join(get_args(TcpCc))
            raise ConfigError(f"TCP congestion control must be one of {choices}: {self.tcp_cc!r}")

    @property
    def lossy(self) -> bool:
        """Whether any packet can be lost."""
        return self.loss > 0 or self.burst is not None

    @property
    def transparent(self) -> bool:
        """No impairment at all: adapters may bypass the model."""
        return not (self.delay_ms or self.jitter_ms or self.lossy or self.rate is not None)

    def round_trip_ms(self) -> float:
        """The round trip the TCP model assumes (see ``rtt_ms``)."""
        return self.rtt_ms if self.rtt_ms is not None else 2.0 * self.delay_ms

    def penalty_ms(self) -> float:
        """The TCP loss penalty in effect (see ``tcp_loss_penalty_ms``)."""
        if self.tcp_loss_penalty_ms is not None:
            return self.tcp_loss_penalty_ms
        return max(1.0, 1.25 * self.round_trip_ms())

    def with_rtt(self, rtt_ms: float) -> LinkConfig:
        """This config with a known round trip (unless ``rtt_ms`` is set already): the
        default TCP penalty and the TCP model's return path follow from it."""
        if self.rtt_ms is not None:
            return self
        return replace(self, rtt_ms=rtt_ms)

    def describe(self) -> str:
        """Short text for logs, e.g. ``delay 25 ms, loss 1 %, 8 Mbit/s``."""
        parts = []
        if self.delay_ms or self.jitter_ms:
            jitter = f" +-{self.jitter_ms:g}" if self.jitter_ms else ""
            parts.append(f"delay {self.delay_ms:g}{jitter} ms")
        if self.burst is not None:
            b = self.burst
            parts.append(
                f"burst loss p_gb={b.p_gb:g} p_bg={b.p_bg:g} loss_bad={b.loss_bad:g} "
                f"(mean {100 * b.mean_loss(self.loss):.3g} %)"
            )
        elif self.loss:
            parts.append(f"loss {100 * self.loss:g} %")
        if self.rate is not None:
            parts.append(f"{self.rate.describe()}, queue {self.queue_ms:g} ms")
        if parts and self.tcp_cc == "none":
            parts.append("no TCP congestion window")
        return ", ".join(parts) or "no impairment"


@dataclass(slots=True)
class LinkStats:
    """Counters of one link (or of all links of one direction, when shared)."""

    packets: int = 0
    """Packets (TCP: chunks) offered."""
    bytes: int = 0
    """Bytes offered."""
    lost: int = 0
    """Packets dropped by the loss model (never in stream mode)."""
    queue_drops: int = 0
    """Packets dropped because the queue was full; in stream mode with a congestion
    window: chunks that found it full and were delivered late instead."""
    penalized: int = 0
    """Stream chunks that drew 'lost' and were delivered late instead."""
    cwnd_cuts: int = 0
    """Times a modelled TCP sender halved its congestion window."""
    idle_restarts: int = 0
    """Times a modelled TCP sender restarted from the initial window after idling."""


class Bottleneck:
    """A FIFO server with a rate schedule and a drop-tail queue limited in time.

    It can be shared by several :class:`Link` objects (all flows of one
    direction of a relay share one bottleneck, as on a real access link).
    Time 0 of the rate schedule is ``start``.
    """

    __slots__ = ("rate", "queue_s", "start", "_level")

    def __init__(self, rate: RateSchedule | None, queue_ms: float, start: float = 0.0) -> None:
        self.rate = rate
        """The schedule; None serves everything at once."""
        self.queue_s = queue_ms / 1000
        """The queue limit in seconds."""
        self.start = start
        """Clock time at which the schedule's time 0 falls."""
        self._level = 0.0

    def admit(self, size: int, now: float, force: bool = False) -> float | None:
        """Queue ``size`` bytes arriving at ``now``: the time their transmission ends.

        None if the packet is dropped (queue full); ``force`` never drops.
        """
        rate = self.rate
        if rate is None:
            return now
        t = now - self.start
        idle = rate.level_at(t)
        if self._level <= idle + _LEVEL_EPS:
            begin = idle
        else:
            if not force and rate.time_at(self._level) - t > self.queue_s:
                return None
            begin = self._level
        self._level = begin + size
        return self.start + rate.time_at(self._level)

    def backlog(self, now: float) -> float:
        """Seconds a packet arriving at ``now`` would wait before its transmission."""
        rate = self.rate
        if rate is None:
            return 0.0
        t = now - self.start
        if self._level <= rate.level_at(t) + _LEVEL_EPS:
            return 0.0
        return max(0.0, rate.time_at(self._level) - t)

    def drain_time(self, backlog_s: float) -> float:
        """When the backlog falls to ``backlog_s`` if nothing more arrives."""
        if self.rate is None:
            return -math.inf
        return self.start + self.rate.time_at(self._level) - backlog_s


_ACKED = 1
_LOSS_SEEN = 0  # sorts before an ack at the same time


class RenoSender:
    """The congestion window of one modelled TCP sender: pure bookkeeping, no clock.

    Byte-counted Reno (RFC 5681) with NewReno's one cut per window and SACK-style
    accounting of the bytes in flight; see the module notes. :class:`Link` drives
    it: :meth:`can_send` before sending a chunk, :meth:`on_send` when it does
    (with the chunk's acknowledgement time, known at once in the model), and
    :meth:`on_event` for each acknowledgement or loss signal, in time order.
    """

    __slots__ = (
        "mss",
        "initial",
        "rto",
        "cwnd",
        "ssthresh",
        "in_flight",
        "recover",
        "sent",
        "cuts",
        "restarts",
        "last_send",
        "_events",
    )

    def __init__(
        self, rtt: float, mss: int = TCP_SEGMENT, initial_segments: int = TCP_INITIAL_WINDOW
    ) -> None:
        self.mss = mss
        """Segment size in bytes (the unit of window growth)."""
        self.initial = float(initial_segments * mss)
        """Initial window in bytes."""
        self.rto = max(TCP_MIN_RTO_S, 2.0 * rtt)
        """Idle time (s) after which the window restarts from :attr:`initial`."""
        self.cwnd = self.initial
        """Congestion window in bytes."""
        self.ssthresh = math.inf
        """Slow-start threshold in bytes."""
        self.in_flight = 0
        """Bytes sent and not yet acknowledged."""
        self.recover = -1
        """Number of the last chunk sent before the latest cut (NewReno's recovery point)."""
        self.sent = 0
        """Chunks sent so far (the next chunk's number)."""
        self.cuts = 0
        """Window reductions so far."""
        self.restarts = 0
        """Idle restarts so far."""
        self.last_send = -math.inf
        """Time of the latest send."""
        self._events: list[tuple[float, int, int, int]] = []  # (time, kind, number, size)

    @property
    def slow_start(self) -> bool:
        """Whether the window grows exponentially (below ``ssthresh``)."""
        return self.cwnd < self.ssthresh

    def can_send(self, size: int) -> bool:
        """Whether a chunk of ``size`` bytes fits in the window now (an empty pipe
        always lets one chunk go)."""
        return self.in_flight == 0 or self.in_flight + size <= self.cwnd + _LEVEL_EPS

    def on_send(self, size: int, now: float, acked_at: float, loss_seen_at: float | None) -> int:
        """Account a chunk sent at ``now``, acknowledged at ``acked_at``; a lost one is
        noticed at ``loss_seen_at``. Returns the chunk's number."""
        if self.in_flight == 0 and self.sent and now - self.last_send > self.rto:
            self.restart()
        number = self.sent
        self.sent += 1
        self.in_flight += size
        self.last_send = now
        heappush(self._events, (acked_at, _ACKED, number, size))
        if loss_seen_at is not None:
            heappush(self._events, (loss_seen_at, _LOSS_SEEN, number, size))
        return number

    def restart(self) -> None:
        """Idle restart: back to the initial window (RFC 5681 4.1), remembering 3/4 of
        the old one in ``ssthresh`` (RFC 2861)."""
        if self.cwnd > self.initial:
            self.ssthresh = max(self.ssthresh, 0.75 * self.cwnd)
            self.cwnd = self.initial
            self.restarts += 1

    def next_event(self) -> float | None:
        """Time of the next acknowledgement or loss signal; None if nothing is in flight."""
        return self._events[0][0] if self._events else None

    def on_event(self) -> float:
        """Apply the next event (see :meth:`next_event`); returns its time."""
        when, kind, number, size = heappop(self._events)
        if kind == _LOSS_SEEN:
            if number > self.recover:
                self.ssthresh = max(self.cwnd / 2.0, 2.0 * self.mss)
                self.cwnd = self.ssthresh
                self.recover = self.sent - 1
                self.cuts += 1
            return when
        self.in_flight -= size
        if number > self.recover:
            if self.cwnd < self.ssthresh:
                self.cwnd = min(self.cwnd + min(size, self.mss), self.ssthresh)
            else:
                self.cwnd += self.mss * size / self.cwnd
        return when


P = TypeVar("P")


class Link(Generic[P]):
    """One direction of one flow: loss, shared bottleneck, delay, jitter; in order.

    ``seed`` (an int or a string) makes every random draw repeatable. With
    ``stream=True`` (a TCP byte stream) nothing is dropped, and unless
    ``config.tcp_cc`` is ``"none"`` a :class:`RenoSender` (:attr:`sender`)
    paces the chunks: see the module notes. ``bottleneck`` shares a rate-limited
    queue with other links; without it the link gets its own from
    ``config.rate`` / ``config.queue_ms`` with schedule time 0 at ``start``.
    ``stats`` may be shared between links too.
    """

    __slots__ = (
        "config",
        "stream",
        "bottleneck",
        "stats",
        "_rng",
        "_queue",
        "_last",
        "_bad",
        "_drawn_at",
        "_delay",
        "_jitter",
        "_penalty",
        "_loss",
        "_burst",
        "sender",
        "_unsent",
        "_unsent_bytes",
        "_clock",
        "_return",
    )

    def __init__(
        self,
        config: LinkConfig,
        seed: int | str = 0,
        *,
        stream: bool = False,
        bottleneck: Bottleneck | None = None,
        start: float = 0.0,
        stats: LinkStats | None = None,
    ) -> None:
        self.config = config
        self.stream = stream
        self.bottleneck = (
            bottleneck
            if bottleneck is not None
            else Bottleneck(config.rate, config.queue_ms, start)
        )
        self.stats = stats if stats is not None else LinkStats()
        self._rng = random.Random(seed)
        self._queue: deque[tuple[float, P]] = deque()
        self._last = -math.inf
        self._bad = False
        self._drawn_at: float | None = None  # no packet yet: nothing to catch up on
        self._delay = config.delay_ms / 1000
        self._jitter = config.jitter_ms / 1000
        self._penalty = config.penalty_ms() / 1000
        self._loss = config.loss
        self._burst = config.burst
        rtt = config.round_trip_ms() / 1000
        self.sender: RenoSender | None = (
            RenoSender(rtt) if stream and config.tcp_cc == "reno" else None
        )
        """The modelled TCP sender (stream mode with a congestion window), else None."""
        self._unsent: deque[tuple[int, P]] = deque()
        self._unsent_bytes = 0
        self._clock = -math.inf
        self._return = max(0.0, rtt - self._delay)

    def __len__(self) -> int:
        """Packets waiting to depart (including those the congestion window holds)."""
        return len(self._queue) + len(self._unsent)

    @property
    def unsent_bytes(self) -> int:
        """Bytes the congestion window holds back (the sender's send buffer)."""
        return self._unsent_bytes

    def _draw_loss(self, now: float) -> bool:
        burst = self._burst
        if burst is None:
            return self._loss > 0 and self._rng.random() < self._loss
        if burst.slot_ms > 0 and self._drawn_at is not None:
            idle = int((now - self._drawn_at) * 1000 / burst.slot_ms) - 1
            if idle > 0:
                # the chain moved on while no packet passed: ``idle`` steps at once
                self._bad = self._rng.random() < burst.bad_after(self._bad, idle)
        self._drawn_at = now
        p = burst.loss_bad if self._bad else self._loss
        lost = p > 0 and self._rng.random() < p
        if self._rng.random() < (burst.p_bg if self._bad else burst.p_gb):
            self._bad = not self._bad
        return lost

    def enqueue(self, packet: P, size: int, now: float) -> bool:
        """Offer a packet of ``size`` bytes at ``now``; False if it was dropped."""
        if self.sender is not None:
            self._advance(now)
            self.stats.packets += 1
            self.stats.bytes += size
            self._clock = max(self._clock, now)
            self._unsent.append((size, packet))
            self._unsent_bytes += size
            self._advance(now)
            return True
        stats = self.stats
        stats.packets += 1
        stats.bytes += size
        lost = self._draw_loss(now)
        if lost and not self.stream:
            stats.lost += 1
            return False
        finish = self.bottleneck.admit(size, now, force=self.stream)
        if finish is None:
            stats.queue_drops += 1
            return False
        delay = self._delay
        if self._jitter:
            delay = max(0.0, delay + self._rng.uniform(-self._jitter, self._jitter))
        departure = finish + delay
        if lost:
            departure += self._penalty
            stats.penalized += 1
        if departure < self._last:
            departure = self._last
        self._last = departure
        self._queue.append((departure, packet))
        return True

    def _advance(self, now: float) -> None:
        """Run the sender up to ``now``: every acknowledgement and loss signal up to
        then, in time order, each sending what the window lets go at its time."""
        sender = self.sender
        assert sender is not None
        unsent = self._unsent
        while True:
            while unsent and sender.can_send(unsent[0][0]):
                size, packet = unsent.popleft()
                self._unsent_bytes -= size
                self._send(sender, size, packet)
            when = sender.next_event()
            if when is None or when > now:
                return
            self._clock = max(self._clock, when)
            cuts = sender.cuts
            sender.on_event()
            self.stats.cwnd_cuts += sender.cuts - cuts

    def _send(self, sender: RenoSender, size: int, packet: P) -> None:
        stats = self.stats
        now = self._clock
        lost = self._draw_loss(now)
        bottleneck = self.bottleneck
        finish = bottleneck.admit(size, now)
        full = finish is None
        if finish is None:
            finish = bottleneck.admit(size, now, force=True)
            assert finish is not None
        delay = self._delay
        if self._jitter:
            delay = max(0.0, delay + self._rng.uniform(-self._jitter, self._jitter))
        arrival = finish + delay
        seen: float | None = None
        if lost or full:
            if lost:
                stats.penalized += 1
            else:
                stats.queue_drops += 1
            seen = arrival + self._return  # the next chunks' acks reveal the hole
            arrival += self._penalty
        restarts = sender.restarts
        sender.on_send(size, now, arrival + self._return, seen)
        stats.idle_restarts += sender.restarts - restarts
        departure = max(arrival, self._last)
        self._last = departure
        self._queue.append((departure, packet))

    def next_departure(self) -> float | None:
        """When the next packet leaves, or the congestion window may let one go (call
        :meth:`pop_due` then); None if nothing waits."""
        head = self._queue[0][0] if self._queue else None
        if self._unsent and self.sender is not None:
            when = self.sender.next_event()
            if when is not None and (head is None or when < head):
                return when
        return head

    def get_timer(self) -> float | None:
        """Same as :meth:`next_departure` (aioquic's name for it)."""
        return self.next_departure()

    def pop_due(self, now: float) -> list[P]:
        """Remove and return, in order, every packet whose departure is <= ``now``."""
        if self.sender is not None:
            self._advance(now)
        queue = self._queue
        out: list[P] = []
        while queue and queue[0][0] <= now:
            out.append(queue.popleft()[1])
        return out

    def pop_due_timed(self, now: float) -> list[tuple[float, P]]:
        """Like :meth:`pop_due`, with each packet's exact departure time."""
        if self.sender is not None:
            self._advance(now)
        queue = self._queue
        out: list[tuple[float, P]] = []
        while queue and queue[0][0] <= now:
            out.append(queue.popleft())
        return out

    def backlog(self, now: float) -> float:
        """Seconds a packet offered at ``now`` would wait for the bottleneck."""
        return self.bottleneck.backlog(now)
