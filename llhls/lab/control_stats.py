"""Figures of a simulated viewer: latency, stalls, rate behaviour, recovery, spread (pure).

Every function takes the samples of :class:`llhls.lab.sim.ViewerResult`
(one per control tick) and returns plain numbers, so the bench and the tests
compute the same figures.

Definitions:

* **stall ratio** — seconds stalled / (stalled + playing) after the first start
  (restart gaps of jumps count as stalled);
* **seconds at rate != 1** — ticks whose rate differs from 1 by more than 1e-6;
* **rate reversals** — sign changes of ``rate - 1`` between ticks where it is
  not 1 (a catch-up followed by a slow-down, or the reverse): oscillation;
* **catch-up episode** — a run of playing ticks at a rate above 1; a stall
  starting during one or within 5 s after its end is a *stall after catch-up*,
  and *caused by* it when it lasts no longer than the latency the catch-up
  removed (at tick resolution);
* **recovery** — after an injected pause, from the end of the stall it causes
  to the first tick within 50 ms of the target (the target in force, and
  separately the target before the pause).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from llhls.lab.sim import ViewerResult
from player.metrics import percentile

__all__ = [
    "ViewerStats",
    "Recovery",
    "viewer_stats",
    "stall_intervals",
    "catchup_episodes",
    "recovery",
    "spread",
]

STALL_AFTER_CATCHUP_S = 5.0
"""A stall this soon after a catch-up episode counts against it."""
RECOVERED_WITHIN_S = 0.05
"""Back at the target: within this of it."""


@dataclass(frozen=True, slots=True)
class ViewerStats:
    """The figures of one viewer."""

    seconds: float
    """Seconds from the first start to the end."""
    mean_latency_s: float
    """Mean latency over the samples after the first start."""
    p95_latency_s: float
    """95th percentile latency."""
    stall_ratio: float
    """Stalled / (stalled + playing)."""
    stalls: int
    """Stalls (jumps included)."""
    stall_s: float
    """Seconds stalled."""
    rate_off_s: float
    """Seconds at a rate other than 1."""
    max_rate: float
    """Highest rate."""
    min_rate: float
    """Lowest rate."""
    max_rate_dev: float
    """Largest ``|rate - 1|``."""
    reversals_per_min: float
    """Rate reversals per minute."""
    changes_per_min: float
    """Rate changes per minute."""
    catchups: int
    """Catch-up episodes."""
    stalls_after_catchup: int
    """Stalls starting during a catch-up or within 5 s after it."""
    stalls_caused_by_catchup: int
    """Of those, the ones no longer than the latency the catch-up removed: without
    the catch-up the buffer would have covered them."""
    mean_target_s: float
    """Mean target latency."""
    mean_bitrate_bps: float
    """Mean bit rate fetched."""
    switches: int
    """Rendition switches."""
    jumps: int
    """Jumps to live (and restarts of players falling out of the window)."""

    def as_dict(self) -> dict[str, float | int]:
        """JSON-friendly, floats rounded to 4 decimals."""
        out: dict[str, float | int] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = round(value, 4) if isinstance(value, float) else value
        return out


def _start_index(res: ViewerResult) -> int:
    for i, value in enumerate(res.latency):
        if not math.isnan(value):
            return i
    return len(res.latency)


def stall_intervals(res: ViewerResult) -> list[tuple[float, float]]:
    """``(start, end)`` of every stall after the first start, at tick resolution
    (an unfinished stall ends at the last sample)."""
    out: list[tuple[float, float]] = []
    begin: float | None = None
    for i in range(_start_index(res), len(res.t)):
        if not res.playing[i] and begin is None:
            begin = res.t[i]
        elif res.playing[i] and begin is not None:
            out.append((begin, res.t[i]))
            begin = None
    if begin is not None and res.t:
        out.append((begin, res.t[-1]))
    return out


def catchup_episodes(res: ViewerResult) -> list[tuple[float, float]]:
    """``(start, end)`` of every run of playing ticks at a rate above 1."""
    out: list[tuple[float, float]] = []
    begin: float | None = None
    for t, rate, playing in zip(res.t, res.rate, res.playing, strict=True):
        fast = playing and rate > 1 + 1e-6
        if fast and begin is None:
            begin = t
        elif not fast and begin is not None:
            out.append((begin, t))
            begin = None
    if begin is not None and res.t:
        out.append((begin, res.t[-1]))
    return out


def viewer_stats(res: ViewerResult, tick_s: float) -> ViewerStats:
    """The figures of ``res`` (samples every ``tick_s``)."""
    first = _start_index(res)
    latencies = [v for v in res.latency[first:] if not math.isnan(v)]
    if not latencies:
        nan = math.nan
        return ViewerStats(0.0, nan, nan, 1.0, res.stalls, res.stall_s, 0.0, 1.0, 1.0, 0.0,
                           0.0, 0.0, 0, 0, 0, nan, 0.0, res.switches, res.jumps)  # fmt: skip
    rates = res.rate[first:]
    seconds = len(rates) * tick_s
    minutes = max(seconds / 60, 1e-9)
    off = sum(1 for r in rates if abs(r - 1) > 1e-6) * tick_s
    reversals = 0
    changes = 0
    sign = 0
    for prev, rate in zip(rates, rates[1:], strict=False):
        if abs(rate - prev) > 1e-9:
            changes += 1
        s = 0 if abs(rate - 1) <= 1e-6 else (1 if rate > 1 else -1)
        if s and sign and s != sign:
            reversals += 1
        if s:
            sign = s
    stalls = stall_intervals(res)
    episodes = catchup_episodes(res)
    after = 0
    caused = 0
    for start, end in stalls:
        near = [(b, e) for b, e in episodes if b <= start <= e + STALL_AFTER_CATCHUP_S]
        if not near:
            continue
        after += 1
        b, e = near[-1]
        spent = sum(
            (r - 1) * tick_s for t, r in zip(res.t, res.rate, strict=True) if b <= t < e and r > 1
        )
        if end - start <= spent + tick_s / 2:
            caused += 1
    total = res.stall_s + res.played_s
    return ViewerStats(
        seconds=seconds,
        mean_latency_s=sum(latencies) / len(latencies),
        p95_latency_s=percentile(latencies, 95),
        stall_ratio=res.stall_s / total if total > 0 else 0.0,
        stalls=res.stalls,
        stall_s=res.stall_s,
        rate_off_s=off,
        max_rate=max(rates),
        min_rate=min(rates),
        max_rate_dev=max(abs(r - 1) for r in rates),
        reversals_per_min=reversals / minutes,
        changes_per_min=changes / minutes,
        catchups=len(episodes),
        stalls_after_catchup=after,
        stalls_caused_by_catchup=caused,
        mean_target_s=sum(res.target[first:]) / len(res.target[first:]),
        mean_bitrate_bps=sum(res.bitrate[first:]) / len(res.bitrate[first:]),
        switches=res.switches,
        jumps=res.jumps,
    )


@dataclass(frozen=True, slots=True)
class Recovery:
    """How a viewer came back after an injected pause."""

    stalled: bool
    """The pause caused a stall."""
    stall_end: float | None
    """When that stall ended."""
    to_target_s: float | None
    """Stall end -> first tick within 50 ms of the target in force (``None``: never)."""
    to_base_s: float | None
    """Stall end -> first tick within 50 ms of the target before the pause."""
    target_rise_s: float
    """How much the target rose over the pause."""


def recovery(res: ViewerResult, pause_start: float, pause_s: float) -> Recovery:
    """Recovery after a pause of ``pause_s`` at ``pause_start``."""
    before = [tg for t, tg in zip(res.t, res.target, strict=True) if t <= pause_start]
    base = before[-1] if before else (res.target[0] if res.target else math.nan)
    stall = next(
        (s for s in stall_intervals(res) if pause_start <= s[0] <= pause_start + pause_s + 1.0),
        None,
    )
    if stall is None:
        return Recovery(False, None, 0.0, 0.0, 0.0)
    end = stall[1]
    to_target: float | None = None
    to_base: float | None = None
    rise = 0.0
    for t, lat, tg, playing in zip(res.t, res.latency, res.target, res.playing, strict=True):
        if t < end or not playing or math.isnan(lat):
            continue
        rise = max(rise, tg - base)
        if to_target is None and abs(lat - tg) <= RECOVERED_WITHIN_S:
            to_target = t - end
        if to_base is None and abs(lat - base) <= RECOVERED_WITHIN_S:
            to_base = t - end
        if to_target is not None and to_base is not None:
            break
    return Recovery(True, end, to_target, to_base, rise)


def spread(viewers: Sequence[ViewerResult], since: float) -> tuple[float, float]:
    """(mean, max) over ticks after ``since`` of max - min latency across viewers,
    at ticks where all play (ticks are aligned across viewers)."""
    by_time: list[dict[float, float]] = []
    for res in viewers:
        by_time.append(
            {
                round(t, 6): lat
                for t, lat, playing in zip(res.t, res.latency, res.playing, strict=True)
                if t >= since and playing and not math.isnan(lat)
            }
        )
    common = set(by_time[0]).intersection(*by_time[1:]) if by_time else set()
    if not common:
        return math.nan, math.nan
    spreads = [max(d[t] for d in by_time) - min(d[t] for d in by_time) for t in sorted(common)]
    return sum(spreads) / len(spreads), max(spreads)
