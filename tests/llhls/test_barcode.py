"""Tests of the clock barcode (llhls.barcode)."""

from __future__ import annotations

import itertools
import time
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llhls import barcode
from llhls.barcode import (
    CELLS,
    MAX_MS,
    band_height,
    cell_bits,
    cell_bounds,
    crc8,
    decode_luma,
    decode_rgb,
    encode_into,
)
from packager.encode import Rung, VideoEncoder
from packager.sources import TestSource

MS = 1_700_000_000_000

# Golden vector shared with the JavaScript decoder (web/): cells of MS.
GOLDEN_BITS = "10" + "000000011000101111001111111001010110100000000000" + "00101010" + "101010"


def to_luma(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """BT.601 limited-range luma, as a decoder of yuv420p hands it back."""
    y = 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0
    out: npt.NDArray[np.uint8] = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return out


def frame_with(ms: int, width: int = 640, height: int = 360) -> npt.NDArray[np.uint8]:
    rgb = np.full((height, width, 3), 90, dtype=np.uint8)
    encode_into(rgb, ms)
    return rgb


def test_crc8_check_value() -> None:
    assert crc8(b"123456789") == 0xF4  # the catalogue check value of CRC-8 (0x07)
    assert crc8(b"") == 0
    assert crc8(b"\x00") == 0
    assert crc8(b"\x01") == 0x07


def test_cell_bits_golden() -> None:
    assert "".join(map(str, cell_bits(MS).tolist())) == GOLDEN_BITS
    bits = cell_bits(0)
    assert bits.shape == (CELLS,)
    assert bits[:2].tolist() == [1, 0]
    assert bits[58:].tolist() == [1, 0, 1, 0, 1, 0]
    assert not bits[2:58].any()


def test_geometry() -> None:
    assert band_height(720) == 72
    assert band_height(360) == 36
    assert band_height(45) == 5  # halves round up, like JavaScript Math.round
    assert band_height(44) == 4
    bounds = cell_bounds(1000)
    assert bounds[0] == 0 and bounds[-1] == 1000 and len(bounds) == CELLS + 1
    assert bounds[1] == 15  # floor(1000 / 64)
    assert bounds[3] == 46  # floor(3 * 1000 / 64)


def test_encode_draws_only_the_band() -> None:
    rgb = frame_with(MS, 1280, 720)
    assert (rgb[72:] == 90).all()
    bounds = cell_bounds(1280)
    for i, bit in enumerate(GOLDEN_BITS):
        cell = rgb[:72, bounds[i] : bounds[i + 1]]
        assert (cell == (255 if bit == "1" else 0)).all()


@pytest.mark.parametrize("ms", [0, 1, MS, MAX_MS, 2**47, 123_456_789])
def test_round_trip_rgb_and_luma(ms: int) -> None:
    rgb = frame_with(ms)
    assert decode_rgb(rgb) == ms
    assert decode_luma(to_luma(rgb)) == ms


@settings(max_examples=60, deadline=None)
@given(
    ms=st.integers(0, MAX_MS),
    width=st.integers(160, 1920),
    height=st.integers(90, 1080),
    background=st.integers(0, 255),
)
def test_round_trip_any_size(ms: int, width: int, height: int, background: int) -> None:
    rgb = np.full((height, width, 3), background, dtype=np.uint8)
    encode_into(rgb, ms)
    assert decode_rgb(rgb) == ms
    assert decode_luma(to_luma(rgb)) == ms


@settings(max_examples=40, deadline=None)
@given(ms=st.integers(0, MAX_MS), seed=st.integers(0, 2**32 - 1))
def test_survives_mild_noise_and_level_shift(ms: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = to_luma(frame_with(ms, 320, 180)).astype(np.int16)
    y += rng.integers(-40, 41, size=y.shape, dtype=np.int16)  # heavy pixel noise
    y = (y * 0.7 + 30).astype(np.int16)  # lower contrast, lifted blacks
    assert decode_luma(np.clip(y, 0, 255).astype(np.uint8)) == ms


def test_every_single_cell_flip_is_rejected() -> None:
    y = to_luma(frame_with(MS))
    bounds = cell_bounds(y.shape[1])
    band = band_height(y.shape[0])
    for i in range(CELLS):
        bad = y.copy()
        cell = bad[:band, bounds[i] : bounds[i + 1]]
        cell[...] = np.where(cell > 128, 16, 235)
        assert decode_luma(bad) is None, f"cell {i} flipped still decoded"


def test_every_double_bit_error_is_rejected() -> None:
    profile_bits = cell_bits(MS)
    height = 20  # 128 columns: two per cell
    for i, j in itertools.combinations(range(2, 58), 2):
        bits = profile_bits.copy()
        bits[i] ^= 1
        bits[j] ^= 1
        columns = np.repeat(np.where(bits == 1, 235, 16).astype(np.uint8), 2)
        y = np.tile(columns, (height, 1))
        assert decode_luma(y) is None, (i, j)


def test_ambiguous_cell_is_rejected() -> None:
    y = to_luma(frame_with(MS))
    bounds = cell_bounds(y.shape[1])
    y[:36, bounds[30] : bounds[31]] = 125  # halfway grey: neither bit
    assert decode_luma(y) is None


@pytest.mark.parametrize("level", [0, 16, 128, 235, 255])
def test_flat_frames_do_not_decode(level: int) -> None:
    assert decode_luma(np.full((360, 640), level, dtype=np.uint8)) is None
    assert decode_rgb(np.full((360, 640, 3), level, dtype=np.uint8)) is None


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), block=st.sampled_from([1, 4, 10, 40]))
def test_random_pictures_never_decode(seed: int, block: int) -> None:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(90 // block + 1, 640 // block + 1), dtype=np.uint8)
    y = np.kron(coarse, np.ones((block, block), dtype=np.uint8))[:90, :640]
    assert decode_luma(np.ascontiguousarray(y)) is None


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        encode_into(np.zeros((360, 640, 3), np.uint8), -1)
    with pytest.raises(ValueError):
        encode_into(np.zeros((360, 640, 3), np.uint8), MAX_MS + 1)
    with pytest.raises(ValueError):
        encode_into(np.zeros((360, 640), np.uint8), 0)
    with pytest.raises(ValueError):
        encode_into(np.zeros((360, 32, 3), np.uint8), 0)
    with pytest.raises(ValueError):
        decode_luma(np.zeros((360, 640, 3), np.uint8))
    with pytest.raises(ValueError):
        decode_rgb(np.zeros((360, 640), np.uint8))
    assert decode_luma(np.zeros((360, 32), np.uint8)) is None
    assert decode_rgb(np.zeros((4, 640, 3), np.uint8)) is None


def test_decode_is_fast() -> None:
    y = to_luma(frame_with(MS, 1280, 720))
    rgb = frame_with(MS, 1280, 720)
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        assert decode_luma(y) == MS
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[len(timings) // 2] < 1e-3
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        assert decode_rgb(rgb) == MS
        timings.append(time.perf_counter() - start)
    assert sorted(timings)[len(timings) // 2] < 2e-3


def test_survives_h264_at_640x360_400k() -> None:
    """testsrc -> libx264 (640x360, 400 kbit/s) -> PyAV decode: every frame reads exactly."""
    source = TestSource(audio=False)
    encoder = VideoEncoder(Rung("low", 640, 360, 400_000), Fraction(30), gop_frames=30)
    start_us = 1_700_000_000_123_456
    expected: dict[int, int] = {}
    samples = []
    for index in range(60):
        item = source.video_item(index, start_us)
        samples += encoder.encode(item.frame, item.index, item.capture_us)
    samples += encoder.flush()
    info = encoder.track_info
    assert info is not None
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = info.codec_private
    decoded = 0
    for sample in samples:
        expected[sample.dts] = sample.capture_us // 1000
    frames: list[av.VideoFrame] = []
    for sample in samples:
        packet = av.Packet(sample.data)
        packet.pts = sample.dts
        frames += [f for f in decoder.decode(packet) if isinstance(f, av.VideoFrame)]
    frames += [f for f in decoder.decode(None) if isinstance(f, av.VideoFrame)]
    for frame in frames:
        plane = frame.planes[0]
        y = np.frombuffer(memoryview(plane), np.uint8).reshape(frame.height, plane.line_size)
        assert frame.pts is not None
        assert decode_luma(y[:, : frame.width]) == expected[frame.pts]
        decoded += 1
    assert decoded == 60
    last = frames[-1]
    assert last.pts is not None
    rgb = np.asarray(last.to_ndarray(format="rgb24"), dtype=np.uint8)
    assert barcode.decode_rgb(rgb) == expected[last.pts]
