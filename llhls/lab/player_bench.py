"""`llhls bench player`: our player against `llhls live`, per protocol.

`llhls live` (default ladder, testsrc) runs as its own process; in this
process our player plays it for ``duration`` seconds in turn over HTTP/3 from
a cold start (no session ticket), HTTP/3 resumed with 0-RTT, HTTP/2 and
HTTP/1.1 (keep-alive), then HTTP/3 with ``--no-decode``. Each run's metrics
summary is kept, with the CPU time this process used during the run (the
player's own: the origin is another process).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llhls.lab.spine import free_port, machine_description
from llhls.origin.tls import ensure_self_signed

__all__ = ["PlayerRun", "run_player_bench", "render_player_markdown"]


@dataclass(frozen=True, slots=True)
class PlayerRun:
    """One player run."""

    name: str
    """Scenario: ``h3 cold``, ``h3 0-RTT``, ``h2``, ``h1``, ``h3 no decode``."""
    summary: dict[str, Any]
    """The metrics summary (design.md keys)."""
    cpu_s: float
    """CPU seconds used by the player during the run."""


async def _wait_ready(url: str, cafile: Path, timeout: float) -> None:
    from player.transport import connect

    deadline = time.monotonic() + timeout
    path = url.split("/", 3)[3]
    while time.monotonic() < deadline:
        try:
            fetcher = await connect(url, "h2", insecure=False, cafile=cafile)
            try:
                r = await fetcher.get("/" + path.replace("index.m3u8", "720p/media.m3u8"))
                if r.status == 200 and r.body.count(b"#EXTINF") >= 3:
                    return
            finally:
                await fetcher.close()
        except Exception:  # noqa: BLE001 - the origin is still starting
            pass
        await asyncio.sleep(0.3)
    raise TimeoutError(f"{url}: not ready after {timeout:g} s")


async def run_player_bench(duration: float = 60.0) -> list[PlayerRun]:
    """Run every scenario; see the module docstring."""
    from player import Player

    port = free_port()
    tls = ensure_self_signed()
    url = f"https://127.0.0.1:{port}/live/index.m3u8"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llhls.cli", "live", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs: list[PlayerRun] = []
    try:
        await _wait_ready(url, tls.certfile, 30)
        with tempfile.TemporaryDirectory(prefix="llhls-tickets-") as tickets:
            scenarios: list[tuple[str, str, bool]] = [
                ("h3 cold", "h3", True),
                ("h3 0-RTT", "h3", True),
                ("h2", "h2", True),
                ("h1", "h1", True),
                ("h3 no decode", "h3", False),
            ]
            for name, protocol, decode in scenarios:
                player = Player(
                    url,
                    protocol=protocol,  # type: ignore[arg-type]
                    duration=duration,
                    cafile=tls.certfile,
                    decode=decode,
                    ticket_dir=Path(tickets),
                )
                t0 = os.times()
                summary = await player.run()
                t1 = os.times()
                cpu = (t1.user - t0.user) + (t1.system - t0.system)
                runs.append(PlayerRun(name, summary, cpu))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return runs


def render_player_markdown(runs: list[PlayerRun], duration: float) -> str:
    """The runs as a Markdown section for docs/benchmarks.md."""

    def num(value: object, digits: int = 3) -> str:
        return "n/a" if value is None else f"{float(value):.{digits}f}"  # type: ignore[arg-type]

    lines = [
        "## Player: `llhls play` against `llhls live` (`llhls bench player`)",
        "",
        f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} on {machine_description()}; "
        f"{duration:g} s per run on loopback, default ladder (the player picks 720p).",
        "",
        "| run | startup s | latency p50 s | latency p95 s | source | stalls | requests/min "
        "| connections | 0-RTT | player CPU % |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        s = run.summary
        played = max(float(s["played_s"]), 1e-9)
        lines.append(
            f"| {run.name} | {num(s['startup_s'])} | {num(s['latency_p50_s'])} | "
            f"{num(s['latency_p95_s'])} | {s['latency_source']} | {s['stalls']} | "
            f"{60 * int(s['requests']) / played:.0f} | {s['connections']} | {s['zero_rtt']} | "
            f"{100 * run.cpu_s / played:.0f} |"
        )
    lines.append("")
    return "\n".join(lines)
