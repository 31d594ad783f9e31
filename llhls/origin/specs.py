"""Value types of the origin: stream and rendition specs, URIs, query results.

Re-exported by :mod:`llhls.origin.store`, whose publishing API takes and returns them.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from llhls.playlist.rules import ceil_decimal, target_duration

__all__ = [
    "RenditionSpec",
    "StreamSpec",
    "SkipMode",
    "StreamInfo",
    "Position",
    "PartStatus",
    "RenderedPlaylist",
    "media_playlist_uri",
    "init_uri",
    "segment_uri",
    "part_uri",
    "check_positive",
]

SkipMode = Literal["", "YES", "v2"]
"""``_HLS_skip`` of a playlist request: ``""`` (full playlist), ``YES`` or ``v2``."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def media_playlist_uri(rid: str) -> str:
    """URI of a rendition's media playlist, relative to the multivariant playlist."""
    return f"{rid}/media.m3u8"


def init_uri() -> str:
    """URI of the CMAF header, relative to the media playlist."""
    return "init.mp4"


def segment_uri(msn: int) -> str:
    """URI of segment ``msn``, relative to the media playlist."""
    return f"seg{msn}.m4s"


def part_uri(msn: int, index: int) -> str:
    """URI of part ``index`` of segment ``msn``, relative to the media playlist."""
    return f"part{msn}.{index}.m4s"


def _check_name(value: str, what: str) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or value in (".", ".."):
        raise ValueError(f"{what} must match [A-Za-z0-9][A-Za-z0-9_.-]*, got {value!r}")


def check_positive(value: Fraction, what: str) -> None:
    """Raise ValueError unless ``value`` is a positive exact number (Fraction or int)."""
    if type(value) is Fraction and value.numerator > 0:
        return  # the common case, without the ABC checks and a Fraction comparison
    if isinstance(value, bool) or not isinstance(value, Fraction | int) or value <= 0:
        raise ValueError(f"{what} must be a positive Fraction (never a float), got {value!r}")


@dataclass(frozen=True, slots=True)
class RenditionSpec:
    """One rendition of a stream (a media playlist)."""

    id: str
    """Path component, e.g. ``720p`` or ``audio``."""
    kind: Literal["video", "audio"]
    """``video`` (a variant) or ``audio`` (in the stream's audio group)."""
    codec: str
    """RFC 6381 codec string, e.g. ``avc1.64001f``."""
    bandwidth: int
    """Peak bit rate, bit/s."""
    average_bandwidth: int
    """Average bit rate, bit/s."""
    width: int = 0
    """Video width in pixels (0: unknown or audio)."""
    height: int = 0
    """Video height in pixels (0: unknown or audio)."""
    frame_rate: Fraction | None = None
    """Video frame rate (``None``: unknown or audio)."""
    sample_rate: int = 0
    """Audio sample rate in Hz (0: video)."""
    channels: int = 0
    """Audio channel count (0: video or unknown)."""

    def __post_init__(self) -> None:
        _check_name(self.id, "rendition id")
        if self.kind not in ("video", "audio"):
            raise ValueError(f"rendition kind must be video or audio, got {self.kind!r}")
        if not self.codec or any(ch in self.codec for ch in '",\r\n'):
            raise ValueError(f"bad codec string {self.codec!r}")
        for value, what in (
            (self.bandwidth, "bandwidth"),
            (self.average_bandwidth, "average_bandwidth"),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{what} must be a positive int, got {value!r}")
        for value, what in (
            (self.width, "width"),
            (self.height, "height"),
            (self.sample_rate, "sample_rate"),
            (self.channels, "channels"),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{what} must be a non-negative int, got {value!r}")
        if self.frame_rate is not None:
            check_positive(self.frame_rate, "frame_rate")


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A stream: its renditions and timing, fixed for its lifetime."""

    name: str
    """Path component of the stream, e.g. ``live``."""
    renditions: tuple[RenditionSpec, ...]
    """Its renditions; video ones become variants, audio ones the audio group."""
    part_target: Fraction | None
    """Declared PART-TARGET in seconds (rounded up to the playlist's 5 decimals);
    ``None`` for classic HLS without parts."""
    segment_target: Fraction
    """Nominal segment duration, seconds; TARGETDURATION is its ceiling."""
    window: Fraction = Fraction(60)
    """Seconds of complete segments kept in the playlist (never fewer than 3 TD)."""
    audio_group: str = "aud"
    """GROUP-ID of the audio renditions."""
    can_block_reload: bool = True
    """Advertise and honour blocking playlist reload (``_HLS_msn``/``_HLS_part``)."""

    def __post_init__(self) -> None:
        _check_name(self.name, "stream name")
        if not self.renditions:
            raise ValueError("a stream needs at least one rendition")
        ids = [r.id for r in self.renditions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"rendition ids must be unique, got {ids}")
        check_positive(self.segment_target, "segment_target")
        check_positive(self.window, "window")
        if self.part_target is not None:
            check_positive(self.part_target, "part_target")
            if ceil_decimal(self.part_target) >= target_duration(self.segment_target):
                raise ValueError("part_target must be below the target duration")
        _check_name(self.audio_group, "audio_group")

    @property
    def target_duration(self) -> int:
        """EXT-X-TARGETDURATION: ``ceil(segment_target)``."""
        return target_duration(self.segment_target)

    @property
    def declared_part_target(self) -> Fraction | None:
        """PART-TARGET exactly as the playlists show it."""
        return None if self.part_target is None else ceil_decimal(self.part_target)

    @property
    def effective_window(self) -> Fraction:
        """The window actually kept: at least 3 target durations."""
        return max(Fraction(self.window), Fraction(3 * self.target_duration))


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What the origin core needs to know about a stream."""

    name: str
    """Stream name."""
    target_duration: int
    """TARGETDURATION, seconds."""
    part_target: Fraction | None
    """Declared PART-TARGET (``None``: no parts)."""
    renditions: tuple[str, ...]
    """Rendition ids."""
    audio_renditions: tuple[str, ...]
    """Ids of the audio renditions."""
    ended: bool
    """Whether EXT-X-ENDLIST has been added."""
    can_block_reload: bool
    """Whether blocking reload is offered."""


@dataclass(frozen=True, slots=True)
class Position:
    """The live edge of one rendition."""

    next_msn: int
    """MSN of the segment being filled (the last complete one is ``next_msn - 1``)."""
    open_parts: int
    """Parts of segment ``next_msn`` published so far."""
    has_media: bool
    """Whether any part or segment was ever published."""


@dataclass(frozen=True, slots=True)
class PartStatus:
    """Where a requested part stands."""

    kind: Literal["ready", "future", "gone"]
    """``ready``: here are its bytes; ``future``: not published yet (``ahead`` parts
    past the live edge); ``gone``: never will be, or no longer is, fetchable."""
    data: bytes = b""
    """The part's bytes when ``ready``."""
    ahead: int = 0
    """For ``future``: how many parts past the last published one it is (>= 1)."""


class RenderedPlaylist:
    """Playlist bytes shared by every response of one store version; gzip made once."""

    __slots__ = ("text", "_gzip", "_level")

    def __init__(self, text: bytes, level: int = 6) -> None:
        self.text = text
        """The playlist, UTF-8."""
        self._gzip: bytes | None = None
        self._level = level

    @property
    def gzip(self) -> bytes:
        """The playlist gzip-compressed (computed on first use, then shared)."""
        if self._gzip is None:
            self._gzip = gzip.compress(self.text, compresslevel=self._level, mtime=0)
        return self._gzip
