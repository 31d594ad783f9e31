"""`llhls demo` (what `make demo` runs): `llhls live` and `llhls play` together.

Starts the packager and origin on the built-in test source, prints where a
browser can watch, lets our player follow the stream for ``--duration``
seconds over HTTP/3 (one QUIC connection, hinted parts, latency read from the
pixels) and prints its summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import replace

from llhls.apps.live import LiveApp, LiveOptions
from llhls.apps.play import StatusLine, format_summary
from llhls.errors import OriginError

__all__ = ["run_demo"]


async def run_demo(
    options: LiveOptions, play_seconds: float, *, announce: Callable[[str], None]
) -> int:
    """Run the demo; returns the exit status."""
    from player import Player

    app = LiveApp(options)
    try:
        await app.start()
    except OriginError as exc:
        if options.port == 0:
            raise
        announce(f"{exc}; using a free port instead")
        app = LiveApp(replace(options, port=0))
        await app.start()
    loop = asyncio.get_running_loop()
    player: Player | None = None

    def stop() -> None:
        if player is not None:
            asyncio.ensure_future(player.stop())

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    status = StatusLine(sys.stderr)
    try:
        announce(f"stream:    {app.url}")
        announce(f"demo page: {app.page_url}  (self-signed certificate: accept it once)")
        if app.h3 is not None:
            announce(f"HTTP/3:    udp/{app.h3.port} (advertised with Alt-Svc)")
        announce("packaging the test source; the player joins once 3 segments exist ...")
        await app.wait_segments(3)
        announce(
            f"llhls play {app.url} --protocol {'h3' if app.h3 else 'auto'} "
            f"--duration {play_seconds:g}"
        )
        player = Player(
            app.url,
            protocol="h3" if app.h3 is not None else "auto",
            duration=play_seconds,
            cafile=app.tls.certfile if app.tls is not None else None,
            on_status=status.update,
        )
        summary = await player.run()
    finally:
        status.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await app.close()
    announce(format_summary(summary))
    announce(f"origin: {app.status()}")
    return 0
