"""The parser's and renderer's caches never change an answer.

:func:`llhls.playlist.parse.parse_media` remembers whole segment blocks and
playlist starts by their text; :mod:`llhls.playlist.render` remembers a
complete segment's lines per segment object. Each test compares what comes out
with the caches warm against a parse (or render) with every cache emptied.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
from fractions import Fraction as F

import pytest

from llhls.errors import PlaylistError
from llhls.origin.store import Store
from llhls.playlist import MediaPlaylist, Part, Segment, parse_media, render_media
from tests.llhls.origin_feed import Live, ll_spec

# ``llhls.playlist`` re-exports functions named like its modules: get the modules.
_parse = importlib.import_module("llhls.playlist.parse")
_render = importlib.import_module("llhls.playlist.render")

_PARSE_CACHES = ("_BLOCKS", "_HEADS", "_PARTS", "_EXTINFS", "_PDTS", "_HINTS", "_REPORTS")


def cold_parse(text: str) -> MediaPlaylist:
    """``parse_media`` with every cache emptied first (and after: no trace left)."""
    for name in _PARSE_CACHES:
        getattr(_parse, name).clear()
    try:
        return parse_media(text)
    finally:
        for name in _PARSE_CACHES:
            getattr(_parse, name).clear()


def cold_error_line(text: str) -> int | None:
    with pytest.raises(PlaylistError) as info:
        cold_parse(text)
    return info.value.line


HEAD = (
    "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"
    "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5\n"
    "#EXT-X-PART-INF:PART-TARGET=0.5\n"
)


def seg_block(msn: int, *, parts: bool = True, extra: str = "") -> str:
    lines = [f"#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:{2 * msn:02d}.000Z"]
    if parts:
        lines += [
            f'#EXT-X-PART:DURATION=0.5,URI="p{msn}.{i}.m4s"'
            + (",INDEPENDENT=YES" if i == 0 else "")
            for i in range(4)
        ]
    lines += [extra] if extra else []
    lines += ["#EXTINF:2,", f"s{msn}.m4s"]
    return "\n".join(lines) + "\n"


def playlist(first: int, last: int, tail: str = "", *, head: str = HEAD) -> str:
    body = "".join(seg_block(m, parts=m >= last - 1) for m in range(first, last + 1))
    return head + f"#EXT-X-MEDIA-SEQUENCE:{first}\n" + body + tail


def test_live_store_playlists_parse_as_without_caches() -> None:
    """Full and delta playlists of two renditions, reload after reload, as an origin
    writes them: the window slides, part tags go, a delta update skips more."""
    store = Store()
    live = Live(store, ll_spec())
    for name in _PARSE_CACHES:
        getattr(_parse, name).clear()
    hits = 0
    for step in range(60):
        live.step()
        for rid in ("720p", "360p"):
            for skip in ("", "YES"):
                rendered = store.media_playlist("live", rid, skip)
                assert rendered is not None
                text = rendered.text.decode()
                blocks_before = len(_parse._BLOCKS)
                warm = parse_media(text)
                hits += len(_parse._BLOCKS) == blocks_before and len(warm.segments) > 1
                snapshot = {n: dict(getattr(_parse, n)) for n in _PARSE_CACHES}
                assert warm == cold_parse(text), (step, rid, skip)
                for n, saved in snapshot.items():  # keep the caches warm
                    getattr(_parse, n).update(saved)
    assert hits > 50  # the caches did serve


def test_a_changed_segment_in_the_middle_is_read_anew() -> None:
    text = playlist(10, 15)
    assert parse_media(text) == cold_parse(text)
    parse_media(text)  # every block cached
    gap = text.replace("#EXTINF:2,\ns12.m4s", "#EXT-X-GAP\n#EXTINF:2,\ns12.m4s")
    changed = parse_media(gap)
    assert changed == cold_parse(gap)
    assert [s.gap for s in changed.segments] == [False, False, True, False, False, False]
    retitled = text.replace("#EXTINF:2,\ns13.m4s", "#EXTINF:2,title\ns13.m4s")
    assert parse_media(retitled).segments[3].title == "title"
    moved = text.replace("00:00:24.000Z", "00:00:25.000Z")  # the PDT of segment 12
    assert parse_media(moved).segments[2].pdt_ms == cold_parse(moved).segments[2].pdt_ms
    assert parse_media(moved).segments[2].pdt_ms != parse_media(text).segments[2].pdt_ms


def test_the_same_blocks_under_another_header() -> None:
    """A cached start (header and first segment) is reused only for the same text:
    a new media sequence, skip count or server control is read."""
    first = playlist(10, 15)
    parse_media(first)
    later = first.replace("#EXT-X-MEDIA-SEQUENCE:10", "#EXT-X-MEDIA-SEQUENCE:7")
    assert parse_media(later).media_sequence == 7
    delta = first.replace(
        "#EXT-X-MEDIA-SEQUENCE:10\n", "#EXT-X-MEDIA-SEQUENCE:8\n#EXT-X-SKIP:SKIPPED-SEGMENTS=2\n"
    )
    pl = parse_media(delta)
    assert pl == cold_parse(delta)
    assert pl.skip is not None and pl.skip.skipped_segments == 2 and pl.first_msn == 10
    ended = first + "#EXT-X-ENDLIST\n"
    assert parse_media(ended).endlist and not parse_media(first).endlist


def test_tags_after_a_cached_start_do_not_leak_into_the_next_parse() -> None:
    hint = '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p16.0.m4s"\n'
    report = '#EXT-X-RENDITION-REPORT:URI="../lo/m.m3u8",LAST-MSN=15,LAST-PART=3\n'
    with_tail = parse_media(playlist(10, 15, hint + report))
    assert len(with_tail.preload_hints) == 1 and len(with_tail.rendition_reports) == 1
    again = parse_media(playlist(10, 15, hint + report))
    assert again == with_tail
    bare = parse_media(playlist(10, 15))
    assert bare.preload_hints == () and bare.rendition_reports == ()


def test_a_block_with_a_playlist_level_tag_is_never_taken_from_the_cache() -> None:
    """Such a block also changes the playlist: it is read every time."""
    report = '#EXT-X-RENDITION-REPORT:URI="../lo/m.m3u8",LAST-MSN=1'
    text = HEAD + "#EXT-X-MEDIA-SEQUENCE:1\n" + seg_block(1) + seg_block(2, extra=report)
    first = parse_media(text)
    second = parse_media(text)
    assert first == second == cold_parse(text)
    assert len(second.rendition_reports) == 1
    # the same block after another first segment: still read
    other = HEAD + "#EXT-X-MEDIA-SEQUENCE:0\n" + seg_block(0) + seg_block(2, extra=report)
    assert len(parse_media(other).rendition_reports) == 1


def test_errors_after_cached_blocks_keep_their_line() -> None:
    good = playlist(10, 15)
    parse_media(good)
    parse_media(good)
    bad_tail = good + "#EXTINF:2,\n"  # EXTINF without a URI at the end
    bad_part = good + '#EXT-X-PART:DURATION=x,URI="p16.0.m4s"\n'
    bad_middle = good.replace("s14.m4s\n", "s14.m4s\n#EXT-X-MEDIA-SEQUENCE:3\n")
    bad_uri = good.replace('#EXT-X-PART:DURATION=0.5,URI="p15.1.m4s"\n', "stray.m4s\n")
    for bad in (bad_tail, bad_part, bad_middle, bad_uri):
        expected = cold_error_line(bad)
        parse_media(good)  # warm again
        with pytest.raises(PlaylistError) as info:
            parse_media(bad)
        assert info.value.line == expected and expected is not None


def test_blank_lines_carriage_returns_and_comments() -> None:
    text = playlist(10, 14).replace("s11.m4s\n", "s11.m4s\n\n# a comment\n")
    crlf = text.replace("\n", "\r\n")
    for t in (text, crlf, text, crlf):
        assert parse_media(t) == cold_parse(t)
    with pytest.raises(PlaylistError) as info:
        parse_media(crlf + "#EXT-X-PART:DURATION=0.5\r\n")
    assert info.value.line == cold_error_line(crlf + "#EXT-X-PART:DURATION=0.5\r\n")


def test_plain_tag_spellings_read_as_the_general_path() -> None:
    """Parts, hints and reports in the origin's spelling take a shortcut; other
    spellings of the same values give equal tags."""
    plain = (
        HEAD
        + "#EXT-X-MEDIA-SEQUENCE:1\n"
        + '#EXT-X-PART:DURATION=0.5,URI="a.0",INDEPENDENT=YES\n'
        + '#EXT-X-PART:DURATION=0.5,URI="a.1"\n'
        + '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="a.2"\n'
        + '#EXT-X-RENDITION-REPORT:URI="../b/m.m3u8",LAST-MSN=1,LAST-PART=1\n'
        + '#EXT-X-RENDITION-REPORT:URI="../c/m.m3u8",LAST-MSN=0\n'
    )
    other = (
        HEAD
        + "#EXT-X-MEDIA-SEQUENCE:1\n"
        + '#EXT-X-PART:INDEPENDENT=YES,URI="a.0",DURATION=0.50\n'
        + '#EXT-X-PART:URI="a.1",DURATION=0.5,GAP=NO\n'
        + '#EXT-X-PRELOAD-HINT:URI="a.2",TYPE=PART\n'
        + '#EXT-X-RENDITION-REPORT:LAST-PART=1,LAST-MSN=1,URI="../b/m.m3u8"\n'
        + '#EXT-X-RENDITION-REPORT:LAST-MSN=0,URI="../c/m.m3u8"\n'
    )
    assert parse_media(plain) == parse_media(other) == cold_parse(plain)
    assert parse_media(plain).open_segment is not None
    with pytest.raises(PlaylistError):
        parse_media(plain.replace('URI="a.1"', 'URI=""'))


def test_rendered_segment_lines_follow_the_segment_object() -> None:
    part = Part("p.0", F(1, 2), independent=True)
    seg = Segment("s.m4s", F(2), pdt_ms=1_704_067_200_000, parts=(part,))
    pl = MediaPlaylist(target_duration=2, part_target=F(1, 2), segments=(seg,))
    text = render_media(pl)
    assert render_media(pl) == text
    gap = dataclasses.replace(seg, gap=True)
    assert "#EXT-X-GAP" in render_media(dataclasses.replace(pl, segments=(gap,)))
    assert render_media(pl) == text
    # a new segment at the address of a dead one gets its own lines (the cache
    # holds the segment it remembered, so this never happens; if it did, the check
    # of the object would catch it)
    for i in range(50):
        fresh = Segment(f"other{i}.m4s", F(3))
        out = render_media(MediaPlaylist(target_duration=3, segments=(fresh,)))
        assert out.endswith(f"#EXTINF:3,\nother{i}.m4s\n")
        remembered = _render._SEGMENT_TEXT[id(fresh)]
        assert remembered[0] is fresh
        del fresh, remembered
        gc.collect()
    stale = Segment("stale.m4s", F(2))
    _render._SEGMENT_TEXT[id(stale)] = (seg, "#EXTINF:9,\nwrong.m4s")  # an entry of another
    assert render_media(MediaPlaylist(target_duration=2, segments=(stale,))).endswith(
        "#EXTINF:2,\nstale.m4s\n"
    )
