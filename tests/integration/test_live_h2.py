"""`llhls live` on loopback, followed over HTTP/2 like an LL-HLS client would.

Blocking reloads for the next part, the hinted part requested before it
exists, parts decoded with PyAV and the barcode read from the pixels.
"""

from __future__ import annotations

import asyncio
import io
import logging
import statistics
import time
from urllib.parse import urljoin

import av
import httpx
import m3u8
import numpy as np
import pytest

from llhls.apps.live import LiveApp
from llhls.barcode import decode_luma
from llhls.playlist.model import MediaPlaylist, MultivariantPlaylist
from llhls.playlist.parse import parse_media, parse_multivariant
from llhls.playlist.rules import validate_media_playlist, validate_multivariant_playlist
from tests.integration.conftest import client_context

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def base_url(app: LiveApp) -> str:
    return f"https://127.0.0.1:{app.port}"


def last_part(pl: MediaPlaylist) -> tuple[int, int]:
    """(msn, part index) of the newest part listed."""
    if pl.open_segment is not None and pl.open_segment.parts:
        return pl.media_sequence + len(pl.segments), len(pl.open_segment.parts) - 1
    seg = pl.segments[-1]
    return pl.media_sequence + len(pl.segments) - 1, len(seg.parts) - 1


def has_part(pl: MediaPlaylist, msn: int, index: int) -> bool:
    newest = last_part(pl)
    return (newest[0], newest[1]) >= (msn, index)


async def test_follow_live_edge_over_h2(live_app: LiveApp) -> None:
    base = base_url(live_app)
    async with httpx.AsyncClient(
        http2=True, verify=client_context(live_app), base_url=base, timeout=10
    ) as client:
        r = await client.get("/live/index.m3u8")
        assert r.status_code == 200, r.text
        assert r.http_version == "HTTP/2"
        assert r.headers["content-type"] == "application/vnd.apple.mpegurl"
        mv = parse_multivariant(r.text)
        assert isinstance(mv, MultivariantPlaylist)
        assert validate_multivariant_playlist(mv) == []
        # an independent parser agrees
        assert len(m3u8.loads(r.text).playlists) == 2
        media_url = urljoin(base + "/live/index.m3u8", mv.variants[0].uri)
        path = media_url[len(base) :]

        r = await client.get(path)
        assert r.status_code == 200
        pl = parse_media(r.text)
        assert pl.part_target is not None and pl.preload_hints
        init = (await client.get(urljoin(path, pl.map.uri if pl.map else "init.mp4"))).content

        parts: list[tuple[bytes, int]] = []  # (data, wall-clock us when received)
        hinted_before_listed = 0
        reload_delays: list[float] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msn, idx = last_part(pl)
            nxt = (msn, idx + 1)
            hint = pl.preload_hints[0].uri
            hint_url = urljoin(path, hint)
            # the hinted part does not exist yet: request it together with the reload
            reload = client.get(path, params={"_HLS_msn": nxt[0], "_HLS_part": nxt[1]})
            part_req = client.get(hint_url)
            t0 = time.monotonic()
            reload_r, part_r = await asyncio.gather(reload, part_req)
            reload_delays.append(time.monotonic() - t0)
            assert part_r.status_code == 200, (hint, part_r.status_code)
            assert reload_r.status_code == 200
            parts.append((part_r.content, time.time_ns() // 1000))
            hinted_before_listed += 1
            new = parse_media(reload_r.text)
            assert validate_media_playlist(new) == [], validate_media_playlist(new)
            m = m3u8.loads(reload_r.text)
            assert m.preload_hint is not None and m.server_control is not None
            # the playlist answering the blocking reload lists the part we waited for
            if nxt[1] <= len(pl.open_segment.parts if pl.open_segment else ()):
                pass
            assert last_part(new) >= (nxt[0], 0)
            pl = new

        assert hinted_before_listed >= 40  # ~50 parts in 10 s at 0.2 s

        # decode the parts we followed and read the clock from every frame
        latencies: list[float] = []
        frames = 0
        first_seg_start = next(i for i, (data, _) in enumerate(parts) if data[4:8] == b"styp")
        stream = init + b"".join(data for data, _ in parts[first_seg_start:])
        arrival = [t for _, t in parts[first_seg_start:]]
        with av.open(io.BytesIO(stream), mode="r") as container:
            for i, frame in enumerate(container.decode(video=0)):
                ms = decode_luma(np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8))
                assert ms is not None, f"frame {i}: no barcode"
                frames += 1
                # the part holding this frame arrived at arrival[i // 6]
                latencies.append(arrival[i // 6] / 1e6 - ms / 1e3)
        assert frames >= 6 * 30
        p50 = statistics.median(latencies)
        log.info(
            "capture->received p50 %.3f s, reload p50 %.3f s", p50, statistics.median(reload_delays)
        )
        # a frame is at most one part (0.2 s) plus encode and delivery old when it arrives
        assert 0 < p50 < 0.6


async def test_errors_are_spec_statuses(live_app: LiveApp) -> None:
    async with httpx.AsyncClient(
        http2=True, verify=client_context(live_app), base_url=base_url(live_app), timeout=10
    ) as client:
        media = "/live/360p/media.m3u8"
        assert (await client.get("/nope")).status_code == 404
        assert (await client.get("/live/999p/media.m3u8")).status_code == 404
        assert (await client.get(media, params={"_HLS_part": "1"})).status_code == 400
        assert (await client.get(media, params={"_HLS_msn": "abc"})).status_code == 400
        assert (await client.get(media, params={"_HLS_msn": "999999"})).status_code == 400
        assert (await client.get("/live/360p/part999999.0.m4s")).status_code == 404
        r = await client.get(media, headers={"accept-encoding": "gzip"})
        assert r.status_code == 200 and r.headers.get("content-encoding") == "gzip"
        assert r.headers["access-control-allow-origin"] == "*"
        assert "max-age" in r.headers["cache-control"]
        page = await client.get("/")
        assert page.status_code == 200 and b"hls" in page.content.lower()


async def test_every_rendition_conforms_and_agrees(live_app: LiveApp) -> None:
    """All media playlists of the set: valid, same TARGETDURATION and SERVER-CONTROL,
    PART-TARGET shared, PDT mapped the same way, blocking reload on each."""
    async with httpx.AsyncClient(
        http2=True, verify=client_context(live_app), base_url=base_url(live_app), timeout=10
    ) as client:
        mv = parse_multivariant((await client.get("/live/index.m3u8")).text)
        uris = [v.uri for v in mv.variants] + [r.uri for r in mv.renditions if r.uri]
        assert len(uris) == 3
        for _ in range(3):
            playlists = {}
            for uri in uris:
                pl = parse_media((await client.get(f"/live/{uri}")).text)
                assert validate_media_playlist(pl) == [], (uri, validate_media_playlist(pl))
                playlists[uri] = pl
                # a blocking reload for the next part answers within ~one part target
                msn, idx = last_part(pl)
                t0 = time.monotonic()
                r = await client.get(f"/live/{uri}", params={"_HLS_msn": msn, "_HLS_part": idx + 1})
                assert r.status_code == 200
                assert time.monotonic() - t0 < 1.0
                assert last_part(parse_media(r.text)) > (msn, idx)
            first = next(iter(playlists.values()))
            for pl in playlists.values():
                assert pl.target_duration == first.target_duration
                assert pl.server_control == first.server_control
                assert pl.part_target == first.part_target
                # each rendition reports every other one
                assert len(pl.rendition_reports) == 2
            # the same segment starts at the same wall-clock time (within an AAC frame)
            common = min(len(pl.segments) for pl in playlists.values())
            for i in range(common):
                starts = [pl.segments[i].pdt_ms for pl in playlists.values()]
                assert all(s is not None for s in starts)
                assert max(starts) - min(starts) <= 25  # type: ignore[type-var,operator]
            await asyncio.sleep(1.0)
