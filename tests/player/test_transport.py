"""Player transports against real loopback servers (hypercorn for h1/h2, aioquic for h3)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import pytest
import pytest_asyncio

from llhls.errors import OriginError, PlayerError
from llhls.origin.h3 import H3Server, start_h3
from llhls.origin.http import TCPServer, start_tcp
from llhls.origin.messages import Request, Response
from llhls.origin.tls import TLSFiles, ensure_self_signed
from player.transport import (
    H3_GRACE_S,
    ConnectionLost,
    Fetcher,
    H1Fetcher,
    H2Fetcher,
    H3Fetcher,
    RequestTimeout,
    TicketCache,
    TLSVerificationError,
    TransportError,
    UnreachableError,
    connect,
    parse_origin,
)
from player.transport._common import Pending, Retry, WaitQueue, exchange
from player.transport.base import header_dict, response_head

Choice = Literal["auto", "h3", "h2", "h1"]


class App:
    """The handler: /bytes?n=N, /slow?ms=M, /hold (until released), anything else echoes."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.holding = 0

    async def __call__(self, request: Request) -> Response:
        args = dict(p.split("=", 1) for p in request.query.split("&") if "=" in p)
        if request.path == "/bytes":
            n = int(args.get("n", "0"))
            return Response(200, (("content-type", "application/octet-stream"),), _pattern(n))
        if request.path == "/slow":
            await asyncio.sleep(int(args.get("ms", "100")) / 1000)
            return Response(200, (), b"slow")
        if request.path == "/hold":
            self.holding += 1
            try:
                await self.release.wait()
            finally:
                self.holding -= 1
            return Response(200, (), b"released")
        text = f"{request.method} {request.path}?{request.query} v={request.http_version}"
        text += f" x={request.headers.get('x-test', '')}"
        return Response(200, (("x-echo", "1"), ("x-echo", "2")), text.encode())


def _pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


@dataclass
class Origin:
    tcp: TCPServer
    h3: H3Server | None
    app: App
    tls: TLSFiles

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.tcp.port}/"


async def _start(tls: TLSFiles, *, with_h3: bool = True) -> Origin:
    """TCP and UDP listeners on the same port number (retried if the UDP port is taken)."""
    app = App()
    for _ in range(20):
        tcp = await start_tcp(app, "127.0.0.1", 0, tls)
        if not with_h3:
            return Origin(tcp, None, app, tls)
        try:
            h3 = await start_h3(app, "127.0.0.1", tcp.port, tls.certfile, tls.keyfile)
        except OriginError:
            await tcp.close()
            continue
        return Origin(tcp, h3, app, tls)
    raise RuntimeError("no port free on both TCP and UDP")


async def _stop(origin: Origin) -> None:
    origin.app.release.set()
    if origin.h3 is not None:
        await origin.h3.close()
    await origin.tcp.close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return ensure_self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tickets(tmp_path: Path) -> TicketCache:
    return TicketCache(tmp_path / "tickets")


@pytest_asyncio.fixture
async def origin(tls_files: TLSFiles) -> AsyncIterator[Origin]:
    started = await _start(tls_files)
    yield started
    await _stop(started)


def _fetcher(origin: Origin, protocol: Choice, tickets: TicketCache, **kw: Any) -> Fetcher:
    where, _ = parse_origin(origin.url)
    if protocol == "h3":
        return H3Fetcher(where, cafile=origin.tls.certfile, tickets=tickets, **kw)
    if protocol == "h2":
        return H2Fetcher(where, cafile=origin.tls.certfile, **kw)
    return H1Fetcher(where, cafile=origin.tls.certfile, **kw)


ALL: list[Choice] = ["h3", "h2", "h1"]


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ALL)
async def test_bodies_headers_and_stats(
    origin: Origin, protocol: Choice, tickets: TicketCache
) -> None:
    fetcher = _fetcher(origin, protocol, tickets)
    try:
        for n in (0, 1, 20_000, 3_000_000):
            result = await fetcher.get(f"/bytes?n={n}")
            assert result.status == 200
            assert result.body == _pattern(n)
            assert result.headers["content-length"] == str(n)
            assert result.started <= result.first_byte <= result.finished
        echo = await fetcher.get("/é x?a=1", {"X-Test": "yes"})  # sent percent-encoded
        assert echo.body.startswith("GET /é x?a=1 v=".encode())
        assert echo.body.endswith(b"x=yes")
        assert echo.headers["x-echo"] == "1, 2"
        missing = await fetcher.get("/bytes?n=oops")
        assert missing.status == 500
    finally:
        await fetcher.close()
    stats = fetcher.stats
    assert stats.requests == 6
    assert stats.bytes_received == 1 + 20_000 + 3_000_000 + len(echo.body) + len(missing.body)
    assert stats.connections == 1
    assert stats.handshake_rtt_s is not None and stats.handshake_rtt_s > 0
    assert stats.zero_rtt is (False if protocol == "h3" else None)
    assert fetcher.protocol == {"h3": "h3", "h2": "h2", "h1": "http/1.1"}[protocol]


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ["h3", "h2"])
async def test_concurrent_gets_share_one_connection(
    origin: Origin, protocol: Choice, tickets: TicketCache
) -> None:
    fetcher = _fetcher(origin, protocol, tickets)
    try:
        t0 = time.monotonic()
        results = await asyncio.gather(*[fetcher.get("/slow?ms=200") for _ in range(20)])
        elapsed = time.monotonic() - t0
    finally:
        await fetcher.close()
    assert [r.body for r in results] == [b"slow"] * 20
    assert fetcher.stats.connections == 1
    assert elapsed < 1.5, "the 20 requests must run concurrently, not one after another"


@pytest.mark.asyncio
async def test_http1_pool_and_no_reuse(origin: Origin, tickets: TicketCache) -> None:
    keep = _fetcher(origin, "h1", tickets)
    fresh = _fetcher(origin, "h1", tickets, reuse=False)
    try:
        for _ in range(5):
            assert (await keep.get("/bytes?n=10")).status == 200
            assert (await fresh.get("/bytes?n=10")).status == 200
        results = await asyncio.gather(*[keep.get("/slow?ms=100") for _ in range(12)])
    finally:
        await keep.close()
        await fresh.close()
    assert fresh.stats.connections == 5
    assert [r.status for r in results] == [200] * 12
    assert keep.stats.connections == 6  # one reused, five more for the concurrent burst


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ALL)
async def test_timeout_then_connection_still_usable(
    origin: Origin, protocol: Choice, tickets: TicketCache
) -> None:
    fetcher = _fetcher(origin, protocol, tickets)
    try:
        assert (await fetcher.get("/bytes?n=5")).status == 200
        message = f"GET /hold on 127.0.0.1:{origin.tcp.port} ({fetcher.protocol}) timed out"
        with pytest.raises(RequestTimeout, match=rf"^{re.escape(message)} after 0\.2 s$"):
            await fetcher.get("/hold", timeout=0.2)
        for _ in range(100):  # the server sees the abandoned request go away
            if origin.app.holding == 0:
                break
            await asyncio.sleep(0.01)
        assert origin.app.holding == 0
        assert (await fetcher.get("/bytes?n=5")).status == 200
        waiter = asyncio.ensure_future(fetcher.get("/hold"))
        await asyncio.sleep(0.1)
        waiter.cancel()  # a cancelled long poll is abandoned on the wire too
        for _ in range(100):
            if origin.app.holding == 0:
                break
            await asyncio.sleep(0.01)
        assert origin.app.holding == 0
    finally:
        await fetcher.close()
    expected = 1 if protocol != "h1" else 2  # h1 can only abandon a request by closing
    assert fetcher.stats.connections == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ALL)
async def test_reconnects_after_the_server_restarts(
    tls_files: TLSFiles, protocol: Choice, tickets: TicketCache
) -> None:
    first = await _start(tls_files)
    port = first.tcp.port
    fetcher = _fetcher(first, protocol, tickets)
    try:
        assert (await fetcher.get("/bytes?n=3")).status == 200
        await _stop(first)
        app = App()
        tcp = await start_tcp(app, "127.0.0.1", port, tls_files)
        h3 = await start_h3(app, "127.0.0.1", port, tls_files.certfile, tls_files.keyfile)
        try:
            result = await fetcher.get("/bytes?n=3", timeout=5)
            assert result.body == _pattern(3)
        finally:
            await h3.close()
            await tcp.close()
    finally:
        await fetcher.close()
    assert fetcher.stats.connections == 2
    if protocol == "h3":  # the new server does not know the old ticket: full handshake
        assert fetcher.stats.zero_rtt is False


class DelayRelay(asyncio.DatagramProtocol):
    """A UDP relay adding ``delay`` seconds each way (one client at a time)."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        self.target, self.delay = target, delay
        self.transport: asyncio.DatagramTransport | None = None
        self.upstream: asyncio.DatagramTransport | None = None
        self.client: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client = addr
        loop = asyncio.get_running_loop()
        assert self.upstream is not None
        loop.call_later(self.delay, self.upstream.sendto, data)

    def back(self, data: bytes) -> None:
        if self.transport is not None and self.client is not None:
            self.transport.sendto(data, self.client)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: DelayRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        asyncio.get_running_loop().call_later(self.relay.delay, self.relay.back, data)


async def start_relay(port: int, delay: float) -> DelayRelay:
    loop = asyncio.get_running_loop()
    _, relay = await loop.create_datagram_endpoint(
        lambda: DelayRelay(("127.0.0.1", port), delay), local_addr=("127.0.0.1", 0)
    )
    upstream, _ = await loop.create_datagram_endpoint(
        lambda: _Upstream(relay), remote_addr=("127.0.0.1", port)
    )
    relay.upstream = upstream
    return relay


@pytest.mark.asyncio
async def test_ticket_cache_gives_zero_rtt_on_the_next_run(
    origin: Origin, tickets: TicketCache
) -> None:
    assert origin.h3 is not None
    relay = await start_relay(origin.h3.port, delay=0.025)  # 50 ms round trip
    assert relay.transport is not None
    port = relay.transport.get_extra_info("sockname")[1]
    url = f"https://127.0.0.1:{port}/"
    ttfb = []
    try:
        for run in range(3):
            fetcher = await connect(
                url, "h3", cafile=origin.tls.certfile, ticket_dir=tickets.directory
            )
            try:
                result = await fetcher.get("/bytes?n=20000")
                assert result.body == _pattern(20_000)
                ttfb.append(result.ttfb_s)
                assert fetcher.stats.zero_rtt is (run > 0)
            finally:
                await fetcher.close()
            assert tickets.path("127.0.0.1", port).exists(), "the fresh ticket is saved"
    finally:
        assert relay.transport is not None and relay.upstream is not None
        relay.transport.close()
        relay.upstream.close()
    cold, resumed = ttfb[0], min(ttfb[1:])
    assert cold >= 0.1, "a cold HTTP/3 request takes two round trips"
    assert resumed < 0.08, "with 0-RTT the request left in the first flight: one round trip"


@pytest.mark.asyncio
async def test_close_right_after_the_handshake_keeps_the_fresh_ticket(
    origin: Origin, tickets: TicketCache
) -> None:
    assert origin.h3 is not None
    relay = await start_relay(origin.h3.port, delay=0.025)
    assert relay.transport is not None and relay.upstream is not None
    where, _ = parse_origin(f"https://127.0.0.1:{relay.transport.get_extra_info('sockname')[1]}/")
    try:
        for run in range(3):
            fetcher = H3Fetcher(where, cafile=origin.tls.certfile, tickets=tickets)
            await fetcher.open()
            assert fetcher.stats.zero_rtt is (run > 0)
            await fetcher.close()  # the server's NewSessionTicket is still ~1 RTT away here
            assert tickets.path("127.0.0.1", where.port).exists()
    finally:
        relay.transport.close()
        relay.upstream.close()


@pytest.mark.asyncio
async def test_auto_prefers_http3(origin: Origin, tickets: TicketCache) -> None:
    fetcher = await connect(
        origin.url, "auto", cafile=origin.tls.certfile, ticket_dir=tickets.directory
    )
    try:
        assert fetcher.protocol == "h3"
        assert (await fetcher.get("/bytes?n=4")).body == _pattern(4)
    finally:
        await fetcher.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("udp", ["closed", "blackhole"])
async def test_auto_falls_back_to_http2_quickly(
    tls_files: TLSFiles, tickets: TicketCache, udp: str
) -> None:
    tcp_only = await _start(tls_files, with_h3=False)
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if udp == "blackhole":  # something holds the UDP port and never answers
            blackhole.bind(("127.0.0.1", tcp_only.tcp.port))
        t0 = time.monotonic()
        fetcher = await connect(
            tcp_only.url, "auto", cafile=tls_files.certfile, ticket_dir=tickets.directory
        )
        took = time.monotonic() - t0
        try:
            assert fetcher.protocol == "h2"
            assert (await fetcher.get("/bytes?n=4")).body == _pattern(4)
        finally:
            await fetcher.close()
    finally:
        blackhole.close()
        await _stop(tcp_only)
    assert took < 0.3
    if udp == "blackhole":
        assert took >= H3_GRACE_S * 0.9


def _closed_port() -> int:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ["h3", "h2", "h1", "auto"])
async def test_unreachable_is_a_clear_player_error(
    protocol: Choice, tickets: TicketCache, tls_files: TLSFiles
) -> None:
    url = f"https://127.0.0.1:{_closed_port()}/"
    t0 = time.monotonic()
    with pytest.raises(UnreachableError, match="127.0.0.1") as info:
        fetcher = await connect(
            url, protocol, cafile=tls_files.certfile, ticket_dir=tickets.directory
        )
        try:
            await fetcher.get("/", timeout=3)
        finally:
            await fetcher.close()
    assert isinstance(info.value, PlayerError)
    assert time.monotonic() - t0 < 1.0, "a closed port is reported at once, not after a timeout"
    fetcher = await connect("https://no-such-host.invalid:4433/", "h2")
    with pytest.raises(UnreachableError, match="no-such-host.invalid"):
        await fetcher.get("/", timeout=3)
    await fetcher.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ALL)
async def test_untrusted_certificate_is_a_tls_error(
    origin: Origin, protocol: Choice, tickets: TicketCache, tmp_path: Path
) -> None:
    stranger = ensure_self_signed(tmp_path / "other")
    fetcher = await connect(
        origin.url,
        protocol,
        cafile=stranger.certfile,
        ticket_dir=tickets.directory,
    )
    try:
        with pytest.raises(TLSVerificationError, match="127.0.0.1"):
            await fetcher.get("/", timeout=3)
    finally:
        await fetcher.close()
    insecure = await connect(origin.url, protocol, insecure=True, ticket_dir=tickets.directory)
    try:
        assert (await insecure.get("/bytes?n=2")).status == 200
    finally:
        await insecure.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("protocol", ["h2", "h1", "auto"])
async def test_plain_http_h1_and_h2c(protocol: Choice) -> None:
    app = App()
    server = await start_tcp(app, "127.0.0.1", 0, None)
    try:
        fetcher = await connect(server.url, protocol)
        try:
            result = await fetcher.get("/bytes?n=70000")
            assert result.body == _pattern(70_000)
            assert fetcher.protocol == ("h2" if protocol == "h2" else "http/1.1")
            echo = await fetcher.get("/x")
            assert echo.body.startswith(b"GET /x? v=" + (b"2" if protocol == "h2" else b"1.1"))
        finally:
            await fetcher.close()
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_h3_client_writes_a_qlog_trace(
    origin: Origin, tickets: TicketCache, tmp_path: Path
) -> None:
    qlog = tmp_path / "qlog"
    qlog.mkdir()
    fetcher = await connect(
        origin.url, "h3", cafile=origin.tls.certfile, ticket_dir=tickets.directory, qlog_dir=qlog
    )
    try:
        assert (await fetcher.get("/bytes?n=100")).status == 200
    finally:
        await fetcher.close()
    traces = list(qlog.glob("*.qlog"))
    assert len(traces) == 1
    assert '"vantage_point"' in traces[0].read_text()


# The pieces the three transports share.


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fetcher", "name"),
    [
        (lambda o: H1Fetcher(o), "HTTP/1.1"),
        (lambda o: H2Fetcher(o), "HTTP/2"),
        (lambda o: H3Fetcher(o, use_tickets=False), "HTTP/3"),
    ],
)
async def test_a_closed_fetcher_refuses_requests(fetcher: Any, name: str) -> None:
    where, _ = parse_origin("https://127.0.0.1:9/")
    closed: Fetcher = fetcher(where)
    await closed.close()
    await closed.close()  # idempotent
    with pytest.raises(TransportError, match=rf"^the {name} fetcher for 127\.0\.0\.1:9 is closed$"):
        await closed.get("/", timeout=1.0)


def test_response_heads_and_header_fields() -> None:
    fields: list[tuple[bytes | str, bytes | str]] = [
        (b":status", b"206"),
        (b"X-A", b"1"),
        ("x-a", "2"),
        (b":other", b"dropped"),
        (b"x-b", "\xe9".encode("latin-1")),
    ]
    assert response_head(fields) == (206, {"x-a": "1, 2", "x-b": "\xe9"})
    assert response_head([(b":status", b"2x"), (b"x", b"y")]) == (0, {"x": "y"})
    assert header_dict([(b"Host", b"a"), ("HOST", "b")]) == {"host": "a, b"}


@pytest.mark.asyncio
async def test_wait_queue_wakes_in_turn() -> None:
    queue = WaitQueue()
    woken: list[int] = []

    async def waiter(n: int) -> None:
        await queue.wait()
        woken.append(n)

    tasks = [asyncio.ensure_future(waiter(n)) for n in range(4)]
    await asyncio.sleep(0)
    tasks[0].cancel()  # a waiter that gave up is skipped
    await asyncio.sleep(0)
    queue.wake_one()
    await asyncio.sleep(0)
    assert woken == [1]
    queue.wake_all()
    await asyncio.gather(*tasks[1:])
    assert woken == [1, 2, 3]
    queue.wake_one()  # nobody waiting: nothing happens


@pytest.mark.asyncio
async def test_exchange_timeouts_and_lost_connections() -> None:
    loop = asyncio.get_running_loop()
    abandoned: list[Pending | None] = []

    async def never_sent() -> Pending:
        await asyncio.sleep(10)
        raise AssertionError("not reached")

    with pytest.raises(RequestTimeout, match="late"):
        await exchange(
            never_sent(),
            time.monotonic() + 0.05,
            abandoned.append,
            lambda: RequestTimeout("late"),
        )
    assert abandoned == [None]

    unanswered = Pending(loop.create_future())
    loop.call_soon(unanswered.fail, ConnectionLost("gone"))
    with pytest.raises(Retry):
        await exchange(unanswered, time.monotonic() + 5, abandoned.append, RequestTimeout)

    answered = Pending(loop.create_future())
    answered.answer(200, {})
    loop.call_soon(answered.fail, ConnectionLost("gone mid-body"))
    with pytest.raises(ConnectionLost, match="mid-body"):
        await exchange(answered, time.monotonic() + 5, abandoned.append, RequestTimeout)
    assert abandoned == [None]
