"""Baseline rate laws (from their players' documented behaviour) and the bench figures."""

from __future__ import annotations

import math

import pytest

from llhls.lab.baselines import DashLike, ExoLike, HlsJsLike, ShakaLike
from llhls.lab.control_stats import (
    catchup_episodes,
    recovery,
    spread,
    stall_intervals,
    viewer_stats,
)
from llhls.lab.sim import ViewerResult
from player.buffer import PlayState
from player.catchup import Observation


def obs(latency: float, buffer: float = 2.0, stalls: int = 0, playing: bool = True) -> Observation:
    state = PlayState.PLAYING if playing else PlayState.STALLED
    return Observation(latency, buffer, state, stalls, 0.2, 2.0)


@pytest.mark.parametrize(
    ("latency", "buffer", "rate"),
    [
        (1.0, 2.0, 1.0),  # on target
        (1.04, 2.0, 1.0),  # within 0.05
        (1.5, 2.0, 1.2),  # 2 / (1 + e^-0.375) = 1.185 -> 1.2 (rounded to 0.05)
        (3.0, 2.0, 1.25),  # capped at maxLiveSyncPlaybackRate
        (1.5, 0.8, 1.0),  # needs > 1 s of forward buffer
        (4.5, 2.0, 1.0),  # beyond target + one target duration: not "in live range"
        (0.5, 2.0, 1.0),  # speed-up only: never slows down
    ],
)
def test_hlsjs_like(latency: float, buffer: float, rate: float) -> None:
    assert HlsJsLike(1.0).update(0.0, obs(latency, buffer)).rate == pytest.approx(rate)


def test_hlsjs_like_adds_a_second_per_stall_for_good() -> None:
    policy = HlsJsLike(1.0)
    assert policy.update(0.0, obs(1.0, stalls=1)).target_s == pytest.approx(2.0)
    assert policy.update(1.0, obs(1.0, stalls=3)).target_s == pytest.approx(3.0)  # <= 1 TD
    assert policy.update(600.0, obs(1.0, stalls=3)).target_s == pytest.approx(3.0)


def test_exo_like_is_proportional_bounded_and_slow() -> None:
    policy = ExoLike(1.0)
    first = policy.update(0.0, obs(1.2, buffer=1.0))
    assert first.rate == pytest.approx(1.02)
    assert policy.update(0.5, obs(3.0, buffer=1.0)).rate == pytest.approx(1.02)  # 1 s interval
    assert policy.update(1.0, obs(3.0, buffer=1.0)).rate == pytest.approx(1.03)  # clamped
    assert policy.update(2.0, obs(0.5, buffer=0.1)).rate == pytest.approx(0.97)
    assert policy.update(3.0, obs(1.01, buffer=0.5)).rate == 1.0  # within 20 ms


def test_exo_like_rebuffer_raises_the_target_which_decays() -> None:
    policy = ExoLike(1.0)
    policy.update(0.0, obs(1.0, buffer=0.7))
    raised = policy.update(1.0, obs(2.0, buffer=1.7, stalls=1)).target_s
    assert raised >= 1.5 - 0.06
    later = raised
    for i in range(2, 200):
        later = policy.update(float(i), obs(1.0, buffer=0.7, stalls=1)).target_s
    assert later < raised  # not a permanent ratchet
    assert later >= 1.0


@pytest.mark.parametrize(
    ("latency", "rate"), [(1.0, 1.0), (1.49, 1.0), (1.51, 1.1), (0.49, 0.95), (0.6, 1.0)]
)
def test_shaka_like(latency: float, rate: float) -> None:
    assert ShakaLike(1.0).update(0.0, obs(latency)).rate == pytest.approx(rate)


@pytest.mark.parametrize(
    ("latency", "rate"),
    [
        (1.0, 1.0),
        (1.015, 1.0),  # within 2 % of the target
        (1.2, 1.231),  # 0.5 + 1 / (1 + e^-1)
        (5.0, 1.5),
        (0.2, 0.518),
    ],
)
def test_dash_like(latency: float, rate: float) -> None:
    assert DashLike(1.0).update(0.0, obs(latency)).rate == pytest.approx(rate, abs=1e-3)


def test_baselines_hold_their_rate_while_stalled() -> None:
    policy = ShakaLike(1.0)
    policy.update(0.0, obs(2.0))
    assert policy.update(0.1, obs(2.1, playing=False)).rate == pytest.approx(1.1)


# -- figures --------------------------------------------------------------------------------


def fake(rates: list[float], playing: list[bool], latency: list[float]) -> ViewerResult:
    n = len(rates)
    res = ViewerResult("f", t=[round(10 + 0.1 * i, 6) for i in range(n)])
    res.rate, res.playing, res.latency = rates, playing, latency
    res.buffer, res.target, res.bitrate = [1.0] * n, [1.0] * n, [600_000] * n
    res.played_s = 0.1 * sum(playing)
    res.stall_s = 0.1 * (n - sum(playing))
    return res


def test_stats_on_a_synthetic_run() -> None:
    nan = math.nan
    rates = [1.0, 1.0, 1.1, 1.2, 1.1, 1.0, 1.0, 1.0, 0.95, 0.95, 1.0, 1.0]
    playing = [False, True, True, True, True, True, False, True, True, True, True, True]
    latency = [nan, 1.5, 1.49, 1.47, 1.45, 1.44, 1.54, 1.54, 1.54, 1.55, 1.5, 1.5]
    res = fake(rates, playing, latency)
    assert [x for pair in stall_intervals(res) for x in pair] == pytest.approx([10.6, 10.7])
    assert [x for pair in catchup_episodes(res) for x in pair] == pytest.approx([10.2, 10.5])
    stats = viewer_stats(res, 0.1)
    assert stats.max_rate == pytest.approx(1.2) and stats.min_rate == pytest.approx(0.95)
    assert stats.max_rate_dev == pytest.approx(0.2)
    assert stats.rate_off_s == pytest.approx(0.5)
    assert stats.catchups == 1
    assert stats.stalls_after_catchup == 1
    assert stats.stalls_caused_by_catchup == 0  # the 0.1 s stall outlasts the 0.04 s spent
    assert stats.reversals_per_min == pytest.approx(1 / (11 * 0.1 / 60))


def test_recovery_and_spread() -> None:
    nan = math.nan
    latency = [1.0] * 5 + [1.5, 2.0, 2.5] + [2.4, 2.2, 1.9, 1.5, 1.2, 1.04, 1.0]
    playing = [True] * 5 + [False] * 3 + [True] * 7
    res = fake([1.0] * 15, playing, latency)
    rec = recovery(res, 10.45, 0.3)
    assert rec.stalled and rec.stall_end == pytest.approx(10.8)
    assert rec.to_target_s == pytest.approx(0.5)
    other = fake([1.0] * 15, [True] * 15, [x + 0.04 if not math.isnan(x) else nan for x in latency])
    mean, worst = spread([res, other], 11.0)
    assert mean == pytest.approx(0.04) and worst == pytest.approx(0.04)
