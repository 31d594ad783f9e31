"""Spec rules as pure functions, and the conformance checker, on tables of cases."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction as F

import pytest

from llhls.playlist import (
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    PreloadHint,
    Rendition,
    RenditionReport,
    Segment,
    Skip,
    Variant,
    rules,
    validate_media_playlist,
    validate_multivariant_playlist,
)
from llhls.timing import format_decimal
from tests.llhls.playlist_samples import HALF, LL_CONTROL, LL_MEDIA, parts_of

# -- rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "target", "exempt", "ok"),
    [
        (F(1, 5), F(1, 5), False, True),
        (F(17, 100), F(1, 5), False, True),  # exactly 85 %
        (F(169, 1000), F(1, 5), False, False),  # below 85 %
        (F(169, 1000), F(1, 5), True, True),  # exempt: independent, gap, last
        (F(201, 1000), F(1, 5), True, False),  # above the target: never ok
        (F(0), F(1, 5), True, True),
    ],
)
def test_part_duration_ok(duration: F, target: F, exempt: bool, ok: bool) -> None:
    assert rules.part_duration_ok(duration, target, exempt) is ok


@pytest.mark.parametrize(
    ("part_target", "limit"),
    [(F(1, 5), 15), (F("0.21334"), 14), (F(1, 3), 9), (F(1, 2), 6), (F(1), 3), (F(2), 3)],
)
def test_advance_part_limit(part_target: F, limit: int) -> None:
    assert rules.advance_part_limit(part_target) == limit


@pytest.mark.parametrize(
    ("durations", "boundary", "skipped"),
    [
        ([], F(12), 0),
        ([F(2)] * 6, F(12), 0),  # the oldest ends 10 s before the end
        ([F(2)] * 7, F(12), 1),  # the oldest ends exactly 12 s before the end
        ([F(2)] * 30, F(12), 24),
        ([F(3), F(2), F(2), F(2), F(2), F(2), F(2)], F(12), 1),
        ([F(6)] * 10, F(36), 4),
    ],
)
def test_skip_boundary(durations: list[F], boundary: F, skipped: int) -> None:
    assert rules.skip_boundary(durations, boundary) == skipped


def test_declared_values() -> None:
    audio_part = F(10 * 1024, 48_000)  # ten AAC frames: 0.21333... s
    assert rules.declared_part_target([F(1, 5), audio_part]) == F("0.21334")
    assert rules.part_hold_back(F("0.21334")) == F("0.64002")
    assert rules.hold_back(2) == 6
    assert rules.can_skip_until(2) == 12
    assert rules.blocking_timeout(2) == 6
    assert rules.target_duration(F(2)) == 2
    assert rules.target_duration(F(2001, 1000)) == 3
    assert rules.max_block_msn(10) == 12
    with pytest.raises(ValueError):
        rules.declared_part_target([])
    with pytest.raises(ValueError):
        rules.target_duration(0)


@pytest.mark.parametrize(
    ("duration", "ok"), [(F(2), True), (F(249, 100), True), (F(5, 2), False), (F(3), False)]
)
def test_segment_duration_ok(duration: F, ok: bool) -> None:
    assert rules.segment_duration_ok(duration, 2) is ok


# Exact integer shortcuts of the rules, against the Fraction arithmetic they replace.
EXACT_CASES = [
    F(0),
    F(1, 5),
    F(10 * 1024, 48_000),
    F(1, 3),
    F(2, 3),
    F(1, 2),
    F(5, 2),
    F(249, 100),
    F(999_999, 1_000_000),
    F(1),
    F(7, 3),
    F(123_456_789, 10**5),
    F(1, 10**7),
    F(-1, 2),
    F(-5, 2),
]


@pytest.mark.parametrize("value", EXACT_CASES)
def test_ceil_decimal_is_the_rendered_decimal(value: F) -> None:
    for places in (0, 1, 3, 5, 8):
        if value < 0:
            with pytest.raises(ValueError):
                rules.ceil_decimal(value, places)
            continue
        expected = F(format_decimal(value, places))
        assert rules.ceil_decimal(value, places) == expected
        assert rules.ceil_decimal(value, places) >= value
    if value >= 0:
        assert rules.ceil_decimal(int(value.numerator)) == value.numerator


@pytest.mark.parametrize("value", EXACT_CASES)
def test_integer_shortcuts_match_the_fraction_rules(value: F) -> None:
    for target in (0, 1, 2, 3):
        assert rules.segment_duration_ok(value, target) is (math.floor(value + F(1, 2)) <= target)
    if value > 0:
        expected = math.floor(3 / value) if value < 1 else 3
        assert rules.advance_part_limit(value) == expected
    else:
        with pytest.raises(ValueError):
            rules.advance_part_limit(value)
    assert rules.advance_part_limit(F(3)) == 3


def test_media_version() -> None:
    def version(fractional: bool, byterange: bool, map_tag: bool, skip: Skip | None) -> int:
        return rules.media_version(
            fractional_durations=fractional, byterange=byterange, map_tag=map_tag, skip=skip
        )

    assert version(False, False, False, None) == 1
    assert version(True, False, False, None) == 3
    assert version(True, True, False, None) == 4
    assert version(True, True, True, None) == 6
    assert version(False, False, False, Skip(1)) == 9
    assert version(False, False, True, Skip(1, ("a",))) == 10


def test_required_version() -> None:
    bare = MediaPlaylist(target_duration=2, segments=(Segment("s", F(2)),))
    assert rules.required_version(bare) == 1
    assert rules.required_version(replace(bare, segments=(Segment("s", F(3, 2)),))) == 3
    assert rules.required_version(replace(bare, map=Map("i"))) == 6
    assert rules.required_version(replace(bare, skip=Skip(3))) == 9
    assert rules.required_version(replace(bare, skip=Skip(3, ()))) == 10


@pytest.mark.parametrize(
    ("mutate", "finding"),
    [
        (lambda p: replace(p, version=7), "higher than"),
        (lambda p: replace(p, version=3), "below"),
        (lambda p: replace(p, part_target=None), "PART-INF"),
        (lambda p: replace(p, part_target=F(2)), "below TARGETDURATION"),
        (lambda p: replace(p, part_target=F(2, 5)), "outside [85 %, 100 %]"),
        (lambda p: replace(p, part_target=F(1)), "outside [85 %, 100 %]"),
        (
            lambda p: replace(p, server_control=replace(LL_CONTROL, part_hold_back=F(5, 4))),
            "below 3 x PART-TARGET",
        ),
        (
            lambda p: replace(p, server_control=replace(LL_CONTROL, part_hold_back=F(1, 2))),
            "below 2 x PART-TARGET",
        ),
        (
            lambda p: replace(p, server_control=replace(LL_CONTROL, part_hold_back=None)),
            "PART-HOLD-BACK is required",
        ),
        (lambda p: replace(p, server_control=replace(LL_CONTROL, hold_back=F(5))), "HOLD-BACK"),
        (
            lambda p: replace(p, server_control=replace(LL_CONTROL, can_skip_until=F(6))),
            "CAN-SKIP-UNTIL",
        ),
        (lambda p: replace(p, preload_hints=()), "one PART preload hint"),
        (lambda p: replace(p, endlist=True), "EXT-X-ENDLIST"),
        (
            lambda p: replace(p, preload_hints=(PreloadHint("part13.1.m4s"),)),
            "already listed",
        ),
        (
            lambda p: replace(
                p, rendition_reports=(RenditionReport("../a.m3u8?_HLS_msn=1", 1, 0),)
            ),
            "_HLS_",
        ),
        (
            lambda p: replace(p, rendition_reports=(RenditionReport("../a.m3u8", 1),)),
            "LAST-PART",
        ),
        (
            lambda p: replace(p, segments=(replace(p.segments[0], pdt_ms=None), *p.segments[1:])),
            "PROGRAM-DATE-TIME",
        ),
        (
            lambda p: replace(
                p, segments=(*p.segments[:2], replace(p.segments[2], duration=F(5, 2)))
            ),
            "add up",
        ),
        (
            lambda p: replace(
                p,
                segments=(replace(p.segments[0], parts=parts_of(10, [HALF] * 4)), *p.segments[1:]),
            ),
            "more than 3 target durations",
        ),
        (
            lambda p: replace(
                p,
                segments=(
                    *p.segments[:2],
                    replace(p.segments[2], parts=parts_of(12, [HALF] * 4, ())),
                ),
            ),
            "INDEPENDENT",
        ),
        (lambda p: replace(p, segments=p.segments[1:], media_sequence=11), "shorter than 3"),
        (
            lambda p: replace(p, segments=(replace(p.segments[0], duration=F(3)), *p.segments[1:])),
            "longer than TARGETDURATION",
        ),
    ],
)
def test_validate_findings(mutate: object, finding: str) -> None:
    assert callable(mutate)
    found = validate_media_playlist(mutate(LL_MEDIA))
    assert any(finding in f for f in found), found


def test_validate_multivariant_findings() -> None:
    bad = MultivariantPlaylist(
        variants=(Variant("v", 10, average_bandwidth=20, audio="nope"),),
        renditions=(
            Rendition("AUDIO", "g", "a", default=True),
            Rendition("AUDIO", "g", "b", default=True),
        ),
        version=7,
    )
    found = validate_multivariant_playlist(bad)
    assert len(found) == 5, found
