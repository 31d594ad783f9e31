"""Loopback tests of the hypercorn HTTP/1.1 + HTTP/2 adapter (port 0 only)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
import pytest_asyncio

from llhls.errors import OriginError
from llhls.origin.http import TCPServer, response_headers, start_tcp, to_request
from llhls.origin.messages import Request, Response
from llhls.origin.tls import TLSFiles, ensure_self_signed

ALT_SVC = 'h3=":4433"; ma=86400'


async def echo(request: Request) -> Response:
    """Answers with what it saw, as text."""
    text = (
        f"{request.method} {request.path} q={request.query} v={request.http_version} "
        f"x={request.headers.get('x-test', '')}"
    )
    if request.path == "/boom":
        raise RuntimeError("handler bug")
    return Response(
        200,
        (("content-type", "text/plain"), ("x-handler", "yes")),
        text.encode(),
    )


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return ensure_self_signed(tmp_path_factory.mktemp("tls"))


@pytest_asyncio.fixture
async def plain_server() -> AsyncIterator[TCPServer]:
    server = await start_tcp(echo, "127.0.0.1", 0, None, alt_svc=ALT_SVC)
    yield server
    await server.close()


@pytest_asyncio.fixture
async def tls_server(tls_files: TLSFiles) -> AsyncIterator[TCPServer]:
    server = await start_tcp(echo, "127.0.0.1", 0, tls_files, alt_svc=ALT_SVC)
    yield server
    await server.close()


def client_context(tls: TLSFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.certfile))


@pytest.mark.asyncio
async def test_port_zero_gets_a_real_port(plain_server: TCPServer) -> None:
    assert plain_server.port > 0
    assert plain_server.url_scheme == "http"
    assert plain_server.url == f"http://127.0.0.1:{plain_server.port}"


@pytest.mark.asyncio
async def test_http1_plain(plain_server: TCPServer) -> None:
    async with httpx.AsyncClient(http1=True, http2=False) as client:
        r = await client.get(f"{plain_server.url}/a%20b/c?x=1&y=%20", headers={"X-Test": "hi"})
    assert r.status_code == 200
    assert r.http_version == "HTTP/1.1"
    assert r.text == "GET /a b/c q=x=1&y=%20 v=1.1 x=hi"
    assert r.headers["content-length"] == str(len(r.content))
    assert r.headers["alt-svc"] == ALT_SVC
    assert r.headers["x-handler"] == "yes"


@pytest.mark.asyncio
async def test_h2c_prior_knowledge(plain_server: TCPServer) -> None:
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.get(f"{plain_server.url}/p")
    assert r.http_version == "HTTP/2"
    assert r.text.startswith("GET /p q= v=2 ")
    assert r.headers["alt-svc"] == ALT_SVC


@pytest.mark.asyncio
async def test_h2c_upgrade(plain_server: TCPServer) -> None:
    """``Upgrade: h2c`` from HTTP/1.1: the answer to the first request comes on stream 1."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = conn.initiate_upgrade_connection()
    assert settings is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", plain_server.port)
    writer.write(
        b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    writer.write(conn.data_to_send())
    body = b""
    status = ""
    done = False
    while not done:
        data = await asyncio.wait_for(reader.read(65536), 5)
        assert data, "connection closed before the answer"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers)[b":status"].decode()
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                done = True
        writer.write(conn.data_to_send())
    writer.close()
    await writer.wait_closed()
    assert status == "200"
    assert body.startswith(b"GET /up q= v=2 ")


@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
async def test_tls(tls_server: TCPServer, tls_files: TLSFiles, http2: bool) -> None:
    assert tls_server.url_scheme == "https"
    async with httpx.AsyncClient(
        http1=not http2, http2=http2, verify=client_context(tls_files)
    ) as client:
        r = await client.get(f"https://localhost:{tls_server.port}/s?q")
        head = await client.head(f"https://127.0.0.1:{tls_server.port}/s")
    assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    version = "2" if http2 else "1.1"
    assert r.text == f"GET /s q=q v={version} x="
    assert r.headers["alt-svc"] == ALT_SVC
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(f"HEAD /s q= v={version} x="))


@pytest.mark.asyncio
async def test_head_without_body(plain_server: TCPServer) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.head(f"{plain_server.url}/h")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len("HEAD /h q= v=1.1 x="))
    assert r.headers["alt-svc"] == ALT_SVC


@pytest.mark.asyncio
async def test_no_alt_svc_unless_asked() -> None:
    server = await start_tcp(echo, "127.0.0.1", 0, None)
    try:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{server.url}/")
        assert "alt-svc" not in r.headers
        assert "server" not in r.headers
    finally:
        await server.close()


@pytest.mark.asyncio
async def test_handler_error_is_500_and_logged(
    plain_server: TCPServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="llhls.origin.http"):
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{plain_server.url}/boom")
    assert r.status_code == 500
    assert any("handler failed" in rec.getMessage() for rec in caplog.records)


@pytest.mark.asyncio
async def test_port_in_use(plain_server: TCPServer) -> None:
    with pytest.raises(
        OriginError, match=rf"port {plain_server.port} is already in use on 127.0.0.1"
    ):
        await start_tcp(echo, "127.0.0.1", plain_server.port, None)


@pytest.mark.asyncio
async def test_bad_tls_files(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("not a certificate")
    (tmp_path / "k.pem").write_text("not a key")
    with pytest.raises(OriginError, match="cannot load the TLS certificate"):
        await start_tcp(echo, "127.0.0.1", 0, TLSFiles(tmp_path / "c.pem", tmp_path / "k.pem"))


class LongPoll:
    """A handler whose requests block until :meth:`release`."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.waiting = 0
        self.cancelled = 0

    async def __call__(self, request: Request) -> Response:
        self.waiting += 1
        try:
            await self.event.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.waiting -= 1
        return Response(200, (("content-type", "text/plain"),), request.query.encode())

    async def until_waiting(self, count: int) -> None:
        for _ in range(500):
            if self.waiting >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {self.waiting} of {count} requests arrived")


@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
async def test_fifty_long_polls(tls_files: TLSFiles, http2: bool) -> None:
    poll = LongPoll()
    server = await start_tcp(poll, "127.0.0.1", 0, tls_files)
    try:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            http1=not http2, http2=http2, verify=client_context(tls_files), limits=limits
        ) as client:
            url = f"https://localhost:{server.port}/live/index.m3u8"
            requests = [
                asyncio.ensure_future(client.get(url, params={"n": str(i)})) for i in range(50)
            ]
            await poll.until_waiting(50)
            assert not any(r.done() for r in requests)
            assert server.pending == 50
            poll.event.set()
            answers = await asyncio.wait_for(asyncio.gather(*requests), 10)
    finally:
        await server.close()
    assert [r.status_code for r in answers] == [200] * 50
    assert sorted(r.text for r in answers) == sorted(f"n={i}" for i in range(50))
    assert server.pending == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2"])
async def test_client_gone_while_waiting_is_quiet(
    tls_files: TLSFiles, http2: bool, caplog: pytest.LogCaptureFixture
) -> None:
    poll = LongPoll()
    server = await start_tcp(poll, "127.0.0.1", 0, tls_files)
    try:
        with caplog.at_level(logging.DEBUG):
            async with httpx.AsyncClient(
                http1=not http2, http2=http2, verify=client_context(tls_files)
            ) as client:
                url = f"https://localhost:{server.port}/wait"
                requests = [asyncio.ensure_future(client.get(url)) for _ in range(5)]
                await poll.until_waiting(5)
                for r in requests:
                    r.cancel()
                await asyncio.gather(*requests, return_exceptions=True)
            for _ in range(200):
                if poll.cancelled == 5:
                    break
                await asyncio.sleep(0.01)
            assert poll.cancelled == 5
            assert server.pending == 0
    finally:
        await server.close()
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == []


@pytest.mark.asyncio
async def test_close_answers_pending_requests_quickly(tls_files: TLSFiles) -> None:
    poll = LongPoll()
    server = await start_tcp(poll, "127.0.0.1", 0, None)
    async with httpx.AsyncClient() as client:
        pending = asyncio.ensure_future(client.get(f"{server.url}/wait"))
        await poll.until_waiting(1)
        loop = asyncio.get_running_loop()
        start = loop.time()
        await server.close()
        assert loop.time() - start < 1.5
        r = await asyncio.wait_for(pending, 5)
    assert r.status_code == 503
    await server.close()  # idempotent
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{server.url}/")


def test_to_request_joins_repeated_headers() -> None:
    scope = {
        "type": "http",
        "method": "get",
        "path": "/x",
        "query_string": b"a=1",
        "headers": [(b"Accept", b"a"), (b"accept", b"b"), (b"host", b"h")],
        "http_version": "2",
    }
    request = to_request(scope)
    assert request == Request("GET", "/x", "a=1", {"accept": "a, b", "host": "h"}, "2")


@pytest.mark.parametrize(
    ("method", "response", "length"),
    [
        ("GET", Response(200, body=b"abc"), b"3"),
        ("GET", Response(200, (("Content-Length", "99"),), b"abc"), b"3"),
        ("HEAD", Response(200, body=b"abc"), b"3"),
        ("HEAD", Response(200, (("content-length", "99"),)), b"99"),
        ("GET", Response(204), None),
        ("GET", Response(304), None),
        ("GET", Response(304, (("content-length", "7"),)), b"7"),
        ("GET", Response(404), b"0"),
    ],
)
def test_content_length(method: str, response: Response, length: bytes | None) -> None:
    fields = dict(response_headers(method, response))
    assert fields.get(b"content-length") == length


@pytest.mark.asyncio
async def test_close_with_idle_tls_client_is_prompt_and_quiet(
    tls_files: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    """A TLS client that keeps its connection and never answers close_notify."""
    server = await start_tcp(echo, "127.0.0.1", 0, tls_files)
    context = client_context(tls_files)
    context.set_alpn_protocols(["http/1.1"])

    def connect() -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        tls = context.wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"GET /idle HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert tls.recv(4096).startswith(b"HTTP/1.1 200")
        return tls  # and never read again

    loop = asyncio.get_running_loop()
    client = await loop.run_in_executor(None, connect)
    try:
        assert server.connections == 1
        with caplog.at_level(logging.WARNING):
            start = loop.time()
            await server.close()
            elapsed = loop.time() - start
        assert elapsed < 4.0
        assert server.connections == 0
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        client.close()


@pytest.mark.asyncio
async def test_close_aborting_a_stuck_connection_logs_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client that stops reading a large answer holds its connection past the grace
    period; close() aborts it without asyncio reporting the cancelled connection task
    as an unhandled error."""

    async def big(request: Request) -> Response:
        return Response(200, (("content-type", "application/octet-stream"),), bytes(32 << 20))

    server = await start_tcp(big, "127.0.0.1", 0, None)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await reader.read(1000)  # the answer has begun; then the client stops reading
    try:
        assert server.connections == 1
        with caplog.at_level(logging.WARNING):
            await server.close()
            await asyncio.sleep(0.05)  # let the connection task's done callbacks run
        assert server.connections == 0
        errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert errors == [], [r.getMessage() for r in errors]
    finally:
        writer.close()
