"""Chunker: parts on the shared grid, aligned across tracks, within the spec's bounds."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llhls.errors import ConfigError
from llhls.media import Sample
from packager.chunker import (
    Chunker,
    ChunkEvent,
    GridConfig,
    PartDone,
    SegmentDone,
    declared_part_target,
    meets_part_floor,
    part_bounds,
)


def video_samples(n: int, frame_ticks: int = 3000, gop: int = 60) -> list[Sample]:
    return [
        Sample(data=b"v", dts=i * frame_ticks, duration=frame_ticks, keyframe=i % gop == 0)
        for i in range(n)
    ]


def audio_samples(n: int, frame: int = 1024) -> list[Sample]:
    return [Sample(data=b"a", dts=i * frame, duration=frame, keyframe=True) for i in range(n)]


def run(chunker: Chunker, samples: list[Sample]) -> list[ChunkEvent]:
    events: list[ChunkEvent] = []
    for s in samples:
        events.extend(chunker.push(s))
    return events


GRID = GridConfig.for_video(Fraction(30), Fraction(1, 5), Fraction(2))


def test_grid_rounds_to_frames_and_parts() -> None:
    assert GRID.part_duration == Fraction(1, 5)
    assert GRID.parts_per_segment == 10
    g = GridConfig.for_video(Fraction(30000, 1001), Fraction(1, 5), Fraction(2))
    assert g.part_duration == Fraction(6 * 1001, 30000)
    assert g.parts_per_segment == 10
    with pytest.raises(ConfigError, match="longer than the segment"):
        GridConfig.for_video(Fraction(30), Fraction(1), Fraction(1, 2))
    # 0.985 s rounds to 30 frames at 29.97 fps = 1.001 s: capped to fit a 1 s segment
    capped = GridConfig.for_video(Fraction(30000, 1001), Fraction(985, 1000), Fraction(1))
    assert capped.part_duration == Fraction(29 * 1001, 30000)


def test_video_parts_close_on_their_last_frame() -> None:
    ch = Chunker(90_000, GRID)
    samples = video_samples(12)
    events: list[list[ChunkEvent]] = [ch.push(s) for s in samples]
    # nothing until frame 5 (the 6th), then part 0 closes without waiting for frame 6
    assert all(e == [] for e in events[:5])
    first = events[5]
    assert len(first) == 1 and isinstance(first[0], PartDone)
    part = first[0]
    assert (part.msn, part.index, len(part.samples), part.duration) == (0, 0, 6, 18_000)
    assert part.independent and part.segment_start
    second = events[11][0]
    assert isinstance(second, PartDone)
    assert (second.index, second.independent, second.segment_start) == (1, False, False)


def test_segments_of_ten_parts_start_with_key_frames() -> None:
    ch = Chunker(90_000, GRID)
    events = run(ch, video_samples(180))  # 6 s
    segs = [e for e in events if isinstance(e, SegmentDone)]
    assert [(s.msn, s.parts, s.duration) for s in segs] == [(m, 10, 180_000) for m in range(3)]
    parts = [e for e in events if isinstance(e, PartDone)]
    assert len(parts) == 30
    assert all(p.independent == (p.index == 0) for p in parts)
    # the SegmentDone comes right after the segment's last part
    idx = events.index(segs[0])
    last = events[idx - 1]
    assert isinstance(last, PartDone) and last.index == 9


def test_audio_parts_align_with_video_grid() -> None:
    ch = Chunker(48_000, GRID)
    events = run(ch, audio_samples(48_000 * 6 // 1024))
    parts = [e for e in events if isinstance(e, PartDone)]
    lo, hi = part_bounds(GRID.part_duration, Fraction(1024, 48_000))
    for p in parts[:-1]:
        d = Fraction(p.duration, 48_000)
        assert lo <= d <= hi
        # every part starts within half a frame of its grid point
        k = p.msn * 10 + p.index
        start = Fraction(p.samples[0].dts, 48_000)
        assert abs(start - k * GRID.part_duration) <= Fraction(512, 48_000)
    segs = [e for e in events if isinstance(e, SegmentDone)]
    assert [s.msn for s in segs] == [0, 1, 2]  # 281 frames end 5 ms before 6 s: nearest cut
    assert all(abs(Fraction(s.duration, 48_000) - 2) <= Fraction(1024, 48_000) for s in segs)


def test_declared_target_covers_audio() -> None:
    target = declared_part_target(Fraction(1, 5), [Fraction(1, 30), Fraction(1024, 48_000)])
    assert target == Fraction(10 * 1024, 48_000)
    lo, _ = part_bounds(Fraction(1, 5), Fraction(1024, 48_000))
    assert lo / target >= Fraction(85, 100)


def test_flush_closes_open_part_and_segment() -> None:
    ch = Chunker(90_000, GRID)
    run(ch, video_samples(8))
    tail = ch.flush()
    assert isinstance(tail[0], PartDone) and len(tail[0].samples) == 2
    assert isinstance(tail[1], SegmentDone) and tail[1].parts == 2


def test_decode_order_enforced() -> None:
    ch = Chunker(90_000, GRID)
    ch.push(Sample(b"x", 3000, 3000, True))
    with pytest.raises(ValueError, match="increasing decode order"):
        ch.push(Sample(b"x", 3000, 3000, True))


@settings(max_examples=60, deadline=None)
@given(
    fps=st.sampled_from(
        [Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(60)]
    ),
    part_ms=st.integers(min_value=100, max_value=1000),
    segment_s=st.integers(min_value=1, max_value=6),
    rate=st.sampled_from([44_100, 48_000]),
)
def test_every_part_within_target_and_floor(
    fps: Fraction, part_ms: int, segment_s: int, rate: int
) -> None:
    audio_frame = Fraction(1024, rate)
    try:
        grid = GridConfig.for_video(
            fps, Fraction(part_ms, 1000), Fraction(segment_s), [audio_frame]
        )
    except ConfigError as exc:
        # only when no whole number of frames can satisfy the floor
        assert "85-100 %" in str(exc)
        return
    target = declared_part_target(grid.part_duration, [1 / fps, audio_frame])
    vticks = 90_000 / fps
    assert vticks.denominator == 1
    tracks = [
        (90_000, video_samples(int(fps * 8), int(vticks), gop=10**9)),
        (rate, audio_samples(8 * rate // 1024)),
    ]
    for timescale, samples in tracks:
        events = run(Chunker(timescale, grid), samples)
        parts = [e for e in events if isinstance(e, PartDone)]
        assert parts
        for i, p in enumerate(parts[:-1]):
            d = Fraction(p.duration, timescale)
            assert d <= target
            last_of_parent = parts[i + 1].index == 0
            if not last_of_parent:
                assert d * 100 >= 85 * target or p.independent


def test_floor_moves_the_grid_when_audio_frames_are_coarse() -> None:
    # 60 fps, 0.109 s: 7 frames (0.1167 s) would be 84 % of the 6-AAC-frame target
    audio = Fraction(1024, 44_100)
    assert not meets_part_floor(Fraction(7, 60), [Fraction(1, 60), audio])
    grid = GridConfig.for_video(Fraction(60), Fraction(109, 1000), Fraction(1), [audio])
    assert meets_part_floor(grid.part_duration, [Fraction(1, 60), audio])
    assert abs(grid.part_duration - Fraction(109, 1000)) <= Fraction(3, 60)
