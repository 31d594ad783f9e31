"""The demo page plays an HLS stream with hls.js in Chromium and reads the barcode.

The stream is a short VOD made here with PyAV (H.264, fMP4 segments, barcoded
frames; see tests/browser/media.py), so the page is tested without the live
pipeline; test_live_hlsjs.py plays `llhls live`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from playwright.async_api import Page

from llhls.lab.browser import Chromium, read_stats, wait_for_stats, wait_playing
from llhls.origin.http import TCPServer, start_tcp
from llhls.origin.tls import TLSFiles
from llhls.origin.web import WebSite
from tests.browser.media import VOD_BASE_MS, VOD_SECONDS, memory_handler

SCREENSHOT_DIR_ENV = "LLHLS_SCREENSHOTS"
"""If set, the tests save screenshots of the page there."""


async def _screenshot(page: Page, name: str) -> None:
    directory = os.environ.get(SCREENSHOT_DIR_ENV)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(directory) / name))


@pytest.mark.asyncio
@pytest.mark.parametrize("secure", [True, False], ids=["https-h2", "http-h1"])
async def test_vod_plays_and_barcode_is_read(
    chromium: Chromium, vod_origin: TCPServer, plain_vod_origin: TCPServer, secure: bool
) -> None:
    origin = vod_origin if secure else plain_vod_origin
    base = f"https://localhost:{origin.port}" if secure else origin.url
    page = await chromium.open_demo(f"{base}/?src=/vod/index.m3u8")
    stats = await wait_playing(page, timeout=30)
    assert stats["engine"] == "hls.js"
    assert stats["hlsVersion"].startswith("1.")
    # The picture's barcode is read back through the canvas.
    stats = await wait_for_stats(page, "s.barcodeReads >= 3 && s.protocol", timeout=15)
    await _screenshot(page, f"demo-vod-{'h2' if secure else 'h1'}.png")
    assert VOD_BASE_MS <= stats["lastBarcodeMs"] <= VOD_BASE_MS + VOD_SECONDS * 1000
    assert stats["rendition"] == 360
    expected = "h2" if secure else "http/1.1"
    assert stats["protocol"] == expected
    assert set(stats["protocols"]) == {expected}
    assert stats["fatalErrors"] == []
    assert stats["samples"], "no samples recorded"
    assert {"t", "hlsLatency", "barcodeLatency", "buffer", "rate", "rendition"} <= set(
        stats["samples"][-1]
    )
    # VOD: hls.js reports no live latency.
    assert stats["hlsLatency"] is None
    # currentTime keeps advancing.
    later = await wait_for_stats(page, f"s.currentTime > {stats['currentTime'] + 0.5}", timeout=10)
    assert later["playing"]
    page_errors = [line for line in chromium.console if line.startswith("pageerror")]
    assert page_errors == []


@pytest.mark.asyncio
async def test_missing_stream_is_recorded_as_fatal(
    chromium: Chromium, vod_origin: TCPServer
) -> None:
    page = await chromium.open_demo(f"https://localhost:{vod_origin.port}/?src=/nope/index.m3u8")
    stats = await wait_for_stats(page, "s.fatalErrors.length > 0", timeout=15)
    error = stats["fatalErrors"][0]
    assert error["type"] == "networkError"
    assert error["details"] == "manifestLoadError"
    assert error["status"] == 404
    assert error["url"].endswith("/nope/index.m3u8")
    assert stats["errors"][0] == error
    assert not stats["playing"]
    await _screenshot(page, "demo-error.png")


@pytest.mark.asyncio
async def test_page_without_hls_js(chromium: Chromium, vod_origin: TCPServer) -> None:
    """The page loads and says what is wrong when /hls.js is a 404 (simulated by routing)."""
    page = await chromium.new_page()
    await page.route("**/hls.js", lambda route: route.fulfill(status=404, body="missing"))
    await page.goto(f"https://localhost:{vod_origin.port}/?src=/vod/index.m3u8")
    await page.wait_for_function("() => window.llhlsStats !== undefined")
    stats = await read_stats(page)
    assert stats["hlsVersion"] is None
    # Chromium may play HLS natively; either way the page must not throw.
    assert [line for line in chromium.console if line.startswith("pageerror")] == []


@pytest.mark.asyncio
async def test_origin_closes_promptly_and_quietly_under_a_playing_browser(
    chromium: Chromium,
    website: WebSite,
    vod_files: dict[str, bytes],
    tls_files: TLSFiles,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await start_tcp(memory_handler(website, vod_files), "127.0.0.1", 0, tls_files)
    try:
        page = await chromium.open_demo(f"https://localhost:{server.port}/?src=/vod/index.m3u8")
        await wait_playing(page, timeout=30)
        assert server.connections >= 1
    finally:
        loop = asyncio.get_running_loop()
        with caplog.at_level(logging.WARNING):
            start = loop.time()
            await server.close()
            elapsed = loop.time() - start
    assert elapsed < 4.0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
