"""The impairment relay: asyncio UDP and TCP proxies around :mod:`llhls.lab.impair`.

There is no tc/netem here, so network conditions are made in user space: the
relay listens on one port (UDP and/or TCP, the same number for both), forwards
to one target, and pushes every datagram and every TCP chunk through a pure
:class:`~llhls.lab.impair.Link` per flow and direction. All flows of one
direction share one :class:`~llhls.lab.impair.Bottleneck` (one access link:
parallel connections share its rate, as they would on a real one), while
delay, jitter and loss are drawn per flow, so a late TCP chunk of one
connection never holds up another.

* UDP: one upstream socket per client address (the server sees one source
  port per client), closed after :data:`UDP_IDLE_S` without traffic.
* TCP: one upstream connection per accepted one, two pipes. The stream is cut
  into :data:`~llhls.lab.impair.TCP_SEGMENT`-byte chunks when a rate or loss
  needs per-packet timing. Losses become late delivery (see
  :mod:`~llhls.lab.impair`); a full queue stops reading the source socket.
  The relay accepts a connection at once, so a TCP handshake would cost no
  emulated round trip; to keep the cost of new connections honest, the
  client's first bytes are held until one emulated RTT (up + down delay)
  after the accept (``tcp_handshake``), which is when a real client could
  have sent them. The relay terminates TCP, so the real senders never see
  the emulated path; by default (``LinkConfig.tcp_cc="reno"``, ``--tcp-cc
  reno``) each connection's link models its sender's congestion window per
  direction instead: slow start from 10 segments, halving on a 'lost'
  segment, +1 segment per RTT, restart after idling, with the round trip
  taken as the sum of both directions' delays. So TCP pays for slow start
  and loss as QUIC (whose datagrams are really dropped) does. ``--tcp-cc
  none`` turns it off (rate limits alone bound TCP).

The sockets are pumped by :mod:`llhls.lab.relay_io`; this module holds the
API (:func:`start_relay`, :class:`Relay`) and the ``llhls relay`` command.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast, get_args

from llhls.errors import ConfigError
from llhls.lab.impair import (
    ConstantRate,
    GilbertElliott,
    LinkConfig,
    LinkStats,
    RateSchedule,
    TcpCc,
    parse_trace,
)
from llhls.lab.relay_io import UDP_IDLE_S, Direction, TcpRelay, UdpRelay

__all__ = [
    "UDP_IDLE_S",
    "Relay",
    "RelayStats",
    "start_relay",
    "load_trace",
    "add_relay_parser",
    "relay_configs",
    "run_relay",
]

log = logging.getLogger(__name__)


def load_trace(path: str | Path) -> RateSchedule:
    """Read a throughput or Mahimahi trace file (see :func:`~llhls.lab.impair.parse_trace`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigError(f"cannot read trace file {str(p)!r}: {exc}") from exc
    return parse_trace(text, name=p.name)


@dataclass(frozen=True, slots=True)
class RelayStats:
    """Counters of a relay since it started."""

    up: LinkStats
    """Client -> server, all flows."""
    down: LinkStats
    """Server -> client, all flows."""
    udp_flows: int
    """UDP client mappings opened."""
    tcp_connections: int
    """TCP connections accepted."""


# --------------------------------------------------------------------------- API


class Relay:
    """A running relay: :attr:`port`, :meth:`stats`, :meth:`close`."""

    def __init__(
        self,
        host: str,
        port: int,
        started_at: float,
        up: Direction,
        down: Direction,
        udp: UdpRelay | None,
        tcp: TcpRelay | None,
    ) -> None:
        self.host = host
        """Address listened on."""
        self.port = port
        """Port listened on (the same for UDP and TCP)."""
        self.started_at = started_at
        """Event-loop time of the start: time 0 of a rate trace."""
        self._up = up
        self._down = down
        self._udp = udp
        self._tcp = tcp
        self._closed = False

    def stats(self) -> RelayStats:
        """Counters so far (copies)."""
        return RelayStats(
            up=replace(self._up.stats),
            down=replace(self._down.stats),
            udp_flows=self._udp.opened if self._udp else 0,
            tcp_connections=self._tcp.accepted if self._tcp else 0,
        )

    def close(self) -> None:
        """Stop listening and drop every flow and connection."""
        if self._closed:
            return
        self._closed = True
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()

    async def wait_closed(self) -> None:
        """Wait until the TCP listener has shut down."""
        if self._tcp is not None and self._tcp.server is not None:
            await self._tcp.server.wait_closed()

    async def __aenter__(self) -> Relay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> tuple[int, Any]:
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"cannot resolve {host!r}: {exc}") from exc
    family, _, _, _, addr = infos[0]
    return family, addr


def _bind(family: int, kind: int, addr: Any) -> socket.socket:
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    return sock


async def start_relay(
    listen_host: str,
    listen_port: int,
    to_host: str,
    to_port: int,
    *,
    udp: bool,
    tcp: bool,
    config_up: LinkConfig,
    config_down: LinkConfig,
    seed: int = 0,
    tcp_handshake: bool = True,
) -> Relay:
    """Listen on ``listen_host:listen_port`` (0: any free port, the same for UDP and
    TCP) and relay to ``to_host:to_port`` with ``config_up`` applied client->server
    and ``config_down`` server->client. ``tcp_handshake`` holds a new connection's
    first client bytes for one emulated RTT (see the module notes).
    Raises :class:`ConfigError` if it cannot listen or resolve."""
    if not (udp or tcp):
        raise ConfigError("the relay needs --udp, --tcp or both")
    loop = asyncio.get_running_loop()
    family, listen_addr = await _resolve(loop, listen_host, listen_port)
    target_family, target = await _resolve(loop, to_host, to_port)
    rtt_ms = config_up.delay_ms + config_down.delay_ms
    config_up, config_down = config_up.with_rtt(rtt_ms), config_down.with_rtt(rtt_ms)

    tcp_sock = udp_sock = None
    for _ in range(50 if listen_port == 0 else 1):
        try:
            first = _bind(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM, listen_addr)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {listen_host}:{listen_port}: {exc}") from exc
        port = first.getsockname()[1]
        if not (tcp and udp):
            tcp_sock, udp_sock = (first, None) if tcp else (None, first)
            break
        try:
            udp_sock = _bind(family, socket.SOCK_DGRAM, (listen_addr[0], port, *listen_addr[2:]))
        except OSError as exc:
            first.close()
            if listen_port != 0:
                raise ConfigError(f"cannot listen on UDP {listen_host}:{port}: {exc}") from exc
            continue
        tcp_sock = first
        break
    else:
        raise ConfigError("no port was free for both UDP and TCP")

    started_at = loop.time()
    up = Direction("up", config_up, seed, started_at)
    down = Direction("down", config_down, seed, started_at)
    udp_relay = (
        UdpRelay(loop, udp_sock, target_family, target, up, down) if udp_sock is not None else None
    )
    tcp_relay = None
    if tcp_sock is not None:
        tcp_relay = TcpRelay(loop, target, up, down, tcp_handshake)
        tcp_sock.listen(512)
        tcp_sock.setblocking(False)
        tcp_relay.server = await loop.create_server(tcp_relay.protocol, sock=tcp_sock)
    log.info(
        "relay %s:%d -> %s:%d (%s): up %s; down %s",
        listen_host,
        port,
        to_host,
        to_port,
        "+".join(p for p, on in (("UDP", udp), ("TCP", tcp)) if on),
        config_up.describe(),
        config_down.describe(),
    )
    return Relay(listen_host, port, started_at, up, down, udp_relay, tcp_relay)


# --------------------------------------------------------------------------- CLI


def add_relay_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``llhls relay`` to an ``add_subparsers()`` object; returns its parser."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "relay",
        help="impairment relay: delay, jitter, loss and rate limits for UDP and TCP",
        description="Forward UDP datagrams and/or TCP connections from --listen to --to, "
        "impaired in user space (no tc/netem needed). Every option applies to EACH "
        "direction separately: --delay-ms 25 gives a 50 ms round trip, --loss 0.01 loses "
        "1 % of the packets each way. All connections and UDP clients share one rate "
        "limit per direction. TCP cannot lose bytes: a 'lost' 1448-byte segment arrives "
        "late instead (--tcp-loss-penalty-ms), and the TCP sender's congestion window is "
        "emulated per connection and direction (--tcp-cc). Runs until Ctrl-C or --duration.",
    )
    p.add_argument(
        "--listen",
        required=True,
        metavar="[HOST:]PORT",
        help="where to listen (host 127.0.0.1 by default; port 0 = any free one, printed)",
    )
    p.add_argument("--to", required=True, metavar="HOST:PORT", help="the server to relay to")
    p.add_argument("--udp", action="store_true", help="relay UDP (HTTP/3)")
    p.add_argument("--tcp", action="store_true", help="relay TCP (HTTP/1.1, HTTP/2); neither: both")
    p.add_argument(
        "--delay-ms",
        default="0",
        metavar="D",
        help="one-way delay per direction in ms: the round trip grows by 2 x D (default 0)",
    )
    p.add_argument(
        "--jitter-ms",
        default="0",
        metavar="J",
        help="per-packet delay varies uniformly within D +- J ms; never reorders (default 0)",
    )
    p.add_argument(
        "--loss",
        default="0",
        metavar="P",
        help="random loss per packet and direction: 0.01 or 1%% (default 0)",
    )
    p.add_argument(
        "--burst-loss",
        default=None,
        metavar="P_GB,P_BG[,LOSS_BAD]",
        help="Gilbert-Elliott burst loss: per-packet chance to enter the bad state, to leave "
        "it, and loss in it (default 1); --loss applies in the good state. Mean loss = "
        "P_GB/(P_GB+P_BG) x LOSS_BAD; mean burst 1/P_BG packets. 3 %% in bursts of 4: "
        "0.0077,0.25",
    )
    p.add_argument(
        "--burst-slot-ms",
        default="1",
        metavar="MS",
        help="the burst-loss chain also steps once per MS of idle time, so a burst is a "
        "short stretch of time and packets seconds apart see the mean loss, not the rest "
        "of one burst (default 1; 0: steps per packet only)",
    )
    rate = p.add_mutually_exclusive_group()
    rate.add_argument(
        "--rate-mbps",
        default=None,
        metavar="R",
        help="rate limit per direction, Mbit/s of payload",
    )
    rate.add_argument(
        "--trace",
        default=None,
        metavar="FILE",
        help="rate from a trace, looped: 'time_s<TAB>Mbit/s' lines (shared/traces/network) "
        "or a Mahimahi file (one ms per line = one 1500-byte delivery)",
    )
    p.add_argument(
        "--queue-ms",
        default="200",
        metavar="Q",
        help="drop-tail queue of the rate limit, in ms of waiting (default 200)",
    )
    p.add_argument(
        "--tcp-loss-penalty-ms",
        default=None,
        metavar="MS",
        help="how late a 'lost' TCP segment arrives (default 1.25 x RTT, at least 1)",
    )
    p.add_argument(
        "--tcp-cc",
        default="reno",
        choices=get_args(TcpCc),
        help="emulated congestion window of each TCP sender: 'reno' (default) slow-starts "
        "from 10 segments, halves the window on a 'lost' segment (once per window), grows it "
        "by 1 segment per RTT and restarts it after idling longer than max(1 s, 2 x RTT); "
        "RTT = the sum of both directions' delays. 'none': only the rate limits TCP (faster "
        "than a real TCP under loss and at the start of a transfer)",
    )
    p.add_argument(
        "--no-handshake-delay",
        action="store_true",
        help="do not charge new TCP connections one emulated RTT before their first bytes",
    )
    p.add_argument("--seed", default="0", metavar="S", help="seed of every random draw (0)")
    p.add_argument(
        "--duration",
        default=None,
        metavar="S",
        help="stop after S seconds (default: until Ctrl-C)",
    )
    return p


def _number(option: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{option} wants a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{option} must be a number >= 0, got {text!r}")
    return value


def _probability(option: str, text: str) -> float:
    percent = text.strip().endswith("%")
    value = _number(option, text.strip().rstrip("%")) / (100 if percent else 1)
    if value > 1:
        raise ConfigError(f"{option} is a probability in 0..1 (or 0..100%), got {text!r}")
    return value


def _address(option: str, text: str, default_host: str | None) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep:
        if default_host is None:
            raise ConfigError(f"{option} wants HOST:PORT, got {text!r}")
        host = default_host
    host = host.strip("[]") or (default_host or "")
    if not host:
        raise ConfigError(f"{option} wants HOST:PORT, got {text!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{option}: not a port number: {port_text!r}") from None
    if not 0 <= port <= 65535 or (default_host is None and port == 0):
        raise ConfigError(f"{option}: port out of range: {port}")
    return host, port


def _burst(text: str | None, slot_text: str) -> GilbertElliott | None:
    slot_ms = _number("--burst-slot-ms", slot_text)
    if text is None:
        return None
    return replace(GilbertElliott.parse(text), slot_ms=slot_ms)


def _tcp_cc(text: str) -> TcpCc:
    for choice in get_args(TcpCc):
        if text == choice:
            return cast(TcpCc, choice)
    raise ConfigError(f"--tcp-cc wants one of {', '.join(get_args(TcpCc))}, got {text!r}")


def relay_configs(args: argparse.Namespace) -> tuple[LinkConfig, LinkConfig]:
    """The (up, down) link configs the options describe; raises :class:`ConfigError`."""
    rate: RateSchedule | None = None
    if args.rate_mbps is not None:
        rate = ConstantRate(_number("--rate-mbps", args.rate_mbps))
    elif args.trace is not None:
        rate = load_trace(args.trace)
    penalty = args.tcp_loss_penalty_ms
    config = LinkConfig(
        delay_ms=_number("--delay-ms", args.delay_ms),
        jitter_ms=_number("--jitter-ms", args.jitter_ms),
        loss=_probability("--loss", args.loss),
        burst=_burst(args.burst_loss, args.burst_slot_ms),
        rate=rate,
        queue_ms=_number("--queue-ms", args.queue_ms),
        tcp_loss_penalty_ms=None if penalty is None else _number("--tcp-loss-penalty-ms", penalty),
        tcp_cc=_tcp_cc(args.tcp_cc),
    )
    return config, config


def run_relay(args: argparse.Namespace, announce: Callable[[str], None] | None = None) -> int:
    """``llhls relay``: run until Ctrl-C or ``--duration``; returns the exit status."""
    say = announce if announce is not None else (lambda text: print(text, flush=True))
    up, down = relay_configs(args)
    listen_host, listen_port = _address("--listen", args.listen, "127.0.0.1")
    to_host, to_port = _address("--to", args.to, None)
    try:
        seed = int(args.seed)
    except ValueError:
        raise ConfigError(f"--seed wants an integer, got {args.seed!r}") from None
    duration = None if args.duration is None else _number("--duration", args.duration)
    udp, tcp = (args.udp, args.tcp) if (args.udp or args.tcp) else (True, True)

    async def serve() -> RelayStats:
        relay = await start_relay(
            listen_host,
            listen_port,
            to_host,
            to_port,
            udp=udp,
            tcp=tcp,
            config_up=up,
            config_down=down,
            seed=seed,
            tcp_handshake=not args.no_handshake_delay,
        )
        protocols = "+".join(p for p, on in (("UDP", udp), ("TCP", tcp)) if on)
        say(
            f"relay: {protocols} {listen_host}:{relay.port} -> {to_host}:{to_port}; "
            f"each direction: {up.describe()}"
        )
        try:
            if duration is None:
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(duration)
        finally:
            relay.close()
            await relay.wait_closed()
        return relay.stats()

    started = time.monotonic()
    stats = asyncio.run(serve())
    say(
        f"relay: {time.monotonic() - started:.1f} s; up {stats.up.packets} packets "
        f"{stats.up.bytes} B (lost {stats.up.lost}, queue drops {stats.up.queue_drops}, "
        f"late {stats.up.penalized}, cwnd cuts {stats.up.cwnd_cuts}); down "
        f"{stats.down.packets} packets {stats.down.bytes} B (lost {stats.down.lost}, "
        f"queue drops {stats.down.queue_drops}, late {stats.down.penalized}, "
        f"cwnd cuts {stats.down.cwnd_cuts})"
    )
    return 0
