"""The origin's in-memory store: what the packager publishes, as the origin serves it.

Pure: no asyncio, no clock reads. Every method that depends on time takes ``now``,
seconds on the same monotonic clock (:meth:`llhls.timing.Clock.monotonic`) the origin
service uses. The packager's pipeline publishes with :meth:`Store.add_stream`,
:meth:`Store.set_init`, :meth:`Store.add_part`, :meth:`Store.close_segment` (or
:meth:`Store.add_segment` for whole segments, e.g. classic HLS without parts) and
:meth:`Store.end_stream`; each bumps :attr:`Store.version`, after which the pipeline
calls the service's ``notify()`` so blocked requests re-check.

Playlist upkeep (``llhls-server-rules.md``):

* TARGETDURATION = ceil(segment target), never changes; HOLD-BACK = 3 TD,
  CAN-SKIP-UNTIL = 6 TD, PART-HOLD-BACK = 3 x PART-TARGET, CAN-BLOCK-RELOAD=YES.
* Complete segments stay listed while the rest still covers the window (at least
  3 TD); a segment leaving it stays fetchable for its Availability Duration (the
  time it was added plus its duration plus the longest playlist it was in), and at
  least one more TD.
* Part tags are listed for segments starting within the last 3 TD of the playlist;
  part files stay fetchable 3 TD after their tags go.
* Playlists are rendered (and gzipped) at most once per stream version and the
  bytes shared among all requests.

Publishing is the simulator's hot path, so the store keeps what only changes when it
does: values derived from the (immutable) spec, each complete segment's and part's
playlist tags (a segment's reset when its part tags go), rendition reports and delta
skip counts; a closed segment's bytes are joined from its parts on first request.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import islice

from llhls.origin.specs import (
    PartStatus,
    Position,
    RenderedPlaylist,
    RenditionSpec,
    SkipMode,
    StreamInfo,
    StreamSpec,
    check_positive,
    init_uri,
    media_playlist_uri,
    part_uri,
    segment_uri,
)
from llhls.playlist.model import (
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    OpenSegment,
    Part,
    PreloadHint,
    Rendition,
    RenditionReport,
    Segment,
    ServerControl,
    Skip,
    Variant,
    exact_add,
)
from llhls.playlist.render import render_media, render_multivariant
from llhls.playlist.rules import (
    can_skip_until,
    hold_back,
    media_version,
    part_duration_ok,
    part_hold_back,
    part_tag_horizon,
    segment_duration_ok,
    skip_boundary,
)

__all__ = [
    "RenditionSpec",
    "StreamSpec",
    "SkipMode",
    "StreamInfo",
    "Position",
    "PartStatus",
    "RenderedPlaylist",
    "Store",
    "media_playlist_uri",
    "init_uri",
    "segment_uri",
    "part_uri",
]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Part:
    data: bytes
    duration: Fraction
    independent: bool
    pdt_us: int
    tag: Part | None = None
    """Its EXT-X-PART model, made on first use (a part never changes)."""


@dataclass(slots=True)
class _Seg:
    msn: int
    start: Fraction
    pdt_us: int
    discontinuity: bool
    parts: list[_Part] = field(default_factory=list)
    duration: Fraction = Fraction(0)
    """Set when the segment closes (or is added whole)."""
    data: bytes | None = None
    """Its bytes: a whole segment's, or its parts' joined on first request."""
    joinable: bool = False
    """Complete, still fetchable, and :attr:`data` may come from its parts (which keep
    their bytes for it)."""
    closed_at: float = 0.0
    show_parts: bool = True
    parts_expire: float | None = None
    parts_freed: bool = False
    tags_until: Fraction = Fraction(0)
    """Its part tags go once the playlist's end passes this (start + 3 TD)."""
    tag: Segment | None = None
    """Its playlist model once complete; reset when its part tags go."""


@dataclass(slots=True)
class _Rendition:
    spec: RenditionSpec
    next_msn: int
    init: bytes | None = None
    listed: deque[_Seg] = field(default_factory=deque)
    listed_duration: Fraction = Fraction(0)
    open: _Seg | None = None
    end: Fraction = Fraction(0)
    has_media: bool = False
    ever_discontinuity: bool = False
    discontinuity_sequence: int = 0
    retired: deque[tuple[_Seg, float]] = field(default_factory=deque)
    dropping: deque[_Seg] = field(default_factory=deque)
    tagged: deque[_Seg] = field(default_factory=deque)
    """Listed segments that showed part tags when appended, oldest first; a prefix of
    them may have lost their tags to the window since."""
    appended: bool = False
    """A segment was listed since the last trim: the window may have to slide."""
    # The longest playlist (listed segments and open parts, measured after each trim)
    # is kept lazily: listed and open segments are contiguous, so after a trim the
    # playlist spans ``end - span_start``, which only grows until the window slides.
    span_start: Fraction = Fraction(0)
    """Start of the first listed (else the open) segment, as of the last trim."""
    trimmed_end: Fraction = Fraction(0)
    """``end`` at the last trim."""
    longest_before: Fraction = Fraction(0)
    """The longest playlist measured while the span started earlier."""
    changed: int = 0
    """Store version of the rendition's last change."""
    report: tuple[int, RenditionReport | None] | None = None
    """Its rendition report, with :attr:`changed` when it was made."""
    skip_key: tuple[int, int] = (-1, -1)
    """First MSN and count of the listed segments :attr:`skip_count` belongs to."""
    skip_count: int = 0
    """Leading listed segments a delta update skips."""


@dataclass(slots=True)
class _Stream:
    spec: StreamSpec
    renditions: dict[str, _Rendition]
    version: int
    info: StreamInfo
    # Derived from the (immutable) spec once, rather than on every call:
    td: int
    part_target: Fraction | None
    """The declared PART-TARGET (``None``: classic HLS)."""
    window: Fraction
    tag_horizon: Fraction
    tag_horizon_s: float
    skip_until: Fraction
    nominal_parts: int
    """Parts per segment at PART-TARGET (1 without parts)."""
    server_control: ServerControl
    map: Map
    ended: bool = False


def _new_stream(spec: StreamSpec, first_msn: int) -> _Stream:
    td = spec.target_duration
    pt = spec.declared_part_target
    horizon = part_tag_horizon(td)
    skip_until = can_skip_until(td)
    return _Stream(
        spec=spec,
        renditions={r.id: _Rendition(spec=r, next_msn=first_msn) for r in spec.renditions},
        version=0,
        info=StreamInfo(
            name=spec.name,
            target_duration=td,
            part_target=pt,
            renditions=tuple(r.id for r in spec.renditions),
            audio_renditions=tuple(r.id for r in spec.renditions if r.kind == "audio"),
            ended=False,
            can_block_reload=spec.can_block_reload,
        ),
        td=td,
        part_target=pt,
        window=spec.effective_window,
        tag_horizon=horizon,
        tag_horizon_s=float(horizon),
        skip_until=skip_until,
        nominal_parts=math.ceil(spec.segment_target / pt) if pt is not None else 1,
        server_control=ServerControl(
            can_block_reload=spec.can_block_reload,
            can_skip_until=skip_until,
            hold_back=hold_back(td),
            part_hold_back=part_hold_back(pt) if pt is not None else None,
        ),
        map=Map(init_uri()),
    )


def _free_parts(seg: _Seg) -> None:
    for part in seg.parts:
        part.data = b""


def _segment_bytes(seg: _Seg) -> bytes | None:
    """A complete segment's bytes (``None``: no longer kept)."""
    if seg.data is None and seg.joinable:
        seg.data = b"".join(p.data for p in seg.parts)
        if seg.parts_freed:
            _free_parts(seg)  # kept only for this
    return seg.data


def _as_fraction(value: Fraction) -> Fraction:
    return value if type(value) is Fraction else Fraction(value)


def _lt(a: Fraction, b: Fraction) -> bool:
    """``a < b`` for two Fractions (positive denominators), without the generic
    comparison's ABC checks: the store compares times on every part."""
    return a.numerator * b.denominator < b.numerator * a.denominator


class Store:
    """Streams, their renditions, segments and parts; rendered playlists cached."""

    def __init__(self, gzip_level: int = 6) -> None:
        """``gzip_level``: compression level of gzip-encoded playlists (1-9)."""
        if not 1 <= gzip_level <= 9:
            raise ValueError(f"gzip_level must be 1..9, got {gzip_level}")
        self._version = 0
        self._gzip_level = gzip_level
        self._streams: dict[str, _Stream] = {}
        self._cache: dict[tuple[str, str, str], tuple[int, RenderedPlaylist]] = {}

    # -- publishing -----------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumps on every change; waiters re-check when it changes."""
        return self._version

    def _bump(self, st: _Stream, r: _Rendition | None = None) -> None:
        self._version += 1
        st.version = self._version
        if r is not None:
            r.changed = self._version

    def add_stream(self, spec: StreamSpec, first_msn: int = 0) -> None:
        """Create a stream; ``first_msn`` numbers its first segment (e.g. to continue
        after a publisher restart so old ``_HLS_msn`` values stay meaningful)."""
        if spec.name in self._streams:
            raise ValueError(f"stream {spec.name!r} exists already")
        if isinstance(first_msn, bool) or not isinstance(first_msn, int) or first_msn < 0:
            raise ValueError(f"first_msn must be a non-negative int, got {first_msn!r}")
        self._streams[spec.name] = _new_stream(spec, first_msn)
        self._bump(self._streams[spec.name])

    def _live(self, name: str, rid: str) -> tuple[_Stream, _Rendition]:
        st = self._streams.get(name)
        if st is None:
            raise ValueError(f"unknown stream {name!r}")
        r = st.renditions.get(rid)
        if r is None:
            raise ValueError(f"stream {name!r} has no rendition {rid!r}")
        if st.ended:
            raise ValueError(f"stream {name!r} has ended")
        return st, r

    def set_init(self, name: str, rid: str, data: bytes) -> None:
        """Set the CMAF header (``init.mp4``) of a rendition; call before its first part."""
        st, r = self._live(name, rid)
        r.init = bytes(data)
        self._bump(st, r)

    def add_part(
        self,
        name: str,
        rid: str,
        msn: int,
        index: int,
        data: bytes,
        duration: Fraction,
        independent: bool,
        pdt_us: int,
        now: float,
        discontinuity: bool = False,
    ) -> None:
        """Publish part ``index`` of segment ``msn``.

        Parts arrive in order; index 0 starts segment ``msn`` (closing the previous
        segment if :meth:`close_segment` was not called). ``pdt_us`` is the UTC time of
        the part's first sample in microseconds; ``discontinuity`` (index 0 only) puts
        EXT-X-DISCONTINUITY before the segment.
        """
        st, r = self._live(name, rid)
        declared = st.part_target
        if declared is None:
            raise ValueError(f"stream {name!r} has no parts (classic HLS): use add_segment")
        check_positive(duration, "part duration")
        if r.open is not None and msn == r.open.msn + 1 and index == 0:
            self._close(st, r, now)
        if r.open is None:
            if msn != r.next_msn or index != 0:
                raise ValueError(f"{name}/{rid}: expected part {r.next_msn}.0, got {msn}.{index}")
            r.open = _Seg(msn=msn, start=r.end, pdt_us=pdt_us, discontinuity=discontinuity)
        elif msn != r.open.msn or index != len(r.open.parts):
            expected = f"{r.open.msn}.{len(r.open.parts)}"
            raise ValueError(f"{name}/{rid}: expected part {expected}, got {msn}.{index}")
        d = _as_fraction(duration)
        if _lt(declared, d) and not part_duration_ok(d, declared, exempt=True):
            logger.warning(
                "%s/%s part %d.%d lasts %s s, above PART-TARGET %s s",
                name,
                rid,
                msn,
                index,
                float(d),
                float(declared),
            )
        r.open.parts.append(_Part(bytes(data), d, independent, pdt_us))
        r.end = exact_add(r.end, d)
        r.has_media = True
        r.ever_discontinuity |= discontinuity
        self._trim(st, r, now)
        self._bump(st, r)

    def close_segment(self, name: str, rid: str, msn: int, now: float) -> None:
        """Segment ``msn`` is complete: its bytes are its parts' concatenation, its
        duration their sum."""
        st, r = self._live(name, rid)
        if r.open is None or r.open.msn != msn:
            have = "none" if r.open is None else str(r.open.msn)
            raise ValueError(f"{name}/{rid}: cannot close segment {msn}; open segment: {have}")
        self._close(st, r, now)
        self._trim(st, r, now)
        self._bump(st, r)

    def add_segment(
        self,
        name: str,
        rid: str,
        msn: int,
        data: bytes,
        duration: Fraction,
        pdt_us: int,
        now: float,
        discontinuity: bool = False,
    ) -> None:
        """Publish a whole segment without parts (classic HLS, or a segment that was
        never split). No segment may be open."""
        st, r = self._live(name, rid)
        check_positive(duration, "segment duration")
        if r.open is not None or msn != r.next_msn:
            raise ValueError(f"{name}/{rid}: expected segment {r.next_msn}, got {msn}")
        seg = _Seg(msn=msn, start=r.end, pdt_us=pdt_us, discontinuity=discontinuity)
        seg.duration = _as_fraction(duration)
        seg.data = bytes(data)
        seg.closed_at = now
        seg.show_parts = False
        seg.parts_freed = True
        r.end += seg.duration
        r.has_media = True
        r.ever_discontinuity |= discontinuity
        self._append(st, r, seg)
        self._trim(st, r, now)
        self._bump(st, r)

    def end_stream(self, name: str, now: float) -> None:
        """Add EXT-X-ENDLIST: open segments are closed, hints removed; blocked
        requests get their answer once the service is notified."""
        st = self._streams.get(name)
        if st is None:
            raise ValueError(f"unknown stream {name!r}")
        if st.ended:
            return
        for r in st.renditions.values():
            if r.open is not None:
                self._close(st, r, now)
            self._trim(st, r, now)
        st.ended = True
        st.info = replace(st.info, ended=True)
        self._bump(st)
        for r in st.renditions.values():
            r.changed = self._version

    def _close(self, st: _Stream, r: _Rendition, now: float) -> None:
        seg = r.open
        assert seg is not None
        seg.joinable = True  # its bytes are joined when first requested
        seg.duration = r.end - seg.start  # the sum of its parts: segments are contiguous
        seg.closed_at = now
        r.open = None
        self._append(st, r, seg)

    def _append(self, st: _Stream, r: _Rendition, seg: _Seg) -> None:
        td = st.td
        if not segment_duration_ok(seg.duration, td):
            logger.warning(
                "%s/%s segment %d lasts %s s, above TARGETDURATION %d",
                st.spec.name,
                r.spec.id,
                seg.msn,
                float(seg.duration),
                td,
            )
        r.listed.append(seg)
        r.listed_duration += seg.duration
        r.next_msn = seg.msn + 1
        r.appended = True
        if seg.show_parts:
            seg.tags_until = seg.start + st.tag_horizon
            r.tagged.append(seg)

    def _drop_part_tags(self, st: _Stream, r: _Rendition, seg: _Seg, now: float) -> None:
        seg.show_parts = False
        seg.tag = None
        if not seg.parts_freed:
            seg.parts_expire = now + st.tag_horizon_s
            r.dropping.append(seg)

    def _trim(self, st: _Stream, r: _Rendition, now: float) -> None:
        """Drop old part tags and segments; free files whose retention has passed."""
        tagged = r.tagged
        # Part tags go from segments starting more than 3 TD before the playlist's end.
        while tagged and (not tagged[0].show_parts or _lt(tagged[0].tags_until, r.end)):
            seg = tagged.popleft()
            if seg.show_parts:
                self._drop_part_tags(st, r, seg, now)
        if r.appended:  # only a new listed segment can make the window slide
            r.appended = False
            listed = r.listed
            window = st.window
            if len(listed) > 1 and r.listed_duration - listed[0].duration >= window:
                longest = max(r.longest_before, r.trimmed_end - r.span_start)
                r.longest_before = longest
                while len(listed) > 1 and r.listed_duration - listed[0].duration >= window:
                    seg = listed.popleft()
                    r.listed_duration -= seg.duration
                    if seg.show_parts:
                        self._drop_part_tags(st, r, seg, now)
                    if seg.discontinuity:
                        r.discontinuity_sequence += 1
                    keep_until = max(
                        now + st.td,
                        seg.closed_at + float(seg.duration + longest),
                    )
                    r.retired.append((seg, keep_until))
                r.span_start = listed[0].start
        r.trimmed_end = r.end
        dropping = r.dropping
        while dropping and dropping[0].parts_expire is not None:
            if dropping[0].parts_expire >= now:
                break
            seg = dropping.popleft()
            seg.parts_freed = True
            if not seg.joinable or seg.data is not None:  # no segment still needs them
                _free_parts(seg)
        retired = r.retired
        while retired and retired[0][1] < now:
            seg, _ = retired.popleft()
            seg.data = None
            seg.joinable = False
            if seg.parts_freed:
                _free_parts(seg)

    # -- queries --------------------------------------------------------------------

    def streams(self) -> tuple[str, ...]:
        """Names of the streams."""
        return tuple(self._streams)

    def stream_info(self, name: str) -> StreamInfo | None:
        """Facts about stream ``name`` (``None``: unknown)."""
        st = self._streams.get(name)
        return None if st is None else st.info

    def _rendition(self, name: str, rid: str) -> tuple[_Stream, _Rendition] | None:
        st = self._streams.get(name)
        if st is None:
            return None
        r = st.renditions.get(rid)
        return None if r is None else (st, r)

    def position(self, name: str, rid: str) -> Position | None:
        """The live edge of a rendition (``None``: unknown)."""
        found = self._rendition(name, rid)
        if found is None:
            return None
        r = found[1]
        open_parts = len(r.open.parts) if r.open is not None else 0
        return Position(next_msn=r.next_msn, open_parts=open_parts, has_media=r.has_media)

    def _find(self, r: _Rendition, msn: int) -> _Seg | None:
        if r.open is not None and r.open.msn == msn:
            return r.open
        if r.listed and r.listed[0].msn <= msn <= r.listed[-1].msn:
            return r.listed[msn - r.listed[0].msn]
        for seg, _ in r.retired:
            if seg.msn == msn:
                return seg
        return None

    def reached(self, name: str, rid: str, msn: int, part: int | None) -> bool:
        """Whether a blocking request for ``msn`` (and ``part``) can be answered: the
        segment (or part, or a later one) exists. A part index past its segment's last
        part means part 0 of the next segment."""
        found = self._rendition(name, rid)
        if found is None:
            return False
        r = found[1]
        if part is None:
            return r.next_msn - 1 >= msn
        if msn < r.next_msn:
            seg = self._find(r, msn)
            if seg is None or part < len(seg.parts):
                return True  # long gone, or that part exists
            return msn + 1 < r.next_msn or r.open is not None
        if msn == r.next_msn:
            return r.open is not None and part < len(r.open.parts)
        return False

    def parts_ahead(self, name: str, rid: str, msn: int, index: int) -> int:
        """How many parts past the last published one part ``index`` of ``msn`` is
        (<= 0: already published or past). Later segments are counted at their nominal
        number of parts."""
        found = self._rendition(name, rid)
        if found is None:
            return 0
        st, r = found
        if msn < r.next_msn:
            return 0
        open_parts = len(r.open.parts) if r.open is not None else 0
        if msn == r.next_msn:
            return index - open_parts + 1
        nominal = st.nominal_parts
        remaining = max(0, nominal - open_parts)
        return remaining + (msn - r.next_msn - 1) * nominal + index + 1

    def init_data(self, name: str, rid: str) -> bytes | None:
        """The rendition's CMAF header, if set."""
        found = self._rendition(name, rid)
        return None if found is None else found[1].init

    def segment_data(self, name: str, rid: str, msn: int, now: float) -> bytes | None:
        """Bytes of complete segment ``msn`` while it is fetchable."""
        found = self._rendition(name, rid)
        if found is None:
            return None
        r = found[1]
        if r.listed and r.listed[0].msn <= msn <= r.listed[-1].msn:
            return _segment_bytes(r.listed[msn - r.listed[0].msn])
        for seg, keep_until in r.retired:
            if seg.msn == msn:
                return _segment_bytes(seg) if now <= keep_until else None
        return None

    def part_status(self, name: str, rid: str, msn: int, index: int, now: float) -> PartStatus:
        """Whether part ``index`` of ``msn`` can be served, is yet to come, or is gone."""
        found = self._rendition(name, rid)
        if found is None:
            return PartStatus("gone")
        st, r = found
        if st.spec.part_target is None:
            return PartStatus("gone")
        seg = self._find(r, msn)
        if seg is not None and index < len(seg.parts):
            expired = seg.parts_expire is not None and now > seg.parts_expire
            if seg.parts_freed or expired:
                return PartStatus("gone")
            return PartStatus("ready", data=seg.parts[index].data)
        if st.ended or msn < r.next_msn:
            return PartStatus("gone")  # unknown, or withdrawn: its segment closed without it
        return PartStatus("future", ahead=self.parts_ahead(name, rid, msn, index))

    # -- playlists ------------------------------------------------------------------

    def multivariant_playlist(self, name: str) -> RenderedPlaylist | None:
        """The stream's multivariant playlist (``None``: unknown stream)."""
        st = self._streams.get(name)
        if st is None:
            return None
        key = (name, "", "")
        hit = self._cache.get(key)
        if hit is not None and hit[0] == st.version:
            return hit[1]
        text = render_multivariant(self.multivariant_model(name)).encode()
        rendered = RenderedPlaylist(text, self._gzip_level)
        self._cache[key] = (st.version, rendered)
        return rendered

    def media_playlist(self, name: str, rid: str, skip: SkipMode = "") -> RenderedPlaylist | None:
        """A rendition's media playlist; ``skip`` asks for a delta update (ignored after
        the end, and a full playlist when nothing is old enough to skip)."""
        found = self._rendition(name, rid)
        if found is None:
            return None
        st, _ = found
        key = (name, rid, skip)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == st.version:
            return hit[1]
        model = self.media_model(name, rid, skip)
        if skip and model.skip is None:
            rendered = self.media_playlist(name, rid, "")
            assert rendered is not None
        else:
            rendered = RenderedPlaylist(render_media(model).encode(), self._gzip_level)
        self._cache[key] = (st.version, rendered)
        return rendered

    def multivariant_model(self, name: str) -> MultivariantPlaylist:
        """The multivariant playlist model of stream ``name``."""
        spec = self._streams[name].spec
        videos = [r for r in spec.renditions if r.kind == "video"]
        audios = [r for r in spec.renditions if r.kind == "audio"]
        group = spec.audio_group
        renditions = tuple(
            Rendition(
                type="AUDIO",
                group_id=group,
                name=a.id,
                uri=media_playlist_uri(a.id),
                default=i == 0,
                autoselect=True,
                channels=str(a.channels) if a.channels > 0 else None,
            )
            for i, a in enumerate(audios)
            if videos
        )
        audio_peak = max((a.bandwidth for a in audios), default=0)
        audio_avg = max((a.average_bandwidth for a in audios), default=0)
        audio_codecs = list(dict.fromkeys(a.codec for a in audios))
        variants: list[Variant] = []
        for v in videos:
            variants.append(
                Variant(
                    uri=media_playlist_uri(v.id),
                    bandwidth=v.bandwidth + audio_peak,
                    average_bandwidth=v.average_bandwidth + audio_avg,
                    codecs=",".join([v.codec, *audio_codecs]),
                    resolution=(v.width, v.height) if v.width > 0 and v.height > 0 else None,
                    frame_rate=v.frame_rate,
                    audio=group if audios else None,
                )
            )
        if not videos:
            variants = [
                Variant(
                    uri=media_playlist_uri(a.id),
                    bandwidth=a.bandwidth,
                    average_bandwidth=a.average_bandwidth,
                    codecs=a.codec,
                )
                for a in audios
            ]
        return MultivariantPlaylist(
            variants=tuple(variants), renditions=renditions, independent_segments=True
        )

    def _part_tags(self, seg: _Seg) -> tuple[Part, ...]:
        tags: list[Part] = []
        for i, p in enumerate(seg.parts):
            tag = p.tag
            if tag is None:
                tag = p.tag = Part(
                    uri=part_uri(seg.msn, i), duration=p.duration, independent=p.independent
                )
            tags.append(tag)
        return tuple(tags)

    def _segment_tag(self, seg: _Seg) -> Segment:
        tag = seg.tag
        if tag is None:
            tag = seg.tag = Segment(
                uri=segment_uri(seg.msn),
                duration=seg.duration,
                pdt_ms=seg.pdt_us // 1000,
                parts=self._part_tags(seg) if seg.show_parts else (),
                discontinuity=seg.discontinuity,
            )
        return tag

    def _report(self, r: _Rendition) -> RenditionReport | None:
        cached = r.report
        if cached is not None and cached[0] == r.changed:
            return cached[1]
        report = self._make_report(r)
        r.report = (r.changed, report)
        return report

    def _make_report(self, r: _Rendition) -> RenditionReport | None:
        if not r.has_media:
            return None
        uri = f"../{media_playlist_uri(r.spec.id)}"
        if r.open is not None:
            return RenditionReport(uri, r.open.msn, len(r.open.parts) - 1)
        last = r.listed[-1] if r.listed else None
        if last is None:
            return None
        return RenditionReport(uri, last.msn, len(last.parts) - 1 if last.parts else None)

    def _skip_count(self, st: _Stream, r: _Rendition) -> int:
        """Leading listed segments a delta update replaces (they never change while
        the same segments are listed)."""
        key = (r.listed[0].msn, len(r.listed)) if r.listed else (r.next_msn, 0)
        if key != r.skip_key:
            r.skip_count = skip_boundary([s.duration for s in r.listed], st.skip_until)
            r.skip_key = key
        return r.skip_count

    def media_model(self, name: str, rid: str, skip: SkipMode = "") -> MediaPlaylist:
        """The media playlist model of a rendition as it stands."""
        st = self._streams[name]
        r = st.renditions[rid]
        pt = st.part_target
        listed = r.listed
        media_sequence = listed[0].msn if listed else r.next_msn
        skip_tag = None
        shown: Iterable[_Seg] = listed
        if skip and not st.ended:
            count = self._skip_count(st, r)
            if count > 0:
                skip_tag = Skip(count, () if skip == "v2" else None)
                shown = islice(listed, count, None)
        segments = tuple([self._segment_tag(s) for s in shown])
        open_segment = None
        if r.open is not None:
            open_segment = OpenSegment(
                parts=self._part_tags(r.open),
                pdt_ms=r.open.pdt_us // 1000,
                discontinuity=r.open.discontinuity,
            )
        hints: tuple[PreloadHint, ...] = ()
        if pt is not None and not st.ended:
            next_index = len(r.open.parts) if r.open is not None else 0
            hints = (PreloadHint(uri=part_uri(r.next_msn, next_index)),)
        reports = tuple(
            report
            for other in st.renditions.values()
            if other is not r
            for report in (self._report(other),)
            if report is not None
        )
        version = media_version(
            fractional_durations=any(s.duration.denominator != 1 for s in segments),
            byterange=False,
            map_tag=True,
            skip=skip_tag,
        )
        return MediaPlaylist(
            target_duration=st.td,
            version=version,
            media_sequence=media_sequence,
            discontinuity_sequence=r.discontinuity_sequence if r.ever_discontinuity else None,
            part_target=pt,
            server_control=st.server_control,
            map=st.map,
            skip=skip_tag,
            segments=segments,
            open_segment=open_segment,
            preload_hints=hints,
            rendition_reports=reports,
            endlist=st.ended,
        )
