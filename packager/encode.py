"""PyAV encoders: raw frames in, :class:`llhls.media.Sample` s out.

* :class:`VideoEncoder`: libx264 (veryfast, zerolatency), no B-frames, closed
  GOPs of exactly ``gop_frames`` frames with a key frame forced at every frame
  index that is a multiple of ``gop_frames`` — so every rung of the ladder
  switches GOP on the same frames. VBV rate control (maxrate = bitrate,
  buffer = 1 s). Output is converted from Annex B to AVCC; SPS and PPS move to
  the ``avcC`` record of the :class:`TrackInfo`.
* :class:`AudioEncoder`: FFmpeg's native AAC-LC encoder, one sample per AAC
  frame, the encoder's priming shifted away so the first sample has dts 0.

Time: video pts/dts in 1/90000 ticks, ``pts(n) = n * 90000 / fps`` rounded
down (exact for integer and NTSC rates); audio dts in samples.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from llhls.cmaf.codecs import (
    NAL_AUD,
    NAL_PPS,
    NAL_SEI,
    NAL_SPS,
    aac_audio_specific_config,
    aac_codec_string,
    avc_codec_string,
    avc_decoder_config,
    nal_type,
    split_annexb,
    to_avcc,
)
from llhls.errors import BoxError, ConfigError, EncodeError
from llhls.media import Sample, TrackInfo
from llhls.timing import VIDEO_TIMESCALE

__all__ = [
    "Rung",
    "DEFAULT_LADDER",
    "parse_ladder",
    "validate_ladder",
    "frame_pts",
    "VideoEncoder",
    "AudioEncoder",
]

logger = logging.getLogger(__name__)

_RUNG_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_RUNG_SPEC = re.compile(
    r"(?P<id>[^:]*):(?P<w>\d+)x(?P<h>\d+)@(?P<rate>\d+(?:\.\d+)?)(?P<unit>[kKmM]?)"
)
_UNITS = {"": 1, "k": 1000, "K": 1000, "m": 1_000_000, "M": 1_000_000}
_AAC_FRAME = 1024


@dataclass(frozen=True, slots=True)
class Rung:
    """One video rendition of the ABR ladder."""

    id: str
    """Rendition id, used in URLs (``720p``): letters, digits, ``_`` and ``-``."""
    width: int
    """Coded width in pixels (even)."""
    height: int
    """Coded height in pixels (even)."""
    bitrate: int
    """Target bit rate in bit/s."""

    def __post_init__(self) -> None:
        if not _RUNG_ID.fullmatch(self.id) or self.id == "audio":
            raise ConfigError(
                f"rung id {self.id!r} must be 1-32 letters, digits, '_' or '-' (not 'audio')"
            )
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ConfigError(
                f"rung {self.id}: size must be even and at least 16x16, "
                f"got {self.width}x{self.height}"
            )
        if self.width > 8192 or self.height > 8192:
            raise ConfigError(f"rung {self.id}: size {self.width}x{self.height} is too large")
        if not 10_000 <= self.bitrate <= 200_000_000:
            raise ConfigError(
                f"rung {self.id}: bitrate must be in [10k, 200M] bit/s, got {self.bitrate}"
            )


DEFAULT_LADDER: tuple[Rung, ...] = (
    Rung("720p", 1280, 720, 2_500_000),
    Rung("360p", 640, 360, 600_000),
)
"""The ladder used when none is configured."""


def validate_ladder(rungs: tuple[Rung, ...]) -> tuple[Rung, ...]:
    """Check a ladder has at least one rung and unique ids; return it."""
    if not rungs:
        raise ConfigError("the ladder needs at least one rung")
    ids = [rung.id for rung in rungs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"duplicate rung ids in ladder: {', '.join(duplicates)}")
    return rungs


def parse_ladder(text: str) -> tuple[Rung, ...]:
    """Parse ``ID:WxH@RATE[k|M],...``, e.g. ``720p:1280x720@2500k,360p:640x360@600k``."""
    rungs: list[Rung] = []
    for part in text.split(","):
        item = part.strip()
        match = _RUNG_SPEC.fullmatch(item)
        if match is None:
            raise ConfigError(
                f"bad ladder entry {item!r}: expected ID:WIDTHxHEIGHT@BITRATE, "
                "e.g. 720p:1280x720@2500k"
            )
        rate = Fraction(match["rate"]) * _UNITS[match["unit"]]
        if rate.denominator != 1:
            raise ConfigError(f"bad ladder entry {item!r}: bitrate is not a whole bit/s")
        rungs.append(Rung(match["id"], int(match["w"]), int(match["h"]), int(rate)))
    return validate_ladder(tuple(rungs))


def frame_pts(index: int, fps: Fraction) -> int:
    """Presentation time of frame ``index`` in 1/90000 ticks, rounded down."""
    return index * VIDEO_TIMESCALE * fps.denominator // fps.numerator


class VideoEncoder:
    """libx264 through PyAV for one rung; see the module docstring."""

    def __init__(
        self,
        rung: Rung,
        fps: Fraction,
        gop_frames: int,
        track_id: int = 1,
        *,
        keep_sei: bool = False,
        threads: int = 0,
    ) -> None:
        fps = Fraction(fps)
        if fps <= 0:
            raise ConfigError(f"frame rate must be positive, got {fps}")
        if gop_frames < 1:
            raise ConfigError(f"gop_frames must be >= 1, got {gop_frames}")
        self.rung = rung
        self.fps = fps
        self.gop_frames = gop_frames
        self.track_id = track_id
        self.keep_sei = keep_sei
        kbit = max(rung.bitrate // 1000, 1)
        params = [
            f"keyint={gop_frames}",
            f"min-keyint={gop_frames}",
            "scenecut=0",
            "bframes=0",
            "open-gop=0",
            f"vbv-maxrate={kbit}",
            f"vbv-bufsize={kbit}",
        ]
        try:
            ctx = av.CodecContext.create("libx264", "w")
        except av.FFmpegError as exc:  # pragma: no cover - depends on the FFmpeg build
            raise EncodeError(f"libx264 is not available: {exc}") from exc
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.width = rung.width
        ctx.height = rung.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, VIDEO_TIMESCALE)
        ctx.framerate = fps
        ctx.bit_rate = rung.bitrate
        ctx.thread_count = threads
        ctx.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "forced-idr": "1",
            "x264-params": ":".join(params),
        }
        self._ctx = ctx
        # One scaler per encoder: ``frame.reformat`` would cache a scaler on
        # the frame, which the rungs share (possibly from several threads).
        self._scaler = VideoReformatter()
        self._pending: dict[int, tuple[int, int]] = {}
        self._last_index = -1
        self._sps: bytes | None = None
        self._pps: bytes | None = None
        self._track_info: TrackInfo | None = None
        self._flushed = False

    @property
    def track_info(self) -> TrackInfo | None:
        """The track description; ``None`` until the first packet came out."""
        return self._track_info

    def encode(self, frame: av.VideoFrame, index: int, capture_us: int) -> list[Sample]:
        """Encode source frame ``index`` (scaled to the rung); return the samples ready."""
        if self._flushed:
            raise EncodeError(f"rung {self.rung.id}: encoder already flushed")
        if index <= self._last_index:
            raise EncodeError(f"rung {self.rung.id}: frame index {index} after {self._last_index}")
        self._last_index = index
        try:
            picture = self._scaler.reformat(
                frame, self.rung.width, self.rung.height, format="yuv420p"
            )
        except (av.FFmpegError, ValueError) as exc:
            raise EncodeError(f"rung {self.rung.id}: cannot scale frame {index}: {exc}") from exc
        if picture is frame:  # never stamp the caller's frame (shared by the rungs)
            picture = av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")
        pts = frame_pts(index, self.fps)
        picture.pts = pts
        picture.time_base = Fraction(1, VIDEO_TIMESCALE)
        picture.pict_type = PictureType.I if index % self.gop_frames == 0 else PictureType.NONE
        self._pending[pts] = (index, capture_us)
        return self._run(picture)

    def flush(self) -> list[Sample]:
        """Drain the encoder at the end of the stream."""
        if self._flushed:
            return []
        self._flushed = True
        return self._run(None)

    def _run(self, picture: av.VideoFrame | None) -> list[Sample]:
        try:
            packets = self._ctx.encode(picture)
        except av.FFmpegError as exc:
            raise EncodeError(f"rung {self.rung.id}: libx264 failed: {exc}") from exc
        return [self._sample(packet) for packet in packets]

    def _sample(self, packet: av.Packet[Any]) -> Sample:
        if packet.pts is None or packet.pts not in self._pending:
            raise EncodeError(f"rung {self.rung.id}: packet with unknown pts {packet.pts}")
        index, capture_us = self._pending.pop(packet.pts)
        try:
            nals = split_annexb(bytes(packet))
        except BoxError as exc:
            raise EncodeError(f"rung {self.rung.id}: bad encoder output: {exc}") from exc
        body: list[bytes] = []
        for nal in nals:
            kind = nal_type(nal)
            if kind == NAL_SPS:
                self._parameter_set("SPS", nal)
            elif kind == NAL_PPS:
                self._parameter_set("PPS", nal)
            elif kind == NAL_AUD or (kind == NAL_SEI and not self.keep_sei):
                continue
            else:
                body.append(nal)
        if not body:
            raise EncodeError(f"rung {self.rung.id}: frame {index} has no slice data")
        if self._track_info is None:
            self._track_info = self._make_track_info()
        duration = frame_pts(index + 1, self.fps) - packet.pts
        return Sample(
            data=to_avcc(body),
            dts=packet.pts,
            duration=duration,
            keyframe=bool(packet.is_keyframe),
            capture_us=capture_us,
        )

    def _parameter_set(self, name: str, nal: bytes) -> None:
        current = self._sps if name == "SPS" else self._pps
        if current is not None and current != nal:
            raise EncodeError(f"rung {self.rung.id}: {name} changed mid-stream")
        if name == "SPS":
            self._sps = nal
        else:
            self._pps = nal

    def _make_track_info(self) -> TrackInfo:
        if self._sps is None or self._pps is None:
            raise EncodeError(f"rung {self.rung.id}: first frame carries no SPS/PPS")
        return TrackInfo(
            track_id=self.track_id,
            kind="video",
            timescale=VIDEO_TIMESCALE,
            codec=avc_codec_string(self._sps),
            codec_private=avc_decoder_config([self._sps], [self._pps]),
            width=self.rung.width,
            height=self.rung.height,
            bitrate=self.rung.bitrate,
        )


class AudioEncoder:
    """AAC-LC through PyAV; input blocks of 1024 samples (fltp or s16)."""

    def __init__(
        self, sample_rate: int, channels: int, bitrate: int = 96_000, track_id: int = 2
    ) -> None:
        if channels not in (1, 2):
            raise ConfigError(f"audio channels must be 1 or 2, got {channels}")
        if not 8_000 <= bitrate <= 512_000:
            raise ConfigError(f"audio bitrate must be in [8k, 512k] bit/s, got {bitrate}")
        try:
            asc_fallback = aac_audio_specific_config(2, sample_rate, channels)
        except BoxError as exc:
            raise ConfigError(str(exc)) from exc
        self.sample_rate = sample_rate
        self.channels = channels
        self.bitrate = bitrate
        self.track_id = track_id
        self._layout = "mono" if channels == 1 else "stereo"
        ctx = av.CodecContext.create("aac", "w")
        assert isinstance(ctx, av.AudioCodecContext)
        ctx.sample_rate = sample_rate
        ctx.layout = self._layout
        ctx.format = "fltp"
        ctx.bit_rate = bitrate
        ctx.time_base = Fraction(1, sample_rate)
        try:
            ctx.open()
        except av.FFmpegError as exc:  # pragma: no cover - depends on the FFmpeg build
            raise EncodeError(f"cannot open the AAC encoder: {exc}") from exc
        self._ctx = ctx
        asc = bytes(ctx.extradata) if ctx.extradata else asc_fallback
        self._track_info = TrackInfo(
            track_id=track_id,
            kind="audio",
            timescale=sample_rate,
            codec=aac_codec_string(asc),
            codec_private=asc,
            sample_rate=sample_rate,
            channels=channels,
            bitrate=bitrate,
        )
        self._resampler: av.AudioResampler | None = None
        self._captures: deque[int] = deque()
        self._last_capture: int | None = None
        self._first_pts: int | None = None
        self._next_pts = 0
        self._flushed = False

    @property
    def track_info(self) -> TrackInfo:
        """The track description (known as soon as the encoder is open)."""
        return self._track_info

    def encode(self, frame: av.AudioFrame, first_sample: int, capture_us: int) -> list[Sample]:
        """Encode one block of 1024 samples starting at sample ``first_sample``."""
        if self._flushed:
            raise EncodeError("audio encoder already flushed")
        if frame.samples != _AAC_FRAME:
            raise EncodeError(f"audio blocks must have {_AAC_FRAME} samples, got {frame.samples}")
        if frame.sample_rate != self.sample_rate:
            raise EncodeError(
                f"audio block at {frame.sample_rate} Hz fed to a {self.sample_rate} Hz encoder"
            )
        if frame.format.name != "fltp" or frame.layout.name != self._layout:
            if self._resampler is None:
                self._resampler = av.AudioResampler(
                    format="fltp", layout=self._layout, rate=self.sample_rate
                )
            converted = self._resampler.resample(frame)
            if len(converted) != 1 or converted[0].samples != _AAC_FRAME:
                raise EncodeError("audio conversion changed the block size")
            frame = converted[0]
        frame.pts = first_sample
        frame.time_base = Fraction(1, self.sample_rate)
        self._captures.append(capture_us)
        return self._run(frame)

    def flush(self) -> list[Sample]:
        """Drain the encoder (emits the last, delayed frames)."""
        if self._flushed:
            return []
        self._flushed = True
        return self._run(None)

    def _run(self, frame: av.AudioFrame | None) -> list[Sample]:
        try:
            packets = self._ctx.encode(frame)
        except av.FFmpegError as exc:
            raise EncodeError(f"AAC encoder failed: {exc}") from exc
        return [self._sample(packet) for packet in packets]

    def _sample(self, packet: av.Packet[Any]) -> Sample:
        pts = packet.pts if packet.pts is not None else self._next_pts
        if self._first_pts is None:
            self._first_pts = pts
        dts = pts - self._first_pts
        duration = packet.duration or _AAC_FRAME
        self._next_pts = pts + duration
        if self._captures:
            capture = self._captures.popleft()
        elif self._last_capture is not None:  # the extra frame the priming pushed out
            capture = self._last_capture + duration * 1_000_000 // self.sample_rate
        else:
            capture = 0
        self._last_capture = capture
        return Sample(
            data=bytes(packet), dts=dts, duration=duration, keyframe=True, capture_us=capture
        )
