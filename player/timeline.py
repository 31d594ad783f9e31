"""Client-side LL-HLS rules as pure functions over the playlist model.

What a player needs to know about a media playlist, named and testable on
tables: where each part or segment sits (:func:`chunks`), where to start
(:func:`choose_start`, :func:`choose_aligned`), which part comes next and
which one the server will announce next (:func:`next_position`,
:func:`hint_position`), how to fold a delta update into what is already
known (:func:`merge_update`), when to ask for one (:func:`skip_directive`),
how to spell the delivery directives (:func:`with_directives`) and how long
to back off after a failure (:func:`backoff`).

A *position* is ``(msn, part)``: a part index within its parent segment;
``(msn, 0)`` is also where a whole segment starts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

from llhls.errors import PlaylistError
from llhls.playlist.model import MediaPlaylist, Part, Segment, exact_add, exact_sum

__all__ = [
    "Position",
    "Chunk",
    "ChunkMemo",
    "chunks",
    "last_position",
    "segment_starts",
    "segment_pdt_ms",
    "segment_times",
    "map_uris",
    "find_chunk",
    "next_position",
    "hint_position",
    "hinted_part_uri",
    "live_edge",
    "choose_start",
    "choose_aligned",
    "merge_update",
    "skip_directive",
    "with_directives",
    "backoff",
]

Position = tuple[int, int]
"""``(msn, part index)``."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One fetchable unit of a playlist: a part, or a whole segment without listed parts."""

    msn: int
    """Media sequence number of the (parent) segment."""
    part: int | None
    """Part index within the segment; ``None`` for a whole segment."""
    uri: str
    """URI as written in the playlist (relative to it)."""
    duration: Fraction
    """Duration in seconds."""
    independent: bool
    """Starts with an independent frame (whole segments are assumed to)."""
    gap: bool
    """Marked unavailable (GAP)."""
    start: Fraction
    """Start in seconds from the start of the first listed segment."""
    offset: Fraction
    """Start in seconds from the start of its segment."""

    @property
    def position(self) -> Position:
        """The position this chunk starts at."""
        return (self.msn, self.part or 0)

    @property
    def end(self) -> Fraction:
        """End in seconds from the start of the first listed segment."""
        return self.start + self.duration


_ZERO = Fraction(0)

ChunkMemo = dict[int, tuple[Fraction, tuple[Part, ...], list[Chunk]]]
"""Part chunks made before, by segment MSN: the segment's start, the parts they were
made of (held, so that identity keeps meaning the same object) and the chunks."""


def _parts_chunks(
    out: list[Chunk],
    msn: int,
    parts: tuple[Part, ...],
    start: Fraction,
    memo: ChunkMemo | None = None,
) -> None:
    done = 0
    offset = _ZERO
    if memo is not None:
        hit = memo.get(msn)
        if hit is not None and hit[0] == start:
            known_parts, known = hit[1], hit[2]
            done = len(known_parts)
            # the same part objects first: their chunks are the same (a Chunk is made of
            # the msn, the start and its parts and those before it, nothing else)
            if done <= len(parts) and all(
                a is b for a, b in zip(known_parts, parts[:done], strict=True)
            ):
                if done == len(parts):
                    out.extend(known)
                    return
                out.extend(known)
                last = known[-1]
                offset = exact_add(last.offset, last.duration)
            else:
                done = 0
    first = len(out)
    for index in range(done, len(parts)):
        part = parts[index]
        out.append(
            Chunk(
                msn,
                index,
                part.uri,
                part.duration,
                part.independent,
                part.gap,
                exact_add(start, offset) if offset else start,
                offset,
            )
        )
        offset = exact_add(offset, part.duration)
    if memo is not None:
        memo[msn] = (start, parts, out[first - done :])


def chunks(
    pl: MediaPlaylist,
    *,
    use_parts: bool = True,
    since: int | None = None,
    memo: ChunkMemo | None = None,
    starts: Mapping[int, Fraction] | None = None,
) -> list[Chunk]:
    """Every fetchable unit in playback order: parts where listed, else whole segments.

    With ``use_parts=False`` (classic HLS) only whole segments are returned and
    the open segment is ignored. With ``since``, only the chunks of segments
    ``since`` and later (the same objects as in the whole list, and far cheaper
    to get than it near the live edge). With ``memo`` (kept by the caller from
    call to call), the part chunks of a segment whose start and parts (the same
    objects) were seen before are not made again; equal to making them anew.
    ``starts`` is :func:`segment_starts` of ``pl`` if the caller has it at hand.
    """
    out: list[Chunk] = []
    segments = pl.segments
    msn = pl.first_msn
    first = 0 if since is None else min(max(since - msn, 0), len(segments))
    msn += first
    if not first:
        start = _ZERO
    elif starts is not None and msn in starts:
        start = starts[msn]
    else:
        start = exact_sum(seg.duration for seg in segments[:first])
    if memo:
        for old in [m for m in memo if m < msn]:
            del memo[old]
    for seg in segments[first:] if first else segments:
        if seg.parts and use_parts:
            _parts_chunks(out, msn, seg.parts, start, memo)
        else:
            out.append(Chunk(msn, None, seg.uri, seg.duration, True, seg.gap, start, _ZERO))
        start += seg.duration
        msn += 1
    if pl.open_segment is not None and use_parts and (since is None or msn >= since):
        _parts_chunks(out, msn, pl.open_segment.parts, start, memo)
    return out


def last_position(pl: MediaPlaylist, *, use_parts: bool = True) -> Position | None:
    """Position of the last chunk :func:`chunks` lists (``None`` when it lists none)."""
    if use_parts and pl.open_segment is not None:
        return (pl.next_msn, len(pl.open_segment.parts) - 1)
    if not pl.segments:
        return None
    last = pl.segments[-1]
    return (pl.next_msn - 1, len(last.parts) - 1 if use_parts and last.parts else 0)


def _start_ticks(pl: MediaPlaylist) -> tuple[int, dict[int, int]]:
    """``(den, {msn: start * den})``: segment starts as integers over a common
    denominator, so that sums stay exact without a Fraction per addition."""
    segments = pl.segments
    den = math.lcm(*(s.duration.denominator for s in segments)) if segments else 1
    ticks: dict[int, int] = {}
    acc = 0
    msn = pl.first_msn
    for seg in segments:
        ticks[msn] = acc
        d = seg.duration
        acc += d.numerator * (den // d.denominator)
        msn += 1
    if pl.open_segment is not None:
        ticks[msn] = acc
    return den, ticks


def segment_starts(pl: MediaPlaylist) -> dict[int, Fraction]:
    """Start of every listed segment (open one included) in seconds from the first."""
    return _starts_of(*_start_ticks(pl))


@lru_cache(maxsize=4096)
def _fraction(numerator: int, denominator: int) -> Fraction:
    """``Fraction(numerator, denominator)``, remembered: a live playlist's segment
    starts and dates come out as the same few integer pairs reload after reload."""
    return Fraction(numerator, denominator)


def _starts_of(den: int, ticks: dict[int, int]) -> dict[int, Fraction]:
    return {msn: _fraction(t, den) for msn, t in ticks.items()}


def segment_times(pl: MediaPlaylist) -> tuple[dict[int, Fraction], dict[int, Fraction]]:
    """``(segment_starts(pl), segment_pdt_ms(pl))``, for the price of one walk."""
    den, ticks = _start_ticks(pl)
    return _starts_of(den, ticks), _pdts_of(pl, den, ticks)


def segment_pdt_ms(pl: MediaPlaylist) -> dict[int, Fraction]:
    """PROGRAM-DATE-TIME (UTC ms, exact) of every segment it can be derived for.

    A tag dates its segment; later segments follow by adding durations, and
    earlier ones (before the first tag) by subtracting them.
    """
    return _pdts_of(pl, *_start_ticks(pl))


def _pdts_of(pl: MediaPlaylist, den: int, ticks: dict[int, int]) -> dict[int, Fraction]:
    first_msn = pl.first_msn
    heads: list[tuple[int, int | None]] = [
        (first_msn + i, s.pdt_ms) for i, s in enumerate(pl.segments)
    ]
    if pl.open_segment is not None:
        heads.append((first_msn + len(pl.segments), pl.open_segment.pdt_ms))
    out: dict[int, Fraction] = {}
    anchor: tuple[int, int] | None = None
    for msn, pdt in heads:
        if pdt is not None:
            anchor = (msn, pdt)
            out[msn] = _fraction(pdt, 1)  # the tag itself: no offset to add
        elif anchor is not None:
            ms = anchor[1] * den + (ticks[msn] - ticks[anchor[0]]) * 1000
            out[msn] = _fraction(ms, den)
    first = next(((m, p) for m, p in heads if p is not None), None)
    if first is not None:
        for msn, _ in heads:
            if msn >= first[0]:
                break
            out[msn] = Fraction(first[1] * den - (ticks[first[0]] - ticks[msn]) * 1000, den)
    return out


def map_uris(pl: MediaPlaylist) -> dict[int, str | None]:
    """The EXT-X-MAP URI in force for every listed segment (open one included)."""
    out: dict[int, str | None] = {}
    current = pl.map.uri if pl.map is not None else None
    msn = pl.first_msn
    for seg in pl.segments:
        if seg.map is not None:
            current = seg.map.uri
        out[msn] = current
        msn += 1
    if pl.open_segment is not None:
        if pl.open_segment.map is not None:
            current = pl.open_segment.map.uri
        out[msn] = current
    return out


def find_chunk(pl: MediaPlaylist, position: Position, *, use_parts: bool = True) -> Chunk | None:
    """The chunk that starts at ``position``, if listed.

    Where the segment is listed without parts, its whole-segment chunk stands
    for part 0 (and, as a last resort, for any later part index).
    """
    msn, part = position
    for chunk in chunks(pl, use_parts=use_parts):
        if chunk.msn != msn:
            continue
        if chunk.part == part or chunk.part is None:
            return chunk
    return None


def _segment(pl: MediaPlaylist, msn: int) -> Segment | None:
    index = msn - pl.first_msn
    return pl.segments[index] if 0 <= index < len(pl.segments) else None


def next_position(pl: MediaPlaylist, chunk: Chunk) -> Position:
    """The position after ``chunk``: the next part, or part 0 of the next segment."""
    if chunk.part is None:
        return (chunk.msn + 1, 0)
    seg = _segment(pl, chunk.msn)
    if seg is not None and chunk.part + 1 >= len(seg.parts):
        return (chunk.msn + 1, 0)
    return (chunk.msn, chunk.part + 1)


def hint_position(pl: MediaPlaylist) -> Position:
    """The position right after the last listed part or segment: what comes next.

    It is where ``_HLS_msn`` / ``_HLS_part`` of the next blocking reload point,
    and where the PART preload hint of ``pl`` lies.
    """
    if pl.open_segment is not None:
        return (pl.next_msn, len(pl.open_segment.parts))
    return (pl.next_msn, 0)


def hinted_part_uri(pl: MediaPlaylist) -> str | None:
    """URI of the ``TYPE=PART`` preload hint without a byte range, if any."""
    for hint in pl.preload_hints:
        if hint.type == "PART" and hint.byterange_start is None:
            return hint.uri
    return None


def live_edge(pl: MediaPlaylist, *, use_parts: bool = True) -> Fraction:
    """End of the last listed chunk, in seconds from the first listed segment."""
    listed = chunks(pl, use_parts=use_parts)
    return listed[-1].end if listed else Fraction(0)


def choose_start(pl: MediaPlaylist, hold_back: Fraction, *, use_parts: bool = True) -> Chunk | None:
    """Where to start playing: an independent chunk at least ``hold_back`` from the edge.

    Returns the latest independent, non-gap chunk that starts no later than
    ``live_edge - hold_back`` (PART-HOLD-BACK in low-latency mode, HOLD-BACK
    otherwise), or the earliest one when the playlist is shorter than that.
    """
    listed = [c for c in chunks(pl, use_parts=use_parts) if c.independent and not c.gap]
    if not listed:
        return None
    target = live_edge(pl, use_parts=use_parts) - hold_back
    before = [c for c in listed if c.start <= target]
    return before[-1] if before else listed[0]


def choose_aligned(
    pl: MediaPlaylist, msn: int, offset: Fraction, *, use_parts: bool = True
) -> Chunk | None:
    """The independent chunk nearest to ``offset`` seconds into segment ``msn``.

    Used to start a second rendition (audio) where the first one started,
    relying on segments aligned across renditions (same MSN, same start).
    Ties go to the earlier chunk.
    """
    starts = segment_starts(pl)
    if msn not in starts:
        return None
    target = starts[msn] + offset
    listed = [c for c in chunks(pl, use_parts=use_parts) if c.independent and not c.gap]
    if not listed:
        return None
    return min(listed, key=lambda c: (abs(c.start - target), c.start))


def _with_segments(pl: MediaPlaylist, segments: tuple[Segment, ...]) -> MediaPlaylist:
    return dataclasses.replace(pl, skip=None, segments=segments)


def _same_but_parts_pdt(seg: Segment, prev: Segment, any_parts: bool, any_pdt: bool) -> bool:
    """``seg`` equals ``prev`` in every field but the parts (when ``any_parts``) and
    the PROGRAM-DATE-TIME (when ``any_pdt``)."""
    return (
        seg.duration == prev.duration
        and seg.title == prev.title
        and seg.gap == prev.gap
        and seg.discontinuity == prev.discontinuity
        and seg.map == prev.map
        and seg.byterange == prev.byterange
        and (any_parts or seg.parts == prev.parts)
        and (any_pdt or seg.pdt_ms == prev.pdt_ms)
    )


def merge_update(known: MediaPlaylist | None, update: MediaPlaylist) -> MediaPlaylist:
    """Fold a playlist response into the known playlist; returns a full playlist.

    A delta update (``EXT-X-SKIP``) gets its skipped segments back from
    ``known``; :class:`~llhls.errors.PlaylistError` when ``known`` lacks any of
    them (the caller then asks for the full playlist). Segments that the
    server listed with parts before and without them now keep their known
    parts, and keep a known PROGRAM-DATE-TIME, so a client a little behind
    the edge can still fetch them part by part.
    """
    old: dict[int, Segment] = {}
    if known is not None:
        old = dict(enumerate(known.segments, known.first_msn))
    segments: list[Segment] = []
    if update.skip is not None:
        for msn in range(update.media_sequence, update.first_msn):
            seg = old.get(msn)
            if seg is None:
                raise PlaylistError(f"delta update skips segment {msn}, which is not known")
            segments.append(seg)
    for msn, seg in enumerate(update.segments, update.first_msn):
        prev = old.get(msn)
        if prev is not None and prev is not seg and prev.uri == seg.uri:
            keep_parts = not seg.parts and bool(prev.parts)
            keep_pdt = seg.pdt_ms is None and prev.pdt_ms is not None
            if (keep_parts or keep_pdt) and _same_but_parts_pdt(seg, prev, keep_parts, keep_pdt):
                seg = prev  # exactly what the replacements below would build
            else:
                if keep_parts:
                    seg = dataclasses.replace(seg, parts=prev.parts)
                if keep_pdt:
                    seg = dataclasses.replace(seg, pdt_ms=prev.pdt_ms)
        segments.append(seg)
    return _with_segments(update, tuple(segments))


def skip_directive(pl: MediaPlaylist, age: float) -> str | None:
    """``_HLS_skip`` value for the next reload of ``pl`` (``None``: ask for it all).

    ``YES`` only when the server offers CAN-SKIP-UNTIL, the stream is live,
    the known playlist is no older than half the skip boundary (spec 6.3.7),
    and it is long enough that the server would skip something. (``v2``, which
    also skips date ranges, is never asked for: the player keeps none.)
    """
    sc = pl.server_control
    if sc is None or sc.can_skip_until is None or pl.endlist:
        return None
    limit = sc.can_skip_until
    n, d = limit.numerator, limit.denominator
    twice = 2 * age  # exact (or inf)
    if math.isfinite(twice):
        # age > limit / 2, exactly, in integers
        an, ad = twice.as_integer_ratio()
        if an * d > n * ad:
            return None
    elif age > limit / 2:
        return None
    total = pl.duration
    if total.numerator * d <= n * total.denominator:  # total <= limit
        return None
    return "YES"


def with_directives(
    uri: str, msn: int | None = None, part: int | None = None, skip: str | None = None
) -> str:
    """``uri`` with the delivery directives appended (in the spec's order)."""
    params: list[str] = []
    if msn is not None:
        params.append(f"_HLS_msn={msn}")
        if part is not None:
            params.append(f"_HLS_part={part}")
    elif part is not None:
        raise ValueError("_HLS_part needs _HLS_msn")
    if skip is not None:
        params.append(f"_HLS_skip={skip}")
    if not params:
        return uri
    return uri + ("&" if "?" in uri else "?") + "&".join(params)


def backoff(failures: int, base: float, cap: float) -> float:
    """Seconds to wait before retry number ``failures`` (1-based): doubling, capped."""
    if failures <= 0:
        return 0.0
    return min(cap, base * float(2 ** (failures - 1)))
