"""The playlist model: one frozen dataclass per tag.

Every duration is an exact :class:`~fractions.Fraction` of seconds (never a float); it
becomes text only in :mod:`llhls.playlist.render`, through
:func:`llhls.timing.format_decimal`. Optional attributes are ``None`` when absent and
are rendered with ``is not None`` checks, so legitimate zeros survive. Wall-clock
times (``EXT-X-PROGRAM-DATE-TIME``) are integer milliseconds since the Unix epoch, UTC.

Instances validate themselves in ``__post_init__`` and raise :class:`ValueError` for
values no playlist can carry (negative durations, line breaks or quotes inside
quoted strings, ...).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

__all__ = [
    "ByteRange",
    "Map",
    "Part",
    "PreloadHint",
    "RenditionReport",
    "ServerControl",
    "Skip",
    "Segment",
    "OpenSegment",
    "MediaPlaylist",
    "Rendition",
    "Variant",
    "MultivariantPlaylist",
    "PlaylistType",
    "MediaType",
    "HintType",
    "exact_sum",
    "exact_add",
]

PlaylistType = Literal["EVENT", "VOD"]
"""Values of ``EXT-X-PLAYLIST-TYPE``."""
MediaType = Literal["AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"]
"""Values of ``EXT-X-MEDIA:TYPE``."""
HintType = Literal["PART", "MAP"]
"""Values of ``EXT-X-PRELOAD-HINT:TYPE``."""


def exact_sum(values: Iterable[Fraction | int]) -> Fraction:
    """The exact sum of ``values`` as a Fraction: ``sum(values, Fraction(0))``, but
    with one normalisation in all (integer numerators over a common denominator)
    instead of one per addition."""
    items = list(values)
    if not items:
        return Fraction(0)
    den = math.lcm(*(v.denominator for v in items))
    return Fraction(sum(v.numerator * (den // v.denominator) for v in items), den)


def exact_add(a: Fraction, b: Fraction) -> Fraction:
    """``a + b`` for two Fractions (or ints), without the generic operator's dispatch:
    one normalisation, as ``Fraction(n, d)`` makes it."""
    da, db = a.denominator, b.denominator
    if da == db:
        return Fraction(a.numerator + b.numerator, da)
    return Fraction(a.numerator * db + b.numerator * da, da * db)


def _check_text(value: str, what: str, *, quoted: bool = False, empty: bool = False) -> None:
    """Reject text a playlist line cannot carry."""
    if not empty and value == "":
        raise ValueError(f"{what} must not be empty")
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} must not contain a line break: {value!r}")
    if quoted and '"' in value:
        raise ValueError(f"{what} must not contain a double quote: {value!r}")


def _check_uri(uri: str, what: str) -> None:
    _check_text(uri, what, quoted=True)
    if uri.startswith("#") or uri != uri.strip():
        raise ValueError(f"{what} must not start with '#' or carry outer blanks: {uri!r}")


def _check_duration(value: Fraction, what: str) -> None:
    if type(value) is Fraction and value.numerator >= 0:
        return  # the common case, without a Fraction comparison
    if not isinstance(value, Fraction | int) or isinstance(value, bool):
        raise ValueError(f"{what} must be an exact Fraction, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")


def _check_count(value: int, what: str) -> None:
    if type(value) is int and value >= 0:
        return  # the common case, without the ABC checks
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative int, got {value!r}")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A sub-range of a resource (``BYTERANGE=<n>[@<o>]``)."""

    length: int
    """Length in bytes."""
    offset: int | None = None
    """Start offset in bytes; ``None`` continues from the previous range."""

    def __post_init__(self) -> None:
        _check_count(self.length, "byte range length")
        if self.offset is not None:
            _check_count(self.offset, "byte range offset")


@dataclass(frozen=True, slots=True)
class Map:
    """``EXT-X-MAP``: the Media Initialization Section (CMAF header)."""

    uri: str
    """URI of the initialization section, relative to the playlist."""
    byterange: ByteRange | None = None
    """Sub-range of ``uri`` holding the section, if not the whole resource."""

    def __post_init__(self) -> None:
        _check_uri(self.uri, "EXT-X-MAP URI")


@dataclass(frozen=True, slots=True)
class Part:
    """``EXT-X-PART``: one partial segment (a CMAF chunk)."""

    uri: str
    """URI of the partial segment."""
    duration: Fraction
    """Duration in seconds (exact)."""
    independent: bool = False
    """``INDEPENDENT=YES``: the part starts with an independent (key) frame."""
    gap: bool = False
    """``GAP=YES``: the part is unavailable."""
    byterange: ByteRange | None = None
    """Sub-range of ``uri`` holding the part, if not the whole resource."""

    def __post_init__(self) -> None:
        _check_uri(self.uri, "EXT-X-PART URI")
        _check_duration(self.duration, "part duration")


@dataclass(frozen=True, slots=True)
class PreloadHint:
    """``EXT-X-PRELOAD-HINT``: a resource the client may request before it exists."""

    uri: str
    """URI of the hinted resource."""
    type: HintType = "PART"
    """``PART`` (the next partial segment) or ``MAP``."""
    byterange_start: int | None = None
    """``BYTERANGE-START``: first byte of the hinted range."""
    byterange_length: int | None = None
    """``BYTERANGE-LENGTH``: length of the hinted range (unknown: ``None``)."""

    def __post_init__(self) -> None:
        _check_uri(self.uri, "EXT-X-PRELOAD-HINT URI")
        if self.type not in ("PART", "MAP"):
            raise ValueError(f"preload hint TYPE must be PART or MAP, got {self.type!r}")
        if self.byterange_start is not None:
            _check_count(self.byterange_start, "BYTERANGE-START")
        if self.byterange_length is not None:
            _check_count(self.byterange_length, "BYTERANGE-LENGTH")


@dataclass(frozen=True, slots=True)
class RenditionReport:
    """``EXT-X-RENDITION-REPORT``: the live edge of another rendition."""

    uri: str
    """Relative URI of the other rendition's media playlist (no ``_HLS_`` parameters)."""
    last_msn: int
    """``LAST-MSN``: media sequence number of its last segment (or last part's parent)."""
    last_part: int | None = None
    """``LAST-PART``: index of its last part within ``last_msn``; ``None`` without parts."""

    def __post_init__(self) -> None:
        _check_uri(self.uri, "EXT-X-RENDITION-REPORT URI")
        _check_count(self.last_msn, "LAST-MSN")
        if self.last_part is not None:
            _check_count(self.last_part, "LAST-PART")


@dataclass(frozen=True, slots=True)
class ServerControl:
    """``EXT-X-SERVER-CONTROL``: what the server offers (at least one attribute)."""

    can_block_reload: bool = False
    """``CAN-BLOCK-RELOAD=YES``: blocking playlist reload with ``_HLS_msn``."""
    can_skip_until: Fraction | None = None
    """``CAN-SKIP-UNTIL``: the skip boundary of delta updates, seconds."""
    can_skip_dateranges: bool = False
    """``CAN-SKIP-DATERANGES=YES``: delta updates may also skip date ranges."""
    hold_back: Fraction | None = None
    """``HOLD-BACK``: recommended distance from the live edge, seconds."""
    part_hold_back: Fraction | None = None
    """``PART-HOLD-BACK``: the same in low-latency mode, seconds."""

    def __post_init__(self) -> None:
        for value, what in (
            (self.can_skip_until, "CAN-SKIP-UNTIL"),
            (self.hold_back, "HOLD-BACK"),
            (self.part_hold_back, "PART-HOLD-BACK"),
        ):
            if value is not None:
                _check_duration(value, what)
        if not (
            self.can_block_reload
            or self.can_skip_dateranges
            or self.can_skip_until is not None
            or self.hold_back is not None
            or self.part_hold_back is not None
        ):
            raise ValueError("EXT-X-SERVER-CONTROL needs at least one attribute")


@dataclass(frozen=True, slots=True)
class Skip:
    """``EXT-X-SKIP``: segments replaced in a playlist delta update."""

    skipped_segments: int
    """``SKIPPED-SEGMENTS``: how many segments the tag replaces."""
    recently_removed_dateranges: tuple[str, ...] | None = None
    """``RECENTLY-REMOVED-DATERANGES`` IDs (``_HLS_skip=v2``); ``None`` when absent."""

    def __post_init__(self) -> None:
        _check_count(self.skipped_segments, "SKIPPED-SEGMENTS")
        for ident in self.recently_removed_dateranges or ():
            _check_text(ident, "date range ID", quoted=True)
            if "\t" in ident:
                raise ValueError(f"date range ID must not contain a tab: {ident!r}")


@dataclass(frozen=True, slots=True)
class Segment:
    """A complete media segment and the tags that apply to it."""

    uri: str
    """URI of the segment."""
    duration: Fraction
    """``EXTINF`` duration in seconds (exact)."""
    title: str | None = None
    """``EXTINF`` title (after the comma); ``None`` when empty."""
    pdt_ms: int | None = None
    """``EXT-X-PROGRAM-DATE-TIME`` of the first sample, UTC ms since the epoch."""
    parts: tuple[Part, ...] = ()
    """Its partial segments, listed before ``EXTINF`` (only near the live edge)."""
    gap: bool = False
    """``EXT-X-GAP``: the segment is unavailable."""
    discontinuity: bool = False
    """``EXT-X-DISCONTINUITY`` before this segment."""
    map: Map | None = None
    """An ``EXT-X-MAP`` placed before this segment (a change of initialization section)."""
    byterange: ByteRange | None = None
    """``EXT-X-BYTERANGE``: sub-range of ``uri`` holding the segment."""

    def __post_init__(self) -> None:
        _check_uri(self.uri, "segment URI")
        _check_duration(self.duration, "segment duration")
        if self.title is not None:
            _check_text(self.title, "EXTINF title")
            if self.title != self.title.strip():
                raise ValueError(f"EXTINF title must not carry outer blanks: {self.title!r}")


@dataclass(frozen=True, slots=True)
class OpenSegment:
    """The segment in progress at the live edge: its parts so far, no ``EXTINF`` yet."""

    parts: tuple[Part, ...]
    """Partial segments published so far (at least one)."""
    pdt_ms: int | None = None
    """``EXT-X-PROGRAM-DATE-TIME`` of its first sample, UTC ms since the epoch."""
    discontinuity: bool = False
    """``EXT-X-DISCONTINUITY`` before this segment."""
    map: Map | None = None
    """An ``EXT-X-MAP`` placed before this segment."""

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("an open segment has at least one part")


@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    """A media playlist (one rendition)."""

    target_duration: int
    """``EXT-X-TARGETDURATION``: whole seconds, never changes during a stream."""
    version: int | None = None
    """``EXT-X-VERSION`` (``None``: the tag is absent)."""
    media_sequence: int = 0
    """``EXT-X-MEDIA-SEQUENCE``: sequence number of the first segment (skipped ones
    included in a delta update)."""
    discontinuity_sequence: int | None = None
    """``EXT-X-DISCONTINUITY-SEQUENCE`` (``None``: absent)."""
    playlist_type: PlaylistType | None = None
    """``EXT-X-PLAYLIST-TYPE`` (``None`` for a live sliding window)."""
    independent_segments: bool = False
    """``EXT-X-INDEPENDENT-SEGMENTS``."""
    part_target: Fraction | None = None
    """``EXT-X-PART-INF:PART-TARGET`` in seconds; required when parts exist."""
    server_control: ServerControl | None = None
    """``EXT-X-SERVER-CONTROL``."""
    map: Map | None = None
    """The ``EXT-X-MAP`` in the header, applying from the first segment."""
    skip: Skip | None = None
    """``EXT-X-SKIP`` of a delta update, in place of the first ``skipped_segments``."""
    segments: tuple[Segment, ...] = ()
    """Complete segments, oldest first (after the skipped ones)."""
    open_segment: OpenSegment | None = None
    """The in-progress segment's parts, after the last complete segment."""
    preload_hints: tuple[PreloadHint, ...] = ()
    """``EXT-X-PRELOAD-HINT`` tags (at most one per type)."""
    rendition_reports: tuple[RenditionReport, ...] = ()
    """``EXT-X-RENDITION-REPORT`` tags, one per other rendition."""
    endlist: bool = False
    """``EXT-X-ENDLIST``: no segment will be added."""

    def __post_init__(self) -> None:
        if isinstance(self.target_duration, bool) or not isinstance(self.target_duration, int):
            raise ValueError(f"target duration must be an int, got {self.target_duration!r}")
        if self.target_duration < 0:
            raise ValueError(f"target duration must not be negative: {self.target_duration}")
        if self.version is not None and (isinstance(self.version, bool) or self.version < 1):
            raise ValueError(f"EXT-X-VERSION must be >= 1, got {self.version!r}")
        _check_count(self.media_sequence, "media sequence")
        if self.discontinuity_sequence is not None:
            _check_count(self.discontinuity_sequence, "discontinuity sequence")
        if self.playlist_type is not None and self.playlist_type not in ("EVENT", "VOD"):
            raise ValueError(f"bad playlist type {self.playlist_type!r}")
        if self.part_target is not None:
            _check_duration(self.part_target, "part target")
        first: Segment | OpenSegment | None = (
            self.segments[0] if self.segments else self.open_segment
        )
        if (
            self.map is None
            and first is not None
            and first.map is not None
            and not first.discontinuity
        ):
            # Written first, such a map is the header map: keep one spelling of it.
            raise ValueError("the first segment's EXT-X-MAP belongs in MediaPlaylist.map")

    @property
    def first_msn(self) -> int:
        """Media sequence number of the first listed (not skipped) segment."""
        return self.media_sequence + (self.skip.skipped_segments if self.skip else 0)

    @property
    def next_msn(self) -> int:
        """Media sequence number of the segment after the last complete one."""
        return self.first_msn + len(self.segments)

    @property
    def has_parts(self) -> bool:
        """Whether any ``EXT-X-PART`` is listed."""
        return self.open_segment is not None or any(s.parts for s in self.segments)

    @property
    def duration(self) -> Fraction:
        """Total duration of the listed complete segments, seconds."""
        return exact_sum(s.duration for s in self.segments)


@dataclass(frozen=True, slots=True)
class Rendition:
    """``EXT-X-MEDIA``: an alternative rendition in a group."""

    type: MediaType
    """``TYPE``: AUDIO, VIDEO, SUBTITLES or CLOSED-CAPTIONS."""
    group_id: str
    """``GROUP-ID``."""
    name: str
    """``NAME``."""
    uri: str | None = None
    """``URI`` of its media playlist (``None``: carried in the variant)."""
    language: str | None = None
    """``LANGUAGE``."""
    default: bool = False
    """``DEFAULT=YES``."""
    autoselect: bool = False
    """``AUTOSELECT=YES``."""
    channels: str | None = None
    """``CHANNELS`` (e.g. ``"2"``)."""

    def __post_init__(self) -> None:
        if self.type not in ("AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"):
            raise ValueError(f"bad EXT-X-MEDIA TYPE {self.type!r}")
        _check_text(self.group_id, "GROUP-ID", quoted=True)
        _check_text(self.name, "NAME", quoted=True)
        if self.uri is not None:
            _check_uri(self.uri, "EXT-X-MEDIA URI")
        if self.language is not None:
            _check_text(self.language, "LANGUAGE", quoted=True)
        if self.channels is not None:
            _check_text(self.channels, "CHANNELS", quoted=True)


@dataclass(frozen=True, slots=True)
class Variant:
    """``EXT-X-STREAM-INF`` and its URI: one variant stream."""

    uri: str
    """URI of the variant's media playlist."""
    bandwidth: int
    """``BANDWIDTH``: peak bit rate of the variant with its audio, bit/s."""
    average_bandwidth: int | None = None
    """``AVERAGE-BANDWIDTH``, bit/s."""
    codecs: str | None = None
    """``CODECS``: every codec of the variant and its renditions, comma-separated."""
    resolution: tuple[int, int] | None = None
    """``RESOLUTION`` as (width, height)."""
    frame_rate: Fraction | None = None
    """``FRAME-RATE`` (rendered with three decimals, rounded up)."""
    audio: str | None = None
    """``AUDIO``: the GROUP-ID of its audio renditions."""

    def __post_init__(self) -> None:
        _check_uri(self.uri, "variant URI")
        _check_count(self.bandwidth, "BANDWIDTH")
        if self.average_bandwidth is not None:
            _check_count(self.average_bandwidth, "AVERAGE-BANDWIDTH")
        if self.codecs is not None:
            _check_text(self.codecs, "CODECS", quoted=True)
        if self.resolution is not None:
            width, height = self.resolution
            _check_count(width, "width")
            _check_count(height, "height")
        if self.frame_rate is not None:
            _check_duration(self.frame_rate, "FRAME-RATE")
        if self.audio is not None:
            _check_text(self.audio, "AUDIO", quoted=True)


@dataclass(frozen=True, slots=True)
class MultivariantPlaylist:
    """A multivariant (master) playlist."""

    variants: tuple[Variant, ...]
    """Variant streams, in the order a client should consider them."""
    renditions: tuple[Rendition, ...] = ()
    """``EXT-X-MEDIA`` renditions."""
    version: int | None = None
    """``EXT-X-VERSION`` (``None``: absent)."""
    independent_segments: bool = False
    """``EXT-X-INDEPENDENT-SEGMENTS``: every segment starts with a key frame."""

    def __post_init__(self) -> None:
        if self.version is not None and (isinstance(self.version, bool) or self.version < 1):
            raise ValueError(f"EXT-X-VERSION must be >= 1, got {self.version!r}")
