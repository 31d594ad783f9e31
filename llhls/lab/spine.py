"""`llhls bench spine`: the figures of the live path, measured end to end.

Runs `llhls live` (default ladder, testsrc) as its own process, then for
``duration`` seconds at once:

* an HTTP/2 follower issues blocking reloads for each next part of the top
  rendition; each response's arrival is compared with the moment the origin
  published that part (same machine clock): the blocking-reload delay;
* hls.js plays the demo page in headless Chromium; its latency is read both
  from ``hls.latency`` and from the barcode in the picture.

The origin process reports its CPU time and, per part, the delay from the
capture of the part's last frame to the part being fetchable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from llhls.origin.tls import ensure_self_signed, spki_sha256_base64
from llhls.playlist.parse import parse_media

__all__ = ["SpineResult", "run_spine", "render_markdown"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpineResult:
    """Figures of one `bench spine` run."""

    duration_s: float
    """Seconds measured."""
    live_cpu_percent: float
    """CPU of the `llhls live` process, % of one core (default ladder + audio)."""
    publish_lag_ms_p50: float
    """Capture of a part's last frame -> part fetchable (720p), median (ms)."""
    publish_lag_ms_p99: float
    """Same, 99th percentile (ms)."""
    reload_delay_ms_p50: float
    """Part published -> blocking reload response received by an HTTP/2 client (ms)."""
    reload_delay_ms_p99: float
    """Same, 99th percentile."""
    reloads: int
    """Blocking reloads measured."""
    hlsjs_latency_p50_s: float | None
    """hls.js ``hls.latency``, median over the run (None without a browser)."""
    hlsjs_barcode_latency_p50_s: float | None
    """hls.js latency read from the picture's barcode in the page, median."""
    hlsjs_barcode_latency_p95_s: float | None
    """Same, 95th percentile."""
    hlsjs_stalls: int | None
    """Stalls hls.js reported."""
    machine: str
    """CPU model, cores, Python."""
    date: str
    """UTC date of the run."""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_description() -> str:
    """CPU model, logical cores and Python version."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


async def _wait_ready(client: httpx.AsyncClient, path: str, segments: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            r = await client.get(path)
            if r.status_code == 200 and len(parse_media(r.text).segments) >= segments:
                return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{path}: no {segments} segments after {timeout:g} s")


async def _follow(
    client: httpx.AsyncClient, path: str, seconds: float
) -> list[tuple[int, int, int]]:
    """Blocking reloads for each next part; returns (msn, part, arrival UTC us)."""
    r = await client.get(path)
    pl = parse_media(r.text)
    arrivals: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not pl.endlist:
        if pl.open_segment is not None and pl.open_segment.parts:
            msn, idx = pl.media_sequence + len(pl.segments), len(pl.open_segment.parts)
        else:
            msn, idx = pl.media_sequence + len(pl.segments), 0
        r = await client.get(path, params={"_HLS_msn": msn, "_HLS_part": idx})
        arrived = time.time_ns() // 1000
        if r.status_code != 200:
            log.warning("blocking reload %s.%s: %s", msn, idx, r.status_code)
            await asyncio.sleep(0.1)
            continue
        pl = parse_media(r.text)
        arrivals.append((msn, idx, arrived))
    return arrivals


async def _hlsjs(url: str, spki: str, seconds: float) -> dict[str, Any]:
    from llhls.lab.browser import Chromium, read_stats, wait_playing

    async with Chromium(spki=[spki]) as browser:
        page = await browser.open_demo(url)
        await wait_playing(page, timeout=30)
        await asyncio.sleep(seconds)
        return await read_stats(page)


async def run_spine(duration: float = 60.0, *, browser: bool = True) -> SpineResult:
    """Run the measurement; see the module docstring."""
    port = free_port()
    tls = ensure_self_signed()
    with tempfile.TemporaryDirectory(prefix="llhls-bench-") as tmp:
        stats_file = Path(tmp) / "live.json"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llhls.cli",
                "live",
                "--port",
                str(port),
                "--duration",
                str(duration + 25),
                "--stats",
                str(stats_file),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            ctx = ssl.create_default_context(cafile=str(tls.certfile))
            base = f"https://127.0.0.1:{port}"
            media = "/live/720p/media.m3u8"
            async with httpx.AsyncClient(
                http2=True, verify=ctx, base_url=base, timeout=15
            ) as client:
                await _wait_ready(client, media, 3, 30)
                follow = asyncio.create_task(_follow(client, media, duration))
                page: dict[str, Any] | None = None
                if browser:
                    page = await _hlsjs(
                        f"{base}/?src=/live/index.m3u8", spki_sha256_base64(tls.certfile), duration
                    )
                arrivals = await follow
            proc.send_signal(2)  # Ctrl-C: stop and write the stats
            _, err = proc.communicate(timeout=30)
            if proc.returncode != 0:
                raise RuntimeError(f"llhls live failed: {err.decode(errors='replace')[-500:]}")
        finally:
            if proc.poll() is None:
                proc.kill()
        live = json.loads(stats_file.read_text())
    published = {(msn, idx): wall for rid, msn, idx, wall, _ in live["published"] if rid == "720p"}
    # steady state only: the first segments include encoder start-up
    lags = [
        (wall - last) / 1000
        for rid, msn, _, wall, last in live["published"]
        if rid == "720p" and msn >= 3
    ]
    delays = [
        (arrived - published[(msn, idx)]) / 1000
        for msn, idx, arrived in arrivals
        if (msn, idx) in published
    ]
    hls_lat: list[float] = []
    bar_lat: list[float] = []
    stalls: int | None = None
    if page is not None:
        hls_lat = [s["hlsLatency"] for s in page["samples"] if s.get("hlsLatency") is not None]
        bar_lat = [
            s["barcodeLatency"] for s in page["samples"] if s.get("barcodeLatency") is not None
        ]
        stalls = int(page["stalls"])
    return SpineResult(
        duration_s=duration,
        live_cpu_percent=float(live["cpu_percent"]),
        publish_lag_ms_p50=statistics.median(lags),
        publish_lag_ms_p99=_pct(lags, 0.99),
        reload_delay_ms_p50=statistics.median(delays),
        reload_delay_ms_p99=_pct(delays, 0.99),
        reloads=len(delays),
        hlsjs_latency_p50_s=statistics.median(hls_lat) if hls_lat else None,
        hlsjs_barcode_latency_p50_s=statistics.median(bar_lat) if bar_lat else None,
        hlsjs_barcode_latency_p95_s=_pct(bar_lat, 0.95) if bar_lat else None,
        hlsjs_stalls=stalls,
        machine=machine_description(),
        date=time.strftime("%Y-%m-%d", time.gmtime()),
    )


def render_markdown(result: SpineResult) -> str:
    """The result as a Markdown section for docs/benchmarks.md."""

    def f(value: float | None, unit: str, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:.{digits}f} {unit}"

    rows = [
        (
            "`llhls live` CPU (720p + 360p + AAC, 30 fps)",
            f(result.live_cpu_percent, "% of one core", 0),
        ),
        ("last frame captured -> part fetchable, p50", f(result.publish_lag_ms_p50, "ms", 1)),
        ("last frame captured -> part fetchable, p99", f(result.publish_lag_ms_p99, "ms", 1)),
        (
            "part published -> blocking reload answered (HTTP/2), p50",
            f(result.reload_delay_ms_p50, "ms", 1),
        ),
        (
            "part published -> blocking reload answered (HTTP/2), p99",
            f(result.reload_delay_ms_p99, "ms", 1),
        ),
        ("hls.js latency (`hls.latency`), p50", f(result.hlsjs_latency_p50_s, "s")),
        ("hls.js latency from the barcode, p50", f(result.hlsjs_barcode_latency_p50_s, "s")),
        ("hls.js latency from the barcode, p95", f(result.hlsjs_barcode_latency_p95_s, "s")),
        ("hls.js stalls", "n/a" if result.hlsjs_stalls is None else str(result.hlsjs_stalls)),
    ]
    lines = [
        "## Spine: live packaging and delivery (`llhls bench spine`)",
        "",
        f"Measured {result.date} on {result.machine}; {result.duration_s:g} s run on loopback, "
        f"{result.reloads} blocking reloads.",
        "",
        "| figure | value |",
        "| --- | --- |",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
    ]
    return "\n".join(lines)


def result_json(result: SpineResult) -> str:
    """The result as JSON."""
    return json.dumps(asdict(result), indent=2)


__all__ += ["result_json", "machine_description", "free_port"]
