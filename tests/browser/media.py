"""Test media for the browser tests, generated with PyAV (never downloaded), and a
tiny in-memory origin handler that serves it beside the demo page."""

from __future__ import annotations

import fractions
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import av
import numpy as np

from llhls.barcode import encode_into
from llhls.origin.messages import Request, Response
from llhls.origin.web import WebSite

__all__ = ["VOD_BASE_MS", "VOD_FPS", "VOD_SECONDS", "VOD_SIZE", "make_vod", "memory_handler"]

VOD_BASE_MS = 1_763_800_000_000
"""Barcode time of the first frame of the generated VOD stream."""
VOD_FPS = 30
VOD_SECONDS = 6
VOD_SIZE = (640, 360)


def make_vod(directory: Path) -> Path:
    """Write a short H.264 fMP4 HLS VOD stream of barcoded frames; returns the playlist.

    Frame ``i`` carries the barcode time ``VOD_BASE_MS + i * 1000 // VOD_FPS``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    width, height = VOD_SIZE
    playlist = directory / "index.m3u8"
    options = {
        "hls_time": "1",
        "hls_playlist_type": "vod",
        "hls_segment_type": "fmp4",
        "hls_segment_filename": str(directory / "seg%d.m4s"),
        "hls_fmp4_init_filename": "init.mp4",
    }
    time_base = fractions.Fraction(1, VOD_FPS)
    with av.open(str(playlist), "w", format="hls", options=options) as out:
        stream = out.add_stream("libx264", rate=VOD_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "g": str(VOD_FPS),
            "keyint_min": str(VOD_FPS),
            "sc_threshold": "0",
        }
        stream.codec_context.time_base = time_base
        columns = np.arange(width)
        for i in range(VOD_FPS * VOD_SECONDS):
            rgb = np.empty((height, width, 3), np.uint8)
            rgb[:, :, 0] = ((columns + 4 * i) % 256).astype(np.uint8)
            rgb[:, :, 1] = 90
            rgb[:, :, 2] = ((columns // 2 + 2 * i) % 256).astype(np.uint8)
            box = 60 + (3 * i) % (height - 120)
            rgb[box : box + 40, 100:180] = 255
            encode_into(rgb, VOD_BASE_MS + i * 1000 // VOD_FPS)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return playlist


_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".ts": "video/mp2t",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
}


def memory_handler(
    website: WebSite, files: Mapping[str, bytes]
) -> Callable[[Request], Awaitable[Response]]:
    """A handler answering the demo page's paths and ``files`` (URL path -> bytes)."""

    async def handle(request: Request) -> Response:
        page = website.handle(request)
        if page is not None:
            return page
        body = files.get(request.path)
        if body is None:
            return Response(404, (("content-type", "text/plain"),), b"not found\n")
        kind = _TYPES.get(Path(request.path).suffix, "application/octet-stream")
        return Response(200, (("content-type", kind), ("cache-control", "no-cache")), body)

    return handle
