"""Rendition choice: a throughput-and-buffer rule with hysteresis and dwell (pure).

:class:`Abr` estimates the throughput from media downloads (two exponentially
weighted averages, the lower one counts, as Shaka and dash.js do) and picks a
video rendition with :func:`choose`:

* the *sustainable* rendition is the highest whose bit rate is at most
  ``safety`` x the estimate;
* switch **down** when the current bit rate exceeds ``down_margin`` x the
  estimate (after ``down_dwell_s``), at once to the sustainable rendition, or to
  the lowest when the buffer is nearly empty and the estimate is below the
  current bit rate (emergency);
* switch **up** one rung at a time, only to a rendition within ``up_safety`` x
  the estimate, with at least ``up_buffer_s`` buffered and ``up_dwell_s`` since
  the last switch.

The band between ``safety`` and ``down_margin`` plus the dwell times keep a
constant network from causing oscillation. The decision is carried out by
:meth:`player.session.Session.switch`, which switches at the next independent
part and joins the new rendition at its live edge from its rendition report.

Downloads should be timed from first to last byte (a blocking request held by
the server measures the server, not the network); the estimator ignores
samples below ``min_bytes``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from player.actions import RenditionInfo

__all__ = ["AbrConfig", "ThroughputEstimator", "choose", "Abr"]


@dataclass(frozen=True, slots=True)
class AbrConfig:
    """Tuning of the rendition choice."""

    safety: float = 0.6
    """Sustainable: bit rate at most this fraction of the estimate."""
    up_safety: float = 0.5
    """Switch up only to a bit rate at most this fraction of the estimate."""
    down_margin: float = 0.8
    """Switch down when the current bit rate exceeds this fraction of the estimate."""
    up_dwell_s: float = 6.0
    """Seconds since the last switch before switching up."""
    down_dwell_s: float = 1.0
    """Seconds since the last switch before switching down (except emergencies)."""
    up_buffer_s: float = 0.3
    """Least buffer to switch up."""
    emergency_buffer_s: float = 0.15
    """Below this buffer, with the estimate under the current bit rate: lowest rendition."""
    fast_half_life_s: float = 2.0
    """Half-life (in seconds of download time) of the fast average."""
    slow_half_life_s: float = 8.0
    """Half-life of the slow average."""
    initial_bps: float = 1_000_000.0
    """Estimate before any sample."""
    min_bytes: int = 4000
    """Downloads smaller than this are not throughput samples."""

    def __post_init__(self) -> None:
        if not 0 < self.up_safety <= self.safety < self.down_margin <= 1.5:
            raise ValueError("need 0 < up_safety <= safety < down_margin <= 1.5")
        for name in ("up_dwell_s", "down_dwell_s", "up_buffer_s", "emergency_buffer_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("fast_half_life_s", "slow_half_life_s", "initial_bps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")


class ThroughputEstimator:
    """Two exponentially weighted averages of the download throughput."""

    __slots__ = ("_fast", "_slow", "_weight", "_fast_hl", "_slow_hl", "_initial", "samples")

    def __init__(self, fast_half_life_s: float, slow_half_life_s: float, initial_bps: float):
        self._fast = 0.0
        self._slow = 0.0
        self._weight = 0.0
        self._fast_hl = fast_half_life_s
        self._slow_hl = slow_half_life_s
        self._initial = initial_bps
        self.samples = 0
        """Samples taken."""

    def add(self, nbytes: int, seconds: float) -> None:
        """A download of ``nbytes`` that took ``seconds`` (first to last byte)."""
        seconds = max(seconds, 1e-4)
        bps = nbytes * 8 / seconds
        a_fast = math.pow(0.5, seconds / self._fast_hl)
        a_slow = math.pow(0.5, seconds / self._slow_hl)
        self._fast = a_fast * self._fast + (1 - a_fast) * bps
        self._slow = a_slow * self._slow + (1 - a_slow) * bps
        self._weight += seconds
        self.samples += 1

    def estimate(self) -> float:
        """Bits per second: the lower of both averages, bias-corrected (the initial
        value until the first sample)."""
        if self.samples == 0:
            return self._initial
        fast = self._fast / (1 - math.pow(0.5, self._weight / self._fast_hl))
        slow = self._slow / (1 - math.pow(0.5, self._weight / self._slow_hl))
        return min(fast, slow)


def choose(
    bitrates: Sequence[int],
    current: int,
    estimate_bps: float,
    buffer_s: float,
    since_switch_s: float,
    config: AbrConfig,
) -> int:
    """Index of the rendition to fetch, ``bitrates`` sorted ascending, ``current`` the
    index being fetched (see the module docstring for the rule)."""
    cfg = config
    if not bitrates:
        raise ValueError("no renditions")
    sustainable = 0
    for i, bps in enumerate(bitrates):
        if bps <= cfg.safety * estimate_bps:
            sustainable = i
    cur = bitrates[current]
    if buffer_s < cfg.emergency_buffer_s and cur > estimate_bps and current > 0:
        return 0
    if cur > cfg.down_margin * estimate_bps and current > 0:
        if since_switch_s >= cfg.down_dwell_s:
            return min(sustainable, current - 1)
        return current
    if (
        current + 1 < len(bitrates)
        and bitrates[current + 1] <= cfg.up_safety * estimate_bps
        and buffer_s >= cfg.up_buffer_s
        and since_switch_s >= cfg.up_dwell_s
    ):
        return current + 1
    return current


class Abr:
    """The rendition choice of one player (video variants only).

    Feed :meth:`on_download` for media responses; call :meth:`decide` at each
    control tick; when it returns a rendition id, call ``session.switch(id, now)``.
    ``select`` is a :data:`player.actions.Selector` for the session's first choice.
    """

    def __init__(self, renditions: Sequence[RenditionInfo], config: AbrConfig | None = None):
        self.config = config or AbrConfig()
        cfg = self.config
        videos = sorted(
            (r for r in renditions if r.type == "video"), key=lambda r: (r.bandwidth, r.id)
        )
        if not videos:
            raise ValueError("no video rendition")
        self.renditions = tuple(videos)
        """Video renditions, lowest bit rate first."""
        self.estimator = ThroughputEstimator(
            cfg.fast_half_life_s, cfg.slow_half_life_s, cfg.initial_bps
        )
        self.current = self._initial_index()
        """Index of the rendition being fetched (or switched to)."""
        self.switched_at: float | None = None
        """``now`` of the latest switch."""
        self.switches = 0
        """Switches decided."""

    @classmethod
    def select(cls, config: AbrConfig | None = None) -> AbrSelector:
        """A session ``select`` hook that starts on the rendition this rule picks."""
        return AbrSelector(config or AbrConfig())

    def _initial_index(self) -> int:
        estimate = self.config.initial_bps
        index = 0
        for i, r in enumerate(self.renditions):
            if r.bandwidth <= self.config.safety * estimate:
                index = i
        return index

    @property
    def current_id(self) -> str:
        """Id of the rendition being fetched."""
        return self.renditions[self.current].id

    @property
    def throughput_bps(self) -> float | None:
        """The throughput estimate (bit/s), ``None`` before the first sample."""
        return self.estimator.estimate() if self.estimator.samples else None

    @property
    def bitrate_bps(self) -> int:
        """Bit rate of the rendition being fetched."""
        return self.renditions[self.current].bandwidth

    def follow(self, rendition_id: str | None) -> None:
        """The session fetches ``rendition_id`` (e.g. its first choice)."""
        for i, r in enumerate(self.renditions):
            if r.id == rendition_id:
                self.current = i

    def on_download(self, nbytes: int, seconds: float) -> None:
        """A media download of ``nbytes`` took ``seconds`` from first to last byte."""
        if nbytes >= self.config.min_bytes:
            self.estimator.add(nbytes, seconds)

    def on_timeout(self, seconds: float, media_s: float) -> None:
        """A download of ``media_s`` seconds of the current rendition was not complete
        after ``seconds``: the throughput was below what that media carries in that
        time (its bit rate x ``media_s`` / ``seconds``), and that bound counts as a
        sample. Without it a link too slow to complete any download would never
        lower the estimate, and the emergency switch down would never come."""
        if seconds > 0 and media_s > 0:
            bound = self.bitrate_bps * media_s / 8
            self.estimator.add(max(1, round(bound)), seconds)

    def decide(self, now: float, buffer_s: float) -> str | None:
        """The rendition to switch to now, or ``None`` to stay."""
        since = float("inf") if self.switched_at is None else now - self.switched_at
        bitrates = [r.bandwidth for r in self.renditions]
        index = choose(
            bitrates, self.current, self.estimator.estimate(), buffer_s, since, self.config
        )
        if index == self.current:
            return None
        self.current = index
        self.switched_at = now
        self.switches += 1
        return self.renditions[index].id


@dataclass(frozen=True, slots=True)
class AbrSelector:
    """Session ``select`` hook: the rendition :class:`Abr` starts on, and the default audio."""

    config: AbrConfig
    """The rule's tuning."""

    def __call__(self, renditions: Sequence[RenditionInfo]) -> tuple[str, str | None]:
        abr = Abr(renditions, self.config)
        video = abr.renditions[abr.current]
        if video.group is None:
            return video.id, None
        group = [r for r in renditions if r.type == "audio" and r.group == video.group]
        if not group:
            return video.id, None
        audio = next((r for r in group if r.default), group[0])
        return video.id, audio.id
