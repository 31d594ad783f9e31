"""Pipeline: source -> encoders -> chunker -> CMAF -> a sink (the origin's store).

Two layers:

* :class:`TrackPackager` is pure: samples in, :class:`Sink` calls out (CMAF
  header, parts, segment ends). It owns the chunker and the CMAF writer for
  one rendition.
* :class:`LivePipeline` is the threaded adapter: one thread reads the source
  (paced in real time for live), one worker thread per rendition scales,
  encodes and packages (PyAV releases the GIL while encoding and scaling, so
  renditions encode in parallel). The sink is called from worker threads and
  must be thread-safe; the live app marshals the calls onto the event loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import av

from llhls.cmaf.writer import fragment, init_segment
from llhls.errors import ConfigError, LLHLSError
from llhls.media import Sample, TrackInfo
from llhls.timing import MICROS
from packager.chunker import (
    Chunker,
    GridConfig,
    PartDone,
    SegmentDone,
    declared_part_target,
)
from packager.encode import DEFAULT_LADDER, AudioEncoder, Rung, VideoEncoder
from packager.sources import AudioItem, Item, Source, VideoItem

__all__ = [
    "AUDIO_RID",
    "PackagerConfig",
    "PartOut",
    "Sink",
    "TrackPackager",
    "LivePipeline",
    "StreamPlan",
    "plan_stream",
]

log = logging.getLogger(__name__)

AUDIO_RID = "audio"
"""Rendition id of the audio track."""

AAC_FRAME = 1024


@dataclass(frozen=True, slots=True)
class PackagerConfig:
    """What to produce from a source."""

    part_target: Fraction = Fraction(1, 5)
    """Nominal part duration in seconds (rounded to whole video frames)."""
    segment: Fraction = Fraction(2)
    """Nominal segment duration in seconds (rounded to whole parts)."""
    ladder: tuple[Rung, ...] = DEFAULT_LADDER
    """Video renditions, highest first."""
    audio: bool = True
    """Package the source's audio (when it has any) as its own rendition."""
    audio_bitrate: int = 96_000
    """AAC bit rate in bit/s."""
    low_latency: bool = True
    """LL-HLS with parts; False = classic HLS (whole segments only)."""

    def __post_init__(self) -> None:
        if self.part_target <= 0:
            raise ConfigError(f"--part-target must be positive, got {float(self.part_target):g}")
        if self.segment <= 0:
            raise ConfigError(f"--segment must be positive, got {float(self.segment):g}")
        if self.low_latency and self.segment < self.part_target:
            raise ConfigError(
                f"--segment ({float(self.segment):g} s) must not be shorter than "
                f"--part-target ({float(self.part_target):g} s)"
            )
        if not self.ladder:
            raise ConfigError("the ladder needs at least one rendition")


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """Timing shared by every rendition of one stream."""

    grid: GridConfig
    """The cutting grid (parts and segments)."""
    gop_frames: int
    """Frames per GOP: one key frame at every segment start."""
    declared_part_target: Fraction | None
    """EXT-X-PART-INF PART-TARGET (None for classic HLS)."""
    segment_duration: Fraction
    """Nominal segment duration in seconds."""


def plan_stream(config: PackagerConfig, fps: Fraction, sample_rate: int | None) -> StreamPlan:
    """Derive the grid, GOP length and declared PART-TARGET for a source."""
    if config.low_latency:
        audio = [Fraction(AAC_FRAME, sample_rate)] if sample_rate else []
        grid = GridConfig.for_video(fps, config.part_target, config.segment, audio)
        target: Fraction | None = declared_part_target(grid.part_duration, [1 / fps, *audio])
    else:
        # classic HLS: one "part" per segment, never advertised
        seg_frames = max(1, round(config.segment * fps))
        grid = GridConfig(Fraction(seg_frames) / fps, 1)
        target = None
    gop = round(grid.segment_duration * fps)
    return StreamPlan(grid, gop, target, grid.segment_duration)


@dataclass(frozen=True, slots=True)
class PartOut:
    """One packaged part, as published."""

    msn: int
    """Media sequence number of the parent segment."""
    index: int
    """Part index within the parent."""
    data: bytes
    """The CMAF chunk (``[styp] prft moof mdat``)."""
    duration: Fraction
    """Exact duration in seconds."""
    independent: bool
    """Starts with a sync sample."""
    pdt_us: int
    """UTC wall-clock capture time of the first sample (microseconds)."""
    last_capture_us: int = 0
    """UTC wall-clock capture time of the last sample (microseconds)."""
    ends_segment: bool = False
    """The last part of its segment: the sink must close the segment together with
    publishing it (one atomic update), so no playlist ever hints a part that never
    comes (``partM.N`` past the segment's end)."""


class Sink(Protocol):
    """Receives packaged media; called from worker threads."""

    def track_ready(self, rid: str, track: TrackInfo, init: bytes) -> None:
        """The CMAF header of rendition ``rid`` (once, before its first part)."""

    def part_ready(self, rid: str, part: PartOut) -> None:
        """A new part of rendition ``rid``, in order; ``part.ends_segment`` closes its
        segment in the same update."""

    def segment_ready(self, rid: str, msn: int) -> None:
        """Segment ``msn`` of ``rid`` has all its parts (only when no part closed it)."""

    def finished(self, error: LLHLSError | None) -> None:
        """The pipeline stopped (after every rendition flushed), or failed."""


class TrackPackager:
    """Pure: one rendition's samples -> CMAF parts -> sink calls."""

    def __init__(self, rid: str, grid: GridConfig, sink: Sink) -> None:
        self.rid = rid
        self._grid = grid
        self._sink = sink
        self._track: TrackInfo | None = None
        self._chunker: Chunker | None = None
        self._sequence = 0
        self.parts = 0
        self.bytes = 0

    def push(self, track: TrackInfo | None, samples: list[Sample]) -> None:
        """Package ``samples``; ``track`` must be known once samples flow."""
        if not samples:
            return
        if self._track is None:
            if track is None:
                raise LLHLSError(f"rendition {self.rid}: samples before the track is known")
            self._track = track
            self._chunker = Chunker(track.timescale, self._grid)
            self._sink.track_ready(self.rid, track, init_segment(track))
        assert self._chunker is not None
        for sample in samples:
            self._emit(self._chunker.push(sample))

    def flush(self) -> None:
        """Close the last part and segment."""
        if self._chunker is not None:
            self._emit(self._chunker.flush())

    def _emit(self, events: list[PartDone | SegmentDone]) -> None:
        assert self._track is not None
        closed_with_part: set[int] = set()
        for i, event in enumerate(events):
            if isinstance(event, PartDone):
                self._sequence += 1
                data = fragment(
                    self._track, self._sequence, event.samples, segment_start=event.segment_start
                )
                self.parts += 1
                self.bytes += len(data)
                following = events[i + 1] if i + 1 < len(events) else None
                ends = isinstance(following, SegmentDone) and following.msn == event.msn
                if ends:
                    closed_with_part.add(event.msn)
                self._sink.part_ready(
                    self.rid,
                    PartOut(
                        msn=event.msn,
                        index=event.index,
                        data=data,
                        duration=Fraction(event.duration, self._track.timescale),
                        independent=event.independent,
                        pdt_us=event.samples[0].capture_us,
                        last_capture_us=event.samples[-1].capture_us,
                        ends_segment=ends,
                    ),
                )
            elif event.msn not in closed_with_part:
                self._sink.segment_ready(self.rid, event.msn)


_STOP = object()


class LivePipeline:
    """Threads: a source reader and one encoder worker per rendition."""

    def __init__(
        self,
        source: Source,
        config: PackagerConfig,
        sink: Sink,
        *,
        duration: float | None = None,
        paced: bool = True,
    ) -> None:
        self.source = source
        self.config = config
        self.sink = sink
        self.duration = duration
        self.paced = paced
        has_audio = config.audio and source.has_audio
        self.plan = plan_stream(config, source.fps, source.sample_rate if has_audio else None)
        self.rids: list[str] = [rung.id for rung in config.ladder]
        if has_audio:
            self.rids.append(AUDIO_RID)
        self._stop = threading.Event()
        self._queues: dict[str, queue.Queue[object]] = {rid: queue.Queue() for rid in self.rids}
        self._threads: list[threading.Thread] = []
        self._error: LLHLSError | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self.frames = 0
        self.late_frames = 0
        self.encode_s: dict[str, float] = {rid: 0.0 for rid in self.rids}
        self.packagers: dict[str, TrackPackager] = {}
        self._end: Fraction | None = None  # media time where video ended, set before _STOP

    def start(self) -> None:
        """Start the threads."""
        for rung in self.config.ladder:
            encoder = VideoEncoder(rung, self.source.fps, self.plan.gop_frames, track_id=1)
            packager = TrackPackager(rung.id, self.plan.grid, self.sink)
            self.packagers[rung.id] = packager
            self._spawn(f"encode-{rung.id}", self._video_worker, rung.id, encoder, packager)
        if AUDIO_RID in self.rids:
            audio = AudioEncoder(
                self.source.sample_rate,
                self.source.channels,
                bitrate=self.config.audio_bitrate,
                track_id=1,
            )
            packager = TrackPackager(AUDIO_RID, self.plan.grid, self.sink)
            self.packagers[AUDIO_RID] = packager
            self._spawn("encode-audio", self._audio_worker, AUDIO_RID, audio, packager)
        reader = threading.Thread(target=self._read, name="source", daemon=True)
        self._threads.append(reader)
        reader.start()
        threading.Thread(target=self._finish_when_done, name="pipeline-end", daemon=True).start()

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        """Ask the pipeline to stop; the renditions flush their last part."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every thread finished; True when they did."""
        return self._done.wait(timeout)

    @property
    def error(self) -> LLHLSError | None:
        """The first error that stopped the pipeline, if any."""
        return self._error

    def _fail(self, error: LLHLSError) -> None:
        with self._lock:
            if self._error is None:
                self._error = error
        self._stop.set()

    def _items(self) -> Iterator[Item]:
        return self.source.live() if self.paced else self.source.items()

    def _read(self) -> None:
        start_us: int | None = None
        video_rids = [rung.id for rung in self.config.ladder]
        frames = 0
        try:
            for item in self._items():
                if self._stop.is_set():
                    break
                if start_us is None:
                    start_us = item.capture_us
                if (
                    self.duration is not None
                    and item.capture_us - start_us >= self.duration * MICROS
                ):
                    break
                if isinstance(item, VideoItem):
                    self.frames += 1
                    frames = item.index + 1
                    if self.paced:
                        lag = time.time_ns() // 1000 - item.capture_us
                        if lag > 100_000:
                            self.late_frames += 1
                    frame = item.frame
                    if frame.format.name != "yuv420p":
                        # convert once; each rung then only scales
                        frame = frame.reformat(format="yuv420p")
                    shared = VideoItem(frame, item.index, item.capture_us)
                    for rid in video_rids:
                        self._queues[rid].put(shared)
                elif AUDIO_RID in self._queues:
                    self._queues[AUDIO_RID].put(item)
        except LLHLSError as exc:
            self._fail(exc)
        except (av.FFmpegError, OSError, ValueError) as exc:
            self._fail(LLHLSError(f"source failed: {exc}"))
        finally:
            # audio stops where the video stopped (to the nearest AAC frame), so
            # every rendition ends with the same segment
            self._end = Fraction(frames) / self.source.fps
            for q in self._queues.values():
                q.put(_STOP)

    def _video_worker(self, rid: str, encoder: VideoEncoder, packager: TrackPackager) -> None:
        try:
            while True:
                item = self._queues[rid].get()
                if item is _STOP:
                    break
                assert isinstance(item, VideoItem)
                t0 = time.perf_counter()
                samples = encoder.encode(item.frame, item.index, item.capture_us)
                packager.push(encoder.track_info, samples)
                self.encode_s[rid] += time.perf_counter() - t0
            packager.push(encoder.track_info, encoder.flush())
            packager.flush()
        except LLHLSError as exc:
            self._fail(exc)
            self._drain(rid)

    def _audio_worker(self, rid: str, encoder: AudioEncoder, packager: TrackPackager) -> None:
        try:
            while True:
                item = self._queues[rid].get()
                if item is _STOP:
                    break
                assert isinstance(item, AudioItem)
                t0 = time.perf_counter()
                samples = encoder.encode(item.frame, item.first_sample, item.capture_us)
                packager.push(encoder.track_info, samples)
                self.encode_s[rid] += time.perf_counter() - t0
            end = self._end
            rate = encoder.track_info.timescale
            tail = [
                s
                for s in encoder.flush()
                if end is None or (2 * s.dts + s.duration) <= 2 * end * rate
            ]
            packager.push(encoder.track_info, tail)
            packager.flush()
        except LLHLSError as exc:
            self._fail(exc)
            self._drain(rid)

    def _drain(self, rid: str) -> None:
        while self._queues[rid].get() is not _STOP:
            pass

    def _finish_when_done(self) -> None:
        for thread in self._threads:
            thread.join()
        try:
            self.source.close()
        finally:
            self.sink.finished(self._error)
            self._done.set()

    def queue_depths(self) -> Mapping[str, int]:
        """Items waiting per rendition (a growing number means encoding falls behind)."""
        return {rid: q.qsize() for rid, q in self._queues.items()}
