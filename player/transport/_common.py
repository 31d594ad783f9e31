"""Pieces the transports share: a request waiting for its answer, TCP+TLS set-up, retries,
and the fetcher base classes."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from llhls.errors import ConfigError
from player.transport.base import (
    USER_AGENT,
    ALPNError,
    ConnectionLost,
    FetchResult,
    Origin,
    RequestTimeout,
    TLSVerificationError,
    TransportError,
    TransportStats,
    UnreachableError,
)

__all__ = [
    "Call",
    "FetcherBase",
    "Pending",
    "Retry",
    "SharedConnectionFetcher",
    "WaitQueue",
    "consume",
    "exchange",
    "fresh",
    "open_tcp",
    "request_fields",
    "request_target",
    "ssl_context",
]

P = TypeVar("P", bound=asyncio.BaseProtocol)


class Pending:
    """One request waiting for its response; the future resolves when the body is complete."""

    __slots__ = ("future", "status", "headers", "chunks", "first_byte", "answered")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future
        future.add_done_callback(consume)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.first_byte = 0.0
        self.answered = False

    def answer(self, status: int, headers: dict[str, str]) -> None:
        """The final response header block arrived."""
        self.status, self.headers = status, headers
        self.first_byte = time.monotonic()
        self.answered = True

    def finish(self) -> None:
        """The body is complete."""
        if not self.future.done():
            self.future.set_result(None)

    def fail(self, error: TransportError) -> None:
        """The request failed (a fresh copy of ``error`` is raised to the caller)."""
        if not self.future.done():
            self.future.set_exception(fresh(error))

    def result(self, started: float, stats: TransportStats) -> FetchResult:
        """The :class:`FetchResult` of a finished request; counts it in ``stats``."""
        body = b"".join(self.chunks)
        stats.requests += 1
        stats.bytes_received += len(body)
        return FetchResult(
            status=self.status,
            headers=self.headers,
            body=body,
            started=started,
            first_byte=max(started, self.first_byte),
            finished=max(started, self.first_byte, time.monotonic()),
        )


class Retry(Exception):
    """The connection died before any response to this request arrived: safe to resend a GET."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class WaitQueue:
    """Tasks waiting for something to free up (a connection, a stream), woken in turn."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def wait(self) -> None:
        """Wait until woken (the caller checks again what it was waiting for)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def wake_one(self) -> None:
        """Wake the longest-waiting task that is still waiting."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def wake_all(self) -> None:
        """Wake every waiting task."""
        waiters, self._waiters = self._waiters, collections.deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def request_target(path_and_query: str) -> str:
    """The request target as sent: must start with ``/``; anything outside printable
    ASCII (and spaces) is percent-encoded as UTF-8."""
    if not path_and_query.startswith("/"):
        raise ConfigError(f"the request path must start with '/': {path_and_query!r}")
    if path_and_query.isascii() and path_and_query.isprintable() and " " not in path_and_query:
        return path_and_query
    return quote(path_and_query, safe=_TARGET_SAFE)


_TARGET_SAFE = "/?&=%:;@!$'()*+,~[]#"


def request_fields(
    scheme: bytes, authority: str, path: str, headers: Mapping[str, str]
) -> list[tuple[bytes, bytes]]:
    """The header block of a GET over HTTP/2 or HTTP/3: pseudo-headers, ``user-agent``,
    then ``headers`` (names lower-cased)."""
    fields = [
        (b":method", b"GET"),
        (b":scheme", scheme),
        (b":authority", authority.encode("ascii")),
        (b":path", path.encode("ascii")),
        (b"user-agent", USER_AGENT.encode("ascii")),
    ]
    fields += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    return fields


async def exchange(
    request: Pending | Awaitable[Pending],
    deadline: float,
    abandon: Callable[[Pending | None], object],
    timed_out: Callable[[], TransportError],
) -> Pending:
    """Wait until ``deadline`` for the complete response to ``request`` (a request sent
    already, or one that is sent when awaited, within the deadline too).

    On timeout ``abandon`` is called with the request (None if it was never sent)
    and ``timed_out()`` raised; on cancellation ``abandon`` is called too. A
    :class:`ConnectionLost` before any response arrived becomes :class:`Retry`.
    """
    pending: Pending | None = None
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            pending = request if isinstance(request, Pending) else await request
            await asyncio.shield(pending.future)
    except TimeoutError:
        abandon(pending)
        raise timed_out() from None
    except ConnectionLost as exc:
        if pending is not None and pending.answered:
            raise
        raise Retry(exc) from None
    except asyncio.CancelledError:
        abandon(pending)
        raise
    return pending


def fresh(error: TransportError) -> TransportError:
    """A new exception like ``error`` (a shared instance would collect every waiter's traceback)."""
    return type(error)(str(error))


def consume(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as retrieved (its waiter may be gone)."""
    if not future.cancelled():
        future.exception()


def ssl_context(cafile: Path | None, insecure: bool, alpn: list[str]) -> ssl.SSLContext:
    """A client TLS context trusting ``cafile`` (instead of the system roots, like
    curl's ``--cacert`` and aioquic), the system roots without it, nothing when insecure."""
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cafile is None:
        return _system_context(tuple(alpn))
    else:
        try:
            context = ssl.create_default_context(cafile=str(cafile))
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot load the CA file {cafile}: {exc}") from exc
    context.set_alpn_protocols(alpn)
    return context


@functools.cache
def _system_context(alpn: tuple[str, ...]) -> ssl.SSLContext:
    """The system roots take ~30 ms to load: one shared context per ALPN list."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(list(alpn))
    return context


async def open_tcp(
    origin: Origin,
    factory: Callable[[], P],
    context: ssl.SSLContext | None,
    server_name: str | None,
    deadline: float,
    what: str,
    alpn: Collection[str | None],
) -> tuple[P, float]:
    """Connect (and do the TLS handshake) by ``deadline``: (protocol, seconds it took).

    Errors become :class:`UnreachableError` or :class:`TLSVerificationError`; a
    protocol chosen by ALPN (None: none chosen) that is not in ``alpn`` becomes
    :class:`ALPNError`.
    """
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    timeout = max(0.001, deadline - started)
    label = origin.authority
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await loop.create_connection(
                factory,
                origin.host,
                origin.port,
                ssl=context,
                server_hostname=(server_name or origin.host) if context is not None else None,
            )
    except ssl.SSLCertVerificationError as exc:
        raise TLSVerificationError(
            f"TLS certificate of {label} not accepted: {exc.verify_message or exc}"
        ) from exc
    except ssl.SSLError as exc:
        raise TLSVerificationError(f"TLS handshake with {label} failed: {exc}") from exc
    except TimeoutError:
        raise UnreachableError(f"no {what} connection to {label} within {timeout:g} s") from None
    except ConnectionRefusedError as exc:
        raise UnreachableError(f"{label} refused the {what} connection") from exc
    except (OSError, UnicodeError) as exc:
        raise UnreachableError(f"cannot connect to {label} ({what}): {exc}") from exc
    took = time.monotonic() - started
    if context is not None:
        ssl_object = transport.get_extra_info("ssl_object")
        chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if chosen not in alpn:
            transport.close()
            raise ALPNError(f"{label} did not agree to {what} over TLS (ALPN: {chosen or 'none'})")
    return protocol, took


@dataclass(frozen=True, slots=True)
class Call:
    """One ``get``: the path and query as given, the extra header fields, when it was
    called (``time.monotonic()``) and the seconds it may take, retry included."""

    path: str
    headers: Mapping[str, str]
    started: float
    timeout: float

    @property
    def deadline(self) -> float:
        """When the call times out."""
        return self.started + self.timeout


class FetcherBase:
    """What the three fetchers share: origin, counters, closed state and a ``get``
    that retries once a request whose connection died before any response.

    A subclass sets ``protocol``, ``_name`` (as in messages: ``HTTP/2``) and
    ``_log``, and implements :meth:`_attempt`.
    """

    protocol: str
    _name: str
    _log: logging.Logger

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        """Where requests go."""
        self.stats = TransportStats()
        """Counters (see :class:`~player.transport.base.TransportStats`)."""
        self._closed = False
        self._label = origin.authority

    async def get(
        self,
        path_and_query: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
    ) -> FetchResult:
        """GET ``path_and_query`` (see the transport's module docs)."""
        call = Call(path_and_query, headers or {}, time.monotonic(), timeout)
        for attempt in range(2):
            try:
                return await self._attempt(call)
            except Retry as retry:
                if attempt or self._closed:
                    raise retry.error from None
                self._log.debug("retrying %s on a new connection: %s", path_and_query, retry)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, call: Call) -> FetchResult:
        """One try at the request; :class:`Retry` when it may be sent again."""
        raise NotImplementedError

    def _closed_error(self) -> TransportError:
        return TransportError(f"the {self._name} fetcher for {self._label} is closed")

    def _timed_out(self, call: Call, waiting: str = "") -> RequestTimeout:
        return RequestTimeout(
            f"GET {call.path} on {self._label} ({self.protocol}) timed out after "
            f"{call.timeout:g} s{waiting}"
        )


class _Connection(Protocol):
    @property
    def usable(self) -> bool: ...


C = TypeVar("C", bound=_Connection)


class SharedConnectionFetcher(FetcherBase, Generic[C]):
    """A fetcher whose requests are streams of one connection (``self._conn``),
    opened on demand and replaced once it is no longer usable.

    A subclass implements :meth:`_get_once`, :meth:`_new_connection` and
    :meth:`_drop_connection`.
    """

    def __init__(self, origin: Origin) -> None:
        super().__init__(origin)
        self._conn: C | None = None
        self._lock = asyncio.Lock()

    async def _attempt(self, call: Call) -> FetchResult:
        conn = await self._connection(call.deadline)
        return await self._get_once(conn, call)

    async def _connection(self, deadline: float) -> C:
        """The usable connection, a new one if need be (one caller connects, others wait)."""
        if self._closed:
            raise self._closed_error()
        conn = self._conn
        if conn is not None and conn.usable:
            return conn
        async with self._lock:
            if self._closed:
                raise self._closed_error()
            if self._conn is not None and self._conn.usable:
                return self._conn
            self._drop_connection()
            self._conn = await self._new_connection(deadline)
            return self._conn

    async def _get_once(self, conn: C, call: Call) -> FetchResult:
        """The request on ``conn``."""
        raise NotImplementedError

    async def _new_connection(self, deadline: float) -> C:
        """Open a connection."""
        raise NotImplementedError

    def _drop_connection(self) -> None:
        """Close the unusable ``self._conn`` (if any) and forget it."""
        raise NotImplementedError
