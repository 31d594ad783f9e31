"""hls.js in Chromium plays `llhls live` (the spine's end-to-end test).

The demo page plays the live stream for 20 s with no fatal hls.js error, over
HTTP/2 and, with Chromium forced onto QUIC for the origin, over HTTP/3; the
page's resource timing says which protocol carried the media.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from llhls.apps.live import LiveApp
from llhls.lab.browser import Chromium, read_stats, wait_for_stats, wait_playing
from llhls.origin.tls import spki_sha256_base64
from tests.integration.conftest import small_options

log = logging.getLogger(__name__)

pytestmark = pytest.mark.asyncio(loop_scope="module")

PLAY_SECONDS = 20.0


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def live() -> AsyncIterator[LiveApp]:
    app = LiveApp(small_options())
    await app.start()
    # like a viewer arriving at a running stream: a full HOLD-BACK of segments exists
    await app.wait_segments(3)
    try:
        yield app
    finally:
        await app.close()


async def play_and_check(browser: Chromium, app: LiveApp, protocol: str) -> dict[str, object]:
    page = await browser.open_demo(f"https://127.0.0.1:{app.port}/?src=/live/index.m3u8")
    first = await wait_playing(page, timeout=30)
    until = float(first["currentTime"]) + PLAY_SECONDS
    stats = await wait_for_stats(
        page, f"s.currentTime > {until} || s.fatalErrors.length > 0", timeout=PLAY_SECONDS + 30
    )
    assert stats["fatalErrors"] == [], stats["fatalErrors"]
    assert stats["live"] is True
    assert stats["playing"]
    assert stats["protocol"] == protocol, stats["protocols"]
    # every request whose protocol the page could see went over the expected one
    # ("unknown": entries without nextHopProtocol, e.g. requests hls.js aborted)
    protocols = dict(stats["protocols"])
    protocols.pop("unknown", None)
    assert set(protocols) == {protocol}, stats["protocols"]
    assert protocols[protocol] >= 50
    samples = stats["samples"]
    assert isinstance(samples, list)
    hls_latency = [s["hlsLatency"] for s in samples[-50:] if s.get("hlsLatency") is not None]
    barcode = [s["barcodeLatency"] for s in samples[-50:] if s.get("barcodeLatency") is not None]
    assert hls_latency and barcode, "no latency samples"
    log.info(
        "%s: hls.js latency p50 %.2f s, barcode latency p50 %.2f s, stalls %s",
        protocol,
        statistics.median(hls_latency),
        statistics.median(barcode),
        stats["stalls"],
    )
    # hls.js in low-latency mode settles near 1.2 s here; classic HLS would be >= 6 s
    assert statistics.median(barcode) < 2.5
    final = await read_stats(page)
    page_errors = [line for line in browser.console if line.startswith("pageerror")]
    assert page_errors == []
    await page.close()
    return final


async def test_hlsjs_plays_live_over_h2(live: LiveApp) -> None:
    assert live.tls is not None
    async with Chromium(spki=[spki_sha256_base64(live.tls.certfile)]) as browser:
        await play_and_check(browser, live, "h2")


async def test_hlsjs_plays_live_over_h3(live: LiveApp) -> None:
    assert live.tls is not None
    async with Chromium(
        spki=[spki_sha256_base64(live.tls.certfile)],
        quic_origins=[f"127.0.0.1:{live.port}"],
    ) as browser:
        await play_and_check(browser, live, "h3")
        # a second browser session against the same server still works over QUIC
        await play_and_check(browser, live, "h3")
