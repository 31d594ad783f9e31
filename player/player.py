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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llhls.cmaf import read_fragment, read_init
from llhls.errors import BoxError, ConfigError, PlayerError
from llhls.media import TrackInfo
from llhls.timing import MICROS, rescale
from player.abr import Abr, AbrConfig
from player.actions import (
    Cancel,
    Deliver,
    EndOfStream,
    Failed,
    Fetch,
    InitSection,
    PlayFrom,
    RenditionInfo,
    RequestKind,
    SessionConfig,
    TrackName,
)
from player.buffer import BufferConfig, PlayoutBuffer, PlayState
from player.catchup import CatchupConfig
from player.decode import DecodedFrame, TrackDecoder
from player.latency import CaptureTimeline, MediaToTimeline, latency_s
from player.metrics import (
    LatencySource,
    MetricsCollector,
    PlayoutTotals,
    TransportTotals,
)
from player.session import Session
from player.steering import Steering
from player.transport import (
    Fetcher,
    FetchResult,
    RequestTimeout,
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
    target_s: float | None = None
    """The latency controller's current target (``None`` before it is known)."""
    jumps: int = 0
    """Jumps to live (each also counts as a stall)."""

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
    or :meth:`stop`. ``target_latency`` is the latency to hold: playback starts
    that many seconds behind the live edge (instead of the playlist's
    PART-HOLD-BACK) and the latency controller (:mod:`player.catchup`) steers
    the playout rate towards it; without it, the target is the latency
    measured when playback starts. ``catchup=False`` keeps the rate at 1;
    ``abr=False`` stays on the first rendition (:mod:`player.abr` otherwise
    switches with the throughput and the buffer). ``catchup_config`` and
    ``abr_config`` tune them. ``insecure`` skips certificate
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
        catchup: bool = True,
        abr: bool = True,
        catchup_config: CatchupConfig | None = None,
        abr_config: AbrConfig | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {protocol!r} (auto, h3, h2 or h1)")
        if duration is not None and not duration > 0:
            raise ConfigError(f"duration must be positive, got {duration:g}")
        if target_latency is not None and not target_latency > 0:
            raise ConfigError(f"target latency must be positive, got {target_latency:g}")
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
        self._path = path
        self._steering = Steering(
            target_s=target_latency,
            catchup=catchup,
            abr=abr,
            catchup_config=catchup_config,
            abr_config=abr_config,
        )
        select = Abr.select(abr_config) if abr else None
        self._session = Session(path, SessionConfig(hold_back=target_latency), select=select)
        self._kinds: dict[int, RequestKind] = {}
        self._video: dict[int, tuple[str | None, float]] = {}
        """Video media requests in flight: their rendition and when they were sent."""
        self._play_started: float | None = None
        self._start_us: int | None = None
        self._gap_from: float | None = None
        self._past = PlayoutTotals()
        self.jumps = 0
        """Jumps to live (the session restarted at the target latency)."""
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
        playout = self._playout_totals(self._now)
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
            kind = self._kinds.pop(request_id, None)
            video = self._video.pop(request_id, None)
            if self._steering.rtt_s is None and self._fetcher is not None:
                self._steering.on_handshake(self._fetcher.stats.handshake_rtt_s)
            if isinstance(outcome, FetchResult):
                self._on_result(request_id, outcome)
                if outcome.status == 200 and kind is not None:
                    self._on_download(now, kind, outcome)
                session.on_response(request_id, outcome.status, outcome.body, now)
                if self._steering.abr is None and session.renditions:
                    self._steering.on_renditions(
                        session.renditions, session.current_rendition("video")
                    )
            else:
                if not self._answered and isinstance(
                    outcome, UnreachableError | TLSVerificationError
                ):
                    raise outcome
                logger.info("request %d failed: %s", request_id, outcome)
                if isinstance(outcome, RequestTimeout) and kind is not None and video:
                    self._on_timeout(now, kind, *video)
                self._last_error = str(outcome)
                session.on_error(request_id, _reason(outcome), now)
            self._drain(now)
        timer = session.get_timer()
        if timer is not None and timer <= now:
            session.handle_timer(now)
        self._drain(now)
        self._play(now)

    def _on_download(self, now: float, kind: RequestKind, result: FetchResult) -> None:
        """A 200 answer: throughput for ABR; the first media makes the startup plan."""
        planned = self._steering.plan is not None
        seconds = result.finished - result.first_byte
        self._steering.on_download(now, kind, len(result.body), seconds)
        buffer = self._buffer
        if planned or self._steering.plan is None or self._start_us is None or buffer is None:
            return
        if buffer.state is PlayState.BUFFERING:
            buffer.play_from(self._start_us - self._steering.start_shift_us())

    def _on_timeout(
        self, now: float, kind: RequestKind, rendition: str | None, sent: float
    ) -> None:
        """A video part or segment timed out: an upper bound of the throughput for ABR."""
        playlist = self._session.playlist("video")
        if playlist is None:
            return
        part = playlist.part_target
        media_s = float(part) if kind == "part" and part else float(playlist.target_duration)
        self._steering.on_timeout(kind, rendition, now - sent, media_s)

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
                self._kinds[action.request_id] = action.kind
                if action.track == "video" and action.kind in ("part", "segment"):
                    self._video[action.request_id] = (action.rendition, now)
            elif isinstance(action, Cancel):
                self._paths.pop(action.request_id, None)
                self._kinds.pop(action.request_id, None)
                self._video.pop(action.request_id, None)
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
                    # the startup buffer (network grade) starts that much further back
                    self._start_us = action.start_us
                    buffer.play_from(action.start_us - self._steering.start_shift_us())
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
        """When playback first started (a jump to live does not reset it)."""
        if self._play_started is None and self._buffer is not None:
            self._play_started = self._buffer.stats().started_at
        return self._play_started

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
        if action.duration_us <= 0:
            return
        if action.track == "video":
            buffer.advance(now)
            latency, _ = self._measure()
            if latency is not None:
                before = buffer.track_level_s("video")
                self._steering.on_part(now, before, latency, action.duration_us / MICROS)
        was_started = buffer.stats().started_at is not None
        buffer.push(action.track, action.start_us, action.duration_us, now, None)
        if not was_started and self._gap_from is not None and buffer.stats().started_at is not None:
            self._past = self._past.plus(0, now - self._gap_from, 0.0)  # the jump's gap
            self._gap_from = None

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
        target = self._control(now)
        buffer = self._buffer  # a jump to live replaces it
        rendition = self._session.current_rendition("video")
        level = buffer.level_s if buffer is not None else 0.0
        rate = buffer.rate if buffer is not None else 1.0
        if metrics.poll(now, level, rate, rendition, target):
            self._status = self._snapshot(now, level, rate, rendition, target)
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

    def _latencies(self) -> list[tuple[LatencySource, float]]:
        """The latency of the media at the play position from every source, best first."""
        buffer = self._buffer
        if buffer is None or buffer.state is PlayState.BUFFERING:
            return []
        position = buffer.position_us
        if position is None:
            return []
        wall_us = time.time_ns() // 1000
        out: list[tuple[LatencySource, float]] = []
        capture = self._pixels.capture_at(position)
        if capture is not None:
            out.append(("pixels", latency_s(wall_us, capture)))
        capture = self._prft.capture_at(position)
        if capture is not None:
            out.append(("prft", latency_s(wall_us, capture)))
        if self._session.use_pdt:
            out.append(("pdt", latency_s(wall_us, position)))
        return out

    def _measure(self) -> tuple[float | None, LatencySource | None]:
        """The latency at the play position now from the best source (``None`` if unknown)."""
        found = self._latencies()
        if not found:
            return None, None
        source, value = found[0]
        return value, source

    def _observe(self, now: float) -> None:
        """Observe the latency of the media on screen from every source available."""
        if self._metrics is not None:
            for source, value in self._latencies():
                self._metrics.observe_latency(source, value, now)

    def _control(self, now: float) -> float | None:
        """One control tick: steer the rate, jump to live, switch renditions; the target."""
        buffer = self._buffer
        session = self._session
        latency, _ = self._measure()
        playlist = session.playlist("video")
        target_duration = float(playlist.target_duration) if playlist is not None else 0.0
        part = playlist.part_target if playlist is not None else None
        part_s = float(part) if part else target_duration
        if buffer is None or playlist is None or not part_s > 0 or not target_duration > 0:
            return None
        stats = buffer.stats(now)
        hold_back = session.hold_back("video")
        # the edge's age matters only far behind (it gates a jump to live)
        far = latency is not None and latency - self._steering.controller.target_s > 2.0
        edge = session.edge_pdt_us("video") if far else None
        steer = self._steering.tick(
            now,
            latency_s=latency,
            buffer_s=buffer.level_s,
            state=stats.state,
            stalls=self._past.stalls + stats.stalls,
            part_s=part_s,
            target_duration_s=target_duration,
            rendition=session.current_rendition("video"),
            nominal_s=None if hold_back is None else float(hold_back) + part_s,
            edge_age_s=None if edge is None else (time.time_ns() // 1000 - edge) / MICROS,
        )
        if steer.jump and stats.state is not PlayState.BUFFERING and steer.target_s is not None:
            self._jump(now, steer.target_s, part_s)
            return steer.target_s
        if abs(buffer.rate - steer.rate) > 1e-9 and stats.state is not PlayState.ENDED:
            buffer.set_rate(steer.rate, now)
            logger.debug("rate %.3f (%s, target %s)", steer.rate, steer.mode, steer.target_s)
        if steer.switch_to is not None:
            try:
                session.switch(steer.switch_to, now)
            except (RuntimeError, ValueError) as exc:
                logger.info("switch to %s refused: %s", steer.switch_to, exc)
                self._steering.on_switch_refused(session.current_rendition("video"))
            self._drain(now)
        return steer.target_s

    def _jump(self, now: float, target_s: float, part_s: float) -> None:
        """Jump to live: a fresh session and buffer, starting at the target latency."""
        old = self._session
        buffer = self._buffer
        if buffer is not None:
            stats = buffer.stats(now)
            self._past = self._past.plus(stats.stalls + 1, stats.stall_s, stats.played_s)
        self.jumps += 1
        logger.info("jump to live (target %.3f s)", target_s)
        old.close()
        self._drain(now)  # cancels what was in flight
        video = old.current_rendition("video")
        audio = old.current_rendition("audio")

        def keep(renditions: Sequence[RenditionInfo]) -> tuple[str, str | None]:
            if video is None:
                raise ValueError("no video rendition to keep")
            return video, audio

        hold_back = max(2 * part_s, target_s - part_s)
        self._session = Session(self._path, SessionConfig(hold_back=hold_back), select=keep)
        self._buffer = None
        self._start_us = None
        self._gap_from = now
        self._pixels.clear()
        self._prft.clear()
        self._session.start(now)
        self._drain(now)

    def _playout_totals(self, now: float) -> PlayoutTotals:
        """Stalls, stalled and played seconds over the whole run (jumps included)."""
        totals = self._past
        if self._gap_from is not None:
            totals = totals.plus(0, now - self._gap_from, 0.0)
        if self._buffer is not None:
            stats = self._buffer.stats(now)
            totals = totals.plus(stats.stalls, stats.stall_s, stats.played_s)
        return totals

    def _snapshot(
        self, now: float, level: float, rate: float, rendition: str | None, target: float | None
    ) -> PlayerStatus:
        assert self._metrics is not None
        latency, source = self._metrics.current_latency(now)
        buffer = self._buffer
        stats = buffer.stats(now) if buffer is not None else None
        totals = self._playout_totals(now)
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
            stalls=totals.stalls,
            stall_s=totals.stall_s,
            played_s=totals.played_s,
            requests=transport.requests if transport is not None else 0,
            connections=transport.connections if transport is not None else 0,
            bytes=transport.bytes_received if transport is not None else 0,
            zero_rtt=transport.zero_rtt if transport is not None else None,
            frames=self.frames,
            last_error=self._last_error,
            target_s=target,
            jumps=self.jumps,
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
