"""Pieces the transports share: a request waiting for its answer, TCP+TLS set-up, retries."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from llhls.errors import ConfigError
from player.transport.base import (
    FetchResult,
    Origin,
    TLSVerificationError,
    TransportError,
    TransportStats,
    UnreachableError,
)

__all__ = ["Pending", "Retry", "consume", "fresh", "open_tcp", "request_target", "ssl_context"]

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


def request_target(path_and_query: str) -> str:
    """The request target as sent: must start with ``/``; anything outside printable
    ASCII (and spaces) is percent-encoded as UTF-8."""
    if not path_and_query.startswith("/"):
        raise ConfigError(f"the request path must start with '/': {path_and_query!r}")
    if path_and_query.isascii() and path_and_query.isprintable() and " " not in path_and_query:
        return path_and_query
    return quote(path_and_query, safe=_TARGET_SAFE)


_TARGET_SAFE = "/?&=%:;@!$'()*+,~[]#"


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
    timeout: float,
    what: str,
) -> tuple[asyncio.Transport, P, float]:
    """Connect (and do the TLS handshake): (transport, protocol, seconds it took).

    Errors become :class:`UnreachableError` or :class:`TLSVerificationError`.
    """
    loop = asyncio.get_running_loop()
    started = time.monotonic()
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
    return transport, protocol, time.monotonic() - started
