"""HTTP/2 transport: one TCP (+TLS) connection, every request a stream (the ``h2`` library).

``h2`` directly rather than httpx: one asyncio protocol object and no pool
machinery make a request cost a fraction of httpx's client CPU (see the
benchmark numbers in the report), and connection accounting is exact.

``get`` may be called concurrently; requests beyond the server's
SETTINGS_MAX_CONCURRENT_STREAMS wait for a free stream. When the connection
dies or the server sends GOAWAY, the next request opens a new connection; a
request that got no response before that is retried once on the new one.
``https`` URLs negotiate ``h2`` by ALPN; ``http`` URLs use h2c with prior knowledge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from player.transport._common import (
    Call,
    Pending,
    Retry,
    SharedConnectionFetcher,
    WaitQueue,
    exchange,
    open_tcp,
    request_fields,
    request_target,
    ssl_context,
)
from player.transport.base import (
    ConnectionLost,
    FetchResult,
    Origin,
    TransportError,
    response_head,
)

__all__ = ["H2Fetcher", "CONNECTION_WINDOW", "STREAM_WINDOW"]

log = logging.getLogger(__name__)

CONNECTION_WINDOW = 16 * 1024 * 1024
"""Connection flow-control window we grant the server."""
STREAM_WINDOW = 4 * 1024 * 1024
"""Per-stream flow-control window we grant the server."""
PROBE_S = 2.0
"""After a timed-out request on a silent connection, a PING must be answered within this."""
_DEFAULT_WINDOW = 65535


class _H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection."""

    def __init__(self, label: str, tls: bool) -> None:
        self._label = label
        self._scheme = b"https" if tls else b"http"
        self._conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, Pending] = {}
        self._slot_waiters = WaitQueue()
        self._flush_pending = False
        self._loop = asyncio.get_running_loop()
        self.error: TransportError | None = None
        self.going_away = False
        self.last_received = time.monotonic()
        self._probe: asyncio.TimerHandle | None = None

    @property
    def usable(self) -> bool:
        """Still accepts new requests."""
        return self.error is None and not self.going_away

    # asyncio hooks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._conn.initiate_connection()
        self._conn.update_settings(
            {
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            }
        )
        self._conn.increment_flow_control_window(CONNECTION_WINDOW - _DEFAULT_WINDOW)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        try:
            events = self._conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail(ConnectionLost(f"HTTP/2 protocol error from {self._label}: {exc}"))
            self._flush()
            if self._transport is not None:
                self._transport.close()
            return
        for event in events:
            self._event(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        why = f": {exc}" if exc is not None else ""
        self._fail(ConnectionLost(f"HTTP/2 connection to {self._label} closed{why}"))

    # requests

    async def request(self, authority: str, path: str, headers: Mapping[str, str]) -> Pending:
        """Open a stream with a GET (waits for a free stream when at the server's limit)."""
        while self.usable and (
            self._conn.open_outbound_streams >= self._conn.remote_settings.max_concurrent_streams
        ):
            await self._slot_waiters.wait()
        if self.error is not None:
            raise Retry(self.error)
        if self.going_away:
            raise Retry(ConnectionLost(f"{self._label} is closing the HTTP/2 connection"))
        stream_id = self._conn.get_next_available_stream_id()
        fields = request_fields(self._scheme, authority, path, headers)
        self._conn.send_headers(stream_id, fields, end_stream=True)
        pending = Pending(self._loop.create_future())
        self._pending[stream_id] = pending
        self._flush_soon()
        return pending

    def stream_of(self, pending: Pending) -> int | None:
        """The stream id carrying ``pending`` (None once finished)."""
        for stream_id, item in self._pending.items():
            if item is pending:
                return stream_id
        return None

    def cancel(self, pending: Pending | None) -> None:
        """Abandon a request (timeout or cancellation): RST_STREAM CANCEL."""
        stream_id = self.stream_of(pending) if pending is not None else None
        if stream_id is None:
            return
        del self._pending[stream_id]
        if self.error is None:
            with contextlib.suppress(h2.exceptions.H2Error):
                self._conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
            self._flush_soon()
        self._slot_waiters.wake_one()

    def probe(self) -> None:
        """PING the server; unless something arrives within :data:`PROBE_S`, the
        connection is declared dead (a long poll is legitimately silent, a dead peer too)."""
        if self._probe is not None or self.error is not None:
            return
        sent = time.monotonic()
        with contextlib.suppress(h2.exceptions.H2Error):
            self._conn.ping(os.urandom(8))
        self._flush()
        self._probe = self._loop.call_later(PROBE_S, self._probe_expired, sent)

    def _probe_expired(self, sent: float) -> None:
        self._probe = None
        if self.last_received <= sent and self.error is None:
            self._fail(ConnectionLost(f"HTTP/2 connection to {self._label} went silent"))
            self.close()

    def close(self) -> None:
        """GOAWAY and close; waiting requests fail."""
        if self._transport is None or self._transport.is_closing():
            return
        with contextlib.suppress(h2.exceptions.H2Error):
            self._conn.close_connection()
        self._flush()
        self._transport.close()

    # events

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            pending = self._pending.get(event.stream_id or 0)
            if pending is not None:
                status, fields = response_head(event.headers or [])
                pending.answer(status, fields)
        elif isinstance(event, h2.events.DataReceived):
            stream_id = event.stream_id or 0
            size = event.flow_controlled_length or 0
            if size:
                with contextlib.suppress(h2.exceptions.H2Error):
                    self._conn.acknowledge_received_data(size, stream_id)
            pending = self._pending.get(stream_id)
            if pending is not None and event.data:
                pending.chunks.append(event.data)
        elif isinstance(event, h2.events.StreamEnded):
            pending = self._pending.pop(event.stream_id or 0, None)
            if pending is not None:
                if pending.answered:
                    pending.finish()
                else:
                    pending.fail(ConnectionLost(f"{self._label} ended a stream without a response"))
            self._slot_waiters.wake_one()
        elif isinstance(event, h2.events.StreamReset):
            pending = self._pending.pop(event.stream_id or 0, None)
            if pending is not None:
                pending.fail(
                    ConnectionLost(f"{self._label} reset the HTTP/2 stream ({event.error_code!s})")
                )
            self._slot_waiters.wake_one()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._slot_waiters.wake_all()

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self.going_away = True
        last = event.last_stream_id if event.last_stream_id is not None else 0
        error = ConnectionLost(
            f"{self._label} sent GOAWAY ({event.error_code!s}) on the HTTP/2 connection"
        )
        for stream_id in [s for s in self._pending if s > last]:
            self._pending.pop(stream_id).fail(error)
        if event.error_code not in (None, h2.errors.ErrorCodes.NO_ERROR):
            self._fail(error)
        self._slot_waiters.wake_all()

    def _fail(self, error: TransportError) -> None:
        if self.error is None:
            self.error = error
            log.debug("%s", error)
        pending, self._pending = self._pending, {}
        for item in pending.values():
            item.fail(error)
        self._slot_waiters.wake_all()

    def _flush_soon(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        data = self._conn.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)


class H2Fetcher(SharedConnectionFetcher[_H2Protocol]):
    """HTTP/2 :class:`~player.transport.base.Fetcher` over one TCP connection.

    ``server_name`` (default: the host) is the TLS name checked; ``cafile``
    replaces the system roots (e.g. the origin's self-signed certificate); ``insecure``
    skips verification.
    """

    protocol = "h2"
    _name = "HTTP/2"
    _log = log

    def __init__(
        self,
        origin: Origin,
        *,
        server_name: str | None = None,
        cafile: Path | None = None,
        insecure: bool = False,
    ) -> None:
        super().__init__(origin)
        self._server_name = server_name
        self._context = ssl_context(cafile, insecure, ["h2"]) if origin.scheme == "https" else None

    async def open(self, timeout: float = 5.0) -> None:
        """Connect now (otherwise the first ``get`` connects)."""
        await self._connection(time.monotonic() + timeout)

    async def close(self) -> None:
        """Close the connection; idempotent."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            conn._fail(ConnectionLost(f"HTTP/2 fetcher for {self._label} closed"))

    async def _get_once(self, conn: _H2Protocol, call: Call) -> FetchResult:
        sent_at = time.monotonic()

        def timed_out() -> TransportError:
            if conn.last_received <= sent_at:
                conn.probe()
            return self._timed_out(call)

        request = conn.request(self.origin.authority, request_target(call.path), call.headers)
        pending = await exchange(request, call.deadline, conn.cancel, timed_out)
        return pending.result(call.started, self.stats)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    async def _new_connection(self, deadline: float) -> _H2Protocol:
        label, tls = self._label, self._context is not None
        conn, took = await open_tcp(
            self.origin,
            lambda: _H2Protocol(label, tls),
            self._context,
            self._server_name,
            deadline,
            "HTTP/2",
            alpn=("h2",),
        )
        self.stats.connections += 1
        self.stats.handshake_rtt_s = took
        log.debug("HTTP/2 connection %d to %s", self.stats.connections, self._label)
        return conn
