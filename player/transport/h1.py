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
import collections
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import h11

from player.transport._common import Pending, Retry, open_tcp, request_target, ssl_context
from player.transport.base import (
    USER_AGENT,
    ALPNError,
    ConnectionLost,
    FetchResult,
    Origin,
    RequestTimeout,
    TransportError,
    TransportStats,
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
                pending.answer(event.status_code, _headers(event.headers))
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


def _headers(fields: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in fields:
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class H1Fetcher:
    """HTTP/1.1 :class:`~player.transport.base.Fetcher` over keep-alive connections.

    ``reuse=False`` opens one connection per request. ``max_connections``
    bounds the simultaneous connections (and so the concurrent requests).
    """

    protocol = "http/1.1"

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
        self.origin = origin
        """Where requests go."""
        self.reuse = reuse
        """Keep connections alive between requests."""
        self.stats = TransportStats()
        """Counters (see :class:`~player.transport.base.TransportStats`)."""
        self._server_name = server_name
        self._context = (
            ssl_context(cafile, insecure, ["http/1.1"]) if origin.scheme == "https" else None
        )
        self._max = max_connections
        self._idle: list[_H1Protocol] = []
        self._busy: set[_H1Protocol] = set()
        self._opening = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        self._label = origin.authority

    async def open(self, timeout: float = 5.0) -> None:
        """Open one keep-alive connection now (otherwise the first ``get`` connects)."""
        conn = await self._acquire(time.monotonic() + timeout)
        self._release(conn)

    async def get(
        self,
        path_and_query: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> FetchResult:
        """GET on a free (or new) connection (see the module docs)."""
        started = time.monotonic()
        deadline = started + timeout
        for attempt in range(2):
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    conn = await self._acquire(deadline)
            except TimeoutError:
                raise RequestTimeout(
                    f"GET {path_and_query} on {self._label} (http/1.1) timed out after "
                    f"{timeout:g} s waiting for a free connection"
                ) from None
            try:
                return await self._get_once(
                    conn, path_and_query, headers or {}, started, deadline, timeout
                )
            except Retry as retry:
                if attempt or self._closed:
                    raise retry.error from None
                log.debug("retrying %s on a new connection: %s", path_and_query, retry)
            finally:
                self._release(conn)
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        """Close every connection; idempotent."""
        self._closed = True
        for conn in [*self._idle, *self._busy]:
            conn.close()
            conn._fail(ConnectionLost(f"HTTP/1.1 fetcher for {self._label} closed"))
        self._idle.clear()
        self._busy.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _get_once(
        self,
        conn: _H1Protocol,
        path: str,
        headers: Mapping[str, str],
        started: float,
        deadline: float,
        timeout: float,
    ) -> FetchResult:
        pending = conn.request(
            self.origin.authority, request_target(path), headers, close=not self.reuse
        )
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await asyncio.shield(pending.future)
        except TimeoutError:
            conn.close()  # the only way to abandon an HTTP/1.1 request
            raise RequestTimeout(
                f"GET {path} on {self._label} (http/1.1) timed out after {timeout:g} s"
            ) from None
        except ConnectionLost as exc:
            if pending.answered:
                raise
            raise Retry(exc) from None
        except asyncio.CancelledError:
            conn.close()
            raise
        return pending.result(started, self.stats)

    async def _acquire(self, deadline: float) -> _H1Protocol:
        while True:
            if self._closed:
                raise TransportError(f"the HTTP/1.1 fetcher for {self._label} is closed")
            while self._idle:
                conn = self._idle.pop()
                if conn.reusable and conn.error is None:
                    self._busy.add(conn)
                    return conn
                conn.close()
            if len(self._busy) + self._opening < self._max:
                break
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        self._opening += 1
        try:
            conn = await self._connect(deadline)
        finally:
            self._opening -= 1
        if self._closed:
            conn.close()
            raise TransportError(f"the HTTP/1.1 fetcher for {self._label} is closed")
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
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def _connect(self, deadline: float) -> _H1Protocol:
        label = self._label
        transport, conn, took = await open_tcp(
            self.origin,
            lambda: _H1Protocol(label),
            self._context,
            self._server_name,
            max(0.001, deadline - time.monotonic()),
            "HTTP/1.1",
        )
        if self._context is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            if alpn not in (None, "http/1.1"):
                transport.close()
                raise ALPNError(f"{self._label} did not agree to HTTP/1.1 over TLS (ALPN: {alpn})")
        self.stats.connections += 1
        self.stats.handshake_rtt_s = took
        log.debug("HTTP/1.1 connection %d to %s", self.stats.connections, self._label)
        return conn
