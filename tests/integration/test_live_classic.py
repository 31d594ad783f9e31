"""`llhls live --classic`: whole segments only (for comparisons), still spec-correct."""

from __future__ import annotations

from collections.abc import AsyncIterator
from fractions import Fraction

import httpx
import pytest
import pytest_asyncio

from llhls.apps.live import LiveApp
from llhls.playlist.parse import parse_media
from llhls.playlist.rules import validate_media_playlist
from packager.pipeline import PackagerConfig
from player import Player
from tests.integration.conftest import SMALL_LADDER, client_context, small_options

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def classic() -> AsyncIterator[LiveApp]:
    config = PackagerConfig(ladder=SMALL_LADDER[:1], low_latency=False, segment=Fraction(1))
    app = LiveApp(small_options(packager=config))
    await app.start()
    await app.wait_segments(3)
    try:
        yield app
    finally:
        await app.close()


async def test_classic_playlist_has_no_parts(classic: LiveApp) -> None:
    async with httpx.AsyncClient(
        http2=True,
        verify=client_context(classic),
        base_url=f"https://127.0.0.1:{classic.port}",
        timeout=10,
    ) as client:
        r = await client.get("/live/360p/media.m3u8")
        assert r.status_code == 200
        assert "#EXT-X-PART" not in r.text and "PRELOAD-HINT" not in r.text
        pl = parse_media(r.text)
        assert validate_media_playlist(pl) == []
        assert pl.target_duration == 1 and len(pl.segments) >= 3
        # blocking reload for the next segment still works
        nxt = pl.media_sequence + len(pl.segments)
        r = await client.get("/live/360p/media.m3u8", params={"_HLS_msn": nxt})
        assert r.status_code == 200
        assert len(parse_media(r.text).segments) + parse_media(r.text).media_sequence > nxt
        seg = await client.get(f"/live/360p/seg{nxt}.m4s")
        assert seg.status_code == 200 and seg.content[4:8] == b"styp"


async def test_our_player_plays_classic(classic: LiveApp) -> None:
    assert classic.tls is not None
    player = Player(classic.url, protocol="h2", duration=4, cafile=classic.tls.certfile)
    summary = await player.run()
    assert summary["stalls"] == 0
    assert summary["latency_source"] == "pixels"
    # whole 1 s segments, three behind the edge: several seconds, unlike LL-HLS
    latency = summary["latency_p50_s"]
    assert isinstance(latency, float) and latency > 1.5
