"""What the session core asks its adapter to do, and how it is configured.

The session (:mod:`player.session`) is a sans-I/O state machine: it emits
:data:`Action` values from ``next_action()`` and takes responses, errors and
timer expiries as calls. This module holds those values, the session's
configuration, the description of a rendition, and the default rendition
choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "RequestKind",
    "TrackName",
    "Fetch",
    "Cancel",
    "InitSection",
    "PlayFrom",
    "Deliver",
    "EndOfStream",
    "Failed",
    "Action",
    "RenditionInfo",
    "Selector",
    "SessionConfig",
    "default_select",
]

RequestKind = Literal["multivariant", "playlist", "init", "part", "segment"]
"""What a request fetches."""

TrackName = Literal["video", "audio"]
"""The session's tracks: ``video`` follows the chosen variant stream (which may
carry muxed audio), ``audio`` the alternate audio rendition when there is one."""


@dataclass(frozen=True, slots=True)
class Fetch:
    """Send ``GET path_and_query``; answer with ``on_response`` or ``on_error``."""

    request_id: int
    """Identifies the request in the answer; unique within a session, increasing."""
    path_and_query: str
    """Absolute path with query on the session's origin, e.g.
    ``/live/720p/media.m3u8?_HLS_msn=12&_HLS_part=3``."""
    kind: RequestKind
    """What is fetched."""
    track: TrackName | None
    """The track it serves (``None`` for the multivariant playlist)."""
    rendition: str | None
    """The rendition id (``None`` for the multivariant playlist)."""
    msn: int | None
    """Media sequence number: of the part or segment, or ``_HLS_msn`` of a playlist."""
    part: int | None
    """Part index: of the part, or ``_HLS_part`` of a playlist."""
    timeout: float
    """Seconds the adapter should wait for the whole response before ``on_error``."""
    blocking: bool = False
    """The server holds the response (blocking reload or preload hint)."""

    def __post_init__(self) -> None:
        if self.request_id < 1:
            raise ValueError(f"request ids start at 1, got {self.request_id}")
        if not self.path_and_query.startswith("/"):
            raise ValueError(f"path must be absolute, got {self.path_and_query!r}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")


@dataclass(frozen=True, slots=True)
class Cancel:
    """Abandon request ``request_id`` (its answer, if any, will be ignored)."""

    request_id: int
    """The request to abandon."""


@dataclass(frozen=True, slots=True)
class InitSection:
    """A (new) CMAF header for ``track``: (re)create its decoder before the next media."""

    track: TrackName
    """The track."""
    rendition: str
    """The rendition the header belongs to."""
    data: bytes
    """The initialization section (``ftyp`` + ``moov``)."""


@dataclass(frozen=True, slots=True)
class PlayFrom:
    """Begin presentation at ``start_us`` on the media timeline (before any ``Deliver``).

    The first chunks start at an independent frame at or before this point;
    media before it is decoded but not shown, so playback starts the hold-back
    distance from the live edge even when key frames are a whole segment apart.
    """

    start_us: int
    """Media time to start presenting at (same timeline as ``Deliver.start_us``)."""


@dataclass(frozen=True, slots=True)
class Deliver:
    """Media ready to append to the buffer of ``track``, in order."""

    track: TrackName
    """The track."""
    rendition: str
    """The rendition the media comes from."""
    msn: int
    """Media sequence number of the (parent) segment."""
    part: int | None
    """Part index; ``None`` for a whole segment (which may start before the previous
    delivery's end: a segment fetched whole after its parts were dropped is delivered
    from its start)."""
    data: bytes
    """CMAF fragment bytes (one or more ``moof`` + ``mdat``)."""
    duration_us: int
    """Duration from the playlist, in microseconds."""
    start_us: int
    """Start on the session's media timeline, microseconds. This is the
    PROGRAM-DATE-TIME (UTC µs) when the playlists carry it, else a timeline
    that starts at 0 at the first segment played; the same for every track."""
    pdt_us: int | None
    """PROGRAM-DATE-TIME of the chunk's first sample (UTC µs), when known."""
    independent: bool
    """Starts with an independent frame."""

    def __post_init__(self) -> None:
        if self.duration_us < 0:
            raise ValueError(f"duration must be >= 0, got {self.duration_us}")


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The playlist of ``track`` ended (ENDLIST) and everything was delivered."""

    track: TrackName
    """The track."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The session gave up; no further action follows."""

    reason: str
    """Why, for the user."""


Action = Fetch | Cancel | InitSection | PlayFrom | Deliver | EndOfStream | Failed
"""Everything ``Session.next_action()`` returns."""


@dataclass(frozen=True, slots=True)
class RenditionInfo:
    """A media playlist the session can follow."""

    id: str
    """Short id: the playlist URI's directory name (``720p``, ``audio``), else its path."""
    type: Literal["video", "audio"]
    """``video`` for a variant stream, ``audio`` for an EXT-X-MEDIA audio rendition."""
    uri: str
    """Absolute path (and query) of the media playlist on the origin."""
    bandwidth: int = 0
    """Variant BANDWIDTH in bit/s (0 for audio renditions)."""
    resolution: tuple[int, int] | None = None
    """Variant RESOLUTION (width, height)."""
    codecs: str | None = None
    """Variant CODECS."""
    group: str | None = None
    """Variant: its AUDIO group; audio rendition: its GROUP-ID."""
    name: str | None = None
    """Audio rendition NAME."""
    default: bool = False
    """Audio rendition DEFAULT=YES."""

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a rendition needs an id")
        if not self.uri.startswith("/"):
            raise ValueError(f"rendition URI must be an absolute path, got {self.uri!r}")
        if self.bandwidth < 0:
            raise ValueError(f"bandwidth must be >= 0, got {self.bandwidth}")


Selector = Callable[[Sequence[RenditionInfo]], tuple[str, str | None]]
"""Rendition choice hook: all renditions in -> (variant id, audio rendition id or None)."""


def default_select(renditions: Sequence[RenditionInfo]) -> tuple[str, str | None]:
    """The highest-bandwidth variant and the DEFAULT audio rendition of its group.

    Without a DEFAULT one, the group's first rendition; without an AUDIO group
    (audio muxed in the variant, or none), no audio track.
    """
    variants = [r for r in renditions if r.type == "video"]
    if not variants:
        raise ValueError("no variant stream to choose from")
    best = max(variants, key=lambda r: r.bandwidth)  # first of equals wins
    if best.group is None:
        return best.id, None
    group = [r for r in renditions if r.type == "audio" and r.group == best.group]
    if not group:
        return best.id, None
    audio = next((r for r in group if r.default), group[0])
    return best.id, audio.id


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Tuning of the session core."""

    low_latency: bool = True
    """Use parts, preload hints, blocking reload and delta updates when offered;
    ``False`` behaves as a classic HLS client (whole segments, timed reloads)."""
    prefetch_hint: bool = True
    """Request the EXT-X-PRELOAD-HINT part together with each blocking reload."""
    delta_updates: bool = True
    """Ask for playlist delta updates (``_HLS_skip=YES``) when the server offers them."""
    exact_start: bool = True
    """Emit :class:`PlayFrom` so presentation starts exactly the hold-back from the
    edge; ``False`` starts presenting at the first independent chunk."""
    hold_back: float | None = None
    """Start this many seconds from the live edge instead of the playlist's
    PART-HOLD-BACK / HOLD-BACK (default: 3 target durations without either)."""
    request_timeout: float = 10.0
    """Timeout of a request that is not held by the server: playlists, CMAF headers,
    published parts. It is also the floor of a whole segment's timeout (below)."""
    segment_timeout_factor: float = 3.0
    """Timeout of a whole-segment request (classic HLS: media without parts), as a
    multiple of the time the segment should take. A request for a segment of
    duration ``d`` (seconds) of a variant with ``BANDWIDTH`` ``b`` (bit/s), with
    ``r`` the session's observed throughput on whole segments (bytes/s, an
    average over completed ones; unknown at first), times out after::

        max(request_timeout, k * d, k * (b * d / 8) / r)     k = segment_timeout_factor

    and each further attempt at the same segment waits twice as long as the one
    before (never shorter). Rationale: a timeout is there to notice a dead path,
    not a slow one; abandoning a slow transfer throws away what already arrived
    and starts again from zero behind the same bottleneck. ``k * d`` allows a link
    that carries a third of the media rate (a 6 s segment gets 18 s); the
    ``b * d / 8 / r`` term (the expected size over the observed rate) stretches it
    on links measured slower than that. Doubling on retry guarantees that a
    segment which needs any finite time eventually arrives (within
    ``max_media_retries`` attempts) instead of being retried from zero forever.
    Parts and blocking requests keep ``request_timeout`` / the held timeout."""
    max_segment_inflight: int = 1
    """Whole-segment requests one track may have in flight. Segments are requested
    in playback order: a later segment is never asked for before an earlier one is
    on its way or here. One (the default, as hls.js and most classic players do)
    gives the segment the player needs next all of the bandwidth, so playback can
    start as soon as possible and no request is slowed down by its successors; the
    cost is one idle round trip between segments, a few percent of a multi-second
    segment, which the hold-back absorbs. Two keeps the link busy across that
    round trip, at the price of sharing it while both transfer."""
    blocking_margin: float = 2.0
    """Added to 3 target durations for the timeout of a held request."""
    retry_base: float = 0.1
    """First retry delay after a failure, seconds; doubles per consecutive failure."""
    retry_cap: float = 2.0
    """Longest retry delay, seconds."""
    max_failures: int = 12
    """Consecutive failed requests of one track (or of the multivariant
    playlist) after which the session gives up."""
    max_media_retries: int = 4
    """Failed attempts at one part or segment after which it is skipped."""
    max_inflight: int = 16
    """Media requests one track may have in flight (the preload hint included)."""

    def __post_init__(self) -> None:
        if self.hold_back is not None and self.hold_back < 0:
            raise ValueError(f"hold_back must be >= 0, got {self.hold_back}")
        for name in ("request_timeout", "retry_base", "retry_cap", "segment_timeout_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.blocking_margin < 0:
            raise ValueError(f"blocking_margin must be >= 0, got {self.blocking_margin}")
        for name in ("max_failures", "max_media_retries", "max_inflight", "max_segment_inflight"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
