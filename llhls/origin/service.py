"""The asyncio service around the pure origin core.

:class:`Origin` loops :func:`llhls.origin.core.decide` for each request: on
:class:`~llhls.origin.core.Wait` it parks the request until :meth:`Origin.notify`
(the pipeline calls it after each publish, on the event loop's thread) or the
deadline, then decides again. Paths the core does not claim go to an optional
``fallback`` handler (the demo page's static files), else 404.

Its :meth:`Origin.handle` is the ``Handler`` the HTTP/1.1+2 and HTTP/3 adapters call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from llhls.origin.core import (
    OriginConfig,
    Ready,
    Unclaimed,
    decide,
    error_response,
    not_found,
)
from llhls.origin.messages import Request, Response
from llhls.origin.store import Store
from llhls.timing import Clock, SystemClock

__all__ = ["Origin", "Fallback"]

logger = logging.getLogger(__name__)

Fallback = Callable[[Request], Awaitable[Response | None]]
"""Another handler for paths the HLS core does not claim; ``None`` means 404."""


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Origin:
    """Serves a :class:`Store` over any adapter: ``await origin.handle(request)``."""

    def __init__(
        self,
        store: Store,
        clock: Clock | None = None,
        config: OriginConfig | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        """``clock`` gives ``now`` (the same monotonic clock the pipeline passes to the
        store); ``fallback`` serves the paths the core leaves alone."""
        self.store = store
        """The store served."""
        self.fallback = fallback
        """Handler for unclaimed paths (may be set after construction)."""
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._config = config if config is not None else OriginConfig()
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def waiting(self) -> int:
        """Number of requests parked until the store changes."""
        return len(self._waiters)

    def notify(self) -> None:
        """The store changed (or the clock moved): every parked request decides again.

        Call on the event loop's thread; waiters resume on the loop's next iteration.
        """
        waiters = tuple(self._waiters)
        self._waiters.clear()
        for fut in waiters:
            _wake(fut)

    async def _park(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._waiters.add(fut)
        timer = loop.call_later(max(0.0, timeout), _wake, fut)
        try:
            await fut
        finally:
            timer.cancel()
            self._waiters.discard(fut)

    async def handle(self, request: Request, first_seen: float | None = None) -> Response:
        """Answer one request (waiting as the core asks). Never raises, except when
        cancelled (the client went away).

        ``first_seen``: when the adapter received the request (default: now); a
        blocked request gets its final answer 3 target durations after it.
        """
        if first_seen is None:
            first_seen = self._clock.monotonic()
        while True:
            now = self._clock.monotonic()
            decision = decide(request, self.store, now, self._config, first_seen=first_seen)
            if isinstance(decision, Ready):
                return decision.response
            if isinstance(decision, Unclaimed):
                return await self._fall_back(request)
            await self._park(decision.deadline - now)

    async def _fall_back(self, request: Request) -> Response:
        if self.fallback is not None:
            try:
                response = await self.fallback(request)
            except Exception:
                logger.exception("fallback handler failed on %s %s", request.method, request.path)
                return error_response(request, 503, "internal condition", None)
            if response is not None:
                return response
        return not_found(request, self._config)
