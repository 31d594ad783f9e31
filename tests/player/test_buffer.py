"""Playout buffer and clock: start, stalls, resume, rate, gaps, end."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from player.buffer import BufferConfig, PlayoutBuffer, PlayState

MS = 1000  # microseconds per millisecond
PART = 200 * MS


def feed(buf: PlayoutBuffer[int], track: str, first: int, count: int, now: float) -> None:
    for i in range(first, first + count):
        buf.push(track, i * PART, PART, now, i)


def test_starts_when_every_track_holds_the_threshold() -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video", "audio"], BufferConfig(start_threshold=0.4))
    feed(buf, "video", 0, 3, 1.0)
    assert buf.stats().state is PlayState.BUFFERING
    feed(buf, "audio", 0, 1, 1.1)
    assert buf.stats().state is PlayState.BUFFERING  # audio holds only 0.2 s
    feed(buf, "audio", 1, 1, 1.2)
    assert buf.stats().state is PlayState.PLAYING
    assert buf.stats().started_at == 1.2
    assert buf.position_us == 0
    assert buf.level_s == pytest.approx(0.4)


def test_start_position_is_where_every_track_has_media() -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video", "audio"], BufferConfig(start_threshold=0.2))
    feed(buf, "video", 0, 5, 0.0)
    feed(buf, "audio", 2, 3, 0.0)
    assert buf.stats().state is PlayState.PLAYING
    assert buf.position_us == 2 * PART
    assert buf.pop_due("video") == [0, 1, 2]  # earlier video is due at once (decode only)
    assert buf.pop_due("audio") == [2]


def test_stall_is_detected_at_the_exact_instant() -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"], BufferConfig(start_threshold=0.2))
    feed(buf, "video", 0, 3, 10.0)  # 0.6 s
    assert buf.get_timer() == pytest.approx(10.6)
    buf.advance(10.25)
    assert buf.stats().state is PlayState.PLAYING and buf.level_s == pytest.approx(0.35)
    buf.advance(11.0)  # ran dry at 10.6
    s = buf.stats(11.0)
    assert s.state is PlayState.STALLED
    assert s.stalls == 1
    assert s.stall_s == pytest.approx(0.4)
    assert s.played_s == pytest.approx(0.6)
    assert buf.position_us == 3 * PART
    assert buf.get_timer() is None


@pytest.mark.parametrize(
    ("resume", "parts_to_resume"),
    [(0.2, 1), (0.5, 3), (1.0, 5)],
)
def test_resume_needs_the_resume_threshold(resume: float, parts_to_resume: int) -> None:
    cfg = BufferConfig(start_threshold=0.2, resume_threshold=resume)
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"], cfg)
    feed(buf, "video", 0, 1, 0.0)
    buf.advance(1.0)
    assert buf.stats().state is PlayState.STALLED
    for k in range(parts_to_resume):
        assert buf.stats().state is PlayState.STALLED
        buf.push("video", (1 + k) * PART, PART, 1.5 + k * 0.1, 1 + k)
    assert buf.stats().state is PlayState.PLAYING
    resumed_at = 1.5 + (parts_to_resume - 1) * 0.1
    assert buf.stats().stall_s == pytest.approx(resumed_at - 0.2)
    assert buf.stats().stalls == 1


@pytest.mark.parametrize("rate", [0.5, 0.95, 1.0, 1.05, 2.0])
def test_rate_scales_consumption(rate: float) -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"], BufferConfig(start_threshold=0.2))
    feed(buf, "video", 0, 50, 0.0)  # 10 s
    buf.set_rate(rate, 0.0)
    buf.advance(2.0)
    assert buf.position_s == pytest.approx(2.0 * rate, abs=1e-6)
    assert buf.level_s == pytest.approx(10 - 2.0 * rate, abs=1e-6)
    assert buf.get_timer() == pytest.approx(2.0 + (10 - 2.0 * rate) / rate)


def test_rate_change_applies_from_its_instant() -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"], BufferConfig(start_threshold=0.2))
    feed(buf, "video", 0, 50, 0.0)
    buf.advance(1.0)
    buf.set_rate(1.5, 1.0)
    buf.advance(3.0)
    assert buf.position_s == pytest.approx(1.0 + 3.0)
    with pytest.raises(ValueError, match="positive"):
        buf.set_rate(0.0, 3.0)


def test_short_hole_is_jumped_without_a_stall() -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"], BufferConfig(start_threshold=0.2))
    feed(buf, "video", 0, 2, 0.0)
    feed(buf, "video", 3, 5, 0.0)  # part 2 missing
    buf.advance(1.0)
    s = buf.stats(1.0)
    assert s.state is PlayState.PLAYING
    assert s.stalls == 0 and s.gaps_skipped == 1
    assert buf.position_us == 3 * PART + 600 * MS


def test_stall_in_front_of_a_hole_resumes_after_it() -> None:
    cfg = BufferConfig(start_threshold=0.2, resume_threshold=0.4)
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"], cfg)
    feed(buf, "video", 0, 1, 0.0)
    buf.advance(0.5)
    assert buf.stats().state is PlayState.STALLED
    feed(buf, "video", 2, 1, 0.6)  # after a hole: only 0.2 s
    assert buf.stats().state is PlayState.STALLED
    feed(buf, "video", 3, 1, 0.7)
    assert buf.stats().state is PlayState.PLAYING
    assert buf.position_us == 2 * PART
    assert buf.stats().gaps_skipped == 1


def test_tracks_are_merged_within_tolerance() -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["audio"], BufferConfig(start_threshold=0.2))
    buf.push("audio", 0, 213_333, 0.0, 0)
    buf.push("audio", 213_334, 192_000, 0.0, 1)  # 1 µs apart: one range
    assert buf.ranges("audio") == [(0, 405_334)]


def test_end_of_stream_ends_instead_of_stalling() -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video", "audio"], BufferConfig(start_threshold=0.2))
    feed(buf, "video", 0, 2, 0.0)
    feed(buf, "audio", 0, 2, 0.0)
    buf.end_of_stream("video", 0.0)
    buf.end_of_stream("audio", 0.0)
    buf.advance(5.0)
    s = buf.stats(5.0)
    assert s.state is PlayState.ENDED
    assert s.stalls == 0 and s.played_s == pytest.approx(0.4)


def test_pop_due_follows_the_position() -> None:
    buf: PlayoutBuffer[str] = PlayoutBuffer(["video"], BufferConfig(start_threshold=0.2))
    for i in range(5):
        buf.push("video", i * PART, PART, 0.0, f"p{i}")
    assert buf.pop_due("video") == ["p0"]
    buf.advance(0.45)
    assert buf.pop_due("video") == ["p1", "p2"]
    assert buf.pop_all("video") == ["p3", "p4"]


def test_bad_inputs() -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"])
    with pytest.raises(KeyError):
        buf.push("audio", 0, PART, 0.0, 0)
    with pytest.raises(ValueError, match="positive"):
        buf.push("video", 0, 0, 0.0, 0)
    buf.advance(1.0)
    with pytest.raises(ValueError, match="backwards"):
        buf.advance(0.5)
    with pytest.raises(ValueError):
        PlayoutBuffer([])
    with pytest.raises(ValueError):
        BufferConfig(resume_threshold=-1)


@settings(max_examples=150, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=0.6), st.booleans()),
        min_size=1,
        max_size=60,
    ),
    rates=st.lists(st.floats(min_value=0.5, max_value=2.0), min_size=1, max_size=5),
)
def test_invariants_under_random_arrivals(
    arrivals: list[tuple[float, bool]], rates: list[float]
) -> None:
    """Position never passes the media received; wall time is playing + stalled + startup."""
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"], BufferConfig(start_threshold=0.2))
    now = 0.0
    pushed_end = 0
    for i, (delay, rate_change) in enumerate(arrivals):
        now += delay
        if rate_change:
            buf.set_rate(rates[i % len(rates)], now)
        buf.push("video", i * PART, PART, now, i)
        pushed_end = (i + 1) * PART
        position = buf.position_us
        assert position is None or position <= pushed_end
        assert buf.level_s >= 0
    buf.advance(now + 30.0)
    s = buf.stats(now + 30.0)
    assert s.state is PlayState.STALLED
    assert buf.position_us == pushed_end
    assert s.started_at is not None
    assert s.played_s + s.stall_s == pytest.approx(now + 30.0 - s.started_at, abs=1e-6)
    assert s.stalls >= 1


def test_play_from_presents_from_a_later_point() -> None:
    buf: PlayoutBuffer[int] = PlayoutBuffer(["video"], BufferConfig(start_threshold=0.2))
    buf.play_from(700 * MS)  # inside part 3
    feed(buf, "video", 0, 4, 1.0)  # up to 0.8 s: only 0.1 s after 0.7
    assert buf.stats().state is PlayState.BUFFERING
    feed(buf, "video", 4, 1, 1.2)
    assert buf.stats().state is PlayState.PLAYING
    assert buf.position_us == 700 * MS
    assert buf.pop_due("video") == [0, 1, 2, 3]  # decode from the key frame, show from 0.7
    with pytest.raises(RuntimeError):
        buf.play_from(0)
