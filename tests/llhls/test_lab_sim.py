"""The simulator: the real session, buffer, controller and ABR on a virtual clock."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from llhls.lab.baselines import DashLike, HlsJsLike
from llhls.lab.control_stats import catchup_episodes, recovery, spread, viewer_stats
from llhls.lab.sim import SimConfig, StreamConfig, ViewerSpec, simulate
from llhls.lab.traces import ConstantRate, RateTrace, load_trace
from player.catchup import CatchupConfig, Controller


def ours() -> Controller:
    return Controller(CatchupConfig())


def shared(target: float) -> Controller:
    ctrl = Controller(CatchupConfig(target_s=target, adapt_target=False))
    return ctrl


def one(policy: object = ours, **kw: object) -> SimConfig:
    startup = policy is ours  # only our controller has a startup buffer
    spec = ViewerSpec("v", policy, ConstantRate(5e6), startup_buffer=startup)  # type: ignore[arg-type]
    return SimConfig(duration_s=40.0, viewers=(spec,), **kw)  # type: ignore[arg-type]


def test_runs_the_real_cores_on_a_steady_link() -> None:
    res = simulate(one()).viewers[0]
    assert res.failed is None
    assert res.started_at is not None and res.started_at < 11.0  # joined at 10 s
    assert res.stalls == 0
    assert res.requests > 100  # blocking reloads and parts, one per part
    assert res.switches >= 1  # the ABR climbed from its initial rendition
    assert max(res.bitrate) == 2_400_000  # 5 Mbit/s sustains the top rung
    latencies = [x for x in res.latency if not math.isnan(x)]
    assert abs(latencies[-1] - res.target[-1]) <= 0.05
    assert 0.6 < min(latencies) and max(latencies) < 1.6


def test_deterministic() -> None:
    trace = RateTrace("wobbly", [(0, 3.0), (2, 0.4), (3, 2.0), (6, 0.9), (8, 4.0)])
    spec = ViewerSpec("v", ours, trace, rtt_s=0.07, loss=0.01, startup_buffer=True)
    config = SimConfig(duration_s=60.0, viewers=(spec,), pauses=((30.0, 1.5),), seed=7)
    a, b = simulate(config), simulate(config)
    assert a.events == b.events
    ra, rb = a.viewers[0], b.viewers[0]
    assert ra.t == rb.t and ra.rate == rb.rate and ra.target == rb.target
    assert [x for x in ra.latency if not math.isnan(x)] == [
        x for x in rb.latency if not math.isnan(x)
    ]
    assert ra.stall_s == rb.stall_s and ra.bytes == rb.bytes


def test_speed() -> None:
    config = SimConfig(duration_s=130.0, viewers=(ViewerSpec("v", ours, ConstantRate(3e6)),))
    started = time.perf_counter()
    simulate(config)
    wall = time.perf_counter() - started
    # about 100-150x real time for one viewer here (the session parses every
    # playlist update); keep a wide margin for slow CI machines
    assert 120.0 / wall > 10.0


def test_recovers_from_a_two_second_origin_pause() -> None:
    res = simulate(one(pauses=((25.0, 2.0),))).viewers[0]
    rec = recovery(res, 25.0, 2.0)
    assert rec.stalled
    assert rec.to_target_s is not None and rec.to_target_s <= 10.0
    assert rec.target_rise_s == pytest.approx(0.1, abs=0.11)  # an isolated stall: small bump
    stats = viewer_stats(res, 0.1)
    assert stats.max_rate <= 1.25
    assert stats.stalls_after_catchup == 0
    assert catchup_episodes(res)  # it did catch up


def test_baselines_run_in_the_same_simulator() -> None:
    for policy in (HlsJsLike, DashLike):
        res = simulate(one(policy, pauses=((25.0, 2.0),))).viewers[0]
        assert res.failed is None and res.started_at is not None
        assert res.startup_extra_s == 0.0


def test_viewers_with_a_shared_target_converge() -> None:
    viewers = tuple(
        ViewerSpec(f"v{i}", lambda: shared(1.5), ConstantRate(5e6), rtt_s=rtt, join_s=join)
        for i, (rtt, join) in enumerate([(0.02, 10.0), (0.05, 11.37), (0.12, 12.91)])
    )
    result = simulate(SimConfig(duration_s=45.0, viewers=viewers))
    mean, worst = spread(result.viewers, 35.0)
    assert worst <= 0.1
    assert mean <= 0.05


def test_mahimahi_trace_drives_the_link(tmp_path: Path) -> None:
    path = tmp_path / "4mbit.trace"
    # 1 packet every 3 ms = 4 Mbit/s, with a 1 s outage every 5 s
    stamps = [ms for ms in range(3, 5001, 3) if not 2000 <= ms < 3000]
    path.write_text("".join(f"{ms}\n" for ms in stamps))
    trace = load_trace(path)
    spec = ViewerSpec("v", ours, trace, startup_buffer=True)
    res = simulate(SimConfig(duration_s=50.0, viewers=(spec,))).viewers[0]
    assert res.failed is None and res.started_at is not None
    assert res.bytes > 1_000_000
    assert max(res.bitrate) <= 1_200_000  # 3.2 Mbit/s on average: not the top rung


def test_jump_to_live_restarts_far_behind() -> None:
    trace = RateTrace("outage", [(0, 5.0), (20, 0.0), (30, 5.0), (100, 5.0)])
    spec = ViewerSpec("v", ours, trace, join_s=10.0)
    res = simulate(SimConfig(duration_s=60.0, viewers=(spec,))).viewers[0]
    assert res.jumps >= 1  # 10 s of outage: far beyond 3 target durations
    latencies = [x for t, x in zip(res.t, res.latency, strict=True) if t > 50]
    assert all(x < 3.0 for x in latencies if not math.isnan(x))


def test_stream_config_validation() -> None:
    with pytest.raises(ValueError):
        StreamConfig(bitrates=())
    with pytest.raises(ValueError):
        SimConfig(duration_s=10.0, viewers=())
    with pytest.raises(ValueError):
        SimConfig(duration_s=10.0, viewers=(ViewerSpec("v", ours, ConstantRate(1e6)),),
                  pauses=((5.0, 0.0),))  # fmt: skip
