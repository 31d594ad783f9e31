"""The origin store: playlists it renders from synthetic parts, windows, retention,
and its publishing API (virtual clock: plain floats)."""

from __future__ import annotations

import logging
import random
from fractions import Fraction as F

import m3u8
import pytest

from llhls.origin.core import Wait
from llhls.origin.store import RenditionSpec, Store, StreamSpec
from llhls.playlist import parse_media, parse_multivariant, rules, validate_media_playlist
from llhls.playlist.rules import validate_multivariant_playlist
from tests.llhls.origin_feed import (
    AUDIO,
    BASE_US,
    HALF,
    RIDS,
    VIDEO,
    VIDEO_LOW,
    Live,
    get,
    header,
    ll_spec,
    ready,
    text,
)

# -- golden playlists from a fed store ----------------------------------------------------

FULL_GOLDEN = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6,PART-HOLD-BACK=1.5
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXTINF:2,
seg2.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z
#EXTINF:2,
seg3.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:28.000Z
#EXT-X-PART:DURATION=0.5,URI="part4.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part4.1.m4s"
#EXT-X-PART:DURATION=0.5,URI="part4.2.m4s"
#EXT-X-PART:DURATION=0.5,URI="part4.3.m4s"
#EXTINF:2,
seg4.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:30.000Z
#EXT-X-PART:DURATION=0.5,URI="part5.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part5.1.m4s"
#EXT-X-PART:DURATION=0.5,URI="part5.2.m4s"
#EXT-X-PART:DURATION=0.5,URI="part5.3.m4s"
#EXTINF:2,
seg5.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:32.000Z
#EXT-X-PART:DURATION=0.5,URI="part6.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part6.1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part6.2.m4s"
#EXT-X-RENDITION-REPORT:URI="../360p/media.m3u8",LAST-MSN=6,LAST-PART=1
#EXT-X-RENDITION-REPORT:URI="../audio/media.m3u8",LAST-MSN=6,LAST-PART=1
"""

DELTA_GOLDEN = """\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6,PART-HOLD-BACK=1.5
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-MAP:URI="init.mp4"
#EXT-X-SKIP:SKIPPED-SEGMENTS=4
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:28.000Z
#EXTINF:2,
seg4.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:30.000Z
#EXTINF:2,
seg5.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:32.000Z
#EXTINF:2,
seg6.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:34.000Z
#EXTINF:2,
seg7.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:36.000Z
#EXT-X-PART:DURATION=0.5,URI="part8.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part8.1.m4s"
#EXT-X-PART:DURATION=0.5,URI="part8.2.m4s"
#EXT-X-PART:DURATION=0.5,URI="part8.3.m4s"
#EXTINF:2,
seg8.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:38.000Z
#EXT-X-PART:DURATION=0.5,URI="part9.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part9.1.m4s"
#EXT-X-PART:DURATION=0.5,URI="part9.2.m4s"
#EXT-X-PART:DURATION=0.5,URI="part9.3.m4s"
#EXTINF:2,
seg9.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:40.000Z
#EXT-X-PART:DURATION=0.5,URI="part10.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part10.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../360p/media.m3u8",LAST-MSN=10,LAST-PART=0
#EXT-X-RENDITION-REPORT:URI="../audio/media.m3u8",LAST-MSN=10,LAST-PART=0
"""

MULTIVARIANT_GOLDEN = """\
#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",\
URI="audio/media.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=3130000,AVERAGE-BANDWIDTH=2628000,CODECS="avc1.64001f,mp4a.40.2",\
RESOLUTION=1280x720,FRAME-RATE=30,AUDIO="aud"
720p/media.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=930000,AVERAGE-BANDWIDTH=828000,CODECS="avc1.42c01e,mp4a.40.2",\
RESOLUTION=640x360,FRAME-RATE=30,AUDIO="aud"
360p/media.m3u8
"""


def test_golden_full_playlist() -> None:
    store = Store()
    live = Live(store, ll_spec())
    now = live.run(6 * 4 + 2)
    assert now == 13.0
    assert text(get(store, "/live/720p/media.m3u8", now=now)) == FULL_GOLDEN
    assert validate_media_playlist(parse_media(FULL_GOLDEN)) == []


def test_golden_delta_update() -> None:
    store = Store()
    live = Live(store, ll_spec(window=F(20)))
    now = live.run(10 * 4 + 1)
    delta = text(get(store, "/live/720p/media.m3u8", "_HLS_skip=YES", now=now))
    assert delta == DELTA_GOLDEN
    full = parse_media(text(get(store, "/live/720p/media.m3u8", now=now)))
    parsed = parse_media(delta)
    assert validate_media_playlist(parsed) == []
    assert full.media_sequence == parsed.media_sequence == 0
    assert parsed.segments == full.segments[4:]
    assert parsed.open_segment == full.open_segment
    v2 = text(get(store, "/live/720p/media.m3u8", "_HLS_skip=v2", now=now))
    assert "#EXT-X-VERSION:10\n" in v2
    assert '#EXT-X-SKIP:SKIPPED-SEGMENTS=4,RECENTLY-REMOVED-DATERANGES=""\n' in v2
    assert validate_media_playlist(parse_media(v2)) == []


def test_delta_without_old_segments_is_the_full_playlist() -> None:
    store = Store()
    live = Live(store, ll_spec())  # window 8 s < CAN-SKIP-UNTIL 12 s: nothing to skip
    now = live.run(30)
    full = ready(get(store, "/live/720p/media.m3u8", now=now))
    delta = ready(get(store, "/live/720p/media.m3u8", "_HLS_skip=YES", now=now))
    assert delta.body is full.body


def test_golden_multivariant() -> None:
    store = Store()
    Live(store, ll_spec())
    response = ready(get(store, "/live/index.m3u8", now=0.0))
    assert response.body.decode() == MULTIVARIANT_GOLDEN
    assert validate_multivariant_playlist(parse_multivariant(MULTIVARIANT_GOLDEN)) == []
    assert header(response, "cache-control") == "max-age=1"


def test_audio_only_stream_lists_audio_as_variant() -> None:
    store = Store()
    store.add_stream(ll_spec(renditions=(AUDIO,)))
    body = text(get(store, "/live/index.m3u8"))
    assert "#EXT-X-MEDIA" not in body
    assert 'BANDWIDTH=130000,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"\naudio/media.m3u8' in body


def test_m3u8_library_reads_store_output() -> None:
    store = Store()
    live = Live(store, ll_spec())
    now = live.run(26)
    pl = m3u8.loads(text(get(store, "/live/audio/media.m3u8", now=now)))
    assert pl.media_sequence == 2
    assert [len(s.parts) for s in pl.segments] == [0, 0, 4, 4, 2]
    assert all(p.independent == "YES" for s in pl.segments for p in s.parts)
    assert pl.preload_hint.uri == "part6.2.m4s"
    assert {r.uri for r in pl.rendition_reports} == {"../720p/media.m3u8", "../360p/media.m3u8"}
    assert pl.server_control.can_block_reload == "YES"


# -- conformance of every playlist the store renders ---------------------------------------


def test_every_rendered_playlist_conforms() -> None:
    """Realistic timing: 0.2 s video parts, AAC audio parts of 9 or 10 frames, the
    declared PART-TARGET 0.21334; every playlist of every rendition at every step."""
    audio_frame = F(1024, 48_000)
    spec = StreamSpec(
        name="live",
        renditions=(VIDEO, VIDEO_LOW, AUDIO),
        part_target=F(10) * audio_frame,
        segment_target=F(2),
        window=F(14),
    )
    assert spec.declared_part_target == F("0.21334")
    store = Store()
    store.add_stream(spec)
    for rid in RIDS:
        store.set_init("live", rid, b"init")
    audio_time = F(0)
    checked = 0
    for msn in range(20):
        audio_start = audio_time
        for index in range(10):
            now = float(msn * 2 + (index + 1) * F(1, 5))
            video_start = msn * 2 + index * F(1, 5)
            for rid in ("720p", "360p"):
                store.add_part(
                    "live",
                    rid,
                    msn,
                    index,
                    b"v",
                    F(1, 5),
                    index == 0,
                    BASE_US + int(video_start * 1_000_000),
                    now,
                )
            # audio follows the video part boundary to the nearest AAC frame
            target_end = msn * 2 + (index + 1) * F(1, 5)
            frames = round((target_end - audio_time) / audio_frame)
            duration = frames * audio_frame
            store.add_part(
                "live",
                "audio",
                msn,
                index,
                b"a",
                duration,
                True,
                BASE_US + int(audio_time * 1_000_000),
                now,
            )
            audio_time += duration
            for rid in RIDS:
                for query in ("", "_HLS_skip=YES"):
                    body = text(get(store, f"/live/{rid}/media.m3u8", query, now=now))
                    pl = parse_media(body)
                    assert validate_media_playlist(pl) == [], (msn, index, rid, body)
                    assert len(pl.rendition_reports) == 2
                    checked += 1
        for rid in RIDS:
            store.close_segment("live", rid, msn, now)
        assert audio_time - audio_start <= F(3)
    store.end_stream("live", now)
    for rid in RIDS:
        pl = parse_media(text(get(store, f"/live/{rid}/media.m3u8", now=now)))
        assert pl.endlist and not pl.preload_hints and pl.open_segment is None
        assert validate_media_playlist(pl) == []
    assert checked == 20 * 10 * 3 * 2


def test_store_model_round_trips() -> None:
    store = Store()
    live = Live(store, ll_spec(window=F(20)))
    now = live.run(45)
    for skip in ("", "YES", "v2"):
        model = store.media_model("live", "360p", skip)
        body = text(get(store, "/live/360p/media.m3u8", f"_HLS_skip={skip}" if skip else "", now))
        assert parse_media(body) == model


# -- window, part tags, retention ----------------------------------------------------------


def test_window_never_below_three_target_durations() -> None:
    spec = ll_spec(window=F(1))
    assert spec.effective_window == 6
    store = Store()
    live = Live(store, spec)
    now = live.run(40)
    pl = parse_media(text(get(store, "/live/720p/media.m3u8", now=now)))
    assert pl.duration == 6
    assert pl.media_sequence == 7


def test_part_tags_cover_the_last_three_target_durations() -> None:
    store = Store()
    live = Live(store, ll_spec(window=F(30)))
    for step in range(1, 60):
        now = live.step()
        pl = parse_media(text(get(store, "/live/720p/media.m3u8", now=now)))
        end = pl.duration + sum(
            (p.duration for p in (pl.open_segment.parts if pl.open_segment else ())), F(0)
        )
        start = F(0)
        for seg in pl.segments:
            # parts listed exactly for the segments starting within 3 TD of the end
            assert bool(seg.parts) == (start >= end - 6), (step, seg.uri)
            start += seg.duration


def test_part_files_stay_three_target_durations_after_their_tags() -> None:
    store = Store()
    live = Live(store, ll_spec(window=F(30)))
    # Segment 0's part tags go when the playlist's end passes 0 + 6 s: at part 13.0,
    # published at t = 6.5.
    live.run(12)
    assert "part0.0.m4s" in text(get(store, "/live/720p/media.m3u8", now=6.0))
    assert live.step() == 6.5
    assert "part0.0.m4s" not in text(get(store, "/live/720p/media.m3u8", now=6.5))
    assert ready(get(store, "/live/720p/part0.3.m4s", now=12.5)).body == b"720p:0.3"
    assert ready(get(store, "/live/720p/part0.3.m4s", now=12.51)).status == 404
    live.run(20)  # publishing frees the bytes too
    assert ready(get(store, "/live/720p/part0.0.m4s", now=12.4)).status == 404
    assert ready(get(store, "/live/720p/seg0.m4s", now=16.5)).body == b"".join(
        f"720p:0.{i}".encode() for i in range(4)
    )


def test_segment_files_kept_for_their_availability_duration() -> None:
    store = Store()
    live = Live(store, ll_spec(window=F(6)))
    live.run(16)  # segment 3 closes at t = 8: segment 0 leaves the 6 s window
    pl = parse_media(text(get(store, "/live/720p/media.m3u8", now=8.0)))
    assert pl.media_sequence == 1
    # closed at 2 s + its 2 s + the longest playlist it was in (6 s + 2 s of parts)
    assert ready(get(store, "/live/720p/seg0.m4s", now=12.0)).status == 200
    assert ready(get(store, "/live/720p/seg0.m4s", now=12.01)).status == 404
    assert ready(get(store, "/live/720p/seg1.m4s", now=12.01)).status == 200


# -- classic HLS and the publishing API ----------------------------------------------------


def test_classic_stream() -> None:
    store = Store()
    spec = StreamSpec(name="c", renditions=(VIDEO,), part_target=None, segment_target=F(6))
    store.add_stream(spec)
    store.set_init("c", "720p", b"init")
    for msn in range(12):
        store.add_segment("c", "720p", msn, b"s", F(6), BASE_US + msn * 6_000_000, 6.0 * (msn + 1))
    body = text(get(store, "/c/720p/media.m3u8", now=72.0))
    pl = parse_media(body)
    assert validate_media_playlist(pl) == []
    assert pl.part_target is None and not pl.preload_hints and not pl.has_parts
    assert pl.server_control is not None and pl.server_control.part_hold_back is None
    assert pl.duration == 60
    assert "#EXT-X-TARGETDURATION:6\n" in body
    assert isinstance(get(store, "/c/720p/media.m3u8", "_HLS_msn=12", 72.0), Wait)
    assert ready(get(store, "/c/720p/media.m3u8", "_HLS_msn=12&_HLS_part=0", 72.0)).status == 400
    assert ready(get(store, "/c/720p/part11.0.m4s", now=72.0)).status == 404
    store.add_segment("c", "720p", 12, b"s", F(6), BASE_US, 78.0)
    assert ready(get(store, "/c/720p/media.m3u8", "_HLS_msn=12", 78.0)).status == 200


def test_discontinuity_sequence() -> None:
    store = Store()
    live = Live(store, ll_spec(window=F(6)))
    live.run(8)
    store.add_part("live", "720p", 2, 0, b"x", HALF, True, BASE_US, 4.5, discontinuity=True)
    body = text(get(store, "/live/720p/media.m3u8", now=4.5))
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:0\n" in body
    assert "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME" in body
    for index in range(1, 4):
        store.add_part("live", "720p", 2, index, b"x", HALF, False, BASE_US, 5.0)
    for msn in range(3, 7):
        for index in range(4):
            store.add_part("live", "720p", msn, index, b"x", HALF, index == 0, BASE_US, 9.0)
    store.close_segment("live", "720p", 6, 9.0)
    pl = parse_media(text(get(store, "/live/720p/media.m3u8", now=9.0)))
    assert pl.media_sequence == 4
    assert pl.discontinuity_sequence == 1
    assert validate_media_playlist(pl) == []


def test_implicit_close_on_next_segment() -> None:
    store = Store()
    store.add_stream(ll_spec(renditions=(VIDEO,)))
    store.add_part("live", "720p", 0, 0, b"a", HALF, True, BASE_US, 0.5)
    store.add_part("live", "720p", 1, 0, b"b", HALF, True, BASE_US, 1.0)
    assert store.segment_data("live", "720p", 0, 1.0) == b"a"
    pos = store.position("live", "720p")
    assert pos is not None and (pos.next_msn, pos.open_parts) == (1, 1)


def test_first_msn() -> None:
    store = Store()
    store.add_stream(ll_spec(renditions=(VIDEO,)), first_msn=500)
    store.add_part("live", "720p", 500, 0, b"a", HALF, True, BASE_US, 0.5)
    body = text(get(store, "/live/720p/media.m3u8", now=0.5))
    assert "#EXT-X-MEDIA-SEQUENCE:500\n" in body
    assert ready(get(store, "/live/720p/media.m3u8", "_HLS_msn=1", 0.5)).status == 200


@pytest.mark.parametrize(
    "action",
    [
        lambda s: s.add_part("live", "720p", 0, 1, b"", HALF, True, 0, 0.0),  # index 1 first
        lambda s: s.add_part("live", "720p", 1, 0, b"", HALF, True, 0, 0.0),  # msn 1 first
        lambda s: s.add_part("live", "720p", 0, 0, b"", 0.5, True, 0, 0.0),  # a float
        lambda s: s.add_part("live", "720p", 0, 0, b"", F(0), True, 0, 0.0),
        lambda s: s.add_part("live", "4k", 0, 0, b"", HALF, True, 0, 0.0),
        lambda s: s.add_part("nope", "720p", 0, 0, b"", HALF, True, 0, 0.0),
        lambda s: s.close_segment("live", "720p", 0, 0.0),  # nothing open
        lambda s: s.add_stream(ll_spec()),  # exists
        lambda s: s.add_stream(ll_spec(name="x"), first_msn=-1),
        lambda s: s.end_stream("nope", 0.0),
    ],
)
def test_publishing_errors(action: object) -> None:
    store = Store()
    store.add_stream(ll_spec())
    assert callable(action)
    with pytest.raises(ValueError):
        action(store)


def test_publishing_after_end_fails() -> None:
    store = Store()
    store.add_stream(ll_spec())
    store.end_stream("live", 0.0)
    store.end_stream("live", 0.0)  # idempotent
    with pytest.raises(ValueError, match="ended"):
        store.add_part("live", "720p", 0, 0, b"", HALF, True, 0, 0.0)
    assert store.streams() == ("live",)


def test_classic_and_ll_calls_do_not_mix() -> None:
    store = Store()
    store.add_stream(StreamSpec("c", (VIDEO,), None, F(2)))
    with pytest.raises(ValueError, match="add_segment"):
        store.add_part("c", "720p", 0, 0, b"", HALF, True, 0, 0.0)
    store.add_stream(ll_spec(renditions=(VIDEO,)))
    store.add_part("live", "720p", 0, 0, b"", HALF, True, 0, 0.0)
    with pytest.raises(ValueError, match="expected segment"):
        store.add_segment("live", "720p", 0, b"", F(2), 0, 0.0)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ll_spec(name="a/b"),
        lambda: ll_spec(name=".."),
        lambda: ll_spec(renditions=()),
        lambda: ll_spec(renditions=(VIDEO, VIDEO)),
        lambda: ll_spec(part_target=0.5),
        lambda: ll_spec(part_target=F(2)),  # PART-TARGET must stay below TD
        lambda: ll_spec(segment_target=F(0)),
        lambda: ll_spec(audio_group='a"b'),
        lambda: RenditionSpec("x", "video", "avc1", 0, 1),
        lambda: RenditionSpec("x", "subtitles", "wvtt", 1, 1),  # type: ignore[arg-type]
        lambda: RenditionSpec("x", "video", 'avc1"', 1, 1),
        lambda: RenditionSpec("x", "video", "avc1", 1, 1, width=-1),
        lambda: RenditionSpec("x y", "video", "avc1", 1, 1),
    ],
)
def test_spec_validation(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError):
        build()


def test_part_above_target_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = Store()
    store.add_stream(ll_spec(renditions=(VIDEO,)))
    with caplog.at_level(logging.WARNING, logger="llhls.origin.store"):
        store.add_part("live", "720p", 0, 0, b"", F(6, 10), True, 0, 0.6)
    assert "above PART-TARGET" in caplog.text


# -- caches: what the store keeps between calls must follow every change -----------------


def test_stream_info_follows_the_end() -> None:
    store = Store()
    spec = ll_spec()
    store.add_stream(spec)
    info = store.stream_info("live")
    assert info is not None and not info.ended
    assert (info.target_duration, info.part_target) == (2, spec.declared_part_target)
    assert info.renditions == RIDS and info.audio_renditions == ("audio",)
    store.end_stream("live", 0.0)
    ended = store.stream_info("live")
    assert ended is not None and ended.ended
    assert ended.renditions == info.renditions


def test_segment_model_loses_its_part_tags() -> None:
    store = Store()
    live = Live(store, ll_spec(window=F(30)))
    live.run(12)  # segments 0-2 complete, all with part tags
    first = store.media_model("live", "720p").segments[0]
    assert len(first.parts) == 4
    live.step()  # part 3.0: the end passes 0 + 6 s, segment 0's tags go
    model = store.media_model("live", "720p")
    assert model.segments[0].uri == first.uri and model.segments[0].parts == ()
    assert len(model.segments[1].parts) == 4


def test_rendition_reports_follow_the_other_renditions() -> None:
    store = Store()
    live = Live(store, ll_spec())
    live.run(5)  # part 1.0 of every rendition

    def reports() -> dict[str, tuple[int, int | None]]:
        model = store.media_model("live", "720p")
        return {r.uri: (r.last_msn, r.last_part) for r in model.rendition_reports}

    low, audio = "../360p/media.m3u8", "../audio/media.m3u8"
    assert reports() == {low: (1, 0), audio: (1, 0)}
    live.step(("360p",))  # 720p itself unchanged
    assert reports() == {low: (1, 1), audio: (1, 0)}
    live.step(("360p", "audio"))
    assert reports() == {low: (1, 2), audio: (1, 1)}
    store.end_stream("live", 10.0)  # open segments closed
    assert reports() == {low: (1, 2), audio: (1, 1)}
    assert store.media_model("live", "360p").rendition_reports[0].last_part == 0


def test_delta_updates_follow_the_window() -> None:
    store = Store()
    live = Live(store, ll_spec(window=F(20)))
    seen = set()
    for _ in range(70):
        live.step()
        full = store.media_model("live", "720p")
        delta = store.media_model("live", "720p", "YES")
        durations = [s.duration for s in full.segments]
        skipped = rules.skip_boundary(durations, F(12))
        if skipped:
            assert delta.skip is not None and delta.skip.skipped_segments == skipped
            assert delta.segments == full.segments[skipped:]
            assert delta.media_sequence == full.media_sequence
        else:
            assert delta.skip is None and delta.segments == full.segments
        seen.add(skipped)
    assert len(seen) > 3  # the skip grew and the window slid


def test_model_version_is_the_required_version() -> None:
    store = Store()
    live = Live(store, ll_spec(window=F(20)))
    store.add_stream(StreamSpec("c", (VIDEO,), None, F(3)))
    for step in range(60):
        live.step()
        if step % 4 == 0:
            msn = step // 4
            duration = F(3) if msn % 2 else F(5, 2)  # whole or not
            store.add_segment("c", "720p", msn, b"s", duration, BASE_US, float(step))
        for name, rid in (("live", "720p"), ("live", "audio"), ("c", "720p")):
            for skip in ("", "YES", "v2"):
                model = store.media_model(name, rid, skip)
                assert model.version == rules.required_version(model)
    store.end_stream("live", 100.0)
    model = store.media_model("live", "720p", "YES")
    assert model.version == rules.required_version(model) == 6


def test_segment_bytes_outlive_their_part_files() -> None:
    """Part files go 3 TD after their tags; the segment, joined from the parts, stays
    for its Availability Duration whether or not it was requested before."""
    store = Store()
    live = Live(store, ll_spec(window=F(12)))
    live.run(4)  # segment 0 complete at t = 2
    early = store.segment_data("live", "720p", 0, 2.0)
    assert early == b"".join(f"720p:0.{i}".encode() for i in range(4))
    live.run(22)  # to t = 13: the tags went at t = 6.5, the files at 12.5
    for rid in RIDS:
        assert store.part_status("live", rid, 0, 0, 13.0).kind == "gone"
        data = store.segment_data("live", rid, 0, 13.0)  # requested before, or not
        assert data == b"".join(f"{rid}:0.{i}".encode() for i in range(4))
    live.run(60)  # to t = 43: segment 0 left at t = 14 and its retention is over
    for rid in RIDS:
        assert store.segment_data("live", rid, 0, 43.0) is None
        assert store.part_status("live", rid, 0, 0, 43.0).kind == "gone"
        assert store.segment_data("live", rid, 18, 43.0) is not None


def test_segments_kept_for_the_longest_playlist_they_were_in() -> None:
    """Segments of uneven length, closed explicitly, by the next segment's first part,
    or published whole: a segment that leaves the playlist stays fetchable until
    max(now + TD, closed + duration + the longest playlist it was in), playlists
    measured after every publication."""
    store = Store()
    store.add_stream(ll_spec(renditions=(VIDEO,), window=F(7)))
    rng = random.Random(3)
    longest, checked = F(0), 0
    listed: dict[int, tuple[float, F, bytes]] = {}  # msn -> (closed at, duration, bytes)
    pending: tuple[int, F, bytes] | None = None  # closed by the next segment's first part

    def observe(now: float) -> None:
        nonlocal longest, checked, pending
        shown = store.media_model("live", "720p")
        if pending is not None and shown.next_msn > pending[0]:
            listed[pending[0]] = (now, pending[1], pending[2])
            pending = None
        for gone in [m for m in listed if m < shown.media_sequence]:
            closed_at, duration, data = listed.pop(gone)
            until = max(now + 2, closed_at + float(duration + longest))
            assert store.segment_data("live", "720p", gone, until) == data
            assert store.segment_data("live", "720p", gone, until + 0.01) is None
            checked += 1
        parts = shown.open_segment.parts if shown.open_segment is not None else ()
        longest = max(longest, shown.duration + sum((p.duration for p in parts), F(0)))

    now = 0.0
    for msn in range(60):
        mode = rng.choice(["close", "close", "implicit", "whole"])
        if mode == "whole" and pending is None:
            duration = rng.choice([F(2), F(3, 2), F(1, 2)])
            now += float(duration)
            store.add_segment("live", "720p", msn, b"S", duration, BASE_US, now)
            listed[msn] = (now, duration, b"S")
            observe(now)
            continue
        parts = rng.choice([1, 2, 3, 4, 4, 4])
        for index in range(parts):
            now += 0.5
            store.add_part("live", "720p", msn, index, b"x", HALF, index == 0, BASE_US, now)
            observe(now)
        if mode == "implicit":
            pending = (msn, parts * HALF, b"x" * parts)
        else:
            store.close_segment("live", "720p", msn, now)
            listed[msn] = (now, parts * HALF, b"x" * parts)
            observe(now)
    assert checked > 30


def _feed(steps: int, seed: int) -> list[tuple[str, tuple[object, ...]]]:
    """A seeded publication plan: uneven parts, discontinuities, implicit closes, whole
    segments between part-wise ones; three renditions."""
    rng = random.Random(seed)
    plan: list[tuple[str, tuple[object, ...]]] = []
    pos = {rid: (0, 0) for rid in RIDS}
    opened: dict[str, int | None] = dict.fromkeys(RIDS)
    now = 0.0
    for _ in range(steps):
        now += rng.choice([0.0, 0.25, 0.5, 1.5])
        rid = rng.choice(RIDS)
        msn, index = pos[rid]
        if index == 0 and rng.random() < 0.1:
            if opened[rid] is not None:
                plan.append(("close_segment", ("live", rid, opened[rid], now)))
                opened[rid] = None
            duration = rng.choice([F(2), F(3, 2), F(7, 3)])
            plan.append(("add_segment", ("live", rid, msn, b"S%d" % msn, duration, 0, now)))
            pos[rid] = (msn + 1, 0)
            continue
        duration = rng.choice([HALF, HALF, HALF, F(9, 20), F(1, 3)])
        data = f"{rid}:{msn}.{index}".encode()
        discontinuity = index == 0 and rng.random() < 0.1
        args = ("live", rid, msn, index, data, duration, index == 0, 0, now, discontinuity)
        plan.append(("add_part", args))
        opened[rid] = msn
        if index >= 1 and rng.random() < 0.25:
            plan.append(("close_segment", ("live", rid, msn, now)))
            opened[rid] = None
            pos[rid] = (msn + 1, 0)
        elif rng.random() < 0.05:
            pos[rid] = (msn + 1, 0)  # the next part 0 closes it
        else:
            pos[rid] = (msn, index + 1)
    plan.append(("end_stream", ("live", now)))
    return plan


def _snapshot(store: Store, now: float) -> list[object]:
    """Everything a client can see of the store at ``now``."""
    seen: list[object] = [store.stream_info("live")]
    for rid in RIDS:
        for skip in ("", "YES", "v2"):
            seen.append(store.media_model("live", rid, skip))
            rendered = store.media_playlist("live", rid, skip)
            assert rendered is not None
            seen.append(rendered.text)
        pos = store.position("live", rid)
        seen.append(pos)
        assert pos is not None
        for msn in range(pos.next_msn + 2):
            seen.append(store.segment_data("live", rid, msn, now))
            for index in range(6):
                seen.append(store.part_status("live", rid, msn, index, now))
                seen.append(store.reached("live", rid, msn, index))
                seen.append(store.parts_ahead("live", rid, msn, index))
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cached_answers_match_a_fresh_store(seed: int) -> None:
    """A store asked everything after every publication (its caches filled early and
    kept) answers like a store fed the same and asked only at that point."""
    plan = _feed(150, seed)
    spec = ll_spec(window=F(14))  # long enough for delta updates
    watched = Store()
    watched.add_stream(spec)
    for step, (method, args) in enumerate(plan):
        getattr(watched, method)(*args)
        now = float(args[-1] if method != "add_part" else args[8])  # type: ignore[arg-type]
        if step % 4 and step != len(plan) - 1:
            continue
        fresh = Store()
        fresh.add_stream(spec)
        for earlier, earlier_args in plan[: step + 1]:
            getattr(fresh, earlier)(*earlier_args)
        for later in (now, now + 3.0, now + 9.0):
            assert _snapshot(watched, later) == _snapshot(fresh, later), (step, later)
