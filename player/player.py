"""The player: asyncio adapter around the session, playout buffer, decoder and metrics.

:class:`Player` pumps the sans-I/O cores the way aioquic's asyncio protocol
pumps ``QuicConnection``: it takes :mod:`player.actions` from
:class:`~player.session.Session` and carries them out (each ``Fetch`` is a
concurrent ``get`` on one :mod:`player.transport` fetcher — the blocking
playlist reload and the hinted part are in flight together), feeds
responses, errors and timer expiries back, and sleeps until the earliest of
the next response, the session's timer and the next 100 ms metrics sample.

Media flow: ``InitSection`` opens a :class:`~player.decode.TrackDecoder`;
``Deliver`` goes into the :class:`~player.buffer.PlayoutBuffer` (its range on
the media timeline) and, when decoding, straight into the decoder.

Frames are decoded **as delivered**, not when they fall due. Decoding is off
the presentation path that way: a frame is ready before its presentation
time, so the latency measured from its pixels is presentation minus capture,
not inflated by decode bursts — the hold-back pre-roll (from the segment's
key frame to the start point, up to a whole segment of frames) would
otherwise be decoded in one burst just as playback starts. The decoder keeps
no frames, only what was read from them (the barcode's capture time at the
frame's place on the timeline), so decoding ahead costs no memory.

Latency (:mod:`player.latency`): ``pixels`` from the barcode of decoded
frames; ``prft`` from each chunk's producer reference time (parsed without
decoding); ``pdt`` when the media timeline is the PROGRAM-DATE-TIME. Every
source is observed at each sample; :class:`~player.metrics.MetricsCollector`
prefers them in that order.

Failures: transport errors and 404/503 answers go to the session, which
backs off and retries; the fetcher reconnects by itself on the next request
(HTTP/3 resumes with the ticket of the lost connection: 0-RTT). Until the
first response arrives, an unreachable origin or a TLS failure is fatal at
once (a wrong URL should not take a dozen retries to report). The session
giving up, a response that is not HLS, or no playback within
``startup_timeout`` raise :class:`~llhls.errors.PlayerError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llhls.cmaf import read_fragment, read_init
from llhls.errors import BoxError, ConfigError, PlayerError
from llhls.media import TrackInfo
from llhls.timing import MICROS, rescale
from player.actions import (
    Cancel,
    Deliver,
    EndOfStream,
    Failed,
    Fetch,
    InitSection,
    PlayFrom,
    SessionConfig,
    TrackName,
)
from player.buffer import BufferConfig, PlayoutBuffer, PlayState
from player.decode import DecodedFrame, TrackDecoder
from player.latency import CaptureTimeline, MediaToTimeline, latency_s
from player.metrics import (
    LatencySource,
    MetricsCollector,
    PlayoutTotals,
    TransportTotals,
)
from player.session import Session
from player.transport import (
    Fetcher,
    FetchResult,
    TLSVerificationError,
    TransportError,
    UnreachableError,
    connect,
    parse_origin,
)

__all__ = ["PROTOCOLS", "Protocol", "PlayerStatus", "Player"]

logger = logging.getLogger(__name__)

Protocol = Literal["auto", "h3", "h2", "h1"]
"""Transport choice: ``auto`` races HTTP/3 against HTTP/2 (see :func:`player.transport.connect`)."""

PROTOCOLS: tuple[Protocol, ...] = ("auto", "h3", "h2", "h1")
"""Every :data:`Protocol`."""

_SHORT_NAMES = {"http/1.1": "h1"}
"""Fetcher protocol names as reported (``h3``, ``h2``, ``h1``)."""

_TRANSIENT = frozenset({404, 408, 425, 429})
"""Client errors that may pass (a stream not started yet, a timeout, too many requests)."""

StatusCallback = Callable[["PlayerStatus"], None]


@dataclass(frozen=True, slots=True)
class PlayerStatus:
    """A snapshot of a running player (``on_status`` gets one per 100 ms sample)."""

    t: float
    """Seconds since :meth:`Player.run` began."""
    state: str
    """Playout state: ``buffering``, ``playing``, ``stalled`` or ``ended``."""
    protocol: str
    """``h3``, ``h2`` or ``h1`` (empty before the transport is chosen)."""
    latency_s: float | None
    """Latest latency from the best fresh source."""
    latency_source: LatencySource | None
    """Source of ``latency_s``: ``pixels``, ``prft`` or ``pdt``."""
    buffer_s: float
    """Seconds of media buffered ahead of the play position (minimum over tracks)."""
    rate: float
    """Playout rate."""
    rendition: str | None
    """Video (or only) rendition being fetched."""
    stalls: int
    """Stalls after playback started."""
    stall_s: float
    """Seconds spent stalled."""
    played_s: float
    """Seconds spent playing."""
    requests: int
    """Requests answered so far."""
    connections: int
    """Connections opened so far."""
    bytes: int
    """Response body bytes received."""
    zero_rtt: bool | None
    """h3: whether the latest connection's early data was accepted."""
    frames: int
    """Video frames decoded."""
    last_error: str | None = None
    """The latest failed request (``HTTP 404 /live/index.m3u8``, a transport error),
    until the next successful response."""

    def __post_init__(self) -> None:
        if self.t < 0 or self.buffer_s < 0:
            raise ValueError("t and buffer_s must be >= 0")
        if not self.rate > 0:
            raise ValueError(f"rate must be positive, got {self.rate}")


class Player:
    """Plays one LL-HLS stream: fetch, buffer, decode, measure.

    ``url`` is the multivariant (or a media) playlist. ``duration`` stops the
    run after that many seconds of playback (wall seconds since playback
    started, stalls included); without it the run lasts until the stream ends
    or :meth:`stop`. ``target_latency`` starts playback that many seconds
    behind the live edge instead of the playlist's PART-HOLD-BACK (rate
    control towards it comes with catch-up). ``insecure`` skips certificate
    checks; ``cafile`` trusts the origin's own certificate. ``decode=False``
    skips PyAV (latency then comes from ``prft``). ``qlog_dir`` receives
    HTTP/3 qlog traces; ``h1_reuse=False`` opens an HTTP/1.1 connection per
    request. ``on_status`` is called with a :class:`PlayerStatus` every 100 ms.
    ``ticket_dir`` overrides where HTTP/3 session tickets are cached (for
    0-RTT across runs). ``startup_timeout``: seconds without playback after
    which the run fails.
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: Protocol = "auto",
        duration: float | None = None,
        target_latency: float | None = None,
        insecure: bool = False,
        cafile: Path | None = None,
        decode: bool = True,
        qlog_dir: Path | None = None,
        h1_reuse: bool = True,
        on_status: StatusCallback | None = None,
        ticket_dir: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {protocol!r} (auto, h3, h2 or h1)")
        if duration is not None and not duration > 0:
            raise ConfigError(f"duration must be positive, got {duration:g}")
        if target_latency is not None and not target_latency >= 0:
            raise ConfigError(f"target latency must be >= 0, got {target_latency:g}")
        if insecure and cafile is not None:
            raise ConfigError("insecure and cafile exclude each other")
        if not startup_timeout > 0:
            raise ConfigError(f"startup timeout must be positive, got {startup_timeout:g}")
        _, path = parse_origin(url)
        self.url = url
        """The playlist URL."""
        self.requested_protocol: Protocol = protocol
        """The protocol asked for (``auto`` included)."""
        self.duration = duration
        """Seconds of playback after which :meth:`run` returns."""
        self.target_latency = target_latency
        """Seconds behind the live edge to start at (``None``: the playlist's hold-back)."""
        self.decode = decode
        """Whether frames are decoded."""
        self._insecure = insecure
        self._cafile = cafile
        self._qlog_dir = qlog_dir
        self._h1_reuse = h1_reuse
        self._on_status = on_status
        self._ticket_dir = ticket_dir
        self._startup_timeout = startup_timeout
        self._session = Session(path, SessionConfig(hold_back=target_latency))
        self._fetcher: Fetcher | None = None
        self._metrics: MetricsCollector | None = None
        self._buffer: PlayoutBuffer[None] | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._paths: dict[int, str] = {}
        self._done: deque[tuple[int, FetchResult | TransportError]] = deque()
        self._wake = asyncio.Event()
        self._running = False
        self._stopping = False
        self._answered = False
        self._last_error: str | None = None
        self._t0 = 0.0
        self._now = 0.0
        self._inits: dict[TrackName, TrackInfo] = {}
        self._decoders: dict[TrackName, TrackDecoder] = {}
        self._to_timeline = MediaToTimeline()
        self._pixels = CaptureTimeline()
        self._prft = CaptureTimeline()
        self._first_decoded: float | None = None
        self._first_frame: float | None = None
        self._status: PlayerStatus | None = None
        self.frames = 0
        """Video frames decoded."""
        self.barcodes = 0
        """Video frames whose barcode was read."""
        self.audio_frames = 0
        """Audio frames decoded."""
        self.decode_s = 0.0
        """Seconds spent parsing and decoding media (wall time on the event loop)."""

    # -- public API ----------------------------------------------------------------------

    async def run(self) -> dict[str, object]:
        """Play until ``duration``, the end of the stream or :meth:`stop`; the metrics summary.

        Raises :class:`~llhls.errors.PlayerError` (unreachable origin, TLS
        failure, not HLS, the session gave up, no playback in time).
        """
        if self._running:
            raise RuntimeError("a Player runs once")
        self._running = True
        self._t0 = self._now = time.monotonic()
        try:
            self._fetcher = await connect(
                self.url,
                self.requested_protocol,
                insecure=self._insecure,
                cafile=self._cafile,
                h1_reuse=self._h1_reuse,
                qlog_dir=self._qlog_dir,
                ticket_dir=self._ticket_dir,
            )
            protocol = self._fetcher.protocol
            self._metrics = MetricsCollector(_SHORT_NAMES.get(protocol, protocol))
            self._metrics.on_first_request(self._t0)
            if not self._stopping:
                self._session.start(time.monotonic())
                await self._loop()
        finally:
            await self._shutdown()
        return self.summary()

    async def stop(self) -> None:
        """End :meth:`run` soon (it returns the summary as usual)."""
        self._stopping = True
        self._wake.set()

    def summary(self) -> dict[str, object]:
        """The metrics summary so far (the ``play --metrics`` object)."""
        metrics = self._metrics or MetricsCollector(self.protocol)
        playout = PlayoutTotals()
        if self._buffer is not None:
            stats = self._buffer.stats(self._now)
            playout = PlayoutTotals(stats.stalls, stats.stall_s, stats.played_s)
        transport = TransportTotals()
        if self._fetcher is not None:
            transport = TransportTotals.from_stats(self._fetcher.stats)
        return metrics.summary(transport, playout)

    @property
    def protocol(self) -> str:
        """The protocol in use (``h3``, ``h2``, ``h1``), or the one asked for before connecting."""
        if self._fetcher is None:
            return self.requested_protocol
        return _SHORT_NAMES.get(self._fetcher.protocol, self._fetcher.protocol)

    @property
    def status(self) -> PlayerStatus | None:
        """The latest status (``None`` before the first sample)."""
        return self._status

    @property
    def state(self) -> PlayState:
        """Playout state."""
        return self._buffer.state if self._buffer is not None else PlayState.BUFFERING

    @property
    def latency_s(self) -> float | None:
        """Latest latency (see :attr:`PlayerStatus.latency_s`)."""
        return self._status.latency_s if self._status is not None else None

    @property
    def buffer_s(self) -> float:
        """Seconds buffered ahead of the play position."""
        return self._buffer.level_s if self._buffer is not None else 0.0

    @property
    def rate(self) -> float:
        """Playout rate."""
        return self._buffer.rate if self._buffer is not None else 1.0

    @property
    def rendition(self) -> str | None:
        """The video rendition being fetched."""
        return self._session.current_rendition("video")

    @property
    def session(self) -> Session:
        """The session core (for inspection: counters, renditions)."""
        return self._session

    # -- the loop ------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            self._now = now = time.monotonic()
            self._step(now)
            if self._finished(now):
                return
            wake = self._next_wake(now)
            self._wake.clear()
            if self._done or self._stopping:
                continue
            delay = wake - time.monotonic()
            if delay <= 0:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _step(self, now: float) -> None:
        """Feed responses and due timers to the cores and carry out what they ask."""
        session = self._session
        while self._done:
            request_id, outcome = self._done.popleft()
            self._tasks.pop(request_id, None)
            if not isinstance(outcome, FetchResult):
                self._paths.pop(request_id, None)
            if isinstance(outcome, FetchResult):
                self._on_result(request_id, outcome)
                session.on_response(request_id, outcome.status, outcome.body, now)
            else:
                if not self._answered and isinstance(
                    outcome, UnreachableError | TLSVerificationError
                ):
                    raise outcome
                logger.info("request %d failed: %s", request_id, outcome)
                self._last_error = str(outcome)
                session.on_error(request_id, _reason(outcome), now)
            self._drain(now)
        timer = session.get_timer()
        if timer is not None and timer <= now:
            session.handle_timer(now)
        self._drain(now)
        self._play(now)

    def _on_result(self, request_id: int, result: FetchResult) -> None:
        path = self._paths.pop(request_id, "?")
        if result.status == 200:
            self._answered = True
            self._last_error = None
            return
        logger.info("HTTP %d for %s", result.status, path)
        self._last_error = f"HTTP {result.status} for {path}"
        if not self._answered and 400 <= result.status < 500 and result.status not in _TRANSIENT:
            # before anything worked, a client error is a wrong URL, not a passing state
            raise PlayerError(f"HTTP {result.status} for {self.url}")

    def _drain(self, now: float) -> None:
        while (action := self._session.next_action()) is not None:
            if isinstance(action, Fetch):
                self._tasks[action.request_id] = asyncio.ensure_future(self._fetch(action))
                self._paths[action.request_id] = action.path_and_query
            elif isinstance(action, Cancel):
                self._paths.pop(action.request_id, None)
                task = self._tasks.pop(action.request_id, None)
                if task is not None:
                    task.cancel()
            elif isinstance(action, Deliver):
                self._deliver(action, now)
            elif isinstance(action, InitSection):
                self._init_section(action)
            elif isinstance(action, PlayFrom):
                buffer = self._ensure_buffer()
                if buffer.state is PlayState.BUFFERING:
                    buffer.play_from(action.start_us)
            elif isinstance(action, EndOfStream):
                self._ensure_buffer().end_of_stream(action.track, now)
            elif isinstance(action, Failed):
                raise PlayerError(self._failure(action.reason))

    async def _fetch(self, action: Fetch) -> None:
        assert self._fetcher is not None
        outcome: FetchResult | TransportError
        try:
            outcome = await self._fetcher.get(action.path_and_query, timeout=action.timeout)
        except TransportError as exc:
            outcome = exc
        except Exception as exc:
            # A bug below us must not leave the session waiting forever for this answer:
            # it fails like any request (and the session retries, skips or gives up).
            logger.error("GET %s raised", action.path_and_query, exc_info=exc)
            outcome = TransportError(f"GET {action.path_and_query}: {type(exc).__name__}: {exc}")
        self._done.append((action.request_id, outcome))
        self._wake.set()

    def _next_wake(self, now: float) -> float:
        times = [now + 1.0]
        for timer in (
            self._session.get_timer(),
            self._metrics.get_timer() if self._metrics is not None else None,
            self._buffer.get_timer() if self._buffer is not None else None,
        ):
            if timer is not None:
                times.append(timer)
        started = self._started_at()
        if started is None:
            times.append(self._t0 + self._startup_timeout)
        elif self.duration is not None:
            times.append(started + self.duration)
        return min(times)

    def _finished(self, now: float) -> bool:
        started = self._started_at()
        if started is None:
            if now - self._t0 >= self._startup_timeout:
                raise PlayerError(
                    f"no playback within {self._startup_timeout:g} s of starting {self.url}"
                )
            return False
        if self._buffer is not None and self._buffer.state is PlayState.ENDED:
            logger.info("the stream ended")
            return True
        return self.duration is not None and now - started >= self.duration

    def _started_at(self) -> float | None:
        if self._buffer is None:
            return None
        return self._buffer.stats().started_at

    # -- media ---------------------------------------------------------------------------

    def _ensure_buffer(self) -> PlayoutBuffer[None]:
        if self._buffer is None:
            tracks = list(self._session.tracks) or ["video"]
            self._buffer = PlayoutBuffer(tracks, BufferConfig())
            self._buffer.advance(self._now)
        return self._buffer

    def _init_section(self, action: InitSection) -> None:
        try:
            info = read_init(action.data)
        except BoxError as exc:
            if self.decode:
                raise PlayerError(f"{action.rendition}: unreadable CMAF header: {exc}") from exc
            # without decoding only the prft latency needs the header: do without it
            logger.warning("%s: unreadable CMAF header: %s", action.rendition, exc)
            self._inits.pop(action.track, None)
            return
        self._inits[action.track] = info
        if self.decode:
            old = self._decoders.pop(action.track, None)
            if old is not None:
                self._on_frames(old.flush())
            self._decoders[action.track] = TrackDecoder(action.data)
        if action.track == "video":
            self._to_timeline.clear()  # the new header's media times start afresh
        logger.debug("%s: CMAF header of %s (%s)", action.track, action.rendition, info.codec)

    def _deliver(self, action: Deliver, now: float) -> None:
        buffer = self._ensure_buffer()
        started = time.perf_counter()
        info = self._inits.get(action.track)
        if info is not None and action.track == "video":
            self._note_chunk(action, info)
        decoder = self._decoders.get(action.track)
        if decoder is not None:
            self._on_frames(decoder.decode(action.data))
            if self._first_decoded is None and decoder.frames and self._shows(decoder):
                self._first_decoded = now
        self.decode_s += time.perf_counter() - started
        if action.duration_us > 0:
            buffer.push(action.track, action.start_us, action.duration_us, now, None)

    def _shows(self, decoder: TrackDecoder) -> bool:
        """Whether ``decoder``'s frames count as shown: video, or audio of an audio-only stream."""
        return decoder.kind == "video" or all(d.kind == "audio" for d in self._decoders.values())

    def _note_chunk(self, action: Deliver, info: TrackInfo) -> None:
        """Where the chunk's media time sits on the timeline, and its ``prft`` capture time."""
        try:
            fragment = read_fragment(action.data, info)
        except BoxError as exc:
            logger.warning(
                "%s: unreadable chunk %d.%s: %s", action.rendition, action.msn, action.part, exc
            )
            return
        if not fragment.samples:
            return
        first = min(fragment.samples, key=lambda s: s.pts)
        self._to_timeline.add(rescale(first.pts, info.timescale, MICROS), action.start_us)
        if first.capture_us > 0:
            self._prft.add(action.start_us, first.capture_us)

    def _on_frames(self, frames: list[DecodedFrame]) -> None:
        for frame in frames:
            if frame.kind == "audio":
                self.audio_frames += 1
                continue
            self.frames += 1
            if frame.barcode_ms is None:
                continue
            position = self._to_timeline.to_timeline(frame.pts_us)
            if position is not None:
                self.barcodes += 1
                self._pixels.add(position, frame.barcode_ms * 1000)

    # -- playout and metrics -------------------------------------------------------------

    def _play(self, now: float) -> None:
        buffer = self._buffer
        if buffer is not None:
            buffer.advance(now)
            for track in self._session.tracks:
                with contextlib.suppress(KeyError):
                    buffer.pop_due(track)
            self._check_first_frame(buffer)
        metrics = self._metrics
        if metrics is None:
            return
        due = metrics.get_timer()
        if due is None or now < due:
            return
        self._observe(now)
        rendition = self._session.current_rendition("video")
        level = buffer.level_s if buffer is not None else 0.0
        rate = buffer.rate if buffer is not None else 1.0
        if metrics.poll(now, level, rate, rendition):
            self._status = self._snapshot(now, level, rate, rendition)
            if self._on_status is not None:
                self._on_status(self._status)

    def _check_first_frame(self, buffer: PlayoutBuffer[None]) -> None:
        if self._first_frame is not None or self._metrics is None:
            return
        if buffer.stats().started_at is None:
            return
        if self._decoders and self._first_decoded is None:
            return
        # Now: the media up to the start point was decoded during this step (the
        # hold-back pre-roll from the key frame), so this is when it could be shown.
        shown = time.monotonic()
        self._first_frame = shown
        self._metrics.on_first_frame(shown)
        logger.info("first frame %.3f s after the first request", shown - self._t0)

    def _observe(self, now: float) -> None:
        """Observe the latency of the media on screen from every source available."""
        buffer, metrics = self._buffer, self._metrics
        if buffer is None or metrics is None or buffer.state is PlayState.BUFFERING:
            return
        position = buffer.position_us
        if position is None:
            return
        wall_us = time.time_ns() // 1000
        capture = self._pixels.capture_at(position)
        if capture is not None:
            metrics.observe_latency("pixels", latency_s(wall_us, capture), now)
        capture = self._prft.capture_at(position)
        if capture is not None:
            metrics.observe_latency("prft", latency_s(wall_us, capture), now)
        if self._session.use_pdt:
            metrics.observe_latency("pdt", latency_s(wall_us, position), now)

    def _snapshot(
        self, now: float, level: float, rate: float, rendition: str | None
    ) -> PlayerStatus:
        assert self._metrics is not None
        latency, source = self._metrics.current_latency(now)
        buffer = self._buffer
        stats = buffer.stats(now) if buffer is not None else None
        transport = self._fetcher.stats if self._fetcher is not None else None
        return PlayerStatus(
            t=now - self._t0,
            state=(stats.state if stats is not None else PlayState.BUFFERING).value,
            protocol=self.protocol,
            latency_s=latency,
            latency_source=source,
            buffer_s=max(0.0, level),
            rate=rate,
            rendition=rendition,
            stalls=stats.stalls if stats is not None else 0,
            stall_s=stats.stall_s if stats is not None else 0.0,
            played_s=stats.played_s if stats is not None else 0.0,
            requests=transport.requests if transport is not None else 0,
            connections=transport.connections if transport is not None else 0,
            bytes=transport.bytes_received if transport is not None else 0,
            zero_rtt=transport.zero_rtt if transport is not None else None,
            frames=self.frames,
            last_error=self._last_error,
        )

    # -- endings -------------------------------------------------------------------------

    def _failure(self, reason: str) -> str:
        if reason.startswith("not an HLS playlist"):
            return f"{self.url} is not an HLS playlist ({reason.split(': ', 1)[-1]})"
        return f"playing {self.url} failed: {reason}"

    async def _shutdown(self) -> None:
        self._now = max(self._now, time.monotonic())
        if self._buffer is not None:
            self._buffer.advance(self._now)
        self._session.close()
        while self._session.next_action() is not None:
            pass
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._paths.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._fetcher is not None:
            await self._fetcher.close()


def _reason(error: TransportError) -> str:
    """A short failure reason for the session's log."""
    return f"{type(error).__name__}: {error}"
