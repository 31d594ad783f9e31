"""`llhls live`: packager + origin in one process.

The pipeline's worker threads hand packaged media to :class:`StoreSink`,
which moves every call onto the event loop (``call_soon_threadsafe``) where
the store is changed and blocked requests are woken. The store is only ever
touched from the loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from llhls.errors import ConfigError, LLHLSError, OriginError
from llhls.media import TrackInfo
from llhls.origin.h3 import H3Server, start_h3
from llhls.origin.http import TCPServer, start_tcp
from llhls.origin.messages import Request, Response
from llhls.origin.service import Origin
from llhls.origin.store import RenditionSpec, Store, StreamSpec
from llhls.origin.tls import TLSFiles, ensure_self_signed
from llhls.origin.web import WebSite
from packager.pipeline import LivePipeline, PackagerConfig, PartOut, StreamPlan
from packager.sources import Source, open_source

__all__ = ["LiveOptions", "LiveApp", "StoreSink"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """Everything `llhls live` takes."""

    source: str = "testsrc"
    """``testsrc`` or a path/URL PyAV opens."""
    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8443
    """TCP (HTTP/1.1, HTTP/2) and UDP (HTTP/3) port; 0 picks a free one."""
    name: str = "live"
    """Stream name: the multivariant playlist is at /NAME/index.m3u8."""
    packager: PackagerConfig = field(default_factory=PackagerConfig)
    """Ladder, part and segment durations."""
    window: Fraction = Fraction(60)
    """Seconds of segments kept in the playlist."""
    duration: float | None = None
    """Stop after this many seconds of media (ENDLIST); None = until Ctrl-C."""
    loop: bool = False
    """Loop a file source forever."""
    tls: bool = True
    """HTTPS with a self-signed certificate (and HTTP/3); False = plain HTTP."""
    h3: bool = True
    """Also serve HTTP/3 on UDP (needs TLS)."""
    qlog_dir: Path | None = None
    """Write QUIC qlog traces here."""
    width: int = 1280
    """testsrc width."""
    height: int = 720
    """testsrc height."""
    fps: Fraction = Fraction(30)
    """testsrc frame rate."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port must be in 0..65535, got {self.port}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ConfigError(f"--name must be a plain path segment, got {self.name!r}")
        if self.duration is not None and self.duration <= 0:
            raise ConfigError(f"--duration must be positive, got {self.duration:g}")


class StoreSink:
    """Thread-safe bridge from pipeline threads to the store on the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        store: Store,
        origin: Origin,
        spec_for: Callable[[dict[str, TrackInfo]], StreamSpec],
        rids: list[str],
    ) -> None:
        self._loop = loop
        self._store = store
        self._origin = origin
        self._spec_for = spec_for
        self._rids = rids
        self._tracks: dict[str, TrackInfo] = {}
        self._inits: dict[str, bytes] = {}
        self._pending: list[Callable[[], None]] = []
        self._open = False
        self._classic = False
        self.name = ""
        self.done: asyncio.Future[LLHLSError | None] = loop.create_future()
        self.parts = 0
        self.publish_lag_us: list[int] = []
        self.published: list[tuple[str, int, int, int, int]] = []
        """(rid, msn, part index, UTC us when it became fetchable, UTC us of the capture of
        its last sample), for the benchmarks."""

    # -- called from worker threads
    def track_ready(self, rid: str, track: TrackInfo, init: bytes) -> None:
        self._loop.call_soon_threadsafe(self._on_track, rid, track, init)

    def part_ready(self, rid: str, part: PartOut) -> None:
        self._loop.call_soon_threadsafe(self._run, lambda: self._add_part(rid, part))

    def segment_ready(self, rid: str, msn: int) -> None:
        self._loop.call_soon_threadsafe(
            self._run, lambda: self._store.close_segment(self.name, rid, msn, time.monotonic())
        )

    def finished(self, error: LLHLSError | None) -> None:
        self._loop.call_soon_threadsafe(self._finish, error)

    # -- on the loop
    def _on_track(self, rid: str, track: TrackInfo, init: bytes) -> None:
        self._tracks[rid] = track
        self._inits[rid] = init
        if self._open or set(self._tracks) != set(self._rids):
            return
        spec = self._spec_for(self._tracks)
        self.name = spec.name
        self._classic = spec.part_target is None
        self._store.add_stream(spec)
        for r in self._rids:
            self._store.set_init(spec.name, r, self._inits[r])
        self._open = True
        pending, self._pending = self._pending, []
        for op in pending:
            op()
        self._origin.notify()

    def _run(self, op: Callable[[], None]) -> None:
        if self.done.done():
            return
        if not self._open:
            self._pending.append(op)
            return
        try:
            op()
        except (ValueError, LLHLSError) as exc:
            # a packaging bug must stop the stream loudly once, not every part
            log.error("publishing failed, stopping the stream: %s", exc)
            self._finish(LLHLSError(f"publishing failed: {exc}"))
            return
        self._origin.notify()

    def _add_part(self, rid: str, part: PartOut) -> None:
        now = time.monotonic()
        if self._classic:
            # classic HLS: the chunker's only "part" of a segment is the whole segment
            self._store.add_segment(
                self.name, rid, part.msn, part.data, part.duration, part.pdt_us, now
            )
            self._record(rid, part)
            return
        self._store.add_part(
            self.name,
            rid,
            part.msn,
            part.index,
            part.data,
            part.duration,
            part.independent,
            part.pdt_us,
            now,
        )
        if part.ends_segment:
            self._store.close_segment(self.name, rid, part.msn, now)
        self._record(rid, part)

    def _record(self, rid: str, part: PartOut) -> None:
        self.parts += 1
        # capture of the part's last frame -> fetchable (for the benchmarks)
        wall_us = time.time_ns() // 1000
        self.publish_lag_us.append(wall_us - part.last_capture_us)
        self.published.append((rid, part.msn, part.index, wall_us, part.last_capture_us))

    def _finish(self, error: LLHLSError | None) -> None:
        if self._open:
            self._store.end_stream(self.name, time.monotonic())
            self._origin.notify()
        if not self.done.done():
            self.done.set_result(error)


def stream_spec(
    name: str,
    plan: StreamPlan,
    tracks: dict[str, TrackInfo],
    fps: Fraction,
    window: Fraction,
    audio_bitrate: int,
) -> StreamSpec:
    """The store's description of a stream, from the encoders' tracks."""
    renditions: list[RenditionSpec] = []
    for rid, track in tracks.items():
        if track.kind == "video":
            renditions.append(
                RenditionSpec(
                    id=rid,
                    kind="video",
                    codec=track.codec,
                    bandwidth=track.bitrate * 11 // 10,
                    average_bandwidth=track.bitrate,
                    width=track.width,
                    height=track.height,
                    frame_rate=fps,
                )
            )
        else:
            renditions.append(
                RenditionSpec(
                    id=rid,
                    kind="audio",
                    codec=track.codec,
                    bandwidth=audio_bitrate * 11 // 10,
                    average_bandwidth=audio_bitrate,
                    sample_rate=track.sample_rate,
                    channels=track.channels,
                )
            )
    # highest video first, audio last
    renditions.sort(key=lambda r: (r.kind == "audio", -r.bandwidth))
    return StreamSpec(
        name=name,
        renditions=tuple(renditions),
        part_target=plan.declared_part_target,
        segment_target=plan.segment_duration,
        window=window,
    )


class LiveApp:
    """Packager + origin, started and stopped as one."""

    def __init__(self, options: LiveOptions) -> None:
        self.options = options
        self.store = Store()
        self.web = WebSite.load()
        self.origin = Origin(self.store, fallback=self._static)
        self.tcp: TCPServer | None = None
        self.h3: H3Server | None = None
        self.tls: TLSFiles | None = None
        self.pipeline: LivePipeline | None = None
        self.sink: StoreSink | None = None
        self.source: Source | None = None
        self._started = 0.0

    async def _static(self, request: Request) -> Response | None:
        return self.web.handle(request)

    @property
    def port(self) -> int:
        """The bound port."""
        assert self.tcp is not None
        return self.tcp.port

    @property
    def scheme(self) -> str:
        """``https`` or ``http``."""
        return "https" if self.options.tls else "http"

    @property
    def url(self) -> str:
        """The multivariant playlist URL."""
        host = self.options.host
        shown = f"[{host}]" if ":" in host else host
        return f"{self.scheme}://{shown}:{self.port}/{self.options.name}/index.m3u8"

    @property
    def page_url(self) -> str:
        """The demo page URL."""
        return self.url.rsplit(f"/{self.options.name}/", 1)[0] + "/"

    async def start(self) -> None:
        """Open the source, bind the listeners, start the pipeline."""
        opts = self.options
        loop = asyncio.get_running_loop()
        if opts.source == "testsrc":
            from packager.sources import TestSource

            self.source = TestSource(width=opts.width, height=opts.height, fps=opts.fps)
        else:
            self.source = open_source(opts.source, loop=opts.loop)
        try:
            if opts.tls:
                self.tls = ensure_self_signed()
            await self._listen()
            source = self.source
            pipeline = LivePipeline(source, opts.packager, _NullSink(), duration=opts.duration)
            plan = pipeline.plan
            self.sink = StoreSink(
                loop,
                self.store,
                self.origin,
                lambda tracks: stream_spec(
                    opts.name, plan, tracks, source.fps, opts.window, opts.packager.audio_bitrate
                ),
                pipeline.rids,
            )
            pipeline.sink = self.sink
            self.pipeline = pipeline
            self._started = time.monotonic()
            pipeline.start()
        except BaseException:
            await self.close()
            raise

    async def _listen(self) -> None:
        """Bind UDP (HTTP/3) and TCP on the same port number, advertised with Alt-Svc."""
        opts = self.options
        if not (opts.tls and opts.h3 and self.tls is not None):
            self.tcp = await start_tcp(self.origin.handle, opts.host, opts.port, self.tls)
            return
        attempts = 5 if opts.port == 0 else 1
        for attempt in range(attempts):
            self.h3 = await start_h3(
                self.origin.handle,
                opts.host,
                opts.port,
                self.tls.certfile,
                self.tls.keyfile,
                qlog_dir=opts.qlog_dir,
            )
            try:
                self.tcp = await start_tcp(
                    self.origin.handle,
                    opts.host,
                    self.h3.port,
                    self.tls,
                    alt_svc=f'h3=":{self.h3.port}"; ma=86400',
                )
                return
            except OriginError:
                await self.h3.close()
                self.h3 = None
                if attempt + 1 == attempts:
                    raise

    async def wait_segments(self, count: int, timeout: float = 30.0) -> None:
        """Until every rendition has ``count`` complete segments (players then start
        with a full hold-back of media); TimeoutError after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            rids = self.pipeline.rids if self.pipeline is not None else []
            positions = [self.store.position(self.options.name, rid) for rid in rids]
            if rids and all(p is not None and p.next_msn >= count for p in positions):
                return
            if self.sink is not None and self.sink.done.done():
                raise LLHLSError("the pipeline stopped before the stream had enough segments")
            if loop.time() >= deadline:
                raise TimeoutError(f"no {count} segments after {timeout:g} s")
            await asyncio.sleep(0.05)

    async def wait(self) -> LLHLSError | None:
        """Until the pipeline ends (``--duration``) or fails."""
        assert self.sink is not None
        return await self.sink.done

    async def close(self) -> None:
        """Stop the pipeline, then the listeners."""
        if self.pipeline is not None:
            self.pipeline.stop()
            await asyncio.get_running_loop().run_in_executor(None, self.pipeline.wait, 10.0)
        if self.h3 is not None:
            await self.h3.close()
            self.h3 = None
        if self.tcp is not None:
            await self.tcp.close()
            self.tcp = None

    def status(self) -> str:
        """One status line: uptime, parts, encoder load, queue depth."""
        if self.pipeline is None or self.sink is None:
            return "starting"
        up = time.monotonic() - self._started
        load = sum(self.pipeline.encode_s.values()) / max(up, 1e-9)
        depth = max(self.pipeline.queue_depths().values(), default=0)
        return (
            f"up {up:6.1f} s  frames {self.pipeline.frames}  parts {self.sink.parts}  "
            f"encode load {load * 100:4.0f} %  queue {depth}"
        )


class _NullSink:
    def track_ready(self, rid: str, track: TrackInfo, init: bytes) -> None:
        raise AssertionError("sink not wired")

    def part_ready(self, rid: str, part: PartOut) -> None:
        raise AssertionError("sink not wired")

    def segment_ready(self, rid: str, msn: int) -> None:
        raise AssertionError("sink not wired")

    def finished(self, error: LLHLSError | None) -> None:
        raise AssertionError("sink not wired")


async def run_live(
    options: LiveOptions,
    *,
    announce: Callable[[str], None],
    stats_path: Path | None = None,
) -> int:
    """Run until --duration or Ctrl-C; returns the exit code.

    ``stats_path`` receives a JSON summary at exit (CPU, publish delays and the
    UTC time each part became fetchable), for ``llhls bench``.
    """
    app = LiveApp(options)
    await app.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    announce(f"stream:    {app.url}")
    announce(f"demo page: {app.page_url}")
    if app.h3 is not None:
        announce(f"HTTP/3:    udp/{app.h3.port} (advertised with Alt-Svc)")
    cpu0 = os.times()
    t0 = time.monotonic()
    waiter = asyncio.ensure_future(app.wait())
    stopper = asyncio.ensure_future(stop.wait())
    error: LLHLSError | None = None
    try:
        while True:
            done, _ = await asyncio.wait({waiter, stopper}, timeout=5.0)
            if waiter in done:
                error = waiter.result()
                break
            if stopper in done:
                announce("stopping (Ctrl-C)")
                break
            announce(app.status())
    finally:
        stopper.cancel()
        await app.close()
        if not waiter.done():
            waiter.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    cpu1 = os.times()
    wall = max(time.monotonic() - t0, 1e-9)
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    announce(f"done: {app.status()}  CPU {cpu / wall * 100:.0f} % of one core")
    if stats_path is not None and app.sink is not None:
        write_stats(stats_path, app.sink, cpu_s=cpu, wall_s=wall)
    if error is not None:
        raise error
    return 0


def write_stats(path: Path, sink: StoreSink, *, cpu_s: float, wall_s: float) -> None:
    """Write the run's figures as JSON (atomically)."""
    lags = sorted(sink.publish_lag_us)

    def pct(q: float) -> float | None:
        if not lags:
            return None
        return lags[min(len(lags) - 1, int(q * len(lags)))] / 1000

    data = {
        "cpu_s": cpu_s,
        "wall_s": wall_s,
        "cpu_percent": 100 * cpu_s / wall_s,
        "parts": sink.parts,
        "publish_lag_ms_p50": pct(0.5),
        "publish_lag_ms_p99": pct(0.99),
        "published": [list(row) for row in sink.published],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


__all__ += ["run_live", "stream_spec", "write_stats"]
