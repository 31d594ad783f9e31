"""Metrics: 100 ms samples, latency source preference, the summary JSON contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from player.buffer import BufferConfig, PlayoutBuffer
from player.metrics import (
    SAMPLE_KEYS,
    SUMMARY_KEYS,
    MetricsCollector,
    PlayoutTotals,
    TransportTotals,
    percentile,
)
from player.transport.base import TransportStats

DESIGN_KEYS = (
    "protocol startup_s latency_p50_s latency_p95_s latency_source stalls stall_s played_s "
    "rate_changes min_rate max_rate bytes requests connections zero_rtt samples"
).split()


def test_summary_has_exactly_the_design_keys() -> None:
    assert list(SUMMARY_KEYS) == DESIGN_KEYS
    assert list(SAMPLE_KEYS) == ["t", "latency_s", "buffer_s", "rate", "rendition", "target_s"]
    summary = MetricsCollector("h3").summary()
    assert list(summary) == DESIGN_KEYS
    json.dumps(summary)


def synthetic_run() -> tuple[MetricsCollector, PlayoutBuffer[int]]:
    """10 s of play: start at 0, first frame at 0.35, one stall, one rate change."""
    m = MetricsCollector("h3")
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"], BufferConfig(start_threshold=0.2))
    m.on_first_request(100.0)
    m.poll(100.0, 0.0, 1.0, "720p")
    t = 100.0
    part = 0
    while t < 110.0 - 1e-9:
        t = round(t + 0.05, 6)
        # a live edge one part ahead; nothing arrives between 104 and 105 (a stall),
        # then the missed parts come in a burst
        available = int((t - 100.0) * 5 + 1e-6) + 1
        while part < available and not 104.0 <= t < 105.0:
            buf.push("video", part * 200_000, 200_000, t, part)
            part += 1
        if t == 100.35:
            m.on_first_frame(t)
        if t == 106.0:
            buf.set_rate(1.05, t)
            m.on_rate(1.05)
        buf.advance(t)
        if buf.position_s is not None:
            m.observe_latency("pdt", 2.0, t)
            if t >= 102.0:
                m.observe_latency("pixels", 1.0 + (t - 102.0) / 100, t)
        m.poll(t, buf.level_s, buf.rate, "720p")
    return m, buf


def test_synthetic_run_summary() -> None:
    m, buf = synthetic_run()
    stats = buf.stats(110.0)
    transport = TransportTotals(bytes=123_456, requests=99, connections=1, zero_rtt=True)
    playout = PlayoutTotals(stalls=stats.stalls, stall_s=stats.stall_s, played_s=stats.played_s)
    s = m.summary(transport, playout)
    assert list(s) == DESIGN_KEYS
    assert s["protocol"] == "h3"
    assert s["startup_s"] == pytest.approx(0.35)
    assert s["latency_source"] == "pixels"  # preferred over pdt once present
    assert s["latency_p50_s"] == pytest.approx(1.04, abs=0.002)
    assert s["latency_p95_s"] == pytest.approx(1.076, abs=0.002)
    assert s["stalls"] == 1
    assert isinstance(s["stall_s"], float) and 0.5 < s["stall_s"] < 1.3
    assert s["played_s"] == pytest.approx(round(stats.played_s, 4))
    assert s["rate_changes"] == 1
    assert s["min_rate"] == 1.0 and s["max_rate"] == 1.05
    assert (s["bytes"], s["requests"], s["connections"], s["zero_rtt"]) == (123_456, 99, 1, True)
    samples = s["samples"]
    assert isinstance(samples, list) and len(samples) == 101  # t = 0.0, 0.1, ..., 10.0
    assert all(list(x) == list(SAMPLE_KEYS) for x in samples)
    assert [x["t"] for x in samples[:3]] == [0.0, 0.1, 0.2]
    assert samples[0]["latency_s"] is None  # nothing playing yet
    assert samples[-1]["rendition"] == "720p"
    assert samples[-1]["rate"] == 1.05
    text = json.dumps(s)
    assert json.loads(text) == s


@pytest.mark.parametrize(
    ("seen", "expected"),
    [
        ({"pdt": 3.0}, ("pdt", 3.0)),
        ({"prft": 2.0, "pdt": 3.0}, ("prft", 2.0)),
        ({"pixels": 1.0, "prft": 2.0, "pdt": 3.0}, ("pixels", 1.0)),
        ({"pixels": 1.0, "pdt": 3.0}, ("pixels", 1.0)),
        ({}, (None, None)),
    ],
)
def test_latency_source_preference(
    seen: dict[str, float], expected: tuple[str | None, float | None]
) -> None:
    m = MetricsCollector("h2")
    for name, value in seen.items():
        m.observe_latency(name, value, 5.0)  # type: ignore[arg-type]
    latency, source = m.current_latency(5.5)
    assert (source, latency) == expected


def test_stale_observations_fall_back_to_the_next_source() -> None:
    m = MetricsCollector("h2", max_age=1.0)
    m.observe_latency("pixels", 1.0, 0.0)
    m.observe_latency("pdt", 3.0, 1.5)
    assert m.current_latency(1.0) == (1.0, "pixels")
    assert m.current_latency(1.6) == (3.0, "pdt")
    with pytest.raises(ValueError):
        m.observe_latency("ntp", 1.0, 0.0)  # type: ignore[arg-type]


def test_samples_every_interval_without_drift() -> None:
    m = MetricsCollector("http/1.1")
    assert m.get_timer() is None
    assert not m.poll(0.0, 0.0, 1.0, None)
    m.on_first_request(5.0)
    taken = [t for t in (5.0, 5.03, 5.1, 5.19, 5.2, 5.45, 5.5) if m.poll(t, 0.5, 1.0, "a")]
    assert taken == [5.0, 5.1, 5.2, 5.45, 5.5]
    assert m.get_timer() == pytest.approx(5.6)


def test_zero_rtt_none_for_tcp_and_from_stats() -> None:
    stats = TransportStats(connections=2, requests=10, bytes_received=5000)
    totals = TransportTotals.from_stats(stats)
    assert totals == TransportTotals(bytes=5000, requests=10, connections=2, zero_rtt=None)
    assert MetricsCollector("h2").summary(totals)["zero_rtt"] is None


@given(
    st.lists(st.floats(min_value=-10, max_value=10), min_size=1, max_size=50), st.integers(0, 100)
)
def test_percentile_matches_numpy(values: list[float], q: int) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), abs=1e-9)
