"""`llhls play` against `llhls live` on loopback: h3, h2, h1, 0-RTT, fallback, faults, CLI.

One live stream (the module's ``live_app``) serves every run; each run is a
real :class:`player.Player` with real sockets, decoding the stream with PyAV
and reading the capture clock back from the pixels.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from llhls.apps.live import LiveApp
from llhls.errors import PlayerError
from player import SAMPLE_KEYS, SUMMARY_KEYS, Player, Protocol
from player.transport import ConnectionLost, Fetcher, FetchResult, TransportStats
from tests.integration.conftest import small_options

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

RUN_S = 15.0
"""Seconds of playback per protocol."""
SHORT_S = 4.0
"""Seconds of playback for the other runs."""


async def play(app: LiveApp, tmp_path: Path, **options: Any) -> tuple[dict[str, Any], Player]:
    """One run of the player against ``app``; the summary and the player."""
    await app.wait_segments(2)
    assert app.tls is not None
    options.setdefault("ticket_dir", tmp_path / "tickets")
    player = Player(app.url, cafile=app.tls.certfile, **options)
    cpu0 = os.times()
    summary = await player.run()
    cpu1 = os.times()
    cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    brief = {k: v for k, v in summary.items() if k != "samples"}
    log.info("%s: %s (process CPU %.2f s)", player.protocol, brief, cpu)
    return summary, player


def check_run(summary: Mapping[str, Any], duration: float) -> None:
    """What every healthy run on loopback shows."""
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["stalls"] == 0, summary
    assert summary["stall_s"] == 0
    assert summary["played_s"] == pytest.approx(duration, abs=0.2)
    # the latency controller holds the start latency: on loopback it has little to do
    assert summary["rate_changes"] <= 6, summary["rate_changes"]
    assert 0.95 <= summary["min_rate"] <= 1.0 <= summary["max_rate"] <= 1.25
    startup = summary["startup_s"]
    assert isinstance(startup, float) and 0 < startup < 2.0
    assert summary["requests"] > 0 and summary["bytes"] > 0
    samples = summary["samples"]
    assert all(tuple(s) == SAMPLE_KEYS for s in samples)
    # a sample every 100 ms from the first request to the end
    assert len(samples) == pytest.approx((startup + duration) * 10, abs=3)
    ts = [s["t"] for s in samples]
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
    # a late poll skips the missed slots (the live stream, its encoder threads and the
    # player share this process and 2 cores with the rest of the suite: allow one miss)
    assert all(0 < g < 0.35 for g in gaps), (max(gaps), ts[gaps.index(max(gaps))])
    json.dumps(summary)


@pytest.mark.parametrize("protocol", ["h3", "h2", "h1"])
async def test_plays_live_stream(live_app: LiveApp, tmp_path: Path, protocol: str) -> None:
    summary, player = await play(live_app, tmp_path, protocol=protocol, duration=RUN_S)
    check_run(summary, RUN_S)
    assert summary["protocol"] == protocol
    # one connection carries everything (HTTP/1.1: a small keep-alive pool)
    if protocol == "h1":
        assert 1 <= summary["connections"] <= 8
    else:
        assert summary["connections"] == 1
    assert summary["zero_rtt"] is (False if protocol == "h3" else None)
    # glass-to-glass from the barcode in the pixels
    assert summary["latency_source"] == "pixels"
    p50, p95 = summary["latency_p50_s"], summary["latency_p95_s"]
    assert isinstance(p50, float) and 0.2 < p50 < 1.5
    assert isinstance(p95, float) and p50 <= p95 < 1.5
    playing = [s for s in summary["samples"] if s["latency_s"] is not None]
    assert len(playing) >= RUN_S * 10 - 2
    # ABR: from its first guess straight to the top rung on loopback, and no way back
    renditions = [s["rendition"] for s in playing]
    assert renditions[-1] == "360p", renditions
    assert sum(a != b for a, b in zip(renditions, renditions[1:], strict=False)) <= 1
    # every request counted: blocking reloads and hinted parts of video and audio
    counters = player.session.counters
    assert counters["hints"] > RUN_S * 2 * 4  # two tracks, 5 parts per second, most hinted
    assert summary["requests"] <= counters["requests"] <= summary["requests"] + 8
    assert player.frames >= RUN_S * 30
    assert player.barcodes >= 0.99 * player.frames  # the clock survives compression
    assert player.audio_frames >= RUN_S * 46


async def test_second_h3_run_uses_zero_rtt(live_app: LiveApp, tmp_path: Path) -> None:
    cold, _ = await play(live_app, tmp_path, protocol="h3", duration=SHORT_S)
    warm, _ = await play(live_app, tmp_path, protocol="h3", duration=SHORT_S)
    assert cold["zero_rtt"] is False
    assert warm["zero_rtt"] is True
    assert warm["connections"] == 1 and warm["stalls"] == 0
    log.info("startup cold %.3f s, 0-RTT %.3f s", cold["startup_s"], warm["startup_s"])


async def test_auto_uses_h2_when_udp_is_closed(tmp_path: Path) -> None:
    app = LiveApp(small_options(h3=False))
    await app.start()
    try:
        summary, _ = await play(app, tmp_path, protocol="auto", duration=SHORT_S)
    finally:
        await app.close()
    check_run(summary, SHORT_S)
    assert summary["protocol"] == "h2"
    assert summary["connections"] == 1
    assert summary["latency_source"] == "pixels"


async def test_no_decode_measures_from_prft(live_app: LiveApp, tmp_path: Path) -> None:
    summary, player = await play(live_app, tmp_path, protocol="h2", duration=SHORT_S, decode=False)
    check_run(summary, SHORT_S)
    assert summary["latency_source"] == "prft"
    assert isinstance(summary["latency_p50_s"], float) and summary["latency_p50_s"] < 1.5
    assert player.frames == 0


class FaultyFetcher:
    """Wraps a fetcher: every ``every``-th request gets a 503; the connection drops once."""

    def __init__(self, inner: Fetcher, *, every: int = 13, drop_at: int = 40) -> None:
        self.inner = inner
        self.protocol: str = inner.protocol
        self.stats: TransportStats = inner.stats
        self.every = every
        self.drop_at = drop_at
        self.count = 0
        self.injected = 0

    async def get(
        self,
        path_and_query: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> FetchResult:
        self.count += 1
        if self.count == self.drop_at:
            drop_connection(self.inner)
        if self.count % self.every == 0:
            self.injected += 1
            now = time.monotonic()
            return FetchResult(503, {"retry-after": "0"}, b"", now, now, now)
        return await self.inner.get(path_and_query, headers, timeout=timeout)

    async def close(self) -> None:
        await self.inner.close()


def drop_connection(fetcher: Fetcher) -> None:
    """Kill the fetcher's connection under it, as a NAT rebinding or a server restart would."""
    conn: Any = getattr(fetcher, "_conn", None)
    assert conn is not None, "no connection to drop"
    if fetcher.protocol == "h3":
        conn.abort(ConnectionLost("dropped by the test"))
    else:
        conn._transport.abort()


@pytest.mark.parametrize("protocol", ["h3", "h2"])
async def test_recovers_from_errors_and_a_dropped_connection(
    live_app: LiveApp, tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from player.transport import connect as real_connect

    faulty: list[FaultyFetcher] = []

    async def connect(url: str, protocol: Any = "auto", **kwargs: Any) -> Fetcher:
        faulty.append(FaultyFetcher(await real_connect(url, protocol, **kwargs)))
        return faulty[0]

    monkeypatch.setattr("player.player.connect", connect)
    summary, player = await play(live_app, tmp_path, protocol=protocol, duration=6.0)
    assert faulty[0].injected >= 10
    assert player.session.counters["failures"] >= faulty[0].injected
    assert summary["connections"] == 2  # the dropped one and its replacement
    if protocol == "h3":
        assert summary["zero_rtt"] is True  # resumed with the first connection's ticket
    assert summary["played_s"] == pytest.approx(6.0, abs=0.2)
    assert summary["stalls"] <= 1
    assert summary["latency_source"] == "pixels"


async def test_unreachable_origin_is_a_player_error(tmp_path: Path) -> None:
    port = closed_port()
    protocols: tuple[Protocol, ...] = ("h3", "h2", "h1", "auto")
    for protocol in protocols:
        player = Player(f"https://127.0.0.1:{port}/live/index.m3u8", protocol=protocol)
        with pytest.raises(PlayerError, match="127.0.0.1"):
            await asyncio.wait_for(player.run(), 10)


def closed_port() -> int:
    """A port nothing listens on (TCP or UDP), for the moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llhls.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


async def test_cli_writes_metrics(live_app: LiveApp, tmp_path: Path) -> None:
    await live_app.wait_segments(2)
    assert live_app.tls is not None
    out = tmp_path / "run.json"
    args = [
        "play",
        live_app.url,
        "--protocol",
        "h3",
        "--duration",
        str(SHORT_S),
        "--metrics",
        str(out),
        "--cafile",
        str(live_app.tls.certfile),
    ]
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    # the live stream runs on this test's event loop: wait for the CLI without blocking it
    proc = await asyncio.to_thread(run_cli, *args, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(out.read_text())
    assert tuple(summary) == SUMMARY_KEYS
    assert all(tuple(s) == SAMPLE_KEYS for s in summary["samples"])
    assert summary["protocol"] == "h3" and summary["latency_source"] == "pixels"
    assert summary["stalls"] == 0 and summary["connections"] == 1
    assert "latency p50" in proc.stdout
    status = [line for line in proc.stderr.splitlines() if "latency" in line]
    assert len(status) >= SHORT_S - 1  # one status line per second when not a terminal
    assert any("h3" in line and "pixels" in line for line in status)


async def test_cli_unreachable_host_is_one_line() -> None:
    url = f"https://127.0.0.1:{closed_port()}/live/index.m3u8"
    proc = await asyncio.to_thread(run_cli, "play", url, "--duration", "2")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("llhls: error:") and "refused" in lines[0]
    assert proc.stdout == ""


async def test_cli_tls_failure_names_the_fix(live_app: LiveApp, tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = await asyncio.to_thread(
        run_cli, "play", live_app.url, "--protocol", "h2", "--duration", "2", env=env
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "certificate" in lines[0] and "--cafile" in lines[0] and "--insecure" in lines[0]


async def test_viewer_sync_two_players_converge_on_a_shared_target(live_app: LiveApp) -> None:
    """Two players given the same target, joined 3 s apart, show the same moment."""
    from player.catchup import CatchupConfig
    from player.player import PlayerStatus

    await live_app.wait_segments(2)
    assert live_app.tls is not None
    series: list[list[tuple[float, float]]] = [[], []]

    def record(i: int) -> Any:
        def on_status(status: PlayerStatus) -> None:
            if status.latency_s is not None and status.latency_source == "pixels":
                series[i].append((time.monotonic(), status.latency_s))

        return on_status

    async def viewer(i: int, join_s: float, duration: float) -> dict[str, Any]:
        await asyncio.sleep(join_s)
        player = Player(
            live_app.url,
            protocol="h2",
            cafile=live_app.tls.certfile if live_app.tls is not None else None,
            duration=duration,
            target_latency=1.0,
            catchup_config=CatchupConfig(adapt_target=False),
            on_status=record(i),
        )
        return await player.run()

    first, second = await asyncio.gather(viewer(0, 0.0, 18.0), viewer(1, 3.0, 15.0))
    for summary in (first, second):
        assert summary["stalls"] == 0, summary
        assert 0.95 <= summary["min_rate"] and summary["max_rate"] <= 1.25
    # compare at common instants over the last 5 s of the second viewer
    end = min(series[0][-1][0], series[1][-1][0])
    spreads = []
    for t, lat in series[1]:
        if t < end - 5.0:
            continue
        near = min(series[0], key=lambda p: abs(p[0] - t))
        if abs(near[0] - t) <= 0.1:
            spreads.append(abs(near[1] - lat))
    assert len(spreads) >= 30, len(spreads)
    log.info(
        "viewer sync: spread max %.3f s, median %.3f s",
        max(spreads),
        sorted(spreads)[len(spreads) // 2],
    )
    assert max(spreads) <= 0.1, spreads
    # both hold the shared target, not just each other
    assert all(abs(lat - 1.0) <= 0.1 for t, lat in series[1] if t >= end - 5.0)
