"""Tests of packager.sources: testsrc, file sources, pacing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from llhls import barcode
from llhls.errors import ConfigError, SourceError
from llhls.timing import ManualClock
from packager.sources import (
    AAC_FRAME,
    AudioItem,
    FileSource,
    Item,
    Source,
    TestSource,
    VideoItem,
    draw_pattern,
    draw_text,
    format_clock,
    frame_time_us,
    make_pattern,
    open_source,
    paced,
    sample_time_us,
    tone,
)

START = 1_700_000_000_000_000  # a whole UTC second


def make_media(
    path: Path,
    seconds: float = 1.0,
    fps: int = 25,
    size: tuple[int, int] = (160, 90),
    audio_rate: int | None = 44100,
    channels: int = 2,
) -> Path:
    """Write a small H.264 (+ AAC) MP4 with PyAV."""
    width, height = size
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=audio_rate, layout=layout) if audio_rate else None
        frames = round(seconds * fps)
        for i in range(frames):
            rgb = np.full((height, width, 3), (i * 10) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if audio is not None and audio_rate:
            total = round(seconds * audio_rate)
            for k in range(0, total, AAC_FRAME):
                count = min(AAC_FRAME, total - k)
                mono = 0.1 * np.sin(2 * np.pi * 440 * np.arange(k, k + count) / audio_rate)
                samples = np.repeat(mono[np.newaxis].astype(np.float32), channels, axis=0)
                block = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
                block.sample_rate = audio_rate
                block.pts = k
                block.time_base = Fraction(1, audio_rate)
                for packet in audio.encode(block):
                    out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)
    return path


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def av_file(media_dir: Path) -> Path:
    return make_media(media_dir / "av.mp4")


@pytest.fixture(scope="module")
def video_only_file(media_dir: Path) -> Path:
    return make_media(media_dir / "video.mp4", seconds=0.6, fps=30, audio_rate=None)


def split(items: list[Item]) -> tuple[list[VideoItem], list[AudioItem]]:
    video = [i for i in items if isinstance(i, VideoItem)]
    audio = [i for i in items if isinstance(i, AudioItem)]
    return video, audio


# ----------------------------------------------------------------- pure helpers


def test_timing_is_exact_integer_math() -> None:
    assert frame_time_us(START, 0, Fraction(30)) == START
    assert frame_time_us(START, 1, Fraction(30)) == START + 33_333
    assert frame_time_us(START, 30, Fraction(30)) == START + 1_000_000
    assert frame_time_us(START, 30_000, Fraction(30000, 1001)) == START + 1_001_000_000
    assert sample_time_us(START, 1024, 48000) == START + 21_333
    assert sample_time_us(START, 48000 * 3600, 48000) == START + 3_600_000_000


def test_format_clock() -> None:
    assert format_clock(0) == "00:00:00.000"
    assert format_clock(1_700_000_000_123) == "22:13:20.123"
    assert format_clock(86_399_999) == "23:59:59.999"


def test_draw_text_glyphs_differ_and_clip() -> None:
    masks = []
    for digit in "0123456789":
        canvas = np.zeros((40, 40, 3), np.uint8)
        end = draw_text(canvas, digit, 2, 2, 30)
        assert end > 2
        masks.append(canvas[..., 0] > 0)
    for a, b in itertools.combinations(range(10), 2):
        assert not np.array_equal(masks[a], masks[b]), (a, b)
    canvas = np.zeros((10, 10, 3), np.uint8)
    draw_text(canvas, "88:88.8", 5, 5, 30)  # runs off the canvas: clipped, no error
    with pytest.raises(ValueError):
        draw_text(canvas, "x", 0, 0, 10)


def test_tone_level_continuity_and_click() -> None:
    rate = 48000
    whole = tone(0, 4096, rate, START + 500_000)  # no second boundary inside
    assert whole.dtype == np.float32
    assert abs(float(np.abs(whole).max()) - 0.1) < 1e-3  # -20 dBFS peak
    parts = np.concatenate([tone(k, 1024, rate, START + 500_000) for k in range(0, 4096, 1024)])
    np.testing.assert_array_equal(whole, parts)
    clicked = tone(0, 1024, rate, START)  # the block starts on a UTC second
    click_len = 5 * rate // 1000
    assert float(np.abs(clicked[:click_len]).max()) > 0.3
    assert float(np.abs(clicked[click_len + 1 :]).max()) < 0.11


def test_pattern_moves_and_carries_barcode() -> None:
    pattern = make_pattern(320, 180)
    frames = []
    for index in range(3):
        rgb = np.zeros((180, 320, 3), np.uint8)
        draw_pattern(rgb, index, Fraction(30), 1_700_000_000_000 + index, pattern)
        assert barcode.decode_rgb(rgb) == 1_700_000_000_000 + index
        frames.append(rgb)
    band = barcode.band_height(180)
    assert not np.array_equal(frames[0][band:], frames[1][band:])
    with pytest.raises(ConfigError):
        make_pattern(320, 180, grain=300)


# ----------------------------------------------------------------- testsrc


def test_testsrc_properties_and_protocol() -> None:
    source: Source = TestSource()
    assert (source.width, source.height, source.fps) == (1280, 720, Fraction(30))
    assert (source.has_audio, source.sample_rate, source.channels) == (True, 48000, 2)
    silent = TestSource(320, 180, audio=False)
    assert (silent.has_audio, silent.sample_rate, silent.channels) == (False, 0, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 321},
        {"height": 8},
        {"width": 32},
        {"fps": Fraction(0)},
        {"sample_rate": 12345},
        {"channels": 6},
    ],
)
def test_testsrc_rejects_bad_config(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        TestSource(**kwargs)  # type: ignore[arg-type]


def test_testsrc_items_in_capture_order_with_barcode() -> None:
    source = TestSource(320, 180, fps=Fraction(30))
    items = list(itertools.islice(source.items(START), 200))
    captures = [item.capture_us for item in items]
    assert captures == sorted(captures)
    video, audio = split(items)
    assert [v.index for v in video] == list(range(len(video)))
    for v in video:
        assert v.capture_us == frame_time_us(START, v.index, Fraction(30))
        assert v.frame.width == 320 and v.frame.height == 180
        rgb = np.asarray(v.frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        assert barcode.decode_rgb(rgb) == v.capture_us // 1000
    for n, a in enumerate(audio):
        assert a.first_sample == n * AAC_FRAME
        assert a.capture_us == sample_time_us(START, a.first_sample, 48000)
        assert a.frame.samples == AAC_FRAME
        assert a.frame.format.name == "fltp" and a.frame.layout.name == "stereo"
        assert a.frame.sample_rate == 48000
    # The first audio block starts on a UTC second: it carries the click.
    assert float(np.abs(audio[0].frame.to_ndarray()).max()) > 0.3


def test_testsrc_ntsc_rate() -> None:
    source = TestSource(160, 90, fps=Fraction(30000, 1001), audio=False)
    video, _ = split(list(itertools.islice(source.items(0), 31)))
    assert video[30].capture_us == 1_001_000


def test_testsrc_live_is_paced_on_the_clock() -> None:
    clock = ManualClock(wall_us=START)
    source = TestSource(160, 90, clock=clock)
    released = []
    for item in itertools.islice(source.live(sleep=clock.advance), 50):
        released.append((item.capture_us, clock.wall_us()))
    assert released[0][0] == START
    for capture, now in released:
        assert now >= capture
        assert now - capture < 2  # released as soon as due (float rounding aside)
    assert clock.wall_us() >= released[-1][0]


def test_paced_never_sleeps_for_items_already_due() -> None:
    clock = ManualClock(wall_us=START + 10_000_000)
    slept: list[float] = []
    source = TestSource(160, 90, audio=False)
    items = list(paced(itertools.islice(source.items(START), 10), clock, slept.append))
    assert len(items) == 10 and slept == []


# ----------------------------------------------------------------- files


def test_file_source_properties(av_file: Path) -> None:
    source = FileSource(av_file)
    try:
        assert (source.width, source.height, source.fps) == (160, 90, Fraction(25))
        assert (source.has_audio, source.sample_rate, source.channels) == (True, 44100, 2)
    finally:
        source.close()


def test_file_source_once(av_file: Path) -> None:
    source = FileSource(av_file, loop=False)
    items = list(source.items(START))
    video, audio = split(items)
    assert len(video) == 25
    assert [v.capture_us for v in video] == [START + 40_000 * n for n in range(25)]
    assert [a.first_sample for a in audio] == [n * AAC_FRAME for n in range(len(audio))]
    assert all(a.frame.samples == AAC_FRAME for a in audio)
    assert all(a.capture_us == sample_time_us(START, a.first_sample, 44100) for a in audio)
    # Audio covers the video's second, padded to whole blocks.
    assert 44100 <= len(audio) * AAC_FRAME < 44100 + AAC_FRAME
    captures = [item.capture_us for item in items]
    assert captures == sorted(captures)


def test_file_source_loops_without_drift(av_file: Path) -> None:
    source = FileSource(av_file, loop=True)
    items = list(itertools.islice(source.items(START), 400))
    video, audio = split(items)
    assert [v.index for v in video] == list(range(len(video)))
    assert video[-1].capture_us == frame_time_us(START, video[-1].index, Fraction(25))
    assert len(video) > 75  # at least three passes
    assert [a.first_sample for a in audio] == [n * AAC_FRAME for n in range(len(audio))]
    # Audio and video stay within one AAC block of each other.
    assert abs(audio[-1].capture_us - video[-1].capture_us) < 2 * 23_220
    captures = [item.capture_us for item in items]
    assert captures == sorted(captures)
    # Pictures repeat with the file: frame 25 is frame 0 again.
    first = video[0].frame.to_ndarray(format="rgb24")
    again = video[25].frame.to_ndarray(format="rgb24")
    assert np.abs(first.astype(int) - again.astype(int)).max() <= 2


def test_file_source_video_only(video_only_file: Path) -> None:
    source = open_source(str(video_only_file), loop=False)
    assert not source.has_audio and source.sample_rate == 0
    video, audio = split(list(source.items(0)))
    assert len(video) == 18 and audio == []
    assert video[-1].capture_us == 17 * 1_000_000 // 30


def test_file_source_mono_and_resampled(media_dir: Path) -> None:
    path = make_media(media_dir / "mono.mp4", seconds=0.5, audio_rate=8000, channels=1)
    source = FileSource(path)
    assert (source.sample_rate, source.channels) == (8000, 1)
    _, audio = split(list(source.items(0)))
    assert audio and all(a.frame.layout.name == "mono" for a in audio)


def test_file_source_live_on_manual_clock(av_file: Path) -> None:
    clock = ManualClock(wall_us=START)
    source = FileSource(av_file, loop=True, clock=clock)
    last = 0
    for item in itertools.islice(source.live(sleep=clock.advance), 60):
        assert clock.wall_us() >= item.capture_us >= last
        last = item.capture_us


def test_unreadable_sources(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match="nope.mp4"):
        FileSource(missing)
    with pytest.raises(SourceError, match="nope.mp4"):
        open_source(str(missing))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a media file" * 10)
    with pytest.raises(SourceError, match="junk.mp4"):
        FileSource(junk)
    with pytest.raises(SourceError, match="bogus"):
        open_source("bogus")
    with pytest.raises(SourceError):
        open_source("")


def test_open_source_testsrc() -> None:
    source = open_source("testsrc")
    assert isinstance(source, TestSource)
    first: Iterator[Item] = source.items(START)
    item = next(first)
    assert isinstance(item, VideoItem) and item.capture_us == START
