"""Capture time of the media on screen, from reference points (pure)."""

from __future__ import annotations

import pytest

from player.latency import CaptureTimeline, MediaToTimeline, latency_s

S = 1_000_000
BASE = 1_700_000_000 * S  # a capture clock value (UTC µs)


@pytest.mark.parametrize(
    ("points", "position", "capture"),
    [
        ([], 5 * S, None),  # nothing known
        ([(10 * S, BASE)], 5 * S, None),  # before the first point
        ([(10 * S, BASE)], 10 * S, BASE),  # on a point
        ([(10 * S, BASE)], 10 * S + 40_000, BASE + 40_000),  # capture runs with media time
        ([(10 * S, BASE), (11 * S, BASE + S + 7)], 11 * S + 5, BASE + S + 12),  # latest wins
        ([(10 * S, BASE), (11 * S, BASE + S + 7)], 11 * S - 1, BASE + S - 1),
        ([(10 * S, BASE)], 12 * S, BASE + 2 * S),  # 2 s past the point: still trusted
        ([(10 * S, BASE)], 12 * S + 1, None),  # further: a gap in references
        # out of order (a chunk re-delivered after a switch) is sorted in
        ([(11 * S, BASE + S), (10 * S, BASE)], 10 * S + 5, BASE + 5),
        # a point at a known position replaces it
        ([(10 * S, BASE), (10 * S, BASE + 3)], 10 * S, BASE + 3),
    ],
)
def test_capture_at(points: list[tuple[int, int]], position: int, capture: int | None) -> None:
    timeline = CaptureTimeline()
    for t, c in points:
        timeline.add(t, c)
    assert timeline.capture_at(position) == capture


def test_points_behind_the_position_are_forgotten() -> None:
    timeline = CaptureTimeline()
    for i in range(10):
        timeline.add(i * 33_333, BASE + i * 33_333)
    assert timeline.capture_at(5 * 33_333 + 1) == BASE + 5 * 33_333 + 1
    assert len(timeline) == 5  # the point on screen and the four ahead
    assert timeline.capture_at(9 * 33_333) == BASE + 9 * 33_333
    assert len(timeline) == 1


def test_limit_keeps_the_newest_points() -> None:
    timeline = CaptureTimeline(limit=3)
    for i in range(5):
        timeline.add(i * S, BASE + i * S)
    assert len(timeline) == 3
    assert timeline.capture_at(S) is None
    assert timeline.capture_at(2 * S) == BASE + 2 * S


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        CaptureTimeline(limit=0)
    with pytest.raises(ValueError):
        CaptureTimeline(max_distance_us=-1)
    with pytest.raises(ValueError):
        MediaToTimeline(limit=0)


def test_media_to_timeline() -> None:
    m = MediaToTimeline()
    assert m.to_timeline(0) is None
    m.add(0, BASE)  # chunk 1: media 0 s at PDT BASE
    m.add(200_000, BASE + 200_300)  # chunk 2 starts 0.3 ms later on the timeline (PDT jitter)
    assert m.to_timeline(33_333) == BASE + 33_333
    assert m.to_timeline(233_333) == BASE + 233_633
    assert m.to_timeline(-1) is None
    m.clear()
    assert m.to_timeline(233_333) is None


def test_latency_s() -> None:
    assert latency_s(BASE + 812_500, BASE) == pytest.approx(0.8125)
    assert latency_s(BASE, BASE + S) == pytest.approx(-1.0)
