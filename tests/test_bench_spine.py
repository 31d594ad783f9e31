"""`llhls bench spine` runs end to end (short, without the browser) and reports sane figures."""

from __future__ import annotations

import pytest

from llhls.lab.spine import render_markdown, run_spine

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_bench_spine_short_run() -> None:
    result = await run_spine(5.0, browser=False)
    assert result.reloads >= 15  # ~25 parts in 5 s
    assert 0 < result.live_cpu_percent < 400
    assert 0 < result.publish_lag_ms_p50 < 500
    assert 0 <= result.reload_delay_ms_p50 < 500
    assert result.hlsjs_latency_p50_s is None
    text = render_markdown(result)
    assert "| hls.js stalls | n/a |" in text and "blocking reload" in text
