"""Rate policies of other players, for the simulator, written from their documented behaviour.

Each implements :class:`llhls.lab.sim.RatePolicy` (``start``, ``on_part``,
``update(now, observation) -> Decision``) like :class:`player.catchup.Controller`,
and starts from the same base target. What each models:

* :class:`HlsJsLike` — hls.js's latency controller: a sigmoid of the distance
  to the target (plus how long the live edge has stalled), rounded to 0.05,
  speed-up only (``maxLiveSyncPlaybackRate``, here 1.25 like ours), only with
  more than 1 s of forward buffer and within one target duration past the
  target; the target grows by ``liveSyncOnStallIncrease`` (1 s) per stall, for
  good.
* :class:`ExoLike` — ExoPlayer's ``DefaultLivePlaybackSpeedControl``:
  ``1 + 0.1 x (offset - target)`` clamped to [0.97, 1.03], unit speed within
  20 ms, at most one change per second; +0.5 s of target per rebuffer; the
  target is kept above a smoothed "minimum possible offset" (offset minus
  buffer, plus three deviations) and otherwise decays towards the ideal target
  no faster than the speed bound allows.
* :class:`ShakaLike` — Shaka Player's live sync: 1.1x above target + 0.5 s,
  0.95x below target - 0.5 s, 1x in between (no hysteresis, no target change).
* :class:`DashLike` — dash.js's default catch-up mode: ``1 - c + 2c / (1 +
  exp(-5 delta))`` with ``c = 0.5`` (rates in 0.5x-1.5x), unit speed within 2 %
  of the target, rate changes under 0.02 ignored; fixed target.

None jumps to live by itself (their defaults leave it off); the simulator
restarts any player that would fall out of the playlist window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from player.buffer import PlayState
from player.catchup import Decision, Mode, Observation, StartupPlan

__all__ = ["HlsJsLike", "ExoLike", "ShakaLike", "DashLike", "BASELINES"]


def _mode(rate: float, playing: bool) -> Mode:
    if not playing:
        return "waiting"
    if rate > 1:
        return "catchup"
    if rate < 1:
        return "ahead"
    return "idle"


class _Base:
    """Shared book-keeping: base target, rate, latest part arrival."""

    name = "base"

    def __init__(self, target_s: float = 1.0) -> None:
        if not target_s > 0:
            raise ValueError(f"target must be positive, got {target_s}")
        self.base_s = target_s
        self.target_s = target_s
        self.rate = 1.0
        self.last_part: float | None = None

    def start(self, plan: StartupPlan) -> None:
        """Baselines have no startup buffer by network grade."""

    def set_target(self, target_s: float) -> None:
        """A shared base target (viewer sync)."""
        self.base_s = target_s
        self.target_s = target_s

    def on_part(
        self, now: float, buffer_before_s: float, latency_s: float, duration_s: float
    ) -> None:
        self.last_part = now

    def update(self, now: float, obs: Observation) -> Decision:
        """One control tick (each baseline implements it)."""
        raise NotImplementedError

    def _decision(self, obs: Observation) -> Decision:
        playing = obs.state is PlayState.PLAYING
        return Decision(self.rate, self.target_s, _mode(self.rate, playing))


@dataclass(frozen=True, slots=True)
class HlsJsConfig:
    """hls.js settings."""

    max_rate: float = 1.25
    """``maxLiveSyncPlaybackRate`` (hls.js's default 1 turns catch-up off)."""
    stall_increase_s: float = 1.0
    """``liveSyncOnStallIncrease``."""
    min_forward_buffer_s: float = 1.0
    """Forward buffer needed before speeding up."""


class HlsJsLike(_Base):
    """hls.js-like: sigmoid, speed-up only, +1 s of target per stall (at most one
    target duration in all, permanent)."""

    name = "hls.js-like"

    def __init__(self, target_s: float = 1.0, config: HlsJsConfig | None = None) -> None:
        super().__init__(target_s)
        self.config = config or HlsJsConfig()

    def update(self, now: float, obs: Observation) -> Decision:
        cfg = self.config
        increase = min(obs.stalls * cfg.stall_increase_s, obs.target_duration_s)
        self.target_s = self.base_s + increase
        if obs.state is not PlayState.PLAYING or obs.latency_s is None:
            return self._decision(obs)
        distance = obs.latency_s - self.target_s
        edge_stalled = 0.0
        if self.last_part is not None:
            edge_stalled = max(0.0, now - self.last_part - 3 * obs.part_s)
        in_range = distance < self.target_s + obs.target_duration_s
        if in_range and distance > 0.05 and obs.buffer_s > cfg.min_forward_buffer_s:
            sigmoid = 2 / (1 + math.exp(-0.75 * distance - edge_stalled))
            self.rate = min(cfg.max_rate, max(1.0, round(sigmoid * 20) / 20))
        else:
            self.rate = 1.0
        return self._decision(obs)


@dataclass(frozen=True, slots=True)
class ExoConfig:
    """ExoPlayer ``DefaultLivePlaybackSpeedControl`` defaults."""

    min_rate: float = 0.97
    """``fallbackMinPlaybackSpeed``."""
    max_rate: float = 1.03
    """``fallbackMaxPlaybackSpeed``."""
    gain: float = 0.1
    """``proportionalControlFactor`` (per second of offset error)."""
    unit_speed_error_s: float = 0.02
    """``maxLiveOffsetErrorMsForUnitSpeed``."""
    min_update_s: float = 1.0
    """``minUpdateIntervalMs``."""
    rebuffer_increment_s: float = 0.5
    """``targetLiveOffsetIncrementOnRebufferMs``."""
    smoothing_time_s: float = 10.0
    """Time constant of the smoothed minimum possible offset."""


class ExoLike(_Base):
    """ExoPlayer-like: proportional +-3 %, +0.5 s per rebuffer, decaying back."""

    name = "ExoPlayer-like"

    def __init__(self, target_s: float = 1.0, config: ExoConfig | None = None) -> None:
        super().__init__(target_s)
        self.config = config or ExoConfig()
        self._stalls = 0
        self._updated: float | None = None
        self._smoothed: float | None = None
        self._deviation = 0.0
        self._last_sample: float | None = None

    def update(self, now: float, obs: Observation) -> Decision:
        cfg = self.config
        if obs.stalls > self._stalls:
            self.target_s += cfg.rebuffer_increment_s * (obs.stalls - self._stalls)
            self._stalls = obs.stalls
            self._smoothed = None  # ExoPlayer resets its estimate after a rebuffer
        if obs.state is not PlayState.PLAYING or obs.latency_s is None:
            return self._decision(obs)
        possible = obs.latency_s - obs.buffer_s
        dt = 0.0 if self._last_sample is None else now - self._last_sample
        self._last_sample = now
        if self._smoothed is None:
            self._smoothed, self._deviation = possible, 0.0
        else:
            a = math.exp(-dt / cfg.smoothing_time_s)
            self._smoothed = a * self._smoothed + (1 - a) * possible
            self._deviation = a * self._deviation + (1 - a) * abs(possible - self._smoothed)
        if self._updated is not None and now - self._updated < cfg.min_update_s:
            return self._decision(obs)
        self._updated = now
        safe = self._smoothed + 3 * self._deviation
        if self.target_s > safe:
            decrement = (self.rate - 1 + cfg.max_rate - 1) * cfg.min_update_s
            self.target_s = max(safe, self.base_s, self.target_s - max(0.0, decrement))
        else:
            self.target_s = safe
        error = obs.latency_s - self.target_s
        if abs(error) < cfg.unit_speed_error_s:
            self.rate = 1.0
        else:
            self.rate = min(cfg.max_rate, max(cfg.min_rate, 1 + cfg.gain * error))
        return self._decision(obs)


@dataclass(frozen=True, slots=True)
class ShakaConfig:
    """Shaka Player live-sync settings (defaults of its documentation)."""

    tolerance_s: float = 0.5
    """``targetLatencyTolerance``."""
    max_rate: float = 1.1
    """``maxPlaybackRate``."""
    min_rate: float = 0.95
    """``minPlaybackRate``."""


class ShakaLike(_Base):
    """Shaka-like: bang-bang 0.95x / 1.1x outside target +- 0.5 s."""

    name = "Shaka-like"

    def __init__(self, target_s: float = 1.0, config: ShakaConfig | None = None) -> None:
        super().__init__(target_s)
        self.config = config or ShakaConfig()

    def update(self, now: float, obs: Observation) -> Decision:
        cfg = self.config
        if obs.state is not PlayState.PLAYING or obs.latency_s is None:
            return self._decision(obs)
        if obs.latency_s > self.target_s + cfg.tolerance_s:
            self.rate = cfg.max_rate
        elif obs.latency_s < self.target_s - cfg.tolerance_s:
            self.rate = cfg.min_rate
        else:
            self.rate = 1.0
        return self._decision(obs)


@dataclass(frozen=True, slots=True)
class DashConfig:
    """dash.js catch-up settings (defaults)."""

    max_delta: float = 0.5
    """``liveCatchup.playbackRate.max`` (and ``-min``): rates in [1 - 0.5, 1 + 0.5]."""
    deadband: float = 0.02
    """Unit speed within this fraction of the target latency."""
    min_change: float = 0.02
    """Rate changes smaller than this are not applied."""


class DashLike(_Base):
    """dash.js-like: sigmoid between 0.5x and 1.5x, fixed target."""

    name = "dash.js-like"

    def __init__(self, target_s: float = 1.0, config: DashConfig | None = None) -> None:
        super().__init__(target_s)
        self.config = config or DashConfig()

    def update(self, now: float, obs: Observation) -> Decision:
        cfg = self.config
        if obs.state is not PlayState.PLAYING or obs.latency_s is None:
            return self._decision(obs)
        delta = obs.latency_s - self.target_s
        if abs(delta) <= cfg.deadband * self.target_s:
            new = 1.0
        else:
            c = cfg.max_delta
            new = 1 - c + 2 * c / (1 + math.exp(-5 * delta))
        if abs(new - self.rate) >= cfg.min_change or new == 1.0:
            self.rate = new
        return self._decision(obs)


BASELINES: dict[str, type[_Base]] = {
    "hls.js-like": HlsJsLike,
    "ExoPlayer-like": ExoLike,
    "Shaka-like": ShakaLike,
    "dash.js-like": DashLike,
}
"""The baseline policies by name."""
