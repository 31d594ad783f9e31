"""Our players of one latency-lab scenario, in a process of their own.

``python -m llhls.lab.latency_worker SPEC.json OUT.json`` plays every viewer
of the spec (each through its own relay port) and writes their results. The
bench runs one such process per scenario so that decoding (PyAV) and the
players' event loop never share a GIL with the origin and the relays.

SPEC::

    {"cafile": "...", "duration": 20, "tickets": "/tmp/dir",
     "viewers": [{"url": "https://127.0.0.1:PORT/live/index.m3u8",
                  "protocol": "h3", "h1_reuse": true, "zero_rtt": false,
                  "join_s": 0.0}, ...]}

``join_s`` counts from the moment the worker is ready (after the 0-RTT warm-ups).
A ``zero_rtt`` viewer first visits the origin once (one playlist request over
HTTP/3) so that a session ticket is cached for its relay port; every other
viewer gets an empty ticket directory, so HTTP/3 starts cold.

OUT: ``{"ready_wall": ..., "viewers": [{"join_wall", "summary", "series",
"warmup_s", "error"}, ...]}`` where ``series`` is ``[[wall_s, latency_s], ...]``
every 100 ms from the player's status (the summary's latency source only) and
``summary`` is the player's metrics summary without its ``samples``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["STARTUP_TIMEOUT_S", "run_viewers", "main"]

STARTUP_TIMEOUT_S = 30.0
"""A viewer without a first frame after this long counts as failed."""

log = logging.getLogger(__name__)


async def _warm_up(url: str, cafile: Path, tickets: Path) -> float:
    """One earlier visit over HTTP/3: a playlist request, then close (which waits for the
    fresh session ticket and saves it). Returns the seconds it took."""
    from player.transport import connect

    t0 = time.monotonic()
    path = "/" + url.split("/", 3)[3]
    fetcher = await connect(url, "h3", cafile=cafile, ticket_dir=tickets)
    try:
        await fetcher.get(path, timeout=15.0)
    finally:
        await fetcher.close()
    return time.monotonic() - t0


async def _play(
    viewer: dict[str, Any], cafile: Path, duration: float, tickets: Path, start: float
) -> dict[str, Any]:
    from player import Player
    from player.player import PlayerStatus

    series: list[tuple[float, float, str]] = []

    def on_status(status: PlayerStatus) -> None:
        if status.latency_s is not None and status.latency_source is not None:
            series.append((time.time(), status.latency_s, status.latency_source))

    delay = start + float(viewer["join_s"]) - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    join_wall = time.time()
    player = Player(
        viewer["url"],
        protocol=viewer["protocol"],
        duration=duration,
        cafile=cafile,
        h1_reuse=bool(viewer.get("h1_reuse", True)),
        ticket_dir=tickets,
        on_status=on_status,
        startup_timeout=STARTUP_TIMEOUT_S,
    )
    result: dict[str, Any] = {"join_wall": join_wall, "summary": None, "series": [], "error": None}
    try:
        summary = await player.run()
    except Exception as exc:  # noqa: BLE001 - one viewer's failure is a result, not a crash
        result["error"] = f"{type(exc).__name__}: {exc}"
        summary = player.summary()
    summary = dict(summary)
    summary.pop("samples", None)
    source = summary.get("latency_source")
    result["summary"] = summary
    result["series"] = [
        [round(wall, 3), round(lat, 4)] for wall, lat, src in series if src == source
    ]
    return result


async def run_viewers(spec: dict[str, Any]) -> dict[str, Any]:
    """Play every viewer of ``spec`` (see the module docstring); their results."""
    cafile = Path(spec["cafile"])
    duration = float(spec["duration"])
    root = Path(spec["tickets"])
    viewers: list[dict[str, Any]] = spec["viewers"]
    dirs = []
    for i in range(len(viewers)):
        d = root / f"viewer{i}"
        d.mkdir(parents=True, exist_ok=True)
        dirs.append(d)
    warm: list[float | None] = [None] * len(viewers)
    errors: list[str | None] = [None] * len(viewers)

    async def warm_one(i: int) -> None:
        try:
            warm[i] = await _warm_up(viewers[i]["url"], cafile, dirs[i])
        except Exception as exc:  # noqa: BLE001 - reported; the viewer then starts cold
            errors[i] = f"0-RTT warm-up failed: {type(exc).__name__}: {exc}"

    await asyncio.gather(*(warm_one(i) for i, v in enumerate(viewers) if v.get("zero_rtt")))
    start = time.monotonic()
    ready_wall = time.time()
    results = await asyncio.gather(
        *(_play(v, cafile, duration, dirs[i], start) for i, v in enumerate(viewers))
    )
    for i, result in enumerate(results):
        result["warmup_s"] = warm[i]
        if errors[i] and not result["error"]:
            result["error"] = errors[i]
    return {"ready_wall": ready_wall, "viewers": results}


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``SPEC.json OUT.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m llhls.lab.latency_worker SPEC.json OUT.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    spec = json.loads(Path(args[0]).read_text())
    out = asyncio.run(run_viewers(spec))
    tmp = Path(args[1] + ".tmp")
    tmp.write_text(json.dumps(out))
    tmp.replace(args[1])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
