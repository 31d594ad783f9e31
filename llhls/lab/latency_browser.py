"""hls.js viewers of one latency-lab scenario: tabs of one headless Chromium.

Each tab opens the demo page through its own relay port
(``https://127.0.0.1:RELAY/?src=/live/index.m3u8``), so the page, hls.js and
every playlist and part cross the impaired link. For HTTP/3 Chromium is
forced onto QUIC for the relays' origins; for HTTP/2 QUIC is switched off, so
the origin's Alt-Svc cannot move the media off the relay. Tabs join
``stagger`` seconds apart and play ``duration`` seconds from their first
frame; the page's own samples (every 100 ms, with the wall clock) give the
latency read from the barcode in the picture and ``hls.latency``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["run_tabs", "tab_result"]

log = logging.getLogger(__name__)

_FINISHED = (
    "(s.firstFrameSeconds !== null && s.samples.length > 0 && "
    "s.samples[s.samples.length - 1].t >= s.firstFrameSeconds + {duration}) || "
    "s.fatalErrors.length > 0"
)


def tab_result(stats: dict[str, Any], join_wall: float, error: str | None) -> dict[str, Any]:
    """One tab's ``window.llhlsStats`` -> the lab's viewer result (pure).

    ``series`` is ``[[wall_s, barcode latency], ...]`` and ``hls_series``
    ``[[wall_s, hls.latency], ...]``, both from the first frame on.
    """
    first = stats.get("firstFrameSeconds")
    samples: list[dict[str, Any]] = list(stats.get("samples") or [])
    after = [s for s in samples if first is not None and float(s["t"]) >= float(first)]
    series = [
        [round(float(s["wall"]) / 1000, 3), round(float(s["barcodeLatency"]), 4)]
        for s in after
        if s.get("barcodeLatency") is not None
    ]
    hls_series = [
        [round(float(s["wall"]) / 1000, 3), round(float(s["hlsLatency"]), 4)]
        for s in after
        if s.get("hlsLatency") is not None
    ]
    protocols = {k: int(v) for k, v in dict(stats.get("protocols") or {}).items()}
    fatal = list(stats.get("fatalErrors") or [])
    if error is None and fatal:
        error = f"hls.js fatal error: {fatal[0].get('details')}"
    if error is None and first is None:
        error = "hls.js never played"
    summary = {
        "protocol": stats.get("protocol"),
        "protocols": protocols,
        "startup_s": None if first is None else round(float(first), 4),
        "stalls": int(stats.get("stalls") or 0),
        "stall_s": round(float(stats.get("stallSeconds") or 0.0), 4),
        "barcode_reads": int(stats.get("barcodeReads") or 0),
        "barcode_misses": int(stats.get("barcodeMisses") or 0),
        "errors": len(stats.get("errors") or []),
        "latency_source": "pixels",
    }
    return {
        "join_wall": join_wall,
        "summary": summary,
        "series": series,
        "hls_series": hls_series,
        "error": error,
    }


async def run_tabs(
    ports: Sequence[int],
    *,
    protocol: str,
    spki: str,
    duration: float,
    stagger: float,
    stream_path: str = "/live/index.m3u8",
) -> list[dict[str, Any]]:
    """Play the stream in one tab per relay port (see the module docstring)."""
    from llhls.lab.browser import Chromium, read_stats, wait_for_stats

    origins = [f"127.0.0.1:{port}" for port in ports]
    if protocol == "h3":
        browser = Chromium(spki=[spki], quic_origins=origins)
    else:
        browser = Chromium(spki=[spki], extra_args=["--disable-quic"])
    results: list[dict[str, Any]] = []
    async with browser:
        start = time.monotonic()

        async def tab(i: int, port: int) -> dict[str, Any]:
            delay = start + i * stagger - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            join_wall = time.time()
            error: str | None = None
            stats: dict[str, Any] = {}
            page = None
            try:
                page = await browser.open_demo(
                    f"https://127.0.0.1:{port}/?src={stream_path}", timeout=60.0
                )
                stats = await wait_for_stats(
                    page,
                    _FINISHED.format(duration=duration),
                    timeout=duration + 90.0,
                    poll=0.5,
                )
            except Exception as exc:  # noqa: BLE001 - one tab's failure is a result
                error = f"{type(exc).__name__}: {exc}"[:500]
                if page is not None:
                    try:
                        stats = await read_stats(page)
                    except Exception:  # noqa: BLE001 - the page is gone
                        stats = {}
            finally:
                if page is not None:
                    try:
                        await page.close()
                    except Exception:  # noqa: BLE001 - closing a dead tab
                        log.debug("closing a tab failed", exc_info=True)
            return tab_result(stats, join_wall, error)

        results = list(await asyncio.gather(*(tab(i, p) for i, p in enumerate(ports))))
        page_errors = [line for line in browser.console if line.startswith("pageerror")]
        for line in page_errors[:3]:
            log.warning("hls.js page: %s", line)
    return results
