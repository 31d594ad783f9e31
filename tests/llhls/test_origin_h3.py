"""Loopback tests of the HTTP/3 adapter (aioquic), on port 0 only, with a raw aioquic client."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import pytest
import pytest_asyncio
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol, QuicStreamHandler
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, QuicEvent
from aioquic.tls import SessionTicket

from llhls.errors import OriginError
from llhls.origin.h3 import H3Server, SessionTicketStore, start_h3
from llhls.origin.messages import Request, Response
from llhls.origin.tls import TLSFiles, ensure_self_signed

Reply = tuple[int, dict[str, str], bytes]


class Client(QuicConnectionProtocol):
    """A minimal HTTP/3 client: H3Connection made at once, so requests can go in 0-RTT."""

    def __init__(self, quic: QuicConnection, stream_handler: QuicStreamHandler | None = None):
        super().__init__(quic, stream_handler)
        self.h3 = H3Connection(quic)
        self.handshake: asyncio.Future[HandshakeCompleted] = self._loop.create_future()
        self._replies: dict[int, asyncio.Future[Reply]] = {}
        self._partial: dict[int, tuple[int, dict[str, str], list[bytes]]] = {}

    def send(self, method: str, path: str, body: bytes = b"") -> asyncio.Future[Reply]:
        stream_id = self._quic.get_next_available_stream_id()
        fields = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", path.encode()),
            (b"x-test", b"hi"),
        ]
        self.h3.send_headers(stream_id, fields, end_stream=not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=True)
        future: asyncio.Future[Reply] = self._loop.create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._replies[stream_id] = future
        self.transmit()
        return future

    def reset(self, future: asyncio.Future[Reply]) -> None:
        for stream_id, item in list(self._replies.items()):
            if item is future:
                self._quic.reset_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
                self._quic.stop_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
                del self._replies[stream_id]
                self.transmit()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted) and not self.handshake.done():
            self.handshake.set_result(event)
        if isinstance(event, ConnectionTerminated):
            for future in self._replies.values():
                future.set_exception(ConnectionError(event.reason_phrase))
            self._replies.clear()
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                fields = {k.decode(): v.decode() for k, v in h3_event.headers}
                status = int(fields.pop(":status"))
                self._partial[h3_event.stream_id] = (status, fields, [])
            elif isinstance(h3_event, DataReceived) and h3_event.stream_id in self._partial:
                self._partial[h3_event.stream_id][2].append(h3_event.data)
            else:
                continue
            if h3_event.stream_ended and h3_event.stream_id in self._replies:
                status, fields, chunks = self._partial.pop(h3_event.stream_id)
                self._replies.pop(h3_event.stream_id).set_result((status, fields, b"".join(chunks)))


@asynccontextmanager
async def client(
    port: int,
    tls: TLSFiles,
    *,
    ticket: SessionTicket | None = None,
    tickets: list[SessionTicket] | None = None,
) -> AsyncIterator[Client]:
    configuration = QuicConfiguration(
        alpn_protocols=list(H3_ALPN), is_client=True, server_name="localhost"
    )
    configuration.load_verify_locations(cafile=str(tls.certfile))
    configuration.session_ticket = ticket
    async with connect(
        "127.0.0.1",
        port,
        configuration=configuration,
        create_protocol=Client,
        session_ticket_handler=tickets.append if tickets is not None else None,
        wait_connected=False,
    ) as protocol:
        yield cast(Client, protocol)


async def echo(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    text = (
        f"{request.method} {request.path} q={request.query} v={request.http_version} "
        f"x={request.headers.get('x-test', '')} early={request.headers.get('early-data', '0')}"
    )
    return Response(200, (("content-type", "text/plain"),), text.encode())


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return ensure_self_signed(tmp_path_factory.mktemp("tls"))


@asynccontextmanager
async def serving(
    handler: Callable[[Request], Awaitable[Response]], tls: TLSFiles, qlog: Path | None = None
) -> AsyncIterator[H3Server]:
    server = await start_h3(handler, "127.0.0.1", 0, tls.certfile, tls.keyfile, qlog_dir=qlog)
    try:
        yield server
    finally:
        await server.close()


@pytest_asyncio.fixture
async def echo_server(tls_files: TLSFiles) -> AsyncIterator[H3Server]:
    async with serving(echo, tls_files) as server:
        yield server


@pytest.mark.asyncio
async def test_get_head_and_request_mapping(echo_server: H3Server, tls_files: TLSFiles) -> None:
    assert echo_server.port > 0
    async with client(echo_server.port, tls_files) as c:
        status, fields, body = await c.send("GET", "/a%20b/c?x=1&y=%20")
        assert status == 200
        assert body == b"GET /a b/c q=x=1&y=%20 v=3 x=hi early=0"
        assert fields["content-length"] == str(len(body))
        assert fields["content-type"] == "text/plain"
        status, fields, body = await c.send("HEAD", "/x")
        assert (status, body) == (200, b"")
        assert "content-length" not in fields  # aioquic clients would reject it
        status, _, body = await c.send("GET", "/after-head")
        assert status == 200 and body.startswith(b"GET /after-head")


@pytest.mark.asyncio
async def test_handler_error_is_500(
    echo_server: H3Server, tls_files: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    async with client(echo_server.port, tls_files) as c:
        status, _, _ = await c.send("GET", "/boom")
        assert status == 500
        status, _, _ = await c.send("GET", "/fine")
        assert status == 200
    assert any("handler failed" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_50_concurrent_long_polls_on_one_connection(tls_files: TLSFiles) -> None:
    release = asyncio.Event()
    waiting = 0

    async def long_poll(request: Request) -> Response:
        nonlocal waiting
        waiting += 1
        await release.wait()
        return Response(200, (), request.query.encode() * 1000)

    async with serving(long_poll, tls_files) as server, client(server.port, tls_files) as c:
        replies = [c.send("GET", f"/poll?n={i}") for i in range(50)]
        for _ in range(200):
            if waiting == 50:
                break
            await asyncio.sleep(0.01)
        assert waiting == 50, "all 50 requests must be waiting in the handler at once"
        assert server.pending == 50
        assert server.connections == 1
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*replies), 10)
    assert [r[0] for r in results] == [200] * 50
    assert [r[2] for r in results] == [f"n={i}".encode() * 1000 for i in range(50)]


@pytest.mark.asyncio
async def test_client_going_away_cancels_quietly(
    tls_files: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    started = asyncio.Event()
    cancelled = 0

    async def forever(request: Request) -> Response:
        nonlocal cancelled
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return Response(200)

    caplog.set_level(logging.DEBUG, logger="llhls.origin.h3")
    async with serving(forever, tls_files) as server:
        async with client(server.port, tls_files) as c:
            reply = c.send("GET", "/wait")
            await asyncio.wait_for(started.wait(), 5)
            c.reset(reply)  # the client resets its stream
            for _ in range(100):
                if cancelled == 1:
                    break
                await asyncio.sleep(0.01)
            assert cancelled == 1
            started.clear()
            c.send("GET", "/wait-again")
            await asyncio.wait_for(started.wait(), 5)
        # leaving the block closed the connection with a request in flight
        for _ in range(100):
            if cancelled == 2 and server.pending == 0:
                break
            await asyncio.sleep(0.01)
        assert cancelled == 2
        assert server.pending == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


@pytest.mark.asyncio
async def test_close_answers_waiting_requests_503(tls_files: TLSFiles) -> None:
    started = asyncio.Event()

    async def forever(request: Request) -> Response:
        started.set()
        await asyncio.sleep(3600)
        return Response(200)

    server = await start_h3(forever, "127.0.0.1", 0, tls_files.certfile, tls_files.keyfile)
    async with client(server.port, tls_files) as c:
        reply = c.send("GET", "/wait")
        await asyncio.wait_for(started.wait(), 5)
        await server.close()
        status, _, _ = await asyncio.wait_for(reply, 5)
        assert status == 503
    await server.close()  # idempotent


@pytest.mark.asyncio
async def test_zero_rtt_resumption_serves_early_get(
    echo_server: H3Server, tls_files: TLSFiles
) -> None:
    tickets: list[SessionTicket] = []
    async with client(echo_server.port, tls_files, tickets=tickets) as c:
        assert (await c.send("GET", "/first"))[0] == 200
        first = await c.handshake
        for _ in range(100):
            if tickets:
                break
            await asyncio.sleep(0.01)
    assert not first.session_resumed
    assert len(tickets) == 1
    assert len(echo_server.tickets) == 1

    # Second connection: the request leaves with the ClientHello, in 0-RTT packets.
    async with client(echo_server.port, tls_files, ticket=tickets[0], tickets=tickets) as c:
        reply = c.send("GET", "/early")
        assert not c.handshake.done()
        status, _, body = await reply
        handshake = await c.handshake
    assert handshake.session_resumed and handshake.early_data_accepted
    assert status == 200
    assert body.endswith(b"early=1"), "the server marks requests it took from early data"
    # The ticket was single use: presenting it again gives a full handshake.
    async with client(echo_server.port, tls_files, ticket=tickets[0]) as c:
        assert (await c.send("GET", "/again"))[0] == 200
        again = await c.handshake
    assert not again.session_resumed and not again.early_data_accepted


@pytest.mark.asyncio
async def test_unsafe_method_in_early_data_gets_425(
    echo_server: H3Server, tls_files: TLSFiles
) -> None:
    tickets: list[SessionTicket] = []
    async with client(echo_server.port, tls_files, tickets=tickets) as c:
        assert (await c.send("POST", "/after-handshake", b"x"))[0] == 200
        for _ in range(100):
            if tickets:
                break
            await asyncio.sleep(0.01)
    async with client(echo_server.port, tls_files, ticket=tickets[-1]) as c:
        early_post = c.send("POST", "/submit", b"data")
        status, _, _ = await early_post
        assert (await c.handshake).early_data_accepted
        assert status == 425
        # After the handshake the same request is served.
        assert (await c.send("POST", "/submit", b"data"))[0] == 200


def test_ticket_store_is_single_use_and_bounded() -> None:
    store = SessionTicketStore(capacity=2)
    made = []
    for label in (b"a", b"b", b"c"):
        ticket = cast(SessionTicket, _FakeTicket(label))
        made.append(ticket)
        store.add(ticket)
    assert len(store) == 2
    assert store.pop(b"a") is None  # evicted
    assert store.pop(b"b") is made[1]
    assert store.pop(b"b") is None  # single use


class _FakeTicket:
    def __init__(self, label: bytes) -> None:
        self.ticket = label
        self.is_valid = True


@pytest.mark.asyncio
async def test_port_in_use_is_origin_error(tls_files: TLSFiles) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        with pytest.raises(OriginError, match=f"UDP port {port} is already in use"):
            await start_h3(echo, "127.0.0.1", port, tls_files.certfile, tls_files.keyfile)
    finally:
        taken.close()


@pytest.mark.asyncio
async def test_bad_certificate_files_are_origin_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(OriginError, match="cannot load the TLS certificate"):
        await start_h3(echo, "127.0.0.1", 0, missing, missing)


@pytest.mark.asyncio
async def test_qlog_trace_per_connection(tls_files: TLSFiles, tmp_path: Path) -> None:
    async with serving(echo, tls_files, qlog=tmp_path) as server:
        for _ in range(2):
            async with client(server.port, tls_files) as c:
                assert (await c.send("GET", "/q"))[0] == 200
    traces = sorted(tmp_path.glob("*.qlog"))
    assert len(traces) == 2
    assert '"qlog_version"' in traces[0].read_text()


@pytest.mark.asyncio
async def test_untrusted_client_cannot_connect(echo_server: H3Server, tmp_path: Path) -> None:
    other = ensure_self_signed(tmp_path)  # a different certificate: not the server's
    configuration = QuicConfiguration(
        alpn_protocols=list(H3_ALPN), is_client=True, server_name="localhost"
    )
    configuration.load_verify_locations(cafile=str(other.certfile))
    with pytest.raises(ConnectionError):
        async with connect("127.0.0.1", echo_server.port, configuration=configuration):
            pass
    assert configuration.verify_mode in (None, ssl.CERT_REQUIRED)


@pytest.mark.asyncio
async def test_large_request_body_is_refused(echo_server: H3Server, tls_files: TLSFiles) -> None:
    async with client(echo_server.port, tls_files) as c:
        status, _, _ = await asyncio.wait_for(c.send("POST", "/upload", b"x" * (2 << 20)), 10)
        assert status == 413
        assert (await c.send("GET", "/still-fine"))[0] == 200
