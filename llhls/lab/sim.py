"""A deterministic network-and-origin simulator for the player's control loop.

Everything that decides runs as in production: the origin is the real
:class:`~llhls.origin.store.Store` answered by the real
:func:`~llhls.origin.core.decide` (blocking reload, preload hints, delta
updates, rendition reports); each viewer runs the real
:class:`~player.session.Session`, :class:`~player.buffer.PlayoutBuffer`,
:class:`~player.abr.Abr` and a rate policy (:class:`player.catchup.Controller`
or a baseline of :mod:`llhls.lab.baselines`). Only the media bytes are
synthetic (zeros of the right size) and the network is a model
(:mod:`llhls.lab.traces`): per viewer a FIFO bottleneck driven by a
throughput or Mahimahi trace, an RTT, seeded loss.

Time is virtual: one event heap, no clock read, no randomness except seeded
generators, so a run is a pure function of its :class:`SimConfig`.

The stream: parts of ``part_s`` on one grid for every rendition, the first
part of each segment independent (a key frame per segment) and heavier
(``keyframe_weight``), sizes varying by ``size_jitter``; part ``k`` is
published at ``(k + 1) * part_s + publish_lag_s``. Its capture time (the
PROGRAM-DATE-TIME) is ``WALL0 + k * part_s``, so the latency of a viewer at
play position ``P`` (µs of PDT) is ``WALL0 + now - P``.

Injected stalls: ``pauses`` freeze the origin's answers for a while (as a
stopped origin process would); production goes on, and everything held is
answered when the pause ends.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

from llhls.lab.traces import Capacity, Link
from llhls.origin.core import Ready, Unclaimed, Wait, decide
from llhls.origin.messages import Request
from llhls.origin.store import RenditionSpec, Store, StreamSpec
from player.abr import Abr, AbrConfig, AbrSelector
from player.actions import (
    Cancel,
    Deliver,
    EndOfStream,
    Failed,
    Fetch,
    PlayFrom,
    RenditionInfo,
    SessionConfig,
)
from player.buffer import BufferConfig, PlayoutBuffer, PlayState
from player.catchup import Decision, Observation, StartupPlan, startup_plan
from player.session import Session

__all__ = [
    "WALL0",
    "RatePolicy",
    "StreamConfig",
    "ViewerSpec",
    "SimConfig",
    "ViewerResult",
    "SimResult",
    "simulate",
]

logger = logging.getLogger(__name__)

WALL0 = 1_700_000_000
"""UTC seconds at sim time 0 (the PDT of the stream's first part)."""

_HEADER_BYTES = 120
"""Response header bytes (HTTP/3, QPACK-compressed)."""

# event kinds, in the order they are handled at one instant
_PUBLISH, _PAUSE_END, _ORIGIN, _WAKE, _ARRIVE, _TIMER, _TICK, _JOIN = range(8)


class RatePolicy(Protocol):
    """What the simulator drives: :class:`player.catchup.Controller` or a baseline."""

    def start(self, plan: StartupPlan) -> None:
        """The startup plan (policies without a startup buffer ignore it)."""
        ...

    def on_part(
        self, now: float, buffer_before_s: float, latency_s: float, duration_s: float
    ) -> None:
        """A video part arrived."""
        ...

    def update(self, now: float, obs: Observation) -> Decision:
        """One control tick."""
        ...


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """The synthetic live stream."""

    bitrates: tuple[int, ...] = (150_000, 300_000, 600_000, 1_200_000, 2_400_000)
    """Video renditions, bit/s."""
    part_s: Fraction = Fraction(1, 5)
    """Part duration."""
    parts_per_segment: int = 10
    """Parts per segment (2 s segments by default)."""
    window_s: int = 16
    """Seconds of segments in the playlist (the session's work per reload grows with it)."""
    keyframe_weight: float = 2.5
    """Size of a segment's first (independent) part relative to the mean part."""
    size_jitter: float = 0.15
    """Relative spread of part sizes (uniform, seeded)."""
    publish_lag_s: float = 0.03
    """Capture end of a part -> part published (encode and packaging)."""
    init_bytes: int = 900
    """Size of each CMAF header."""

    def __post_init__(self) -> None:
        if not self.bitrates or any(b <= 0 for b in self.bitrates):
            raise ValueError("bitrates must be positive")
        if not self.part_s > 0 or self.parts_per_segment < 1:
            raise ValueError("part_s and parts_per_segment must be positive")
        if not 1 <= self.keyframe_weight <= self.parts_per_segment:
            raise ValueError("keyframe_weight must be in [1, parts_per_segment]")
        if not 0 <= self.size_jitter < 1 or self.publish_lag_s < 0:
            raise ValueError("bad size_jitter or publish_lag_s")

    @property
    def segment_s(self) -> Fraction:
        """Segment duration."""
        return self.part_s * self.parts_per_segment


@dataclass(frozen=True, slots=True)
class ViewerSpec:
    """One simulated player."""

    name: str
    """Label in the results."""
    policy: Callable[[], RatePolicy]
    """Builds the rate policy."""
    capacity: Capacity
    """The trace of its bottleneck link."""
    rtt_s: float = 0.04
    """Round-trip time."""
    loss: float = 0.0
    """Per-packet loss probability."""
    join_s: float = 10.0
    """Sim time at which it connects."""
    trace_offset_s: float = 0.0
    """Where in the trace its link starts."""
    startup_buffer: bool = False
    """Apply the startup plan (:func:`player.catchup.startup_plan`): hold the start
    until the first media download is timed, then start ``extra_s`` further back."""
    abr: AbrConfig = field(default_factory=AbrConfig)
    """Its rendition choice."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    """A whole simulation."""

    duration_s: float
    """Sim seconds to run."""
    viewers: tuple[ViewerSpec, ...]
    """The players."""
    stream: StreamConfig = field(default_factory=StreamConfig)
    """The live stream."""
    pauses: tuple[tuple[float, float], ...] = ()
    """Origin pauses: ``(start, duration)`` in sim seconds."""
    seed: int = 1
    """Seed of every generator."""
    tick_s: float = 0.1
    """Control tick (and sample) period of every viewer."""
    lost_window_s: float = 12.0
    """Latency above which any viewer restarts at its target (it would fall out of
    the playlist window): counted as a jump."""

    def __post_init__(self) -> None:
        if not self.duration_s > 0 or not self.tick_s > 0:
            raise ValueError("duration_s and tick_s must be positive")
        if not self.viewers:
            raise ValueError("a simulation needs viewers")
        for start, length in self.pauses:
            if start < 0 or length <= 0:
                raise ValueError(f"bad pause {(start, length)}")


@dataclass(slots=True)
class ViewerResult:
    """What one viewer did: samples every tick from its join, and totals."""

    name: str
    """Its label."""
    t: list[float] = field(default_factory=list)
    """Sample times (sim seconds)."""
    latency: list[float] = field(default_factory=list)
    """Latency (NaN before playback started)."""
    buffer: list[float] = field(default_factory=list)
    """Buffer level."""
    rate: list[float] = field(default_factory=list)
    """Playout rate."""
    target: list[float] = field(default_factory=list)
    """Target latency of its policy."""
    playing: list[bool] = field(default_factory=list)
    """Whether the playout clock ran at the sample."""
    bitrate: list[int] = field(default_factory=list)
    """Bit rate of the rendition being fetched."""
    started_at: float | None = None
    """Sim time playback first started."""
    stall_s: float = 0.0
    """Seconds stalled after the start (restart gaps of jumps included)."""
    played_s: float = 0.0
    """Seconds playing."""
    stalls: int = 0
    """Stalls (jumps included)."""
    jumps: int = 0
    """Jumps to live."""
    switches: int = 0
    """Rendition switches."""
    requests: int = 0
    """Requests sent."""
    bytes: int = 0
    """Bytes received."""
    startup_extra_s: float = 0.0
    """Extra startup buffer applied."""
    failed: str | None = None
    """Why its session gave up, if it did."""


@dataclass(frozen=True, slots=True)
class SimResult:
    """A finished simulation."""

    config: SimConfig
    """What ran."""
    viewers: tuple[ViewerResult, ...]
    """One result per viewer, in order."""
    events: int
    """Events handled (a measure of work)."""


class _Held:
    """A request held at the origin (blocked, or the origin is paused)."""

    __slots__ = ("viewer", "key", "request", "first_seen")

    def __init__(
        self, viewer: _Viewer, key: tuple[int, int], request: Request, first_seen: float
    ) -> None:
        self.viewer = viewer
        self.key = key
        self.request = request
        self.first_seen = first_seen


class _Viewer:
    """One player's cores and book-keeping."""

    def __init__(self, sim: _Sim, index: int, spec: ViewerSpec) -> None:
        self.sim = sim
        self.index = index
        self.spec = spec
        self.policy = spec.policy()
        self.link = Link(
            spec.capacity,
            spec.rtt_s,
            loss=spec.loss,
            seed=sim.config.seed * 7919 + index,
            start=spec.join_s,
            offset_s=spec.trace_offset_s,
        )
        self.result = ViewerResult(spec.name)
        self.ready_at = spec.join_s + spec.rtt_s  # QUIC handshake: one round trip
        self.session: Session | None = None
        self.buffer: PlayoutBuffer[None] | None = None
        self.started_buffer: PlayoutBuffer[None] | None = None
        """:attr:`buffer` once it has started playing (it stays started)."""
        self.abr: Abr | None = None
        self.requests: dict[tuple[int, int], str] = {}  # (generation, id) -> kind
        self.generation = 0
        self.timer_at: float | None = None
        self.held: list[Deliver | PlayFrom] | None = None
        self.hold_until = 0.0
        self.past_stalls = 0
        self.past_stall_s = 0.0
        self.past_played_s = 0.0
        self.gap_from: float | None = None
        self.target_s = 1.0
        self.plan_done = not spec.startup_buffer

    # -- session ---------------------------------------------------------------------------

    def begin(self, now: float, hold_back: float | None = None) -> None:
        abr = self.abr
        if abr is not None:
            current = abr.current_id

            def select(renditions: Sequence[RenditionInfo]) -> tuple[str, str | None]:
                return current, None

            selector: Callable[[Sequence[RenditionInfo]], tuple[str, str | None]] = select
        else:
            selector = AbrSelector(self.spec.abr)
        self.generation += 1
        config = SessionConfig(hold_back=hold_back)
        self.session = Session("/live/index.m3u8", config, select=selector)
        self.buffer = None
        self.session.start(now)
        self.pump(now)

    def restart(self, now: float) -> None:
        """Jump to live: a fresh session and buffer, starting at the target latency."""
        assert self.session is not None
        self.session.close()
        while self.session.next_action() is not None:
            pass
        self.requests.clear()
        self.sim.held = [h for h in self.sim.held if h.viewer is not self]
        if self.buffer is not None:
            stats = self.buffer.stats(now)
            self.past_stalls += stats.stalls
            self.past_stall_s += stats.stall_s
            self.past_played_s += stats.played_s
        self.past_stalls += 1
        self.result.jumps += 1
        self.gap_from = now
        self.held = None
        part = float(self.sim.config.stream.part_s)
        hold_back = max(3 * part, self.target_s - part / 2 - 0.05)
        # never restart outside the window (a baseline's target may have grown past it)
        self.begin(now, hold_back=min(hold_back, self.sim.config.lost_window_s / 2))

    def pump(self, now: float) -> None:
        session = self.session
        assert session is not None
        while (action := session.next_action()) is not None:
            if isinstance(action, Fetch):
                self.requests[(self.generation, action.request_id)] = action.kind
                self.result.requests += 1
                self.sim.to_origin(self, action, now)
            elif isinstance(action, Cancel):
                key = (self.generation, action.request_id)
                self.requests.pop(key, None)
                self.sim.cancel(self, key)
            elif isinstance(action, PlayFrom | Deliver):
                if not self.plan_done:
                    if self.held is None:
                        self.held = []
                        self.hold_until = now + 1.0
                        self.sim.push(self.hold_until, _TICK, self)
                    self.held.append(action)
                else:
                    self.media(action, now)
            elif isinstance(action, EndOfStream):
                self.ensure_buffer(now).end_of_stream(action.track, now)
            elif isinstance(action, Failed):
                self.result.failed = action.reason
        timer = session.get_timer()
        if timer is not None and (self.timer_at is None or timer < self.timer_at - 1e-12):
            self.timer_at = timer
            self.sim.push(timer, _TIMER, self)

    def ensure_buffer(self, now: float) -> PlayoutBuffer[None]:
        if self.buffer is None:
            assert self.session is not None
            tracks = list(self.session.tracks) or ["video"]
            self.buffer = PlayoutBuffer(tracks, BufferConfig())
            self.buffer.advance(now)
        return self.buffer

    def latency(self, now: float) -> float | None:
        buf = self.buffer
        if buf is None or buf.position_us is None:
            return None
        return WALL0 + now - buf.position_us / 1e6

    def media(self, action: PlayFrom | Deliver, now: float) -> None:
        buf = self.ensure_buffer(now)
        if isinstance(action, PlayFrom):
            if buf.state is PlayState.BUFFERING:
                shift = round(self.result.startup_extra_s * 1e6)
                buf.play_from(action.start_us - shift)
            return
        if action.duration_us <= 0:
            return
        buf.advance(now)
        latency = self.latency(now)
        if action.track == "video" and latency is not None:
            before = buf.track_level_s("video")
            self.policy.on_part(now, before, latency, action.duration_us / 1e6)
        if self.started_buffer is buf:  # nothing to watch for
            buf.push(action.track, action.start_us, action.duration_us, now, None)
            return
        was_started = buf.stats().started_at is not None
        buf.push(action.track, action.start_us, action.duration_us, now, None)
        if buf.stats().started_at is not None:
            self.started_buffer = buf
            if not was_started:
                self.on_started(now)

    def on_started(self, now: float) -> None:
        if self.result.started_at is None:
            self.result.started_at = now
        if self.gap_from is not None:
            self.past_stall_s += now - self.gap_from
            self.gap_from = None

    def release(self, now: float) -> None:
        """The startup plan is known: start with the held media."""
        self.plan_done = True
        held, self.held = self.held or [], None
        for action in held:
            self.media(action, now)

    # -- responses ---------------------------------------------------------------------------

    def arrive(
        self, key: tuple[int, int], status: int, body: bytes, now: float, seconds: float
    ) -> None:
        kind = self.requests.pop(key, None)
        session = self.session
        if kind is None or session is None:
            return
        request_id = key[1]
        self.result.bytes += len(body)
        if kind in ("part", "segment") and status == 200:
            if self.abr is not None:
                self.abr.on_download(len(body), seconds)
            if not self.plan_done and len(body) >= self.spec.abr.min_bytes:
                self.plan(now, len(body), seconds)
        session.on_response(request_id, status, body, now)
        self.pump(now)

    def plan(self, now: float, nbytes: int | None, seconds: float | None) -> None:
        tput = nbytes * 8 / max(seconds, 1e-4) if nbytes and seconds is not None else None
        self.ensure_abr()
        bitrate = self.abr.bitrate_bps if self.abr is not None else None
        plan = startup_plan(self.spec.rtt_s, tput, bitrate)
        self.result.startup_extra_s = plan.extra_s
        self.policy.start(plan)
        self.release(now)

    def ensure_abr(self) -> None:
        if self.abr is None and self.session is not None and self.session.renditions:
            self.abr = Abr(self.session.renditions, self.spec.abr)
            self.abr.follow(self.session.current_rendition("video"))

    # -- ticks -----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        session = self.session
        if session is None:
            return
        if not self.plan_done and self.held is not None and now >= self.hold_until - 1e-9:
            self.plan(now, None, None)
        self.ensure_abr()
        buf = self.buffer
        res = self.result
        part = self.sim.part_f
        td = self.sim.td_f
        if buf is not None:
            buf.advance(now)
        latency = self.latency(now)
        if buf is not None:
            stats = buf.stats(now)
            state = stats.state
            level = buf.level_s
            stalls = self.past_stalls + stats.stalls
            stall_s = self.past_stall_s + stats.stall_s
            played_s = self.past_played_s + stats.played_s
        else:
            state, level = PlayState.BUFFERING, 0.0
            stalls, stall_s, played_s = self.past_stalls, self.past_stall_s, self.past_played_s
        if self.gap_from is not None:
            stall_s += now - self.gap_from
        abr = self.abr
        obs = Observation(
            latency_s=latency,
            buffer_s=level,
            state=state,
            stalls=stalls,
            part_s=part,
            target_duration_s=td,
            throughput_bps=abr.throughput_bps if abr is not None else None,
            bitrate_bps=abr.bitrate_bps if abr is not None else None,
        )
        decision = self.policy.update(now, obs)
        self.target_s = decision.target_s
        lost = latency is not None and latency > self.sim.config.lost_window_s
        if (decision.jump or lost) and state is not PlayState.BUFFERING:
            self.restart(now)
        elif buf is not None and abs(buf.rate - decision.rate) > 1e-12:
            buf.set_rate(decision.rate, now)
        if abr is not None and state is not PlayState.BUFFERING and self.session is session:
            choice = abr.decide(now, level)
            if choice is not None and choice != session.current_rendition("video"):
                try:
                    session.switch(choice, now)
                    res.switches += 1
                except (RuntimeError, ValueError) as exc:
                    logger.debug("switch to %s refused: %s", choice, exc)
                self.pump(now)
        res.t.append(now)
        res.latency.append(latency if latency is not None else math.nan)
        res.buffer.append(level)
        res.rate.append(buf.rate if buf is not None else 1.0)
        res.target.append(decision.target_s)
        res.playing.append(state is PlayState.PLAYING)
        res.bitrate.append(abr.bitrate_bps if abr is not None else 0)
        res.stalls, res.stall_s, res.played_s = stalls, stall_s, played_s

    def fire_timer(self, now: float) -> None:
        self.timer_at = None
        session = self.session
        if session is None:
            return
        timer = session.get_timer()
        if timer is not None and timer <= now + 1e-9:
            session.handle_timer(now)
        self.pump(now)


class _Sim:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.now = 0.0
        self.heap: list[tuple[float, int, int, _Viewer | None, Any]] = []
        self.seq = 0
        self.events = 0
        self.rng = random.Random(config.seed)
        stream = config.stream
        self.store = Store()
        self.renditions = [
            RenditionSpec(
                id=f"v{bps // 1000}k",
                kind="video",
                codec="avc1.64001f",
                bandwidth=bps,
                average_bandwidth=bps,
                width=16 * (i + 1) * 20,
                height=9 * (i + 1) * 20,
                frame_rate=Fraction(30),
            )
            for i, bps in enumerate(stream.bitrates)
        ]
        spec = StreamSpec(
            name="live",
            renditions=tuple(self.renditions),
            part_target=stream.part_s,
            segment_target=stream.segment_s,
            window=Fraction(stream.window_s),
        )
        self.store.add_stream(spec)
        for r in self.renditions:
            self.store.set_init("live", r.id, bytes(stream.init_bytes))
        self.held: list[_Held] = []
        self.next_part = 0
        self.viewers = [_Viewer(self, i, v) for i, v in enumerate(config.viewers)]
        self.part_us = round(stream.part_s * 1_000_000)
        self.part_f = float(stream.part_s)
        self.part_num = stream.part_s.numerator
        self.part_den = stream.part_s.denominator
        self.td_f = float(math.ceil(stream.segment_s))

    def push(self, when: float, kind: int, viewer: _Viewer | None, extra: Any = None) -> None:
        """Schedule an event (ties: by kind, then in order of scheduling)."""
        self.seq += 1
        heapq.heappush(self.heap, (when, kind, self.seq, viewer, extra))

    def paused(self, t: float) -> float | None:
        """End of the pause ``t`` falls in, if any."""
        for start, length in self.config.pauses:
            if start <= t < start + length:
                return start + length
        return None

    # -- origin ------------------------------------------------------------------------------

    def publish(self, now: float) -> None:
        stream = self.config.stream
        k = self.next_part
        self.next_part += 1
        msn, index = divmod(k, stream.parts_per_segment)
        weight_rest = (stream.parts_per_segment - stream.keyframe_weight) / max(
            1, stream.parts_per_segment - 1
        )
        weight = stream.keyframe_weight if index == 0 else weight_rest
        if stream.parts_per_segment == 1:
            weight = 1.0
        noise = 1 + stream.size_jitter * (2 * self.rng.random() - 1)
        pdt_us = WALL0 * 1_000_000 + k * self.part_us
        part_f = self.part_f
        for r in self.renditions:
            size = max(200, round(r.bandwidth * part_f / 8 * weight * noise))
            self.store.add_part(
                "live", r.id, msn, index, bytes(size), stream.part_s, index == 0, pdt_us, now
            )
            if index == stream.parts_per_segment - 1:
                self.store.close_segment("live", r.id, msn, now)  # as the live pipeline does
        self.push(self.part_time(k + 1), _PUBLISH, None)
        if self.paused(now) is None:
            self.redecide(now)

    def part_time(self, k: int) -> float:
        stream = self.config.stream
        # float((k + 1) * part_s), without the Fraction: one correctly rounded division
        return (k + 1) * self.part_num / self.part_den + stream.publish_lag_s

    def to_origin(self, viewer: _Viewer, fetch: Fetch, now: float) -> None:
        path, _, query = fetch.path_and_query.partition("?")
        request = Request("GET", path, query, {}, "3")
        when = max(now, viewer.ready_at) + viewer.spec.rtt_s / 2
        key = (viewer.generation, fetch.request_id)
        self.push(when, _ORIGIN, viewer, (key, request))

    def cancel(self, viewer: _Viewer, key: tuple[int, int]) -> None:
        self.held = [h for h in self.held if not (h.viewer is viewer and h.key == key)]

    def receive(self, viewer: _Viewer, key: tuple[int, int], request: Request, now: float) -> None:
        held = _Held(viewer, key, request, now)
        if self.paused(now) is not None:
            self.held.append(held)
            return
        if not self.answer(held, now):
            self.held.append(held)

    def answer(self, held: _Held, now: float) -> bool:
        """Decide; send a ready answer. False when the request has to wait."""
        decision = decide(held.request, self.store, now, first_seen=held.first_seen)
        if isinstance(decision, Wait):
            self.push(decision.deadline, _WAKE, None)
            return False
        if isinstance(decision, Unclaimed):
            status, body = 404, b""
        else:
            assert isinstance(decision, Ready)
            status, body = decision.response.status, decision.response.body
        viewer = held.viewer
        transfer = viewer.link.send(now, len(body) + _HEADER_BYTES)
        seconds = transfer.last_byte - transfer.first_byte
        self.push(transfer.arrival, _ARRIVE, viewer, (held.key, status, body, seconds))
        return True

    def redecide(self, now: float) -> None:
        held, self.held = self.held, []
        for h in held:
            if not self.answer(h, now):
                self.held.append(h)

    # -- loop --------------------------------------------------------------------------------

    def run(self) -> SimResult:
        cfg = self.config
        self.push(self.part_time(0), _PUBLISH, None)
        for start, length in cfg.pauses:
            self.push(start + length, _PAUSE_END, None)
        for v in self.viewers:
            self.push(v.spec.join_s, _JOIN, v)
        heap = self.heap
        end = cfg.duration_s
        while heap and heap[0][0] <= end:
            when, kind, _, viewer, extra = heapq.heappop(heap)
            self.now = now = when
            self.events += 1
            if kind == _PUBLISH:
                self.publish(now)
            elif kind == _PAUSE_END or kind == _WAKE:
                if self.paused(now) is None:
                    self.redecide(now)
                continue
            if viewer is None:
                continue
            if kind == _ORIGIN:
                self.receive(viewer, extra[0], extra[1], now)
            elif kind == _ARRIVE:
                viewer.arrive(extra[0], extra[1], extra[2], now, extra[3])
            elif kind == _TIMER:
                viewer.fire_timer(now)
            elif kind == _TICK:
                if extra == "tick":
                    viewer.tick(now)
                    self.push(round(now + cfg.tick_s, 6), _TICK, viewer, "tick")
                elif not viewer.plan_done and viewer.held is not None:
                    if now >= viewer.hold_until - 1e-9:
                        viewer.plan(now, None, None)
            elif kind == _JOIN:
                viewer.begin(now)
                first = (math.floor(now / cfg.tick_s + 1e-9) + 1) * cfg.tick_s
                self.push(round(first, 6), _TICK, viewer, "tick")  # ticks aligned across viewers
        for v in self.viewers:
            v.result.stall_s = max(0.0, v.result.stall_s)
        return SimResult(cfg, tuple(v.result for v in self.viewers), self.events)


def simulate(config: SimConfig) -> SimResult:
    """Run ``config`` to its end (deterministic)."""
    return _Sim(config).run()
