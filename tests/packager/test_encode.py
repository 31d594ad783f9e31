"""Tests of packager.encode: ladder parsing, the libx264 and AAC encoders."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import pytest

from llhls import barcode
from llhls.cmaf.codecs import (
    NAL_AUD,
    NAL_IDR,
    NAL_PPS,
    NAL_SEI,
    NAL_SPS,
    nal_type,
    parse_avc_decoder_config,
    split_avcc,
)
from llhls.errors import ConfigError, EncodeError
from llhls.media import Sample, TrackInfo
from packager.encode import (
    DEFAULT_LADDER,
    AudioEncoder,
    Rung,
    VideoEncoder,
    frame_pts,
    parse_ladder,
    validate_ladder,
)
from packager.sources import AAC_FRAME, AudioItem, TestSource, VideoItem

START = 1_700_000_000_000_000
FPS = Fraction(30)
GOP = 60
SECONDS = 4


# ----------------------------------------------------------------- ladder


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("720p:1280x720@2500k,360p:640x360@600k", DEFAULT_LADDER),
        (" hd:1920x1080@6M , sd : 640x360@600000", None),
        ("a:1280x720@2.5M", (Rung("a", 1280, 720, 2_500_000),)),
        ("lo_1:320x180@150k", (Rung("lo_1", 320, 180, 150_000),)),
    ],
)
def test_parse_ladder(text: str, expected: tuple[Rung, ...] | None) -> None:
    if expected is None:
        with pytest.raises(ConfigError):  # "sd " is not a valid id (space)
            parse_ladder(text)
    else:
        assert parse_ladder(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "720p",
        "720p:1280x720",
        "720p:1280*720@2500k",
        "720p:1281x720@2500k",  # odd width
        "720p:1280x720@2500x",
        "720p:1280x720@1",  # bitrate too low
        ":1280x720@2500k",
        "audio:1280x720@2500k",  # reserved for the audio rendition
        "a/b:1280x720@2500k",
        "a:1280x720@2500k,a:640x360@600k",  # duplicate id
        "a:1280x720@2500k,",
        "a:1280x720@0.5",  # fractional bit/s
        "a:99999x720@2500k",
    ],
)
def test_parse_ladder_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_ladder(text)


def test_validate_ladder() -> None:
    assert validate_ladder(DEFAULT_LADDER) == DEFAULT_LADDER
    with pytest.raises(ConfigError):
        validate_ladder(())


def test_frame_pts() -> None:
    assert [frame_pts(i, Fraction(30)) for i in range(3)] == [0, 3000, 6000]
    assert frame_pts(1, Fraction(30000, 1001)) == 3003
    assert frame_pts(30_000, Fraction(30000, 1001)) == 90_090_000
    assert frame_pts(3, Fraction(24)) == 11250
    assert frame_pts(1, Fraction(60000, 1001)) == 1501  # 1501.5 rounded down
    assert frame_pts(2, Fraction(60000, 1001)) == 3003


# ----------------------------------------------------------------- a shared 4 s run


@dataclass
class Run:
    video: dict[str, list[Sample]]
    video_info: dict[str, TrackInfo]
    audio: list[Sample]
    audio_info: TrackInfo
    audio_blocks: list[AudioItem]
    frames: list[VideoItem]


@pytest.fixture(scope="module")
def run() -> Run:
    """4 s of testsrc (1280x720) through the default ladder and AAC."""
    source = TestSource()
    encoders = {
        rung.id: VideoEncoder(rung, FPS, GOP, track_id=i + 1)
        for i, rung in enumerate(DEFAULT_LADDER)
    }
    assert all(e.track_info is None for e in encoders.values())
    audio = AudioEncoder(48000, 2)
    video: dict[str, list[Sample]] = {rid: [] for rid in encoders}
    audio_samples: list[Sample] = []
    blocks: list[AudioItem] = []
    frames: list[VideoItem] = []
    for item in source.items(START):
        if isinstance(item, VideoItem):
            if item.index >= SECONDS * 30:
                break
            frames.append(item)
            for rid, encoder in encoders.items():
                video[rid] += encoder.encode(item.frame, item.index, item.capture_us)
        else:
            blocks.append(item)
            audio_samples += audio.encode(item.frame, item.first_sample, item.capture_us)
    infos = {}
    for rid, encoder in encoders.items():
        video[rid] += encoder.flush()
        info = encoder.track_info
        assert info is not None
        infos[rid] = info
    audio_samples += audio.flush()
    return Run(video, infos, audio_samples, audio.track_info, blocks, frames)


def test_every_frame_comes_out_once(run: Run) -> None:
    for samples in run.video.values():
        assert [s.dts for s in samples] == [frame_pts(i, FPS) for i in range(SECONDS * 30)]
        assert [s.capture_us for s in samples] == [f.capture_us for f in run.frames]


def test_keyframes_exactly_on_the_gop_grid(run: Run) -> None:
    for rid, samples in run.video.items():
        keys = [i for i, s in enumerate(samples) if s.keyframe]
        assert keys == list(range(0, SECONDS * 30, GOP)), rid
        for sample in samples:
            kinds = {nal_type(nal) for nal in split_avcc(sample.data)}
            assert kinds.isdisjoint({NAL_SPS, NAL_PPS, NAL_AUD, NAL_SEI})
            assert (NAL_IDR in kinds) == sample.keyframe


def test_no_b_frames_timing(run: Run) -> None:
    for samples in run.video.values():
        for a, b in itertools.pairwise(samples):
            assert b.dts == a.dts + a.duration
            assert a.duration == 3000
            assert a.cts_offset == 0


def test_track_info(run: Run) -> None:
    hd, sd = run.video_info["720p"], run.video_info["360p"]
    assert (hd.track_id, hd.kind, hd.timescale) == (1, "video", 90000)
    assert (hd.width, hd.height, hd.bitrate) == (1280, 720, 2_500_000)
    assert (sd.width, sd.height, sd.track_id) == (640, 360, 2)
    assert hd.codec.startswith("avc1.64") and sd.codec.startswith("avc1.64")
    sps, pps = parse_avc_decoder_config(hd.codec_private)
    assert len(sps) == 1 and len(pps) == 1
    assert nal_type(sps[0]) == NAL_SPS and nal_type(pps[0]) == NAL_PPS
    assert hd.codec == f"avc1.{sps[0][1]:02x}{sps[0][2]:02x}{sps[0][3]:02x}"


def test_bitrate_near_target(run: Run) -> None:
    for rung in DEFAULT_LADDER:
        bits = 8 * sum(len(s.data) for s in run.video[rung.id])
        rate = bits / SECONDS
        assert 0.5 * rung.bitrate <= rate <= 1.5 * rung.bitrate, (rung.id, rate)


def decode_video(info: TrackInfo, samples: list[Sample]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = info.codec_private
    frames: list[av.VideoFrame] = []
    for sample in samples:
        packet = av.Packet(sample.data)
        packet.pts = sample.dts
        frames += [f for f in decoder.decode(packet) if isinstance(f, av.VideoFrame)]
    frames += [f for f in decoder.decode(None) if isinstance(f, av.VideoFrame)]
    return frames


def test_samples_decode_with_avcc_extradata(run: Run) -> None:
    for rid, samples in run.video.items():
        info = run.video_info[rid]
        frames = decode_video(info, samples)
        assert len(frames) == len(samples)
        assert (frames[0].width, frames[0].height) == (info.width, info.height)
        capture = {s.dts: s.capture_us for s in samples}
        for frame in frames[::10]:
            assert frame.pts is not None
            plane = frame.planes[0]
            y = np.frombuffer(memoryview(plane), np.uint8).reshape(frame.height, plane.line_size)
            assert barcode.decode_luma(y[:, : frame.width]) == capture[frame.pts] // 1000


def test_samples_decode_as_annexb_stream(run: Run) -> None:
    info = run.video_info["360p"]
    sps, pps = parse_avc_decoder_config(info.codec_private)
    stream = bytearray()
    for sample in run.video["360p"][: GOP + 5]:
        nals = (sps + pps if sample.keyframe else []) + split_avcc(sample.data)
        stream += b"".join(b"\x00\x00\x00\x01" + nal for nal in nals)
    decoder = av.CodecContext.create("h264", "r")
    frames = []
    for packet in decoder.parse(bytes(stream)) + decoder.parse(None):
        frames += decoder.decode(packet)
    frames += decoder.decode(None)
    assert len(frames) == GOP + 5


def test_audio_samples(run: Run) -> None:
    samples = run.audio
    assert len(samples) == len(run.audio_blocks) + 1  # the priming frame comes out too
    assert [s.dts for s in samples] == [n * AAC_FRAME for n in range(len(samples))]
    assert all(s.duration == AAC_FRAME and s.keyframe for s in samples)
    captures = [s.capture_us for s in samples]
    assert captures[: len(run.audio_blocks)] == [b.capture_us for b in run.audio_blocks]
    assert captures[-1] == captures[-2] + AAC_FRAME * 1_000_000 // 48000
    info = run.audio_info
    assert (info.kind, info.timescale, info.sample_rate, info.channels) == (
        "audio",
        48000,
        48000,
        2,
    )
    assert info.codec == "mp4a.40.2"
    assert info.codec_private[:2] == b"\x11\x90"  # AAC-LC, 48 kHz, stereo
    bits = 8 * sum(len(s.data) for s in samples)
    assert 0.5 * 96_000 < bits / SECONDS < 1.5 * 96_000


def test_audio_decodes(run: Run) -> None:
    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = run.audio_info.codec_private
    pcm = []
    for sample in run.audio:
        for frame in decoder.decode(av.Packet(sample.data)):
            assert isinstance(frame, av.AudioFrame)
            pcm.append(frame.to_ndarray())
    audio = np.concatenate(pcm, axis=1)
    assert audio.shape[1] == len(run.audio) * AAC_FRAME
    steady = audio[:, 48000 + 2048 : 48000 + 10_000]  # after the 1 s click, primed
    assert 0.06 < float(np.abs(steady).max()) < 0.14  # the -20 dBFS tone survives


# ----------------------------------------------------------------- focused cases


def small_frames(count: int, fps: Fraction = FPS) -> list[VideoItem]:
    source = TestSource(160, 90, fps=fps, audio=False)
    return [source.video_item(i, START) for i in range(count)]


def test_ntsc_rate_durations_are_exact() -> None:
    fps = Fraction(30000, 1001)
    encoder = VideoEncoder(Rung("s", 160, 90, 100_000), fps, gop_frames=15)
    samples: list[Sample] = []
    for item in small_frames(31, fps):
        samples += encoder.encode(item.frame, item.index, item.capture_us)
    samples += encoder.flush()
    assert [s.dts for s in samples] == [3003 * i for i in range(31)]
    assert {s.duration for s in samples} == {3003}
    assert [i for i, s in enumerate(samples) if s.keyframe] == [0, 15, 30]


def test_gop_follows_frame_index_not_call_count() -> None:
    """Starting mid-stream (a late joiner), key frames still land on index % gop == 0."""
    encoder = VideoEncoder(Rung("s", 160, 90, 100_000), FPS, gop_frames=10)
    samples: list[Sample] = []
    for item in small_frames(40)[7:]:
        samples += encoder.encode(item.frame, item.index, item.capture_us)
    keys = [s.dts // 3000 for s in samples if s.keyframe]
    assert keys == [7, 10, 20, 30]  # the first frame is always an IDR


def test_same_size_source_frame_is_not_modified() -> None:
    source = TestSource(160, 90, audio=False)
    item = source.video_item(3, START)
    frame = item.frame.reformat(format="yuv420p")
    frame.pts = 12345
    encoder = VideoEncoder(Rung("s", 160, 90, 100_000), FPS, gop_frames=10)
    encoder.encode(frame, 3, item.capture_us)
    assert frame.pts == 12345


def test_encoder_misuse() -> None:
    encoder = VideoEncoder(Rung("s", 160, 90, 100_000), FPS, gop_frames=10)
    frames = small_frames(2)
    encoder.encode(frames[1].frame, 1, frames[1].capture_us)
    with pytest.raises(EncodeError):
        encoder.encode(frames[0].frame, 1, frames[0].capture_us)  # index not increasing
    encoder.flush()
    assert encoder.flush() == []
    with pytest.raises(EncodeError):
        encoder.encode(frames[1].frame, 2, frames[1].capture_us)
    with pytest.raises(ConfigError):
        VideoEncoder(Rung("s", 160, 90, 100_000), FPS, gop_frames=0)
    with pytest.raises(ConfigError):
        VideoEncoder(Rung("s", 160, 90, 100_000), Fraction(0), gop_frames=10)


def test_keep_sei_option() -> None:
    encoder = VideoEncoder(Rung("s", 160, 90, 100_000), FPS, gop_frames=10, keep_sei=True)
    item = small_frames(1)[0]
    (sample,) = encoder.encode(item.frame, 0, item.capture_us)
    kinds = [nal_type(nal) for nal in split_avcc(sample.data)]
    assert NAL_SEI in kinds and NAL_IDR in kinds


def test_audio_encoder_accepts_s16_and_mono() -> None:
    encoder = AudioEncoder(44100, 1, bitrate=64_000, track_id=3)
    assert encoder.track_info.codec_private[:2] == b"\x12\x08"  # LC, 44.1 kHz, mono
    out: list[Sample] = []
    for n in range(5):
        pcm = np.zeros((1, AAC_FRAME), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = 44100
        out += encoder.encode(frame, n * AAC_FRAME, START + n * 23_219)
    out += encoder.flush()
    assert [s.dts for s in out] == [n * AAC_FRAME for n in range(6)]
    assert out[0].capture_us == START


def test_audio_encoder_misuse() -> None:
    encoder = AudioEncoder(48000, 2)
    short = av.AudioFrame.from_ndarray(np.zeros((2, 512), np.float32), "fltp", "stereo")
    short.sample_rate = 48000
    with pytest.raises(EncodeError):
        encoder.encode(short, 0, START)
    wrong_rate = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), "fltp", "stereo")
    wrong_rate.sample_rate = 44100
    with pytest.raises(EncodeError):
        encoder.encode(wrong_rate, 0, START)
    encoder.flush()
    with pytest.raises(EncodeError):
        encoder.encode(wrong_rate, 0, START)
    with pytest.raises(ConfigError):
        AudioEncoder(48000, 6)
    with pytest.raises(ConfigError):
        AudioEncoder(12345, 2)
    with pytest.raises(ConfigError):
        AudioEncoder(48000, 2, bitrate=1)
