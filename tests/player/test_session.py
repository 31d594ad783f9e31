"""The LL-HLS session on a virtual clock against an in-memory origin."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from player.actions import (
    Cancel,
    Deliver,
    Fetch,
    InitSection,
    PlayFrom,
    RenditionInfo,
    SessionConfig,
    default_select,
)
from player.session import Session, rendition_id, resolve
from tests.player.fake_origin import FakeOrigin, Harness, StreamSpec

URL = "/live/index.m3u8"


def run(
    spec: StreamSpec | None = None,
    *,
    start: float = 30.05,
    until: float = 36.0,
    config: SessionConfig | None = None,
    origin: FakeOrigin | None = None,
    url: str = URL,
) -> Harness:
    h = Harness(origin or FakeOrigin(spec or StreamSpec()), Session(url, config))
    h.start(start)
    h.run_until(until)
    return h


def query(fetch: Fetch) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(fetch.path_and_query).query).items()}


def positions(delivered: Sequence[Deliver]) -> list[tuple[int, int]]:
    return [(d.msn, d.part if d.part is not None else 0) for d in delivered]


def assert_contiguous(delivered: Sequence[Deliver], pps: int = 10) -> None:
    """Every delivery follows the previous one: next part or next segment, no repeats."""
    for prev, cur in zip(delivered, delivered[1:], strict=False):
        assert cur.start_us == prev.start_us + prev.duration_us, (prev, cur)
        if prev.part is None:
            assert (cur.msn, cur.part or 0) == (prev.msn + 1, 0)
        elif prev.part + 1 < pps:
            assert (cur.msn, cur.part) == (prev.msn, prev.part + 1)
        else:
            assert (cur.msn, cur.part) == (prev.msn + 1, 0)


# -- start-up and steady state -----------------------------------------------------------


def test_startup_requests_in_order() -> None:
    h = run(until=30.2)
    first = [f for _, f in h.fetches()][:4]
    assert [(f.kind, f.path_and_query) for f in first] == [
        ("multivariant", "/live/index.m3u8"),
        ("playlist", "/live/720p/media.m3u8"),
        ("playlist", "/live/audio/media.m3u8"),
        ("init", "/live/720p/init.mp4"),
    ]
    assert h.session.current_rendition("video") == "720p"
    assert h.session.current_rendition("audio") == "audio"
    inits = h.inits()
    assert [(i.track, i.data) for i in inits] == [("video", b"init:720p"), ("audio", b"init:audio")]


def test_hinted_part_and_blocking_reload_in_flight_together() -> None:
    h = run(StreamSpec(renditions=("720p",)), until=33.0)
    actions = [(t, a) for t, a in h.actions if t > 30.5]
    pairs = 0
    for (t1, a1), (t2, a2) in zip(actions, actions[1:], strict=False):
        if isinstance(a1, Fetch) and a1.kind == "part" and a1.blocking:
            # the next action is the blocking reload for the same position, same instant
            assert isinstance(a2, Fetch) and a2.kind == "playlist" and t1 == t2
            q = query(a2)
            assert (int(q["_HLS_msn"]), int(q["_HLS_part"])) == (a1.msn, a1.part)
            assert a2.blocking and (a2.msn, a2.part) == (a1.msn, a1.part)
            assert a1.path_and_query == f"/live/720p/part{a1.msn}.{a1.part}.m4s"
            pairs += 1
    assert pairs >= 10  # one pair per 0.2 s part
    # both are held by the origin: 2 requests in flight between consecutive parts
    assert h.session.in_flight == 2


def test_steady_state_delivers_every_part_at_the_edge() -> None:
    h = run(StreamSpec(renditions=("720p", "audio")), until=40.0)
    for track in ("video", "audio"):
        delivered = h.delivered(track)
        assert_contiguous(delivered)
        assert positions(delivered)[-1] == (19, 8)  # 19.9 completes at 40.0, arrives 40.02
    # delivered 20 ms (the fake rtt) after each part completed
    last_video = [(t, a) for t, a in h.actions if isinstance(a, Deliver) and a.track == "video"]
    t, d = last_video[-1]
    assert t == pytest.approx(h.origin.part_ready_at(d.msn, d.part or 0) + 0.02)


@pytest.mark.parametrize(
    ("start", "every", "expected"),
    [
        (30.05, 1, (14, 7)),  # edge 30.0, PART-HOLD-BACK 0.6 -> part starting at 29.4
        (30.05, 5, (14, 5)),  # latest independent part at or before 29.4
        (30.05, 10, (14, 0)),  # only segment starts are independent
        (30.65, 1, (15, 0)),  # edge 30.6 -> 30.0
        (30.65, 5, (15, 0)),
        (31.45, 5, (15, 0)),  # edge 31.4 -> 30.8: 15.5 starts at 31.0, too late
        (31.65, 5, (15, 5)),  # edge 31.6 -> 31.0
    ],
)
def test_start_position(start: float, every: int, expected: tuple[int, int]) -> None:
    spec = StreamSpec(renditions=("720p", "audio"), independent_every=every)
    h = run(spec, start=start, until=start + 0.2)
    first_video = h.delivered("video")[0]
    first_audio = h.delivered("audio")[0]
    edge = h.origin.produced(start)  # parts complete at start
    position = first_video.msn * 10 + (first_video.part or 0)
    held_back = (edge - position) * 0.2
    assert (first_video.msn, first_video.part) == expected
    assert first_video.independent
    assert held_back >= 0.6 - 1e-9  # at least PART-HOLD-BACK behind the edge
    assert held_back < 0.6 + every * 0.2  # and less than one independent interval more
    # audio starts where video starts
    assert (first_audio.msn, first_audio.part) == (first_video.msn, first_video.part)
    assert first_audio.start_us == first_video.start_us


def test_timeline_is_pdt_when_present_else_zero_based() -> None:
    with_pdt = run(StreamSpec(renditions=("720p",)), until=30.3).delivered()[0]
    assert with_pdt.start_us == with_pdt.pdt_us == 1_700_000_000_000_000 + 28_000_000
    h = run(StreamSpec(renditions=("720p", "audio"), pdt_base_ms=None), until=31.0)
    video, audio = h.delivered("video"), h.delivered("audio")
    assert video[0].start_us == audio[0].start_us == 0
    assert video[0].pdt_us is None
    assert_contiguous(video)


# -- delta updates -------------------------------------------------------------------------


def test_delta_updates_are_requested_and_merged() -> None:
    h = run(StreamSpec(renditions=("720p",)), until=45.0)
    playlist_fetches = [f for _, f in h.fetches() if f.kind == "playlist"]
    assert "_HLS_skip" not in playlist_fetches[0].path_and_query  # first load is full
    skipped = [f for f in playlist_fetches[1:] if query(f).get("_HLS_skip") == "YES"]
    assert len(skipped) == len(playlist_fetches) - 1
    assert h.session.counters["delta_merged"] >= 60
    # the merged playlist equals the origin's full playlist at the last answer
    merged = h.session.playlist("video")
    assert merged is not None and merged.skip is None
    full = h.origin.media_playlist("720p", 44.8)
    assert merged.media_sequence == full.media_sequence
    assert [s.uri for s in merged.segments] == [s.uri for s in full.segments]
    assert merged.open_segment == full.open_segment
    assert_contiguous(h.delivered())


def test_no_delta_when_the_playlist_is_short_or_not_offered() -> None:
    h = run(StreamSpec(renditions=("720p",), window=5), until=34.0)
    assert all("_HLS_skip" not in f.path_and_query for _, f in h.fetches())
    h = run(StreamSpec(renditions=("720p",), can_skip=False), until=34.0)
    assert all("_HLS_skip" not in f.path_and_query for _, f in h.fetches())
    h = run(StreamSpec(renditions=("720p",)), until=34.0, config=SessionConfig(delta_updates=False))
    assert all("_HLS_skip" not in f.path_and_query for _, f in h.fetches())


def test_unmergeable_delta_falls_back_to_a_full_reload() -> None:
    origin = FakeOrigin(StreamSpec(renditions=("720p",)))
    answered: list[str] = []

    def fault(path: str, now: float) -> int | str | None:
        answered.append(path)
        return None

    origin.fault = fault
    h = Harness(origin, Session(URL))
    h.start(30.05)
    h.run_until(31.0)
    # forget what the session knows: the next delta cannot be merged
    track = h.session.tracks["video"]
    assert track.playlist is not None
    track.playlist = origin.media_playlist("720p", 1.0)
    h.run_until(32.0)
    assert h.session.counters.get("delta_mismatch", 0) >= 1
    plain = [f for _, f in h.fetches() if f.path_and_query == "/live/720p/media.m3u8"]
    assert len(plain) == 2  # the first load and the fallback
    assert h.failed() == []


# -- errors and recovery -----------------------------------------------------------------


def test_playlist_errors_back_off_and_reload_in_full() -> None:
    origin = FakeOrigin(StreamSpec(renditions=("720p",)))
    origin.fault = lambda path, now: 503 if "media.m3u8" in path and 31.0 <= now < 31.7 else None
    h = Harness(origin, Session(URL))
    h.start(30.05)
    h.run_until(34.0)
    playlist = [(t, f) for t, f in h.fetches() if f.kind == "playlist" and t > 30.9]
    # the blocking reload sent at 31.02 fails at 31.04; full reloads follow after
    # 0.1, 0.2, 0.4 s (each failing 20 ms after it is sent), then succeed
    times = [round(t, 3) for t, _ in playlist[:5]]
    assert times == [31.02, 31.14, 31.36, 31.78, 31.8]
    assert [f.path_and_query for _, f in playlist[1:4]] == ["/live/720p/media.m3u8"] * 3
    assert "_HLS_msn" in playlist[4][1].path_and_query  # blocking again once recovered
    delivered = h.delivered()
    assert_contiguous(delivered)
    assert positions(delivered)[-1] == (16, 8)


def test_part_errors_are_retried_and_order_is_kept() -> None:
    origin = FakeOrigin(StreamSpec(renditions=("720p",)))
    failed: set[str] = set()

    def fault(path: str, now: float) -> int | str | None:
        if path.endswith((".3.m4s", ".7.m4s")) and path not in failed:
            failed.add(path)
            return 404 if path.endswith(".3.m4s") else "reset"
        return None

    origin.fault = fault
    h = run(origin=origin, until=36.0)
    delivered = h.delivered("video")
    assert_contiguous(delivered)
    assert positions(delivered)[-1] == (17, 8)
    assert h.session.counters["failures"] >= 2
    # each failed part was asked again 0.1 s after its failure
    retried = [f for _, f in h.fetches() if f.path_and_query in failed]
    assert len(retried) == 2 * len(failed)


def test_connection_drop_reissues_everything_outstanding() -> None:
    h = Harness(FakeOrigin(StreamSpec(renditions=("720p", "audio"))), Session(URL))
    h.drop_at = [31.1]
    h.start(30.05)
    h.run_until(31.09)
    outstanding = h.session.in_flight
    assert outstanding == 4  # hint + blocking reload, for each track
    before = len(h.fetches())
    h.run_until(31.25)
    again = [f for t, f in h.fetches()[before:] if t == pytest.approx(31.2)]
    kinds = sorted((f.track or "", f.kind, f.blocking) for f in again)
    assert kinds == [
        ("audio", "part", True),
        ("audio", "playlist", False),
        ("video", "part", True),
        ("video", "playlist", False),
    ]
    h.run_until(34.0)
    for track in ("video", "audio"):
        assert_contiguous(h.delivered(track))
        assert positions(h.delivered(track))[-1] == (16, 8)


def test_persistent_failure_gives_up() -> None:
    origin = FakeOrigin(StreamSpec(renditions=("720p",)))
    origin.fault = lambda path, now: "refused" if now > 31.0 else None
    h = run(origin=origin, until=60.0, config=SessionConfig(max_failures=5))
    failed = h.failed()
    assert len(failed) == 1
    assert "720p" in failed[0].reason and "5 failures" in failed[0].reason
    assert h.session.get_timer() is None
    assert h.session.in_flight == 0
    assert isinstance(h.actions[-1][1], Cancel | type(failed[0]))


def test_multivariant_retries_with_backoff_then_fails() -> None:
    origin = FakeOrigin()
    origin.fault = lambda path, now: 503 if path == URL else None
    h = run(origin=origin, start=10.0, until=20.0, config=SessionConfig(max_failures=4))
    times = [round(t, 3) for t, f in h.fetches()]
    assert times == [10.0, 10.12, 10.34, 10.76]
    assert len(h.failed()) == 1


def test_not_hls_fails_at_once() -> None:
    origin = FakeOrigin()
    h = Harness(origin, Session("/live/720p/init.mp4"))
    h.start(30.0)
    h.run_until(31.0)
    assert len(h.failed()) == 1 and "not an HLS playlist" in h.failed()[0].reason


def test_media_playlist_url_plays_one_track() -> None:
    h = run(StreamSpec(renditions=("720p",)), url="/live/720p/media.m3u8", until=31.0)
    assert list(h.session.tracks) == ["video"]
    assert h.session.current_rendition("video") == "720p"
    assert_contiguous(h.delivered())
    assert len(h.delivered()) >= 5


# -- classic HLS -----------------------------------------------------------------------------


def test_classic_hls_plain_reloads_every_target_duration() -> None:
    spec = StreamSpec(renditions=("720p",), low_latency=False, can_block_reload=False)
    spec.can_skip = False
    h = run(spec, until=40.0)
    delivered = h.delivered()
    assert all(d.part is None for d in delivered)
    assert delivered[0].msn == 12  # HOLD-BACK 6 s from the edge at 30.0
    assert_contiguous(delivered)
    reloads = [t for t, f in h.fetches() if f.kind == "playlist"]
    gaps = [round(b - a, 3) for a, b in zip(reloads, reloads[1:], strict=False)]
    assert gaps and all(g == 2.0 for g in gaps)
    assert all("_HLS_" not in f.path_and_query for _, f in h.fetches())


def test_classic_hls_with_blocking_reload() -> None:
    spec = StreamSpec(renditions=("720p",), low_latency=False, can_skip=False)
    h = run(spec, until=36.5)
    reloads = [f for _, f in h.fetches() if f.kind == "playlist"]
    assert [query(f).get("_HLS_msn") for f in reloads[1:]] == ["15", "16", "17", "18"]
    assert all("_HLS_part" not in f.path_and_query for f in reloads)
    assert positions(h.delivered())[-1] == (17, 0)


def test_client_in_classic_mode_ignores_parts() -> None:
    h = run(StreamSpec(renditions=("720p",)), until=36.5, config=SessionConfig(low_latency=False))
    assert all(f.kind != "part" and "_HLS_" not in f.path_and_query for _, f in h.fetches())
    assert all(d.part is None for d in h.delivered())


def test_end_of_stream() -> None:
    h = run(StreamSpec(renditions=("720p", "audio"), end_at_msn=16), until=40.0)
    assert sorted(e.track for e in h.ends()) == ["audio", "video"]
    for track in ("video", "audio"):
        assert positions(h.delivered(track))[-1] == (16, 9)
    assert h.session.in_flight == 0
    assert h.session.get_timer() is None


# -- renditions, reports, switching ----------------------------------------------------------


def test_rendition_reports_are_followed() -> None:
    h = run(StreamSpec(renditions=("720p", "360p", "audio")), until=31.05)
    assert h.session.reports["360p"] == (15, 4)
    assert h.session.reports["720p"] == (15, 4)


def test_switch_at_an_independent_part_without_gap() -> None:
    spec = StreamSpec(renditions=("720p", "360p"), independent_every=5)
    h = Harness(FakeOrigin(spec), Session(URL))
    h.start(30.05)
    h.run_until(31.05)
    h.session.switch("360p", h.now)
    h._drain()
    first_new = [f for _, f in h.fetches() if f.rendition == "360p"][0]
    assert query(first_new) == {"_HLS_msn": "15", "_HLS_part": "4"}  # the reported edge
    h.run_until(34.0)
    delivered = h.delivered("video")
    assert_contiguous(delivered)
    renditions = [d.rendition for d in delivered]
    k = renditions.index("360p")
    assert set(renditions[:k]) == {"720p"} and set(renditions[k:]) == {"360p"}
    assert delivered[k].independent
    switch_inits = [a for _, a in h.actions if isinstance(a, InitSection)]
    assert [i.rendition for i in switch_inits] == ["720p", "360p"]
    assert h.session.current_rendition("video") == "360p"
    assert h.session.counters["switches"] == 1


def test_select_hook_and_default_selection() -> None:
    def lowest(renditions: Sequence[RenditionInfo]) -> tuple[str, str | None]:
        video = min((r for r in renditions if r.type == "video"), key=lambda r: r.bandwidth)
        return video.id, None

    h = Harness(FakeOrigin(), Session(URL, select=lowest))
    h.start(30.05)
    h.run_until(30.5)
    assert h.session.current_rendition("video") == "360p"
    assert "audio" not in h.session.tracks
    ids = [(r.id, r.type, r.uri) for r in h.session.renditions]
    assert ids == [
        ("720p", "video", "/live/720p/media.m3u8"),
        ("360p", "video", "/live/360p/media.m3u8"),
        ("audio", "audio", "/live/audio/media.m3u8"),
    ]
    assert default_select(h.session.renditions) == ("720p", "audio")


@pytest.mark.parametrize(
    ("base", "uri", "expected"),
    [
        ("/live/index.m3u8", "720p/media.m3u8", "/live/720p/media.m3u8"),
        ("/live/720p/media.m3u8", "part1.2.m4s", "/live/720p/part1.2.m4s"),
        ("/live/720p/media.m3u8", "../audio/media.m3u8", "/live/audio/media.m3u8"),
        ("/live/index.m3u8", "/other/x.m3u8?a=1", "/other/x.m3u8?a=1"),
        ("/live/index.m3u8", "https://cdn.example/live/x.m3u8", "/live/x.m3u8"),
    ],
)
def test_resolve(base: str, uri: str, expected: str) -> None:
    assert resolve(base, uri) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/live/720p/media.m3u8", "720p"), ("/media.m3u8", "/media.m3u8"), ("/a/b.m3u8?x", "a")],
)
def test_rendition_id(path: str, expected: str) -> None:
    assert rendition_id(path) == expected


def test_runs_are_deterministic() -> None:
    a = run(until=33.0).actions
    b = run(until=33.0).actions
    assert a == b


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    faults=st.dictionaries(
        st.integers(min_value=2, max_value=120),
        st.sampled_from([404, 503, 500, "timeout", "reset"]),
        max_size=12,
    ),
    start=st.floats(min_value=25.0, max_value=40.0),
    every=st.sampled_from([1, 5, 10]),
)
def test_random_faults_keep_delivery_ordered(
    faults: dict[int, int | str], start: float, every: int
) -> None:
    """Whatever fails, each track delivers strictly in order, each chunk at most once,
    on one gapless timeline (apart from chunks given up on), and catches up."""
    origin = FakeOrigin(StreamSpec(renditions=("720p", "audio"), independent_every=every))
    count = 0

    def fault(path: str, now: float) -> int | str | None:
        nonlocal count
        count += 1
        return faults.get(count)

    origin.fault = fault
    h = Harness(origin, Session(URL))
    h.start(start)
    h.run_until(start + 12.0)
    assert h.failed() == []
    for track in ("video", "audio"):
        delivered = h.delivered(track)
        assert delivered, track
        pos = positions(delivered)
        assert pos == sorted(set(pos))
        if not h.session.counters.get("skipped"):
            assert_contiguous(delivered)
        # caught up: within a second of the live edge at the end
        edge = origin.produced(h.now)
        last = pos[-1][0] * 10 + pos[-1][1]
        assert edge - last <= 5 + every


def test_publisher_restart_starts_afresh_on_a_continuous_timeline() -> None:
    origin = FakeOrigin(StreamSpec(renditions=("720p", "audio")))
    h = Harness(origin, Session(URL))
    h.start(30.05)
    h.run_until(32.0)
    origin.epoch = 20.0  # the stream restarts: media sequence back from 15 to 5
    h.run_until(36.0)
    assert h.session.counters["restarts"] == 1
    assert h.failed() == []
    for track in ("video", "audio"):
        delivered = h.delivered(track)
        k = next(i for i, d in enumerate(delivered) if d.msn < delivered[i - 1].msn)
        before, after = delivered[:k], delivered[k:]
        assert_contiguous(before)
        assert_contiguous(after)
        assert after[0].independent and after[0].msn < before[-1].msn
        # no jump back on the media timeline
        assert after[0].start_us == before[-1].start_us + before[-1].duration_us
        assert positions(after)[-1] == (7, 8)  # 36.0 - epoch 20 = 16 s = segment 7
    inits = [i.track for i in h.inits()]
    assert sorted(inits) == ["audio", "audio", "video", "video"]  # again after the restart


def test_init_that_keeps_failing_gives_up() -> None:
    origin = FakeOrigin(StreamSpec(renditions=("720p",)))
    origin.fault = lambda path, now: 500 if path.endswith("init.mp4") else None
    h = run(origin=origin, until=60.0, config=SessionConfig(max_failures=3))
    assert len(h.failed()) == 1 and "init 500" in h.failed()[0].reason
    assert h.delivered() == []


def test_byterange_playlists_are_refused() -> None:
    origin = FakeOrigin(StreamSpec(renditions=("720p",)))
    text = (
        '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI="init.mp4"\n'
        "#EXTINF:2,\n#EXT-X-BYTERANGE:1000@0\nall.m4s\n"
    )
    h = Harness(origin, Session("/live/720p/media.m3u8"))
    h.session.start(0.0)
    fetch = h.session.next_action()
    assert isinstance(fetch, Fetch)
    h.session.on_response(fetch.request_id, 200, text.encode(), 0.1)
    actions = []
    while (a := h.session.next_action()) is not None:
        actions.append(a)
    assert len(actions) == 1 and "BYTERANGE" in getattr(actions[0], "reason", "")


@pytest.mark.parametrize(("start", "expected_s"), [(30.05, 29.4), (31.45, 30.8)])
def test_play_from_is_the_hold_back_point(start: float, expected_s: float) -> None:
    h = run(StreamSpec(renditions=("720p", "audio")), start=start, until=start + 0.3)
    kinds = [type(a).__name__ for _, a in h.actions if not isinstance(a, Fetch)]
    assert kinds.count("PlayFrom") == 1
    assert kinds.index("PlayFrom") < kinds.index("Deliver")
    play_from = next(a for _, a in h.actions if isinstance(a, PlayFrom))
    assert play_from.start_us == 1_700_000_000_000_000 + round(expected_s * 1_000_000)
    assert h.delivered()[0].start_us <= play_from.start_us
    h = run(StreamSpec(), start=start, until=start + 0.3, config=SessionConfig(exact_start=False))
    assert not any(isinstance(a, PlayFrom) for _, a in h.actions)


# -- classic HLS on a slow link ----------------------------------------------------------------

SIX_S = Fraction(3, 5)  # 10 parts of 0.6 s: 6 s segments (not listed: the playlist is classic)
SEGMENT_BYTES = 2_250_000  # 6 s of the 720p variant's BANDWIDTH (3 Mbit/s)


def slow_classic(
    seconds_per_segment: float, config: SessionConfig | None = None, *, until: float = 140.0
) -> Harness:
    """Classic HLS, 6 s segments (HOLD-BACK 18 s: the start is 3 segments back), over a
    link on which one segment alone takes ``seconds_per_segment``; timeouts enforced."""
    spec = StreamSpec(renditions=("720p",), part=SIX_S, low_latency=False, can_block_reload=False)
    spec.can_skip = False
    origin = FakeOrigin(spec, segment_bytes=SEGMENT_BYTES)
    h = Harness(origin, Session(URL, config))
    h.link_rate = SEGMENT_BYTES / seconds_per_segment
    h.enforce_timeouts = True
    h.start(100.05)  # 16 segments complete: the edge is at 96 s, the start at 78 s (msn 13)
    h.run_until(until)
    return h


def max_segments_in_flight(h: Harness) -> int:
    sent = {f.request_id: t for t, f in h.fetches() if f.kind == "segment"}
    ends = {rid: t for t, rid, _ in h.answered if rid in sent}
    ends.update({rid: t for t, rid in h.timed_out if rid in sent})
    ends.update({a.request_id: t for t, a in h.actions if isinstance(a, Cancel)})
    events = sorted([(t, 1) for t in sent.values()] + [(t, -1) for t in ends.values()])
    level = peak = 0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return peak


def segment_fetches(h: Harness, msn: int) -> list[Fetch]:
    return [f for _, f in h.fetches() if f.kind == "segment" and f.msn == msn]


def test_classic_slow_segments_start_one_at_a_time() -> None:
    # 8 s per 6 s segment: three at once would take 24 s each, past a fixed 10 s timeout
    h = slow_classic(8.0)
    delivered = h.delivered()
    assert delivered and delivered[0].msn == 13
    first_at = next(t for t, a in h.actions if isinstance(a, Deliver))
    assert first_at < 100.05 + 8.5  # the first segment had the link to itself
    assert_contiguous(delivered)
    assert positions(delivered)[-1] >= (16, 0)
    assert h.session.counters.get("failures", 0) == 0
    assert max_segments_in_flight(h) == 1
    # in playback order: each segment asked for once, in sequence
    asked = [f.msn or 0 for _, f in h.fetches() if f.kind == "segment"]
    assert asked == sorted(set(asked)) and asked[0] == 13


def test_classic_segment_timeout_scales_with_duration_then_throughput() -> None:
    h = slow_classic(8.0)
    (first,) = segment_fetches(h, 13)
    assert first.timeout == pytest.approx(18.0)  # 3 x 6 s: no throughput known yet
    (second,) = segment_fetches(h, 14)
    # 3 x (expected 2.25 MB / observed ~281 kB/s, request to last byte ~8.02 s)
    assert second.timeout == pytest.approx(3 * 8.02, abs=0.05)
    # the CMAF header and the playlists keep the plain request timeout
    others = {f.timeout for _, f in h.fetches() if f.kind != "segment"}
    assert others == {10.0}


def test_two_segments_in_flight_when_configured() -> None:
    h = slow_classic(7.0, SessionConfig(max_segment_inflight=2))
    assert max_segments_in_flight(h) == 2
    asked = [f.msn or 0 for _, f in h.fetches() if f.kind == "segment"]
    assert asked[:2] == [13, 14] and asked == sorted(set(asked))
    assert h.session.counters.get("failures", 0) == 0
    assert_contiguous(h.delivered())


def test_segment_timeout_doubles_on_retry() -> None:
    # 25 s per segment: the first attempt (18 s) times out, the second (36 s) gets through
    h = slow_classic(25.0, until=170.0)
    attempts = segment_fetches(h, 13)
    assert [f.timeout for f in attempts[:2]] == pytest.approx([18.0, 36.0])
    assert len(attempts) == 2
    delivered = h.delivered()
    assert delivered and delivered[0].msn == 13
    assert h.session.counters["failures"] == 1
    assert max_segments_in_flight(h) == 1


def test_segment_retry_timeouts_never_shrink() -> None:
    # every attempt fails fast: the timeouts still grow (18, 36, 72, ...), never shrink
    spec = StreamSpec(renditions=("720p",), part=SIX_S, low_latency=False, can_block_reload=False)
    spec.can_skip = False
    origin = FakeOrigin(spec)
    origin.fault = lambda path, now: "reset" if path.endswith("seg13.m4s") else None
    h = Harness(origin, Session(URL))
    h.start(100.05)
    h.run_until(110.0)
    timeouts = [f.timeout for f in segment_fetches(h, 13)]
    assert len(timeouts) == SessionConfig().max_media_retries
    assert timeouts == pytest.approx([18.0 * 2**i for i in range(len(timeouts))])
    assert h.session.counters["skipped"] == 1
    assert h.delivered()[0].msn == 14  # given up on, playback goes on after it


def test_low_latency_requests_keep_their_timeouts() -> None:
    h = run(StreamSpec(renditions=("720p",)), until=33.0)
    for _, f in h.fetches():
        if f.blocking:
            assert f.timeout == 3 * 2 + 2.0  # 3 target durations + margin
        else:
            assert f.timeout == 10.0
    assert any(f.kind == "part" and not f.blocking for _, f in h.fetches())
