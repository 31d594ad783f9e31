"""Client-side playlist rules: positions, start choice, delta merge, directives."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llhls.errors import PlaylistError
from llhls.playlist.model import (
    MediaPlaylist,
    OpenSegment,
    Part,
    PreloadHint,
    Segment,
    ServerControl,
)
from llhls.playlist.parse import parse_media
from llhls.playlist.render import render_media
from player.timeline import (
    backoff,
    choose_aligned,
    choose_start,
    chunks,
    find_chunk,
    hint_position,
    hinted_part_uri,
    last_position,
    live_edge,
    map_uris,
    merge_update,
    next_position,
    segment_pdt_ms,
    segment_starts,
    skip_directive,
    with_directives,
)
from tests.player.fake_origin import FakeOrigin, StreamSpec

P = Fraction(1, 5)


def parts(msn: int, n: int, every: int = 10) -> tuple[Part, ...]:
    return tuple(Part(f"p{msn}.{i}", P, independent=i % every == 0) for i in range(n))


def playlist(
    first: int = 10,
    complete: int = 3,
    with_parts: int = 2,
    open_parts: int = 4,
    every: int = 10,
    pdt: bool = True,
) -> MediaPlaylist:
    segs = []
    for k in range(complete):
        msn = first + k
        segs.append(
            Segment(
                f"s{msn}",
                P * 10,
                pdt_ms=1_000_000 + msn * 2000 if pdt and k == 0 else None,
                parts=parts(msn, 10, every) if k >= complete - with_parts else (),
            )
        )
    return MediaPlaylist(
        target_duration=2,
        media_sequence=first,
        part_target=P,
        server_control=ServerControl(
            can_block_reload=True, can_skip_until=Fraction(12), part_hold_back=3 * P
        ),
        segments=tuple(segs),
        open_segment=OpenSegment(parts(first + complete, open_parts, every))
        if open_parts
        else None,
        preload_hints=(PreloadHint(f"p{first + complete}.{open_parts}"),),
    )


def test_chunks_use_parts_where_listed() -> None:
    pl = playlist()
    listed = chunks(pl)
    assert [c.position for c in listed[:2]] == [(10, 0), (11, 0)]
    assert listed[0].part is None and listed[1].part == 0
    assert listed[-1].position == (13, 3)
    assert listed[-1].end == live_edge(pl) == Fraction(2 * 3) + 4 * P
    classic = chunks(pl, use_parts=False)
    assert [c.position for c in classic] == [(10, 0), (11, 0), (12, 0)]
    assert all(c.part is None for c in classic)


@pytest.mark.parametrize(
    ("open_parts", "expected"),
    [(4, (13, 4)), (0, (13, 0)), (9, (13, 9))],
)
def test_hint_position(open_parts: int, expected: tuple[int, int]) -> None:
    pl = playlist(open_parts=open_parts)
    assert hint_position(pl) == expected
    assert hinted_part_uri(pl) == f"p{expected[0]}.{expected[1]}"


@pytest.mark.parametrize(
    ("position", "after"),
    [((10, 0), (11, 0)), ((11, 3), (11, 4)), ((11, 9), (12, 0)), ((13, 2), (13, 3))],
)
def test_next_position(position: tuple[int, int], after: tuple[int, int]) -> None:
    pl = playlist()
    chunk = find_chunk(pl, position)
    assert chunk is not None
    assert next_position(pl, chunk) == after


@pytest.mark.parametrize(
    ("every", "open_parts", "hold_back", "expected"),
    [
        # every part independent: exactly PART-HOLD-BACK (0.6 s = 3 parts) from the edge
        (1, 4, 3 * P, (13, 1)),
        (1, 0, 3 * P, (12, 7)),
        # independent every 5 parts: the latest at or before edge - 0.6
        (5, 4, 3 * P, (13, 0)),
        (5, 2, 3 * P, (12, 5)),
        (5, 9, 3 * P, (13, 5)),
        # only segment starts are independent
        (10, 4, 3 * P, (13, 0)),
        (10, 2, 3 * P, (12, 0)),
        # a longer hold back reaches whole segments without parts
        (10, 4, Fraction(9, 2), (11, 0)),
        (10, 4, Fraction(5), (10, 0)),
        # longer than the playlist: the earliest independent chunk
        (10, 4, Fraction(60), (10, 0)),
    ],
)
def test_choose_start(
    every: int, open_parts: int, hold_back: Fraction, expected: tuple[int, int]
) -> None:
    pl = playlist(every=every, open_parts=open_parts)
    chunk = choose_start(pl, hold_back)
    assert chunk is not None
    assert chunk.position == expected
    assert chunk.independent
    if chunk.start > 0 or hold_back < 10:
        assert live_edge(pl) - chunk.start >= min(hold_back, live_edge(pl))


def test_choose_aligned_picks_nearest_independent() -> None:
    pl = playlist(every=1)
    assert choose_aligned(pl, 12, Fraction(3, 5)) is not None
    chunk = choose_aligned(pl, 12, Fraction(3, 5))
    assert chunk is not None and chunk.position == (12, 3)
    chunk = choose_aligned(pl, 13, Fraction(0))
    assert chunk is not None and chunk.position == (13, 0)
    assert choose_aligned(pl, 99, Fraction(0)) is None


def test_pdt_is_carried_forward_and_backward() -> None:
    pl = playlist()
    pdts = segment_pdt_ms(pl)
    assert pdts == {m: 1_000_000 + m * 2000 for m in range(10, 14)}
    none = segment_pdt_ms(playlist(pdt=False))
    assert none == {}


def test_map_uris_follow_changes() -> None:
    pl = parse_media(
        '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI="a.mp4"\n'
        '#EXTINF:2,\ns0\n#EXT-X-MAP:URI="b.mp4"\n#EXTINF:2,\ns1\n'
    )
    assert map_uris(pl) == {0: "a.mp4", 1: "b.mp4"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("m.m3u8",), "m.m3u8"),
        (("m.m3u8", 5), "m.m3u8?_HLS_msn=5"),
        (("m.m3u8", 5, 2), "m.m3u8?_HLS_msn=5&_HLS_part=2"),
        (("m.m3u8", 5, 2, "YES"), "m.m3u8?_HLS_msn=5&_HLS_part=2&_HLS_skip=YES"),
        (("m.m3u8?token=a", 5, None, "YES"), "m.m3u8?token=a&_HLS_msn=5&_HLS_skip=YES"),
        (("m.m3u8", None, None, "YES"), "m.m3u8?_HLS_skip=YES"),
    ],
)
def test_with_directives(args: tuple[object, ...], expected: str) -> None:
    assert with_directives(*args) == expected  # type: ignore[arg-type]


def test_part_without_msn_is_refused() -> None:
    with pytest.raises(ValueError, match="_HLS_msn"):
        with_directives("m.m3u8", None, 3)


@pytest.mark.parametrize(
    ("complete", "age", "expected"),
    [
        (10, 0.0, "YES"),  # 20 s listed > 12 s skip boundary, fresh
        (10, 6.0, "YES"),
        (10, 6.5, None),  # older than half the boundary
        (6, 0.0, None),  # 12 s listed: nothing to skip
    ],
)
def test_skip_directive(complete: int, age: float, expected: str | None) -> None:
    pl = playlist(complete=complete)
    assert skip_directive(pl, age) == expected


@pytest.mark.parametrize(
    ("failures", "expected"), [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.4), (5, 1.6), (6, 2.0)]
)
def test_backoff(failures: int, expected: float) -> None:
    assert backoff(failures, 0.1, 2.0) == pytest.approx(expected)


def test_merge_rejects_unknown_skipped_segments() -> None:
    origin = FakeOrigin()
    known = origin.media_playlist("720p", 30.0)
    delta = origin.media_playlist("720p", 60.0, skip=True)
    assert delta.skip is not None
    with pytest.raises(PlaylistError, match="not known"):
        merge_update(known, delta)


def test_merge_keeps_parts_the_server_dropped() -> None:
    origin = FakeOrigin()
    before = origin.media_playlist("720p", 30.1)
    after = origin.media_playlist("720p", 32.1)
    merged = merge_update(before, after)
    by_msn = {merged.first_msn + i: s for i, s in enumerate(merged.segments)}
    assert after.segments[0].parts == ()
    assert by_msn[12].parts  # listed with parts before, kept


@settings(max_examples=60, deadline=None)
@given(
    start=st.floats(min_value=25.0, max_value=200.0),
    step=st.floats(min_value=0.05, max_value=5.5),
    window=st.integers(min_value=7, max_value=14),
)
def test_delta_merge_equals_full_playlist(start: float, step: float, window: int) -> None:
    """Known playlist + delta update == the full playlist (segments, hints, reports)."""
    origin = FakeOrigin(StreamSpec(window=window))
    known = origin.media_playlist("720p", start)
    delta = parse_media(render_media(origin.media_playlist("720p", start + step, skip=True)))
    full = origin.media_playlist("720p", start + step)
    merged = merge_update(known, delta)
    assert merged.media_sequence == full.media_sequence
    assert [s.uri for s in merged.segments] == [s.uri for s in full.segments]
    assert [s.duration for s in merged.segments] == [s.duration for s in full.segments]
    assert merged.open_segment == full.open_segment
    assert merged.preload_hints == full.preload_hints
    assert merged.skip is None
    # a segment listed with parts in either is listed with the same parts
    for mseg, fseg in zip(merged.segments, full.segments, strict=True):
        if fseg.parts:
            assert mseg.parts == fseg.parts


@settings(max_examples=60, deadline=None)
@given(
    complete=st.integers(min_value=0, max_value=5),
    with_parts=st.integers(min_value=0, max_value=5),
    open_parts=st.integers(min_value=0, max_value=6),
    since=st.integers(min_value=5, max_value=20),
    use_parts=st.booleans(),
)
def test_chunks_since_and_last_position_agree_with_the_whole_list(
    complete: int, with_parts: int, open_parts: int, since: int, use_parts: bool
) -> None:
    pl = playlist(complete=complete, with_parts=min(with_parts, complete), open_parts=open_parts)
    listed = chunks(pl, use_parts=use_parts)
    assert chunks(pl, use_parts=use_parts, since=since) == [c for c in listed if c.msn >= since]
    expected = listed[-1].position if listed else None
    assert last_position(pl, use_parts=use_parts) == expected


def test_segment_starts_and_dates_are_exact_with_mixed_denominators() -> None:
    durations = [Fraction(1, 3), Fraction(2, 7), Fraction(6), Fraction(1, 10)]
    segs = tuple(
        Segment(f"s{i}", d, pdt_ms=5_000 if i == 1 else None) for i, d in enumerate(durations)
    )
    pl = MediaPlaylist(target_duration=6, media_sequence=4, segments=segs)
    starts = segment_starts(pl)
    assert list(starts.values()) == [sum(durations[:i], Fraction(0)) for i in range(4)]
    assert segment_pdt_ms(pl) == {
        4: 5_000 - Fraction(1000, 3),
        5: Fraction(5_000),
        6: 5_000 + Fraction(2000, 7),
        7: 5_000 + Fraction(2000, 7) + 6000,
    }
    assert pl.duration == sum(durations, Fraction(0))
