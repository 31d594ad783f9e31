"""The latency controller: control laws on tables, the state machine in a closed loop."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from player.buffer import PlayState
from player.catchup import (
    MAX_STARTUP_EXTRA_S,
    CatchupConfig,
    Controller,
    Decision,
    Health,
    Observation,
    assess_health,
    braking_distance,
    braking_excess,
    decay_target,
    delivery_delay,
    edge_late,
    edge_stale,
    high_delay,
    history_delay,
    jump_needed,
    network_grade,
    next_mode,
    quiet_after_stall,
    raise_target_after_stall,
    rate,
    required_latency,
    slew,
    spread,
    stall_pressure,
    startup_extra,
    startup_plan,
)

CFG = CatchupConfig()
OK = Health(ok=True, reason="")
BAD = Health(ok=False, reason="jitter")


# -- laws on tables -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("excess", "step", "dwell", "distance"),
    [
        (0.0, 0.05, 0.2, 0.0),
        (-0.1, 0.05, 0.2, 0.0),
        (0.05, 0.05, 0.2, 0.01),  # one dwell at 1.05
        (0.10, 0.05, 0.2, 0.03),  # 0.2 * (0.10 + 0.05)
        (0.25, 0.05, 0.2, 0.15),  # 0.2 * (0.25 + 0.20 + 0.15 + 0.10 + 0.05)
        (0.07, 0.05, 0.2, 0.018),  # 0.2 * (0.07 + 0.02)
    ],
)
def test_braking_distance(excess: float, step: float, dwell: float, distance: float) -> None:
    assert braking_distance(excess, step, dwell) == pytest.approx(distance)


@pytest.mark.parametrize(
    ("distance", "cap", "excess"),
    [
        (0.0, 0.25, 0.0),
        (-1.0, 0.25, 0.0),
        (0.005, 0.25, 0.025),  # below one step: held for one dwell
        (0.01, 0.25, 0.05),
        (0.03, 0.25, 0.10),
        (0.15, 0.25, 0.25),
        (5.0, 0.25, 0.25),  # capped
        (0.03, 0.05, 0.05),  # ahead: cap 1 - min_rate
    ],
)
def test_braking_excess(distance: float, cap: float, excess: float) -> None:
    assert braking_excess(distance, 0.05, 0.2, cap) == pytest.approx(excess)


@given(st.floats(0.0, 3.0), st.floats(0.01, 0.1), st.floats(0.05, 1.0))
def test_braking_excess_inverts_braking_distance(
    distance: float, step: float, dwell: float
) -> None:
    excess = braking_excess(distance, step, dwell, cap=10.0)
    assert braking_distance(excess, step, dwell) == pytest.approx(distance, abs=1e-9)


@pytest.mark.parametrize(
    ("current", "desired", "out"),
    [(1.0, 1.25, 1.05), (1.2, 1.0, 1.15), (1.0, 1.02, 1.02), (0.95, 1.25, 1.0), (1.0, 1.0, 1.0)],
)
def test_slew(current: float, desired: float, out: float) -> None:
    assert slew(current, desired, 0.05) == pytest.approx(out)


@pytest.mark.parametrize(
    ("mode", "error", "affordable", "out"),
    [
        ("idle", 2.0, 2.0, 1.0),
        ("catchup", 2.0, 2.0, 1.25),
        ("catchup", 0.03, 2.0, 1.10),
        ("catchup", 2.0, 0.03, 1.10),  # only the affordable part is spent
        ("catchup", 2.0, -1.0, 1.0),
        ("ahead", -0.01, 0.0, 0.95),
        ("ahead", -0.005, 0.0, 0.975),
        ("ahead", -2.0, 0.0, 0.95),
        ("low_buffer", 1.0, 1.0, 0.95),
        ("waiting", 1.0, 1.0, 1.0),
    ],
)
def test_rate_law(mode: str, error: float, affordable: float, out: float) -> None:
    assert rate(mode, error, affordable, CFG) == pytest.approx(out)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "error", "affordable", "buffer", "health", "out"),
    [
        ("idle", 0.04, 1.0, 0.8, OK, "idle"),  # inside the dead band
        ("idle", 0.06, 1.0, 0.8, OK, "catchup"),  # above enter_s
        ("catchup", 0.02, 1.0, 0.8, OK, "catchup"),  # hysteresis: kept above exit_s
        ("catchup", 0.01, 1.0, 0.8, OK, "idle"),  # below exit_s
        ("idle", 0.5, 1.0, 0.8, BAD, "idle"),  # gated off
        ("catchup", 0.5, 1.0, 0.8, BAD, "idle"),  # gate closes mid-way
        ("idle", 0.5, 0.04, 0.8, OK, "idle"),  # nothing affordable
        ("idle", 0.5, 1.0, 0.65, OK, "idle"),  # too little buffered to spend
        ("catchup", 0.5, 1.0, 0.65, OK, "idle"),  # stops when the buffer gets short
        ("idle", -0.06, 1.0, 0.8, BAD, "ahead"),  # slowing down needs no health
        ("ahead", -0.02, 1.0, 0.8, OK, "ahead"),
        ("ahead", -0.01, 1.0, 0.8, OK, "idle"),
        ("catchup", 0.5, 1.0, 0.25, OK, "low_buffer"),  # below low_buffer_s (0.3)
        ("idle", 0.0, 1.0, 0.25, OK, "low_buffer"),
        ("low_buffer", 0.5, 1.0, 0.45, OK, "low_buffer"),  # until recover_buffer_s (0.5)
        ("low_buffer", 0.0, 1.0, 0.55, OK, "idle"),
        ("low_buffer", 0.5, 1.0, 0.75, OK, "catchup"),
    ],
)
def test_next_mode(
    mode: str, error: float, affordable: float, buffer: float, health: Health, out: str
) -> None:
    got = next_mode(mode, error, affordable, buffer, health, CFG)  # type: ignore[arg-type]
    assert got == out


@pytest.mark.parametrize(
    ("jitter", "since", "edge", "headroom", "reason"),
    [
        (0.05, 5.0, 0.1, 2.0, ""),
        (0.05, None, 0.1, 2.0, "stall"),
        (0.05, 0.5, 0.1, 2.0, "stall"),
        (None, 5.0, 0.1, 2.0, "warmup"),
        (0.05, 5.0, 0.7, 2.0, "edge"),  # 3.5 parts without an arrival
        (0.30, 5.0, 0.1, 2.0, "jitter"),
        (0.05, 5.0, 0.1, 1.1, "throughput"),
        (0.05, 5.0, None, None, ""),
    ],
)
def test_assess_health(
    jitter: float | None,
    since: float | None,
    edge: float | None,
    headroom: float | None,
    reason: str,
) -> None:
    health = assess_health(jitter, since, edge, headroom, 0.2, CFG)
    assert health.reason == reason
    assert health.ok is (reason == "")


def test_quiet_after_stall_grows_with_pressure() -> None:
    assert [quiet_after_stall(n, CFG) for n in (0, 1, 2, 3)] == [1.0, 1.0, 11.0, 21.0]
    health = assess_health(0.05, 5.0, 0.1, 2.0, 0.2, CFG, quiet_after_stall(2, CFG))
    assert health.reason == "stall"


def test_delay_statistics_ignore_a_few_outliers() -> None:
    delays = [0.1] * 21 + [2.0, 1.5, 1.0]  # one outage: three late parts
    assert high_delay(delays, CFG) == pytest.approx(0.1)
    assert spread(delays) == pytest.approx(0.0)
    assert required_latency(delays, 0.2, CFG) == pytest.approx(0.2 + 0.1 + CFG.margin_s)
    late = [0.1] * 15 + [0.5] * 10  # variability: many late parts
    assert high_delay(late, CFG) == pytest.approx(0.5)
    assert spread(late) == pytest.approx(0.4)
    assert high_delay([0.1] * 5, CFG) == CFG.default_delay_s
    assert spread([0.1] * 5) is None


@pytest.mark.parametrize(
    ("latency", "before", "duration", "delay"),
    [(1.0, 0.6, 0.2, 0.2), (2.3, 0.0, 0.2, 2.1), (0.8, 0.5, 0.2, 0.1)],
)
def test_delivery_delay(latency: float, before: float, duration: float, delay: float) -> None:
    assert delivery_delay(latency, before, duration) == pytest.approx(delay)


@pytest.mark.parametrize(
    ("target", "required", "stall", "recent", "out"),
    [
        (1.0, 0.5, 1.5, 1, 1.2),  # isolated: the least bump
        (1.0, 0.5, 1.5, 2, 1.95),  # second: half the stall is kept
        (1.0, 0.5, 1.5, 3, 2.7),  # frequent: all of it
        (1.0, 1.8, 0.2, 1, 1.8),  # the delays require more
        (4.5, 0.5, 2.0, 5, 5.0),  # ceiling
    ],
)
def test_raise_target_after_stall(
    target: float, required: float, stall: float, recent: int, out: float
) -> None:
    got = raise_target_after_stall(target, required, stall, recent, 5.0, CFG)
    assert got == pytest.approx(out)


def test_stall_pressure() -> None:
    assert [stall_pressure(n) for n in range(5)] == [0.0, 0.0, 0.5, 1.0, 1.0]


@pytest.mark.parametrize(
    ("target", "floor", "dt", "out"),
    [(2.0, 1.0, 20.0, 1.5), (2.0, 1.0, 0.0, 2.0), (1.0, 1.2, 5.0, 1.2), (1.0, 1.0, 9.0, 1.0)],
)
def test_decay_target(target: float, floor: float, dt: float, out: float) -> None:
    assert decay_target(target, floor, dt, 20.0) == pytest.approx(out)


@pytest.mark.parametrize(("error", "out"), [(5.9, False), (6.1, True), (-7.0, False)])
def test_jump_only_beyond_three_target_durations(error: float, out: bool) -> None:
    assert jump_needed(error, 2.0, CFG) is out


@pytest.mark.parametrize(
    ("rtt", "tput", "bitrate", "extra", "grade"),
    [
        (0.02, 20e6, 1e6, 0.0, "excellent"),
        (0.13, 20e6, 1e6, 0.15, "good"),
        (0.03, 2.6e6, 1e6, 0.3, "fair"),
        (0.08, None, 1e6, 0.275, "good"),
        (0.30, 1.0e6, 1e6, 0.85, "poor"),  # capped at the top of the range
        (1.00, 0.5e6, 1e6, 0.85, "poor"),
    ],
)
def test_startup_extra_by_network_grade(
    rtt: float, tput: float | None, bitrate: float, extra: float, grade: str
) -> None:
    assert startup_extra(rtt, tput, bitrate) == pytest.approx(extra)
    assert network_grade(startup_extra(rtt, tput, bitrate)) == grade
    plan = startup_plan(rtt, tput, bitrate)
    assert plan.extra_s == pytest.approx(extra) and plan.grade == grade


@given(st.floats(0, 5), st.one_of(st.none(), st.floats(0, 1e9)), st.floats(1e4, 1e8))
def test_startup_extra_stays_in_range(rtt: float, tput: float | None, bitrate: float) -> None:
    assert 0.0 <= startup_extra(rtt, tput, bitrate) <= MAX_STARTUP_EXTRA_S


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        CatchupConfig(max_rate=0.9)
    with pytest.raises(ValueError):
        CatchupConfig(exit_s=0.2, enter_s=0.1)
    with pytest.raises(ValueError):
        CatchupConfig(low_buffer_s=0.5, recover_buffer_s=0.2)
    with pytest.raises(ValueError):
        Observation(1.0, -0.1, PlayState.PLAYING, 0, 0.2, 2.0)


# -- the controller in a closed loop ----------------------------------------------------------

PART = 0.2
TICK = 0.1


def run_loop(
    ctrl: Controller,
    latency: float,
    seconds: float,
    *,
    delay: float = 0.1,
    start: float = 0.0,
    throughput: float | None = 4e6,
    bitrate: float | None = 1e6,
) -> tuple[list[float], list[Decision]]:
    """A steady network: a part every PART, ``delay`` old on arrival; playback at the
    controller's rate moves the latency. Returns the latency and decision per tick."""
    latencies: list[float] = []
    decisions: list[Decision] = []
    steps = round(seconds / TICK)
    for i in range(steps):
        now = start + i * TICK
        if i % round(PART / TICK) == 0:
            ctrl.on_part(now, max(0.0, latency - PART - delay), latency, PART)
        obs = Observation(
            latency_s=latency,
            buffer_s=max(0.0, latency - delay - PART / 2),
            state=PlayState.PLAYING,
            stalls=0,
            part_s=PART,
            target_duration_s=2.0,
            throughput_bps=throughput,
            bitrate_bps=bitrate,
        )
        decision = ctrl.update(now, obs)
        latencies.append(latency)
        decisions.append(decision)
        latency -= (decision.rate - 1.0) * TICK
    return latencies, decisions


def reversals(rates: list[float]) -> int:
    count, sign = 0, 0
    for r in rates:
        s = 0 if abs(r - 1) < 1e-9 else (1 if r > 1 else -1)
        if s and sign and s != sign:
            count += 1
        if s:
            sign = s
    return count


def test_catches_up_gently_and_lands_on_the_target() -> None:
    ctrl = Controller()
    latencies, decisions = run_loop(ctrl, 3.0, 30.0)
    rates = [d.rate for d in decisions]
    assert max(rates) == pytest.approx(1.25)
    assert all(abs(b - a) <= 0.05 + 1e-9 for a, b in zip(rates, rates[1:], strict=False))
    assert abs(latencies[-1] - 1.0) <= CFG.exit_s + 1e-6
    assert rates[-1] == 1.0
    # 2 s of excess at <= 1.25x: at least 8 s, and not much more (ramps, gate warm-up)
    first = next(i for i, r in enumerate(rates) if r > 1)
    last = max(i for i, r in enumerate(rates) if r > 1)
    assert 8.0 <= (last - first) * TICK <= 11.0
    assert reversals(rates) == 0


def test_changes_are_spaced_by_the_dwell() -> None:
    ctrl = Controller()
    _, decisions = run_loop(ctrl, 2.0, 20.0)
    changes = [i for i in range(1, len(decisions)) if decisions[i].rate != decisions[i - 1].rate]
    assert all(
        (b - a) * TICK >= CFG.dwell_s - 1e-9 for a, b in zip(changes, changes[1:], strict=False)
    )


def test_slows_down_when_ahead_of_the_target() -> None:
    ctrl = Controller()
    latencies, decisions = run_loop(ctrl, 0.7, 20.0)
    assert min(d.rate for d in decisions) == pytest.approx(0.95)
    assert abs(latencies[-1] - 1.0) <= CFG.exit_s + 1e-6


def test_gated_off_when_throughput_is_close_to_the_bitrate() -> None:
    ctrl = Controller()
    _, decisions = run_loop(ctrl, 2.0, 10.0, throughput=1.1e6, bitrate=1e6)
    assert all(d.rate <= 1.0 for d in decisions)
    assert decisions[-1].health is not None and decisions[-1].health.reason == "throughput"


def test_gated_off_when_the_live_edge_stalls() -> None:
    ctrl = Controller()
    run_loop(ctrl, 1.0, 5.0)
    obs = Observation(2.0, 1.0, PlayState.PLAYING, 0, PART, 2.0, 4e6, 1e6)
    decision = ctrl.update(5.0 + 0.8, obs)  # no part for 0.8 s
    assert decision.health is not None and decision.health.reason == "edge"
    assert decision.rate == 1.0


def test_gated_off_by_jitter() -> None:
    ctrl = Controller()
    for i in range(25):
        late = 0.6 if i % 3 == 0 else 0.05
        ctrl.on_part(i * PART, 2.0 - PART - late, 2.0, PART)
        ctrl.update(i * PART, Observation(2.0, 1.5, PlayState.PLAYING, 0, PART, 2.0))
    decision = ctrl.update(5.1, Observation(2.0, 1.5, PlayState.PLAYING, 0, PART, 2.0))
    assert decision.health is not None and decision.health.reason == "jitter"
    assert decision.rate <= 1.0


def test_never_spends_more_than_the_delays_allow() -> None:
    ctrl = Controller(CatchupConfig(target_s=0.3))
    latencies, decisions = run_loop(ctrl, 2.0, 30.0, delay=0.25)
    floor = decisions[-1].floor_s
    assert floor is not None and floor == pytest.approx(PART + 0.25 + CFG.margin_s)
    assert min(latencies) >= floor - CFG.exit_s  # the target 0.3 is not affordable


def test_low_buffer_slows_down() -> None:
    ctrl = Controller()
    run_loop(ctrl, 1.0, 3.0)
    decision = ctrl.update(3.0, Observation(1.0, 0.05, PlayState.PLAYING, 0, PART, 2.0))
    assert decision.mode == "low_buffer" and decision.rate == pytest.approx(0.95)


def test_stall_raises_the_target_which_decays_back() -> None:
    ctrl = Controller()
    run_loop(ctrl, 1.0, 5.0)
    ctrl.update(5.0, Observation(1.0, 0.0, PlayState.STALLED, 1, PART, 2.0))
    decision = ctrl.update(6.5, Observation(2.5, 0.3, PlayState.PLAYING, 1, PART, 2.0))
    assert decision.target_s == pytest.approx(1.0 + CFG.stall_bump_s)  # isolated stall
    assert decision.rate <= 1.0  # quiet after the stall: no catch-up
    latencies, decisions = run_loop(ctrl, 2.5, 120.0, start=6.6)
    assert decisions[-1].target_s == pytest.approx(1.0, abs=0.01)  # no permanent ratchet
    assert abs(latencies[-1] - decisions[-1].target_s) <= CFG.enter_s


def test_frequent_stalls_keep_what_they_cost() -> None:
    ctrl = Controller()
    run_loop(ctrl, 1.0, 3.0)
    now, stalls, targets = 3.0, 0, []
    for _ in range(3):
        stalls += 1
        ctrl.update(now, Observation(1.0, 0.0, PlayState.STALLED, stalls, PART, 2.0))
        now += 1.0
        targets.append(
            ctrl.update(now, Observation(2.0, 0.3, PlayState.PLAYING, stalls, PART, 2.0)).target_s
        )
        now += 5.0
    assert targets[0] == pytest.approx(1.2)
    assert targets[1] == pytest.approx(1.2 + 0.2 + 0.5)
    assert targets[2] == pytest.approx(1.9 + 0.2 + 1.0)


def test_jump_to_live_far_behind_even_while_stalled() -> None:
    ctrl = Controller()
    run_loop(ctrl, 1.0, 2.0)
    decision = ctrl.update(2.0, Observation(7.5, 0.0, PlayState.STALLED, 1, PART, 2.0))
    assert decision.jump
    again = ctrl.update(2.1, Observation(7.6, 0.0, PlayState.STALLED, 1, PART, 2.0))
    assert not again.jump  # cooldown


def test_no_jump_while_the_edge_itself_is_behind() -> None:
    """After an encoder outage the origin's live edge is itself seconds old: a jump
    would land on it and gain nothing. The jump waits until the edge is fresh."""
    ctrl = Controller()
    run_loop(ctrl, 1.0, 2.0)
    stale = Observation(10.0, 9.0, PlayState.PLAYING, 1, PART, 2.0, edge_age_s=8.0)
    assert not ctrl.update(11.0, stale).jump
    fresh = Observation(10.0, 9.0, PlayState.PLAYING, 1, PART, 2.0, edge_age_s=0.3)
    assert ctrl.update(11.1, fresh).jump  # no cooldown was spent on the vetoed one


@pytest.mark.parametrize(
    ("age", "part", "stale"),
    [
        (None, 0.2, False),
        (0.2, 0.2, False),
        (1.2, 0.2, False),
        (1.25, 0.2, True),
        (6.5, 6.0, False),
        (7.5, 6.0, True),
    ],
)
def test_edge_stale_beyond_a_part_and_a_second(age: float | None, part: float, stale: bool) -> None:
    assert edge_stale(age, part, CFG) is stale


def test_startup_plan_raises_the_target_then_decays() -> None:
    ctrl = Controller()
    ctrl.start(startup_plan(0.3, 1e6, 1e6))
    assert ctrl.target_s == pytest.approx(1.0 + MAX_STARTUP_EXTRA_S)
    _, decisions = run_loop(ctrl, 1.85, 150.0)
    assert decisions[-1].target_s == pytest.approx(1.0, abs=0.01)


def test_viewers_with_a_shared_target_converge() -> None:
    finals = []
    for latency in (0.62, 0.81, 1.37, 2.9):
        ctrl = Controller(CatchupConfig(adapt_target=False))
        ctrl.set_target(1.5)
        latencies, _ = run_loop(ctrl, latency, 40.0)
        finals.append(latencies[-1])
    assert max(finals) - min(finals) <= 0.1


@settings(max_examples=40, deadline=None)
@given(
    latency=st.floats(0.4, 6.0),
    delay=st.floats(0.02, 0.3),
    target=st.floats(0.8, 3.0),
)
def test_closed_loop_properties(latency: float, delay: float, target: float) -> None:
    """Constant conditions: bounded, slew-limited, no oscillation, monotone convergence.

    The low-buffer band sits below the buffer the goal leaves (its own property is
    :func:`test_low_buffer_band_holds_without_oscillation`)."""
    cfg = CatchupConfig(
        target_s=target, low_buffer_s=0.1, recover_buffer_s=0.25, min_catchup_buffer_s=0.3
    )
    ctrl = Controller(cfg)
    latencies, decisions = run_loop(ctrl, latency, 60.0, delay=delay)
    rates = [d.rate for d in decisions]
    assert all(cfg.min_rate - 1e-9 <= r <= cfg.max_rate + 1e-9 for r in rates)
    assert all(abs(b - a) <= cfg.step + 1e-9 for a, b in zip(rates, rates[1:], strict=False))
    assert reversals(rates) == 0
    goal = max(target, decisions[-1].floor_s or 0.0)
    diffs = [b - a for a, b in zip(latencies, latencies[1:], strict=False)]
    if latency > goal:
        assert all(d <= 1e-9 for d in diffs)  # never moves away from the goal
        assert min(latencies) >= goal - cfg.exit_s - 1e-6
    else:
        assert all(d >= -1e-9 for d in diffs)
        assert max(latencies) <= goal + cfg.exit_s + 1e-6
    assert abs(latencies[-1] - goal) <= cfg.enter_s + 1e-6  # converged within 60 s


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 20.0),
            st.floats(0.0, 5.0),
            st.sampled_from(list(PlayState)),
            st.one_of(st.none(), st.floats(1e4, 1e8)),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_rate_always_in_bounds(
    steps: list[tuple[float, float, PlayState, float | None]],
) -> None:
    ctrl = Controller()
    stalls = 0
    for i, (latency, buffer, state, tput) in enumerate(steps):
        now = i * 0.1
        if i % 2 == 0:
            ctrl.on_part(now, buffer, latency, PART)
        stalls += state is PlayState.STALLED
        obs = Observation(latency, buffer, state, stalls, PART, 2.0, tput, 1e6)
        decision = ctrl.update(now, obs)
        assert CFG.min_rate <= decision.rate <= CFG.max_rate
        assert math.isfinite(decision.target_s)
        assert CFG.target_s <= decision.target_s <= CFG.target_s + CFG.max_boost_s + 1e-9


# -- long memory of delays, late live edge ------------------------------------------------------

LATE = CatchupConfig(late_edge_buffer_s=1.0)


@pytest.mark.parametrize(
    ("delays", "quantile", "out"),
    [
        ([0.1] * 5, 0.95, None),  # too few samples
        ([0.1] * 20, 0.95, 0.1),
        ([0.1] * 19 + [3.0], 0.95, 0.1),  # one late part in 20: below the 95th percentile
        ([0.1] * 18 + [2.0, 3.0], 0.95, 2.0),  # two: an outage the target must cover
        ([0.1] * 18 + [2.0, 3.0], 1.0, 3.0),
        ([0.3, 0.1, 0.2, 0.5, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0], 0.5, 0.5),
    ],
)
def test_history_delay(delays: list[float], quantile: float, out: float | None) -> None:
    got = history_delay(delays, quantile)
    assert got == (None if out is None else pytest.approx(out))


def test_required_latency_covers_the_long_memory() -> None:
    recent = [0.1] * 25
    assert required_latency(recent, 0.2, CFG) == pytest.approx(0.2 + 0.1 + CFG.margin_s)
    assert required_latency(recent, 0.2, CFG, 0.9) == pytest.approx(0.2 + 0.9 + CFG.margin_s)
    assert required_latency(recent, 0.2, CFG, 0.05) == pytest.approx(0.2 + 0.1 + CFG.margin_s)


@pytest.mark.parametrize(
    ("edge", "buffer", "out"),
    [
        (None, 0.5, False),
        (0.2, 0.5, False),  # a part just arrived
        (0.31, 0.5, True),  # 1.5 part durations without a part, little buffered
        (0.31, 1.2, False),  # plenty buffered: nothing to protect yet
        (2.0, 0.99, True),
    ],
)
def test_edge_late(edge: float | None, buffer: float, out: bool) -> None:
    assert edge_late(edge, 0.2, buffer, LATE) is out
    assert edge_late(edge, 0.2, buffer, CFG) is False  # off by default


@pytest.mark.parametrize(
    ("mode", "buffer", "late", "out"),
    [
        ("idle", 0.9, True, "low_buffer"),  # draining: slow down before it runs low
        ("catchup", 0.9, True, "low_buffer"),  # a catch-up stops at once
        ("low_buffer", 0.8, False, "idle"),  # on time again, buffer recovered
        ("low_buffer", 0.4, False, "low_buffer"),  # below recover_buffer_s
    ],
)
def test_next_mode_when_the_edge_is_late(mode: str, buffer: float, late: bool, out: str) -> None:
    got = next_mode(mode, 0.0, 1.0, buffer, OK, CFG, late)  # type: ignore[arg-type]
    assert got == out


def test_slows_down_when_parts_stop_arriving() -> None:
    ctrl = Controller(LATE)
    run_loop(ctrl, 1.0, 10.0)
    now = 10.0
    rates = []
    for i in range(8):  # no part for 0.8 s, the buffer drains
        obs = Observation(1.0, max(0.0, 0.75 - 0.1 * i), PlayState.PLAYING, 0, PART, 2.0, 4e6, 1e6)
        rates.append(ctrl.update(now + i * TICK, obs).rate)
    assert rates[0] == 1.0  # a part is not late yet
    assert min(rates) == pytest.approx(CFG.min_rate)
    assert all(abs(b - a) <= CFG.step + 1e-9 for a, b in zip(rates, rates[1:], strict=False))


@pytest.mark.parametrize("history", [0.0, 60.0])
def test_target_rises_ahead_of_trouble_and_decays_when_healthy(history: float) -> None:
    """Every tenth part 0.8 s late, no stall: too rare for the recent window (fewer
    than 4 of 25), enough for the long memory (10 % > 5 %) when it is on; the target
    then covers them, and decays back once they are forgotten."""
    ctrl = Controller(CatchupConfig(history_s=history))
    run_loop(ctrl, 1.0, 20.0)
    now, latency = 20.0, 1.0
    for i in range(100):
        late = 0.8 if i % 10 == 0 else 0.1
        ctrl.on_part(now, max(0.0, latency - PART - late), latency, PART)
        obs = Observation(latency, max(0.0, latency - 0.2), PlayState.PLAYING, 0, PART, 2.0)
        decision = ctrl.update(now, obs)
        latency -= (decision.rate - 1.0) * PART
        now += PART
    if not history:
        assert decision.target_s == pytest.approx(1.0)
        return
    assert decision.target_s >= PART + 0.8 + CFG.margin_s - 1e-9  # risen without a stall
    risen = decision.target_s
    _, decisions = run_loop(ctrl, latency, 200.0, start=now)
    assert decisions[-1].target_s == pytest.approx(1.0, abs=0.01)  # forgotten: back to base
    assert max(d.target_s for d in decisions) <= risen + 1e-9


@settings(max_examples=30, deadline=None)
@given(latency=st.floats(0.3, 1.2), delay=st.floats(0.02, 0.3))
def test_low_buffer_band_holds_without_oscillation(latency: float, delay: float) -> None:
    """Default thresholds, from a low buffer: the latency only rises (0.95x) until
    ``recover_buffer_s`` is buffered; where that overshoots the target (a target
    leaving less than ``recover_buffer_s`` buffered) one catch-up settles it, then
    the rate holds (at most one reversal, no further change)."""
    ctrl = Controller()
    latencies, decisions = run_loop(ctrl, latency, 40.0, delay=delay)
    rates = [d.rate for d in decisions]
    assert reversals(rates) <= 1
    assert all(CFG.min_rate - 1e-9 <= r <= CFG.max_rate + 1e-9 for r in rates)
    assert len(set(rates[-100:])) == 1  # settled: no change over the last 10 s
    start_buffer = latency - delay - PART / 2
    if start_buffer < CFG.low_buffer_s:
        first_fast = next((i for i, r in enumerate(rates) if r > 1), len(rates))
        rising = latencies[: first_fast + 1]
        assert all(b - a >= -1e-9 for a, b in zip(rising, rising[1:], strict=False))
        assert max(latencies) - delay - PART / 2 >= CFG.recover_buffer_s - 0.01


def test_the_restart_after_a_jump_does_not_raise_the_target() -> None:
    ctrl = Controller()
    run_loop(ctrl, 1.0, 2.0)
    decision = ctrl.update(2.0, Observation(7.5, 5.0, PlayState.PLAYING, 0, PART, 2.0))
    assert decision.jump
    ctrl.update(2.1, Observation(None, 0.0, PlayState.BUFFERING, 1, PART, 2.0))
    after = ctrl.update(2.6, Observation(1.0, 0.6, PlayState.PLAYING, 1, PART, 2.0))
    assert after.target_s == pytest.approx(1.0)
    # a real stall later still raises it
    ctrl.update(20.0, Observation(1.0, 0.0, PlayState.STALLED, 2, PART, 2.0))
    later = ctrl.update(21.0, Observation(2.0, 0.6, PlayState.PLAYING, 2, PART, 2.0))
    assert later.target_s > 1.0
