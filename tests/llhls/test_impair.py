"""The pure link model on a virtual clock: exact departure times, loss statistics."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llhls.errors import ConfigError
from llhls.lab.impair import (
    DELIVERY_BYTES,
    TCP_SEGMENT,
    Bottleneck,
    ConstantRate,
    DeliveryTrace,
    GilbertElliott,
    Link,
    LinkConfig,
    RenoSender,
    ThroughputTrace,
    parse_trace,
)

EXACT = 1e-9  # "exact": float rounding only


def drain(link: Link[int], step: float = 0.0001, until: float = 1000.0) -> list[tuple[float, int]]:
    """Every (departure, packet), read with exact timestamps."""
    out: list[tuple[float, int]] = []
    while (t := link.get_timer()) is not None and t <= until:
        out.extend(link.pop_due_timed(t))
    return out


# --------------------------------------------------------------------------- delay, rate, queue


def test_delay_is_exact() -> None:
    link: Link[int] = Link(LinkConfig(delay_ms=25))
    assert link.get_timer() is None
    assert link.enqueue(1, 1200, now=10.0)
    assert link.enqueue(2, 1200, now=10.004)
    assert link.next_departure() == pytest.approx(10.025, abs=EXACT)
    assert link.pop_due(10.0249) == []
    assert link.pop_due(10.025) == [1]
    assert link.pop_due(10.1) == [2]
    assert link.get_timer() is None


def test_rate_serialises_back_to_back_packets() -> None:
    # 8 Mbit/s = 1 000 000 B/s: a 1000-byte packet takes exactly 1 ms.
    link: Link[int] = Link(LinkConfig(delay_ms=10, rate=ConstantRate(8)))
    for i in range(5):
        assert link.enqueue(i, 1000, now=0.0)
    times = [t for t, _ in drain(link)]
    assert times == pytest.approx([0.011, 0.012, 0.013, 0.014, 0.015], abs=EXACT)
    # An idle link saves no credit: a packet at t=1 leaves at 1 + 1 ms + 10 ms.
    link.enqueue(9, 1000, now=1.0)
    assert link.get_timer() == pytest.approx(1.011, abs=EXACT)


def test_drop_tail_queue_is_limited_in_time() -> None:
    # 1 ms per packet, 5 ms of queue: packet k waits k ms, so k = 0..5 pass, the rest drop.
    link: Link[int] = Link(LinkConfig(rate=ConstantRate(8), queue_ms=5))
    accepted = [link.enqueue(i, 1000, now=0.0) for i in range(10)]
    assert accepted == [True] * 6 + [False] * 4
    assert link.stats.queue_drops == 4
    assert link.backlog(0.0) == pytest.approx(0.006, abs=EXACT)
    # 2.5 ms later 3.5 ms of work is left: the next one waits 3.5 ms and is accepted.
    assert link.enqueue(10, 1000, now=0.0025)
    assert link.backlog(0.0025) == pytest.approx(0.0045, abs=EXACT)


def test_stream_mode_never_drops_and_reports_backlog() -> None:
    cfg = LinkConfig(rate=ConstantRate(8), queue_ms=5, tcp_cc="none")
    link: Link[int] = Link(cfg, stream=True)
    assert all(link.enqueue(i, 1000, now=0.0) for i in range(10))
    assert link.backlog(0.0) == pytest.approx(0.010, abs=EXACT)
    assert link.bottleneck.drain_time(0.005) == pytest.approx(0.005, abs=EXACT)
    assert [p for _, p in drain(link)] == list(range(10))


def test_shared_bottleneck_serves_flows_in_arrival_order() -> None:
    shared = Bottleneck(ConstantRate(8), queue_ms=100)
    a: Link[str] = Link(LinkConfig(delay_ms=5), bottleneck=shared)
    b: Link[str] = Link(LinkConfig(delay_ms=50), bottleneck=shared)
    a.enqueue("a1", 1000, 0.0)
    b.enqueue("b1", 1000, 0.0)
    a.enqueue("a2", 1000, 0.0)
    assert a.pop_due_timed(1.0) == [
        pytest.approx((0.006, "a1"), abs=EXACT),
        pytest.approx((0.008, "a2"), abs=EXACT),
    ]
    assert b.pop_due_timed(1.0) == [pytest.approx((0.052, "b1"), abs=EXACT)]


def test_trace_time_starts_at_start() -> None:
    trace = ThroughputTrace((0.0, 1.0), (8.0, 0.8))
    link: Link[int] = Link(LinkConfig(rate=trace), start=100.0)
    link.enqueue(0, 1000, now=101.5)  # 0.8 Mbit/s: 10 ms
    assert link.get_timer() == pytest.approx(101.51, abs=EXACT)


# --------------------------------------------------------------------------- jitter


def test_jitter_is_bounded_deterministic_and_keeps_order() -> None:
    cfg = LinkConfig(delay_ms=50, jitter_ms=10)

    def run(seed: int, spacing: float) -> list[float]:
        link: Link[int] = Link(cfg, seed=seed)
        for i in range(2000):
            link.enqueue(i, 100, now=i * spacing)
        out = drain(link, until=math.inf)
        assert [p for _, p in out] == list(range(2000))  # never reordered
        return [t - p * spacing for t, p in out]

    sparse = run(7, spacing=0.1)
    assert sparse == run(7, spacing=0.1)  # same seed, same delays
    assert sparse != run(8, spacing=0.1)
    assert min(sparse) >= 0.040 - EXACT and max(sparse) <= 0.060 + EXACT
    assert statistics.mean(sparse) == pytest.approx(0.050, abs=0.001)
    assert statistics.pstdev(sparse) == pytest.approx(0.020 / math.sqrt(12), rel=0.1)
    dense = run(7, spacing=0.001)  # order kept: a packet waits for the one before it
    assert all(b >= a - 0.001 - EXACT for a, b in zip(dense, dense[1:], strict=False))
    assert max(dense) <= 0.060 + EXACT


# --------------------------------------------------------------------------- loss


def loss_pattern(cfg: LinkConfig, n: int, seed: int = 1) -> list[bool]:
    link: Link[int] = Link(cfg, seed=seed)
    return [not link.enqueue(i, 100, now=i * 0.001) for i in range(n)]


def test_bernoulli_loss_converges_and_is_deterministic() -> None:
    """100 000 packets at 5 %: within +-0.5 % absolute (7 standard deviations)."""
    lost = loss_pattern(LinkConfig(loss=0.05), 100_000)
    assert sum(lost) / len(lost) == pytest.approx(0.05, abs=0.005)
    assert lost == loss_pattern(LinkConfig(loss=0.05), 100_000)
    assert lost != loss_pattern(LinkConfig(loss=0.05), 100_000, seed=2)


def bursts(lost: list[bool]) -> list[int]:
    runs, current = [], 0
    for x in lost:
        if x:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return runs


def test_gilbert_elliott_loss_and_burst_length() -> None:
    """200 000 packets: mean loss and mean burst within 10 % of the closed forms."""
    ge = GilbertElliott(p_gb=0.01, p_bg=0.25)
    assert ge.mean_loss() == pytest.approx(0.01 / 0.26)
    lost = loss_pattern(LinkConfig(burst=ge), 200_000)
    assert sum(lost) / len(lost) == pytest.approx(ge.mean_loss(), rel=0.1)
    assert statistics.mean(bursts(lost)) == pytest.approx(1 / ge.p_bg, rel=0.1)
    # Independent loss at the same mean rate has much shorter bursts.
    plain = loss_pattern(LinkConfig(loss=ge.mean_loss()), 200_000)
    assert statistics.mean(bursts(plain)) < 1.1


def test_gilbert_elliott_from_mean_and_good_state_loss() -> None:
    ge = GilbertElliott.from_mean(0.03, 4)
    assert ge.mean_loss() == pytest.approx(0.03)
    assert ge.p_bg == 0.25
    lossy = GilbertElliott(p_gb=0.01, p_bg=0.25, loss_bad=0.5)
    expected = lossy.mean_loss(loss_good=0.01)
    assert expected == pytest.approx(0.01 / 0.26 * 0.5 + 0.25 / 0.26 * 0.01)
    lost = loss_pattern(LinkConfig(loss=0.01, burst=lossy), 200_000)
    assert sum(lost) / len(lost) == pytest.approx(expected, rel=0.1)
    assert GilbertElliott.parse("0.01,0.25,0.5") == lossy


def sparse_pattern(ge: GilbertElliott, n: int, gap_s: float, seed: int = 1) -> list[bool]:
    link: Link[int] = Link(LinkConfig(burst=ge), seed=seed)
    return [not link.enqueue(i, 100, now=i * gap_s) for i in range(n)]


def test_burst_loss_is_a_stretch_of_time_not_of_packets() -> None:
    """Packets 200 ms apart (QUIC loss probes, sparse requests) see the mean loss with
    no bursts: the chain moved on while they were apart. Stepping per packet only
    (slot 0, the old model), they would meet 4-packet bursts spanning 0.8 s."""
    ge = GilbertElliott.from_mean(0.03, 4)
    lost = sparse_pattern(ge, 100_000, 0.2)
    assert sum(lost) / len(lost) == pytest.approx(0.03, rel=0.1)
    assert statistics.mean(bursts(lost)) < 1.1
    # a loss is followed by another about as often as any packet is lost
    after = [b for a, b in zip(lost, lost[1:], strict=False) if a]
    assert sum(after) / len(after) == pytest.approx(0.03, abs=0.02)
    per_packet = sparse_pattern(replace(ge, slot_ms=0.0), 100_000, 0.2)
    assert statistics.mean(bursts(per_packet)) == pytest.approx(4, rel=0.1)
    # dense packets (one per slot) keep their bursts
    dense = sparse_pattern(ge, 100_000, 0.001)
    assert statistics.mean(bursts(dense)) == pytest.approx(4, rel=0.1)


def test_burst_chain_closed_form_matches_stepping() -> None:
    ge = GilbertElliott(p_gb=0.02, p_bg=0.3)
    for bad in (False, True):
        p = 1.0 if bad else 0.0
        for steps in range(1, 30):
            p = p * (1 - ge.p_bg) + (1 - p) * ge.p_gb
            assert ge.bad_after(bad, steps) == pytest.approx(p, abs=1e-12)
    assert ge.bad_after(True, 10_000) == pytest.approx(ge.bad_share)
    with pytest.raises(ConfigError, match="slot"):
        GilbertElliott(0.01, 0.25, slot_ms=-1)


def test_stream_loss_becomes_delay_with_head_of_line_blocking() -> None:
    cfg = LinkConfig(delay_ms=20, loss=0.5, tcp_loss_penalty_ms=100, tcp_cc="none")
    link: Link[int] = Link(cfg, seed=3, stream=True)
    assert all(link.enqueue(i, 1448, now=i * 0.001) for i in range(50))
    out = drain(link)
    assert [p for _, p in out] == list(range(50))  # nothing lost, order kept
    assert 10 < link.stats.penalized < 40 and link.stats.lost == 0
    first_late = next(i for i, (t, p) in enumerate(out) if t > p * 0.001 + 0.020 + EXACT)
    t_late = out[first_late][0]
    assert t_late == pytest.approx(first_late * 0.001 + 0.120, abs=EXACT)
    assert all(t >= t_late for t, _ in out[first_late:])  # everything behind it waits


def test_default_tcp_penalty_is_one_and_a_quarter_rtt() -> None:
    assert LinkConfig(delay_ms=40).penalty_ms() == 100.0
    assert LinkConfig().penalty_ms() == 1.0
    assert LinkConfig(delay_ms=10).with_rtt(60).penalty_ms() == 75.0
    assert LinkConfig(tcp_loss_penalty_ms=7).with_rtt(60).penalty_ms() == 7


# --------------------------------------------------------------------------- traces


def test_throughput_trace_playback_and_loop() -> None:
    # 2 Mbit/s for 1 s, 0 for 1 s, 8 Mbit/s for 0.5 s, then 4 Mbit/s for the median
    # interval (1 s): one loop is 3.5 s and carries 250 + 0 + 500 + 500 kB.
    trace = parse_trace("0.0\t2\n1.0\t0\n2.0\t8\n2.5\t4\n", name="t")
    assert isinstance(trace, ThroughputTrace)
    assert trace.period_s == 3.5
    assert trace.mean_mbps() == pytest.approx(1_250_000 * 8 / 3.5 / 1e6)
    assert trace.mbps_at(1.5) == 0 and trace.mbps_at(3.2) == 4 and trace.mbps_at(3.6) == 2
    link: Link[int] = Link(LinkConfig(rate=trace, queue_ms=10_000))
    link.enqueue(0, 250_000, now=0.0)  # fills the first second exactly
    link.enqueue(1, 1000, now=0.0)  # waits out the silence: 1 ms at 8 Mbit/s from t=2
    link.enqueue(2, 500_000, now=0.0)  # 499 000 B at 8 Mbit/s, 1000 B at 4
    link.enqueue(3, 250_000, now=0.0)  # 0.5 s at 4 Mbit/s
    link.enqueue(4, 250_000, now=0.0)  # 249 000 B at 4 Mbit/s, 1000 B in loop 2 at 2 Mbit/s
    times = [t for t, _ in drain(link)]
    assert times == pytest.approx([1.0, 2.001, 2.502, 3.002, 3.504], abs=EXACT)


def test_silence_in_a_trace_queue_semantics() -> None:
    """During a 0-rate stretch an idle link still accepts one packet (it waits for the
    rate to come back); the next one would wait longer than the queue allows."""
    trace = parse_trace("0\t2\n1\t0\n")  # 2 Mbit/s for 1 s, silent for 1 s, loop of 2 s
    link: Link[int] = Link(LinkConfig(rate=trace, queue_ms=100))
    assert link.enqueue(0, 250_000, now=0.0)  # exactly fills the first second
    assert link.enqueue(1, 1000, now=1.5)
    assert not link.enqueue(2, 1000, now=1.5)
    assert [t for t, _ in drain(link)] == pytest.approx([1.0, 2.004], abs=EXACT)


def test_single_sample_trace_is_constant() -> None:
    trace = parse_trace("5.0 8\n")
    assert isinstance(trace, ThroughputTrace) and trace.times_s == (0.0,)
    assert trace.time_at(1_000_000) == pytest.approx(1.0)


@settings(max_examples=500)
@given(
    rates=st.lists(st.sampled_from([0.0, 0.5, 2.0, 8.0, 30.0]), min_size=1, max_size=6),
    t=st.floats(min_value=0, max_value=100),
)
def test_throughput_trace_time_and_level_are_inverse(rates: list[float], t: float) -> None:
    if max(rates) == 0:
        rates[0] = 1.0
    trace = ThroughputTrace(tuple(float(i) * 0.7 for i in range(len(rates))), tuple(rates))
    level = trace.level_at(t)
    assert trace.time_at(level) <= t + 1e-6
    assert trace.level_at(trace.time_at(level)) == pytest.approx(level, abs=1e-3)


def test_mahimahi_trace_playback() -> None:
    # Opportunities at 1, 1, 4 and 10 ms; loop period 10 ms.
    trace = parse_trace("1\n1\n4\n10\n")
    assert isinstance(trace, DeliveryTrace)
    assert trace.mean_mbps() == pytest.approx(4 * 1500 * 8 / 0.010 / 1e6)
    link: Link[int] = Link(LinkConfig(rate=trace, queue_ms=1000))
    link.enqueue(0, 1500, now=0.0)  # first opportunity (1 ms)
    link.enqueue(1, 1000, now=0.0)  # second one (1 ms), 500 B of it left
    link.enqueue(2, 600, now=0.0)  # 500 B left at 1 ms + 100 B at 4 ms
    link.enqueue(3, 3000, now=0.0)  # 1400 B at 4 ms, rest at 10 ms and 11 ms (next loop)
    assert [t for t, _ in drain(link)] == pytest.approx([0.001, 0.001, 0.004, 0.011], abs=EXACT)
    # Idle opportunities are lost: at 12 ms the next chance is 14 ms (4 ms of loop 2).
    link.enqueue(4, 100, now=0.012)
    assert link.get_timer() == pytest.approx(0.014, abs=EXACT)


def test_mahimahi_steady_rate() -> None:
    """One opportunity per ms = 12 Mbit/s: 10 000 back-to-back 1500-byte packets take 10 s."""
    link: Link[int] = Link(LinkConfig(rate=parse_trace("1\n"), queue_ms=60_000))
    for i in range(10_000):
        link.enqueue(i, DELIVERY_BYTES, now=0.0)
    out = drain(link, until=math.inf)
    assert out[-1][0] == pytest.approx(10.0, abs=EXACT)
    assert out[0][0] == pytest.approx(0.001, abs=EXACT)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("0 1 2\n", "fields"),
        ("0\t1\n0\t2\n", "line 2"),
        ("0\t1\nx\t2\n", "line 2"),
        ("0\t0\n1\t0\n", "every rate is 0"),
        ("0\t-1\n", ">= 0"),
        ("5\n3\n", "non-decreasing"),
        ("0\n", "period"),
        ("1\n2.5\n", "line 2"),
    ],
)
def test_trace_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_trace(text)


def test_trace_comments_and_offset() -> None:
    trace = parse_trace("# hsdpa\n10.0\t1.5\n\n11.0\t3  # peak\n")
    assert isinstance(trace, ThroughputTrace)
    assert trace.times_s == (0.0, 1.0) and trace.mbps == (1.5, 3.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delay_ms": -1},
        {"jitter_ms": math.nan},
        {"loss": 1.5},
        {"queue_ms": -5},
        {"tcp_loss_penalty_ms": math.inf},
        {"rtt_ms": -1},
        {"tcp_cc": "cubic"},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        LinkConfig(**kwargs)  # type: ignore[arg-type]


def test_rate_and_burst_validation() -> None:
    with pytest.raises(ConfigError):
        ConstantRate(0)
    with pytest.raises(ConfigError):
        GilbertElliott(0, 0.5)
    with pytest.raises(ConfigError, match="P_GB,P_BG"):
        GilbertElliott.parse("0.1")
    assert LinkConfig().transparent and not LinkConfig(loss=0.01).transparent
    text = LinkConfig(delay_ms=25, jitter_ms=5, loss=0.01, rate=ConstantRate(8)).describe()
    assert text == "delay 25 +-5 ms, loss 1 %, 8 Mbit/s, queue 200 ms"
    off = LinkConfig(delay_ms=25, tcp_cc="none").describe()
    assert off == "delay 25 ms, no TCP congestion window"
    assert LinkConfig(tcp_cc="none").describe() == "no impairment"


# --------------------------------------------------------------------------- TCP congestion window

RTT = 0.1
MSS_BITS = TCP_SEGMENT * 8


def transfer(link: Link[int], nbytes: int, now: float, first: int = 0) -> list[tuple[float, int]]:
    """Offer ``nbytes`` in segment-sized chunks at ``now`` (numbered from ``first``), then
    run the virtual clock until every chunk has arrived; (arrival, chunk) in order."""
    count = math.ceil(nbytes / TCP_SEGMENT)
    for i in range(count):
        link.enqueue(first + i, min(TCP_SEGMENT, nbytes - i * TCP_SEGMENT), now)
    return drain(link, until=math.inf)


def per_round(arrivals: list[tuple[float, int]], start: float) -> list[int]:
    """Chunks arriving in each round trip after ``start`` (round k: [k, k+1) x RTT)."""
    counts: dict[int, int] = {}
    for t, _ in arrivals:
        k = math.floor((t - start) / RTT)
        counts[k] = counts.get(k, 0) + 1
    return [counts.get(k, 0) for k in range(max(counts) + 1)]


def test_slow_start_doubles_the_window_each_round_trip() -> None:
    """200 kB (139 segments) over a 100 ms RTT, no loss, 1 Gbit/s: windows of 10, 20, 40
    and the last 69 segments, one round trip apart, so the last byte arrives 3.5 RTT after
    the start (3 round trips of waiting for acks plus the one-way delay; the brief's
    estimate log2(200000 / 14600) + 1 = 4.8 counts windows). Without the window model it
    all arrives after the one-way delay (0.5 RTT)."""
    path = LinkConfig(delay_ms=50, rate=ConstantRate(1000))
    link: Link[int] = Link(path, stream=True)
    out = transfer(link, 200_000, now=0.0)
    assert [p for _, p in out] == list(range(139))
    assert per_round(out, 0.0) == [10, 20, 40, 69]
    assert out[-1][0] == pytest.approx(3.5 * RTT, abs=0.002)  # + 1.6 ms of serialisation
    assert link.pop_due(1.0) == []  # runs the remaining acks (the model is lazy)
    sender = link.sender
    assert sender is not None and sender.cwnd == 10 * TCP_SEGMENT + 200_000
    assert sender.in_flight == 0 and sender.cuts == 0

    off: Link[int] = Link(replace(path, tcp_cc="none"), stream=True)
    assert off.sender is None
    assert transfer(off, 200_000, now=0.0)[-1][0] == pytest.approx(0.5 * RTT, abs=0.002)


def test_ack_clock_uses_the_configured_round_trip() -> None:
    """delay 10 ms this way, round trip 60 ms (the relay's sum of both directions): the 11th
    segment leaves when the 1st is acknowledged, 60 ms after it was sent, and arrives 10 ms
    later."""
    link: Link[int] = Link(LinkConfig(delay_ms=10).with_rtt(60), stream=True)
    out = transfer(link, 11 * TCP_SEGMENT, now=1.0)
    assert [t for t, _ in out] == pytest.approx([1.010] * 10 + [1.070], abs=EXACT)


def mathis_mbps(p: float, rtt: float = RTT) -> float:
    """Mathis et al. (1997): MSS / RTT x sqrt(3 / 2) / sqrt(p)."""
    return MSS_BITS / rtt * math.sqrt(1.5) / math.sqrt(p) / 1e6


def steady_mbps(out: list[tuple[float, int]], skip: float = 0.1) -> float:
    """Goodput after the first ``skip`` share of the transfer (slow start left out)."""
    end = out[-1][0]
    late = [t for t, _ in out if t >= skip * end]
    return (len(late) - 1) * MSS_BITS / (late[-1] - late[0]) / 1e6


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_reno_under_random_loss_follows_mathis(seed: int) -> None:
    """1 % random loss, 100 ms RTT, 50 Mbit/s: a 12 MB transfer's steady goodput is within
    +-25 % of Mathis (1.41 Mbit/s; seen 0.88-0.97 x), with about one window cut per
    loss, and far below the link rate. Without the window model it runs at the rate."""
    path = LinkConfig(delay_ms=50, loss=0.01, rate=ConstantRate(50))
    link: Link[int] = Link(path, seed=seed, stream=True)
    out = transfer(link, 12_000_000, now=0.0)
    mbps = steady_mbps(out)
    assert mbps == pytest.approx(mathis_mbps(0.01), rel=0.25)
    assert mbps < 0.05 * 50
    stats = link.stats
    assert stats.lost == 0 and stats.penalized > 50
    assert 0.7 * stats.penalized <= stats.cwnd_cuts <= stats.penalized

    off: Link[int] = Link(replace(path, tcp_cc="none"), seed=seed, stream=True)
    assert steady_mbps(transfer(off, 12_000_000, now=0.0)) > 40


def test_reno_throughput_scales_with_one_over_sqrt_loss() -> None:
    """0.5 %, 1 %, 2 %, 3 % loss: every goodput within +-25 % of Mathis (same seed)."""
    for p in (0.005, 0.01, 0.02, 0.03):
        link: Link[int] = Link(
            LinkConfig(delay_ms=50, loss=p, rate=ConstantRate(50)), seed=7, stream=True
        )
        mbps = steady_mbps(transfer(link, 8_000_000, now=0.0))
        assert mbps == pytest.approx(mathis_mbps(p), rel=0.25), (p, mbps)


def test_one_window_cut_per_loss_episode() -> None:
    """NewReno: three losses in one window cut once; acks of that window do not grow the
    window; a loss among segments sent after the cut cuts again."""
    sender = RenoSender(rtt=RTT)
    size = TCP_SEGMENT
    for n in range(10):
        seen = 0.1 if n in (2, 3, 7) else None
        acked = 0.225 if seen is not None else 0.1
        assert sender.can_send(size)
        sender.on_send(size, 0.0, acked, seen)
    assert not sender.can_send(size)
    while (t := sender.next_event()) is not None and t <= 0.1:
        sender.on_event()
    assert sender.cuts == 1 and sender.recover == 9
    assert sender.cwnd == sender.ssthresh == 5 * size
    assert sender.in_flight == 3 * size  # the three late ones hold their slots
    assert sender.can_send(size) and sender.can_send(2 * size)
    sender.on_send(size, 0.1, 0.2, 0.2)  # segment 10, sent after the cut, lost too
    while sender.next_event() is not None:
        sender.on_event()
    assert sender.cuts == 2 and sender.cwnd == pytest.approx(2.5 * size)
    assert sender.in_flight == 0
    sender.on_send(size, 0.5, 0.6, None)
    sender.on_event()
    assert sender.cwnd == pytest.approx(2.5 * size + size / 2.5)  # +1 MSS per window


def test_burst_loss_cuts_once_per_burst() -> None:
    """Gilbert-Elliott bursts of 4 lost segments: about one cut per burst, not per segment."""
    path = LinkConfig(delay_ms=50, burst=GilbertElliott.from_mean(0.02, 4), rate=ConstantRate(50))
    link: Link[int] = Link(path, seed=5, stream=True)
    transfer(link, 4_000_000, now=0.0)
    stats = link.stats
    assert stats.penalized > 40
    assert stats.cwnd_cuts < 0.45 * stats.penalized


def test_idle_restart_returns_to_the_initial_window() -> None:
    """After a 200 kB transfer the window is 214 kB. A second 200 kB burst sent
    0.9 s after the last send (< RTO = max(1 s, 2 RTT)) goes in one window (0.5 RTT); sent
    after 1.7 s of idling it slow-starts again from 10 segments (3.5 RTT); ssthresh, still
    unlimited, stays (RFC 2861: at least 3/4 of the old window)."""
    path = LinkConfig(delay_ms=50, rate=ConstantRate(1000))
    for idle, rounds, restarts in ((0.9, [139], 0), (1.7, [10, 20, 40, 69], 1)):
        link: Link[int] = Link(path, stream=True)
        transfer(link, 200_000, now=0.0)
        sender = link.sender
        assert sender is not None
        last_send = sender.last_send
        assert last_send == pytest.approx(0.3, abs=0.002)
        start = last_send + idle
        out = transfer(link, 200_000, now=start, first=1000)
        assert per_round(out, start) == rounds
        assert link.stats.idle_restarts == restarts
        if restarts:
            assert sender.ssthresh == math.inf
            assert out[-1][0] - start == pytest.approx(3.5 * RTT, abs=0.002)
        else:
            assert out[-1][0] - start == pytest.approx(0.5 * RTT, abs=0.002)
    # With a finite ssthresh it keeps 3/4 of the old window (RFC 2861).
    sender = RenoSender(rtt=RTT)
    sender.cwnd, sender.ssthresh = 40.0 * TCP_SEGMENT, 20.0 * TCP_SEGMENT
    sender.on_send(TCP_SEGMENT, 0.0, 0.1, None)
    sender.on_event()  # congestion avoidance: + 1/40 segment
    sender.on_send(TCP_SEGMENT, 1.2, 1.3, None)  # 1.2 s > RTO = 1 s after the last send
    assert sender.cwnd == 10.0 * TCP_SEGMENT
    assert sender.ssthresh == pytest.approx(0.75 * (40 + 1 / 40) * TCP_SEGMENT)
    assert sender.restarts == 1


def test_full_queue_is_a_loss_for_the_window() -> None:
    """No random loss, 10 Mbit/s, 100 ms RTT, 100 ms queue: slow start overfills the queue,
    the sender cuts and then saw-tooths between half and full queue + BDP, keeping the
    link busy (goodput >= 90 % of the rate) with queueing bounded near the limit."""
    path = LinkConfig(delay_ms=50, rate=ConstantRate(10), queue_ms=100)
    link: Link[int] = Link(path, stream=True)
    out = transfer(link, 5_000_000, now=0.0)
    stats = link.stats
    assert stats.penalized == 0 and stats.queue_drops > 0 and stats.cwnd_cuts >= 2
    assert steady_mbps(out, skip=0.2) == pytest.approx(10, rel=0.1)
    assert link.bottleneck.backlog(out[-1][0]) == 0
    sender = link.sender
    assert sender is not None
    bdp_plus_queue = 10e6 / 8 * (RTT + 0.1)
    assert sender.cwnd < 1.2 * bdp_plus_queue


def test_window_holds_chunks_back_and_wakes_the_pump() -> None:
    """The sender's buffer is visible (unsent_bytes, len) and the timer points at the ack
    that opens the window, before the next departure if that comes later."""
    link: Link[int] = Link(LinkConfig(delay_ms=50), stream=True)
    for i in range(12):
        link.enqueue(i, TCP_SEGMENT, 0.0)
    assert len(link) == 12 and link.unsent_bytes == 2 * TCP_SEGMENT
    assert link.get_timer() == pytest.approx(0.05, abs=EXACT)
    assert link.pop_due(0.05) == list(range(10))
    assert link.get_timer() == pytest.approx(0.1, abs=EXACT)  # the first ack
    assert link.pop_due(0.1) == [] and link.unsent_bytes == 0
    t = link.get_timer()
    assert t is not None and t == pytest.approx(0.15, abs=EXACT)
    assert link.pop_due(t) == [10, 11] and len(link) == 0


def test_datagram_links_have_no_window() -> None:
    assert Link(LinkConfig(delay_ms=50)).sender is None
    assert Link(LinkConfig(delay_ms=50), stream=True).sender is not None
