"""The simulator speed-ups never change an answer.

Each shortcut (the chunk memo of :func:`player.timeline.chunks`, the plain-name
path of URI resolution, integer forms of exact arithmetic, the shared walk of
:func:`player.timeline.segment_times`) is compared with the plain computation
it replaces, on the cases where a stale or rounded answer would show: window
slides, growing and completing open segments, delta updates, rendition
switches, replaced part objects, halves and boundaries.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from fractions import Fraction
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llhls.lab.sim import SimConfig, ViewerSpec, _Sim
from llhls.lab.traces import ConstantRate
from llhls.origin.core import _query_pairs
from llhls.playlist.model import (
    MediaPlaylist,
    OpenSegment,
    Part,
    Segment,
    ServerControl,
    Skip,
    _check_count,
    exact_add,
    exact_sum,
)
from llhls.playlist.parse import parse_media
from llhls.playlist.render import render_media
from player.catchup import CatchupConfig, Controller
from player.timeline import (
    Chunk,
    ChunkMemo,
    chunks,
    merge_update,
    segment_pdt_ms,
    segment_starts,
    segment_times,
    skip_directive,
)
from player.track import _resolve, _round_ratio

F = Fraction
FIFTH = F(1, 5)

# -- playlists ---------------------------------------------------------------------------------


def part(name: str, msn: int, i: int, d: Fraction = FIFTH) -> Part:
    return Part(uri=f"{name}{msn}.{i}.m4s", duration=d, independent=i == 0)


def live(
    first: int,
    complete: int,
    open_parts: int,
    *,
    name: str = "p",
    per: int = 5,
    d: Fraction = FIFTH,
    skip: int = 0,
    pdt: bool = True,
) -> MediaPlaylist:
    """A live playlist: ``complete`` segments from ``first`` (the first ``skip`` of them
    skipped), then an open segment with ``open_parts`` parts."""
    segs = tuple(
        Segment(
            uri=f"{name}seg{m}.m4s",
            duration=d * per,
            pdt_ms=1_700_000_000_000 + m * 1000 if pdt else None,
            parts=tuple(part(name, m, i, d) for i in range(per)),
        )
        for m in range(first + skip, first + complete)
    )
    open_seg = None
    if open_parts:
        m = first + complete
        open_seg = OpenSegment(
            parts=tuple(part(name, m, i, d) for i in range(open_parts)),
            pdt_ms=1_700_000_000_000 + m * 1000 if pdt else None,
        )
    return MediaPlaylist(
        target_duration=2,
        version=9,
        media_sequence=first,
        part_target=d,
        server_control=ServerControl(can_block_reload=True, can_skip_until=F(6)),
        skip=Skip(skip) if skip else None,
        segments=segs,
        open_segment=open_seg,
    )


def check_chunks(pl: MediaPlaylist, memo: ChunkMemo, since: int | None) -> list[Chunk]:
    got = chunks(pl, since=since, memo=memo)
    assert got == chunks(pl, since=since)
    assert got == chunks(pl, since=since, starts=segment_starts(pl))
    return got


def test_chunk_memo_follows_a_live_stream() -> None:
    """Parts added one by one, segments completing, the window sliding, the cursor
    moving: every answer equals one made without the memo."""
    memo: ChunkMemo = {}
    first = 0
    for k in range(80):
        complete, open_parts = divmod(k, 5)
        if complete > 4:  # a window of 4 complete segments
            first = complete - 4
            complete = 4
        else:
            first = 0
        # the open segment's parts are new objects every time, as from a fresh parse
        pl = live(first, complete, open_parts)
        since = first + max(0, complete - 1)
        check_chunks(pl, memo, since)
        check_chunks(pl, memo, None)


def test_chunk_memo_reuses_only_the_same_parts() -> None:
    memo: ChunkMemo = {}
    pl = live(10, 3, 2)
    first = chunks(pl, since=13, memo=memo)
    # the same part objects, one more: the known chunks come back, the new one is added
    grown = dataclasses.replace(
        pl,
        open_segment=OpenSegment(parts=(*pl.open_segment.parts, part("p", 13, 2))),  # type: ignore[union-attr]
    )
    more = check_chunks(grown, memo, 13)
    assert more[:2] == first and more[0] is first[0]
    # another rendition at the same msn and start: other objects, other chunks
    other = live(10, 3, 3, name="q")
    assert [c.uri for c in check_chunks(other, memo, 13)] == [f"q13.{i}.m4s" for i in range(3)]
    # equal values, new objects (a new parse): still equal answers
    again = live(10, 3, 3)
    assert check_chunks(again, memo, 13) == more[:2] + [chunks(again, since=13)[2]]


def test_chunk_memo_after_a_slide_and_other_durations() -> None:
    memo: ChunkMemo = {}
    check_chunks(live(10, 4, 3), memo, 13)
    check_chunks(live(11, 3, 3), memo, 13)  # the window slid: the same parts start earlier
    check_chunks(live(11, 3, 3, d=F(1, 3)), memo, 13)  # other durations at the same msn
    check_chunks(live(11, 3, 0), memo, 13)  # no open segment
    check_chunks(live(11, 3, 4), memo, 12)  # the cursor went back a segment


def test_chunk_memo_holds_its_parts_so_ids_are_not_reused() -> None:
    memo: ChunkMemo = {}
    for n in range(30):
        # objects dropped at once: without the memo holding them their ids would repeat
        pl = live(5, 2, 1 + n % 4, d=F(1, 5) if n % 2 else F(1, 4))
        check_chunks(pl, memo, 7)
        del pl
        gc.collect()


def test_chunk_memo_on_delta_updates() -> None:
    memo: ChunkMemo = {}
    known: MediaPlaylist | None = None
    for k in range(40):
        complete, open_parts = divmod(k, 5)
        first = max(0, complete - 5)
        full = live(first, complete - first, open_parts)
        if known is not None and complete - first > 2:
            text = render_media(live(first, complete - first, open_parts, skip=2))
            merged = merge_update(known, parse_media(text))
        else:
            merged = merge_update(known, parse_media(render_media(full)))
        assert merged.segments == full.segments
        check_chunks(merged, memo, max(first, complete - 1))
        known = merged


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # first msn
            st.integers(0, 3),  # complete segments
            st.integers(0, 4),  # open parts
            st.sampled_from([F(1, 5), F(1, 3), F(1, 4), F(2, 7)]),
            st.booleans(),  # rendition
            st.integers(0, 7),  # since
        ),
        min_size=1,
        max_size=12,
    )
)
def test_chunk_memo_any_sequence(steps: list[tuple[int, int, int, Fraction, bool, int]]) -> None:
    memo: ChunkMemo = {}
    for first, complete, open_parts, d, other, since in steps:
        if complete == 0 and open_parts == 0:
            open_parts = 1
        pl = live(first, complete, open_parts, d=d, name="q" if other else "p")
        check_chunks(pl, memo, since)


# -- segment tables ----------------------------------------------------------------------------


def reference_pdts(pl: MediaPlaylist) -> dict[int, Fraction]:
    """The dates as plain Fraction sums."""
    starts: dict[int, Fraction] = {}
    acc = F(0)
    heads = []
    for i, s in enumerate(pl.segments):
        starts[pl.first_msn + i] = acc
        acc += s.duration
        heads.append((pl.first_msn + i, s.pdt_ms))
    if pl.open_segment is not None:
        starts[pl.next_msn] = acc
        heads.append((pl.next_msn, pl.open_segment.pdt_ms))
    out: dict[int, Fraction] = {}
    anchor = None
    for msn, pdt in heads:
        if pdt is not None:
            anchor = (msn, pdt)
        if anchor is not None:
            out[msn] = anchor[1] + (starts[msn] - starts[anchor[0]]) * 1000
    tagged = [(m, p) for m, p in heads if p is not None]
    if tagged:
        m0, p0 = tagged[0]
        for msn, _ in heads:
            if msn < m0:
                out[msn] = p0 - (starts[m0] - starts[msn]) * 1000
    return out


@pytest.mark.parametrize("pdt_every", [1, 2, 3, 0])
@pytest.mark.parametrize("d", [F(2), F(1, 3), F(2, 7)])
def test_segment_times_match_plain_sums(pdt_every: int, d: Fraction) -> None:
    segs = tuple(
        Segment(
            uri=f"s{m}.m4s",
            duration=d * (1 + m % 3),
            pdt_ms=1_700_000_000_000 + 7 * m if pdt_every and m % pdt_every == 1 else None,
        )
        for m in range(6)
    )
    pl = MediaPlaylist(
        target_duration=8,
        media_sequence=40,
        segments=segs,
        open_segment=OpenSegment(parts=(part("p", 46, 0),), pdt_ms=None),
    )
    starts, pdts = segment_times(pl)
    assert starts == segment_starts(pl)
    assert pdts == segment_pdt_ms(pl) == reference_pdts(pl)
    assert all(type(v) is Fraction for v in (*starts.values(), *pdts.values()))


# -- exact arithmetic in integers --------------------------------------------------------------

fractions = st.fractions(min_value=-(10**6), max_value=10**6, max_denominator=10**6)


@given(fractions, fractions)
def test_exact_add(a: Fraction, b: Fraction) -> None:
    total = exact_add(a, b)
    assert total == a + b and type(total) is Fraction
    assert exact_add(F(3), 2) == 5  # type: ignore[arg-type]


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**6))
def test_round_ratio(n: int, d: int) -> None:
    assert _round_ratio(n, d) == round(F(n, d))


@pytest.mark.parametrize(("n", "d"), [(1, 2), (3, 2), (-1, 2), (-3, 2), (5, 10), (15, 10)])
def test_round_ratio_halves_go_to_even(n: int, d: int) -> None:
    assert _round_ratio(n, d) == round(F(n, d))


def test_check_count_still_refuses_bools_and_negatives() -> None:
    _check_count(0, "x")
    _check_count(7, "x")
    for bad in (True, -1, 1.0, "1"):
        with pytest.raises(ValueError):
            _check_count(bad, "x")  # type: ignore[arg-type]


def plain_skip(pl: MediaPlaylist, age: float) -> str | None:
    sc = pl.server_control
    if sc is None or sc.can_skip_until is None or pl.endlist:
        return None
    if age > sc.can_skip_until / 2:
        return None
    if pl.duration <= sc.can_skip_until:
        return None
    return "YES"


@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=0, max_value=10),
        st.sampled_from([3.0, math.nextafter(3.0, 0), math.nextafter(3.0, 9), 1e308, 2.5]),
    ),
    st.sampled_from([F(6), F(5), F(13, 2), F(7, 3)]),
    st.integers(1, 6),
)
def test_skip_directive_is_exact(age: float, limit: Fraction, complete: int) -> None:
    pl = dataclasses.replace(
        live(0, complete, 1, d=F(2, 5)),
        server_control=ServerControl(can_block_reload=True, can_skip_until=limit),
    )
    assert skip_directive(pl, age) == plain_skip(pl, age)


def test_exact_sum_unchanged() -> None:
    assert exact_sum([F(1, 3), F(1, 6), 2]) == F(5, 2)


# -- URI resolution ----------------------------------------------------------------------------


def plain_resolve(base: str, uri: str) -> tuple[str, bool]:
    joined = urlsplit(urljoin(base, uri))
    path = joined.path or "/"
    return (f"{path}?{joined.query}" if joined.query else path), bool(joined.netloc)


BASES = [
    "/live/720p/media.m3u8",
    "/live/720p/media.m3u8?x=1",
    "/live/720p/",
    "/media.m3u8",
    "",
    "/",
    "media.m3u8",
    "a/b/media.m3u8",
    "/a//b/media.m3u8",
    "/a/./b/../c/media.m3u8",
    "/a/b/..",
    "/a/b/.",
    "/a;p/b;q/media.m3u8",
    "http://cdn.example/live/media.m3u8",
    "http://cdn.example",
    "https://cdn.example/a/b/",
    "foo:bar",
    "mailto:x@y",
    "//host/a/b.m3u8",
    "/a/b.m3u8#frag",
]
URIS = [
    "part1.2.m4s",
    "seg7.m4s",
    ".hidden",
    "..x",
    "a..b",
    "~u",
    "-x_y.m4s",
    ".",
    "..",
    "../audio/media.m3u8",
    "x.m4s?y=1",
    "/abs.m4s",
    "http://o/x.m4s",
    "a%20b.m4s",
    "",
]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("uri", URIS)
def test_resolve_shortcut_matches_urljoin(base: str, uri: str) -> None:
    _resolve.cache_clear()
    assert _resolve(base, uri) == plain_resolve(base, uri)
    assert _resolve(base, uri) == plain_resolve(base, uri)  # remembered


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet="/.;:?#@%ab-_~", max_size=14),
    st.text(alphabet="ab.-_~:/?%", min_size=0, max_size=6),
)
def test_resolve_shortcut_any_strings(base: str, uri: str) -> None:
    assert _resolve(base, uri) == plain_resolve(base, uri)


# -- the simulator's glue ----------------------------------------------------------------------


@pytest.mark.parametrize("part_s", [F(1, 5), F(1, 3), F(2, 7), F(1, 1)])
def test_part_time_is_the_exact_product_rounded_once(part_s: Fraction) -> None:
    from llhls.lab.sim import StreamConfig

    spec = ViewerSpec("v", lambda: Controller(CatchupConfig()), ConstantRate(5e6))
    sim = _Sim(SimConfig(duration_s=10.0, viewers=(spec,), stream=StreamConfig(part_s=part_s)))
    lag = sim.config.stream.publish_lag_s
    for k in [*range(2000), 10**6, 10**9 + 7]:
        assert sim.part_time(k) == float((k + 1) * part_s) + lag


# -- the origin's query split ------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="_HLSmsn=&ab01.-+%;2 ", max_size=30))
def test_query_pairs_match_parse_qsl(query: str) -> None:
    assert _query_pairs(query) == parse_qsl(query, keep_blank_values=True)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "&",
        "_HLS_msn=12&_HLS_part=3",
        "_HLS_skip=YES",
        "a",
        "a=",
        "=b",
        "a=b=c",
        "&&x=1&",
        "a=%41",
    ],
)
def test_query_pairs_examples(query: str) -> None:
    assert _query_pairs(query) == parse_qsl(query, keep_blank_values=True)
