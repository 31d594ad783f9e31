"""HTTP/1.1 transport: a few keep-alive TCP (+TLS) connections (the ``h11`` library).

One request at a time per connection, so concurrent ``get`` calls spread
over up to ``max_connections`` persistent connections (6, like browsers) and
wait for a free one beyond that. ``reuse=False`` opens a new connection for
every request (``connection: close``), for comparisons with a player that
cannot keep connections. A request sent on a kept-alive connection that the
server had closed meanwhile is retried once on a new connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import h11

from player.transport._common import (
    Call,
    FetcherBase,
    Pending,
    Retry,
    WaitQueue,
    exchange,
    open_tcp,
    request_target,
    ssl_context,
)
from player.transport.base import (
    USER_AGENT,
    ConnectionLost,
    FetchResult,
    Origin,
    TransportError,
    header_dict,
)

__all__ = ["H1Fetcher", "MAX_CONNECTIONS"]

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 6
"""Default limit of simultaneous connections (what browsers use per origin)."""


class _H1Protocol(asyncio.Protocol):
    """One HTTP/1.1 connection carrying one request at a time."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._conn = h11.Connection(h11.CLIENT)
        self._transport: asyncio.Transport | None = None
        self._pending: Pending | None = None
        self.error: TransportError | None = None
        self.reusable = False
        self.last_received = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def request(
        self, authority: str, path: str, headers: Mapping[str, str], close: bool
    ) -> Pending:
        """Send a GET; ``close`` asks the server to close after the response."""
        if self.error is not None:
            raise Retry(self.error)
        assert self._transport is not None and self._pending is None
        fields = [("host", authority), ("user-agent", USER_AGENT)]
        fields += [(k.lower(), v) for k, v in headers.items() if k.lower() != "host"]
        if close:
            fields.append(("connection", "close"))
        self.reusable = False
        try:
            data = self._conn.send(h11.Request(method="GET", target=path, headers=fields))
            data = (data or b"") + (self._conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError as exc:
            raise TransportError(f"cannot send GET {path}: {exc}") from exc
        self._pending = Pending(asyncio.get_running_loop().create_future())
        self._transport.write(data)
        return self._pending

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        self._receive(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None:
            self._receive(b"")  # a body delimited by the close is complete now
        why = f": {exc}" if exc is not None else ""
        self._fail(ConnectionLost(f"HTTP/1.1 connection to {self._label} closed{why}"))

    def close(self) -> None:
        """Close the connection (a pending request fails)."""
        self.reusable = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def _receive(self, data: bytes) -> None:
        try:
            self._conn.receive_data(data)
            while True:
                event = self._conn.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                if not self._event(event):
                    return
        except h11.RemoteProtocolError as exc:
            self._fail(ConnectionLost(f"bad HTTP/1.1 response from {self._label}: {exc}"))
            self.close()

    def _event(self, event: object) -> bool:
        pending = self._pending
        if isinstance(event, h11.Response):
            if pending is not None:
                pending.answer(event.status_code, header_dict(event.headers))
        elif isinstance(event, h11.Data):
            if pending is not None:
                pending.chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            self._pending = None
            if pending is not None:
                pending.finish()
            if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
                self._conn.start_next_cycle()
                self.reusable = True
            else:
                self.close()
            return False
        elif isinstance(event, h11.ConnectionClosed):
            return False
        return True  # InformationalResponse and the like: keep reading

    def _fail(self, error: TransportError) -> None:
        self.reusable = False
        if self.error is None:
            self.error = error
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.fail(error)


class H1Fetcher(FetcherBase):
    """HTTP/1.1 :class:`~player.transport.base.Fetcher` over keep-alive connections.

    ``reuse=False`` opens one connection per request. ``max_connections``
    bounds the simultaneous connections (and so the concurrent requests).
    """

    protocol = "http/1.1"
    _name = "HTTP/1.1"
    _log = log

    def __init__(
        self,
        origin: Origin,
        *,
        server_name: str | None = None,
        cafile: Path | None = None,
        insecure: bool = False,
        reuse: bool = True,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        super().__init__(origin)
        self.reuse = reuse
        """Keep connections alive between requests."""
        self._server_name = server_name
        self._context = (
            ssl_context(cafile, insecure, ["http/1.1"]) if origin.scheme == "https" else None
        )
        self._max = max_connections
        self._idle: list[_H1Protocol] = []
        self._busy: set[_H1Protocol] = set()
        self._opening = 0
        self._waiters = WaitQueue()

    async def open(self, timeout: float = 5.0) -> None:
        """Open one keep-alive connection now (otherwise the first ``get`` connects)."""
        conn = await self._acquire(time.monotonic() + timeout)
        self._release(conn)

    async def close(self) -> None:
        """Close every connection; idempotent."""
        self._closed = True
        for conn in [*self._idle, *self._busy]:
            conn.close()
            conn._fail(ConnectionLost(f"HTTP/1.1 fetcher for {self._label} closed"))
        self._idle.clear()
        self._busy.clear()
        self._waiters.wake_all()

    async def _attempt(self, call: Call) -> FetchResult:
        """The request on a free (or new) connection."""
        try:
            async with asyncio.timeout(max(0.0, call.deadline - time.monotonic())):
                conn = await self._acquire(call.deadline)
        except TimeoutError:
            raise self._timed_out(call, " waiting for a free connection") from None
        try:
            target = request_target(call.path)
            pending = conn.request(
                self.origin.authority, target, call.headers, close=not self.reuse
            )
            await exchange(
                pending,
                call.deadline,
                lambda _: conn.close(),  # the only way to abandon an HTTP/1.1 request
                lambda: self._timed_out(call),
            )
            return pending.result(call.started, self.stats)
        finally:
            self._release(conn)

    async def _acquire(self, deadline: float) -> _H1Protocol:
        while True:
            if self._closed:
                raise self._closed_error()
            while self._idle:
                conn = self._idle.pop()
                if conn.reusable and conn.error is None:
                    self._busy.add(conn)
                    return conn
                conn.close()
            if len(self._busy) + self._opening < self._max:
                break
            await self._waiters.wait()
        self._opening += 1
        try:
            conn = await self._connect(deadline)
        finally:
            self._opening -= 1
        if self._closed:
            conn.close()
            raise self._closed_error()
        self._busy.add(conn)
        return conn

    def _release(self, conn: _H1Protocol) -> None:
        if conn not in self._busy:
            return
        self._busy.discard(conn)
        if self.reuse and conn.reusable and conn.error is None and not self._closed:
            self._idle.append(conn)
        else:
            conn.close()
        self._waiters.wake_one()

    async def _connect(self, deadline: float) -> _H1Protocol:
        label = self._label
        conn, took = await open_tcp(
            self.origin,
            lambda: _H1Protocol(label),
            self._context,
            self._server_name,
            deadline,
            "HTTP/1.1",
            alpn=(None, "http/1.1"),
        )
        self.stats.connections += 1
        self.stats.handshake_rtt_s = took
        log.debug("HTTP/1.1 connection %d to %s", self.stats.connections, self._label)
        return conn
