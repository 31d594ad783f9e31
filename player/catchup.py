"""Latency control: catch-up, slow-down, target adaptation, startup grade (pure).

The controller steers the playout rate so the latency holds a target, the way
production studies say viewers accept it: small, short, slew-limited rate
changes; catch-up only while the network is healthy; a gentle slow-down when
the buffer runs low or the player is ahead of the target; no stall caused by
catching up. It never reads a clock: :meth:`Controller.update` takes ``now``
and an :class:`Observation`, and returns a :class:`Decision`.

The control laws are named pure functions, tested on tables:

* :func:`braking_excess` / :func:`braking_distance` — the rate excess
  (``rate - 1``) from which stepping down ``step`` per ``dwell`` removes
  exactly a given latency error: rate profiles are slew-limited trapezoids
  that end on the target without overshoot;
* :func:`rate` — the desired rate of a mode, for an error, an affordable
  latency reduction and the buffer;
* :func:`next_mode` — the dual-threshold state machine with hysteresis
  (enter catch-up above ``enter_s``, leave below ``exit_s``);
* :func:`slew` — at most one ``step`` per change;
* :func:`assess_health` — the gate: delivery jitter (the variance of the buffer
  level before each part arrives), recent stalls, a stalled live edge,
  throughput too close to the bitrate;
* :func:`required_latency` — the latency the observed delivery delays require
  (the floor catch-up never goes below: only affordable buffer is spent);
* :func:`history_delay` — a high quantile of the delivery delays of the last
  ``history_s`` seconds: with ``history_s > 0`` it raises the floor (and the
  target) ahead of trouble and decays as the memory forgets (off by default);
* :func:`edge_late` — the buffer drains faster than parts arrive: slow down
  before it runs low (with ``late_edge_buffer_s > 0``; off by default);
* :func:`raise_target_after_stall` / :func:`decay_target` — the target rises
  after stalls by what the variability requires and decays back when healthy;
* :func:`jump_needed` — jump to live only beyond 3 target durations;
* :func:`edge_stale` — no jump while the live edge itself is old (the origin
  recovers from an outage: a jump would land on old media);
* :func:`startup_extra` / :func:`network_grade` — the startup buffer (extra
  latency, in [0, 0.85] s) from the handshake RTT and the first fetches.

Delivery delay: a part that arrives when ``buffer_before`` seconds are
buffered ahead of the play position, at latency ``L``, is ``d = L - duration -
buffer_before`` seconds old at its end: the time from its capture end to its
arrival (publish delay + network). ``d`` does not depend on the playout rate,
so its spread is the variability of delivery; the buffer level before an
arrival is ``L - duration - d``.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from player.buffer import PlayState

__all__ = [
    "Mode",
    "Grade",
    "CatchupConfig",
    "Observation",
    "Health",
    "Decision",
    "StartupPlan",
    "braking_distance",
    "braking_excess",
    "slew",
    "rate",
    "next_mode",
    "assess_health",
    "high_delay",
    "spread",
    "required_latency",
    "history_delay",
    "edge_late",
    "stall_pressure",
    "raise_target_after_stall",
    "quiet_after_stall",
    "decay_target",
    "jump_needed",
    "edge_stale",
    "network_grade",
    "startup_extra",
    "startup_plan",
    "delivery_delay",
    "DelayWindow",
    "Controller",
]

logger = logging.getLogger(__name__)

Mode = Literal["idle", "catchup", "ahead", "low_buffer", "waiting"]
"""What the controller is doing: ``idle`` (rate 1), ``catchup`` (behind the target,
speeding up), ``ahead`` (ahead of the target, slowing down), ``low_buffer``
(slowing down to stretch a low buffer), ``waiting`` (not playing: rate 1)."""

Grade = Literal["excellent", "good", "fair", "poor"]
"""Network grade at startup."""

_EPS = 1e-9

JUMP_RESTART_S = 10.0
"""Playback restarting this soon after a jump to live is that jump's restart, not a stall."""


@dataclass(frozen=True, slots=True)
class CatchupConfig:
    """Tuning of the latency controller (seconds and rates)."""

    target_s: float = 1.0
    """Base target latency; the target never decays below it. With
    ``adapt_target=False`` (viewer sync with a shared target) it is the target."""
    max_rate: float = 1.25
    """Highest playout rate."""
    min_rate: float = 0.95
    """Lowest playout rate."""
    step: float = 0.05
    """Largest change of the rate at one time (slew limit)."""
    dwell_s: float = 0.2
    """Shortest time between two rate changes."""
    enter_s: float = 0.05
    """Start correcting when the latency is this far from the target (either side).
    At most half the wanted viewer spread."""
    exit_s: float = 0.015
    """Stop correcting when the latency is this close to the target (hysteresis)."""
    low_buffer_s: float = 0.3
    """Slow down to ``min_rate`` when less than this is buffered ..."""
    recover_buffer_s: float = 0.5
    """... until this much is buffered again."""
    margin_s: float = 0.1
    """Safety kept above the delivery delays: the buffer left before a late part."""
    default_delay_s: float = 0.25
    """Delivery delay assumed until enough parts have arrived."""
    max_jitter_s: float = 0.2
    """Catch-up is gated off above this :func:`spread` of the delivery delays."""
    stall_quiet_s: float = 1.0
    """Catch-up is gated off this long after a stall (or the start) ends, times the
    stalls in the pressure window (at most 5 s)."""
    pressure_window_s: float = 60.0
    """Stalls this recent count towards the stall pressure (stalls starting within
    ``merge_stalls_s`` of the previous one's end are one episode)."""
    pressure_quiet_s: float = 10.0
    """Extra catch-up pause per further recent stall (:func:`quiet_after_stall`)."""
    merge_stalls_s: float = 2.0
    """A stall this soon after the previous one is the same episode."""
    edge_stall_parts: float = 3.0
    """The live edge counts as stalled when no part arrived for this many part durations."""
    min_headroom: float = 1.25
    """Catch-up is gated off when throughput / bitrate is below this."""
    min_catchup_buffer_s: float = 0.7
    """Catch-up starts and goes on only with at least this much buffered: a part that is
    late right now is not spent on (the latency floor covers the usual delays)."""
    min_samples: int = 8
    """Catch-up waits for this many delivery-delay samples (after the start)."""
    adapt_target: bool = True
    """Raise the target after stalls (and with variability) and let it decay back."""
    stall_bump_s: float = 0.2
    """Least rise of the target at each stall."""
    max_boost_s: float = 4.0
    """Highest rise of the target above ``target_s``."""
    decay_after_s: float = 5.0
    """Seconds of health (no stall) before the target decays."""
    decay_half_life_s: float = 20.0
    """Half-life of the target's decay back towards its floor."""
    jump_target_durations: float = 3.0
    """Jump to live when the latency exceeds the target by this many target durations."""
    jump_cooldown_s: float = 10.0
    """Shortest time between two jumps."""
    stale_edge_s: float = 1.0
    """No jump while the live edge is older than a part plus this (:func:`edge_stale`)."""
    window_parts: int = 25
    """Delivery delays kept for the statistics (about 5 s of 0.2 s parts)."""
    drain_s: float = 3.0
    """Longest time after a stall during which arrivals count as backlog, not samples."""
    burst_fraction: float = 0.5
    """A part arriving sooner than this fraction of its duration after the previous
    one comes from a backlog (after a stall, at startup): not a delay sample."""
    history_s: float = 0.0
    """Long memory of the delivery delays (backlog arrivals after a stall included):
    :func:`history_delay` over it sets a floor under the target ahead of trouble; it
    forgets, so the floor decays when the network is healthy again (0: off)."""
    history_quantile: float = 0.95
    """Quantile of the delays in the long memory that the target must cover."""
    history_backlog: bool = True
    """Count the backlog fetched after a stall in the long memory (an outage's length)."""
    late_edge_parts: float = 1.5
    """The live edge is late when no part arrived for this many part durations ..."""
    late_edge_buffer_s: float = 0.0
    """... and then, with less than this buffered, the controller slows down
    (:func:`edge_late`): the buffer is draining faster than parts arrive (0: off)."""

    def __post_init__(self) -> None:
        if not 0 < self.min_rate <= 1 <= self.max_rate:
            raise ValueError("rates must satisfy 0 < min_rate <= 1 <= max_rate")
        if not self.step > 0:
            raise ValueError(f"step must be positive, got {self.step}")
        if not 0 <= self.exit_s <= self.enter_s:
            raise ValueError("thresholds must satisfy 0 <= exit_s <= enter_s")
        if not 0 <= self.low_buffer_s <= self.recover_buffer_s:
            raise ValueError("buffers must satisfy 0 <= low_buffer_s <= recover_buffer_s")
        for name in (
            "target_s",
            "dwell_s",
            "margin_s",
            "default_delay_s",
            "max_jitter_s",
            "stall_quiet_s",
            "stall_bump_s",
            "max_boost_s",
            "decay_after_s",
            "pressure_window_s",
            "pressure_quiet_s",
            "merge_stalls_s",
            "jump_cooldown_s",
            "stale_edge_s",
            "burst_fraction",
            "drain_s",
            "min_catchup_buffer_s",
            "history_s",
            "late_edge_buffer_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in (
            "decay_half_life_s",
            "edge_stall_parts",
            "jump_target_durations",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.history_quantile <= 1:
            raise ValueError(f"history_quantile must be in (0, 1], got {self.history_quantile}")
        if not self.late_edge_parts > 0:
            raise ValueError(f"late_edge_parts must be positive, got {self.late_edge_parts}")
        if self.min_headroom < 0:
            raise ValueError(f"min_headroom must be >= 0, got {self.min_headroom}")
        if self.window_parts < 2:
            raise ValueError(f"window_parts must be >= 2, got {self.window_parts}")
        if not 1 <= self.min_samples <= self.window_parts:
            raise ValueError("min_samples must be in [1, window_parts]")


@dataclass(frozen=True, slots=True)
class Observation:
    """What the player sees at one control tick."""

    latency_s: float | None
    """Current latency (``None`` when unknown)."""
    buffer_s: float
    """Media seconds buffered ahead of the play position."""
    state: PlayState
    """Playout state."""
    stalls: int
    """Stalls so far (monotone over the whole run, jumps included)."""
    part_s: float
    """Part duration (segment duration for classic HLS)."""
    target_duration_s: float
    """The playlist's TARGETDURATION."""
    throughput_bps: float | None = None
    """Estimated throughput (``None``: unknown)."""
    bitrate_bps: float | None = None
    """Bit rate of the rendition being fetched (``None``: unknown)."""
    edge_age_s: float | None = None
    """Age of the live edge the player knows: wall clock minus the capture time
    (PROGRAM-DATE-TIME) of the end of the newest part in its playlist (``None``:
    unknown). Large while the origin itself is behind (an encoder stall)."""

    def __post_init__(self) -> None:
        if self.buffer_s < 0:
            raise ValueError(f"buffer_s must be >= 0, got {self.buffer_s}")
        if not self.part_s > 0 or not self.target_duration_s > 0:
            raise ValueError("part_s and target_duration_s must be positive")


@dataclass(frozen=True, slots=True)
class Health:
    """Whether the network is healthy enough to spend buffer on catching up."""

    ok: bool
    """All checks pass."""
    reason: str
    """The first failing check (``stall``, ``warmup``, ``edge``, ``jitter``,
    ``throughput``), or ``""``."""
    jitter_s: float | None = None
    """:func:`spread` of the recent delivery delays."""
    since_stall_s: float | None = None
    """Seconds since the latest stall (or the start) ended."""
    edge_age_s: float | None = None
    """Seconds since the latest part arrived."""
    headroom: float | None = None
    """Throughput / bitrate."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the controller wants now."""

    rate: float
    """Playout rate to set."""
    target_s: float
    """Current target latency."""
    mode: Mode
    """What the controller is doing."""
    jump: bool = False
    """Jump to live now: restart at the target latency at an independent part."""
    health: Health | None = None
    """The health assessment of this tick (``None`` when not playing)."""
    floor_s: float | None = None
    """The latency the delivery delays require (catch-up never goes below it)."""


# -- control laws ---------------------------------------------------------------------------


def braking_distance(excess: float, step: float, dwell: float) -> float:
    """Latency removed while a rate excess ``excess`` (``rate - 1``) steps down to 0.

    The rate is held ``dwell`` seconds at ``excess``, then at ``excess - step``,
    and so on while positive: ``dwell * sum(excess - k * step)``.
    """
    if excess <= 0:
        return 0.0
    n = math.ceil(excess / step - _EPS)
    return dwell * (n * excess - step * n * (n - 1) / 2)


def braking_excess(distance: float, step: float, dwell: float, cap: float) -> float:
    """The largest excess (at most ``cap``) whose :func:`braking_distance` is ``distance``.

    The inverse of :func:`braking_distance`: holding this excess for one dwell and
    stepping down from it lands on the target (no overshoot).
    """
    if distance <= 0 or cap <= 0 or dwell <= 0:
        return 0.0
    m = 0
    while (m + 1) * step < cap and dwell * step * (m + 1) * (m + 2) / 2 <= distance:
        m += 1
    # on [m * step, (m + 1) * step] the distance is dwell * ((m + 1) * v - step * m (m + 1) / 2)
    excess = (distance / dwell + step * m * (m + 1) / 2) / (m + 1)
    return min(cap, excess)


def slew(current: float, desired: float, step: float) -> float:
    """``desired``, moved at most ``step`` away from ``current``."""
    return max(current - step, min(current + step, desired))


def rate(
    mode: Mode,
    error_s: float,
    affordable_s: float,
    config: CatchupConfig,
) -> float:
    """The desired playout rate of ``mode`` (before slewing).

    ``error_s`` is latency minus target; ``affordable_s`` the latency that may be
    removed without going below :func:`required_latency`. Catch-up brakes onto
    ``min(error, affordable)``; ``ahead`` brakes onto the target from below.
    """
    cfg = config
    if mode == "catchup":
        distance = min(error_s, affordable_s)
        return 1.0 + braking_excess(distance, cfg.step, cfg.dwell_s, cfg.max_rate - 1.0)
    if mode == "ahead":
        return 1.0 - braking_excess(-error_s, cfg.step, cfg.dwell_s, 1.0 - cfg.min_rate)
    if mode == "low_buffer":
        return cfg.min_rate
    return 1.0


def next_mode(
    mode: Mode,
    error_s: float,
    affordable_s: float,
    buffer_s: float,
    health: Health,
    config: CatchupConfig,
    late: bool = False,
) -> Mode:
    """The dual-threshold state machine (the caller handles ``waiting``).

    * buffer below ``low_buffer_s``, or the live edge ``late`` (:func:`edge_late`):
      ``low_buffer`` until ``recover_buffer_s`` is buffered and the edge is on time;
    * ``catchup`` is entered above ``enter_s`` (healthy, affordable, at least
      ``min_catchup_buffer_s`` buffered) and kept while the error and the
      affordable reduction exceed ``exit_s`` (and it stays healthy and buffered);
    * ``ahead`` is entered below ``-enter_s`` and kept while below ``-exit_s``.
    """
    cfg = config
    if buffer_s < cfg.low_buffer_s or late:
        return "low_buffer"
    if mode == "low_buffer" and buffer_s < cfg.recover_buffer_s:
        return "low_buffer"
    can_spend = health.ok and buffer_s >= cfg.min_catchup_buffer_s
    if mode == "catchup":
        if can_spend and error_s > cfg.exit_s and affordable_s > cfg.exit_s:
            return "catchup"
        return "idle"
    if mode == "ahead" and error_s < -cfg.exit_s:
        return "ahead"
    if error_s > cfg.enter_s and can_spend and affordable_s > cfg.enter_s:
        return "catchup"
    if error_s < -cfg.enter_s:
        return "ahead"
    return "idle"


def assess_health(
    jitter_s: float | None,
    since_stall_s: float | None,
    edge_age_s: float | None,
    headroom: float | None,
    part_s: float,
    config: CatchupConfig,
    quiet_s: float | None = None,
) -> Health:
    """Gate catch-up: healthy unless one check fails. ``jitter_s`` is ``None`` before
    enough delay samples (``warmup``); ``since_stall_s`` is ``None`` before playback
    started; ``headroom`` and ``edge_age_s`` are skipped when ``None``. ``quiet_s``
    (default ``stall_quiet_s``) is the time to wait after a stall."""
    cfg = config
    reason = ""
    quiet = cfg.stall_quiet_s if quiet_s is None else quiet_s
    if since_stall_s is None or since_stall_s < quiet:
        reason = "stall"
    elif jitter_s is None:
        reason = "warmup"
    elif edge_age_s is not None and edge_age_s > cfg.edge_stall_parts * part_s:
        reason = "edge"
    elif jitter_s is not None and jitter_s > cfg.max_jitter_s:
        reason = "jitter"
    elif headroom is not None and headroom < cfg.min_headroom:
        reason = "throughput"
    return Health(
        ok=not reason,
        reason=reason,
        jitter_s=jitter_s,
        since_stall_s=since_stall_s,
        edge_age_s=edge_age_s,
        headroom=headroom,
    )


def high_delay(delays: Sequence[float], config: CatchupConfig) -> float:
    """A robust high delivery delay: the 4th largest of the window (about its 85th
    percentile over 25 parts), so the few late parts of one outage do not count;
    ``default_delay_s`` with fewer than ``min_samples``."""
    if len(delays) < max(4, config.min_samples):
        return config.default_delay_s
    return sorted(delays)[-4]


def spread(delays: Sequence[float], min_samples: int = 8) -> float | None:
    """Jitter of the delivery delays: the 4th largest minus the median (``None`` with
    fewer than ``min_samples``). The buffer level before each arrival varies as much."""
    if len(delays) < max(4, min_samples):
        return None
    ordered = sorted(delays)
    return ordered[-4] - ordered[len(ordered) // 2]


def history_delay(delays: Sequence[float], quantile: float, min_samples: int = 8) -> float | None:
    """The ``quantile`` (nearest rank) of the delivery delays of the long memory
    (``None`` with fewer than ``min_samples``): how late parts came over the last
    minute, outages included, where :func:`high_delay` sees only the last seconds."""
    if len(delays) < max(1, min_samples):
        return None
    ordered = sorted(delays)
    rank = min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))
    return ordered[rank]


def required_latency(
    delays: Sequence[float],
    part_s: float,
    config: CatchupConfig,
    history_s: float | None = None,
) -> float:
    """The latency the delivery delays require: ``part + high delay + margin``, the high
    delay being the larger of the recent one (:func:`high_delay`) and ``history_s``
    (:func:`history_delay` of the long memory, when known)."""
    high = high_delay(delays, config)
    if history_s is not None:
        high = max(high, history_s)
    return part_s + max(0.0, high) + config.margin_s


def edge_late(
    edge_age_s: float | None, part_s: float, buffer_s: float, config: CatchupConfig
) -> bool:
    """Whether the buffer drains faster than parts arrive: no part for
    ``late_edge_parts`` part durations while less than ``late_edge_buffer_s`` is
    buffered. The controller then slows down before the buffer runs low."""
    if edge_age_s is None or config.late_edge_buffer_s <= 0:
        return False
    return edge_age_s > config.late_edge_parts * part_s and buffer_s < config.late_edge_buffer_s


def stall_pressure(recent_stalls: int) -> float:
    """How much of a stall's duration the target keeps, from the stalls in the
    pressure window (this one included): 0 for an isolated stall, 1/2 for the
    second, all of it from the third on."""
    return min(1.0, max(0, recent_stalls - 1) / 2)


def raise_target_after_stall(
    target_s: float,
    required_s: float,
    stall_s: float,
    recent_stalls: int,
    ceiling_s: float,
    config: CatchupConfig,
) -> float:
    """The target after a stall of ``stall_s``: at least what the delivery delays
    require, and up by ``stall_bump_s`` plus the share of the stall that
    :func:`stall_pressure` keeps (frequent stalls: do not catch up what they
    cost), at most ``ceiling_s``."""
    bump = config.stall_bump_s + stall_s * stall_pressure(recent_stalls)
    return min(ceiling_s, max(target_s + bump, required_s))


def quiet_after_stall(recent_stalls: int, config: CatchupConfig) -> float:
    """Seconds without catch-up after a stall: ``stall_quiet_s`` after an isolated one,
    ``pressure_quiet_s`` more for each further stall in the pressure window."""
    return config.stall_quiet_s + config.pressure_quiet_s * max(0, recent_stalls - 1)


def decay_target(target_s: float, floor_s: float, dt: float, half_life_s: float) -> float:
    """``target_s`` decayed towards ``floor_s`` over ``dt`` seconds (never below it)."""
    if target_s <= floor_s or dt <= 0:
        return max(target_s, floor_s) if target_s < floor_s else target_s
    return floor_s + (target_s - floor_s) * math.pow(0.5, dt / half_life_s)


def jump_needed(error_s: float, target_duration_s: float, config: CatchupConfig) -> bool:
    """Whether the player is so far behind that it should jump to live."""
    return error_s > config.jump_target_durations * target_duration_s


def edge_stale(edge_age_s: float | None, part_s: float, config: CatchupConfig) -> bool:
    """Whether the live edge itself is behind (the origin recovers from an outage): a
    jump to live would land on old media and gain nothing, so it waits. A live edge
    is at most a part (segment, for classic HLS) plus ``stale_edge_s`` old."""
    if edge_age_s is None:
        return False
    return edge_age_s > part_s + config.stale_edge_s


def delivery_delay(latency_s: float, buffer_before_s: float, duration_s: float) -> float:
    """Age of a part's end when it arrived (see the module docstring)."""
    return latency_s - duration_s - buffer_before_s


# -- startup --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartupPlan:
    """How to start: the network grade and the extra latency (startup buffer)."""

    grade: Grade
    """The network grade."""
    extra_s: float
    """Extra media to hold at startup, on top of the hold-back, in [0, 0.85] s; the
    controller's base target rises by as much (:meth:`Controller.start`)."""


MAX_STARTUP_EXTRA_S = 0.85
"""Upper end of the startup buffer range."""


def startup_extra(rtt_s: float, throughput_bps: float | None, bitrate_bps: float | None) -> float:
    """Extra startup buffer (seconds, in [0, 0.85]) for a network.

    RTT term: 0 up to 30 ms, +0.15 s per 100 ms above, at most 0.45 s.
    Throughput term: 0 at 4x the bitrate or more, 0.6 s at 1.2x or less,
    linear between (0.2 s when unknown).
    """
    rtt_term = min(0.45, max(0.0, (rtt_s - 0.03) * 1.5))
    if throughput_bps is None or not bitrate_bps:
        tput_term = 0.2
    else:
        ratio = throughput_bps / bitrate_bps
        tput_term = min(0.6, max(0.0, 0.6 * (4.0 - ratio) / (4.0 - 1.2)))
    return round(min(MAX_STARTUP_EXTRA_S, rtt_term + tput_term), 3)


def network_grade(extra_s: float) -> Grade:
    """The grade of a network from its :func:`startup_extra`."""
    if extra_s < 0.1:
        return "excellent"
    if extra_s < 0.3:
        return "good"
    if extra_s < 0.6:
        return "fair"
    return "poor"


def startup_plan(
    rtt_s: float, throughput_bps: float | None, bitrate_bps: float | None
) -> StartupPlan:
    """The startup buffer for the measured network (see :func:`startup_extra`)."""
    extra = startup_extra(rtt_s, throughput_bps, bitrate_bps)
    return StartupPlan(network_grade(extra), extra)


# -- state ------------------------------------------------------------------------------------


@dataclass(slots=True)
class DelayWindow:
    """The latest delivery delays (backlog arrivals excluded) and arrival times."""

    size: int = 25
    """Samples kept."""
    burst_fraction: float = 0.5
    """See :attr:`CatchupConfig.burst_fraction`."""
    min_samples: int = 8
    """See :attr:`CatchupConfig.min_samples`."""
    delays: deque[float] = field(default_factory=deque)
    """Delivery delays, oldest first."""
    last_arrival: float | None = None
    """``now`` of the latest arrival (backlog ones included)."""

    def add(self, now: float, delay_s: float, duration_s: float, *, sample: bool = True) -> bool:
        """Record an arrival; returns whether it counted as a delay sample."""
        burst = (
            self.last_arrival is not None
            and now - self.last_arrival < self.burst_fraction * duration_s
        )
        self.last_arrival = now
        if burst or not sample:
            return False
        self.delays.append(delay_s)
        while len(self.delays) > self.size:
            self.delays.popleft()
        return True

    def jitter(self) -> float | None:
        """The :func:`spread` of the delays."""
        return spread(self.delays, self.min_samples)


class Controller:
    """The latency controller: ``update(now, observation) -> Decision`` each tick.

    Call :meth:`on_part` when a video part is delivered (before it goes into the
    buffer), :meth:`update` at every control tick (e.g. each 100 ms sample) and
    apply ``Decision.rate``; :meth:`start` once the startup plan is known.
    """

    def __init__(self, config: CatchupConfig | None = None) -> None:
        self.config = config or CatchupConfig()
        cfg = self.config
        self.base_s = cfg.target_s
        """The target the adaptation decays back to."""
        self.target_s = cfg.target_s
        """Current target latency."""
        self.rate = 1.0
        """Current rate."""
        self.mode: Mode = "waiting"
        """Current mode."""
        self.window = DelayWindow(
            size=cfg.window_parts, burst_fraction=cfg.burst_fraction, min_samples=cfg.min_samples
        )
        self._changed_at: float | None = None
        self._stalls = 0
        self._state = PlayState.BUFFERING
        self._quiet_since: float | None = None
        self._last_stall_end: float | None = None
        self._last_update: float | None = None
        self._last_jump: float | None = None
        self._drain_until: float | None = None
        self._stall_started: float | None = None
        self._stall_ends: deque[float] = deque()
        self._part_s = 0.2
        self._history: deque[tuple[float, float]] = deque()

    # -- inputs ----------------------------------------------------------------------------

    def start(self, plan: StartupPlan) -> None:
        """Apply the startup plan (before playback): the target starts ``extra_s`` higher
        and decays back to the base once the network has proved healthy."""
        self.target_s = max(self.target_s, self.base_s + plan.extra_s)

    def set_target(self, target_s: float) -> None:
        """Set the base target from outside (a shared target for viewer sync)."""
        if not target_s > 0:
            raise ValueError(f"target must be positive, got {target_s}")
        self.base_s = target_s
        self.target_s = target_s

    def on_part(
        self, now: float, buffer_before_s: float, latency_s: float, duration_s: float
    ) -> None:
        """A part of ``duration_s`` arrived with ``buffer_before_s`` buffered at ``latency_s``.

        Parts arriving while stalled, and the backlog fetched after a stall (until
        a part arrives with a normal delay, at most ``drain_s``), count as arrivals
        (the live edge moves) but not as delay samples: the stall itself raises
        the target.
        """
        self._part_s = duration_s
        delay = delivery_delay(latency_s, buffer_before_s, duration_s)
        playing = self._state is PlayState.PLAYING
        backlog = not playing
        if playing and self._drain_until is not None:
            if delay <= self._normal_delay(duration_s) or now >= self._drain_until:
                self._drain_until = None  # the backlog is through: parts arrive live again
            else:
                playing = False
                backlog = True
        sample = self.window.add(now, delay, duration_s, sample=playing)
        started = self._last_stall_end is not None
        if self.config.history_s > 0 and started:
            if sample or (backlog and self.config.history_backlog):
                self._history.append((now, delay))

    def history_delay(self, now: float) -> float | None:
        """:func:`history_delay` of the long memory as of ``now``."""
        cfg = self.config
        hist = self._history
        while hist and now - hist[0][0] > cfg.history_s:
            hist.popleft()
        if not hist:
            return None
        return history_delay([d for _, d in hist], cfg.history_quantile, cfg.min_samples)

    def _normal_delay(self, part_s: float) -> float:
        delays = self.window.delays
        if len(delays) < 8:
            return part_s
        return max(part_s, sorted(delays)[len(delays) // 2] + part_s / 2)

    def update(self, now: float, obs: Observation) -> Decision:
        """One control tick."""
        cfg = self.config
        dt = 0.0 if self._last_update is None else max(0.0, now - self._last_update)
        self._last_update = now
        self._part_s = obs.part_s
        required = required_latency(self.window.delays, obs.part_s, cfg, self.history_delay(now))
        self._track_state(now, obs, required)
        if cfg.adapt_target:
            self._adapt(now, dt, required)
        jump = False
        if obs.latency_s is not None and obs.state in (PlayState.PLAYING, PlayState.STALLED):
            error = obs.latency_s - self.target_s
            if (
                jump_needed(error, obs.target_duration_s, cfg)
                and not edge_stale(obs.edge_age_s, obs.part_s, cfg)
                and (self._last_jump is None or now - self._last_jump >= cfg.jump_cooldown_s)
            ):
                self._last_jump = now
                jump = True
        if obs.state is not PlayState.PLAYING or obs.latency_s is None:
            self.mode = "waiting"
            self.rate = 1.0  # invisible while not playing; resume at 1x
            return Decision(self.rate, self.target_s, self.mode, jump, floor_s=required)
        error = obs.latency_s - self.target_s
        since = None if self._quiet_since is None else now - self._quiet_since
        edge = None if self.window.last_arrival is None else now - self.window.last_arrival
        headroom = None
        if obs.throughput_bps is not None and obs.bitrate_bps:
            headroom = obs.throughput_bps / obs.bitrate_bps
        quiet = quiet_after_stall(self._recent_stalls(now), cfg)
        health = assess_health(self.window.jitter(), since, edge, headroom, obs.part_s, cfg, quiet)
        affordable = obs.latency_s - required
        mode: Mode = "idle" if self.mode == "waiting" else self.mode
        late = edge_late(edge, obs.part_s, obs.buffer_s, cfg)
        self.mode = next_mode(mode, error, affordable, obs.buffer_s, health, cfg, late)
        desired = rate(self.mode, error, affordable, cfg)
        self._apply(now, desired)
        return Decision(self.rate, self.target_s, self.mode, jump, health, required)

    # -- internals -------------------------------------------------------------------------

    def _apply(self, now: float, desired: float) -> None:
        cfg = self.config
        desired = min(cfg.max_rate, max(cfg.min_rate, desired))
        if abs(desired - self.rate) < 1e-6:
            return
        if self._changed_at is not None and now - self._changed_at < cfg.dwell_s - 1e-6:
            return
        new = round(slew(self.rate, desired, cfg.step), 4)
        if abs(new - 1.0) < 1e-3 and abs(1.0 - self.rate) <= cfg.step + 1e-9:
            new = 1.0  # snap to unit speed, never by more than one step
        if new != self.rate:
            self.rate = new
            self._changed_at = now

    def _recent_stalls(self, now: float) -> int:
        ends = self._stall_ends
        while ends and now - ends[0] > self.config.pressure_window_s:
            ends.popleft()
        return len(ends)

    def _track_state(self, now: float, obs: Observation, required: float) -> None:
        cfg = self.config
        if obs.stalls > self._stalls:
            self._stalls = obs.stalls
            self._quiet_since = None
        playing = obs.state is PlayState.PLAYING
        if not playing and self._stall_started is None:
            self._stall_started = now
        if playing and self._quiet_since is None:
            # playback (re)started: after a stall, raise the target by what is required
            # The restart after our own jump to live is no stall: the outage that led
            # to it (if any) already raised the target; the jump's gap is no evidence.
            jumped = self._last_jump is not None and now - self._last_jump <= JUMP_RESTART_S
            restarted = self._state is not PlayState.BUFFERING or self._last_stall_end is not None
            if restarted and not jumped:
                started = self._stall_started if self._stall_started is not None else now
                ends = self._stall_ends
                if ends and started - ends[-1] <= cfg.merge_stalls_s:
                    ends[-1] = now  # the same episode
                else:
                    ends.append(now)
                if cfg.adapt_target:
                    self.target_s = raise_target_after_stall(
                        self.target_s,
                        required,
                        now - started,
                        self._recent_stalls(now),
                        self.base_s + cfg.max_boost_s,
                        cfg,
                    )
                    logger.debug("stall: target now %.3f s", self.target_s)
            self._quiet_since = now
            self._last_stall_end = now
            self._drain_until = now + cfg.drain_s
        if playing:
            self._stall_started = None
        else:
            self._quiet_since = None
        self._state = obs.state

    def _adapt(self, now: float, dt: float, required: float) -> None:
        cfg = self.config
        ceiling = self.base_s + cfg.max_boost_s
        floor = min(ceiling, max(self.base_s, required))
        if self.target_s < floor:
            self.target_s = floor  # the variability requires more: raise before a stall
            return
        quiet = self._quiet_since is not None and now - self._quiet_since >= cfg.decay_after_s
        if quiet and self.window.jitter() is not None:
            jitter = self.window.jitter()
            if jitter is not None and jitter <= cfg.max_jitter_s:
                self.target_s = decay_target(self.target_s, floor, dt, cfg.decay_half_life_s)
