"""Rendition choice: the rule on tables, the estimator, no oscillation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from player.abr import Abr, AbrConfig, AbrSelector, ThroughputEstimator, choose
from player.actions import RenditionInfo

LADDER = [300_000, 600_000, 1_200_000, 2_400_000]
CFG = AbrConfig()


@pytest.mark.parametrize(
    ("current", "estimate", "buffer", "since", "out", "why"),
    [
        (1, 1.3e6, 0.6, 10.0, 1, "stay: 1.2 Mbit/s needs 2.4 to go up"),
        (1, 2.5e6, 0.6, 10.0, 2, "up: 1.2 Mbit/s <= 0.5 x 2.5"),
        (1, 2.5e6, 0.6, 3.0, 1, "up waits for the dwell"),
        (1, 2.5e6, 0.2, 10.0, 1, "up needs buffer"),
        (0, 9.9e6, 0.6, 10.0, 1, "one rung at a time"),
        (2, 1.6e6, 0.6, 0.0, 2, "hysteresis band: 1.2 <= 0.8 x 1.6, stay"),
        (2, 1.4e6, 0.6, 2.0, 1, "down to the sustainable: 0.6 <= 0.6 x 1.4"),
        (3, 1.1e6, 0.6, 2.0, 1, "down straight to the sustainable rung"),
        (2, 1.4e6, 0.6, 0.5, 2, "down waits for its short dwell"),
        (2, 1.0e6, 0.1, 0.0, 0, "emergency: nearly empty and under water"),
        (0, 0.1e6, 0.0, 0.0, 0, "nothing lower"),
    ],
)
def test_choose(
    current: int, estimate: float, buffer: float, since: float, out: int, why: str
) -> None:
    assert choose(LADDER, current, estimate, buffer, since, CFG) == out, why


def test_estimator_is_unbiased_on_a_constant_rate() -> None:
    est = ThroughputEstimator(2.0, 8.0, 1e6)
    assert est.estimate() == 1e6
    for _ in range(5):
        est.add(50_000, 0.1)  # 4 Mbit/s
    assert est.estimate() == pytest.approx(4e6)


def test_estimator_follows_a_drop_quickly() -> None:
    est = ThroughputEstimator(2.0, 8.0, 1e6)
    for _ in range(50):
        est.add(50_000, 0.1)
    for _ in range(10):
        est.add(50_000, 0.4)  # 1 Mbit/s for 4 s
    assert est.estimate() < 2e6  # the lower (fast) average counts


def renditions() -> list[RenditionInfo]:
    return [
        RenditionInfo(f"v{b // 1000}k", "video", f"/live/v{b // 1000}k/media.m3u8", b)
        for b in LADDER
    ] + [RenditionInfo("audio", "audio", "/live/audio/media.m3u8", group="aud", default=True)]


def test_abr_starts_from_the_initial_estimate_and_selects_audio() -> None:
    abr = Abr(renditions())
    assert abr.current_id == "v600k"  # 0.6 x 1 Mbit/s
    vids = [r for r in renditions() if r.type == "video"]
    assert AbrSelector(CFG)(vids) == ("v600k", None)
    grouped = [
        RenditionInfo(r.id, r.type, r.uri, r.bandwidth, group="aud") for r in vids
    ] + renditions()[-1:]
    assert AbrSelector(CFG)(grouped) == ("v600k", "audio")


def test_abr_switches_with_dwell_and_no_oscillation() -> None:
    abr = Abr(renditions())
    now, decisions = 0.0, []
    for _ in range(300):  # 30 s at 3 Mbit/s
        abr.on_download(37_500, 0.1)
        choice = abr.decide(now, 0.8)
        if choice is not None:
            decisions.append((now, choice))
        now += 0.1
    assert [c for _, c in decisions] == ["v1200k"]  # 2.4 needs 4.8 Mbit/s; no way back
    assert abr.switches == 1


@settings(max_examples=50, deadline=None)
@given(st.floats(1e5, 2e7), st.floats(0.0, 3.0), st.integers(0, 3))
def test_constant_conditions_never_oscillate(bps: float, buffer: float, start: int) -> None:
    abr = Abr(renditions())
    abr.current = start
    path = [abr.current]
    for i in range(400):
        abr.on_download(50_000, 50_000 * 8 / bps)
        abr.decide(i * 0.1, buffer)
        path.append(abr.current)
    moves = [b - a for a, b in zip(path, path[1:], strict=False) if b != a]
    assert all(m > 0 for m in moves) or all(m < 0 for m in moves)  # one direction only
    assert abr.switches <= len(LADDER)


def test_small_downloads_are_not_samples() -> None:
    abr = Abr(renditions())
    abr.on_download(800, 0.05)
    assert abr.estimator.samples == 0


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        AbrConfig(safety=0.9, down_margin=0.8)
    with pytest.raises(ValueError):
        Abr([RenditionInfo("audio", "audio", "/a.m3u8")])


def test_timeouts_lower_the_estimate_and_bring_the_emergency_switch() -> None:
    """A link too slow to complete any download: only timeouts tell ABR. Each one
    bounds the throughput by what the part carries in the time it was given."""
    abr = Abr(renditions())
    abr.current = 2  # v1200k, after good downloads (2.4 Mbit/s)
    for _ in range(20):
        abr.on_download(30_000, 0.1)
    assert abr.decide(2.0, 1.0) is None
    before = abr.estimator.estimate()
    # a 0.2 s part of 1.2 Mbit/s (30 kB) not complete after 8 s: < 30 kbit/s
    abr.on_timeout(8.0, 0.2)
    assert abr.estimator.estimate() < before
    abr.on_timeout(8.0, 0.2)
    assert abr.decide(30.0, 0.0) == "v300k"  # emergency: the lowest rung at once
    # no sample from nonsense
    samples = abr.estimator.samples
    abr.on_timeout(0.0, 0.2)
    abr.on_timeout(8.0, 0.0)
    assert abr.estimator.samples == samples
