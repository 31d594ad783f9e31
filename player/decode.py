"""PyAV decode adapter: CMAF parts in, decoded frames (and the barcode) out.

One :class:`TrackDecoder` per rendition's CMAF header. It reads the header
with :func:`llhls.cmaf.read_init`, opens an ``av.CodecContext`` (H.264 with
the ``avcC`` record as extradata, or AAC with the AudioSpecificConfig), and
then takes the bytes of each part or segment as they arrive:
:func:`llhls.cmaf.read_fragment` yields the samples, each becomes one
``av.Packet``. This is incremental by construction (no container demuxer over
a growing buffer) and cheap: on a 640x360 H.264 stream, parsing costs about
0.04 ms per part and decoding about 0.08 ms per frame; re-opening
``av.open`` over a growing ``BytesIO`` for each part costs ~2.5 ms per frame
and grows with the stream.

Video frames get their barcode read from the luma plane *in place*
(:func:`luma_plane` is a zero-copy numpy view of the decoder's Y plane,
~0.04 ms per frame; ``frame.to_ndarray(format="gray")`` converts and costs
~1 ms at 640x360). Glass-to-glass latency is the wall time at decode (or
presentation) minus the barcode time: :func:`glass_to_glass_s`.

This module is an adapter: it calls PyAV. The only time it reads is from the
``Clock`` it is given (to stamp each frame's decode wall time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from av.audio.codeccontext import AudioCodecContext
from av.video.codeccontext import VideoCodecContext

from llhls.barcode import decode_luma
from llhls.cmaf import read_fragment, read_init
from llhls.errors import BoxError, PlayerError
from llhls.media import Sample, TrackInfo, TrackKind
from llhls.timing import MICROS, Clock, SystemClock, rescale

__all__ = [
    "DecodedFrame",
    "TrackDecoder",
    "luma_plane",
    "glass_to_glass_s",
    "prft_latency_s",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One decoded video frame or audio frame."""

    kind: TrackKind
    """``video`` or ``audio``."""
    pts: int
    """Presentation time in ticks of ``timescale``."""
    timescale: int
    """The track's timescale."""
    duration: int
    """Duration in ticks (the sample's)."""
    decoded_us: int
    """UTC wall clock (µs) when the decoder returned the frame."""
    capture_us: int
    """Capture wall clock from the fragment's ``prft`` (0 when unknown)."""
    barcode_ms: int | None
    """Video: the barcode's capture time in UTC ms, ``None`` when unreadable; audio: None."""
    width: int = 0
    """Video width in pixels (0 for audio)."""
    height: int = 0
    """Video height in pixels (0 for audio)."""
    samples: int = 0
    """Audio: PCM samples per channel (0 for video)."""
    frame: av.VideoFrame | av.AudioFrame | None = None
    """The PyAV frame itself when the decoder keeps frames (``keep_frames=True``)."""

    def __post_init__(self) -> None:
        if self.kind not in ("video", "audio"):
            raise ValueError(f"kind must be video or audio, got {self.kind!r}")
        if self.timescale <= 0:
            raise ValueError(f"timescale must be positive, got {self.timescale}")

    @property
    def pts_us(self) -> int:
        """Presentation time in microseconds of media time."""
        return rescale(self.pts, self.timescale, MICROS)


def luma_plane(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The Y plane of a planar YUV/gray ``frame`` as an (H, W) view, without copying."""
    plane = frame.planes[0]
    height = frame.height
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8, count=plane.line_size * height)
    return rows.reshape(height, plane.line_size)[:, : frame.width]


def glass_to_glass_s(wall_us: int, barcode_ms: int) -> float:
    """Seconds between capture (the barcode's UTC ms) and ``wall_us`` (UTC µs)."""
    return (wall_us - barcode_ms * 1000) / MICROS


def prft_latency_s(wall_us: int, capture_us: int) -> float:
    """Seconds between a ``prft`` capture time and ``wall_us`` (both UTC µs)."""
    return (wall_us - capture_us) / MICROS


_PLANAR_LUMA = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "nv12", "gray"})


class TrackDecoder:
    """Decodes the parts of one CMAF track, in order, frame by frame.

    ``init`` is the CMAF header. ``read_barcode`` reads the clock barcode of
    every video frame; ``keep_frames`` keeps the PyAV frames in the results
    (for display). A hole in decode time (a part never delivered) makes the
    decoder drop video samples until the next key frame.
    """

    def __init__(
        self,
        init: bytes,
        *,
        clock: Clock | None = None,
        read_barcode: bool = True,
        keep_frames: bool = False,
    ) -> None:
        self.track: TrackInfo = read_init(init)
        self._clock: Clock = clock or SystemClock()
        self._read_barcode = read_barcode
        self._keep = keep_frames
        self._next_dts: int | None = None
        self._need_key = True
        self._time_base = Fraction(1, self.track.timescale)
        ctx: VideoCodecContext | AudioCodecContext
        try:
            if self.track.kind == "video":
                ctx = av.CodecContext.create("h264", "r")
                ctx.flags |= av.codec.context.Flags.low_delay
            else:
                ctx = av.CodecContext.create("aac", "r")
            ctx.extradata = self.track.codec_private
        except av.FFmpegError as exc:
            raise PlayerError(f"cannot open a {self.track.codec} decoder: {exc}") from exc
        self._ctx = ctx
        self._pending: dict[int, Sample] = {}
        self.frames = 0
        """Frames decoded so far."""
        self.errors = 0
        """Packets the decoder rejected."""

    @property
    def kind(self) -> TrackKind:
        """``video`` or ``audio``."""
        return self.track.kind

    def decode(self, data: bytes) -> list[DecodedFrame]:
        """Decode the samples of one part or segment (CMAF fragment bytes)."""
        try:
            fragment = read_fragment(data, self.track)
        except BoxError:
            logger.warning("track %d: unreadable fragment dropped", self.track.track_id)
            self.errors += 1
            return []
        samples = fragment.samples
        if samples and self._next_dts is not None and samples[0].dts != self._next_dts:
            logger.info(
                "track %d: decode time jumps %d -> %d; waiting for a key frame",
                self.track.track_id,
                self._next_dts,
                samples[0].dts,
            )
            self._need_key = True
        out: list[DecodedFrame] = []
        for sample in samples:
            self._next_dts = sample.dts + sample.duration
            if self._need_key and self.track.kind == "video":
                if not sample.keyframe:
                    continue
                self._need_key = False
            out.extend(self._decode_sample(sample))
        return out

    def flush(self) -> list[DecodedFrame]:
        """Drain the decoder's delayed frames (end of stream or before a switch)."""
        return self._decode_packet(None)

    # -- internals ---------------------------------------------------------------------------

    def _decode_sample(self, sample: Sample) -> list[DecodedFrame]:
        packet = av.Packet(sample.data)
        packet.pts = sample.pts
        packet.dts = sample.dts
        packet.time_base = self._time_base
        self._pending[sample.pts] = sample
        return self._decode_packet(packet)

    def _decode_packet(self, packet: av.Packet[Any] | None) -> list[DecodedFrame]:
        try:
            frames: list[av.VideoFrame] | list[av.AudioFrame] = self._ctx.decode(packet)
        except av.FFmpegError as exc:
            self.errors += 1
            logger.warning("track %d: decoder rejected a packet: %s", self.track.track_id, exc)
            if self.track.kind == "video":
                self._need_key = True
            return []
        out: list[DecodedFrame] = []
        for frame in frames:
            decoded_us = self._clock.wall_us()
            pts = frame.pts if frame.pts is not None else 0
            sample = self._pending.pop(pts, None)
            # forget samples the decoder dropped (older than this one)
            for stale in [p for p in self._pending if p < pts]:
                del self._pending[stale]
            self.frames += 1
            out.append(self._describe(frame, pts, sample, decoded_us))
        return out

    def _describe(
        self,
        frame: av.VideoFrame | av.AudioFrame,
        pts: int,
        sample: Sample | None,
        decoded_us: int,
    ) -> DecodedFrame:
        duration = sample.duration if sample is not None else 0
        capture_us = sample.capture_us if sample is not None else 0
        keep = frame if self._keep else None
        if isinstance(frame, av.VideoFrame):
            code = None
            if self._read_barcode:
                code = decode_luma(self._luma(frame))
            return DecodedFrame(
                kind="video",
                pts=pts,
                timescale=self.track.timescale,
                duration=duration,
                decoded_us=decoded_us,
                capture_us=capture_us,
                barcode_ms=code,
                width=frame.width,
                height=frame.height,
                frame=keep,
            )
        return DecodedFrame(
            kind="audio",
            pts=pts,
            timescale=self.track.timescale,
            duration=duration,
            decoded_us=decoded_us,
            capture_us=capture_us,
            barcode_ms=None,
            samples=frame.samples,
            frame=keep,
        )

    @staticmethod
    def _luma(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
        if frame.format.name in _PLANAR_LUMA:
            return luma_plane(frame)
        return np.asarray(frame.reformat(format="gray").to_ndarray(), dtype=np.uint8)
