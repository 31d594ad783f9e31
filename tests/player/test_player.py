"""The Player's asyncio loop against the in-memory fake origin, in real time (no sockets).

The fake fetcher answers from :class:`tests.player.fake_origin.FakeOrigin`
at the times it says (blocking reloads and hinted parts wait for their part),
so the adapter's concurrency, timers, cancellation and failure handling run
for real; the media bytes are not CMAF, so these runs do not decode and
measure latency from PDT.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from llhls.errors import ConfigError, PlayerError
from player import SUMMARY_KEYS, Player, PlayerStatus
from player.transport import (
    ConnectionLost,
    FetchResult,
    RequestTimeout,
    TransportStats,
    UnreachableError,
)
from tests.player.fake_origin import FakeOrigin, StreamSpec

URL = "https://origin.test/live/index.m3u8"
STREAM_AGE = 30.0
"""Seconds the fake stream has been live when a run starts."""


class FakeFetcher:
    """A :class:`player.transport.Fetcher` answering from a FakeOrigin in real time."""

    protocol = "h3"

    def __init__(self, origin: FakeOrigin) -> None:
        self.origin = origin
        self.stats = TransportStats(connections=1, zero_rtt=False)
        self.offset = STREAM_AGE - time.monotonic()
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    async def get(
        self,
        path_and_query: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> FetchResult:
        started = time.monotonic()
        now = started + self.offset
        when, status, body = self.origin.handle(path_and_query, now)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if when - now > timeout:
                await asyncio.sleep(timeout)
                raise RequestTimeout(f"GET {path_and_query} timed out")
            await asyncio.sleep(max(0.0, when - now))
        finally:
            self.in_flight -= 1
        if isinstance(status, str):
            raise ConnectionLost(status)
        self.stats.requests += 1
        self.stats.bytes_received += len(body)
        done = time.monotonic()
        return FetchResult(status, {}, body, started, done, done)

    async def close(self) -> None:
        self.closed = True


def fake_stream(**spec: Any) -> FakeOrigin:
    """A live stream that started STREAM_AGE seconds ago, with PDT on the wall clock."""
    base_ms = time.time_ns() // 1_000_000 - round(STREAM_AGE * 1000)
    return FakeOrigin(StreamSpec(pdt_base_ms=base_ms, **spec))


def use(monkeypatch: pytest.MonkeyPatch, fetcher: Any) -> None:
    async def connect(url: str, protocol: str = "auto", **kwargs: Any) -> Any:
        return fetcher

    monkeypatch.setattr("player.player.connect", connect)


@pytest.mark.asyncio
async def test_plays_with_the_reload_and_the_hinted_parts_in_flight_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    origin = fake_stream(renditions=("720p", "audio"), independent_every=1)
    fetcher = FakeFetcher(origin)
    use(monkeypatch, fetcher)
    statuses: list[PlayerStatus] = []
    player = Player(URL, protocol="h3", duration=3.0, decode=False, on_status=statuses.append)
    summary = await player.run()
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["protocol"] == "h3"
    assert summary["stalls"] == 0
    assert summary["played_s"] == pytest.approx(3.0, abs=0.15)
    assert summary["latency_source"] == "pdt"
    # PART-HOLD-BACK (3 parts) + the fake's round trips, as on the virtual clock
    assert summary["latency_p50_s"] == pytest.approx(0.66, abs=0.08)
    startup = summary["startup_s"]
    assert isinstance(startup, float) and startup < 0.5
    assert summary["requests"] == fetcher.stats.requests > 40
    # per track: the blocking reload and the hinted part wait at the origin together
    assert fetcher.max_in_flight >= 4
    assert fetcher.closed
    # a status every 100 ms
    assert len(statuses) == pytest.approx(len(summary["samples"]), abs=1)  # type: ignore[arg-type]
    last = statuses[-1]
    assert last.state == "playing" and last.rendition == "720p" and last.protocol == "h3"
    assert last.latency_source == "pdt" and last.requests > 0
    assert player.status is last and player.state.value == "playing"
    assert 0 < player.buffer_s < 2 and player.rate == 1.0 and player.rendition == "720p"


@pytest.mark.asyncio
async def test_an_outage_stalls_and_recovers(monkeypatch: pytest.MonkeyPatch) -> None:
    origin = fake_stream(renditions=("720p",), independent_every=1)
    down = (STREAM_AGE + 1.5, STREAM_AGE + 2.7)
    origin.fault = lambda path, now: "connection lost" if down[0] <= now < down[1] else None
    use(monkeypatch, FakeFetcher(origin))
    player = Player(URL, duration=4.0, decode=False)
    summary = await player.run()
    assert summary["stalls"] == 1
    stall_s = summary["stall_s"]
    assert isinstance(stall_s, float) and 0.2 < stall_s < 1.5
    assert player.session.counters["failures"] > 0
    samples: list[dict[str, Any]] = summary["samples"]  # type: ignore[assignment]
    # playback went on after the outage, later behind the live edge by about the stall
    assert samples[-1]["latency_s"] > samples[10]["latency_s"] + 0.2


class Canned:
    """A fetcher that answers every request the same way."""

    protocol = "h2"

    def __init__(self, status: int = 200, body: bytes = b"", error: Exception | None = None):
        self.stats = TransportStats(connections=1)
        self.status, self.body, self.error = status, body, error

    async def get(
        self, path: str, headers: Mapping[str, str] | None = None, *, timeout: float = 10.0
    ) -> FetchResult:
        await asyncio.sleep(0.001)
        if self.error is not None:
            raise self.error
        now = time.monotonic()
        return FetchResult(self.status, {}, self.body, now, now, now)

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("fetcher", "message"),
    [
        (Canned(body=b"<!doctype html><title>hello</title>"), "is not an HLS playlist"),
        (Canned(status=403), "HTTP 403 for https://origin.test/live/index.m3u8"),
        (Canned(error=UnreachableError("origin.test:443 refused")), "origin.test:443 refused"),
    ],
)
@pytest.mark.asyncio
async def test_clear_errors(monkeypatch: pytest.MonkeyPatch, fetcher: Canned, message: str) -> None:
    use(monkeypatch, fetcher)
    started = time.monotonic()
    with pytest.raises(PlayerError, match=message):
        await Player(URL, duration=5).run()
    assert time.monotonic() - started < 1.0  # at once, not after a dozen retries


@pytest.mark.asyncio
async def test_no_playback_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, Canned(status=404))  # a stream that never appears
    with pytest.raises(PlayerError, match="no playback within 0.5 s"):
        await Player(URL, startup_timeout=0.5).run()


@pytest.mark.asyncio
async def test_stop_ends_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, FakeFetcher(fake_stream(renditions=("720p",))))
    stops: list[asyncio.Task[None]] = []

    def on_status(status: PlayerStatus) -> None:
        if status.played_s > 0.5 and not stops:
            stops.append(asyncio.ensure_future(player.stop()))

    player = Player(URL, decode=False, on_status=on_status)
    summary = await asyncio.wait_for(player.run(), 10)
    played = summary["played_s"]
    assert isinstance(played, float) and 0.5 < played < 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocol": "h4"}, "unknown protocol"),
        ({"duration": 0}, "duration"),
        ({"target_latency": -1}, "target latency"),
        ({"insecure": True, "cafile": Path("ca.pem")}, "exclude"),
        ({"startup_timeout": 0}, "startup timeout"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Player(URL, **kwargs)


def test_bad_url() -> None:
    with pytest.raises(ConfigError, match="scheme"):
        Player("ftp://origin.test/live/index.m3u8")


@pytest.mark.asyncio
async def test_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, Canned(status=403))
    player = Player(URL)
    with pytest.raises(PlayerError):
        await player.run()
    with pytest.raises(RuntimeError, match="once"):
        await player.run()


@pytest.mark.asyncio
async def test_a_fetcher_bug_fails_the_request_not_the_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    use(monkeypatch, Canned(error=ValueError("boom")))
    statuses: list[PlayerStatus] = []
    player = Player(URL, startup_timeout=0.5, on_status=statuses.append)
    with pytest.raises(PlayerError, match="no playback within"):
        await asyncio.wait_for(player.run(), 5)
    assert player.session.counters["failures"] >= 2  # retried with back-off
    assert any("ValueError: boom" in (s.last_error or "") for s in statuses)
    assert "GET /live/index.m3u8 raised" in caplog.text
