"""Playlist model -> text.

The output is canonical: one fixed tag order, attributes in a fixed order, every
decimal through :func:`llhls.timing.format_decimal`, ``\\n`` line ends and a final
newline. :mod:`llhls.playlist.parse` reads it back to an equal model.

Media playlist layout::

    #EXTM3U
    #EXT-X-VERSION / TARGETDURATION / PLAYLIST-TYPE / INDEPENDENT-SEGMENTS
    #EXT-X-SERVER-CONTROL / PART-INF / MEDIA-SEQUENCE / DISCONTINUITY-SEQUENCE
    #EXT-X-MAP / SKIP
    per segment: DISCONTINUITY, MAP, PROGRAM-DATE-TIME, PART..., GAP, EXTINF, BYTERANGE, URI
    the open segment: DISCONTINUITY, MAP, PROGRAM-DATE-TIME, PART...
    #EXT-X-PRELOAD-HINT / RENDITION-REPORT... / ENDLIST

A live origin renders the same parts, durations and dates again for every
playlist request, so their text is remembered (bounded caches keyed by the
values it is made of). The lines of a complete segment are also remembered by
the (immutable) segment object an origin lists again and again: the cache
holds the object itself and checks it is the same one, so a reused ``id`` can
never return another segment's text.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import TypeVar

from llhls.playlist.model import (
    ByteRange,
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
)
from llhls.timing import format_decimal

__all__ = ["render", "render_media", "render_multivariant", "format_pdt"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")

_CACHE_SIZE = 4096
"""Entries per text cache (emptied when full: a cheap bound)."""
_PDT_TEXT: dict[int, str] = {}
_DEC_TEXT: dict[tuple[int, int], str] = {}
_PART_TEXT: dict[tuple[str, int, int, bool, bool, ByteRange | None], str] = {}
_SEGMENT_TEXT: dict[int, tuple[Segment, str]] = {}


def _remembered(cache: dict[_K, str], key: _K, make: Callable[[_V], str], value: _V) -> str:
    """``make(value)``, remembered in ``cache`` under ``key`` (emptied when full)."""
    text = cache.get(key)
    if text is None:
        text = make(value)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[key] = text
    return text


def _pdt_text(pdt_ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=pdt_ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{pdt_ms % 1000:03d}Z"


def format_pdt(pdt_ms: int) -> str:
    """UTC milliseconds since the epoch as ``YYYY-MM-DDThh:mm:ss.mmmZ``."""
    return _remembered(_PDT_TEXT, pdt_ms, _pdt_text, pdt_ms)


def _dec(value: Fraction | int) -> str:
    if not isinstance(value, Fraction | int):
        return format_decimal(value)
    return _remembered(_DEC_TEXT, (value.numerator, value.denominator), format_decimal, value)


def _q(value: str) -> str:
    return f'"{value}"'


def _byterange(br: ByteRange) -> str:
    return f"{br.length}" if br.offset is None else f"{br.length}@{br.offset}"


def _map(m: Map) -> str:
    attrs = [f"URI={_q(m.uri)}"]
    if m.byterange is not None:
        attrs.append(f"BYTERANGE={_q(_byterange(m.byterange))}")
    return "#EXT-X-MAP:" + ",".join(attrs)


def _part(p: Part) -> str:
    d = p.duration
    key = (p.uri, d.numerator, d.denominator, p.independent, p.gap, p.byterange)
    return _remembered(_PART_TEXT, key, _part_text, p)


def _part_text(p: Part) -> str:
    attrs = [f"DURATION={_dec(p.duration)}", f"URI={_q(p.uri)}"]
    if p.independent:
        attrs.append("INDEPENDENT=YES")
    if p.byterange is not None:
        attrs.append(f"BYTERANGE={_q(_byterange(p.byterange))}")
    if p.gap:
        attrs.append("GAP=YES")
    return "#EXT-X-PART:" + ",".join(attrs)


def _server_control(sc: ServerControl) -> str:
    attrs = []
    if sc.can_block_reload:
        attrs.append("CAN-BLOCK-RELOAD=YES")
    if sc.can_skip_until is not None:
        attrs.append(f"CAN-SKIP-UNTIL={_dec(sc.can_skip_until)}")
    if sc.can_skip_dateranges:
        attrs.append("CAN-SKIP-DATERANGES=YES")
    if sc.hold_back is not None:
        attrs.append(f"HOLD-BACK={_dec(sc.hold_back)}")
    if sc.part_hold_back is not None:
        attrs.append(f"PART-HOLD-BACK={_dec(sc.part_hold_back)}")
    return "#EXT-X-SERVER-CONTROL:" + ",".join(attrs)


def _skip(skip: Skip) -> str:
    line = f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skip.skipped_segments}"
    if skip.recently_removed_dateranges is not None:
        ids = "\t".join(skip.recently_removed_dateranges)
        line += f",RECENTLY-REMOVED-DATERANGES={_q(ids)}"
    return line


def _hint(hint: PreloadHint) -> str:
    attrs = [f"TYPE={hint.type}", f"URI={_q(hint.uri)}"]
    if hint.byterange_start is not None:
        attrs.append(f"BYTERANGE-START={hint.byterange_start}")
    if hint.byterange_length is not None:
        attrs.append(f"BYTERANGE-LENGTH={hint.byterange_length}")
    return "#EXT-X-PRELOAD-HINT:" + ",".join(attrs)


def _report(report: RenditionReport) -> str:
    line = f"#EXT-X-RENDITION-REPORT:URI={_q(report.uri)},LAST-MSN={report.last_msn}"
    if report.last_part is not None:
        line += f",LAST-PART={report.last_part}"
    return line


def _segment_head(out: list[str], seg: Segment | OpenSegment) -> None:
    if seg.discontinuity:
        out.append("#EXT-X-DISCONTINUITY")
    if seg.map is not None:
        out.append(_map(seg.map))
    if seg.pdt_ms is not None:
        out.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_pdt(seg.pdt_ms)}")
    out.extend(_part(p) for p in seg.parts)


def _segment_text(seg: Segment) -> str:
    """The lines of a complete segment (no final line break), remembered per object."""
    hit = _SEGMENT_TEXT.get(id(seg))
    if hit is not None and hit[0] is seg:
        return hit[1]
    out: list[str] = []
    _segment_head(out, seg)
    if seg.gap:
        out.append("#EXT-X-GAP")
    out.append(f"#EXTINF:{_dec(seg.duration)},{seg.title if seg.title is not None else ''}")
    if seg.byterange is not None:
        out.append(f"#EXT-X-BYTERANGE:{_byterange(seg.byterange)}")
    out.append(seg.uri)
    text = "\n".join(out)
    if len(_SEGMENT_TEXT) >= _CACHE_SIZE:
        _SEGMENT_TEXT.clear()
    _SEGMENT_TEXT[id(seg)] = (seg, text)
    return text


def render_media(pl: MediaPlaylist) -> str:
    """Render a media playlist to canonical text."""
    out = ["#EXTM3U"]
    if pl.version is not None:
        out.append(f"#EXT-X-VERSION:{pl.version}")
    out.append(f"#EXT-X-TARGETDURATION:{pl.target_duration}")
    if pl.playlist_type is not None:
        out.append(f"#EXT-X-PLAYLIST-TYPE:{pl.playlist_type}")
    if pl.independent_segments:
        out.append("#EXT-X-INDEPENDENT-SEGMENTS")
    if pl.server_control is not None:
        out.append(_server_control(pl.server_control))
    if pl.part_target is not None:
        out.append(f"#EXT-X-PART-INF:PART-TARGET={_dec(pl.part_target)}")
    out.append(f"#EXT-X-MEDIA-SEQUENCE:{pl.media_sequence}")
    if pl.discontinuity_sequence is not None:
        out.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{pl.discontinuity_sequence}")
    if pl.map is not None:
        out.append(_map(pl.map))
    if pl.skip is not None:
        out.append(_skip(pl.skip))
    out.extend(_segment_text(seg) for seg in pl.segments)
    if pl.open_segment is not None:
        _segment_head(out, pl.open_segment)
    out.extend(_hint(h) for h in pl.preload_hints)
    out.extend(_report(r) for r in pl.rendition_reports)
    if pl.endlist:
        out.append("#EXT-X-ENDLIST")
    return "\n".join(out) + "\n"


def _media(r: Rendition) -> str:
    attrs = [f"TYPE={r.type}", f"GROUP-ID={_q(r.group_id)}", f"NAME={_q(r.name)}"]
    if r.language is not None:
        attrs.append(f"LANGUAGE={_q(r.language)}")
    if r.default:
        attrs.append("DEFAULT=YES")
    if r.autoselect:
        attrs.append("AUTOSELECT=YES")
    if r.channels is not None:
        attrs.append(f"CHANNELS={_q(r.channels)}")
    if r.uri is not None:
        attrs.append(f"URI={_q(r.uri)}")
    return "#EXT-X-MEDIA:" + ",".join(attrs)


def _stream_inf(v: Variant) -> str:
    attrs = [f"BANDWIDTH={v.bandwidth}"]
    if v.average_bandwidth is not None:
        attrs.append(f"AVERAGE-BANDWIDTH={v.average_bandwidth}")
    if v.codecs is not None:
        attrs.append(f"CODECS={_q(v.codecs)}")
    if v.resolution is not None:
        attrs.append(f"RESOLUTION={v.resolution[0]}x{v.resolution[1]}")
    if v.frame_rate is not None:
        attrs.append(f"FRAME-RATE={format_decimal(v.frame_rate, 3)}")
    if v.audio is not None:
        attrs.append(f"AUDIO={_q(v.audio)}")
    return "#EXT-X-STREAM-INF:" + ",".join(attrs)


def render_multivariant(pl: MultivariantPlaylist) -> str:
    """Render a multivariant playlist to canonical text."""
    out = ["#EXTM3U"]
    if pl.version is not None:
        out.append(f"#EXT-X-VERSION:{pl.version}")
    if pl.independent_segments:
        out.append("#EXT-X-INDEPENDENT-SEGMENTS")
    out.extend(_media(r) for r in pl.renditions)
    for v in pl.variants:
        out.append(_stream_inf(v))
        out.append(v.uri)
    return "\n".join(out) + "\n"


def render(pl: MediaPlaylist | MultivariantPlaylist) -> str:
    """Render either kind of playlist."""
    if isinstance(pl, MediaPlaylist):
        return render_media(pl)
    return render_multivariant(pl)
