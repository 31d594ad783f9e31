"""Golden playlists: (name, model, canonical text) shared by the playlist tests."""

from __future__ import annotations

from fractions import Fraction as F

from llhls.playlist import (
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
)

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z in ms


def parts_of(msn: int, durations: list[F], independent: tuple[int, ...] = (0,)) -> tuple[Part, ...]:
    return tuple(
        Part(uri=f"part{msn}.{i}.m4s", duration=d, independent=i in independent)
        for i, d in enumerate(durations)
    )


HALF = F(1, 2)
LL_CONTROL = ServerControl(
    can_block_reload=True, can_skip_until=F(12), hold_back=F(6), part_hold_back=F(3, 2)
)

LL_MEDIA = MediaPlaylist(
    target_duration=2,
    version=6,
    media_sequence=10,
    part_target=HALF,
    server_control=LL_CONTROL,
    map=Map("init.mp4"),
    segments=(
        Segment("seg10.m4s", F(2), pdt_ms=T0),
        Segment("seg11.m4s", F(2), pdt_ms=T0 + 2000, parts=parts_of(11, [HALF] * 4)),
        Segment("seg12.m4s", F(2), pdt_ms=T0 + 4000, parts=parts_of(12, [HALF] * 4, (0, 1))),
    ),
    open_segment=OpenSegment(parts=parts_of(13, [HALF, HALF]), pdt_ms=T0 + 6000),
    preload_hints=(PreloadHint("part13.2.m4s"),),
    rendition_reports=(
        RenditionReport("../360p/media.m3u8", 13, 1),
        RenditionReport("../audio/media.m3u8", 13, 1),
    ),
)
LL_MEDIA_TEXT = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6,PART-HOLD-BACK=1.5
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXTINF:2,
seg10.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXT-X-PART:DURATION=0.5,URI="part11.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part11.1.m4s"
#EXT-X-PART:DURATION=0.5,URI="part11.2.m4s"
#EXT-X-PART:DURATION=0.5,URI="part11.3.m4s"
#EXTINF:2,
seg11.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXT-X-PART:DURATION=0.5,URI="part12.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part12.1.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part12.2.m4s"
#EXT-X-PART:DURATION=0.5,URI="part12.3.m4s"
#EXTINF:2,
seg12.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z
#EXT-X-PART:DURATION=0.5,URI="part13.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part13.1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part13.2.m4s"
#EXT-X-RENDITION-REPORT:URI="../360p/media.m3u8",LAST-MSN=13,LAST-PART=1
#EXT-X-RENDITION-REPORT:URI="../audio/media.m3u8",LAST-MSN=13,LAST-PART=1
"""

DELTA = MediaPlaylist(
    target_duration=2,
    version=9,
    media_sequence=100,
    part_target=HALF,
    server_control=LL_CONTROL,
    map=Map("init.mp4"),
    skip=Skip(20),
    segments=(
        Segment("seg120.m4s", F(2), pdt_ms=T0),
        Segment("seg121.m4s", F(2), pdt_ms=T0 + 2000),
        Segment("seg122.m4s", F(2), pdt_ms=T0 + 4000, parts=parts_of(122, [HALF] * 4)),
        Segment("seg123.m4s", F(2), pdt_ms=T0 + 6000, parts=parts_of(123, [HALF] * 4)),
    ),
    open_segment=OpenSegment(parts=parts_of(124, [HALF]), pdt_ms=T0 + 8000),
    preload_hints=(PreloadHint("part124.1.m4s"),),
    rendition_reports=(RenditionReport("../audio/media.m3u8", 124, 0),),
)
DELTA_TEXT = """\
#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6,PART-HOLD-BACK=1.5
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-MAP:URI="init.mp4"
#EXT-X-SKIP:SKIPPED-SEGMENTS=20
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXTINF:2,
seg120.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXTINF:2,
seg121.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXT-X-PART:DURATION=0.5,URI="part122.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part122.1.m4s"
#EXT-X-PART:DURATION=0.5,URI="part122.2.m4s"
#EXT-X-PART:DURATION=0.5,URI="part122.3.m4s"
#EXTINF:2,
seg122.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z
#EXT-X-PART:DURATION=0.5,URI="part123.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part123.1.m4s"
#EXT-X-PART:DURATION=0.5,URI="part123.2.m4s"
#EXT-X-PART:DURATION=0.5,URI="part123.3.m4s"
#EXTINF:2,
seg123.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:28.000Z
#EXT-X-PART:DURATION=0.5,URI="part124.0.m4s",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part124.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../audio/media.m3u8",LAST-MSN=124,LAST-PART=0
"""

MULTIVARIANT = MultivariantPlaylist(
    independent_segments=True,
    renditions=(
        Rendition(
            type="AUDIO",
            group_id="aud",
            name="audio",
            uri="audio/media.m3u8",
            default=True,
            autoselect=True,
            channels="2",
        ),
    ),
    variants=(
        Variant(
            uri="720p/media.m3u8",
            bandwidth=3_128_000,
            average_bandwidth=2_628_000,
            codecs="avc1.64001f,mp4a.40.2",
            resolution=(1280, 720),
            frame_rate=F(30),
            audio="aud",
        ),
        Variant(
            uri="360p/media.m3u8",
            bandwidth=928_000,
            average_bandwidth=828_000,
            codecs="avc1.42c01e,mp4a.40.2",
            resolution=(640, 360),
            frame_rate=F(25),
            audio="aud",
        ),
    ),
)
MULTIVARIANT_TEXT = """\
#EXTM3U
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",\
URI="audio/media.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=3128000,AVERAGE-BANDWIDTH=2628000,CODECS="avc1.64001f,mp4a.40.2",\
RESOLUTION=1280x720,FRAME-RATE=30,AUDIO="aud"
720p/media.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=928000,AVERAGE-BANDWIDTH=828000,CODECS="avc1.42c01e,mp4a.40.2",\
RESOLUTION=640x360,FRAME-RATE=25,AUDIO="aud"
360p/media.m3u8
"""

ENDED = MediaPlaylist(
    target_duration=2,
    version=6,
    media_sequence=3,
    part_target=HALF,
    server_control=LL_CONTROL,
    map=Map("init.mp4"),
    segments=(
        Segment("seg3.m4s", F(2), pdt_ms=T0),
        Segment("seg4.m4s", F(2), pdt_ms=T0 + 2000, parts=parts_of(4, [HALF] * 4)),
        Segment("seg5.m4s", F(7, 10), pdt_ms=T0 + 4000, parts=parts_of(5, [HALF, F(1, 5)])),
    ),
    rendition_reports=(RenditionReport("../audio/media.m3u8", 5, 1),),
    endlist=True,
)
ENDED_TEXT = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,HOLD-BACK=6,PART-HOLD-BACK=1.5
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXTINF:2,
seg3.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXT-X-PART:DURATION=0.5,URI="part4.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="part4.1.m4s"
#EXT-X-PART:DURATION=0.5,URI="part4.2.m4s"
#EXT-X-PART:DURATION=0.5,URI="part4.3.m4s"
#EXTINF:2,
seg4.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXT-X-PART:DURATION=0.5,URI="part5.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI="part5.1.m4s"
#EXTINF:0.7,
seg5.m4s
#EXT-X-RENDITION-REPORT:URI="../audio/media.m3u8",LAST-MSN=5,LAST-PART=1
#EXT-X-ENDLIST
"""

CLASSIC = MediaPlaylist(
    target_duration=6,
    version=6,
    media_sequence=7,
    server_control=ServerControl(can_skip_until=F(36), hold_back=F(18)),
    map=Map("init.mp4"),
    segments=(
        Segment("seg7.m4s", F(6), pdt_ms=T0),
        Segment("seg8.m4s", F(6), pdt_ms=T0 + 6000),
        Segment("seg9.m4s", F(6), pdt_ms=T0 + 12000),
        Segment("seg10.m4s", F(6), pdt_ms=T0 + 18000),
    ),
)
CLASSIC_TEXT = """\
#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:6
#EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=36,HOLD-BACK=18
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXTINF:6,
seg7.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z
#EXTINF:6,
seg8.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:32.000Z
#EXTINF:6,
seg9.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:38.000Z
#EXTINF:6,
seg10.m4s
"""

GOLDEN: list[tuple[str, MediaPlaylist | MultivariantPlaylist, str]] = [
    ("ll_media", LL_MEDIA, LL_MEDIA_TEXT),
    ("delta_update", DELTA, DELTA_TEXT),
    ("multivariant_audio_group", MULTIVARIANT, MULTIVARIANT_TEXT),
    ("ended_live", ENDED, ENDED_TEXT),
    ("classic_no_parts", CLASSIC, CLASSIC_TEXT),
]
GOLDEN_IDS = [g[0] for g in GOLDEN]
