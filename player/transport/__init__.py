"""Player transports: HTTP/3 (aioquic), HTTP/2 (h2) and HTTP/1.1 (h11) behind one protocol.

:func:`connect` picks one. With an explicit protocol the fetcher connects
lazily, on its first request: for HTTP/3 with a cached session ticket that
request then leaves in the 0-RTT packets. ``auto`` races an HTTP/3 handshake
against an HTTP/2 connection: HTTP/3 wins when it completes within
:data:`H3_GRACE_S` (or first), HTTP/2 otherwise, so a blocked or closed UDP
port costs at most :data:`H3_GRACE_S`. (The raced HTTP/3 handshake carries no
request, so ``auto`` resumes the session but does not save the round trip of
0-RTT on the first request; ask for ``h3`` for that.) A server that does not
speak HTTP/2 over TLS gets HTTP/1.1; ``http://`` URLs use HTTP/1.1 under ``auto``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Literal

from llhls.errors import ConfigError
from player.transport.base import (
    ALPNError,
    ConnectionLost,
    Fetcher,
    FetchResult,
    Origin,
    RequestTimeout,
    TLSVerificationError,
    TransportError,
    TransportStats,
    UnreachableError,
    parse_origin,
)
from player.transport.h1 import H1Fetcher
from player.transport.h2 import H2Fetcher
from player.transport.h3 import H3Fetcher
from player.transport.tickets import TicketCache

__all__ = [
    "ALPNError",
    "ConnectionLost",
    "FetchResult",
    "Fetcher",
    "H1Fetcher",
    "H2Fetcher",
    "H3Fetcher",
    "H3_GRACE_S",
    "Origin",
    "RequestTimeout",
    "TLSVerificationError",
    "TicketCache",
    "TransportError",
    "TransportStats",
    "UnreachableError",
    "connect",
    "parse_origin",
]

log = logging.getLogger(__name__)

H3_GRACE_S = 0.25
"""``auto``: how long an HTTP/3 handshake may take before a ready HTTP/2 connection is used."""

ProtocolChoice = Literal["auto", "h3", "h2", "h1"]


async def connect(
    url: str,
    protocol: ProtocolChoice = "auto",
    *,
    insecure: bool = False,
    cafile: Path | None = None,
    h1_reuse: bool = True,
    qlog_dir: Path | None = None,
    server_name: str | None = None,
    ticket_dir: Path | None = None,
    timeout: float = 5.0,
) -> Fetcher:
    """A :class:`Fetcher` for the origin of ``url`` (its path is ignored).

    ``insecure`` skips certificate checks; ``cafile`` is what to trust instead
    of the system roots (the origin's self-signed certificate). ``h1_reuse=False`` makes
    HTTP/1.1 open a connection per request. ``qlog_dir`` gets HTTP/3 qlog
    traces; ``ticket_dir`` overrides where HTTP/3 session tickets are cached.
    ``timeout`` bounds the ``auto`` race (explicit protocols connect on the
    first request, within its timeout). Raises :class:`ConfigError` for a bad
    URL or choice and, for ``auto``, the :class:`TransportError` of the failed
    connection attempts.
    """
    origin, _ = parse_origin(url)
    tickets = TicketCache(ticket_dir) if ticket_dir is not None else None
    if protocol == "h3":
        return H3Fetcher(
            origin,
            server_name=server_name,
            cafile=cafile,
            insecure=insecure,
            qlog_dir=qlog_dir,
            tickets=tickets,
        )
    if protocol == "h2":
        return H2Fetcher(origin, server_name=server_name, cafile=cafile, insecure=insecure)
    if protocol == "h1":
        return H1Fetcher(
            origin, server_name=server_name, cafile=cafile, insecure=insecure, reuse=h1_reuse
        )
    if protocol != "auto":
        raise ConfigError(f"unknown protocol {protocol!r} (auto, h3, h2 or h1)")
    if origin.scheme == "http":
        return H1Fetcher(origin, reuse=h1_reuse)
    h3 = H3Fetcher(
        origin,
        server_name=server_name,
        cafile=cafile,
        insecure=insecure,
        qlog_dir=qlog_dir,
        tickets=tickets,
    )
    h2 = H2Fetcher(origin, server_name=server_name, cafile=cafile, insecure=insecure)
    try:
        return await _race(h3, h2, timeout)
    except ALPNError:
        log.info("%s does not speak HTTP/2 over TLS: using HTTP/1.1", origin.authority)
    h1 = H1Fetcher(
        origin, server_name=server_name, cafile=cafile, insecure=insecure, reuse=h1_reuse
    )
    try:
        await h1.open(timeout)
    except BaseException:
        await h1.close()
        raise
    return h1


async def _race(h3: H3Fetcher, h2: H2Fetcher, timeout: float) -> Fetcher:
    """Open both; HTTP/3 wins if ready within the grace period, else the first ready one."""
    loop = asyncio.get_running_loop()
    t3 = asyncio.ensure_future(h3.open(timeout))
    t2 = asyncio.ensure_future(h2.open(timeout))
    grace_end = loop.time() + H3_GRACE_S
    winner: Fetcher | None = None
    try:
        while winner is None:
            if _succeeded(t3):
                winner = h3
                break
            in_grace = not t3.done() and loop.time() < grace_end
            if _succeeded(t2) and not in_grace:
                winner = h2
                break
            if t3.done() and t2.done():
                raise _race_error(t3, t2)
            waiting = [t for t in (t3, t2) if not t.done()]
            await asyncio.wait(
                waiting,
                timeout=grace_end - loop.time() if in_grace else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
    finally:
        for task in (t3, t2):
            task.cancel()
        await asyncio.wait([t3, t2])
        for task in (t3, t2):
            if not task.cancelled():
                task.exception()  # retrieved: the loser's error is not interesting
        for fetcher in (h3, h2):
            if fetcher is not winner:
                await fetcher.close()
    log.info(
        "auto: using %s for %s (HTTP/3 handshake %s)",
        winner.protocol,
        h3.origin.authority,
        "done" if winner is h3 else "not ready",
    )
    return winner


def _succeeded(task: asyncio.Future[None]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _race_error(t3: asyncio.Future[None], t2: asyncio.Future[None]) -> BaseException:
    e3, e2 = t3.exception(), t2.exception()
    if isinstance(e2, ALPNError | TLSVerificationError):
        return e2
    if isinstance(e3, TLSVerificationError):
        return e3
    if isinstance(e2, TransportError) and isinstance(e3, TransportError):
        return type(e2)(f"{e2} (and HTTP/3: {e3})")
    return e2 or e3 or TransportError("connection failed")
