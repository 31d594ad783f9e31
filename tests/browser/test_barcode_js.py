"""web/barcode.js, run in Chromium, against frames drawn by llhls/barcode.py."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import av
import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio
from playwright.async_api import Page

from llhls.barcode import MAX_MS, decode_rgb, encode_into
from llhls.lab.browser import Chromium
from llhls.origin.http import start_tcp
from llhls.origin.messages import Request, Response
from llhls.origin.web import WebSite

BLANK = b"<!doctype html><meta charset=utf-8><title>barcode</title><body></body>"

pytestmark = pytest.mark.asyncio(loop_scope="module")

DECODE_PIXELS = """
async ({b64, width, height}) => {
  const m = await import('/web/barcode.js');
  const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0, j = 0; i < raw.length; i += 3, j += 4) {
    rgba[j] = raw[i]; rgba[j + 1] = raw[i + 1]; rgba[j + 2] = raw[i + 2]; rgba[j + 3] = 255;
  }
  return m.decodeBarcode(rgba, width, height);
}
"""

DECODE_IMAGE = """
async (url) => {
  const m = await import('/web/barcode.js');
  const img = new Image();
  img.src = url;
  await img.decode();
  return m.decodeFrom(img, document.createElement('canvas'));
}
"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def page(website: WebSite) -> AsyncIterator[Page]:
    """One Chromium tab on a blank page of a plain-HTTP origin that serves web/ (whole module)."""

    async def handle(request: Request) -> Response:
        found = website.handle(request)
        if found is not None:
            return found
        if request.path == "/blank":
            return Response(200, (("content-type", "text/html"),), BLANK)
        return Response(404)

    server = await start_tcp(handle, "127.0.0.1", 0, None)
    try:
        async with Chromium() as browser:
            tab = await browser.new_page()
            await tab.goto(f"{server.url}/blank")
            yield tab
            assert [line for line in browser.console if "pageerror" in line] == []
    finally:
        await server.close()


def frame(width: int, height: int, ms: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    encode_into(rgb, ms)
    return rgb


def png_data_url(rgb: npt.NDArray[np.uint8]) -> str:
    codec = av.CodecContext.create("png", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height, codec.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    png = b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])
    return "data:image/png;base64," + base64.b64encode(png).decode()


async def js_decode(page: Page, rgb: npt.NDArray[np.uint8]) -> int | None:
    height, width = rgb.shape[:2]
    b64 = base64.b64encode(np.ascontiguousarray(rgb).tobytes()).decode()
    result = await page.evaluate(DECODE_PIXELS, {"b64": b64, "width": width, "height": height})
    assert result is None or isinstance(result, int)
    return result


CASES = [
    (1280, 720, 1_763_800_123_456),
    (640, 360, 0),
    (640, 360, MAX_MS),
    (1920, 1080, 1_700_000_000_001),
    (333, 187, 1_234_567_890_123),
    (64, 10, 42),
    (65, 15, 1_763_800_000_000),
    (427, 240, 281_474_976_710_000),
]


@pytest.mark.parametrize(("width", "height", "ms"), CASES)
async def test_js_decodes_what_python_encodes(page: Page, width: int, height: int, ms: int) -> None:
    rgb = frame(width, height, ms)
    assert decode_rgb(rgb) == ms
    assert await js_decode(page, rgb) == ms


async def test_js_decodes_png_through_canvas(page: Page) -> None:
    for i, (width, height, ms) in enumerate(CASES[:5]):
        rgb = frame(width, height, ms, seed=i)
        assert await page.evaluate(DECODE_IMAGE, png_data_url(rgb)) == ms


async def test_js_survives_noise_and_agrees_with_python(page: Page) -> None:
    rng = np.random.default_rng(7)
    for i in range(20):
        ms = int(rng.integers(0, MAX_MS))
        rgb = frame(640, 360, ms, seed=i).astype(np.int16)
        rgb += rng.normal(0, 25, rgb.shape).astype(np.int16)
        noisy = np.clip(rgb, 0, 255).astype(np.uint8)
        assert decode_rgb(noisy) == ms
        assert await js_decode(page, noisy) == ms


async def test_js_rejects_what_is_not_a_barcode(page: Page) -> None:
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)
    assert await js_decode(page, noise) is None
    black = np.zeros((360, 640, 3), np.uint8)
    assert await js_decode(page, black) is None
    # Low contrast: a faded barcode is refused, not misread.
    faded = frame(640, 360, 1_763_800_000_000)
    faded[:36] = 100 + faded[:36] // 16
    assert await js_decode(page, faded) is None
    # One flipped data cell breaks the CRC.
    flipped = frame(640, 360, 1_763_800_000_000)
    cell = slice(20 * 640 // 64, 21 * 640 // 64)
    flipped[:36, cell] = 255 - flipped[:36, cell]
    assert decode_rgb(flipped) is None
    assert await js_decode(page, flipped) is None
    # A broken end marker.
    marker = frame(640, 360, 1_763_800_000_000)
    marker[:36, 63 * 640 // 64 :] = 255
    assert await js_decode(page, marker) is None
    # Too narrow for 64 cells.
    assert await js_decode(page, np.zeros((40, 63, 3), np.uint8)) is None


ENCODE_PIXELS = """
async ({width, height, ms}) => {
  const m = await import('/web/barcode.js');
  const rgba = new Uint8ClampedArray(width * height * 4);
  m.encodeInto(rgba, width, height, ms);
  let text = '';
  for (let i = 0; i < rgba.length; i += 0x8000) {
    text += String.fromCharCode(...rgba.subarray(i, i + 0x8000));
  }
  return btoa(text);
}
"""


@pytest.mark.parametrize(("width", "height", "ms"), CASES[:5])
async def test_python_decodes_what_js_encodes(page: Page, width: int, height: int, ms: int) -> None:
    b64 = await page.evaluate(ENCODE_PIXELS, {"width": width, "height": height, "ms": ms})
    rgba = np.frombuffer(base64.b64decode(b64), np.uint8).reshape(height, width, 4)
    rgb = np.ascontiguousarray(rgba[:, :, :3])
    expected = np.zeros_like(rgb)
    encode_into(expected, ms)
    assert np.array_equal(rgb, expected)
    assert decode_rgb(rgb) == ms
