"""Network traces (throughput and Mahimahi) and the FIFO bottleneck link."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llhls.lab.traces import PACKET_BYTES, ConstantRate, Link, PacketTrace, RateTrace, load_trace

MBIT = 1e6 / 8  # bytes per second at 1 Mbit/s


def test_rate_trace_capacity_and_inverse() -> None:
    trace = RateTrace("t", [(0.0, 1.0), (1.0, 0.0), (2.0, 2.0)])  # last rate lasts 1 s
    assert trace.period_s == 3.0
    assert trace.mean_bps == pytest.approx(1e6)
    assert trace.bytes_by(0.5) == pytest.approx(0.5 * MBIT)
    assert trace.bytes_by(1.5) == pytest.approx(MBIT)  # nothing during the outage
    assert trace.bytes_by(3.0) == pytest.approx(3 * MBIT)
    assert trace.bytes_by(3.5) == pytest.approx(3.5 * MBIT)  # repeats
    assert trace.time_of(MBIT) == pytest.approx(1.0)  # reached before the flat stretch
    assert trace.time_of(1.5 * MBIT) == pytest.approx(2.25)
    assert trace.time_of(3 * MBIT + 0.5 * MBIT) == pytest.approx(3.5)


@given(st.floats(0.0, 100.0))
def test_rate_trace_time_of_inverts_bytes_by(t: float) -> None:
    trace = RateTrace("t", [(0.0, 1.0), (1.0, 0.0), (2.0, 2.0), (3.5, 0.3)])
    c = trace.bytes_by(t)
    back = trace.time_of(c)
    assert back <= t + 1e-9
    assert trace.bytes_by(back) == pytest.approx(c, rel=1e-9, abs=1e-6)


def test_mahimahi_trace() -> None:
    trace = PacketTrace("m", [1, 1, 3, 4])  # two packets at 1 ms, one at 3 and 4 ms
    assert trace.period_s == pytest.approx(0.004)
    assert trace.bytes_by(0.0005) == 0
    assert trace.bytes_by(0.001) == 2 * PACKET_BYTES
    assert trace.bytes_by(0.0045) == 4 * PACKET_BYTES  # the whole first loop
    assert trace.bytes_by(0.005) == 6 * PACKET_BYTES  # next loop: 4 + 1 ms
    assert trace.time_of(1) == pytest.approx(0.001)
    assert trace.time_of(3 * PACKET_BYTES) == pytest.approx(0.003)
    assert trace.time_of(5 * PACKET_BYTES) == pytest.approx(0.005)
    assert trace.round_bytes(1501) == 3000


def test_load_trace_both_formats(tmp_path: Path) -> None:
    rate = tmp_path / "rate.log"
    rate.write_text("0.0\t1.5\n1.0\t2.5\n")
    mm = tmp_path / "mm.trace"
    mm.write_text("".join(f"{ms}\n" for ms in range(1, 1001)))  # 12 Mbit/s
    assert isinstance(load_trace(rate), RateTrace)
    packets = load_trace(mm)
    assert isinstance(packets, PacketTrace)
    assert packets.mean_bps == pytest.approx(12e6)
    bad = tmp_path / "bad.log"
    bad.write_text("1 2\n3\n")
    with pytest.raises(ValueError):
        load_trace(bad)


def test_mahimahi_link_matches_the_same_constant_rate() -> None:
    """One packet per ms is 12 Mbit/s: transfers finish within a packet of each other."""
    packets = PacketTrace("mm", range(1, 1001))
    rate = ConstantRate(12e6)
    a, b = Link(packets, 0.04), Link(rate, 0.04)
    for t, size in [(0.0, 75_000), (0.01, 2_000), (0.5, 150_000), (0.51, 37_500)]:
        ta, tb = a.send(t, size), b.send(t, size)
        assert abs(ta.arrival - tb.arrival) <= 0.0011


def test_link_is_a_fifo_with_propagation() -> None:
    link = Link(ConstantRate(8e6), rtt_s=0.1)  # 1 MB/s
    first = link.send(1.0, 100_000)
    assert first.first_byte == 1.0
    assert first.last_byte == pytest.approx(1.1)
    assert first.arrival == pytest.approx(1.15)
    second = link.send(1.05, 50_000)  # queued behind the first
    assert second.first_byte == pytest.approx(1.1)
    assert second.last_byte == pytest.approx(1.15)
    idle = link.send(3.0, 1000)  # unused capacity is lost, not banked
    assert idle.first_byte == 3.0 and idle.last_byte == pytest.approx(3.001)


def test_link_starts_the_trace_where_asked() -> None:
    trace = RateTrace("t", [(0.0, 0.0), (1.0, 8.0)])  # an outage for the first second
    late = Link(trace, 0.0, start=10.0)
    assert late.send(10.0, 1000).last_byte == pytest.approx(11.001)
    shifted = Link(trace, 0.0, start=10.0, offset_s=1.0)
    assert shifted.send(10.0, 1000).last_byte == pytest.approx(10.001)


def test_loss_is_seeded_and_costs_a_round_trip() -> None:
    def run(seed: int) -> list[float]:
        link = Link(ConstantRate(8e6), 0.05, loss=0.05, seed=seed)
        return [link.send(i * 0.5, 60_000).arrival for i in range(20)]

    assert run(3) == run(3)
    assert run(3) != run(4)
    lossless = Link(ConstantRate(8e6), 0.05)
    assert max(run(3)) > lossless.send(9.5, 60_000).arrival
    with pytest.raises(ValueError):
        Link(ConstantRate(1e6), 0.05, loss=1.0)


def test_shared_traces_load() -> None:
    root = Path(__file__).resolve().parents[3] / "shared" / "traces" / "network"
    if not root.is_dir():
        pytest.skip("shared traces not present")
    files = sorted(root.rglob("*.log"))
    assert len(files) == 12
    for path in files:
        trace = load_trace(path)
        assert trace.mean_bps > 0 and trace.period_s > 100
