"""PyAV decode adapter: CMAF parts in, frames and barcodes out (media generated here)."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from llhls import barcode
from llhls.cmaf import fragment, init_segment
from llhls.cmaf.codecs import (
    NAL_AUD,
    NAL_PPS,
    NAL_SPS,
    aac_codec_string,
    avc_codec_string,
    avc_decoder_config,
    nal_type,
    split_annexb,
    to_avcc,
)
from llhls.media import Sample, TrackInfo
from llhls.timing import ManualClock
from player.decode import TrackDecoder, glass_to_glass_s, luma_plane, prft_latency_s

W, H = 320, 180
FPS = 30
BASE_MS = 1_700_000_000_000
FRAME_TICKS = 90_000 // FPS


def encode_video(frames: int, gop: int = 15) -> tuple[TrackInfo, list[Sample]]:
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = W, H, "yuv420p"
    enc.time_base = Fraction(1, FPS)
    enc.bit_rate = 400_000
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(gop), "bf": "0"}
    samples: list[Sample] = []
    sps = pps = b""
    packets = []
    for i in range(frames):
        rgb = np.full((H, W, 3), (i * 7) % 200 + 20, np.uint8)
        barcode.encode_into(rgb, BASE_MS + i * 33)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets.extend(enc.encode(frame))
    packets.extend(enc.encode(None))
    for p in packets:
        assert p.pts is not None and p.dts is not None
        nals = split_annexb(bytes(p))
        for nal in nals:
            if nal_type(nal) == NAL_SPS:
                sps = nal
            elif nal_type(nal) == NAL_PPS:
                pps = nal
        keep = [n for n in nals if nal_type(n) not in (NAL_SPS, NAL_PPS, NAL_AUD)]
        samples.append(
            Sample(
                data=to_avcc(keep),
                dts=p.dts * FRAME_TICKS,
                duration=FRAME_TICKS,
                keyframe=bool(p.is_keyframe),
                capture_us=(BASE_MS + p.pts * 33) * 1000,
            )
        )
    track = TrackInfo(
        1, "video", 90_000, avc_codec_string(sps), avc_decoder_config([sps], [pps]), W, H
    )
    return track, samples


def encode_audio(frames: int) -> tuple[TrackInfo, list[Sample]]:
    enc = av.CodecContext.create("aac", "w")
    enc.sample_rate, enc.layout, enc.format = 48_000, "stereo", "fltp"
    enc.bit_rate = 96_000
    enc.time_base = Fraction(1, 48_000)
    packets = []
    t = np.arange(1024) / 48_000
    for i in range(frames):
        tone = np.sin(2 * np.pi * 440 * (t + i * 1024 / 48_000)).astype(np.float32) * 0.2
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = i * 1024
        packets.extend(enc.encode(frame))
    packets.extend(enc.encode(None))
    asc = bytes(enc.extradata or b"")
    samples = [
        Sample(data=bytes(p), dts=k * 1024, duration=1024, keyframe=True)
        for k, p in enumerate(packets)
    ]
    track = TrackInfo(
        2, "audio", 48_000, aac_codec_string(asc), asc, sample_rate=48_000, channels=2
    )
    return track, samples


@pytest.fixture(scope="module")
def video() -> tuple[TrackInfo, list[Sample]]:
    return encode_video(60)


def parts_of(
    track: TrackInfo, samples: list[Sample], per_part: int, per_segment: int
) -> list[bytes]:
    out = []
    for k in range(0, len(samples), per_part):
        out.append(
            fragment(
                track,
                k // per_part + 1,
                samples[k : k + per_part],
                segment_start=k % per_segment == 0,
            )
        )
    return out


def test_video_frames_carry_the_barcode(video: tuple[TrackInfo, list[Sample]]) -> None:
    track, samples = video
    clock = ManualClock(wall_us=BASE_MS * 1000 + 2_000_000)
    dec = TrackDecoder(init_segment(track), clock=clock)
    assert dec.kind == "video" and dec.track.width == W
    frames = []
    for part in parts_of(track, samples, 6, 30):
        frames.extend(dec.decode(part))
    frames.extend(dec.flush())
    assert len(frames) == 60 == dec.frames
    assert [f.pts for f in frames] == [i * FRAME_TICKS for i in range(60)]
    assert [f.barcode_ms for f in frames] == [BASE_MS + i * 33 for i in range(60)]
    # prft anchors each part's first frame; later frames follow by their pts
    assert all(abs(f.capture_us - (BASE_MS + i * 33) * 1000) < 2000 for i, f in enumerate(frames))
    assert frames[6].capture_us == (BASE_MS + 6 * 33) * 1000
    assert frames[0].decoded_us == clock.wall_us()
    assert frames[1].pts_us == 33_333
    assert glass_to_glass_s(frames[0].decoded_us, frames[0].barcode_ms or 0) == pytest.approx(2.0)
    assert frames[0].frame is None
    assert dec.errors == 0


def test_parts_and_whole_segment_decode_alike(video: tuple[TrackInfo, list[Sample]]) -> None:
    track, samples = video
    by_part = TrackDecoder(init_segment(track), read_barcode=False)
    whole = TrackDecoder(init_segment(track), read_barcode=False)
    parts = parts_of(track, samples[:30], 6, 30)
    a = [f.pts for p in parts for f in by_part.decode(p)]
    b = [f.pts for f in whole.decode(b"".join(parts))]
    assert a == b == [i * FRAME_TICKS for i in range(30)]


def test_a_missing_part_waits_for_the_next_key_frame(video: tuple[TrackInfo, list[Sample]]) -> None:
    track, samples = video
    dec = TrackDecoder(init_segment(track))
    parts = parts_of(track, samples, 5, 15)  # key frame every 15 frames = every 3rd part
    frames = []
    for index, part in enumerate(parts):
        if index == 1:
            continue  # lost
        frames.extend(dec.decode(part))
    pts = [f.pts // FRAME_TICKS for f in frames]
    assert pts == list(range(5)) + list(range(15, 60))
    assert all(f.barcode_ms == BASE_MS + p * 33 for f, p in zip(frames, pts, strict=True))


def test_luma_plane_is_the_y_plane_without_copy(video: tuple[TrackInfo, list[Sample]]) -> None:
    track, samples = video
    dec = TrackDecoder(init_segment(track), keep_frames=True)
    frames = dec.decode(parts_of(track, samples[:6], 6, 30)[0])
    frame = frames[0].frame
    assert isinstance(frame, av.VideoFrame)
    y = luma_plane(frame)
    assert y.shape == (H, W)
    assert not y.flags.owndata
    assert y.base is not None
    # limited-range luma as decoded (white ~235, black ~16); "gray" conversion is full range
    assert 225 <= int(y[2, 2]) <= 245 and 6 <= int(y[2, W - 2]) <= 26
    assert barcode.decode_luma(y) == BASE_MS
    gray = np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
    assert barcode.decode_luma(gray) == BASE_MS


def test_audio_decodes_aac() -> None:
    track, samples = encode_audio(40)
    dec = TrackDecoder(init_segment(track))
    assert dec.kind == "audio"
    frames = []
    for part in parts_of(track, samples, 10, 40):
        frames.extend(dec.decode(part))
    frames.extend(dec.flush())
    assert len(frames) >= 38
    assert all(f.kind == "audio" and f.samples == 1024 and f.barcode_ms is None for f in frames)
    assert frames[1].pts - frames[0].pts == 1024


def test_garbage_is_dropped_not_raised(video: tuple[TrackInfo, list[Sample]]) -> None:
    track, _ = video
    dec = TrackDecoder(init_segment(track))
    assert dec.decode(b"\x00\x00\x00\x08junk") == []
    assert dec.errors == 1


def test_latency_helpers() -> None:
    assert glass_to_glass_s(1_700_000_001_250_000, 1_700_000_000_000) == pytest.approx(1.25)
    assert prft_latency_s(5_000_000, 4_200_000) == pytest.approx(0.8)
