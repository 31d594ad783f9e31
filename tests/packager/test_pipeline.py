"""The pipeline end to end (without the origin): testsrc -> encoders -> CMAF parts."""

from __future__ import annotations

import io
import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from llhls.barcode import decode_luma
from llhls.errors import LLHLSError
from llhls.media import TrackInfo
from packager.encode import Rung
from packager.pipeline import AUDIO_RID, LivePipeline, PackagerConfig, PartOut, plan_stream
from packager.sources import TestSource


class CollectingSink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inits: dict[str, bytes] = {}
        self.tracks: dict[str, TrackInfo] = {}
        self.parts: dict[str, list[PartOut]] = {}
        self.segments: dict[str, list[int]] = {}
        self.finished_with: list[LLHLSError | None] = []

    def track_ready(self, rid: str, track: TrackInfo, init: bytes) -> None:
        with self.lock:
            assert rid not in self.inits
            self.inits[rid] = init
            self.tracks[rid] = track

    def part_ready(self, rid: str, part: PartOut) -> None:
        with self.lock:
            assert rid in self.inits, "header before parts"
            self.parts.setdefault(rid, []).append(part)
            if part.ends_segment:
                self.segments.setdefault(rid, []).append(part.msn)

    def segment_ready(self, rid: str, msn: int) -> None:
        with self.lock:
            self.segments.setdefault(rid, []).append(msn)

    def finished(self, error: LLHLSError | None) -> None:
        self.finished_with.append(error)


LADDER = (Rung("360p", 640, 360, 600_000), Rung("180p", 320, 180, 200_000))


@pytest.fixture(scope="module")
def run() -> CollectingSink:
    sink = CollectingSink()
    source = TestSource(width=640, height=360)
    pipeline = LivePipeline(source, PackagerConfig(ladder=LADDER), sink, duration=4.0, paced=False)
    pipeline.start()
    assert pipeline.wait(60)
    return sink


def test_plan_for_defaults() -> None:
    plan = plan_stream(PackagerConfig(), Fraction(30), 48_000)
    assert plan.grid.part_duration == Fraction(1, 5)
    assert plan.grid.parts_per_segment == 10
    assert plan.gop_frames == 60
    assert plan.declared_part_target == Fraction(10 * 1024, 48_000)
    classic = plan_stream(
        PackagerConfig(low_latency=False, segment=Fraction(6)), Fraction(30), None
    )
    assert classic.declared_part_target is None and classic.gop_frames == 180


def test_every_rendition_has_aligned_parts_and_segments(run: CollectingSink) -> None:
    assert run.finished_with == [None]
    assert set(run.parts) == {"360p", "180p", AUDIO_RID}
    assert run.segments["360p"] == [0, 1] == run.segments["180p"] == run.segments[AUDIO_RID]
    video = [(p.msn, p.index, p.duration, p.independent) for p in run.parts["360p"]]
    assert video == [(p.msn, p.index, p.duration, p.independent) for p in run.parts["180p"]]
    assert len(video) == 20
    assert all(d == Fraction(1, 5) for _, _, d, _ in video)
    assert [ind for *_, ind in video] == [i % 10 == 0 for i in range(20)]
    # the last part of each segment closes it in the same update (no dangling hint)
    assert [p.ends_segment for p in run.parts["360p"]] == [i % 10 == 9 for i in range(20)]
    audio = run.parts[AUDIO_RID]
    assert [(p.msn, p.index) for p in audio] == [(m, i) for m in range(2) for i in range(10)]
    # the same part of every rendition starts within half an audio frame
    for a, v in zip(audio, run.parts["360p"], strict=True):
        assert abs(a.pdt_us - v.pdt_us) <= 11_000


def test_parts_decode_and_carry_the_barcode(run: CollectingSink) -> None:
    data = run.inits["360p"] + b"".join(p.data for p in run.parts["360p"])
    decoded = 0
    first_pdt = run.parts["360p"][0].pdt_us
    with av.open(io.BytesIO(data), mode="r") as container:
        for i, frame in enumerate(container.decode(video=0)):
            ms = decode_luma(np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8))
            assert ms is not None
            assert ms == (first_pdt + i * 1_000_000 // 30) // 1000
            decoded += 1
    assert decoded == 120


def test_audio_decodes(run: CollectingSink) -> None:
    data = run.inits[AUDIO_RID] + b"".join(p.data for p in run.parts[AUDIO_RID])
    with av.open(io.BytesIO(data), mode="r") as container:
        samples = sum(int(frame.samples) for frame in container.decode(audio=0))
    assert abs(samples - 4 * 48_000) <= 2048
