"""HTTP/1.1 and HTTP/2 adapter: hypercorn (asyncio) in front of a request handler.

The adapter only pumps: each HTTP request becomes a :class:`Request`, the
handler's :class:`Response` goes back on the wire with a content-length (and
without a body for HEAD). Everything the origin decides lives in the handler.

:func:`start_tcp` binds the listening socket itself (so port 0 works and a
port in use is reported at once as :class:`OriginError`) and accepts
connections with ``asyncio.start_server``; each connection is then driven by
hypercorn's own per-connection ``TCPServer`` (h11/h2 framing, ALPN, h2c,
keep-alive, flow control). Owning the accept loop, rather than calling
``hypercorn.asyncio.serve``, lets the adapter

* set a short TLS shutdown timeout (asyncio's default waits 30 s for a
  close_notify that Chromium may never send),
* swallow the ``ssl.SSLError``/``OSError`` hypercorn lets escape when a peer
  closes untidily (``serve`` would log them as "Unhandled exception in
  client_connected_cb"; hypercorn's CLI hides them with a loop-wide exception
  handler, which a library must not install), and
* close promptly: idle connections are told to close, stragglers are aborted
  after :data:`GRACEFUL_S` (hypercorn 0.18's ``serve`` raises
  ``InvalidStateError`` when its graceful timeout expires).

With TLS the server offers ALPN ``h2`` and ``http/1.1``; without TLS it serves
HTTP/1.1 plus h2c (prior knowledge and ``Upgrade: h2c``).

Blocking (long-poll) requests are first-class: the handler may wait as long
as it likes; when the client goes away first, the handler's task is
cancelled quietly, and :meth:`TCPServer.close` cancels the waiting ones (they
answer 503) so a shutdown is not held up by them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, cast

from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.tcp_server import TCPServer as HypercornConnection
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework

from llhls.errors import OriginError
from llhls.origin.messages import Request, Response
from llhls.origin.tls import TLSFiles

__all__ = ["Handler", "ASGIAdapter", "TCPServer", "start_tcp"]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
"""What the adapter calls for every request."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_REQUEST_BODY = 1 << 20
"""Request bodies are read and dropped (the origin takes none); larger ones get 413."""
KEEP_ALIVE_S = 30.0
"""Idle connections are closed after this long (hls.js keeps one busy every part)."""
GRACEFUL_S = 2.0
"""On close, connections still open after this long are aborted."""
TLS_HANDSHAKE_S = 10.0
"""A TLS handshake must finish within this long."""
TLS_SHUTDOWN_S = 2.0
"""How long a closing TLS connection waits for the peer's close_notify."""
_NO_BODY_STATUS = frozenset({204, 304})


class ASGIAdapter:
    """An ASGI 3 application that turns HTTP requests into :class:`Request` for ``handler``.

    Also answers the ``lifespan`` scope, so it can run under any ASGI server. Keeps the set
    of pending handler tasks so :meth:`cancel_pending` can end them at shutdown.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._pending: set[asyncio.Task[Response]] = set()
        self._closing = False

    @property
    def pending(self) -> int:
        """Number of requests whose handler has not answered yet."""
        return len(self._pending)

    def cancel_pending(self) -> None:
        """Refuse new requests (503) and cancel every pending handler (they answer 503)."""
        self._closing = True
        for task in list(self._pending):
            task.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        # websocket and unknown scopes are not ours: returning closes them.

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._closing:
            await _send_response(send, scope, _plain(503, "shutting down\n"))
            return
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if size > MAX_REQUEST_BODY:
            await _send_response(send, scope, _plain(413, "request body too large\n"))
            return
        request = to_request(scope)
        task = asyncio.ensure_future(self._handler(request))
        self._pending.add(task)
        disconnect = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait((task, disconnect), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            disconnect.cancel()
            self._pending.discard(task)
        if not task.done():  # the client went away first
            task.cancel()
            await asyncio.wait((task,))
            if not task.cancelled() and task.exception() is not None:
                log.debug("handler failed after the client went away", exc_info=task.exception())
            log.debug("%s %s: client went away before the answer", request.method, request.path)
            return
        if task.cancelled():
            response = _plain(503, "shutting down\n")
        elif (exc := task.exception()) is not None:
            log.error("handler failed on %s %s", request.method, request.path, exc_info=exc)
            response = _plain(500, "internal server error\n")
        else:
            response = task.result()
        await _send_response(send, scope, response)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def to_request(scope: Scope) -> Request:
    """The :class:`Request` of an ASGI ``http`` scope.

    Header names are lower-cased; repeated fields are joined with ``, ``.
    """
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Request(
        method=str(scope["method"]).upper(),
        path=str(scope["path"]) or "/",
        query=bytes(scope.get("query_string", b"")).decode("latin-1"),
        headers=headers,
        http_version=str(scope.get("http_version", "1.1")),
    )


def response_headers(request_method: str, response: Response) -> list[tuple[bytes, bytes]]:
    """The wire header fields of ``response``, with content-length set by the adapter.

    The body's length is used, except for a HEAD response whose handler gave
    its own content-length (the length a GET would have). 1xx, 204 and 304
    responses get none unless the handler gave one (304 only).
    """
    given = [value for name, value in response.headers if name.lower() == "content-length"]
    fields = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers
        if name.lower() != "content-length"
    ]
    length: str | None = str(len(response.body))
    if response.status < 200 or response.status == 204:
        length = None
    elif response.status == 304:
        length = given[0] if given else None
    elif request_method == "HEAD" and given:
        length = given[0]
    if length is not None:
        fields.append((b"content-length", length.encode("ascii")))
    return fields


async def _send_response(send: Send, scope: Scope, response: Response) -> None:
    method = str(scope.get("method", "GET")).upper()
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": response_headers(method, response),
        }
    )
    with_body = method != "HEAD" and response.status not in _NO_BODY_STATUS
    await send({"type": "http.response.body", "body": response.body if with_body else b""})


def _plain(status: int, text: str) -> Response:
    return Response(
        status,
        (("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-store")),
        text.encode(),
    )


class TCPServer:
    """A running HTTP/1.1 + HTTP/2 listener (see :func:`start_tcp`)."""

    def __init__(
        self,
        host: str,
        port: int,
        url_scheme: str,
        app: ASGIAdapter,
        config: Config,
    ) -> None:
        self._host = host
        self._port = port
        self._scheme = url_scheme
        self._app = app
        self._config = config
        # hypercorn types scopes as TypedDicts; the adapter reads them as plain mappings.
        self._wrapped = ASGIWrapper(cast(ASGIFramework, app))
        self._context = WorkerContext(None)
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._server: asyncio.Server | None = None
        self._closed = False

    @property
    def host(self) -> str:
        """The host the listener was asked to bind."""
        return self._host

    @property
    def port(self) -> int:
        """The bound TCP port (the real one when 0 was asked for)."""
        return self._port

    @property
    def url_scheme(self) -> str:
        """``https`` with TLS, ``http`` without."""
        return self._scheme

    @property
    def url(self) -> str:
        """``scheme://host:port`` (IPv6 literals bracketed), without a trailing slash."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{self._scheme}://{host}:{self._port}"

    @property
    def pending(self) -> int:
        """Number of requests waiting for the handler's answer."""
        return self._app.pending

    @property
    def connections(self) -> int:
        """Number of open client connections."""
        return len(self._connections)

    async def _start(self, sock: socket.socket, context: ssl.SSLContext | None) -> None:
        self._server = await asyncio.start_server(
            self._on_connection,
            sock=sock,
            backlog=self._config.backlog,
            ssl=context,
            ssl_handshake_timeout=TLS_HANDSHAKE_S if context is not None else None,
            ssl_shutdown_timeout=TLS_SHUTDOWN_S if context is not None else None,
        )

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        loop = asyncio.get_running_loop()
        try:
            await HypercornConnection(
                self._wrapped, loop, self._config, self._context, {}, reader, writer
            )
        except OSError as exc:  # includes ssl.SSLError: an untidy close by the peer
            log.debug("connection ended: %r", exc)
        except asyncio.CancelledError:
            if not self._closed:
                raise
            # aborted by close(): end quietly (asyncio's stream callback would log a
            # cancelled connection task as an unhandled error)
            log.debug("connection aborted at close")
        except Exception:
            log.exception("HTTP connection failed")
        finally:
            del self._connections[task]

    async def close(self) -> None:
        """Stop listening, answer pending requests 503, close every connection.

        Idle connections close at once; connections still open after
        :data:`GRACEFUL_S` are aborted. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        self._app.cancel_pending()
        if self._server is not None:
            self._server.close()
        await self._context.terminated.set()
        if self._connections:
            _, stuck = await asyncio.wait(set(self._connections), timeout=GRACEFUL_S)
            for task in stuck:
                writer = self._connections.get(task)
                if writer is not None:
                    writer.transport.abort()
                task.cancel()
            if stuck:
                log.debug("aborted %d connection(s) at close", len(stuck))
                await asyncio.wait(stuck, timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        log.info("closed the HTTP server on %s", self.url)


async def start_tcp(
    handler: Handler,
    host: str,
    port: int,
    tls: TLSFiles | None,
    *,
    alt_svc: str | None = None,
) -> TCPServer:
    """Serve ``handler`` over HTTP/1.1 and HTTP/2 on TCP ``host:port``.

    ``port`` 0 picks a free port (see :attr:`TCPServer.port`). With ``tls``,
    HTTPS with ALPN ``h2``/``http/1.1``; without, HTTP/1.1 and h2c.
    ``alt_svc`` (e.g. ``h3=":8443"; ma=86400``) is added to every response as
    an ``alt-svc`` field. Raises :class:`OriginError` when the port is in use,
    the address cannot be bound, or the TLS files cannot be loaded.
    """
    config = _config(tls, alt_svc)
    context = _tls_context(config, tls) if tls is not None else None
    sock = _listen(host, port)
    bound = int(sock.getsockname()[1])
    server = TCPServer(
        host, bound, "https" if tls is not None else "http", ASGIAdapter(handler), config
    )
    try:
        await server._start(sock, context)
    except OSError as exc:
        sock.close()
        raise OriginError(f"cannot serve on {host} port {bound}: {exc}") from exc
    log.info("serving HTTP/1.1 and HTTP/2 on %s", server.url)
    return server


def _tls_context(config: Config, tls: TLSFiles) -> ssl.SSLContext:
    """hypercorn's server context (TLS >= 1.2, ECDHE+AESGCM, ALPN h2 + http/1.1)."""
    try:
        context = config.create_ssl_context()
    except (OSError, ssl.SSLError) as exc:
        raise OriginError(
            f"cannot load the TLS certificate {tls.certfile} with key {tls.keyfile}: {exc}"
        ) from exc
    assert context is not None
    return context


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (the first address ``host`` resolves to)."""
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise OriginError(f"cannot resolve the listen address {host!r}: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OriginError(f"port {port} is already in use on {host}") from exc
        reason = exc.strerror or str(exc)
        raise OriginError(f"cannot listen on {host} port {port}: {reason}") from exc
    return sock


def _config(tls: TLSFiles | None, alt_svc: str | None) -> Config:
    config = Config()
    if tls is not None:
        config.certfile = str(tls.certfile)
        config.keyfile = str(tls.keyfile)
        config.alpn_protocols = ["h2", "http/1.1"]
    config.alt_svc_headers = [alt_svc] if alt_svc is not None else []
    config.accesslog = None
    config.errorlog = logging.getLogger("llhls.origin.hypercorn")
    config.include_server_header = False
    config.keep_alive_timeout = KEEP_ALIVE_S
    config.graceful_timeout = GRACEFUL_S
    config.backlog = 1024
    config.h2_max_concurrent_streams = 256
    return config
