"""Playlist text -> model.

:func:`parse_media` and :func:`parse_multivariant` read what
:mod:`llhls.playlist.render` writes back to an equal model, and read other servers'
playlists well enough for a player: unknown tags and comments are ignored, as the
spec asks of clients. Malformed input raises :class:`~llhls.errors.PlaylistError`
carrying the 1-based line number.

Decimals become exact :class:`~fractions.Fraction` values of the written digits, so
``parse_media(render_media(pl)) == pl`` whenever ``pl``'s decimals have at most five
places (three for ``FRAME-RATE``); other values are rounded up by the renderer.

A live client parses the same lines again on every reload (the parts, segments
and dates near the edge), so the values of the most frequent tags (EXT-X-PART,
EXTINF, EXT-X-PROGRAM-DATE-TIME, EXT-X-PRELOAD-HINT, EXT-X-RENDITION-REPORT) are
remembered by their text in bounded caches. The results are immutable, so a
cached one is indistinguishable from a fresh one; only successes are cached,
so errors still carry their own line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import TypeVar

from llhls.errors import PlaylistError
from llhls.playlist.model import (
    ByteRange,
    HintType,
    Map,
    MediaPlaylist,
    MediaType,
    MultivariantPlaylist,
    OpenSegment,
    Part,
    PlaylistType,
    PreloadHint,
    Rendition,
    RenditionReport,
    Segment,
    ServerControl,
    Skip,
    Variant,
)

__all__ = ["parse", "parse_media", "parse_multivariant", "parse_attributes", "parse_pdt"]

_NAME = re.compile(r"[A-Z0-9-]+")
_INT = re.compile(r"[0-9]{1,20}")
_DEC = re.compile(r"[0-9]+(\.[0-9]+)?")
_RES = re.compile(r"([0-9]{1,9})x([0-9]{1,9})")
_BYTERANGE = re.compile(r"([0-9]{1,20})(?:@([0-9]{1,20}))?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH
_T = TypeVar("_T")

_MULTIVARIANT_TAGS = ("#EXT-X-STREAM-INF", "#EXT-X-MEDIA:", "#EXT-X-I-FRAME-STREAM-INF")

_CACHE_SIZE = 4096
"""Entries per cache of parsed tag values (emptied when full: a cheap bound)."""


def _cached(cache: dict[str, _T], fn: Callable[[str, int], _T], value: str, line: int) -> _T:
    """``fn(value, line)``, remembered by ``value`` (failures are not remembered)."""
    hit = cache.get(value)
    if hit is not None:
        return hit
    result = fn(value, line)
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[value] = result
    return result


def parse_attributes(text: str, line: int | None = None) -> dict[str, str]:
    """Split an attribute list into ``{NAME: raw value}``; quoted values keep quotes."""
    attrs: dict[str, str] = {}
    pos = 0
    n = len(text)
    if n == 0:
        raise PlaylistError("empty attribute list", line)
    while pos < n:
        m = _NAME.match(text, pos)
        if m is None or m.end() >= n or text[m.end()] != "=":
            raise PlaylistError(f"bad attribute at column {pos + 1}: {text[pos:]!r}", line)
        name = m.group(0)
        pos = m.end() + 1
        if pos < n and text[pos] == '"':
            end = text.find('"', pos + 1)
            if end < 0:
                raise PlaylistError(f"unterminated quoted string in {name}", line)
            end += 1
        else:
            end = text.find(",", pos)
            end = n if end < 0 else end
        value = text[pos:end]
        if value == "":
            raise PlaylistError(f"attribute {name} has no value", line)
        if name in attrs:
            raise PlaylistError(f"attribute {name} appears twice", line)
        attrs[name] = value
        pos = end
        if pos < n:
            if text[pos] != ",":
                raise PlaylistError(f"expected ',' after {name}", line)
            pos += 1
            if pos == n:
                raise PlaylistError("trailing ',' in attribute list", line)
    return attrs


def parse_pdt(text: str, line: int | None = None) -> int:
    """An ISO 8601 date-time as UTC milliseconds since the epoch (floor)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise PlaylistError(f"bad date-time {text!r}", line) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    micros = (moment - _EPOCH) // _MICRO
    return micros // 1000


class _Attrs:
    """Typed access to one tag's attribute list, with line numbers in errors."""

    def __init__(self, tag: str, text: str, line: int) -> None:
        self.tag = tag
        self.line = line
        self.raw = parse_attributes(text, line)

    def _err(self, msg: str) -> PlaylistError:
        return PlaylistError(f"{self.tag}: {msg}", self.line)

    def has(self, name: str) -> bool:
        return name in self.raw

    def _get(self, name: str, required: bool) -> str | None:
        value = self.raw.get(name)
        if value is None and required:
            raise self._err(f"missing {name}")
        return value

    def quoted(self, name: str, required: bool = False) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if len(value) < 2 or value[0] != '"' or value[-1] != '"':
            raise self._err(f"{name} must be a quoted string")
        return value[1:-1]

    def quoted_req(self, name: str) -> str:
        value = self.quoted(name, True)
        assert value is not None
        return value

    def integer(self, name: str, required: bool = False) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not _INT.fullmatch(value):
            raise self._err(f"{name} must be a decimal integer, got {value!r}")
        return int(value)

    def integer_req(self, name: str) -> int:
        value = self.integer(name, True)
        assert value is not None
        return value

    def decimal(self, name: str, required: bool = False) -> Fraction | None:
        value = self._get(name, required)
        if value is None:
            return None
        return _decimal(value, f"{self.tag} {name}", self.line)

    def decimal_req(self, name: str) -> Fraction:
        value = self.decimal(name, True)
        assert value is not None
        return value

    def enum(self, name: str, allowed: tuple[str, ...], required: bool = False) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if value not in allowed:
            raise self._err(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def yes(self, name: str) -> bool:
        return self.enum(name, ("YES", "NO")) == "YES"

    def byterange(self, name: str) -> ByteRange | None:
        value = self.quoted(name)
        return None if value is None else _byterange(value, self.line)


def _decimal(text: str, what: str, line: int) -> Fraction:
    if not _DEC.fullmatch(text):
        raise PlaylistError(f"{what} must be a non-negative decimal, got {text!r}", line)
    return Fraction(text)


def _byterange(text: str, line: int) -> ByteRange:
    m = _BYTERANGE.fullmatch(text)
    if m is None:
        raise PlaylistError(f"bad byte range {text!r}", line)
    return ByteRange(int(m.group(1)), None if m.group(2) is None else int(m.group(2)))


def _int(text: str, what: str, line: int) -> int:
    if not _INT.fullmatch(text):
        raise PlaylistError(f"{what} must be a decimal integer, got {text!r}", line)
    return int(text)


def _lines(text: str) -> list[tuple[int, str]]:
    """Numbered non-blank lines after checking the ``#EXTM3U`` header."""
    if text.startswith("\ufeff"):
        raise PlaylistError("playlist starts with a byte order mark", 1)
    raw = text.split("\n")
    numbered = [(i + 1, ln.rstrip("\r")) for i, ln in enumerate(raw)]
    if not numbered or numbered[0][1].rstrip() != "#EXTM3U":
        raise PlaylistError("first line must be #EXTM3U", 1)
    return [(i, ln.strip()) for i, ln in numbered[1:] if ln.strip()]


def _split_tag(line: str) -> tuple[str, str | None]:
    name, sep, value = line.partition(":")
    return name, (value if sep else None)


def _need(value: str | None, tag: str, line: int) -> str:
    if value is None or value == "":
        raise PlaylistError(f"{tag} needs a value", line)
    return value


@dataclass
class _Pending:
    """Tags seen since the last segment URI."""

    discontinuity: bool = False
    map: Map | None = None
    pdt_ms: int | None = None
    parts: list[Part] = field(default_factory=list)
    gap: bool = False
    byterange: ByteRange | None = None
    extinf: tuple[Fraction, str | None] | None = None
    extinf_line: int = 0

    @property
    def empty(self) -> bool:
        return (
            not self.discontinuity
            and self.map is None
            and self.pdt_ms is None
            and not self.parts
            and not self.gap
            and self.byterange is None
            and self.extinf is None
        )


@dataclass
class _Header:
    target_duration: int | None = None
    version: int | None = None
    media_sequence: int | None = None
    discontinuity_sequence: int | None = None
    playlist_type: PlaylistType | None = None
    independent_segments: bool = False
    part_target: Fraction | None = None
    server_control: ServerControl | None = None
    map: Map | None = None
    skip: Skip | None = None
    hints: list[PreloadHint] = field(default_factory=list)
    reports: list[RenditionReport] = field(default_factory=list)
    endlist: bool = False

    def copy(self) -> _Header:
        """An independent copy (its lists copied)."""
        return _Header(
            self.target_duration,
            self.version,
            self.media_sequence,
            self.discontinuity_sequence,
            self.playlist_type,
            self.independent_segments,
            self.part_target,
            self.server_control,
            self.map,
            self.skip,
            list(self.hints),
            list(self.reports),
            self.endlist,
        )


def _extinf(value: str, line: int) -> tuple[Fraction, str | None]:
    dur_text, _, title = value.partition(",")
    duration = _decimal(dur_text.strip(), "EXTINF duration", line)
    return duration, title.strip() or None


def _checked_part(value: str, line: int) -> Part:
    return _checked(_parse_part, value, line)


def _checked_hint(value: str, line: int) -> PreloadHint:
    return _checked(_parse_hint, value, line)


def _checked_report(value: str, line: int) -> RenditionReport:
    return _checked(_parse_report, value, line)


_PARTS: dict[str, Part] = {}
_EXTINFS: dict[str, tuple[Fraction, str | None]] = {}
_PDTS: dict[str, int] = {}
_HINTS: dict[str, PreloadHint] = {}
_REPORTS: dict[str, RenditionReport] = {}


def _once(current: object, tag: str, line: int) -> None:
    if current is not None:
        raise PlaylistError(f"{tag} appears twice", line)


_PLAIN_PART = re.compile(r'DURATION=([0-9]+(?:\.[0-9]+)?),URI="([^"]*)"(,INDEPENDENT=YES)?')
_DURATIONS: dict[str, Fraction] = {}


def _parse_part(value: str, line: int) -> Part:
    m = _PLAIN_PART.fullmatch(value)
    if m is not None:
        # what the general path reads from these attributes, without its steps
        text = m.group(1)
        duration = _DURATIONS.get(text)
        if duration is None:
            if len(_DURATIONS) >= _CACHE_SIZE:
                _DURATIONS.clear()
            duration = _DURATIONS[text] = Fraction(text)
        return Part(uri=m.group(2), duration=duration, independent=m.group(3) is not None)
    a = _Attrs("EXT-X-PART", value, line)
    return Part(
        uri=a.quoted_req("URI"),
        duration=a.decimal_req("DURATION"),
        independent=a.yes("INDEPENDENT"),
        gap=a.yes("GAP"),
        byterange=a.byterange("BYTERANGE"),
    )


def _parse_map(value: str, line: int) -> Map:
    a = _Attrs("EXT-X-MAP", value, line)
    return Map(uri=a.quoted_req("URI"), byterange=a.byterange("BYTERANGE"))


def _parse_server_control(value: str, line: int) -> ServerControl:
    a = _Attrs("EXT-X-SERVER-CONTROL", value, line)
    return ServerControl(
        can_block_reload=a.yes("CAN-BLOCK-RELOAD"),
        can_skip_until=a.decimal("CAN-SKIP-UNTIL"),
        can_skip_dateranges=a.yes("CAN-SKIP-DATERANGES"),
        hold_back=a.decimal("HOLD-BACK"),
        part_hold_back=a.decimal("PART-HOLD-BACK"),
    )


def _parse_skip(value: str, line: int) -> Skip:
    a = _Attrs("EXT-X-SKIP", value, line)
    removed = a.quoted("RECENTLY-REMOVED-DATERANGES")
    ids: tuple[str, ...] | None = None
    if removed is not None:
        ids = tuple(removed.split("\t")) if removed else ()
    return Skip(skipped_segments=a.integer_req("SKIPPED-SEGMENTS"), recently_removed_dateranges=ids)


# The attribute lists a live origin writes in every playlist response, each with new
# numbers: read in one match (any other spelling takes the general path; both build
# the same tag from the same values).
_PLAIN_HINT = re.compile(r'TYPE=(PART|MAP),URI="([^"]*)"')
_PLAIN_REPORT = re.compile(r'URI="([^"]*)",LAST-MSN=([0-9]{1,20})(?:,LAST-PART=([0-9]{1,20}))?')


def _parse_hint(value: str, line: int) -> PreloadHint:
    m = _PLAIN_HINT.fullmatch(value)
    if m is not None:
        return PreloadHint(uri=m.group(2), type="PART" if m.group(1) == "PART" else "MAP")
    a = _Attrs("EXT-X-PRELOAD-HINT", value, line)
    kind: HintType = "PART" if a.enum("TYPE", ("PART", "MAP"), True) == "PART" else "MAP"
    return PreloadHint(
        uri=a.quoted_req("URI"),
        type=kind,
        byterange_start=a.integer("BYTERANGE-START"),
        byterange_length=a.integer("BYTERANGE-LENGTH"),
    )


def _parse_report(value: str, line: int) -> RenditionReport:
    m = _PLAIN_REPORT.fullmatch(value)
    if m is not None:
        last_part = m.group(3)
        return RenditionReport(
            uri=m.group(1),
            last_msn=int(m.group(2)),
            last_part=None if last_part is None else int(last_part),
        )
    a = _Attrs("EXT-X-RENDITION-REPORT", value, line)
    return RenditionReport(
        uri=a.quoted_req("URI"),
        last_msn=a.integer_req("LAST-MSN"),
        last_part=a.integer("LAST-PART"),
    )


def _header_tag(h: _Header, tag: str, value: str | None, line: int, seen_segment: bool) -> bool:
    """Handle a playlist-level tag; False if ``tag`` is not one."""
    # the two that every live reload carries first
    if tag == "#EXT-X-RENDITION-REPORT":
        h.reports.append(_cached(_REPORTS, _checked_report, _need(value, tag, line), line))
    elif tag == "#EXT-X-PRELOAD-HINT":
        h.hints.append(_cached(_HINTS, _checked_hint, _need(value, tag, line), line))
    elif tag == "#EXT-X-TARGETDURATION":
        _once(h.target_duration, tag, line)
        h.target_duration = _int(_need(value, tag, line), tag, line)
    elif tag == "#EXT-X-VERSION":
        _once(h.version, tag, line)
        h.version = _int(_need(value, tag, line), tag, line)
        if h.version < 1:
            raise PlaylistError("EXT-X-VERSION must be >= 1", line)
    elif tag == "#EXT-X-MEDIA-SEQUENCE":
        _once(h.media_sequence, tag, line)
        if seen_segment:
            raise PlaylistError("EXT-X-MEDIA-SEQUENCE after the first segment", line)
        h.media_sequence = _int(_need(value, tag, line), tag, line)
    elif tag == "#EXT-X-DISCONTINUITY-SEQUENCE":
        _once(h.discontinuity_sequence, tag, line)
        if seen_segment:
            raise PlaylistError("EXT-X-DISCONTINUITY-SEQUENCE after the first segment", line)
        h.discontinuity_sequence = _int(_need(value, tag, line), tag, line)
    elif tag == "#EXT-X-PLAYLIST-TYPE":
        _once(h.playlist_type, tag, line)
        kind = _need(value, tag, line)
        if kind == "EVENT":
            h.playlist_type = "EVENT"
        elif kind == "VOD":
            h.playlist_type = "VOD"
        else:
            raise PlaylistError(f"bad EXT-X-PLAYLIST-TYPE {kind!r}", line)
    elif tag == "#EXT-X-INDEPENDENT-SEGMENTS":
        h.independent_segments = True
    elif tag == "#EXT-X-PART-INF":
        _once(h.part_target, tag, line)
        a = _Attrs("EXT-X-PART-INF", _need(value, tag, line), line)
        h.part_target = a.decimal_req("PART-TARGET")
    elif tag == "#EXT-X-SERVER-CONTROL":
        _once(h.server_control, tag, line)
        h.server_control = _checked(_parse_server_control, _need(value, tag, line), line)
    elif tag == "#EXT-X-SKIP":
        _once(h.skip, tag, line)
        if seen_segment:
            raise PlaylistError("EXT-X-SKIP after the first segment", line)
        h.skip = _checked(_parse_skip, _need(value, tag, line), line)
    elif tag == "#EXT-X-ENDLIST":
        h.endlist = True
    else:
        return False
    return True


def _checked(fn: Callable[[str, int], _T], value: str, line: int) -> _T:
    """Run a tag builder, turning model validation errors into PlaylistError."""
    try:
        return fn(value, line)
    except PlaylistError:
        raise
    except ValueError as exc:
        raise PlaylistError(str(exc), line) from exc


_BLOCKS: dict[str, tuple[Segment, int]] = {}
"""Complete segment blocks (the lines after one URI line up to and including the next
one) -> their segment and their number of line breaks; see :func:`parse_media`."""


_HEADS: dict[str, tuple[_Header, Segment, int]] = {}
"""Playlist starts (every line after ``#EXTM3U`` up to and including the first URI
line) -> the playlist-level tags read so far, the first segment, the line breaks."""


def _block_candidate(text: str, pos: int) -> str | None:
    """The text from ``pos`` (a line start) to the end of the line after the next
    ``#EXTINF`` line: where a segment block written the usual way ends."""
    i = text.find("\n#EXTINF:", pos - 1)
    if i < 0:
        return None
    j = text.find("\n", i + 1)
    if j < 0:
        return None
    k = text.find("\n", j + 1)
    return text[pos:] if k < 0 else text[pos : k + 1]


def parse_media(text: str) -> MediaPlaylist:
    """Parse a media playlist.

    A live playlist lists the same complete segments in reload after reload, so
    each complete segment block (every line after one segment's URI line up to
    and including the next URI line) that holds no playlist-level tag is
    remembered by its exact text with the segment it makes: the block parses
    the same wherever it appears after a URI line (the parser's state there is
    always the same). Only successes are remembered, so errors keep their line
    numbers.
    """
    if text.startswith("\ufeff"):
        raise PlaylistError("playlist starts with a byte order mark", 1)
    n = len(text)
    nl = text.find("\n")
    first_end = n if nl < 0 else nl
    if text[:first_end].rstrip("\r").rstrip() != "#EXTM3U":
        raise PlaylistError("first line must be #EXTM3U", 1)
    blocks = _BLOCKS
    h = _Header()
    pending = _Pending()
    segments: list[Segment] = []
    header_map_allowed = True
    pos = first_end + 1
    line = 1
    block_start = -1  # where the current segment block began after a URI line (-1: not so)
    pure = False  # whether that block has held segment tags only so far
    if pos < n:
        # the header and the first segment, as seen before
        candidate = _block_candidate(text, pos)
        head = _HEADS.get(candidate) if candidate is not None else None
        if head is not None and candidate is not None:
            h = head[0].copy()
            segments.append(head[1])
            line += head[2]
            pos += len(candidate)
            header_map_allowed = False
            block_start, pure = pos, True
    while pos < n:
        if block_start == pos:
            # right after a URI line: a block seen before is its segment again
            candidate = _block_candidate(text, pos)
            if candidate is not None:
                hit = blocks.get(candidate)
                if hit is not None:
                    segments.append(hit[0])
                    line += hit[1]
                    pos += len(candidate)
                    block_start = pos
                    continue
        nl = text.find("\n", pos)
        if nl < 0:
            nl = n
        line += 1
        content = text[pos:nl].strip()
        start, pos = pos, nl + 1
        if not content:
            continue
        if not content.startswith("#"):
            if pending.extinf is None:
                raise PlaylistError(f"URI {content!r} without EXTINF", line)
            duration, title = pending.extinf
            try:
                segment = Segment(
                    uri=content,
                    duration=duration,
                    title=title,
                    pdt_ms=pending.pdt_ms,
                    parts=tuple(pending.parts),
                    gap=pending.gap,
                    discontinuity=pending.discontinuity,
                    map=pending.map,
                    byterange=pending.byterange,
                )
            except ValueError as exc:
                raise PlaylistError(str(exc), line) from exc
            segments.append(segment)
            if pure and 0 <= block_start < start:
                block = text[block_start:pos]
                if len(blocks) >= _CACHE_SIZE:
                    blocks.clear()
                blocks[block] = (segment, block.count("\n"))
            elif block_start < 0 and len(segments) == 1:
                block = text[first_end + 1 : pos]
                if len(_HEADS) >= _CACHE_SIZE:
                    _HEADS.clear()
                _HEADS[block] = (h.copy(), segment, block.count("\n"))
            pending = _Pending()
            header_map_allowed = False
            block_start, pure = pos, True
            continue
        if content.startswith(_MULTIVARIANT_TAGS):
            raise PlaylistError("multivariant tag in a media playlist", line)
        if not content.startswith("#EXT"):
            continue  # a comment
        tag, value = _split_tag(content)
        # the tags of every part and segment first: they make most of a live playlist
        if tag == "#EXT-X-PART":
            if pending.extinf is not None:
                raise PlaylistError("EXT-X-PART between EXTINF and its URI", line)
            pending.parts.append(_cached(_PARTS, _checked_part, _need(value, tag, line), line))
        elif tag == "#EXTINF":
            if pending.extinf is not None:
                raise PlaylistError("two EXTINF tags for one segment", line)
            pending.extinf = _cached(_EXTINFS, _extinf, _need(value, tag, line), line)
            pending.extinf_line = line
        elif tag == "#EXT-X-PROGRAM-DATE-TIME":
            _once(pending.pdt_ms, tag, line)
            pending.pdt_ms = _cached(_PDTS, parse_pdt, _need(value, tag, line), line)
        elif _header_tag(h, tag, value, line, bool(segments) or not pending.empty):
            pure = False
            continue
        elif tag == "#EXT-X-MAP":
            new_map = _checked(_parse_map, _need(value, tag, line), line)
            if header_map_allowed and pending.empty and h.map is None:
                h.map = new_map
                pure = False
            else:
                _once(pending.map, tag, line)
                pending.map = new_map
        elif tag == "#EXT-X-DISCONTINUITY":
            pending.discontinuity = True
        elif tag == "#EXT-X-GAP":
            pending.gap = True
        elif tag == "#EXT-X-BYTERANGE":
            _once(pending.byterange, tag, line)
            pending.byterange = _byterange(_need(value, tag, line), line)
        # any other tag (EXT-X-KEY, EXT-X-DATERANGE, EXT-X-START, ...) is ignored
    if pending.extinf is not None:
        raise PlaylistError("EXTINF without a URI at the end", pending.extinf_line)
    open_segment = None
    if pending.parts:
        open_segment = OpenSegment(
            parts=tuple(pending.parts),
            pdt_ms=pending.pdt_ms,
            discontinuity=pending.discontinuity,
            map=pending.map,
        )
    if h.target_duration is None:
        raise PlaylistError("missing EXT-X-TARGETDURATION", None)
    try:
        return MediaPlaylist(
            target_duration=h.target_duration,
            version=h.version,
            media_sequence=h.media_sequence if h.media_sequence is not None else 0,
            discontinuity_sequence=h.discontinuity_sequence,
            playlist_type=h.playlist_type,
            independent_segments=h.independent_segments,
            part_target=h.part_target,
            server_control=h.server_control,
            map=h.map,
            skip=h.skip,
            segments=tuple(segments),
            open_segment=open_segment,
            preload_hints=tuple(h.hints),
            rendition_reports=tuple(h.reports),
            endlist=h.endlist,
        )
    except ValueError as exc:
        raise PlaylistError(str(exc), None) from exc


_MEDIA_TYPES: tuple[MediaType, ...] = ("AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS")


def _parse_media_tag(value: str, line: int) -> Rendition:
    a = _Attrs("EXT-X-MEDIA", value, line)
    type_text = a.enum("TYPE", _MEDIA_TYPES, True)
    media_type = next(t for t in _MEDIA_TYPES if t == type_text)
    return Rendition(
        type=media_type,
        group_id=a.quoted_req("GROUP-ID"),
        name=a.quoted_req("NAME"),
        uri=a.quoted("URI"),
        language=a.quoted("LANGUAGE"),
        default=a.yes("DEFAULT"),
        autoselect=a.yes("AUTOSELECT"),
        channels=a.quoted("CHANNELS"),
    )


@dataclass
class _StreamInf:
    bandwidth: int
    average_bandwidth: int | None
    codecs: str | None
    resolution: tuple[int, int] | None
    frame_rate: Fraction | None
    audio: str | None


def _parse_stream_inf(value: str, line: int) -> _StreamInf:
    a = _Attrs("EXT-X-STREAM-INF", value, line)
    resolution = None
    res_text = a.raw.get("RESOLUTION")
    if res_text is not None:
        m = _RES.fullmatch(res_text)
        if m is None:
            raise PlaylistError(f"bad RESOLUTION {res_text!r}", line)
        resolution = (int(m.group(1)), int(m.group(2)))
    return _StreamInf(
        bandwidth=a.integer_req("BANDWIDTH"),
        average_bandwidth=a.integer("AVERAGE-BANDWIDTH"),
        codecs=a.quoted("CODECS"),
        resolution=resolution,
        frame_rate=a.decimal("FRAME-RATE"),
        audio=a.quoted("AUDIO"),
    )


def parse_multivariant(text: str) -> MultivariantPlaylist:
    """Parse a multivariant playlist."""
    version: int | None = None
    independent = False
    renditions: list[Rendition] = []
    variants: list[Variant] = []
    pending: _StreamInf | None = None
    pending_line = 0
    for line, content in _lines(text):
        if not content.startswith("#"):
            if pending is None:
                raise PlaylistError(f"URI {content!r} without EXT-X-STREAM-INF", line)
            try:
                variants.append(
                    Variant(
                        uri=content,
                        bandwidth=pending.bandwidth,
                        average_bandwidth=pending.average_bandwidth,
                        codecs=pending.codecs,
                        resolution=pending.resolution,
                        frame_rate=pending.frame_rate,
                        audio=pending.audio,
                    )
                )
            except ValueError as exc:
                raise PlaylistError(str(exc), line) from exc
            pending = None
            continue
        tag, value = _split_tag(content)
        if tag in ("#EXTINF", "#EXT-X-TARGETDURATION", "#EXT-X-PART"):
            raise PlaylistError("media playlist tag in a multivariant playlist", line)
        if tag == "#EXT-X-VERSION":
            _once(version, tag, line)
            version = _int(_need(value, tag, line), tag, line)
            if version < 1:
                raise PlaylistError("EXT-X-VERSION must be >= 1", line)
        elif tag == "#EXT-X-INDEPENDENT-SEGMENTS":
            independent = True
        elif tag == "#EXT-X-MEDIA":
            renditions.append(_checked(_parse_media_tag, _need(value, tag, line), line))
        elif tag == "#EXT-X-STREAM-INF":
            if pending is not None:
                raise PlaylistError("EXT-X-STREAM-INF without a URI", pending_line)
            pending = _parse_stream_inf(_need(value, tag, line), line)
            pending_line = line
    if pending is not None:
        raise PlaylistError("EXT-X-STREAM-INF without a URI", pending_line)
    try:
        return MultivariantPlaylist(
            variants=tuple(variants),
            renditions=tuple(renditions),
            version=version,
            independent_segments=independent,
        )
    except ValueError as exc:
        raise PlaylistError(str(exc), None) from exc


def parse(text: str) -> MediaPlaylist | MultivariantPlaylist:
    """Parse either kind of playlist, telling them apart by their tags."""
    for _, content in _lines(text):
        if content.startswith(_MULTIVARIANT_TAGS):
            return parse_multivariant(text)
    return parse_media(text)
