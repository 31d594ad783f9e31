"""aioquic set-up shared by the HTTP/3 origin and the player's HTTP/3 transport.

Both ends grant their peer the same flow-control windows, send datagrams of
the same size, ask for the same socket buffers and run HTTP/3 in a
:class:`H3Protocol`, which batches transmissions. (The player package imports
this module; nothing here imports the player.)
"""

from __future__ import annotations

import contextlib
import socket

from aioquic.asyncio.protocol import QuicConnectionProtocol, QuicStreamHandler
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.logger import QuicLogger

__all__ = [
    "H3Protocol",
    "MAX_DATA",
    "MAX_DATAGRAM_SIZE",
    "MAX_STREAM_DATA",
    "SOCKET_BUFFER",
    "h3_configuration",
    "udp_socket",
]

MAX_DATA = 16 * 1024 * 1024
"""Connection flow-control window granted to the peer (aioquic's 1 MB default throttles
segments)."""
MAX_STREAM_DATA = 4 * 1024 * 1024
"""Per-stream flow-control window granted to the peer."""
MAX_DATAGRAM_SIZE = 1350
"""UDP payload we send: above QUIC's 1200 minimum, below common path MTUs."""
SOCKET_BUFFER = 4 * 1024 * 1024
"""Requested SO_RCVBUF / SO_SNDBUF (the kernel caps it at rmem_max / wmem_max)."""


def h3_configuration(
    *,
    is_client: bool,
    server_name: str | None = None,
    quic_logger: QuicLogger | None = None,
) -> QuicConfiguration:
    """A QUIC configuration for HTTP/3 (ALPN ``h3``) with the windows and datagram size above."""
    return QuicConfiguration(
        alpn_protocols=list(H3_ALPN),
        is_client=is_client,
        max_data=MAX_DATA,
        max_stream_data=MAX_STREAM_DATA,
        max_datagram_size=MAX_DATAGRAM_SIZE,
        server_name=server_name,
        quic_logger=quic_logger,
    )


def udp_socket(family: int, kind: int, proto: int) -> socket.socket:
    """A new UDP socket with buffers of :data:`SOCKET_BUFFER` (as far as the kernel allows);
    the caller binds or connects it and makes it non-blocking."""
    sock = socket.socket(family, kind, proto)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
    return sock


class H3Protocol(QuicConnectionProtocol):
    """One QUIC connection speaking HTTP/3 (``self._h3``), transmitting once per loop iteration."""

    def __init__(self, quic: QuicConnection, stream_handler: QuicStreamHandler | None = None):
        super().__init__(quic, stream_handler)
        # Created here, not after the handshake: a client's first request must
        # be able to leave in the 0-RTT packets.
        self._h3 = H3Connection(quic)
        self._flush_pending = False

    def _flush_soon(self) -> None:
        """Transmit once per loop iteration however many frames were queued."""
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        if self._transport is not None and not self._transport.is_closing():
            self.transmit()

    def stop_timer(self) -> None:
        """Disarm the QUIC timer once the socket is gone."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
