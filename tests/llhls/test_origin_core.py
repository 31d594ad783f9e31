"""The pure request core: blocking reload, hints, media, HTTP details (virtual clock)."""

from __future__ import annotations

import gzip
import logging

import pytest

from llhls.origin.core import (
    OriginConfig,
    Unclaimed,
    Wait,
    accepts_gzip,
    cache_max_age,
    parse_directives,
    parse_range,
)
from llhls.origin.store import Store
from llhls.playlist import parse_media
from tests.llhls.origin_feed import (
    Live,
    blocked_live,
    get,
    header,
    ll_spec,
    ready,
    text,
)

# -- blocking playlist reload --------------------------------------------------------------


def test_blocking_part_already_there() -> None:
    store, _, now = blocked_live()
    response = ready(get(store, "/live/720p/media.m3u8", "_HLS_msn=2&_HLS_part=0", now))
    assert response.status == 200
    assert header(response, "cache-control") == "max-age=12"


def test_blocking_waits_for_the_next_part() -> None:
    store, live, now = blocked_live()
    assert now == 4.5
    decision = get(store, "/live/720p/media.m3u8", "_HLS_msn=2&_HLS_part=1", now)
    assert decision == Wait(deadline=10.5)
    now = live.step()
    body = text(get(store, "/live/720p/media.m3u8", "_HLS_msn=2&_HLS_part=1", now))
    assert '#EXT-X-PART:DURATION=0.5,URI="part2.1.m4s"' in body


def test_blocking_deadline_is_exact() -> None:
    store, _, _ = blocked_live()
    query = "_HLS_msn=2&_HLS_part=1"
    assert get(store, "/live/720p/media.m3u8", query, 10.0, first_seen=10.0) == Wait(16.0)
    assert get(store, "/live/720p/media.m3u8", query, 15.999, first_seen=10.0) == Wait(16.0)
    response = ready(get(store, "/live/720p/media.m3u8", query, 16.0, first_seen=10.0))
    assert response.status == 503
    assert header(response, "cache-control") == "max-age=2"


def test_part_index_past_the_parent_means_next_segment() -> None:
    store, live, now = blocked_live(8)  # segment 1 just closed with parts 0..3
    query = "_HLS_msn=1&_HLS_part=4"
    assert isinstance(get(store, "/live/720p/media.m3u8", query, now), Wait)
    now = live.step()  # part 2.0
    assert ready(get(store, "/live/720p/media.m3u8", query, now)).status == 200
    # the same while segment 2 is still open: part 2.4 waits for 3.0
    query = "_HLS_msn=2&_HLS_part=4"
    live.run(3)
    assert isinstance(get(store, "/live/720p/media.m3u8", query, now), Wait)
    now = live.step()
    assert ready(get(store, "/live/720p/media.m3u8", query, now)).status == 200


def test_msn_alone_waits_for_the_whole_segment() -> None:
    store, live, now = blocked_live()
    query = "_HLS_msn=2"
    for _ in range(3):
        assert isinstance(get(store, "/live/720p/media.m3u8", query, now), Wait)
        now = live.step()
    assert ready(get(store, "/live/720p/media.m3u8", query, now)).status == 200


def test_old_msn_gets_the_whole_playlist_at_once() -> None:
    store = Store()
    live = Live(store, ll_spec())
    now = live.run(60)
    body = text(get(store, "/live/720p/media.m3u8", "_HLS_msn=0&_HLS_part=3", now))
    assert "#EXT-X-MEDIA-SEQUENCE:11\n" in body


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("_HLS_part=1", "without _HLS_msn"),
        ("_HLS_msn=abc", "decimal integer"),
        ("_HLS_msn=-1", "decimal integer"),
        ("_HLS_msn=2&_HLS_part=1.5", "decimal integer"),
        ("_HLS_msn=", "decimal integer"),
        ("_HLS_msn=1&_HLS_msn=2", "twice"),
        ("_HLS_skip=NO", "YES or v2"),
        ("_HLS_msn=4", "beyond the last segment"),  # last complete is 1: at most 3
        ("_HLS_msn=2&_HLS_part=13", "parts ahead"),  # 1 published; limit 3 / 0.5 = 6
        ("_HLS_msn=3&_HLS_part=3", "parts ahead"),  # 3 left of 2, then 0..3 of 3: 7
    ],
)
def test_bad_directives_are_400(query: str, fragment: str) -> None:
    store, _, now = blocked_live()
    response = ready(get(store, "/live/720p/media.m3u8", query, now))
    assert response.status == 400
    assert fragment in response.body.decode()
    assert header(response, "cache-control") == "max-age=2"


@pytest.mark.parametrize(
    "query", ["_HLS_msn=3", "_HLS_msn=2&_HLS_part=6", "_HLS_msn=3&_HLS_part=2"]
)
def test_directives_at_the_advance_limit_wait(query: str) -> None:
    store, _, now = blocked_live()
    assert isinstance(get(store, "/live/720p/media.m3u8", query, now), Wait)


def test_directives_ignored_after_endlist() -> None:
    store, live, now = blocked_live()
    waiting = get(store, "/live/720p/media.m3u8", "_HLS_msn=3", now)
    assert isinstance(waiting, Wait)
    store.end_stream("live", now)
    for query in ("_HLS_msn=3", "_HLS_msn=99&_HLS_part=99", "_HLS_part=1", "_HLS_msn=x"):
        response = ready(get(store, "/live/720p/media.m3u8", query, now))
        assert response.status == 200
        assert header(response, "cache-control") == "max-age=1"
    body = text(get(store, "/live/720p/media.m3u8", "_HLS_skip=YES", now))
    assert body.endswith("#EXT-X-ENDLIST\n")
    assert "PRELOAD-HINT" not in body and "EXT-X-SKIP" not in body
    assert "#EXTINF:0.5,\nseg2.m4s" in body  # the open segment was closed


def test_blocking_disabled_ignores_directives() -> None:
    store = Store()
    live = Live(store, ll_spec(can_block_reload=False))
    now = live.run(9)
    response = ready(get(store, "/live/720p/media.m3u8", "_HLS_msn=3&_HLS_part=3", now))
    assert response.status == 200
    assert header(response, "cache-control") == "max-age=1"
    assert "CAN-BLOCK-RELOAD" not in response.body.decode()


def test_playlist_waits_for_first_media() -> None:
    store = Store()
    live = Live(store, ll_spec())
    assert get(store, "/live/720p/media.m3u8", now=1.0) == Wait(7.0)
    assert get(store, "/live/720p/media.m3u8", "_HLS_msn=0&_HLS_part=0", 1.0) == Wait(7.0)
    assert ready(get(store, "/live/720p/media.m3u8", now=7.0, first_seen=1.0)).status == 503
    now = live.step()
    body = text(get(store, "/live/720p/media.m3u8", now=now))
    assert '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part0.1.m4s"' in body


# -- parts and preload hints --------------------------------------------------------------


def test_hinted_part_waits_until_published() -> None:
    store, live, now = blocked_live()
    decision = get(store, "/live/720p/part2.1.m4s", now=now)
    assert decision == Wait(now + 6)
    now = live.step()
    response = ready(get(store, "/live/720p/part2.1.m4s", now=now))
    assert response.body == b"720p:2.1"
    assert header(response, "content-type") == "video/iso.segment"
    assert header(response, "cache-control") == "max-age=12"


def test_part_of_next_segment_within_limit_waits() -> None:
    store, _, now = blocked_live()
    assert isinstance(get(store, "/live/720p/part3.0.m4s", now=now), Wait)
    assert isinstance(get(store, "/live/720p/part2.6.m4s", now=now), Wait)  # 6 ahead
    assert ready(get(store, "/live/720p/part2.7.m4s", now=now)).status == 404  # 7 ahead
    assert ready(get(store, "/live/720p/part9.0.m4s", now=now)).status == 404


def test_hinted_part_times_out_with_503() -> None:
    store, _, _ = blocked_live()
    assert get(store, "/live/720p/part2.1.m4s", now=10.0, first_seen=10.0) == Wait(16.0)
    response = ready(get(store, "/live/720p/part2.1.m4s", now=16.0, first_seen=10.0))
    assert response.status == 503
    assert header(response, "cache-control") == "max-age=2"


def test_withdrawn_hint_is_404() -> None:
    store, live, now = blocked_live(7)  # parts 1.0..1.2 published, hint 1.3
    assert isinstance(get(store, "/live/720p/part1.3.m4s", now=now), Wait)
    assert isinstance(get(store, "/live/720p/part1.4.m4s", now=now), Wait)
    now = live.step()  # part 1.3, then segment 1 closes: 1.4 will never exist
    assert ready(get(store, "/live/720p/part1.3.m4s", now=now)).status == 200
    response = ready(get(store, "/live/720p/part1.4.m4s", now=now))
    assert response.status == 404
    assert header(response, "cache-control") == "max-age=2"


def test_pending_part_after_end_is_404() -> None:
    store, _, now = blocked_live()
    assert isinstance(get(store, "/live/720p/part2.1.m4s", now=now), Wait)
    store.end_stream("live", now)
    assert ready(get(store, "/live/720p/part2.1.m4s", now=now)).status == 404


def test_rendition_reports_track_each_rendition() -> None:
    store, live, now = blocked_live(9)
    now = live.step(("720p",))  # video runs one part ahead of the others
    video = parse_media(text(get(store, "/live/720p/media.m3u8", now=now)))
    audio = parse_media(text(get(store, "/live/audio/media.m3u8", now=now)))
    assert {(r.uri, r.last_msn, r.last_part) for r in video.rendition_reports} == {
        ("../360p/media.m3u8", 2, 0),
        ("../audio/media.m3u8", 2, 0),
    }
    assert ("../720p/media.m3u8", 2, 1) in {
        (r.uri, r.last_msn, r.last_part) for r in audio.rendition_reports
    }


def test_reports_after_a_segment_closes_name_its_last_part() -> None:
    store, _, now = blocked_live(8)
    pl = parse_media(text(get(store, "/live/720p/media.m3u8", now=now)))
    assert pl.rendition_reports[0].last_msn == 1
    assert pl.rendition_reports[0].last_part == 3
    assert pl.preload_hints[0].uri == "part2.0.m4s"


# -- media resources -----------------------------------------------------------------------


def test_init_and_segments() -> None:
    store, _, now = blocked_live()
    video = ready(get(store, "/live/720p/init.mp4", now=now))
    assert (video.body, header(video, "content-type")) == (b"init-720p", "video/mp4")
    audio = ready(get(store, "/live/audio/init.mp4", now=now))
    assert header(audio, "content-type") == "audio/mp4"
    seg = ready(get(store, "/live/360p/seg1.m4s", now=now))
    assert seg.body == b"".join(f"360p:1.{i}".encode() for i in range(4))
    assert header(seg, "cache-control") == "max-age=12"
    missing = ready(get(store, "/live/360p/seg2.m4s", now=now))  # still open: not a segment
    assert missing.status == 404
    assert header(missing, "cache-control") == "max-age=2"


def test_range_requests() -> None:
    store, _, now = blocked_live()
    whole = ready(get(store, "/live/720p/seg1.m4s", now=now)).body
    size = len(whole)
    part = ready(get(store, "/live/720p/seg1.m4s", now=now, headers={"range": "bytes=2-5"}))
    assert part.status == 206
    assert part.body == whole[2:6]
    assert header(part, "content-range") == f"bytes 2-5/{size}"
    tail = ready(get(store, "/live/720p/seg1.m4s", now=now, headers={"range": "bytes=-3"}))
    assert tail.body == whole[-3:]
    bad = ready(get(store, "/live/720p/seg1.m4s", now=now, headers={"range": f"bytes={size}-"}))
    assert bad.status == 416
    assert header(bad, "content-range") == f"bytes */{size}"
    multi = ready(get(store, "/live/720p/seg1.m4s", now=now, headers={"range": "bytes=0-1,4-5"}))
    assert multi.status == 200 and multi.body == whole


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=5-100", 10, (5, 9)),
        ("bytes=-4", 10, (6, 9)),
        ("bytes=-40", 10, (0, 9)),
        ("bytes=-0", 10, "unsatisfiable"),
        ("bytes=10-", 10, "unsatisfiable"),
        ("bytes=0-", 0, "unsatisfiable"),
        ("bytes=5-4", 10, None),
        ("bytes=a-b", 10, None),
        ("items=0-1", 10, None),
        ("bytes=1-2,3-4", 10, None),
        ("bytes=-", 10, None),
    ],
)
def test_parse_range(value: str | None, size: int, expected: object) -> None:
    assert parse_range(value, size) == expected


# -- HTTP details --------------------------------------------------------------------------


def test_gzip_playlists() -> None:
    store, _, now = blocked_live()
    plain = ready(get(store, "/live/720p/media.m3u8", now=now))
    zipped = ready(
        get(store, "/live/720p/media.m3u8", now=now, headers={"accept-encoding": "br, gzip"})
    )
    assert header(zipped, "content-encoding") == "gzip"
    assert header(plain, "content-encoding") is None
    assert header(plain, "vary") == header(zipped, "vary") == "accept-encoding"
    assert gzip.decompress(zipped.body) == plain.body
    refused = ready(
        get(store, "/live/720p/media.m3u8", now=now, headers={"accept-encoding": "gzip;q=0, *"})
    )
    assert header(refused, "content-encoding") is None
    off = ready(
        get(
            store,
            "/live/720p/media.m3u8",
            now=now,
            headers={"accept-encoding": "gzip"},
            config=OriginConfig(gzip=False),
        )
    )
    assert header(off, "content-encoding") is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("GZIP", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("x-gzip", True),
        ("gzip;q=bogus", False),
    ],
)
def test_accepts_gzip(value: str | None, ok: bool) -> None:
    assert accepts_gzip(value) is ok


def test_rendered_bytes_are_shared_per_version() -> None:
    store, live, now = blocked_live()
    gz = {"accept-encoding": "gzip"}
    first = ready(get(store, "/live/720p/media.m3u8", now=now, headers=gz))
    second = ready(get(store, "/live/720p/media.m3u8", now=now, headers=gz))
    assert first.body is second.body
    blocking = ready(get(store, "/live/720p/media.m3u8", "_HLS_msn=2&_HLS_part=0", now, headers=gz))
    assert blocking.body is first.body
    version = store.version
    live.step()
    assert store.version > version
    third = ready(get(store, "/live/720p/media.m3u8", now=now, headers=gz))
    assert third.body is not first.body


def test_head_options_and_methods() -> None:
    store, _, now = blocked_live()
    get_response = ready(get(store, "/live/720p/seg1.m4s", now=now))
    head = ready(get(store, "/live/720p/seg1.m4s", now=now, method="HEAD"))
    assert head.status == 200 and head.body == b""
    assert header(head, "content-length") == str(len(get_response.body))
    assert header(head, "content-type") == header(get_response, "content-type")
    preflight = ready(get(store, "/live/720p/media.m3u8", now=now, method="OPTIONS"))
    assert preflight.status == 204
    assert header(preflight, "access-control-allow-headers") == "Range"
    assert header(preflight, "access-control-allow-origin") == "*"
    post = ready(get(store, "/live/720p/media.m3u8", now=now, method="POST"))
    assert post.status == 405
    assert header(post, "allow") == "GET, HEAD, OPTIONS"


def test_cors_on_every_response_and_no_age() -> None:
    store, _, now = blocked_live()
    for path, query in [
        ("/live/index.m3u8", ""),
        ("/live/720p/media.m3u8", ""),
        ("/live/720p/media.m3u8", "_HLS_part=1"),
        ("/live/720p/init.mp4", ""),
        ("/live/720p/seg0.m4s", ""),
        ("/live/720p/seg99.m4s", ""),
        ("/live/nope/media.m3u8", ""),
    ]:
        response = ready(get(store, path, query, now))
        assert header(response, "access-control-allow-origin") == "*", path
        assert header(response, "access-control-expose-headers") == "Age", path
        assert header(response, "age") is None
        assert header(response, "cache-control") is not None


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/web/app.js",
        "/hls.js",
        "/other/index.m3u8",
        "/other/720p/media.m3u8",
        "/live/720p/seg01.m4s",
        "/live/720p/part1.m4s",
        "/live/720p/media.m3u8/x",
        "/live/../live/index.m3u8",
    ],
)
def test_unclaimed_paths(path: str) -> None:
    store, _, now = blocked_live()
    assert get(store, path, now=now) == Unclaimed()


def test_unknown_rendition_is_404() -> None:
    store, _, now = blocked_live()
    plain = ready(get(store, "/live/1080p/media.m3u8", now=now))
    assert (plain.status, header(plain, "cache-control")) == (404, "max-age=2")
    blocking = ready(get(store, "/live/1080p/media.m3u8", "_HLS_msn=1", now))
    assert (blocking.status, header(blocking, "cache-control")) == (404, "max-age=8")
    assert ready(get(store, "/live/1080p/seg1.m4s", now=now)).status == 404


@pytest.mark.parametrize(
    ("kind", "status", "blocking", "age"),
    [
        ("playlist", 200, True, 12),
        ("playlist", 200, False, 1),
        ("playlist", 404, True, 8),
        ("playlist", 404, False, 2),
        ("playlist", 400, True, 2),
        ("playlist", 503, True, 2),
        ("media", 200, False, 12),
        ("media", 206, False, 12),
        ("media", 404, False, 2),
        ("media", 416, False, 2),
    ],
)
def test_cache_lifetimes(kind: str, status: int, blocking: bool, age: int) -> None:
    assert cache_max_age(kind, status, 2, blocking) == age  # type: ignore[arg-type]


def test_cache_lifetime_of_odd_target_durations() -> None:
    assert cache_max_age("playlist", 200, 3, False) == 1
    assert cache_max_age("playlist", 200, 1, False) == 0


def test_parse_directives() -> None:
    assert parse_directives("") == parse_directives("other=1&x")
    d = parse_directives("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&foo=bar")
    assert not isinstance(d, str)
    assert (d.msn, d.part, d.skip) == (12, 3, "YES")
    assert isinstance(parse_directives("_HLS_msn=1" + "0" * 30), str)


def test_core_never_answers_500(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Store):
        def stream_info(self, name: str) -> None:
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="llhls.origin.core"):
        response = ready(get(Broken(), "/live/index.m3u8"))
    assert response.status == 503
    assert header(response, "cache-control") == "no-store"
    assert "origin core failed" in caplog.text
