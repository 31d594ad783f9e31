"""The one small protocol every player transport implements, and its errors.

A :class:`Fetcher` issues GET requests on the transport's connection(s) and
returns whole responses as :class:`FetchResult`. ``get`` may be called
concurrently: HTTP/3 and HTTP/2 multiplex the requests as streams of one
connection, HTTP/1.1 spreads them over a few keep-alive connections.

Failures surface as :class:`TransportError` subclasses of
:class:`llhls.errors.PlayerError`::

    PlayerError
    └── TransportError              a request could not be completed
        ├── UnreachableError        no connection: DNS, refused, UDP blocked, handshake timeout
        ├── TLSVerificationError    the TLS handshake failed (certificate, ALPN)
        │   └── ALPNError           TLS worked but the server would not speak the protocol
        ├── RequestTimeout          no complete response within the request's timeout
        └── ConnectionLost          the connection died (or the stream was reset) mid-request
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from llhls.errors import ConfigError, PlayerError

__all__ = [
    "USER_AGENT",
    "ALPNError",
    "ConnectionLost",
    "FetchResult",
    "Fetcher",
    "Origin",
    "RequestTimeout",
    "TLSVerificationError",
    "TransportError",
    "TransportStats",
    "UnreachableError",
    "parse_origin",
]

USER_AGENT = "llhls-player/0.1"
"""The ``user-agent`` every transport sends."""


class TransportError(PlayerError):
    """A request could not be completed; the message names the origin and the cause."""


class UnreachableError(TransportError):
    """No connection could be made: name resolution, refused, unreachable, UDP
    blocked or no QUIC handshake in time."""


class TLSVerificationError(TransportError):
    """The TLS handshake failed: certificate not trusted or not for this name, or
    the server did not agree to the protocol (ALPN)."""


class ALPNError(TLSVerificationError):
    """TLS worked, but the server did not agree to the protocol asked for (ALPN)."""


class RequestTimeout(TransportError, TimeoutError):
    """No complete response within the request's timeout."""


class ConnectionLost(TransportError):
    """The connection closed, or the server reset the stream, before the response was complete."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One complete HTTP response, with the times it took (``time.monotonic()`` values)."""

    status: int
    """HTTP status code."""
    headers: Mapping[str, str]
    """Response header fields, lower-case names (repeated fields joined with ``, ``)."""
    body: bytes
    """The whole body."""
    started: float
    """When ``get`` was called."""
    first_byte: float
    """When the response's header block arrived."""
    finished: float
    """When the last body byte arrived."""

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 999:
            raise ValueError(f"bad HTTP status {self.status}")
        if not self.started <= self.first_byte <= self.finished:
            raise ValueError("times must satisfy started <= first_byte <= finished")

    @property
    def ttfb_s(self) -> float:
        """Seconds from the call to the response header block."""
        return self.first_byte - self.started

    @property
    def elapsed_s(self) -> float:
        """Seconds from the call to the last body byte."""
        return self.finished - self.started


@dataclass(slots=True)
class TransportStats:
    """Live counters of one fetcher (mutable on purpose: the transport updates them)."""

    connections: int = 0
    """Connections opened so far (QUIC connections for h3, TCP connections otherwise)."""
    requests: int = 0
    """Requests that got a complete response."""
    bytes_received: int = 0
    """Response body bytes received (headers and framing not counted)."""
    zero_rtt: bool | None = None
    """h3: whether the server accepted 0-RTT early data on the latest connection;
    ``None`` for TCP transports and before the first handshake completes."""
    handshake_rtt_s: float | None = None
    """Seconds from starting the latest connection to its completed handshake
    (QUIC handshake; TCP connect plus TLS for the others)."""


class Fetcher(Protocol):
    """A connection (or a small pool) to one origin that performs GET requests."""

    protocol: str
    """``h3``, ``h2`` or ``http/1.1``."""
    stats: TransportStats
    """Counters for metrics."""

    async def get(
        self,
        path_and_query: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> FetchResult:
        """GET ``path_and_query`` (e.g. ``/live/720p/media.m3u8?_HLS_msn=5``).

        Any status is returned as a result; failures raise :class:`TransportError`.
        """
        ...

    async def close(self) -> None:
        """Close every connection; idempotent."""
        ...


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a fetcher connects: scheme, host and port of a URL."""

    scheme: str
    """``https`` or ``http``."""
    host: str
    """Host name or address, without IPv6 brackets."""
    port: int
    """TCP/UDP port (defaulted from the scheme)."""

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise ConfigError(f"unsupported URL scheme {self.scheme!r} (use https or http)")
        if not self.host:
            raise ConfigError("the URL has no host")
        if not 0 < self.port < 65536:
            raise ConfigError(f"bad port {self.port}")

    @property
    def authority(self) -> str:
        """``host:port`` as sent in ``:authority`` / ``host`` (IPv6 literals bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_origin(url: str) -> tuple[Origin, str]:
    """Split ``url`` into its :class:`Origin` and its path-and-query (``/`` when empty)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    default = 443 if scheme == "https" else 80
    origin = Origin(scheme, parts.hostname or "", port if port is not None else default)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return origin, path


def header_dict(pairs: Iterable[tuple[bytes | str, bytes | str]]) -> dict[str, str]:
    """Lower-case header names (bytes decoded as latin-1); repeated fields joined with ``, ``."""
    out: dict[str, str] = {}
    for name, value in pairs:
        key, text = _text(name).lower(), _text(value)
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def response_head(fields: Iterable[tuple[bytes | str, bytes | str]]) -> tuple[int, dict[str, str]]:
    """An HTTP/2 or HTTP/3 response header block: its ``:status`` (0 when missing or
    not a number) and its other fields as :func:`header_dict` (pseudo-headers dropped)."""
    status = 0
    regular: list[tuple[str, str]] = []
    for raw_name, raw_value in fields:
        name, value = _text(raw_name), _text(raw_value)
        if name == ":status":
            status = int(value) if value.isdigit() else 0
        elif not name.startswith(":"):
            regular.append((name, value))
    return status, header_dict(regular)


def _text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else bytes(raw).decode("latin-1")
