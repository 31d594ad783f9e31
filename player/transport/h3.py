"""HTTP/3 transport over aioquic: one QUIC connection, every request a stream.

``get`` may be called concurrently; each call is one bidirectional stream of
the same connection. The connection is made lazily by the first request, so
that with a session ticket from an earlier connection (kept in memory and in
a :class:`~player.transport.tickets.TicketCache` on disk) that request leaves
in the 0-RTT packets together with the ClientHello: the response comes one
round trip after the first datagram.

A fresh ticket arrives about one round trip after the handshake; it is saved
at once, and :meth:`H3Fetcher.close` waits (briefly) for it when it has not
come yet, because the ticket this connection used is spent.

When the connection dies (closed by the server, idle timeout, ICMP port
unreachable, or silent: a request timed out and nothing at all arrived since
it was sent) the next request opens a new one; a request whose connection
died before any response arrived is retried once on the new connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aioquic.asyncio.protocol import QuicStreamHandler
from aioquic.h3.connection import ErrorCode
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StreamReset,
)
from aioquic.quic.logger import QuicFileLogger
from aioquic.tls import SessionTicket

from llhls.errors import ConfigError
from llhls.quic import MAX_DATA, MAX_STREAM_DATA, H3Protocol, h3_configuration, udp_socket
from player.transport._common import (
    Call,
    Pending,
    Retry,
    SharedConnectionFetcher,
    consume,
    exchange,
    fresh,
    request_fields,
    request_target,
)
from player.transport.base import (
    ConnectionLost,
    FetchResult,
    Origin,
    TLSVerificationError,
    TransportError,
    UnreachableError,
    response_head,
)
from player.transport.tickets import TicketCache

__all__ = ["H3Fetcher", "MAX_DATA", "MAX_STREAM_DATA"]

log = logging.getLogger(__name__)

TICKET_WAIT_S = 1.0
"""How long :meth:`H3Fetcher.close` waits for the fresh session ticket."""
CLOSE_WAIT_S = 1.0
"""With qlog on, how long close waits for the connection to end (the trace is written then)."""
_CRYPTO_ERROR = 0x100
"""QUIC CRYPTO_ERROR range start: 0x100 + TLS alert."""


class _ClientProtocol(H3Protocol):
    """One QUIC connection of an :class:`H3Fetcher`."""

    def __init__(
        self,
        quic: QuicConnection,
        stream_handler: QuicStreamHandler | None = None,
        *,
        label: str,
    ) -> None:
        super().__init__(quic, stream_handler)
        self._label = label
        self._pending: dict[int, Pending] = {}
        self.started = time.monotonic()
        self.handshake: asyncio.Future[HandshakeCompleted] = self._loop.create_future()
        self.handshake.add_done_callback(consume)
        self.ticket_arrived = asyncio.Event()
        self.error: TransportError | None = None
        self.last_received = self.started

    @property
    def usable(self) -> bool:
        """Still worth sending requests on."""
        return self.error is None

    # requests

    def request(self, authority: str, path: str, headers: Mapping[str, str]) -> tuple[int, Pending]:
        """Send a GET on a new stream (transmitted this loop iteration)."""
        if self.error is not None:
            raise Retry(self.error)
        stream_id = self._quic.get_next_available_stream_id()
        fields = request_fields(b"https", authority, path, headers)
        self._h3.send_headers(stream_id, fields, end_stream=True)
        pending = Pending(self._loop.create_future())
        self._pending[stream_id] = pending
        self._flush_soon()
        return stream_id, pending

    def cancel(self, stream_id: int) -> None:
        """Abandon a stream (timeout or cancellation): reset it both ways."""
        if self._pending.pop(stream_id, None) is None or self.error is not None:
            return
        with contextlib.suppress(ValueError, RuntimeError):
            self._quic.reset_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
        with contextlib.suppress(ValueError, RuntimeError):
            self._quic.stop_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
        self._flush_soon()

    # aioquic hooks

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        self.last_received = time.monotonic()
        super().datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # Our socket is connected, so ICMP errors (port unreachable) surface here.
        if self.handshake.done() and self.handshake.exception() is None:
            error: TransportError = ConnectionLost(
                f"HTTP/3 connection to {self._label} lost: {exc}"
            )
        else:
            error = UnreachableError(f"no HTTP/3 server at {self._label} (UDP): {exc}")
        self._fail(error)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionLost(f"HTTP/3 connection to {self._label} closed"))
        self.stop_timer()
        super().connection_lost(exc)

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            if not self.handshake.done():
                self.handshake.set_result(event)
        elif isinstance(event, ConnectionTerminated):
            self._fail(self._termination_error(event))
            return
        elif isinstance(event, StreamReset):
            pending = self._pending.pop(event.stream_id, None)
            if pending is not None:
                pending.fail(
                    ConnectionLost(
                        f"{self._label} reset the HTTP/3 stream (error {event.error_code:#x})"
                    )
                )
        for h3_event in self._h3.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if not isinstance(event, HeadersReceived | DataReceived):
            return
        pending = self._pending.get(event.stream_id)
        if pending is None:
            return
        if isinstance(event, HeadersReceived):
            if not pending.answered:
                status, headers = response_head(event.headers)
                if 100 <= status < 200:  # interim response: wait for the final one
                    return
                if not 200 <= status <= 999:
                    del self._pending[event.stream_id]
                    pending.fail(TransportError(f"{self._label} sent a bad HTTP/3 :status"))
                    return
                pending.answer(status, headers)
        elif event.data:
            pending.chunks.append(event.data)
        if event.stream_ended:
            del self._pending[event.stream_id]
            if pending.answered:
                pending.finish()
            else:
                pending.fail(
                    ConnectionLost(f"{self._label} ended an HTTP/3 stream without a response")
                )

    # endings

    def _termination_error(self, event: ConnectionTerminated) -> TransportError:
        reason = event.reason_phrase or "no reason given"
        transport_error = event.frame_type is not None  # else an application (H3) close
        if transport_error and _CRYPTO_ERROR <= event.error_code < _CRYPTO_ERROR + 0x100:
            return TLSVerificationError(f"TLS handshake with {self._label} failed: {reason}")
        if not self.handshake.done():
            return UnreachableError(
                f"HTTP/3 connection to {self._label} closed during the handshake "
                f"(error {event.error_code:#x}: {reason})"
            )
        return ConnectionLost(
            f"HTTP/3 connection to {self._label} closed (error {event.error_code:#x}: {reason})"
        )

    def _fail(self, error: TransportError) -> None:
        """Mark the connection dead and fail every waiter with ``error``."""
        if self.error is None:
            self.error = error
            log.debug("%s", error)
        if not self.handshake.done():
            self.handshake.set_exception(fresh(self.error))
        pending, self._pending = self._pending, {}
        for item in pending.values():
            item.fail(self.error)

    def abort(self, error: TransportError) -> None:
        """Close the connection now (CONNECTION_CLOSE sent) and fail every waiter."""
        if self._transport is not None and not self._transport.is_closing():
            with contextlib.suppress(Exception):
                self.close(error_code=ErrorCode.H3_NO_ERROR)
        self._fail(error)


class H3Fetcher(SharedConnectionFetcher[_ClientProtocol]):
    """HTTP/3 :class:`~player.transport.base.Fetcher` over one QUIC connection.

    ``server_name`` (default: the host) is the TLS name checked and the key of
    the ticket cache. ``cafile`` replaces the trusted roots (the origin's self-signed
    certificate); ``insecure`` skips verification. ``tickets`` is the ticket
    cache (default: the user cache directory); ``use_tickets=False`` disables
    resumption entirely. ``qlog_dir`` receives one qlog trace per connection.
    """

    protocol = "h3"
    _name = "HTTP/3"
    _log = log

    def __init__(
        self,
        origin: Origin,
        *,
        server_name: str | None = None,
        cafile: Path | None = None,
        insecure: bool = False,
        qlog_dir: Path | None = None,
        tickets: TicketCache | None = None,
        use_tickets: bool = True,
    ) -> None:
        if origin.scheme != "https":
            raise ConfigError("HTTP/3 needs an https:// URL")
        if qlog_dir is not None and not qlog_dir.is_dir():
            raise ConfigError(f"the qlog directory {qlog_dir} does not exist")
        super().__init__(origin)
        self.server_name = server_name or origin.host
        """TLS server name (SNI and certificate check) and ticket cache key."""
        self._cafile = cafile
        self._insecure = insecure
        self._qlog = QuicFileLogger(str(qlog_dir)) if qlog_dir is not None else None
        self._tickets = (tickets or TicketCache()) if use_tickets else None
        self._ticket: SessionTicket | None = None
        self._transport: asyncio.DatagramTransport | None = None

    # public API

    async def open(self, timeout: float = 5.0) -> None:
        """Connect now and wait for the handshake (otherwise the first ``get`` connects)."""
        conn = await self._connection(time.monotonic() + timeout)
        conn.transmit()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(conn.handshake)
        except TimeoutError:
            raise self._no_handshake(conn, timeout) from None

    async def close(self) -> None:
        """Close the connection (after waiting briefly for a fresh session ticket)."""
        if self._closed:
            return
        self._closed = True
        conn, transport = self._conn, self._transport
        if conn is None or transport is None:
            return
        if (
            self._tickets is not None
            and conn.usable
            and conn.handshake.done()
            and conn.handshake.exception() is None
            and not conn.ticket_arrived.is_set()
        ):
            # This connection's ticket is spent; the fresh one is ~1 RTT away.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TICKET_WAIT_S):
                    await conn.ticket_arrived.wait()
        self._conn = self._transport = None
        conn.abort(ConnectionLost(f"HTTP/3 fetcher for {self._label} closed"))
        if self._qlog is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_WAIT_S):
                    await conn.wait_closed()
        conn.stop_timer()
        transport.close()

    # internals

    async def _get_once(self, conn: _ClientProtocol, call: Call) -> FetchResult:
        sent_at = time.monotonic()
        target = request_target(call.path)
        stream_id, pending = conn.request(self.origin.authority, target, call.headers)
        await exchange(
            pending,
            call.deadline,
            lambda _: conn.cancel(stream_id),
            lambda: self._timeout_error(conn, call, sent_at),
        )
        return pending.result(call.started, self.stats)

    def _timeout_error(self, conn: _ClientProtocol, call: Call, sent_at: float) -> TransportError:
        if not conn.handshake.done():
            return self._no_handshake(conn, call.timeout)
        if conn.last_received <= sent_at:
            # Not even an ACK since the request left: the path or the server is gone.
            conn.abort(ConnectionLost(f"HTTP/3 connection to {self._label} went silent"))
        return self._timed_out(call)

    def _no_handshake(self, conn: _ClientProtocol, timeout: float) -> UnreachableError:
        """Give up on ``conn`` (its handshake took too long): the error to raise."""
        error = UnreachableError(
            f"no QUIC handshake with {self._label} within {timeout:g} s "
            "(UDP blocked or no HTTP/3 server there?)"
        )
        conn.abort(error)
        return error

    def _drop_connection(self) -> None:
        conn, transport = self._conn, self._transport
        self._conn = self._transport = None
        if conn is not None:
            conn.abort(ConnectionLost(f"HTTP/3 connection to {self._label} replaced"))
            conn.stop_timer()
        if transport is not None:
            transport.close()

    def _configuration(self) -> QuicConfiguration:
        configuration = h3_configuration(
            is_client=True, server_name=self.server_name, quic_logger=self._qlog
        )
        if self._insecure:
            configuration.verify_mode = ssl.CERT_NONE
        elif self._cafile is not None:
            configuration.load_verify_locations(cafile=str(self._cafile))
        ticket = self._ticket
        self._ticket = None
        if ticket is None and self._tickets is not None:
            ticket = self._tickets.take(self.server_name, self.origin.port)
        configuration.session_ticket = ticket
        return configuration

    async def _new_connection(self, deadline: float) -> _ClientProtocol:
        """Start a connection (not waiting for the handshake: the first request goes out
        with it, and its own timeout bounds both, so ``deadline`` is not needed here)."""
        loop = asyncio.get_running_loop()
        host, port = self.origin.host, self.origin.port
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except (OSError, UnicodeError) as exc:
            raise UnreachableError(f"cannot resolve {host!r}: {exc}") from exc
        family, kind, proto, _, address = infos[0]
        sock = udp_socket(family, kind, proto)
        try:
            sock.setblocking(False)
            # A connected UDP socket reports ICMP port unreachable (fast failure).
            sock.connect(address)
        except OSError as exc:
            sock.close()
            raise UnreachableError(f"cannot reach {self._label} over UDP: {exc}") from exc
        configuration = self._configuration()
        quic = QuicConnection(configuration=configuration, session_ticket_handler=self._on_ticket)
        label = self._label
        transport, conn = await loop.create_datagram_endpoint(
            lambda: _ClientProtocol(quic, label=label), sock=sock
        )
        conn.connect(address, transmit=False)
        conn.handshake.add_done_callback(self._on_handshake)
        self._transport = transport
        self.stats.connections += 1
        log.debug(
            "HTTP/3 connection %d to %s (%s)",
            self.stats.connections,
            self._label,
            "with a session ticket" if configuration.session_ticket else "cold",
        )
        return conn

    def _on_handshake(self, future: asyncio.Future[HandshakeCompleted]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        event = future.result()
        conn = self._conn
        if conn is None or conn.handshake is not future:
            return
        self.stats.zero_rtt = event.early_data_accepted
        self.stats.handshake_rtt_s = time.monotonic() - conn.started
        log.debug(
            "HTTP/3 handshake with %s in %.1f ms (resumed=%s, 0-RTT=%s)",
            self._label,
            self.stats.handshake_rtt_s * 1000,
            event.session_resumed,
            event.early_data_accepted,
        )

    def _on_ticket(self, ticket: SessionTicket) -> None:
        self._ticket = ticket
        if self._tickets is not None:
            self._tickets.save(self.server_name, self.origin.port, ticket)
        if self._conn is not None:
            self._conn.ticket_arrived.set()
