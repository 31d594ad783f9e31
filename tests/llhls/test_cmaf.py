"""CMAF box writer and reader: golden bytes, round trips, malformed input, PyAV decoding."""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llhls.cmaf import (
    Box,
    BoxReader,
    Buffer,
    fragment,
    init_segment,
    ntp_to_unix_us,
    parse_boxes,
    read_fragment,
    read_init,
    unix_us_to_ntp,
)
from llhls.cmaf.boxes import (
    ElementaryStreamDescriptor,
    TrackRun,
    pull_esds,
    pull_trun,
    push_esds,
    push_trun,
)
from llhls.cmaf.codecs import (
    NAL_AUD,
    NAL_PPS,
    NAL_SPS,
    aac_audio_specific_config,
    avc_codec_string,
    avc_decoder_config,
    nal_type,
    parse_aac_audio_specific_config,
    split_annexb,
    to_avcc,
)
from llhls.errors import BoxError
from llhls.media import Sample, TrackInfo
from llhls.timing import MICROS, rescale

# -- fixtures -----------------------------------------------------------------------

SPS = bytes.fromhex("6764000aacd9")  # High profile (0x64), level 1.0 (0x0a)
PPS = bytes.fromhex("68ebe3cb")
AVCC_RECORD = avc_decoder_config([SPS], [PPS])
ASC = aac_audio_specific_config(2, 48000, 2)  # AAC-LC, 48 kHz, stereo

VIDEO = TrackInfo(
    track_id=1,
    kind="video",
    timescale=90000,
    codec=avc_codec_string(SPS),
    codec_private=AVCC_RECORD,
    width=320,
    height=240,
)
AUDIO = TrackInfo(
    track_id=2,
    kind="audio",
    timescale=48000,
    codec="mp4a.40.2",
    codec_private=ASC,
    sample_rate=48000,
    channels=2,
    bitrate=128000,
)
CAPTURE_US = 1_700_000_000_250_000  # 2023-11-14T22:13:20.25Z
TWO_SAMPLES = (
    Sample(
        bytes.fromhex("000000026588"),
        dts=180000,
        duration=3000,
        keyframe=True,
        capture_us=CAPTURE_US,
    ),
    Sample(bytes.fromhex("0000000141"), dts=183000, duration=3000, keyframe=False),
)


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def box(box_type: str, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return u32(8 + len(body)) + box_type.encode("latin-1") + body


def full(box_type: str, version: int, flags: int, *parts: bytes) -> bytes:
    return box(box_type, bytes([version]) + flags.to_bytes(3, "big"), *parts)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def tree(boxes: list[Box] | tuple[Box, ...]) -> list[object]:
    """mp4dump-like outline: types, with children as nested lists."""
    out: list[object] = []
    for b in boxes:
        out.append(b.type)
        if b.children:
            out.append(tree(b.children))
    return out


# -- Buffer ---------------------------------------------------------------------------


def test_buffer_push_pull_pairs() -> None:
    buf = Buffer()
    buf.push_uint8(0xAB)
    buf.push_uint16(0xBEEF)
    buf.push_uint24(0x123456)
    buf.push_uint32(0xDEADBEEF)
    buf.push_int32(-2)
    buf.push_uint64(0x0102030405060708)
    buf.push_int64(-3)
    buf.push_fourcc("moof")
    buf.push_bytes(b"xyz")
    buf.push_struct(">HI", 7, 9)
    assert buf.data == h(
        "ab beef 123456 deadbeef fffffffe 0102030405060708 fffffffffffffffd"
        "6d6f6f66 78797a 0007 00000009"
    )
    rd = Buffer(buf.data)
    assert rd.pull_uint8() == 0xAB
    assert rd.pull_uint16() == 0xBEEF
    assert rd.pull_uint24() == 0x123456
    assert rd.pull_uint32() == 0xDEADBEEF
    assert rd.pull_int32() == -2
    assert rd.pull_uint64() == 0x0102030405060708
    assert rd.pull_int64() == -3
    assert rd.pull_fourcc() == "moof"
    assert rd.pull_bytes(3) == b"xyz"
    assert rd.pull_struct(">HI") == (7, 9)
    assert rd.eof()


def test_buffer_underrun_and_range_errors() -> None:
    rd = Buffer(b"\x00\x01\x02")
    with pytest.raises(BoxError, match="need 4 bytes at offset 0, only 3 left"):
        rd.pull_uint32()
    assert rd.tell() == 0  # a failed pull does not move the cursor
    with pytest.raises(BoxError, match="32-bit"):
        Buffer().push_uint32(1 << 32)
    with pytest.raises(BoxError, match="8-bit"):
        Buffer().push_uint8(-1)
    with pytest.raises(BoxError, match="four-character"):
        Buffer().push_fourcc("abc")


def test_buffer_box_back_patches_size_and_overwrites_in_place() -> None:
    buf = Buffer()
    with buf.box("moof") as start:
        assert start == 0
        with buf.box("mfhd", version=0, flags=0):
            buf.push_uint32(5)
    assert buf.data == box("moof", full("mfhd", 0, 0, u32(5)))
    buf.seek(20)  # the sequence number
    buf.push_uint32(6)
    assert buf.data == box("moof", full("mfhd", 0, 0, u32(6)))
    assert len(buf) == 24


# -- golden bytes ------------------------------------------------------------------------

GOLDEN_FRAGMENT = h(
    # styp: major cmfs, minor 0, compatible cmfs msdh
    "00000018 73747970 636d6673 00000000 636d6673 6d736468"
    # prft v1 flags 0: track 1, NTP 0xe8fe6f80.40000000 (1700000000.25 s after 1970), media 180000
    "00000020 70726674 01000000 00000001 e8fe6f80 40000000 00000000 0002bf20"
    # moof (112 bytes)
    "00000070 6d6f6f66"
    # mfhd: sequence number 7
    "00000010 6d666864 00000000 00000007"
    # traf
    "00000058 74726166"
    # tfhd: flags default-base-is-moof, track 1
    "00000010 74666864 00020000 00000001"
    # tfdt v1: baseMediaDecodeTime 180000
    "00000014 74666474 01000000 00000000 0002bf20"
    # trun v0 flags data-offset|duration|size|flags, 2 samples, data_offset 112 + 8
    "0000002c 7472756e 00000701 00000002 00000078"
    # sample 1: 3000 ticks, 6 bytes, depends_on=2 (sync)
    "00000bb8 00000006 02000000"
    # sample 2: 3000 ticks, 5 bytes, depends_on=1 + is_non_sync
    "00000bb8 00000005 01010000"
    # mdat: the two AVCC samples
    "00000013 6d646174 000000026588 0000000141"
)


def test_golden_fragment_bytes() -> None:
    data = fragment(VIDEO, 7, TWO_SAMPLES, segment_start=True)
    assert data == GOLDEN_FRAGMENT
    # the same chunk in the middle of a segment: no styp; no prft without a capture time
    plain = [dataclasses.replace(s, capture_us=0) for s in TWO_SAMPLES]
    assert fragment(VIDEO, 7, plain, segment_start=False) == GOLDEN_FRAGMENT[24 + 32 :]


UNITY_MATRIX = h("00010000 00000000 00000000 00000000 00010000 00000000 00000000 00000000 40000000")


# fmt: off
def test_golden_video_init_bytes() -> None:
    zero = u32(0)
    expected = box("ftyp", b"iso6", zero, b"iso6cmfcmp41") + box(
        "moov",
        full(
            "mvhd", 0, 0,
            zero, zero, u32(90000), zero,  # creation, modification, timescale, duration
            h("00010000 0100 0000"), bytes(8),  # rate 1.0, volume 1.0, reserved
            UNITY_MATRIX, bytes(24), u32(2),  # pre_defined, next_track_ID
        ),
        box(
            "trak",
            full(
                "tkhd", 0, 3,  # enabled | in_movie
                zero, zero, u32(1), zero, zero, bytes(8),  # times, track 1, reserved, duration
                h("0000 0000 0000 0000"),  # layer, alternate_group, volume 0 (video), reserved
                UNITY_MATRIX, h("01400000 00f00000"),  # 320.0 x 240.0 as 16.16
            ),
            box(
                "mdia",
                full("mdhd", 0, 0, zero, zero, u32(90000), zero, h("55c4 0000")),  # 'und'
                full("hdlr", 0, 0, zero, b"vide", bytes(12), b"VideoHandler\0"),
                box(
                    "minf",
                    full("vmhd", 0, 1, bytes(8)),
                    box("dinf", full("dref", 0, 0, u32(1), full("url ", 0, 1))),
                    box(
                        "stbl",
                        full(
                            "stsd", 0, 0, u32(1),
                            box(
                                "avc1",
                                bytes(6), h("0001"), bytes(16),  # data_reference_index 1
                                h("0140 00f0 00480000 00480000 00000000 0001"),  # 320x240, 72 dpi
                                bytes(32), h("0018 ffff"),  # compressorname, depth, -1
                                box("avcC", AVCC_RECORD),
                            ),
                        ),
                        full("stts", 0, 0, zero),
                        full("stsc", 0, 0, zero),
                        full("stsz", 0, 0, zero, zero),
                        full("stco", 0, 0, zero),
                    ),
                ),
            ),
        ),
        box("mvex", full("trex", 0, 0, u32(1), u32(1), zero, zero, zero)),
    )
    assert init_segment(VIDEO) == expected
# fmt: on


# fmt: off
def test_golden_esds_decoder_config() -> None:
    buf = Buffer()
    esd = ElementaryStreamDescriptor(ASC, buffer_size=1536, max_bitrate=128000, avg_bitrate=128000)
    push_esds(buf, esd)
    expected = full(
        "esds", 0, 0,
        h("03 19 0000 00"),  # ES_Descriptor, 25 bytes: ES_ID 0, no flags
        h("04 11 40 15 000600 0001f400 0001f400"),  # DecoderConfig: MPEG-4 audio, AudioStream
        h("05 02 1190"),  # DecoderSpecificInfo: AAC-LC (2), 48 kHz (3), 2 channels
        h("06 01 02"),  # SLConfigDescriptor predefined = 2 (MP4)
    )
    assert buf.data == expected
    assert pull_esds(Buffer(expected[8:])) == esd
    # the 4-byte size form other muxers write reads the same
    long_form = full(
        "esds", 0, 0,
        h("03 8080801f 0000 00"),  # 31 = 3 + (5 + 20) + 3
        h("04 80808014 40 15 000600 0001f400 0001f400"),  # 20 = 13 + (5 + 2)
        h("05 80808002 1190 06 01 02"),
    )
    assert pull_esds(Buffer(long_form[8:])).audio_specific_config == ASC
# fmt: on


def test_aac_config_parse() -> None:
    assert parse_aac_audio_specific_config(ASC) == (2, 48000, 2)
    # explicit frequency (index 15): 5 + 4 + 24 + 4 = 37 bits, MSB-first in 5 bytes
    explicit = ((2 << 35) | (15 << 31) | (96000 << 7) | (1 << 3)).to_bytes(5, "big")
    assert parse_aac_audio_specific_config(explicit) == (2, 96000, 1)
    with pytest.raises(BoxError, match="truncated"):
        parse_aac_audio_specific_config(b"\x11")


def test_audio_init_above_16_bit_rate() -> None:
    """96 kHz does not fit AudioSampleEntry's 16.16 samplerate: read it from the config."""
    track = dataclasses.replace(
        AUDIO,
        sample_rate=96000,
        timescale=96000,
        codec_private=aac_audio_specific_config(2, 96000, 2),
    )
    data = init_segment(track)
    mp4a = parse_boxes(data)[1].require("trak", "mdia", "minf", "stbl", "stsd", "mp4a")
    assert mp4a.payload[24:28] == bytes(4)
    assert read_init(data) == track


def test_audio_init_layout() -> None:
    data = init_segment(AUDIO)
    boxes = parse_boxes(data)
    stsd = boxes[1].require("trak", "mdia", "minf", "stbl", "stsd")
    mp4a = stsd.require("mp4a")
    # SampleEntry + AudioSampleEntry v0: dri 1, 2 channels, 16 bit, 48000.0 as 16.16
    assert mp4a.payload[:28] == h("000000000000 0001 0000000000000000 0002 0010 0000 0000 bb800000")
    assert [c.type for c in mp4a.children] == ["esds"]
    smhd = boxes[1].require("trak", "mdia", "minf", "smhd")
    assert smhd.payload == bytes(8)
    tkhd = boxes[1].require("trak", "tkhd")
    assert tkhd.payload[36:38] == h("0100")  # volume 1.0 for audio


# -- structure ("mp4dump") -----------------------------------------------------------


def test_box_order_of_init_and_fragment() -> None:
    assert tree(parse_boxes(init_segment(VIDEO))) == [
        "ftyp",
        "moov",
        [
            "mvhd",
            "trak",
            [
                "tkhd",
                "mdia",
                [
                    "mdhd",
                    "hdlr",
                    "minf",
                    [
                        "vmhd",
                        "dinf",
                        ["dref", ["url "]],
                        "stbl",
                        ["stsd", ["avc1", ["avcC"]], "stts", "stsc", "stsz", "stco"],
                    ],
                ],
            ],
            "mvex",
            ["trex"],
        ],
    ]
    moof = ["moof", ["mfhd", "traf", ["tfhd", "tfdt", "trun"]], "mdat"]
    assert tree(parse_boxes(fragment(VIDEO, 1, TWO_SAMPLES, segment_start=True))) == [
        "styp",
        "prft",
        *moof,
    ]
    assert tree(parse_boxes(fragment(VIDEO, 2, TWO_SAMPLES, segment_start=False))) == [
        "prft",
        *moof,
    ]


def test_box_offsets_and_payloads() -> None:
    boxes = parse_boxes(GOLDEN_FRAGMENT)
    assert [(b.type, b.offset, b.size) for b in boxes] == [
        ("styp", 0, 24),
        ("prft", 24, 32),
        ("moof", 56, 112),
        ("mdat", 168, 19),
    ]
    traf = boxes[2].require("traf")
    assert traf.offset == 56 + 8 + 16
    assert boxes[3].payload == TWO_SAMPLES[0].data + TWO_SAMPLES[1].data


def test_largesize_and_size_zero_boxes() -> None:
    data = u32(1) + b"free" + (16 + 3).to_bytes(8, "big") + b"abc" + u32(0) + b"mdat" + b"tail"
    boxes = parse_boxes(data)
    assert [(b.type, b.header_size, b.size, b.payload) for b in boxes] == [
        ("free", 16, 19, b"abc"),
        ("mdat", 8, 12, b"tail"),
    ]


# -- round trips ---------------------------------------------------------------------


def test_read_init_round_trip() -> None:
    assert read_init(init_segment(VIDEO)) == VIDEO
    assert read_init(init_segment(AUDIO)) == AUDIO
    with_bitrate = dataclasses.replace(VIDEO, bitrate=2_500_000)
    data = init_segment(with_bitrate)
    entry = parse_boxes(data)[1].require("trak", "mdia", "minf", "stbl", "stsd", "avc1")
    assert [c.type for c in entry.children] == ["avcC", "btrt"]
    assert read_init(data) == with_bitrate


def test_read_fragment_golden() -> None:
    frag = read_fragment(GOLDEN_FRAGMENT, VIDEO)
    assert frag.track_id == 1
    assert frag.sequence_number == 7
    assert frag.sequence_numbers == (7,)
    assert frag.base_decode_time == 180000
    assert frag.has_styp
    assert frag.styp is not None and frag.styp.compatible_brands == ("cmfs", "msdh")
    assert frag.prft is not None
    assert (frag.prft.track_id, frag.prft.media_time, frag.prft.flags) == (1, 180000, 0)
    assert frag.prft.unix_us == CAPTURE_US
    # the second sample's capture time follows from its pts distance to media_time
    second = dataclasses.replace(TWO_SAMPLES[1], capture_us=CAPTURE_US + 33_333)
    assert frag.samples == (TWO_SAMPLES[0], second)
    assert frag.duration == 6000
    # without the track (timescale unknown) only the anchored sample gets a capture time
    assert read_fragment(GOLDEN_FRAGMENT).samples == TWO_SAMPLES


def test_segment_is_concatenation_of_parts() -> None:
    samples = [
        Sample(
            bytes([i]) * (i + 1),
            dts=i * 1024,
            duration=1024,
            keyframe=True,
            capture_us=CAPTURE_US + i * 21_333,
        )
        for i in range(20)
    ]
    parts = [
        fragment(AUDIO, 1 + n, samples[n * 5 : n * 5 + 5], segment_start=n == 0) for n in range(4)
    ]
    frag = read_fragment(b"".join(parts), AUDIO)
    assert frag.sequence_numbers == (1, 2, 3, 4)
    assert frag.has_styp
    assert [s.data for s in frag.samples] == [s.data for s in samples]
    assert [s.dts for s in frag.samples] == [s.dts for s in samples]
    # each part's first sample keeps its own capture time (one prft per part)
    assert [frag.samples[n * 5].capture_us for n in range(4)] == [
        samples[n * 5].capture_us for n in range(4)
    ]
    assert not read_fragment(b"".join(parts[1:]), AUDIO).has_styp


@st.composite
def sample_runs(draw: st.DrawFn) -> tuple[TrackInfo, list[Sample]]:
    track = draw(st.sampled_from([VIDEO, AUDIO]))
    count = draw(st.integers(1, 24))
    dts = draw(st.integers(6000, 1 << 40))  # pts stays >= 0 with the offsets below
    with_cts = draw(st.booleans())
    capture = draw(st.one_of(st.just(0), st.integers(1_000_000_000_000_000, 4_000_000_000_000_000)))
    samples: list[Sample] = []
    for i in range(count):
        duration = draw(st.integers(1, 200_000))
        samples.append(
            Sample(
                data=draw(st.binary(min_size=0, max_size=40)),
                dts=dts,
                duration=duration,
                keyframe=draw(st.booleans()),
                cts_offset=draw(st.integers(-6000, 6000)) if with_cts else 0,
                capture_us=capture if i == 0 else 0,
            )
        )
        dts += duration
    return track, samples


def expected_capture(samples: list[Sample], track: TrackInfo) -> list[Sample]:
    first = samples[0]
    if not first.capture_us:
        return samples
    return [
        dataclasses.replace(
            s, capture_us=first.capture_us + rescale(s.pts - first.pts, track.timescale, MICROS)
        )
        for s in samples
    ]


@settings(deadline=None, max_examples=200)
@given(run=sample_runs(), sequence_number=st.integers(0, 0xFFFF_FFFF), segment_start=st.booleans())
def test_fragment_round_trip(
    run: tuple[TrackInfo, list[Sample]], sequence_number: int, segment_start: bool
) -> None:
    track, samples = run
    data = fragment(track, sequence_number, samples, segment_start=segment_start)
    frag = read_fragment(data, track)
    assert frag.track_id == track.track_id
    assert frag.sequence_number == sequence_number
    assert frag.base_decode_time == samples[0].dts
    assert frag.has_styp == segment_start
    assert (frag.prft is not None) == (samples[0].capture_us > 0)
    assert list(frag.samples) == expected_capture(samples, track)
    # the same bytes arriving in pieces split into the same boxes
    reader = BoxReader()
    pieces = [reader.feed(data[i : i + 7]) for i in range(0, len(data), 7)]
    assert [b for got in pieces for b in got] + reader.close() == parse_boxes(data)


@given(unix_us=st.integers(-61_505_152 * MICROS, 4_000_000_000_000_000))  # 1968 .. 2096
def test_ntp_round_trip(unix_us: int) -> None:
    assert ntp_to_unix_us(unix_us_to_ntp(unix_us)) == unix_us


def test_ntp_known_values() -> None:
    assert unix_us_to_ntp(0) == 0x83AA7E80 << 32  # 1970 in NTP seconds since 1900
    assert unix_us_to_ntp(500_000) == (0x83AA7E80 << 32) | 0x8000_0000
    # 2036-02-07T06:28:16Z: NTP era 1 starts, seconds wrap to 0
    era1 = (1 << 32) - 0x83AA7E80
    assert unix_us_to_ntp(era1 * MICROS) == 0
    assert ntp_to_unix_us(0) == era1 * MICROS


def test_trun_signed_offsets_round_trip() -> None:
    run = TrackRun(
        sample_count=3,
        version=1,
        data_offset=-4,
        durations=(1, 2, 3),
        sizes=(4, 5, 6),
        sample_flags=(0x02000000, 0x01010000, 0x01010000),
        cts_offsets=(-3000, 0, 3000),
    )
    buf = Buffer()
    assert push_trun(buf, run) == 16
    assert pull_trun(Buffer(buf.data[8:])) == run
    with pytest.raises(BoxError, match="composition offset"):
        push_trun(Buffer(), dataclasses.replace(run, version=0))


def test_fragment_rejects_bad_input() -> None:
    with pytest.raises(BoxError, match="at least one sample"):
        fragment(VIDEO, 1, [], segment_start=True)
    gap = [TWO_SAMPLES[0], dataclasses.replace(TWO_SAMPLES[1], dts=190000)]
    with pytest.raises(BoxError, match="sample 1 has dts 190000, expected 183000"):
        fragment(VIDEO, 1, gap, segment_start=False)
    with pytest.raises(BoxError, match="32-bit"):
        fragment(VIDEO, 1 << 32, TWO_SAMPLES, segment_start=False)


# -- malformed and incremental input -------------------------------------------------------


def test_every_truncation_raises_a_clear_box_error() -> None:
    data = init_segment(VIDEO) + GOLDEN_FRAGMENT
    ends = {0}
    for b in parse_boxes(data):
        ends.add(b.offset + b.size)
    for cut in range(len(data)):
        if cut in ends:
            continue
        with pytest.raises(BoxError, match=r"truncated box header|declares size \d+ but only"):
            parse_boxes(data[:cut])
    with pytest.raises(BoxError, match="box 'mdat' at offset 168 declares size 19 but only 18"):
        parse_boxes(GOLDEN_FRAGMENT[:-1])
    with pytest.raises(BoxError, match="truncated box header at offset 0: 3 of 8 bytes"):
        parse_boxes(b"\x00\x00\x00")


def test_overrunning_child_box_raises() -> None:
    data = bytearray(GOLDEN_FRAGMENT)
    # grow the tfhd size (at 56 + 8 + 16 + 8) past the end of its traf
    tfhd_at = 56 + 8 + 16 + 8
    data[tfhd_at : tfhd_at + 4] = u32(0x1000)
    with pytest.raises(
        BoxError, match="box 'tfhd' at offset 88 declares size 4096 but only 80 bytes remain"
    ):
        parse_boxes(bytes(data))
    tiny = u32(4) + b"free"
    with pytest.raises(BoxError, match="declares size 4 < 8"):
        parse_boxes(tiny)


def test_read_fragment_rejects_data_outside_mdat() -> None:
    data = bytearray(GOLDEN_FRAGMENT)
    offset_at = 56 + 8 + 16 + 8 + 16 + 20 + 16  # trun data_offset
    data[offset_at : offset_at + 4] = u32(0x100)
    with pytest.raises(BoxError, match="not inside an 'mdat'"):
        read_fragment(bytes(data))
    with pytest.raises(BoxError, match="no 'moof'"):
        read_fragment(init_segment(VIDEO))
    with pytest.raises(BoxError, match="no 'moov'"):
        read_init(GOLDEN_FRAGMENT)


def test_read_fragment_rejects_a_lying_trun_count() -> None:
    data = bytearray(GOLDEN_FRAGMENT)
    count_at = 56 + 8 + 16 + 8 + 16 + 20 + 12
    data[count_at : count_at + 4] = u32(0xFFFF_FFFF)
    with pytest.raises(BoxError, match="trun declares 4294967295 samples"):
        read_fragment(bytes(data))


@pytest.mark.parametrize("block", [1, 2, 3, 5, 7, 64, 1000])
def test_box_reader_in_odd_blocks(block: int) -> None:
    data = (
        init_segment(AUDIO) + GOLDEN_FRAGMENT + fragment(VIDEO, 8, TWO_SAMPLES, segment_start=False)
    )
    reader = BoxReader()
    got: list[Box] = []
    for i in range(0, len(data), block):
        got += reader.feed(data[i : i + block])
    got += reader.close()
    assert got == parse_boxes(data)
    assert reader.pending == 0


def test_box_reader_close_reports_truncation() -> None:
    reader = BoxReader()
    assert [b.type for b in reader.feed(GOLDEN_FRAGMENT[:60])] == ["styp", "prft"]
    assert reader.pending == 4
    with pytest.raises(BoxError, match="truncated box header at offset 56"):
        reader.close()


# -- performance ---------------------------------------------------------------------------


def test_fragment_of_six_720p_frames_is_fast() -> None:
    rng = np.random.default_rng(1)
    sizes = [60_000, 9_000, 8_000, 9_500, 8_200, 9_100]  # ~3 Mbit/s 720p30
    samples = [
        Sample(rng.bytes(size), dts=i * 3000, duration=3000, keyframe=i == 0, capture_us=CAPTURE_US)
        for i, size in enumerate(sizes)
    ]
    track = dataclasses.replace(VIDEO, width=1280, height=720)
    best = float("inf")
    for _ in range(30):
        start = time.perf_counter()
        fragment(track, 1, samples, segment_start=True)
        best = min(best, time.perf_counter() - start)
    assert best < 0.001


# -- real media through PyAV -----------------------------------------------------------------

FPS = 30
FRAMES = 60  # 2 s


def encode_h264() -> Iterator[av.Packet[Any]]:
    ctx = av.CodecContext.create("libx264", "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt = 320, 240, "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.framerate = Fraction(FPS)
    ctx.max_b_frames = 0
    ctx.gop_size = FPS  # keyint 30
    ctx.options = {
        "tune": "zerolatency",
        "x264-params": f"keyint={FPS}:min-keyint={FPS}:scenecut=0",
    }
    for i in range(FRAMES):
        rgb = np.zeros((240, 320, 3), np.uint8)
        rgb[:, : (i * 5) % 320] = (200, 60, 30)  # a moving edge
        rgb[i * 4 % 240 :, :, 2] = 255
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        yield from ctx.encode(frame)
    yield from ctx.encode(None)


def h264_track_and_samples() -> tuple[TrackInfo, list[Sample]]:
    ticks = VIDEO.timescale // FPS
    sps: bytes | None = None
    pps: bytes | None = None
    samples: list[Sample] = []
    for packet in encode_h264():
        assert packet.pts is not None and packet.dts is not None
        nals = split_annexb(bytes(packet))
        for nal in nals:
            if nal_type(nal) == NAL_SPS:
                sps = nal
            elif nal_type(nal) == NAL_PPS:
                pps = nal
        frame_nals = [n for n in nals if nal_type(n) not in (NAL_SPS, NAL_PPS, NAL_AUD)]
        samples.append(
            Sample(
                data=to_avcc(frame_nals),
                dts=packet.dts * ticks,
                duration=ticks,
                keyframe=packet.is_keyframe,
                cts_offset=(packet.pts - packet.dts) * ticks,
                capture_us=CAPTURE_US + packet.pts * MICROS // FPS,
            )
        )
    assert sps is not None and pps is not None
    track = dataclasses.replace(
        VIDEO, codec=avc_codec_string(sps), codec_private=avc_decoder_config([sps], [pps])
    )
    return track, samples


def aac_track_and_samples() -> tuple[TrackInfo, list[Sample]]:
    ctx = av.CodecContext.create("aac", "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate = 48000
    ctx.layout = "stereo"
    ctx.format = "fltp"
    ctx.bit_rate = 128000
    ctx.time_base = Fraction(1, 48000)
    packets: list[av.Packet[Any]] = []
    t = np.arange(1024 * 94) / 48000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for i in range(94):  # ~2 s
        chunk = np.stack([tone[i * 1024 : (i + 1) * 1024]] * 2)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i * 1024
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    samples = [
        Sample(
            bytes(p), dts=i * 1024, duration=1024, keyframe=True, capture_us=CAPTURE_US + i * 21_333
        )
        for i, p in enumerate(packets)
    ]
    return AUDIO, samples


def write_track(track: TrackInfo, samples: list[Sample], per_fragment: int) -> bytes:
    parts = [init_segment(track)]
    for n, start in enumerate(range(0, len(samples), per_fragment)):
        parts.append(
            fragment(track, n + 1, samples[start : start + per_fragment], segment_start=n % 5 == 0)
        )
    return b"".join(parts)


def test_pyav_decodes_our_h264_track() -> None:
    track, samples = h264_track_and_samples()
    assert len(samples) == FRAMES
    assert samples[0].keyframe and samples[30].keyframe and not samples[1].keyframe
    assert all(s.cts_offset == 0 for s in samples)  # no B-frames
    data = write_track(track, samples, 6)
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        frames = list(container.decode(stream))
    assert len(frames) == FRAMES
    assert [f.pts for f in frames] == [s.pts for s in samples]
    # and our reader gets every sample back from the whole file
    init_size = len(init_segment(track))
    assert read_init(data[:init_size]) == track
    frag = read_fragment(data[init_size:], track)
    assert [s.data for s in frag.samples] == [s.data for s in samples]
    assert frag.sequence_numbers == tuple(range(1, 11))


def test_pyav_decodes_our_aac_track() -> None:
    track, samples = aac_track_and_samples()
    data = write_track(track, samples, 10)
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.sample_rate == 48000
        assert stream.codec_context.channels == 2
        frames = list(container.decode(stream))
    assert len(frames) == len(samples)
    assert sum(f.samples for f in frames) == 1024 * len(samples)


def test_ffmpeg_remux_reads_back_identically() -> None:
    """ffmpeg demuxes our CMAF and muxes its own fragmented MP4 (tfhd defaults,
    first-sample flags, trun v1); our reader must recover the same samples."""
    track, samples = h264_track_and_samples()
    ours = write_track(track, samples, 6)
    out = io.BytesIO()
    with (
        av.open(io.BytesIO(ours), "r") as source,
        av.open(
            out,
            "w",
            format="mp4",
            options={"movflags": "cmaf+frag_keyframe+empty_moov+default_base_moof"},
        ) as sink,
    ):
        stream = sink.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.size:
                packet.stream = stream
                sink.mux(packet)
    theirs = out.getvalue()
    top = parse_boxes(theirs)
    assert [b.type for b in top[:3]] == ["ftyp", "moov", "moof"]
    moov = top[1]
    assert dataclasses.replace(read_init(theirs[: moov.offset + moov.size]), bitrate=0) == track
    frag = read_fragment(theirs[moov.offset + moov.size :], track)
    assert [(s.data, s.dts, s.duration, s.keyframe) for s in frag.samples] == [
        (s.data, s.dts, s.duration, s.keyframe) for s in samples
    ]
