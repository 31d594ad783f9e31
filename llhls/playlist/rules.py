"""Spec rules as named pure functions (draft-pantos-hls-rfc8216bis, LL-HLS).

Each function states one rule of ``llhls-server-rules.md`` and cites its section.
:func:`validate_media_playlist` checks a whole media playlist against them and
returns human-readable findings (an empty list means conformant).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

from llhls.playlist.model import (
    MediaPlaylist,
    MultivariantPlaylist,
    OpenSegment,
    Part,
    Segment,
    Skip,
)
from llhls.timing import format_decimal

__all__ = [
    "PART_FLOOR",
    "ceil_decimal",
    "target_duration",
    "declared_part_target",
    "part_duration_ok",
    "segment_duration_ok",
    "part_hold_back",
    "hold_back",
    "can_skip_until",
    "blocking_timeout",
    "part_tag_horizon",
    "advance_part_limit",
    "max_block_msn",
    "skip_boundary",
    "media_version",
    "required_version",
    "required_multivariant_version",
    "validate_media_playlist",
    "validate_multivariant_playlist",
]

PART_FLOOR = Fraction(85, 100)
"""Parts SHOULD last at least 85 % of PART-TARGET (§4.4.4.9; Safari enforces it)."""


def ceil_decimal(value: Fraction | int, places: int = 5) -> Fraction:
    """``value`` rounded up to ``places`` decimals: exactly what a playlist shows.

    The value of :func:`~llhls.timing.format_decimal`'s text, computed without it.
    """
    if value < 0 or type(places) is not int or places < 0:
        return Fraction(format_decimal(value, places))  # its error, or its odd case
    frac = value if type(value) is Fraction else Fraction(value)
    scale = 10**places
    return Fraction(-((-frac.numerator * scale) // frac.denominator), scale)


def target_duration(segment_target: Fraction | int) -> int:
    """EXT-X-TARGETDURATION for a nominal segment length: ``ceil(segment)`` (§4.4.3.1)."""
    if segment_target <= 0:
        raise ValueError(f"segment target must be positive, got {segment_target}")
    return math.ceil(Fraction(segment_target))


def declared_part_target(part_durations: Iterable[Fraction | int]) -> Fraction:
    """PART-TARGET to declare: the largest part any rendition makes, as rendered.

    Rounded up to the playlist's five decimals, so every real part is <= the
    declared (and displayed) value (§4.4.3.7). Shared by all renditions.
    """
    largest = max(part_durations, default=None)
    if largest is None or largest <= 0:
        raise ValueError("need at least one positive part duration")
    return ceil_decimal(largest)


def part_duration_ok(duration: Fraction, part_target: Fraction, exempt: bool) -> bool:
    """A part lasts <= PART-TARGET (MUST) and >= 85 % of it (SHOULD) unless ``exempt``.

    Exempt (§4.4.4.9): INDEPENDENT or GAP parts, the part before a GAP part, and the
    last part of its parent segment.
    """
    if duration > part_target:
        return False
    return exempt or duration >= PART_FLOOR * part_target


def segment_duration_ok(duration: Fraction, target: int) -> bool:
    """A segment's duration rounded to the nearest second is <= TARGETDURATION (§4.4.3.1)."""
    if type(duration) is Fraction:  # floor(n/d + 1/2) in integers
        n, d = duration.numerator, duration.denominator
        return (2 * n + d) // (2 * d) <= target
    return math.floor(duration + Fraction(1, 2)) <= target


def part_hold_back(part_target: Fraction) -> Fraction:
    """PART-HOLD-BACK: 3 x PART-TARGET (MUST >= 2x, SHOULD >= 3x; §4.4.3.8)."""
    return 3 * part_target


def hold_back(target: int) -> Fraction:
    """HOLD-BACK: 3 x TARGETDURATION (the minimum of §4.4.3.8)."""
    return Fraction(3 * target)


def can_skip_until(target: int) -> Fraction:
    """CAN-SKIP-UNTIL (the Skip Boundary): 6 x TARGETDURATION (the minimum of §4.4.3.8)."""
    return Fraction(6 * target)


def blocking_timeout(target: int) -> Fraction:
    """How long a blocked request may wait before 503: 3 target durations (§6.2.5.2)."""
    return Fraction(3 * target)


def part_tag_horizon(target: int) -> Fraction:
    """Part tags older than this many seconds from the playlist's end are dropped, and
    their files stay fetchable this long after that (§6.2.2)."""
    return Fraction(3 * target)


def advance_part_limit(part_target: Fraction) -> int:
    """How far past the last part a request may ask: 3 / PART-TARGET parts below 1 s,
    else 3 (§6.2.5.2). Asking further is a 400."""
    if type(part_target) is Fraction and part_target.numerator > 0:  # integers only
        n, d = part_target.numerator, part_target.denominator
        return 3 * d // n if n < d else 3
    if part_target <= 0:
        raise ValueError(f"part target must be positive, got {part_target}")
    if part_target < 1:
        return math.floor(3 / Fraction(part_target))
    return 3


def max_block_msn(last_msn: int) -> int:
    """The largest ``_HLS_msn`` a server waits for: last segment's MSN + 2 (§6.2.5.2)."""
    return last_msn + 2


def skip_boundary(segment_durations: Sequence[Fraction], skip_until: Fraction) -> int:
    """How many leading segments a delta update replaces with EXT-X-SKIP (§6.2.5.1).

    A segment is skipped when all of it lies further than ``skip_until`` seconds from
    the end of the last segment: its end is at least ``skip_until`` before that end.
    """
    remaining = sum(segment_durations, Fraction(0))
    count = 0
    for duration in segment_durations:
        remaining -= duration  # distance from this segment's end to the playlist's end
        if remaining < skip_until:
            break
        count += 1
    return count


def media_version(
    *, fractional_durations: bool, byterange: bool, map_tag: bool, skip: Skip | None
) -> int:
    """The lowest EXT-X-VERSION of a media playlist with these features (§8):
    non-integer EXTINF durations, EXT-X-BYTERANGE, EXT-X-MAP, EXT-X-SKIP."""
    version = 1
    if fractional_durations:
        version = 3
    if byterange:
        version = max(version, 4)
    if map_tag:
        version = max(version, 6)
    if skip is not None:
        version = max(version, 9)
        if skip.recently_removed_dateranges is not None:
            version = max(version, 10)
    return version


def required_version(pl: MediaPlaylist) -> int:
    """The lowest EXT-X-VERSION the playlist's tags need (§8)."""
    items: list[Segment | OpenSegment] = list(pl.segments)
    if pl.open_segment is not None:
        items.append(pl.open_segment)
    return media_version(
        fractional_durations=any(s.duration.denominator != 1 for s in pl.segments),
        byterange=any(s.byterange is not None for s in pl.segments),
        map_tag=pl.map is not None or any(s.map is not None for s in items),
        skip=pl.skip,
    )


def required_multivariant_version(pl: MultivariantPlaylist) -> int:
    """The lowest EXT-X-VERSION a multivariant playlist of llhls's tags needs (§8)."""
    del pl  # EXT-X-MEDIA, STREAM-INF, INDEPENDENT-SEGMENTS: all version 1
    return 1


def _part_issues(pl: MediaPlaylist, target: Fraction) -> list[str]:
    issues: list[str] = []
    groups: list[tuple[str, tuple[Part, ...], bool]] = [
        (s.uri, s.parts, True) for s in pl.segments if s.parts
    ]
    if pl.open_segment is not None:
        groups.append(("the open segment", pl.open_segment.parts, False))
    for where, parts, complete in groups:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            before_gap = not last and parts[i + 1].gap
            # The last listed part of the open segment may yet be its parent's last.
            exempt = part.independent or part.gap or before_gap or last
            if not part_duration_ok(part.duration, target, exempt):
                issues.append(
                    f"part {part.uri} of {where} lasts {format_decimal(part.duration)} s, "
                    f"outside [85 %, 100 %] of PART-TARGET {format_decimal(target)}"
                )
        if complete and not any(p.independent or p.gap for p in parts):
            issues.append(f"no part of {where} is INDEPENDENT=YES")
    return issues


def _timing_issues(pl: MediaPlaylist) -> list[str]:
    """Part tags near the end only; parts add up to their segment."""
    issues: list[str] = []
    td = pl.target_duration
    end = pl.duration
    if pl.open_segment is not None:
        end += sum((p.duration for p in pl.open_segment.parts), Fraction(0))
    start = Fraction(0)
    for seg in pl.segments:
        if seg.parts:
            if start < end - part_tag_horizon(td):
                issues.append(
                    f"segment {seg.uri} keeps part tags more than 3 target durations from the end"
                )
            total = sum((p.duration for p in seg.parts), Fraction(0))
            slack = Fraction(len(seg.parts) + 1, 10**5)  # each decimal is rounded up
            if abs(total - seg.duration) > slack:
                issues.append(
                    f"parts of {seg.uri} add up to {format_decimal(total)} s, "
                    f"EXTINF says {format_decimal(seg.duration)} s"
                )
        start += seg.duration
    return issues


def _server_control_issues(pl: MediaPlaylist, has_parts: bool) -> list[str]:
    issues: list[str] = []
    sc = pl.server_control
    td = pl.target_duration
    if has_parts and (sc is None or sc.part_hold_back is None):
        issues.append("PART-HOLD-BACK is required with parts")
    if sc is None:
        return issues
    if sc.part_hold_back is not None and pl.part_target is not None:
        if sc.part_hold_back < 2 * pl.part_target:
            issues.append("PART-HOLD-BACK is below 2 x PART-TARGET")
        elif sc.part_hold_back < part_hold_back(pl.part_target):
            issues.append("PART-HOLD-BACK is below 3 x PART-TARGET")
    if sc.hold_back is not None and sc.hold_back < hold_back(td):
        issues.append("HOLD-BACK is below 3 x TARGETDURATION")
    if sc.can_skip_until is not None and sc.can_skip_until < can_skip_until(td):
        issues.append("CAN-SKIP-UNTIL is below 6 x TARGETDURATION")
    return issues


def _structure_issues(pl: MediaPlaylist, has_parts: bool) -> list[str]:
    issues: list[str] = []
    part_hints = [h for h in pl.preload_hints if h.type == "PART"]
    if pl.endlist:
        if pl.preload_hints:
            issues.append("a playlist with EXT-X-ENDLIST carries no EXT-X-PRELOAD-HINT")
        if pl.open_segment is not None:
            issues.append("a playlist with EXT-X-ENDLIST has an unfinished segment")
        if pl.skip is not None:
            issues.append("a playlist with EXT-X-ENDLIST is never a delta update")
    elif has_parts and len(part_hints) != 1:
        issues.append(
            f"a live playlist with parts needs one PART preload hint, has {len(part_hints)}"
        )
    for kind in ("PART", "MAP"):
        if sum(1 for h in pl.preload_hints if h.type == kind) > 1:
            issues.append(f"more than one {kind} preload hint")
    uris = [p.uri for s in pl.segments for p in s.parts]
    if pl.open_segment is not None:
        uris += [p.uri for p in pl.open_segment.parts]
    if len(set(uris)) != len(uris):
        issues.append("a part URI appears twice")
    for hint in part_hints:
        if hint.uri in uris:
            issues.append(f"preload hint {hint.uri} names a part already listed")
    if len({s.uri for s in pl.segments}) != len(pl.segments):
        issues.append("a segment URI appears twice")
    for report in pl.rendition_reports:
        if "_HLS_" in report.uri:
            issues.append(f"rendition report URI {report.uri} carries _HLS_ parameters")
        if has_parts and report.last_part is None:
            issues.append(f"rendition report {report.uri} lacks LAST-PART")
    if pl.skip is not None and (
        pl.server_control is None or pl.server_control.can_skip_until is None
    ):
        issues.append("EXT-X-SKIP without CAN-SKIP-UNTIL")
    return issues


def _pdt_issues(pl: MediaPlaylist) -> list[str]:
    issues: list[str] = []
    first: Segment | OpenSegment | None = pl.segments[0] if pl.segments else pl.open_segment
    if first is not None and first.pdt_ms is None:
        issues.append("the first segment has no EXT-X-PROGRAM-DATE-TIME")
    items: list[Segment | OpenSegment] = list(pl.segments)
    if pl.open_segment is not None:
        items.append(pl.open_segment)
    for i, item in enumerate(items):
        if item.discontinuity and item.pdt_ms is None:
            issues.append(f"segment #{i} after a discontinuity has no EXT-X-PROGRAM-DATE-TIME")
    return issues


def validate_media_playlist(pl: MediaPlaylist) -> list[str]:
    """Check a media playlist against ``llhls-server-rules.md``; return the findings."""
    issues: list[str] = []
    td = pl.target_duration
    needed = required_version(pl)
    if pl.version is None and needed > 1:
        issues.append(f"EXT-X-VERSION missing; the tags need {needed}")
    elif pl.version is not None and pl.version < needed:
        issues.append(f"EXT-X-VERSION {pl.version} is below the {needed} the tags need")
    elif pl.version is not None and pl.version > needed:
        issues.append(f"EXT-X-VERSION {pl.version} is higher than the {needed} needed")
    for seg in pl.segments:
        if not segment_duration_ok(seg.duration, td):
            issues.append(
                f"segment {seg.uri} lasts {format_decimal(seg.duration)} s, "
                f"longer than TARGETDURATION {td}"
            )
    has_parts = pl.has_parts
    if has_parts:
        if pl.part_target is None:
            issues.append("EXT-X-PART-INF is required when parts exist")
        else:
            issues += _part_issues(pl, pl.part_target)
        issues += _timing_issues(pl)
    if pl.part_target is not None and pl.part_target >= td:
        issues.append("PART-TARGET must be below TARGETDURATION")
    issues += _server_control_issues(pl, has_parts)
    issues += _structure_issues(pl, has_parts)
    issues += _pdt_issues(pl)
    if (
        not pl.endlist
        and pl.skip is None
        and pl.media_sequence > 0
        and pl.duration < 3 * td
        and pl.playlist_type is None
    ):
        issues.append("a live playlist that dropped segments is shorter than 3 target durations")
    return issues


def validate_multivariant_playlist(pl: MultivariantPlaylist) -> list[str]:
    """Check a multivariant playlist: groups referenced exist, codecs declared."""
    issues: list[str] = []
    groups = {(r.type, r.group_id) for r in pl.renditions}
    for v in pl.variants:
        if v.audio is not None and ("AUDIO", v.audio) not in groups:
            issues.append(f"variant {v.uri} names unknown audio group {v.audio!r}")
        if v.codecs is None:
            issues.append(f"variant {v.uri} has no CODECS")
        if v.average_bandwidth is not None and v.average_bandwidth > v.bandwidth:
            issues.append(f"variant {v.uri} AVERAGE-BANDWIDTH exceeds BANDWIDTH")
    for group in {g for _, g in groups}:
        defaults = [r for r in pl.renditions if r.group_id == group and r.default]
        if len(defaults) > 1:
            issues.append(f"group {group!r} has more than one DEFAULT=YES rendition")
    needed = required_multivariant_version(pl)
    if pl.version is not None and pl.version > max(needed, 1):
        issues.append(f"EXT-X-VERSION {pl.version} is higher than needed")
    return issues
