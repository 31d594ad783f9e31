"""Session + buffer + metrics together on the virtual clock (no decoding)."""

from __future__ import annotations

import json

import pytest

from player.actions import Deliver, EndOfStream, PlayFrom, SessionConfig
from player.buffer import BufferConfig, PlayoutBuffer
from player.metrics import MetricsCollector, PlayoutTotals, TransportTotals
from player.session import Session
from tests.player.fake_origin import FakeOrigin, Harness, StreamSpec

WALL_BASE_US = 1_700_000_000_000_000  # the fake stream's PDT at t = 0


def play(
    spec: StreamSpec,
    start: float,
    seconds: float,
    config: SessionConfig | None = None,
    origin: FakeOrigin | None = None,
) -> tuple[dict[str, object], Harness]:
    origin = origin or FakeOrigin(spec)
    h = Harness(origin, Session("/live/index.m3u8", config))
    tracks = ["video", "audio"] if "audio" in spec.renditions else ["video"]
    buf: PlayoutBuffer[bytes] = PlayoutBuffer(tracks, BufferConfig(start_threshold=0.2))
    metrics = MetricsCollector("h3")
    metrics.on_first_request(start)
    h.start(start)
    seen = 0
    t = start
    while t < start + seconds - 1e-9:
        t = round(t + 0.01, 6)
        h.run_until(t)
        for when, action in h.actions[seen:]:
            if isinstance(action, PlayFrom):
                buf.play_from(action.start_us)
            elif isinstance(action, Deliver):
                buf.push(action.track, action.start_us, action.duration_us, when, action.data)
            elif isinstance(action, EndOfStream):
                buf.end_of_stream(action.track, when)
        seen = len(h.actions)
        buf.advance(t)
        if buf.position_us is not None:
            if metrics.startup_s is None:
                metrics.on_first_frame(t)
            metrics.observe_latency("pdt", (WALL_BASE_US + t * 1e6 - buf.position_us) / 1e6, t)
        metrics.poll(t, buf.level_s, buf.rate, h.session.current_rendition("video"))
    stats = buf.stats(t)
    summary = metrics.summary(
        TransportTotals(requests=h.session.counters["requests"], connections=1),
        PlayoutTotals(stats.stalls, stats.stall_s, stats.played_s),
    )
    return summary, h


@pytest.mark.parametrize(
    ("every", "exact", "latency"),
    [
        # PART-HOLD-BACK + the time to the first part (3 x 20 ms round trips)
        (1, True, 0.6 + 0.06),
        (1, False, 0.6 + 0.06),
        # key frames 2 s apart: decode from the segment start, present from edge - 0.6 s
        (10, True, 0.6 + 0.06),
        # ... or present from the key frame: 2 s behind the edge
        (10, False, 2.0 + 0.06),
    ],
)
def test_low_latency_run(every: int, exact: bool, latency: float) -> None:
    spec = StreamSpec(renditions=("720p", "audio"), independent_every=every)
    summary, _ = play(spec, 30.0, 10.0, SessionConfig(exact_start=exact))
    assert summary["latency_source"] == "pdt"
    assert summary["stalls"] == 0
    assert summary["latency_p50_s"] == pytest.approx(latency, abs=0.01)
    assert summary["latency_p95_s"] == pytest.approx(latency, abs=0.01)
    startup = summary["startup_s"]
    assert isinstance(startup, float) and startup < 0.1
    samples = summary["samples"]
    assert isinstance(samples, list) and len(samples) == 100
    assert samples[0]["rendition"] is None  # before the multivariant playlist
    assert all(s["rendition"] == "720p" for s in samples[1:])
    json.dumps(summary)


def test_classic_run_has_segment_latency() -> None:
    spec = StreamSpec(renditions=("720p",), low_latency=False, can_block_reload=False)
    spec.can_skip = False
    summary, h = play(spec, 30.0, 12.0)
    assert summary["stalls"] == 0
    p50 = summary["latency_p50_s"]
    assert isinstance(p50, float) and 6.0 <= p50 <= 8.2  # HOLD-BACK 6 s + segment arrival
    assert all(d.part is None for d in h.delivered())


def test_an_outage_stalls_then_recovers() -> None:
    spec = StreamSpec(renditions=("720p",), independent_every=1)
    origin = FakeOrigin(spec)
    origin.fault = lambda path, now: "connection refused" if 33.0 <= now < 34.5 else None
    summary, h = play(spec, 30.0, 8.0, origin=origin)
    assert summary["stalls"] == 1
    stall_s = summary["stall_s"]
    assert isinstance(stall_s, float) and 0.5 < stall_s < 1.6
    assert h.failed() == []
    # playback resumes and the latency grows by about the stall
    samples = summary["samples"]
    assert isinstance(samples, list)
    assert samples[-1]["latency_s"] > samples[20]["latency_s"] + 0.5
