"""Shared fixtures: `llhls live` started in the test process on a free port."""

from __future__ import annotations

import gc
import ssl
from collections.abc import AsyncIterator
from fractions import Fraction

import pytest_asyncio

from llhls.apps.live import LiveApp, LiveOptions
from packager.encode import Rung
from packager.pipeline import PackagerConfig

SMALL_LADDER = (Rung("360p", 640, 360, 600_000), Rung("180p", 320, 180, 200_000))


def small_options(**overrides: object) -> LiveOptions:
    """A cheap live stream for tests: 640x360 testsrc, two small rungs + audio."""
    packager = overrides.pop("packager", PackagerConfig(ladder=SMALL_LADDER))
    base: dict[str, object] = {
        "port": 0,
        "width": 640,
        "height": 360,
        "fps": Fraction(30),
        "packager": packager,
    }
    base.update(overrides)
    return LiveOptions(**base)  # type: ignore[arg-type]


def client_context(app: LiveApp) -> ssl.SSLContext:
    """A TLS context that trusts the app's self-signed certificate."""
    assert app.tls is not None
    return ssl.create_default_context(cafile=str(app.tls.certfile))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def live_app() -> AsyncIterator[LiveApp]:
    # By the time these tests run, the suite has left ~200,000 objects in the
    # process; a full collection walks them in 0.1-0.25 s (measured with gc.callbacks)
    # and stops the event loop that long: a standalone `llhls live` or `llhls play`
    # has no such heap. Freeze what exists so collections see only the new objects.
    gc.collect()
    gc.freeze()
    app = LiveApp(small_options())
    await app.start()
    # a client arriving at a running stream: every rendition has published
    await app.wait_segments(2)
    try:
        yield app
    finally:
        await app.close()
        gc.unfreeze()
