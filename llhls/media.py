"""Shared media model: tracks and coded samples.

These are the contract between the encoders (``packager.encode``), the
chunker (``packager.chunker``), the CMAF writer/reader (``llhls.cmaf``) and
the player's decoder. All times are integer ticks of the track's timescale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TrackKind", "TrackInfo", "Sample"]

TrackKind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class TrackInfo:
    """Everything needed to write a CMAF header (init segment) for one track."""

    track_id: int
    """ISO-BMFF track_ID, >= 1."""
    kind: TrackKind
    """``video`` or ``audio``."""
    timescale: int
    """Ticks per second of every timestamp of this track."""
    codec: str
    """RFC 6381 codec string, e.g. ``avc1.64001f`` or ``mp4a.40.2``."""
    codec_private: bytes
    """Video: the AVCDecoderConfigurationRecord (body of ``avcC``).
    Audio: the AudioSpecificConfig (inside ``esds``)."""
    width: int = 0
    """Video width in pixels; 0 for audio."""
    height: int = 0
    """Video height in pixels; 0 for audio."""
    sample_rate: int = 0
    """Audio sample rate in Hz; 0 for video."""
    channels: int = 0
    """Audio channel count; 0 for video."""
    bitrate: int = 0
    """Target bit rate in bit/s (0 when unknown)."""

    def __post_init__(self) -> None:
        if self.track_id < 1:
            raise ValueError(f"track_id must be >= 1, got {self.track_id}")
        if self.timescale <= 0:
            raise ValueError(f"timescale must be positive, got {self.timescale}")
        if self.kind == "video" and (self.width <= 0 or self.height <= 0):
            raise ValueError("a video track needs width and height")
        if self.kind == "audio" and (self.sample_rate <= 0 or self.channels <= 0):
            raise ValueError("an audio track needs sample_rate and channels")


@dataclass(frozen=True, slots=True)
class Sample:
    """One coded access unit (a video frame or an audio frame)."""

    data: bytes
    """Video: NAL units each prefixed by a 4-byte big-endian length (AVCC form).
    Audio: one raw AAC frame (no ADTS header)."""
    dts: int
    """Decode time in ticks of the track's timescale."""
    duration: int
    """Duration in ticks; > 0."""
    keyframe: bool
    """True for a sync sample (IDR frame; every AAC frame)."""
    cts_offset: int = 0
    """Composition offset: pts - dts, in ticks (0 without B-frames)."""
    capture_us: int = 0
    """UTC wall-clock capture time of this sample, integer microseconds since
    the Unix epoch (0 when unknown). Written to ``prft`` and used for PDT."""

    def __post_init__(self) -> None:
        if self.duration <= 0:
            raise ValueError(f"sample duration must be positive, got {self.duration}")

    @property
    def pts(self) -> int:
        """Presentation time in ticks."""
        return self.dts + self.cts_offset
