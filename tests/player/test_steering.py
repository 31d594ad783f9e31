"""Steering: controller + ABR + startup plan glue, on a virtual clock (pure)."""

from __future__ import annotations

import pytest

from player.actions import RenditionInfo
from player.buffer import PlayState
from player.steering import Steer, Steering

RENDITIONS = (
    RenditionInfo("720p", "video", "/live/720p/media.m3u8", 2_800_000),
    RenditionInfo("360p", "video", "/live/360p/media.m3u8", 700_000),
    RenditionInfo("audio", "audio", "/live/audio/media.m3u8"),
)
PART = 0.2


def tick(
    s: Steering, now: float, latency: float | None, buffer: float = 0.6, **kw: object
) -> Steer:
    args: dict[str, object] = {
        "latency_s": latency,
        "buffer_s": buffer,
        "state": PlayState.PLAYING,
        "stalls": 0,
        "part_s": PART,
        "target_duration_s": 2.0,
        "rendition": "360p",
    }
    args.update(kw)
    return s.tick(now, **args)  # type: ignore[arg-type]


def feed_parts(s: Steering, t0: float, t1: float, latency: float, buffer: float = 0.6) -> float:
    """Parts arriving every 0.2 s with a steady delivery delay; returns the end time."""
    t = t0
    while t < t1:
        s.on_part(t, buffer - PART, latency, PART)
        t += PART
    return t


def test_base_target_is_the_latency_at_the_start_without_a_given_one() -> None:
    s = Steering()
    s.on_renditions(RENDITIONS, "360p")
    s.on_download(0.0, "init", 900, 0.001)
    s.on_download(0.01, "part", 30_000, 0.002)  # 120 Mbit/s, rtt unknown: excellent
    assert s.plan is not None and s.plan.extra_s == 0.0 and s.start_shift_us() == 0
    assert tick(s, 0.0, None, state=PlayState.BUFFERING).target_s is None
    steer = tick(s, 0.1, 0.8)
    assert steer.target_s == pytest.approx(0.8) and steer.rate == 1.0


def test_startup_buffer_of_a_poor_network_shifts_the_start_and_the_target() -> None:
    s = Steering(target_s=1.0)
    s.on_renditions(RENDITIONS, "360p")
    s.on_handshake(0.3)  # 300 ms: +0.4 s
    s.on_download(0.0, "part", 20_000, 0.2)  # 0.8 Mbit/s for a 0.7 Mbit/s rung: +0.6
    assert s.plan is not None and s.plan.grade == "poor"
    assert s.start_shift_us() == 850_000
    steer = tick(s, 1.0, 1.85)
    assert steer.target_s == pytest.approx(1.85)
    assert steer.rate == 1.0  # on target: nothing to do


def test_the_first_download_makes_the_plan_and_later_ones_do_not_change_it() -> None:
    s = Steering()
    s.on_handshake(0.001)
    s.on_download(0.0, "part", 500, 0.0)  # too small and too fast to measure
    assert s.plan is not None
    first = s.plan
    s.on_download(0.5, "part", 50_000, 1.0)
    assert s.plan is first


def test_behind_the_target_on_a_healthy_network_it_catches_up_within_bounds() -> None:
    s = Steering(target_s=1.0)
    s.on_renditions(RENDITIONS, "360p")
    s.on_handshake(0.001)
    s.on_download(0.0, "part", 20_000, 0.001)
    t = feed_parts(s, 0.0, 3.0, 1.0)
    rates = []
    for i in range(60):
        now = t + i * 0.1
        s.on_part(now, 1.4, 2.0, PART) if i % 2 == 0 else None
        rates.append(tick(s, now, 2.0, buffer=1.6).rate)
    assert max(rates) > 1.0
    assert all(0.95 <= r <= 1.25 for r in rates)


def test_without_catchup_the_rate_stays_1_but_the_target_is_tracked() -> None:
    s = Steering(target_s=1.0, catchup=False)
    s.on_renditions(RENDITIONS, "360p")
    s.on_handshake(0.001)
    s.on_download(0.0, "part", 20_000, 0.001)
    t = feed_parts(s, 0.0, 3.0, 1.0)
    for i in range(40):
        steer = tick(s, t + i * 0.1, 3.0, buffer=2.6)
        assert steer.rate == 1.0 and steer.target_s == pytest.approx(1.0)
    assert not tick(s, t + 5, 30.0, buffer=29.0).jump


def test_far_behind_it_jumps_to_live() -> None:
    s = Steering(target_s=1.0)
    s.on_handshake(0.001)
    s.on_download(0.0, "part", 20_000, 0.001)
    t = feed_parts(s, 0.0, 3.0, 1.0)
    assert tick(s, t, 1.0).jump is False
    # the origin is behind itself (its edge is 7 s old): no jump yet
    assert tick(s, t + 0.1, 8.0, buffer=7.9, edge_age_s=7.0).jump is False
    assert tick(s, t + 0.2, 8.0, buffer=7.8, edge_age_s=0.2).jump is True  # 7 s > 3 TD


def stalled(s: Steering, now: float, latency: float, edge_age_s: float) -> Steer:
    """A tick while stalled (empty buffer) since the first stall."""
    return tick(
        s, now, latency, buffer=0.0, state=PlayState.STALLED, stalls=1, edge_age_s=edge_age_s
    )


def test_stalled_far_behind_on_a_fresh_edge_it_jumps_to_live() -> None:
    """Stalled for seconds while the origin's edge stays live (the player's own fetches
    fail): it jumps instead of waiting for the backlog."""
    s = Steering(target_s=1.0)
    s.on_handshake(0.001)
    s.on_download(0.0, "part", 20_000, 0.001)
    t = feed_parts(s, 0.0, 3.0, 1.0)
    assert tick(s, t, 1.0).jump is False
    assert stalled(s, t + 1.0, 2.0, edge_age_s=0.2).jump is False  # 1 s < 3 TD
    assert stalled(s, t + 7.5, 8.5, edge_age_s=0.2).jump is True  # 7.5 s > 3 TD


def test_stalled_far_behind_on_a_stale_edge_it_waits() -> None:
    """Stalled by an outage of the origin: its edge is as old as the stall, there is no
    live edge to jump to; once the edge is fresh again the jump comes."""
    s = Steering(target_s=1.0)
    s.on_handshake(0.001)
    s.on_download(0.0, "part", 20_000, 0.001)
    t = feed_parts(s, 0.0, 3.0, 1.0)
    assert tick(s, t, 1.0).jump is False
    for i in range(70, 90):
        assert stalled(s, t + i / 10, 1.0 + i / 10, edge_age_s=i / 10).jump is False
    assert stalled(s, t + 9.0, 10.0, edge_age_s=0.3).jump is True
    # never while (re)buffering
    r = Steering(target_s=1.0)
    r.on_handshake(0.001)
    r.on_download(0.0, "part", 20_000, 0.001)
    t = feed_parts(r, 0.0, 3.0, 1.0)
    assert tick(r, t, 10.0, buffer=0.0, state=PlayState.BUFFERING, edge_age_s=0.2).jump is False


def test_abr_switches_up_when_throughput_allows_and_can_be_turned_off() -> None:
    for enabled in (True, False):
        s = Steering(target_s=1.0, abr=enabled)
        s.on_renditions(RENDITIONS, "360p")
        for i in range(40):
            s.on_download(i * 0.2, "part", 250_000, 0.1)  # 20 Mbit/s
        choices = [tick(s, 8.0 + i * 0.1, 1.0).switch_to for i in range(10)]
        if enabled:
            assert "720p" in choices
        else:
            assert choices == [None] * 10


def test_a_refused_switch_makes_abr_follow_the_session() -> None:
    s = Steering(target_s=1.0)
    s.on_renditions(RENDITIONS, "360p")
    for i in range(40):
        s.on_download(i * 0.2, "part", 250_000, 0.1)
    assert tick(s, 8.0, 1.0).switch_to == "720p"
    s.on_switch_refused("360p")
    assert s.abr is not None and s.abr.current_id == "360p"


def test_bad_target_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        Steering(target_s=0.0)


def test_a_slow_start_does_not_become_the_target() -> None:
    s = Steering()
    s.on_renditions(RENDITIONS, "360p")
    s.on_handshake(0.001)
    s.on_download(0.0, "part", 20_000, 0.001)
    # playback began 2.5 s behind although the hold-back + a part give 0.8 s
    assert tick(s, 1.0, 2.5, nominal_s=0.8).target_s == pytest.approx(0.8)
    # a prompt start below the nominal figure is kept
    s2 = Steering()
    s2.on_renditions(RENDITIONS, "360p")
    s2.on_handshake(0.001)
    s2.on_download(0.0, "part", 20_000, 0.001)
    assert tick(s2, 1.0, 0.7, nominal_s=0.8).target_s == pytest.approx(0.7)


def test_media_timeouts_of_the_rendition_fetched_feed_abr() -> None:
    s = Steering(target_s=1.0)
    s.on_renditions(RENDITIONS, "720p")
    for i in range(40):
        s.on_download(i * 0.2, "part", 250_000, 0.1)
    assert s.abr is not None
    samples = s.abr.estimator.samples
    s.on_timeout("playlist", "720p", 8.0, 0.2)  # a playlist says nothing of media
    s.on_timeout("part", "360p", 8.0, 0.2)  # nor does another rendition's part
    assert s.abr.estimator.samples == samples
    s.on_timeout("part", "720p", 8.0, 0.2)
    s.on_timeout("segment", "720p", 10.0, 2.0)
    assert s.abr.estimator.samples == samples + 2
    assert tick(s, 9.0, 1.0, buffer=0.0, rendition="720p").switch_to == "360p"
