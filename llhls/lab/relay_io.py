"""The socket side of the impairment relay (see :mod:`llhls.lab.relay`).

Adapters only: they pump datagrams and TCP bytes through the pure
:class:`~llhls.lab.impair.Link` objects with one asyncio timer per link and
keep the per-packet work small (a dict lookup, one ``Link.enqueue``, a timer
at most; with no impairment, a direct send). A TCP link's modelled congestion
window holds chunks back in the link; the pipe stops reading its source socket
while more than :data:`TCP_UNSENT_MIN` bytes or one window wait there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from llhls.lab.impair import TCP_SEGMENT, Bottleneck, Link, LinkConfig, LinkStats

__all__ = ["UDP_IDLE_S", "Direction", "UdpRelay", "TcpRelay"]

log = logging.getLogger(__name__)

UDP_IDLE_S = 120.0
"""A UDP client mapping with no traffic for this long is closed."""

UDP_BATCH = 64
"""Datagrams read per wake-up of a UDP socket, at most."""

TIMER_SLACK = 0.0005
"""Timers are set this much early: asyncio's epoll wait rounds its timeout up to the
next millisecond, so a timer set on time fires 0.5 ms late on average; set early,
departures spread about +-0.5 ms around the model's times instead."""

TCP_RCVBUF = 32 * 1024
"""Receive buffer of relay sockets when a rate is set: limits hidden queueing in the kernel."""

TCP_UNSENT_MIN = 64 * 1024
"""A TCP pipe stops reading its source while the modelled sender holds back more than
this or its congestion window, whichever is larger (its send buffer), and reads again
below half of that."""


class Direction:
    """What all flows of one direction share: config, bottleneck, counters, seeds."""

    __slots__ = ("name", "config", "bottleneck", "stats", "seed", "flows", "segment")

    def __init__(self, name: str, config: LinkConfig, seed: int, start: float) -> None:
        self.name = name
        self.config = config
        self.bottleneck = Bottleneck(config.rate, config.queue_ms, start)
        self.stats = LinkStats()
        self.seed = seed
        self.flows = 0
        self.segment = (
            config.rate is not None
            or config.lossy
            or (config.tcp_cc != "none" and not config.transparent)
        )

    def link(self, stream: bool) -> Link[bytes]:
        self.flows += 1
        return Link(
            self.config,
            f"{self.seed}:{self.name}:{self.flows}",
            stream=stream,
            bottleneck=self.bottleneck,
            stats=self.stats,
        )


class Pump:
    """Moves one link's due packets to a sink with one asyncio timer."""

    __slots__ = ("loop", "link", "deliver", "timer", "when", "blocked", "after")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        link: Link[bytes],
        deliver: Callable[[list[bytes]], None],
    ) -> None:
        self.loop = loop
        self.link = link
        self.deliver = deliver
        self.timer: asyncio.TimerHandle | None = None
        self.when = 0.0
        self.blocked = False
        self.after: Callable[[], None] | None = None
        """Called after each firing (a TCP pipe checks its send buffer)."""

    def arm(self) -> None:
        """Make sure a timer runs at the link's next event. Departures never move
        earlier, but new data held by a congestion window may add an earlier event."""
        if self.blocked:
            return
        when = self.link.next_departure()
        if when is None:
            return
        if self.timer is not None:
            if self.when <= when:
                return
            self.timer.cancel()
        self.when = when
        self.timer = self.loop.call_at(when - TIMER_SLACK, self.fire, when)

    def fire(self, when: float) -> None:
        self.timer = None
        items = self.link.pop_due(max(self.loop.time(), when))
        if items:
            self.deliver(items)
        if self.after is not None:
            self.after()
        self.arm()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


# --------------------------------------------------------------------------- UDP


class UdpFlow:
    """One client address: an upstream socket and a pump per direction."""

    __slots__ = ("relay", "addr", "sock", "up", "down", "last_seen")

    def __init__(self, relay: UdpRelay, addr: Any) -> None:
        self.relay = relay
        self.addr = addr
        loop = relay.loop
        self.sock = socket.socket(relay.target_family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.connect(relay.target)
        except OSError:
            self.sock.close()
            raise
        self.up = Pump(loop, relay.up.link(False), self._send_up)
        self.down = Pump(loop, relay.down.link(False), self._send_down)
        self.last_seen = loop.time()
        loop.add_reader(self.sock.fileno(), self._readable)

    def _send_up(self, items: list[bytes]) -> None:
        send = self.sock.send
        for data in items:
            with contextlib.suppress(OSError):
                send(data)

    def _send_down(self, items: list[bytes]) -> None:
        sendto, addr = self.relay.sock.sendto, self.addr
        for data in items:
            with contextlib.suppress(OSError):
                sendto(data, addr)

    def _readable(self) -> None:
        relay = self.relay
        direct = relay.down.config.transparent
        stats = relay.down.stats
        recv = self.sock.recv
        now = self.last_seen = relay.loop.time()
        for _ in range(UDP_BATCH):
            try:
                data = recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # ICMP errors from the target (nobody listening)
                continue
            if direct:
                stats.packets += 1
                stats.bytes += len(data)
                with contextlib.suppress(OSError):
                    relay.sock.sendto(data, self.addr)
            elif self.down.link.enqueue(data, len(data), now):
                self.down.arm()

    def close(self) -> None:
        self.up.cancel()
        self.down.cancel()
        self.relay.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class UdpRelay:
    """The listening UDP socket and the client mappings."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        target_family: int,
        target: Any,
        up: Direction,
        down: Direction,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.target_family = target_family
        self.target = target
        self.up = up
        self.down = down
        self.flows: dict[Any, UdpFlow] = {}
        self.opened = 0
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._readable)
        self._sweeper = loop.call_later(UDP_IDLE_S / 4, self._sweep)

    def _readable(self) -> None:
        recvfrom = self.sock.recvfrom
        flows = self.flows
        direct = self.up.config.transparent
        stats = self.up.stats
        now = self.loop.time()
        for _ in range(UDP_BATCH):
            try:
                data, addr = recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue
            flow = flows.get(addr)
            if flow is None:
                try:
                    flow = flows[addr] = UdpFlow(self, addr)
                except OSError as exc:
                    log.warning("relay: cannot open a UDP socket for %s: %s", addr, exc)
                    continue
                self.opened += 1
                log.debug("relay: UDP client %s", addr)
            flow.last_seen = now
            if direct:
                stats.packets += 1
                stats.bytes += len(data)
                with contextlib.suppress(OSError):
                    flow.sock.send(data)
            elif flow.up.link.enqueue(data, len(data), now):
                flow.up.arm()

    def _sweep(self) -> None:
        limit = self.loop.time() - UDP_IDLE_S
        for addr, flow in list(self.flows.items()):
            if flow.last_seen < limit and not len(flow.up.link) and not len(flow.down.link):
                flow.close()
                del self.flows[addr]
        self._sweeper = self.loop.call_later(UDP_IDLE_S / 4, self._sweep)

    def close(self) -> None:
        self._sweeper.cancel()
        for flow in self.flows.values():
            flow.close()
        self.flows.clear()
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


# --------------------------------------------------------------------------- TCP


class Pipe:
    """One direction of one TCP connection: source socket -> link -> sink socket."""

    __slots__ = (
        "loop",
        "conn",
        "direction",
        "pump",
        "source",
        "sink",
        "source_done",
        "finished",
        "paused_queue",
        "paused_unsent",
        "paused_sink",
        "reading_paused",
        "resume_timer",
        "hold_until",
        "held",
        "hold_timer",
    )

    def __init__(
        self,
        conn: TcpConn,
        direction: Direction,
        hold_until: float,
    ) -> None:
        self.loop = conn.loop
        self.conn = conn
        self.direction = direction
        self.pump = Pump(self.loop, direction.link(True), self._write)
        self.pump.blocked = True  # until the sink exists
        if self.pump.link.sender is not None:
            self.pump.after = self._check_unsent
        self.source: asyncio.Transport | None = None
        self.sink: asyncio.Transport | None = None
        self.source_done = False
        self.finished = False
        self.paused_queue = False
        self.paused_unsent = False
        self.paused_sink = False
        self.reading_paused = False
        self.resume_timer: asyncio.TimerHandle | None = None
        self.hold_until = hold_until
        self.held: list[bytes] = []
        self.hold_timer: asyncio.TimerHandle | None = None

    # data in
    def feed(self, data: bytes) -> None:
        now = self.loop.time()
        if now < self.hold_until:  # the emulated handshake is not over: sent later
            self.held.append(data)
            if self.hold_timer is None:
                self.hold_timer = self.loop.call_at(self.hold_until, self._release)
            return
        self._enqueue(data, now)

    def _release(self) -> None:
        self.hold_timer = None
        held, self.held = self.held, []
        now = max(self.loop.time(), self.hold_until)
        for data in held:
            self._enqueue(data, now)
        self._maybe_finish()

    def _enqueue(self, data: bytes, now: float) -> None:
        direction = self.direction
        pump = self.pump
        link = pump.link
        if (
            direction.config.transparent
            and not pump.blocked
            and not len(link)
            and self.sink is not None
        ):
            direction.stats.packets += 1
            direction.stats.bytes += len(data)
            self.sink.write(data)
            return
        if direction.segment and len(data) > TCP_SEGMENT:
            view = memoryview(data)
            for offset in range(0, len(data), TCP_SEGMENT):
                chunk = bytes(view[offset : offset + TCP_SEGMENT])
                link.enqueue(chunk, len(chunk), now)
        else:
            link.enqueue(data, len(data), now)
        pump.arm()
        sender = link.sender
        if (
            sender is not None
            and not self.paused_unsent
            and link.unsent_bytes > max(TCP_UNSENT_MIN, sender.cwnd)
        ):
            self.paused_unsent = True
            self._update_reading()
        if direction.config.rate is not None and not self.paused_queue:
            if link.backlog(now) > direction.bottleneck.queue_s:
                self.paused_queue = True
                self._update_reading()
                self._schedule_resume()

    def _schedule_resume(self) -> None:
        bottleneck = self.direction.bottleneck
        when = bottleneck.drain_time(bottleneck.queue_s)
        self.resume_timer = self.loop.call_at(when, self._check_resume)

    def _check_resume(self) -> None:
        self.resume_timer = None
        limit = self.direction.bottleneck.queue_s + 1e-6
        if self.pump.link.backlog(self.loop.time()) > limit:
            self._schedule_resume()
        else:
            self.paused_queue = False
            self._update_reading()

    def _check_unsent(self) -> None:
        if self.paused_unsent:
            link = self.pump.link
            sender = link.sender
            assert sender is not None
            if link.unsent_bytes <= max(TCP_UNSENT_MIN, sender.cwnd) / 2:
                self.paused_unsent = False
                self._update_reading()

    def set_sink_paused(self, paused: bool) -> None:
        self.paused_sink = paused
        self._update_reading()

    def _update_reading(self) -> None:
        want = self.paused_queue or self.paused_unsent or self.paused_sink
        if want != self.reading_paused and self.source is not None:
            self.reading_paused = want
            if want:
                self.source.pause_reading()
            else:
                self.source.resume_reading()

    def set_sink(self, sink: asyncio.Transport) -> None:
        self.sink = sink
        self.pump.blocked = False
        self.pump.arm()
        self._maybe_finish()

    def source_eof(self) -> None:
        self.source_done = True
        self._maybe_finish()

    # data out
    def _write(self, items: list[bytes]) -> None:
        if self.sink is not None:
            self.sink.write(items[0] if len(items) == 1 else b"".join(items))
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if (
            self.finished
            or not self.source_done
            or self.sink is None
            or self.held
            or len(self.pump.link)
        ):
            return
        self.finished = True
        if self.sink.can_write_eof() and not self.sink.is_closing():
            # the peer may be gone already (ENOTCONN): nothing is left to finish then
            with contextlib.suppress(OSError):
                self.sink.write_eof()
        self.conn.pipe_finished()

    def close(self) -> None:
        self.pump.cancel()
        for timer in (self.resume_timer, self.hold_timer):
            if timer is not None:
                timer.cancel()
        self.resume_timer = self.hold_timer = None


class Side(asyncio.Protocol):
    """The protocol of one of a connection's two sockets."""

    def __init__(self, conn: TcpConn, client: bool) -> None:
        self.conn = conn
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.conn.side_connected(transport, self.client)

    def data_received(self, data: bytes) -> None:
        (self.conn.up if self.client else self.conn.down).feed(data)

    def eof_received(self) -> bool:
        (self.conn.up if self.client else self.conn.down).source_eof()
        return True

    def pause_writing(self) -> None:
        (self.conn.down if self.client else self.conn.up).set_sink_paused(True)

    def resume_writing(self) -> None:
        (self.conn.down if self.client else self.conn.up).set_sink_paused(False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.side_lost(self.client, exc)


class TcpConn:
    """One relayed TCP connection."""

    def __init__(self, relay: TcpRelay) -> None:
        self.relay = relay
        self.loop = relay.loop
        self.client: asyncio.Transport | None = None
        self.server: asyncio.Transport | None = None
        self.up: Pipe
        self.down: Pipe
        self.closed = False
        self.connect_task: asyncio.Task[None] | None = None

    def side_connected(self, transport: asyncio.Transport, client: bool) -> None:
        relay = self.relay
        if relay.rcvbuf:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, TCP_RCVBUF)
        if client:
            now = self.loop.time()
            self.client = transport
            self.up = Pipe(self, relay.up, now + relay.handshake_s)
            self.down = Pipe(self, relay.down, now)
            self.up.source = transport
            self.down.set_sink(transport)
            relay.connections.add(self)
            relay.accepted += 1
            self.connect_task = self.loop.create_task(self._connect())
        else:
            if self.closed:
                transport.abort()
                return
            self.server = transport
            self.down.source = transport
            self.up.set_sink(transport)

    async def _connect(self) -> None:
        host, port = self.relay.target[:2]
        try:
            await self.loop.create_connection(lambda: Side(self, False), host, port)
        except OSError as exc:
            log.warning("relay: cannot connect to %s:%s: %s", host, port, exc)
            self.close(abort=True)

    def pipe_finished(self) -> None:
        if self.up.finished and self.down.finished:
            self.close()

    def side_lost(self, client: bool, exc: Exception | None) -> None:
        # Both sockets stay open after an EOF (half-close), so a loss we did not cause
        # is a reset or a write error: end the whole connection at once.
        if not self.closed:
            log.debug("relay: TCP %s side lost: %s", "client" if client else "server", exc)
            self.close(abort=exc is not None)

    def close(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for pipe in (self.up, self.down):
            pipe.close()
        for transport in (self.client, self.server):
            if transport is None:
                continue
            if abort:
                transport.abort()
            else:
                transport.close()
        if self.connect_task is not None and not self.connect_task.done():
            self.connect_task.cancel()
        self.relay.connections.discard(self)


class TcpRelay:
    """The listening TCP socket and its connections."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        target: Any,
        up: Direction,
        down: Direction,
        handshake: bool,
    ) -> None:
        self.loop = loop
        self.target = target
        self.up = up
        self.down = down
        self.handshake_s = (up.config.delay_ms + down.config.delay_ms) / 1000 if handshake else 0.0
        self.rcvbuf = up.config.rate is not None or down.config.rate is not None
        self.connections: set[TcpConn] = set()
        self.accepted = 0
        self.server: asyncio.Server | None = None

    def protocol(self) -> Side:
        return Side(TcpConn(self), True)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close(abort=True)
