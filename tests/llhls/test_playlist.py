"""Playlist model, renderer and parser: golden tables, errors and round trips."""

from __future__ import annotations

from fractions import Fraction as F

import m3u8
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from llhls.errors import PlaylistError
from llhls.playlist import (
    ByteRange,
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    OpenSegment,
    Part,
    PreloadHint,
    Rendition,
    RenditionReport,
    Segment,
    ServerControl,
    Skip,
    Variant,
    parse,
    parse_media,
    parse_multivariant,
    render,
    render_media,
    render_multivariant,
    rules,
    validate_media_playlist,
    validate_multivariant_playlist,
)
from llhls.playlist.parse import parse_attributes, parse_pdt
from llhls.playlist.render import format_pdt
from tests.llhls.playlist_samples import (
    CLASSIC,
    CLASSIC_TEXT,
    DELTA,
    DELTA_TEXT,
    GOLDEN,
    GOLDEN_IDS,
    LL_MEDIA_TEXT,
    MULTIVARIANT_TEXT,
    T0,
)


@pytest.mark.parametrize(("name", "model", "text"), GOLDEN, ids=GOLDEN_IDS)
def test_golden_render(name: str, model: MediaPlaylist | MultivariantPlaylist, text: str) -> None:
    assert render(model) == text


@pytest.mark.parametrize(("name", "model", "text"), GOLDEN, ids=GOLDEN_IDS)
def test_golden_parse(name: str, model: MediaPlaylist | MultivariantPlaylist, text: str) -> None:
    assert parse(text) == model
    assert parse(text.replace("\n", "\r\n")) == model


@pytest.mark.parametrize(("name", "model", "text"), GOLDEN, ids=GOLDEN_IDS)
def test_golden_conforms(name: str, model: MediaPlaylist | MultivariantPlaylist, text: str) -> None:
    if isinstance(model, MediaPlaylist):
        assert validate_media_playlist(model) == []
        assert model.version == rules.required_version(model)
    else:
        assert validate_multivariant_playlist(model) == []


def test_m3u8_library_reads_ll_output() -> None:
    pl = m3u8.loads(LL_MEDIA_TEXT)
    assert pl.media_sequence == 10
    assert pl.target_duration == 2
    assert [s.uri for s in pl.segments] == ["seg10.m4s", "seg11.m4s", "seg12.m4s", None]
    assert [len(s.parts) for s in pl.segments] == [0, 4, 4, 2]
    assert pl.segments[1].parts[0].independent == "YES"
    assert pl.segments[1].parts[1].independent is None
    assert pl.segments[3].parts[1].uri == "part13.1.m4s"
    assert pl.preload_hint.hint_type == "PART"
    assert pl.preload_hint.uri == "part13.2.m4s"
    reports = [(r.uri, r.last_msn, r.last_part) for r in pl.rendition_reports]
    assert reports == [("../360p/media.m3u8", 13, 1), ("../audio/media.m3u8", 13, 1)]
    assert pl.server_control.can_block_reload == "YES"
    assert pl.server_control.part_hold_back == 1.5
    assert pl.server_control.can_skip_until == 12
    assert pl.part_inf.part_target == 0.5
    assert pl.segments[0].program_date_time.year == 2023


def test_m3u8_library_reads_delta_and_multivariant() -> None:
    delta = m3u8.loads(DELTA_TEXT)
    assert delta.skip.skipped_segments == 20
    assert delta.version == 9
    master = m3u8.loads(MULTIVARIANT_TEXT)
    assert master.is_variant
    assert [p.uri for p in master.playlists] == ["720p/media.m3u8", "360p/media.m3u8"]
    assert master.playlists[0].stream_info.bandwidth == 3_128_000
    assert master.playlists[0].stream_info.resolution == (1280, 720)
    assert master.playlists[0].stream_info.audio == "aud"
    assert master.media[0].group_id == "aud"
    assert master.media[0].uri == "audio/media.m3u8"


# -- decimals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (F(0), "0"),
        (F(1, 10**5), "0.00001"),
        (F(1, 10**7), "0.00001"),  # rounded up, never 1e-07 nor 0
        (F(1, 90_000), "0.00002"),
        (F(2), "2"),
        (F(18018, 90_000), "0.2002"),
        (F(32, 150), "0.21334"),
        (F(10**9, 3), "333333333.33334"),
    ],
)
def test_decimal_format_in_playlists(duration: F, text: str) -> None:
    pl = MediaPlaylist(target_duration=1, segments=(Segment("s.m4s", duration),))
    assert f"#EXTINF:{text},\n" in render_media(pl)
    part = Part("p.m4s", duration)
    pl2 = MediaPlaylist(target_duration=1, open_segment=OpenSegment(parts=(part,)))
    assert f"#EXT-X-PART:DURATION={text},URI=" in render_media(pl2)


def test_frame_rate_three_places_rounded_up() -> None:
    v = Variant("v.m3u8", 1, frame_rate=F(30000, 1001))
    assert "FRAME-RATE=29.971" in render_multivariant(MultivariantPlaylist(variants=(v,)))


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (T0 + 7, "2023-11-14T22:13:20.007Z"),
        (T0 + 999, "2023-11-14T22:13:20.999Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
    ],
)
def test_pdt_round_trip(ms: int, text: str) -> None:
    assert format_pdt(ms) == text
    assert parse_pdt(text) == ms


def test_pdt_other_spellings() -> None:
    assert parse_pdt("2023-11-14T22:13:20.000+00:00") == T0
    assert parse_pdt("2023-11-14T23:13:20.5+01:00") == T0 + 500
    assert parse_pdt("2023-11-14T22:13:20.123456Z") == T0 + 123
    with pytest.raises(PlaylistError):
        parse_pdt("yesterday", 3)


# -- parse errors -----------------------------------------------------------------------

HEAD = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "#EXTM3U"),
        ("#EXT-X-TARGETDURATION:2\n", 1, "#EXTM3U"),
        ("\ufeff#EXTM3U\n", 1, "byte order mark"),
        (HEAD + "seg1.m4s\n", 3, "without EXTINF"),
        (HEAD + "#EXTINF:abc,\nseg1.m4s\n", 3, "EXTINF duration"),
        (HEAD + "#EXTINF:-1,\nseg1.m4s\n", 3, "EXTINF duration"),
        (HEAD + "#EXTINF:1,\n", 3, "without a URI"),
        (HEAD + "#EXTINF:1,\n#EXTINF:1,\nx\n", 4, "two EXTINF"),
        (HEAD + '#EXT-X-PART:DURATION=0.2,URI="a\n', 3, "unterminated"),
        (HEAD + "#EXT-X-PART:DURATION=0.2\n", 3, "missing URI"),
        (HEAD + '#EXT-X-PART:URI="a"\n', 3, "missing DURATION"),
        (HEAD + '#EXT-X-PART:DURATION=x,URI="a"\n', 3, "DURATION"),
        (HEAD + '#EXT-X-PART:DURATION=1,URI="a",INDEPENDENT=MAYBE\n', 3, "INDEPENDENT"),
        (HEAD + '#EXT-X-PART:DURATION=1,URI="a",URI="b"\n', 3, "twice"),
        (HEAD + '#EXT-X-PART:DURATION=1,URI=a"\n', 3, "quoted"),
        (HEAD + '#EXT-X-PART:DURATION=1,URI="a",\n', 3, "trailing"),
        (HEAD + "#EXT-X-PART:\n", 3, "needs a value"),
        (HEAD + "#EXT-X-MEDIA-SEQUENCE:x\n", 3, "decimal integer"),
        (HEAD + "#EXT-X-TARGETDURATION:3\n", 3, "twice"),
        (HEAD + "#EXTINF:1,\nx\n#EXT-X-MEDIA-SEQUENCE:4\n", 5, "after the first segment"),
        (HEAD + "#EXT-X-SKIP:SKIPPED-SEGMENTS=-1\n", 3, "SKIPPED-SEGMENTS"),
        (HEAD + "#EXT-X-SERVER-CONTROL:HOLD-BACK=1e3\n", 3, "HOLD-BACK"),
        (HEAD + "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=NO\n", 3, "at least one"),
        (HEAD + '#EXT-X-PRELOAD-HINT:TYPE=SEGMENT,URI="x"\n', 3, "TYPE"),
        (HEAD + '#EXT-X-RENDITION-REPORT:URI="x"\n', 3, "LAST-MSN"),
        (HEAD + "#EXT-X-PROGRAM-DATE-TIME:soon\n", 3, "date-time"),
        (HEAD + "#EXT-X-BYTERANGE:1@x\n", 3, "byte range"),
        (HEAD + "#EXT-X-STREAM-INF:BANDWIDTH=1\n", 3, "multivariant"),
        ("#EXTM3U\n#EXTINF:1,\nx\n", None, "TARGETDURATION"),
    ],
)
def test_media_parse_errors(text: str, line: int | None, fragment: str) -> None:
    with pytest.raises(PlaylistError) as info:
        parse_media(text)
    assert info.value.line == line
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("#EXTM3U\nv.m3u8\n", 2, "without EXT-X-STREAM-INF"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", 2, "without a URI"),
        ('#EXTM3U\n#EXT-X-STREAM-INF:CODECS="a"\nv\n', 2, "BANDWIDTH"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1280\nv\n", 2, "RESOLUTION"),
        ('#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,NAME="a"\n', 2, "GROUP-ID"),
        ('#EXTM3U\n#EXT-X-MEDIA:TYPE=TEXT,GROUP-ID="g",NAME="a"\n', 2, "TYPE"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv\n#EXTINF:1,\n", 4, "media playlist tag"),
    ],
)
def test_multivariant_parse_errors(text: str, line: int, fragment: str) -> None:
    with pytest.raises(PlaylistError) as info:
        parse_multivariant(text)
    assert info.value.line == line
    assert fragment in str(info.value)


def test_parse_attributes() -> None:
    raw = parse_attributes('A=1,B="x,y",C=YES,D=0.5,E=1280x720')
    assert raw == {"A": "1", "B": '"x,y"', "C": "YES", "D": "0.5", "E": "1280x720"}
    with pytest.raises(PlaylistError):
        parse_attributes("a=1")  # lower-case names are not attribute names
    with pytest.raises(PlaylistError):
        parse_attributes("A=")


def test_parse_foreign_playlist() -> None:
    """Another server's playlist: comments, unknown tags, KEY, CRLF, titles."""
    text = (
        "#EXTM3U\r\n"
        "# a comment\r\n"
        "#EXT-X-TARGETDURATION:4\r\n"
        "#EXT-X-VERSION:9\r\n"
        "#EXT-X-MEDIA-SEQUENCE:266\r\n"
        "#EXT-X-KEY:METHOD=NONE\r\n"
        "#EXT-X-FUTURE-TAG:X=1\r\n"
        "\r\n"
        "#EXT-X-DISCONTINUITY\r\n"
        '#EXT-X-MAP:URI="init2.mp4",BYTERANGE="720@0"\r\n'
        "#EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:13:36.106Z\r\n"
        "#EXT-X-GAP\r\n"
        "#EXTINF:4.00008,fileSequence266 title, with comma\r\n"
        "#EXT-X-BYTERANGE:1000@720\r\n"
        "fileSequence266.mp4\r\n"
        '#EXT-X-PART:DURATION=1.004,URI="p.mp4",BYTERANGE="100@0",GAP=YES\r\n'
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="q.mp4",BYTERANGE-START=100\r\n'
    )
    pl = parse_media(text)
    seg = pl.segments[0]
    assert pl.map is None
    assert seg.map == Map("init2.mp4", ByteRange(720, 0))
    assert seg.discontinuity and seg.gap
    assert seg.duration == F("4.00008")
    assert seg.title == "fileSequence266 title, with comma"
    assert seg.byterange == ByteRange(1000, 720)
    assert seg.pdt_ms == 1550110416106
    assert pl.open_segment is not None
    assert pl.open_segment.parts[0].gap
    assert pl.preload_hints == (PreloadHint("q.mp4", byterange_start=100),)
    assert parse_media(render_media(pl)) == pl


def test_parse_detects_kind() -> None:
    assert isinstance(parse(MULTIVARIANT_TEXT), MultivariantPlaylist)
    assert isinstance(parse(CLASSIC_TEXT), MediaPlaylist)


# -- model validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: Part("p", F(-1)),
        lambda: Part("p", 0.2),  # type: ignore[arg-type]
        lambda: Part('p"q', F(1)),
        lambda: Part("#p", F(1)),
        lambda: Segment("a\nb", F(1)),
        lambda: Segment("s", F(1), title=""),
        lambda: Segment("s", F(1), title=" padded "),
        lambda: ServerControl(),
        lambda: OpenSegment(parts=()),
        lambda: MediaPlaylist(target_duration=-1),
        lambda: MediaPlaylist(target_duration=2, version=0),
        lambda: MediaPlaylist(target_duration=2, segments=(Segment("s", F(1), map=Map("i.mp4")),)),
        lambda: RenditionReport("r", -1),
        lambda: Skip(1, ("a\tb",)),
        lambda: PreloadHint("x", type="SEGMENT"),  # type: ignore[arg-type]
        lambda: Variant("v", 1, resolution=(-1, 2)),
    ],
)
def test_model_rejects(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError):
        build()


def test_properties() -> None:
    assert DELTA.first_msn == 120
    assert DELTA.next_msn == 124
    assert DELTA.has_parts and not CLASSIC.has_parts
    assert CLASSIC.duration == 24


# -- Hypothesis round trip -----------------------------------------------------------------

_uri = st.from_regex(r"[a-z0-9][a-z0-9_./-]{0,12}", fullmatch=True)
_ident = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True)
_dec = st.integers(0, 10**8).map(lambda n: F(n, 10**5))
_small = st.integers(0, 2**40)
_title = st.none() | st.from_regex(
    r"[A-Za-z0-9]([A-Za-z0-9 ,._-]{0,10}[A-Za-z0-9])?", fullmatch=True
)
_pdt = st.none() | st.integers(-(10**12), 4 * 10**12)
_br = st.none() | st.builds(ByteRange, _small, st.none() | _small)
_map = st.builds(Map, _uri, _br)
_part = st.builds(Part, _uri, _dec, st.booleans(), st.booleans(), _br)
_part_tuples = st.lists(_part, max_size=4).map(tuple)
_segment = st.builds(
    Segment,
    uri=_uri,
    duration=_dec,
    title=_title,
    pdt_ms=_pdt,
    parts=_part_tuples,
    gap=st.booleans(),
    discontinuity=st.booleans(),
    map=st.none() | _map,
    byterange=_br,
)
_open = st.none() | st.builds(
    OpenSegment,
    parts=st.lists(_part, min_size=1, max_size=3).map(tuple),
    pdt_ms=_pdt,
    discontinuity=st.booleans(),
    map=st.none() | _map,
)
_hint = st.builds(
    PreloadHint, _uri, st.sampled_from(["PART", "MAP"]), st.none() | _small, st.none() | _small
)
_report = st.builds(RenditionReport, _uri, _small, st.none() | _small)


@st.composite
def _server_control(draw: st.DrawFn) -> ServerControl:
    attrs = {
        "can_block_reload": draw(st.booleans()),
        "can_skip_until": draw(st.none() | _dec),
        "can_skip_dateranges": draw(st.booleans()),
        "hold_back": draw(st.none() | _dec),
        "part_hold_back": draw(st.none() | _dec),
    }
    try:
        return ServerControl(**attrs)  # type: ignore[arg-type]
    except ValueError:
        return ServerControl(can_block_reload=True)


@st.composite
def _skip(draw: st.DrawFn) -> Skip:
    ids = draw(st.none() | st.lists(_ident, max_size=3).map(tuple))
    return Skip(draw(_small), ids)


@st.composite
def media_playlists(draw: st.DrawFn) -> MediaPlaylist:
    try:
        return MediaPlaylist(
            target_duration=draw(st.integers(0, 100)),
            version=draw(st.none() | st.integers(1, 12)),
            media_sequence=draw(_small),
            discontinuity_sequence=draw(st.none() | _small),
            playlist_type=draw(st.none() | st.sampled_from(["EVENT", "VOD"])),
            independent_segments=draw(st.booleans()),
            part_target=draw(st.none() | _dec),
            server_control=draw(st.none() | _server_control()),
            map=draw(st.none() | _map),
            skip=draw(st.none() | _skip()),
            segments=tuple(draw(st.lists(_segment, max_size=5))),
            open_segment=draw(_open),
            preload_hints=tuple(draw(st.lists(_hint, max_size=2))),
            rendition_reports=tuple(draw(st.lists(_report, max_size=3))),
            endlist=draw(st.booleans()),
        )
    except ValueError:
        assume(False)
        raise AssertionError("unreachable") from None


_rendition = st.builds(
    Rendition,
    type=st.sampled_from(["AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"]),
    group_id=_ident,
    name=_ident,
    uri=st.none() | _uri,
    language=st.none() | _ident,
    default=st.booleans(),
    autoselect=st.booleans(),
    channels=st.none() | _ident,
)
_variant = st.builds(
    Variant,
    uri=_uri,
    bandwidth=_small,
    average_bandwidth=st.none() | _small,
    codecs=st.none() | st.from_regex(r"[a-z0-9.]{1,10}(,[a-z0-9.]{1,10})?", fullmatch=True),
    resolution=st.none() | st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    frame_rate=st.none() | st.integers(0, 10**6).map(lambda n: F(n, 1000)),
    audio=st.none() | _ident,
)
multivariant_playlists = st.builds(
    MultivariantPlaylist,
    variants=st.lists(_variant, max_size=4).map(tuple),
    renditions=st.lists(_rendition, max_size=4).map(tuple),
    version=st.none() | st.integers(1, 12),
    independent_segments=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(media_playlists())
def test_media_round_trip(pl: MediaPlaylist) -> None:
    text = render_media(pl)
    assert parse_media(text) == pl
    assert render_media(parse_media(text)) == text


@settings(max_examples=200, deadline=None)
@given(multivariant_playlists)
def test_multivariant_round_trip(pl: MultivariantPlaylist) -> None:
    text = render_multivariant(pl)
    assert parse_multivariant(text) == pl


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 10**9).map(lambda n: F(n, 90_000)), min_size=1, max_size=4))
def test_render_is_stable_for_any_fraction(durations: list[F]) -> None:
    """Durations that are not 5-place decimals render rounded up, then round-trip."""
    segs = tuple(Segment(f"s{i}.m4s", d) for i, d in enumerate(durations))
    text = render_media(MediaPlaylist(target_duration=2, segments=segs))
    again = parse_media(text)
    assert render_media(again) == text
    for seg, d in zip(again.segments, durations, strict=True):
        assert d <= seg.duration < d + F(1, 10**5)


def test_repeated_lines_parse_the_same_and_errors_keep_their_line() -> None:
    text = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.5\n"
        "#EXT-X-PROGRAM-DATE-TIME:2024-01-01T00:00:00.000Z\n"
        '#EXT-X-PART:DURATION=0.5,URI="a.0",INDEPENDENT=YES\n'
        "#EXTINF:0.5,\na.m4s\n"
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="b.0"\n'
        '#EXT-X-RENDITION-REPORT:URI="../x/m.m3u8",LAST-MSN=1,LAST-PART=0\n'
    )
    first, second = parse_media(text), parse_media(text)  # the second from the caches
    assert first == second
    assert second.segments[0].parts[0].duration == F(1, 2)
    assert second.segments[0].pdt_ms == 1_704_067_200_000
    bad = text.replace("#EXTINF:0.5,\n", '#EXT-X-PART:DURATION=x,URI="a.1"\n#EXTINF:0.5,\n')
    with pytest.raises(PlaylistError) as info:
        parse_media(bad)
    assert info.value.line == 6
