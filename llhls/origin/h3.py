"""HTTP/3 adapter: aioquic in front of a request handler.

The adapter only pumps: each request stream becomes a :class:`Request`
(``http_version="3"``), the handler runs in its own task (many long-poll
requests may wait at once on one connection) and its :class:`Response` goes
back as HEADERS + DATA with the stream's FIN. Header rules (content-length,
HEAD, 204/304) are the HTTP/1.1+2 adapter's, so all three protocols answer alike.

0-RTT: the server keeps the session tickets it issues in a
:class:`SessionTicketStore` (single use: a ticket presented once is gone), so
a returning client resumes and sends its first request in early data. Early
data can be replayed by an attacker, so only safe methods (GET, HEAD) are
served from it; any other request that arrives before the handshake completes
gets ``425 Too Early`` (RFC 8470) and the client may retry it. Requests served
from early data carry ``early-data: 1`` in :attr:`Request.headers`.

A client that resets a stream or closes the connection mid-request cancels
that request's handler quietly (a debug line, no traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aioquic.asyncio.protocol import QuicStreamHandler
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import ErrorCode, ProtocolError
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.h3.exceptions import H3Error
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StopSendingReceived,
    StreamReset,
)
from aioquic.quic.logger import QuicFileLogger
from aioquic.tls import SessionTicket

from llhls.errors import OriginError
from llhls.origin.http import response_headers
from llhls.origin.messages import Request, Response
from llhls.quic import MAX_DATA, MAX_STREAM_DATA, H3Protocol, h3_configuration, udp_socket

__all__ = [
    "H3Server",
    "MAX_DATA",
    "MAX_STREAM_DATA",
    "SAFE_EARLY_METHODS",
    "SessionTicketStore",
    "start_h3",
]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
"""What the adapter calls for every request."""

MAX_REQUEST_BODY = 1 << 20
"""Request bodies are read and dropped; past this size the stream is refused with 413."""
SAFE_EARLY_METHODS = frozenset({"GET", "HEAD"})
"""Methods served from 0-RTT early data; others get 425 Too Early."""
CLOSE_WAIT_S = 1.0
"""On close, how long to wait for connections to finish closing (so qlog traces are written)."""


class SessionTicketStore:
    """Session tickets this server issued, each usable once (``pop``).

    Bounded: past ``capacity`` tickets the oldest are forgotten (those clients
    do a full handshake). Expired tickets are never returned.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._capacity = capacity
        self._tickets: OrderedDict[bytes, SessionTicket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tickets)

    def add(self, ticket: SessionTicket) -> None:
        """Remember a ticket the TLS engine just issued."""
        self._tickets[ticket.ticket] = ticket
        while len(self._tickets) > self._capacity:
            self._tickets.popitem(last=False)

    def pop(self, label: bytes) -> SessionTicket | None:
        """The ticket with this label, removed (tickets are single use); None if unknown/expired."""
        ticket = self._tickets.pop(label, None)
        if ticket is None or not ticket.is_valid:
            return None
        return ticket


class _Stream:
    """A request being received on one bidirectional stream."""

    __slots__ = ("headers", "early", "body_size", "dispatched", "task")

    def __init__(self, headers: list[tuple[bytes, bytes]], early: bool) -> None:
        self.headers = headers
        self.early = early
        self.body_size = 0
        self.dispatched = False
        self.task: asyncio.Task[None] | None = None


class _H3ServerProtocol(H3Protocol):
    """One QUIC connection: H3 events in, handler tasks out."""

    def __init__(
        self,
        quic: QuicConnection,
        stream_handler: QuicStreamHandler | None = None,
        *,
        server: H3Server,
    ) -> None:
        super().__init__(quic, stream_handler)
        self._server = server
        self._handshake_done = False
        self._streams: dict[int, _Stream] = {}
        self._peer = ""
        server._connections.add(self)

    # aioquic hooks

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            self._handshake_done = True
            log.debug(
                "h3 connection %s: resumed=%s early_data=%s",
                self._peer,
                event.session_resumed,
                event.early_data_accepted,
            )
        elif isinstance(event, ConnectionTerminated):
            self._terminated(event)
            return
        elif isinstance(event, StreamReset | StopSendingReceived):
            self._abandon(event.stream_id, "reset by the client")
        for h3_event in self._h3.handle_event(event):
            self._h3_event(h3_event)

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        if not self._peer:
            self._peer = _format_addr(addr)
        super().datagram_received(data, addr)

    # requests

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None:
                stream = _Stream(event.headers, early=not self._handshake_done)
                self._streams[event.stream_id] = stream
            # else: trailers; ignored.
            if event.stream_ended:
                self._dispatch(event.stream_id, stream)
        elif isinstance(event, DataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None or stream.dispatched:
                return
            stream.body_size += len(event.data)
            if stream.body_size > MAX_REQUEST_BODY:
                stream.dispatched = True
                self._streams.pop(event.stream_id, None)
                with contextlib.suppress(ValueError):  # ask the client to stop sending
                    self._quic.stop_stream(event.stream_id, ErrorCode.H3_NO_ERROR)
                self._send(event.stream_id, "POST", _plain(413, "request body too large\n"))
                return
            if event.stream_ended:
                self._dispatch(event.stream_id, stream)

    def _dispatch(self, stream_id: int, stream: _Stream) -> None:
        if stream.dispatched:
            return
        stream.dispatched = True
        try:
            request = _to_request(stream.headers, early=stream.early)
        except ValueError as exc:
            log.debug("h3 %s stream %d: bad request: %s", self._peer, stream_id, exc)
            self._streams.pop(stream_id, None)
            self._send(stream_id, "GET", _plain(400, f"bad request: {exc}\n"))
            return
        if stream.early and request.method not in SAFE_EARLY_METHODS:
            log.info("h3 %s: %s %s in 0-RTT -> 425", self._peer, request.method, request.path)
            self._streams.pop(stream_id, None)
            self._send(stream_id, request.method, _plain(425, "too early\n"))
            return
        task = asyncio.ensure_future(self._respond(stream_id, request))
        self._server._tasks.add(task)
        task.add_done_callback(self._server._tasks.discard)
        stream.task = task

    async def _respond(self, stream_id: int, request: Request) -> None:
        method = request.method
        try:
            response = await self._server._call(request)
        except asyncio.CancelledError:
            if self._streams.get(stream_id) is None:  # abandoned by the client
                raise
            response = _plain(503, "shutting down\n")
        self._streams.pop(stream_id, None)
        self._send(stream_id, method, response)

    def _send(self, stream_id: int, method: str, response: Response) -> None:
        fields = [(b":status", str(response.status).encode("ascii"))]
        fields += response_headers(method, response)
        if method == "HEAD":
            # aioquic's H3 peers close the connection (H3_MESSAGE_ERROR) when a
            # content-length is not followed by that much DATA, even for HEAD;
            # RFC 9110 makes the field optional there, so leave it out.
            fields = [f for f in fields if f[0] != b"content-length"]
        with_body = method != "HEAD" and response.status not in (204, 304) and response.body
        try:
            self._h3.send_headers(stream_id, fields, end_stream=not with_body)
            if with_body:
                self._h3.send_data(stream_id, response.body, end_stream=True)
        except (H3Error, ProtocolError, ValueError, RuntimeError) as exc:
            # The stream or the connection went away while the handler was busy.
            log.debug("h3 %s stream %d: answer dropped: %s", self._peer, stream_id, exc)
            return
        self._flush_soon()

    # endings

    def _abandon(self, stream_id: int, why: str) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None and stream.task is not None and not stream.task.done():
            log.debug("h3 %s stream %d: %s before the answer", self._peer, stream_id, why)
            stream.task.cancel()

    def _terminated(self, event: ConnectionTerminated) -> None:
        log.debug(
            "h3 connection %s closed: code %#x %s",
            self._peer,
            event.error_code,
            event.reason_phrase,
        )
        for stream_id in list(self._streams):
            self._abandon(stream_id, "connection closed")
        self._server._connections.discard(self)

    def cancel_pending(self) -> None:
        """Cancel every waiting handler: each answers 503 (used at shutdown)."""
        for stream in self._streams.values():
            if stream.task is not None and not stream.task.done():
                stream.task.cancel()


class H3Server:
    """A running HTTP/3 listener (see :func:`start_h3`)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._endpoint: QuicServer | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._sock: socket.socket | None = None
        self._port = 0
        self._host = ""
        self._connections: set[_H3ServerProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.tickets = SessionTicketStore()
        """Session tickets issued and not yet used."""

    @property
    def port(self) -> int:
        """The bound UDP port (the real one when 0 was asked for)."""
        return self._port

    @property
    def host(self) -> str:
        """The host the listener was asked to bind."""
        return self._host

    @property
    def connections(self) -> int:
        """QUIC connections currently open."""
        return len(self._connections)

    @property
    def pending(self) -> int:
        """Requests whose answer has not been sent yet."""
        return len(self._tasks)

    async def _call(self, request: Request) -> Response:
        started = time.monotonic()
        try:
            response = await self._handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("handler failed on %s %s", request.method, request.path)
            return _plain(500, "internal server error\n")
        log.debug(
            "h3 %s %s -> %d in %.1f ms",
            request.method,
            request.path,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return response

    async def close(self) -> None:
        """Answer waiting requests 503, close every connection, stop listening. Idempotent."""
        if self._closed:
            return
        self._closed = True
        connections = list(self._connections)
        for protocol in connections:
            protocol.cancel_pending()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=CLOSE_WAIT_S)
        for protocol in connections:
            protocol.close(error_code=ErrorCode.H3_NO_ERROR, reason_phrase="server closing")
        waits = [asyncio.ensure_future(p.wait_closed()) for p in connections]
        if waits:
            _, late = await asyncio.wait(waits, timeout=CLOSE_WAIT_S)
            for waiter in late:
                waiter.cancel()
        for protocol in connections:
            protocol.stop_timer()
        if self._transport is not None:
            self._transport.close()
        if self._sock is not None:
            # asyncio closes the socket a loop iteration later; a caller that binds
            # the port again right after close() must find it free.
            for attempt in range(200):
                if self._sock.fileno() < 0:
                    break
                await asyncio.sleep(0 if attempt < 10 else 0.005)
            self._sock.close()
        log.info("HTTP/3 on %s port %d closed", self._host, self._port)


async def start_h3(
    handler: Handler,
    host: str,
    port: int,
    certfile: Path,
    keyfile: Path,
    *,
    qlog_dir: Path | None = None,
) -> H3Server:
    """Serve ``handler`` over HTTP/3 (ALPN ``h3``) on UDP ``host:port``.

    ``port`` 0 picks a free port (see :attr:`H3Server.port`); usually it is the
    same number as the TCP listener's, so Alt-Svc can say ``h3=":PORT"``.
    ``qlog_dir`` receives one qlog trace per QUIC connection, written when the
    connection ends. Raises :class:`OriginError` when the certificate cannot be
    loaded, the qlog directory does not exist, or the UDP port cannot be bound.
    """
    configuration = h3_configuration(is_client=False)
    try:
        configuration.load_cert_chain(certfile, keyfile)
    except (OSError, ValueError) as exc:
        raise OriginError(
            f"cannot load the TLS certificate {certfile} with key {keyfile}: {exc}"
        ) from exc
    if qlog_dir is not None:
        if not qlog_dir.is_dir():
            raise OriginError(f"the qlog directory {qlog_dir} does not exist")
        configuration.quic_logger = QuicFileLogger(str(qlog_dir))

    server = H3Server(handler)

    def create_protocol(
        quic: QuicConnection, stream_handler: QuicStreamHandler | None = None
    ) -> _H3ServerProtocol:
        return _H3ServerProtocol(quic, stream_handler, server=server)

    sock = _bind_udp(host, port)
    loop = asyncio.get_running_loop()
    try:
        transport, endpoint = await loop.create_datagram_endpoint(
            lambda: QuicServer(
                configuration=configuration,
                create_protocol=create_protocol,
                session_ticket_fetcher=server.tickets.pop,
                session_ticket_handler=server.tickets.add,
            ),
            sock=sock,
        )
    except OSError as exc:
        sock.close()
        raise OriginError(f"cannot serve HTTP/3 on {host} UDP port {port}: {exc}") from exc
    server._endpoint = endpoint
    server._transport = transport
    server._sock = sock
    server._host = host
    server._port = int(sock.getsockname()[1])
    log.info("serving HTTP/3 on %s UDP port %d", host, server._port)
    return server


def _bind_udp(host: str, port: int) -> socket.socket:
    """A bound, non-blocking UDP socket on ``host:port`` with large buffers."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise OriginError(f"cannot resolve the listen address {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = udp_socket(family, kind, proto)
    try:
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OriginError(f"UDP port {port} is already in use on {host} (HTTP/3)") from exc
        reason = exc.strerror or str(exc)
        raise OriginError(f"cannot bind UDP {host} port {port} for HTTP/3: {reason}") from exc
    return sock


def _to_request(fields: list[tuple[bytes, bytes]], *, early: bool = False) -> Request:
    """The :class:`Request` of an HTTP/3 header block (pseudo-headers checked).

    A request taken from 0-RTT early data carries ``early-data: 1``, as RFC 8470
    has a TLS-terminating intermediary mark what it forwards.
    """
    pseudo: dict[bytes, str] = {}
    headers: dict[str, str] = {}
    for raw_name, raw_value in fields:
        value = raw_value.decode("latin-1")
        if raw_name.startswith(b":"):
            pseudo[raw_name] = value
            continue
        name = raw_name.decode("latin-1").lower()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    method = pseudo.get(b":method", "")
    target = pseudo.get(b":path", "")
    if not method:
        raise ValueError("no :method")
    if not target.startswith("/"):
        raise ValueError(f"unsupported :path {target!r}")
    if "host" not in headers and b":authority" in pseudo:
        headers["host"] = pseudo[b":authority"]
    if early:
        headers["early-data"] = "1"
    else:
        headers.pop("early-data", None)  # only we may say so
    path, _, query = target.partition("?")
    return Request(
        method=method.upper(),
        path=unquote(path, encoding="utf-8", errors="replace"),
        query=query,
        headers=headers,
        http_version="3",
    )


def _plain(status: int, text: str) -> Response:
    return Response(
        status,
        (("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-store")),
        text.encode(),
    )


def _format_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0]).removeprefix("::ffff:")
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr)
